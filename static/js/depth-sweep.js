// "Layer by layer": final accuracy against the number of locked units, a line per source, at a
// small and a large n, from the shipped depth sweep (GET api/sweep/depth). Scratch, which
// locks nothing pretrained, is the dashed level to beat. Hover or focus a point for its
// numbers; click it (or press Enter) to load that source, size and depth into the race.

import { percent } from "./format.js";
import { bounds, frame, pickable, steps, svg } from "./svg.js";
import { api } from "./api.js";

const W = 320;
const H = 260;
const PAD = { left: 48, right: 10, top: 26, bottom: 44 };
const FROZEN = 5; // every body unit locked: the frozen strategy

export class DepthSweepPanel {
  constructor(root, { readout, onPick }) {
    this.root = root;
    this.readout = readout;
    this.onPick = onPick;
  }

  async load() {
    const response = await fetch(api.depthSweep);
    if (!response.ok) return false;
    this.sweep = await response.json();
    return this.sweep.points.length > 0;
  }

  at(source, n, locked) {
    return this.sweep.points.find((p) => p.source === source && p.n === n && p.locked === locked);
  }

  name(p) {
    const label = this.sweep.sources[p.source].label;
    const what = p.locked === FROZEN ? "frozen (all 5 units locked)" : `fine-tune locking ${p.locked}`;
    return `${label}, n = ${p.n.toLocaleString("en")}, ${what}`;
  }

  show() {
    const ns = [...new Set(this.sweep.points.map((p) => p.n))].sort((a, b) => a - b);
    this.marks = [];
    // The sources' colours, named once above both plots.
    const legend = document.createElement("p");
    legend.className = "depth-legend";
    for (const { label, colour } of Object.values(this.sweep.sources)) {
      const key = document.createElement("span");
      key.innerHTML = `<i style="background:${colour}"></i>${label}`;
      legend.append(key);
    }
    const scratch = document.createElement("span");
    scratch.innerHTML = '<i class="dashed"></i>scratch';
    legend.append(scratch);
    this.root.replaceChildren(legend, ...ns.map((n) => this.plot(n)));
    this.describe();
  }

  // Each size on its own scale: at 1,000 images the sources differ by points, not tens.
  plot(n) {
    const [y0, y1] = bounds(this.sweep.points.filter((p) => p.n === n).map((p) => p.mean), 2);
    const step = y1 - y0 > 0.3 ? 0.1 : y1 - y0 > 0.12 ? 0.05 : 0.02;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "keep-plot depth-plot", role: "group", "aria-label": this.label(n) });
    const scratch = this.sweep.points.filter((p) => p.n === n && p.locked === -1);
    const level = scratch.length ? scratch.reduce((s, p) => s + p.mean, 0) / scratch.length : null;
    const title = `${n.toLocaleString("en")} target images${level === null ? "" : ` · scratch ${percent(level, 0)}`}`;
    root.append(svg("text", { x: PAD.left, y: 14, class: "axis" }, title));
    const box = { left: PAD.left, top: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom };
    const { sx, sy } = frame(
      root,
      box,
      { lo: -0.3, hi: FROZEN + 0.3, ticks: [0, 1, 2, 3, 4, 5], label: String, title: "body units locked (5: frozen)" },
      { lo: y0, hi: y1, ticks: steps(Math.ceil(y0 / step - 1e-9) * step, y1, step), label: (v) => `${Math.round(100 * v)}%` },
    );
    if (level !== null) root.append(svg("line", { x1: box.left, x2: box.left + box.width, y1: sy(level), y2: sy(level), class: "level", stroke: "var(--scratch)" }));
    for (const [source, { colour }] of Object.entries(this.sweep.sources)) {
      const pts = this.sweep.points.filter((p) => p.source === source && p.n === n && p.locked >= 0).sort((a, b) => a.locked - b.locked);
      root.append(svg("polyline", { points: pts.map((p) => `${sx(p.locked)},${sy(p.mean)}`).join(" "), class: "curve", stroke: colour }));
      for (const p of pts) {
        const mark = svg("circle", { cx: sx(p.locked), cy: sy(p.mean), r: 4.5, fill: colour });
        Object.assign(mark.dataset, { source: p.source, n: p.n, locked: p.locked });
        const words = `${this.name(p)}: ${percent(p.mean)} (${(100 * p.lo).toFixed(1)}–${percent(p.hi)})`;
        pickable(mark, {
          label: `${words}. Load it into the race.`,
          describe: () => (this.readout.textContent = `${words}. Click to race it.`),
          leave: () => this.describe(),
          pick: () => this.pick(p),
        });
        this.marks.push(mark);
        root.append(mark);
      }
    }
    return root;
  }

  describe() {
    const legend = Object.values(this.sweep.sources).map((s) => s.label).join(", ");
    this.readout.textContent = `Final test accuracy by units locked, for each source (${legend}), mean of ${this.sweep.seeds} seeds; dashed: scratch. Hover or focus a point for its numbers; click it to race it.`;
  }

  label(n) {
    const parts = Object.entries(this.sweep.sources).map(([source, { label }]) => {
      const ends = [0, FROZEN].map((k) => this.at(source, n, k)).filter(Boolean);
      return `${label}: ${ends.map((p) => `${p.locked} locked ${percent(p.mean)}`).join(", ")}`;
    });
    return `With ${n.toLocaleString("en")} target images, final accuracy against units locked. ${parts.join(". ")}.`;
  }

  pick(p) {
    const race = this.sweep.scenario.race || {};
    // Frozen is the race's own second lane: loading it sets fine-tune to lock all it can.
    this.onPick({ ...race, source: p.source, n: p.n, locked: Math.min(p.locked, FROZEN - 1) }, this.name(p));
  }
}

// "What keeping the source task costs": fine-tune's final target accuracy against its final
// source accuracy, from the shipped trade-off sweep (GET api/sweep/keep). A curve per
// regulariser through its strengths, and fine-tune without one. Hover or focus a point for its
// numbers; click it (or press Enter) to load that setting into the race.

import { percent } from "./format.js";
import { bounds, frame, pickable, steps, svg } from "./svg.js";
import { api } from "./api.js";

const W = 640;
const H = 300;
const PAD = { left: 52, right: 24, top: 12, bottom: 40 };

export class KeepSweepPanel {
  constructor(root, { readout, onPick }) {
    this.root = root;
    this.readout = readout;
    this.onPick = onPick;
  }

  async load() {
    const response = await fetch(api.keepSweep);
    if (!response.ok) return false; // no shipped trade-off: the panel stays hidden
    this.sweep = await response.json();
    return this.sweep.points.length > 0;
  }

  // How a point is named: "EWC λ = 0.1", "no regulariser, body × head = 1".
  name(p) {
    const look = this.sweep.looks[p.keep];
    if (p.keep === "none") return `Fine-tune with no regulariser, body × head = ${p.body_lr_ratio}`;
    return `${look.label} ${p.keep === "ewc" ? "λ" : "α"} = ${p.keep_strength}`;
  }

  numbers(p) {
    const range = (lo, hi) => `${(100 * lo).toFixed(1)}–${percent(hi)}`;
    return `target ${percent(p.test_acc)} (${range(p.test_lo, p.test_hi)}), source ${percent(p.source_acc)} (${range(p.source_lo, p.source_hi)})`;
  }

  show() {
    const { points, seeds } = this.sweep;
    const [x0, x1] = bounds(points.map((p) => p.source_acc), 5);
    const [y0, y1] = bounds(points.map((p) => p.test_acc), 2);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "keep-plot", role: "group", "aria-label": this.label() });
    const box = { left: PAD.left, top: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom };
    const pct = (v) => `${Math.round(100 * v)}%`;
    const { sx: x, sy: y } = frame(
      root,
      box,
      { lo: x0, hi: x1, ticks: steps(x0, x1, 0.05), label: pct, title: "final source-task accuracy: what fine-tuning kept" },
      { lo: y0, hi: y1, ticks: steps(y0, y1, 0.02), label: pct, title: "final target accuracy" },
    );

    // A curve per regulariser, weakest to strongest, then every point on top of the curves.
    const kept = Object.keys(this.sweep.looks).filter((k) => k !== "none");
    for (const keep of kept) {
      const pts = points.filter((p) => p.keep === keep).sort((a, b) => a.keep_strength - b.keep_strength);
      root.append(svg("polyline", { points: pts.map((p) => `${x(p.source_acc)},${y(p.test_acc)}`).join(" "), class: "curve", stroke: `var(--${keep})` }));
    }
    this.marks = [];
    for (const p of points) {
      const colour = p.keep === "none" ? "var(--finetune)" : `var(--${p.keep})`;
      const naive = p.keep === "none" && p.body_lr_ratio === this.sweep.scenario.naive_ratio;
      const cx = x(p.source_acc);
      const cy = y(p.test_acc);
      const mark = p.keep === "none"
        ? svg("rect", { x: cx - 6, y: cy - 6, width: 12, height: 12, transform: naive ? "" : `rotate(45 ${cx} ${cy})`, fill: colour })
        : svg("circle", { cx, cy, r: 5, fill: colour });
      Object.assign(mark.dataset, { keep: p.keep, strength: p.keep_strength, ratio: p.body_lr_ratio });
      pickable(mark, {
        label: `${this.name(p)}: ${this.numbers(p)}. Load it into the race.`,
        describe: () => (this.readout.textContent = `${this.name(p)}: ${this.numbers(p)}. Click to race it.`),
        leave: () => this.describe(),
        pick: () => this.pick(p),
      });
      this.marks.push(mark);
      root.append(mark);
    }
    // The legend, in the plot's bottom left: little kept and little learned, where no point lies.
    const legend = [...kept.map((k) => [this.sweep.looks[k].label, `var(--${k})`, "circle"]), [`no regulariser, body × head = ${this.sweep.scenario.naive_ratio}`, "var(--finetune)", "square"], ["no regulariser, the default body rate", "var(--finetune)", "diamond"]];
    legend.forEach(([text, colour, shape], i) => {
      const ly = H - PAD.bottom - 12 - 16 * (legend.length - 1 - i);
      const lx = PAD.left + 12;
      root.append(shape === "circle" ? svg("circle", { cx: lx, cy: ly, r: 5, fill: colour }) : svg("rect", { x: lx - 5, y: ly - 5, width: 10, height: 10, fill: colour, transform: shape === "diamond" ? `rotate(45 ${lx} ${ly})` : "" }));
      root.append(svg("text", { x: lx + 10, y: ly + 4, class: "legend" }, text));
    });
    this.root.replaceChildren(root);
    this.seeds = seeds;
    this.describe();
  }

  describe() {
    this.readout.textContent = `Fine-tune with every unit unlocked, mean of ${this.seeds} seeds. Stronger pulls keep more of the source task and may cost target accuracy. Hover or focus a point for its numbers; click it to race it.`;
  }

  // The picture in words: the two ends of each regulariser's curve and fine-tune without one.
  label() {
    const parts = this.sweep.points.filter((p) => p.keep === "none").map((p) => `${this.name(p)}: ${this.numbers(p)}.`);
    return `Final target accuracy against final source-task accuracy for fine-tune, mean of ${this.sweep.seeds} seeds. ${parts.join(" ")}`;
  }

  // Ring the point the race's settings match, if any.
  mark(state) {
    for (const m of this.marks ?? []) {
      const { keep, strength, ratio } = m.dataset;
      const same = state.locked === 0 && state.keep === keep && state.body_lr_ratio === Number(ratio) && (keep === "none" || state.keep_strength === Number(strength));
      m.classList.toggle("current", same);
    }
  }

  pick(p) {
    const race = this.sweep.scenario.race || {};
    const strength = p.keep === "none" ? {} : { keep_strength: p.keep_strength };
    this.onPick({ ...race, locked: 0, keep: p.keep, body_lr_ratio: p.body_lr_ratio, ...strength }, this.name(p));
  }
}

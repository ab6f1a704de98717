// "What each way of adapting costs": final target accuracy against trainable parameters (log
// scale) for every lane, from the shipped lanes sweep (GET api/sweep/lanes): fine-tune at each
// k and LoRA at each rank as lines, scratch, frozen and gradual as points. The frontier is the
// upper left: most accuracy for fewest parameters. Hover or focus a point for its numbers; click
// it (or press Enter) to load that race, every lane added.

import { compact, percent } from "./format.js";
import { bounds, frame, pickable, steps, svg } from "./svg.js";
import { api } from "./api.js";

const W = 640;
const H = 330;
const PAD = { left: 56, right: 16, top: 12, bottom: 48 };

export class LanesSweepPanel {
  constructor(root, { readout, onPick }) {
    this.root = root;
    this.readout = readout;
    this.onPick = onPick;
  }

  async load() {
    const response = await fetch(api.lanesSweep);
    if (!response.ok) return false; // no shipped sweep: the panel stays hidden
    this.sweep = await response.json();
    return this.sweep.points.length > 0;
  }

  name(p) {
    const label = this.sweep.looks[p.strategy].label;
    if (p.strategy === "finetune") return `${label} locking ${p.locked}`;
    if (p.strategy === "lora") return `${label} at rank ${p.lora_rank}`;
    return label;
  }

  numbers(p) {
    const spread = `${(100 * p.test_lo).toFixed(1)}–${percent(p.test_hi)}`;
    return `${percent(p.test_acc)} (${spread}) with ${p.trainable_params.toLocaleString("en")} trainable parameters, ${p.compute_s.toFixed(2)} s compute`;
  }

  show() {
    const { points } = this.sweep;
    const logs = points.map((p) => Math.log10(p.trainable_params));
    const x0 = Math.floor(Math.min(...logs));
    const x1 = Math.ceil(Math.max(...logs));
    const [y0, y1] = bounds(points.map((p) => p.test_acc), 5);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "keep-plot", role: "group", "aria-label": this.label() });
    const box = { left: PAD.left, top: PAD.top, width: W - PAD.left - PAD.right, height: H - PAD.top - PAD.bottom };
    const { sx, sy } = frame(
      root,
      box,
      { lo: x0, hi: x1, ticks: steps(x0, x1, 1), label: (v) => compact(10 ** v).replace(".0 ", " "), title: "trainable parameters (log scale)" },
      { lo: y0, hi: y1, ticks: steps(y0, y1, 0.05), label: (v) => `${Math.round(100 * v)}%`, title: "final target accuracy" },
    );
    const x = (p) => sx(Math.log10(p.trainable_params));
    const y = (p) => sy(p.test_acc);
    // Fine-tune across k and LoRA across ranks as lines, fewest parameters first.
    for (const lane of ["finetune", "lora"]) {
      const pts = points.filter((p) => p.strategy === lane).sort((a, b) => a.trainable_params - b.trainable_params);
      root.append(svg("polyline", { points: pts.map((p) => `${x(p)},${y(p)}`).join(" "), class: "curve", stroke: `var(--${lane})` }));
    }
    for (const p of points) {
      const mark = svg("circle", { cx: x(p), cy: y(p), r: 6, fill: `var(--${p.strategy})` });
      Object.assign(mark.dataset, { strategy: p.strategy, locked: p.locked, rank: p.lora_rank });
      pickable(mark, {
        label: `${this.name(p)}: ${this.numbers(p)}. Load it into the race.`,
        describe: () => (this.readout.textContent = `${this.name(p)}: ${this.numbers(p)}. Click to race it.`),
        leave: () => this.describe(),
        pick: () => this.pick(p),
      });
      root.append(mark);
    }
    // The legend, top left: few parameters and much accuracy, where no lane reaches.
    const lanes = Object.keys(this.sweep.looks).filter((s) => points.some((p) => p.strategy === s));
    lanes.forEach((lane, i) => {
      const ly = PAD.top + 14 + 16 * i;
      const lx = PAD.left + 14;
      root.append(svg("circle", { cx: lx, cy: ly, r: 5, fill: `var(--${lane})` }));
      root.append(svg("text", { x: lx + 10, y: ly + 4, class: "legend" }, this.sweep.looks[lane].label));
    });
    this.root.replaceChildren(root);
    this.describe();
  }

  describe() {
    const { seeds, scenario } = this.sweep;
    this.readout.textContent = `${scenario.race.n} target images, mean of ${seeds} seeds. Up and to the left is better: more accuracy from fewer trained parameters. Hover or focus a point for its numbers; click it to race it.`;
  }

  // The picture in words: each lane's best point.
  label() {
    const best = Object.keys(this.sweep.looks).flatMap((lane) => {
      const pts = this.sweep.points.filter((p) => p.strategy === lane);
      return pts.length ? [pts.reduce((a, b) => (b.test_acc > a.test_acc ? b : a))] : [];
    });
    return `Final target accuracy against trainable parameters for every lane, mean of ${this.sweep.seeds} seeds. ${best.map((p) => `${this.name(p)}: ${this.numbers(p)}.`).join(" ")}`;
  }

  pick(p) {
    const { race, locked, lora_rank: rank } = this.sweep.scenario;
    const k = p.strategy === "finetune" ? p.locked : locked;
    this.onPick({ ...race, locked: k, extra: ["gradual", "lora"], lora_rank: p.strategy === "lora" ? p.lora_rank : rank }, this.name(p));
  }
}

// "What keeping the source task costs": fine-tune's final target accuracy against its final
// source accuracy, from the shipped trade-off sweep (GET /api/sweep/keep). A curve per
// regulariser through its strengths, and fine-tune without one. Hover or focus a point for its
// numbers; click it (or press Enter) to load that setting into the race.

import { percent } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 640;
const H = 300;
const PAD = { left: 52, right: 24, top: 12, bottom: 40 };

function svg(tag, attributes = {}, text = null) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text !== null) el.textContent = text;
  return el;
}

// Round bounds a little outside the data, in whole points.
function bounds(values, step) {
  const lo = Math.floor((Math.min(...values) * 100 - 1) / step) * step;
  const hi = Math.min(100, Math.ceil((Math.max(...values) * 100 + 1) / step) * step);
  return [lo / 100, hi / 100];
}

export class KeepSweepPanel {
  constructor(root, { readout, onPick }) {
    this.root = root;
    this.readout = readout;
    this.onPick = onPick;
  }

  async load() {
    const response = await fetch("/api/sweep/keep");
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
    const x = (v) => PAD.left + ((v - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - ((v - y0) / (y1 - y0)) * (H - PAD.top - PAD.bottom);
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "keep-plot", role: "group", "aria-label": this.label() });

    // Grid and axes: every 5 points of source accuracy, every 2 of target accuracy.
    for (let v = x0; v <= x1 + 1e-9; v += 0.05) {
      root.append(svg("line", { x1: x(v), x2: x(v), y1: PAD.top, y2: H - PAD.bottom, class: "grid" }));
      root.append(svg("text", { x: x(v), y: H - PAD.bottom + 16, class: "tick", "text-anchor": "middle" }, `${Math.round(100 * v)}%`));
    }
    for (let v = y0; v <= y1 + 1e-9; v += 0.02) {
      root.append(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
      root.append(svg("text", { x: PAD.left - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, `${Math.round(100 * v)}%`));
    }
    root.append(svg("text", { x: (PAD.left + W - PAD.right) / 2, y: H - 6, class: "axis", "text-anchor": "middle" }, "final source-task accuracy: what fine-tuning kept"));
    root.append(svg("text", { x: 12, y: (PAD.top + H - PAD.bottom) / 2, class: "axis", "text-anchor": "middle", transform: `rotate(-90 12 ${(PAD.top + H - PAD.bottom) / 2})` }, "final target accuracy"));

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
      mark.classList.add("point");
      Object.assign(mark.dataset, { keep: p.keep, strength: p.keep_strength, ratio: p.body_lr_ratio });
      mark.setAttribute("tabindex", "0");
      mark.setAttribute("role", "button");
      mark.setAttribute("aria-label", `${this.name(p)}: ${this.numbers(p)}. Load it into the race.`);
      mark.append(svg("title", {}, `${this.name(p)}: ${this.numbers(p)}`));
      const describe = () => (this.readout.textContent = `${this.name(p)}: ${this.numbers(p)}. Click to race it.`);
      mark.addEventListener("pointerenter", describe);
      mark.addEventListener("focus", describe);
      mark.addEventListener("pointerleave", () => this.describe());
      mark.addEventListener("blur", () => this.describe());
      mark.addEventListener("click", () => this.pick(p));
      mark.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          this.pick(p);
        }
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
      const same = state.frozen === 0 && state.keep === keep && state.body_lr_ratio === Number(ratio) && (keep === "none" || state.keep_strength === Number(strength));
      m.classList.toggle("current", same);
    }
  }

  pick(p) {
    const race = this.sweep.scenario.race || {};
    const strength = p.keep === "none" ? {} : { keep_strength: p.keep_strength };
    this.onPick({ ...race, frozen: 0, keep: p.keep, body_lr_ratio: p.body_lr_ratio, ...strength }, this.name(p));
  }
}

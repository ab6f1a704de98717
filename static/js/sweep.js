// "The head start, plotted": final accuracy against data size from the shipped sweep
// (GET api/sweep). Hover a size to read the numbers; click it to load it into the race.

import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";
import { axisStyle, colourOf } from "./chart.js";
import { percent } from "./format.js";
import { api } from "./api.js";

// Thousands as "1k", "2k"… where the axis is too narrow for four-digit labels side by side.
const sizeLabel = (v, width) => (v == null ? "" : width < 520 && v >= 1000 ? `${v / 1000}k` : String(v));

export class SweepPanel {
  constructor(root, { readout, onPick, currentN, labels }) {
    this.root = root;
    this.labels = labels;
    this.readout = readout;
    this.onPick = onPick;
    this.currentN = currentN;
    this.plot = null;
  }

  // The sweep of one source's body; false where none is shipped.
  async load(source) {
    const response = await fetch(api.sweep(source));
    if (!response.ok) return false; // no shipped sweep: the panel stays hidden
    this.sweep = await response.json();
    this.strategies = [...new Set(this.sweep.points.map((p) => p.strategy))];
    this.ns = [...new Set(this.sweep.points.map((p) => p.n))].sort((a, b) => a - b);
    this.at = (s, n) => this.sweep.points.find((p) => p.strategy === s && p.n === n);
    return true;
  }

  // Drawn only once visible: a hidden panel measures zero wide, and a fallback width
  // would overflow a phone's screen until the first resize.
  show() {
    this.root.setAttribute("aria-label", this.label());
    this.observer ??= new ResizeObserver(() => this.resize());
    this.observer.observe(this.root);
    this.render();
    this.describe(null);
  }

  // Columns: n, then per strategy its mean, its seed maximum and its seed minimum (the band).
  data() {
    const cols = [this.ns];
    for (const s of this.strategies) {
      for (const key of ["mean", "hi", "lo"]) cols.push(this.ns.map((n) => this.at(s, n)?.[key] ?? null));
    }
    return cols;
  }

  options() {
    const axis = axisStyle();
    const series = [{}];
    const bands = [];
    this.strategies.forEach((s, i) => {
      const colour = colourOf(s);
      series.push({ label: this.labels[s], stroke: colour, width: 2.5, points: { show: true, size: 7, fill: colour } });
      series.push({ stroke: "transparent", points: { show: false } }, { stroke: "transparent", points: { show: false } });
      bands.push({ series: [2 + 3 * i, 3 + 3 * i], fill: `${colour}2e` });
    });
    const width = this.root.clientWidth || 600;
    return {
      width,
      height: Math.max(200, Math.min(340, Math.round(width * 0.42))),
      series,
      bands,
      legend: { show: false },
      scales: { x: { time: false, distr: 3, range: (_, lo, hi) => [lo / 1.25, hi * 1.25] }, y: { range: [0, 1] } },
      axes: [
        { ...axis, label: "target training images (log scale)", splits: () => this.ns, filter: (_, splits) => splits, values: (u, t) => t.map((v) => sizeLabel(v, u.width)) },
        { ...axis, values: (_, ticks) => ticks.map((v) => `${Math.round(100 * v)}%`), size: 56 },
      ],
      cursor: { points: { size: 10 }, drag: { x: false, y: false } },
      hooks: {
        setCursor: [(u) => this.describe(u.cursor.idx)],
        draw: [(u) => this.markCurrent(u)],
        ready: [(u) => u.over.addEventListener("click", () => this.pick(u.cursor.idx))],
      },
    };
  }

  render() {
    if (this.plot) this.plot.destroy();
    const options = this.options();
    this.axisFont = options.axes[0].font; // before uPlot rewrites it for the pixel ratio
    this.plot = new uPlot(options, this.data(), this.root);
    this.plot.over.style.cursor = "pointer";
    this.plot.over.title = "Click to load this data size into the race";
  }

  resize() {
    if (!this.plot) return;
    if (axisStyle().font !== this.axisFont) return this.render(); // the page's text grew or shrank with the screen
    const { width, height } = this.options();
    if (Math.abs(width - this.plot.width) > 2) this.plot.setSize({ width, height });
  }

  // The race's current n, as a dashed line: where the next race sits on the big picture.
  markCurrent(u) {
    const n = this.currentN();
    if (n < this.ns[0] / 1.25 || n > this.ns.at(-1) * 1.25) return;
    const x = Math.round(u.valToPos(n, "x", true));
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--oxblood").trim();
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5 * devicePixelRatio;
    ctx.beginPath();
    ctx.moveTo(x, u.bbox.top);
    ctx.lineTo(x, u.bbox.top + u.bbox.height);
    ctx.stroke();
    ctx.restore();
  }

  refresh() {
    this.plot?.redraw(false);
  }

  describe(idx) {
    const seeds = this.sweep.seeds;
    if (idx == null) {
      const source = this.sweep.scenario.race?.source;
      const from = source ? `, the body pretrained ${source}` : "";
      this.readout.textContent = `Final test accuracy after ${this.epochs()} epochs${from}; line: mean of ${seeds} seeds, band: lowest to highest. Hover a size for the numbers, click it to race it.`;
      return;
    }
    const n = this.ns[idx];
    this.readout.textContent = `n = ${n.toLocaleString("en")}: ${this.atSize(n).join(" · ")}`;
  }

  // Each strategy's mean and seed range at ``n``, as the readout and the picture's label say it.
  // The range to the same tenth as the mean: rounded to whole points, a mean of 91.9 could sit
  // outside its own "92–93 %".
  atSize(n) {
    return this.strategies.map((s) => {
      const p = this.at(s, n);
      return `${this.labels[s]} ${percent(p.mean)} (${(100 * p.lo).toFixed(1)}–${percent(p.hi)})`;
    });
  }

  // The picture in words, for a screen reader: where the sweep starts and where it ends.
  label() {
    const ends = [this.ns[0], this.ns.at(-1)].map((n) => `With ${n.toLocaleString("en")} images: ${this.atSize(n).join(", ")}.`);
    return `Final test accuracy after ${this.epochs()} epochs against the number of target images, mean of ${this.sweep.seeds} seeds (lowest–highest). ${ends.join(" ")}`;
  }

  // How long each race of the sweep trained.
  epochs() {
    return this.sweep.scenario.race?.epochs ?? "the default";
  }

  pick(idx) {
    if (idx == null) return;
    const race = this.sweep.scenario.race || {};
    this.onPick({ ...race, n: this.ns[idx], locked: this.sweep.locked });
  }
}

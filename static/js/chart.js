// The racing curves: one line per strategy, plus the previous race as faint lines.
// A tiny API (startRace, add, setMetric, setX, png) over the vendored uPlot.

import uPlot from "../vendor/uplot-1.6.32/uPlot.esm.js";

// A strategy's line colour, from the page's CSS custom properties (``--scratch``), which the
// server writes from its one table of the strategies.
export function colourOf(strategy) {
  return getComputedStyle(document.documentElement).getPropertyValue(`--${strategy}`).trim() || "#888";
}
const METRICS = {
  test_acc: { label: "Test accuracy", percent: true },
  train_acc: { label: "Train accuracy", percent: true },
  train_loss: { label: "Train loss", percent: false },
  source_acc: { label: "Source-task accuracy", percent: true },
};

// Both charts' axes. Their text follows the page's own size, which grows with the screen:
// uPlot's fixed 10 px would be the smallest text on a projected page, on the figure the class
// is looking at.
export function axisStyle() {
  const body = getComputedStyle(document.body);
  const px = Math.max(10, Math.round(0.75 * parseFloat(body.fontSize)));
  return {
    stroke: body.getPropertyValue("--ink").trim() || "#222",
    grid: { stroke: "#0000001a", width: 1 },
    font: `${px}px ${body.fontFamily}`,
    labelFont: `700 ${px}px ${body.fontFamily}`,
    labelSize: px + 10,
  };
}

// One metric value as the legend and the exported picture both write it.
function formatValue(metric, v) {
  return v == null ? "–" : METRICS[metric].percent ? `${(100 * v).toFixed(1)} %` : v.toFixed(3);
}

export class RaceChart {
  // ``strategies``: [{name, label, extra}], in racing order, from /api/config; the extra
  // lanes are drawn only in a race that adds them (``setLanes``).
  constructor(root, strategies) {
    this.root = root;
    this.all = strategies;
    this.strategies = strategies.filter((s) => !s.extra).map((s) => s.name);
    this.labels = Object.fromEntries(strategies.map((s) => [s.name, s.label]));
    this.current = [];
    this.previous = [];
    this.metric = "test_acc";
    this.x = "epoch";
    // How many epochs the race runs: the epoch axis spans them from the start, so the curves
    // race across a fixed track instead of the axis rescaling every round.
    this.epochs = null;
    this.plot = null;
    this.pending = 0; // an animation frame that will draw the epochs added since the last draw
    new ResizeObserver(() => this.resize()).observe(root);
    window.addEventListener("resize", () => this.resize()); // a taller or shorter screen, same width
    this.render();
  }

  // The lanes raced: the three, and the extra ones in ``extra``. A legend entry for each.
  setLanes(extra = []) {
    const lanes = this.all.filter((s) => !s.extra || extra.includes(s.name)).map((s) => s.name);
    if (lanes.join() === this.strategies.join()) return;
    this.strategies = lanes;
    this.render();
  }

  startRace(epochs = this.epochs) {
    if (this.current.length) this.previous = this.current;
    this.epochs = epochs;
    // The series list depends on whether there is a previous race: rebuild, not just refresh.
    this.current = [];
    this.render();
  }

  // A race was accepted (the page's own, or one it watches): it runs `epochs` epochs, none drawn yet.
  beginRace(epochs) {
    // Already drawn so by startRace: spare the CPU a redraw while the race builds its models.
    if (!this.current.length && epochs === this.epochs) return;
    this.current = [];
    this.epochs = epochs;
    this.render();
  }

  // The next race's epochs, while the chart shows none: the empty axis already spans the track
  // the curves will run along, and follows the Epochs field until a race begins.
  expectEpochs(epochs) {
    if (!this.current.length) this.beginRace(epochs);
  }

  add(epoch) {
    this.current.push(epoch);
    // Epochs come in bursts (a round of the strategies, a replayed race): draw once a frame,
    // since each draw repaints the whole canvas on the CPU that may be training them.
    this.pending ||= requestAnimationFrame(() => {
      this.pending = 0;
      this.update();
    });
  }

  setMetric(metric) {
    this.metric = metric;
    this.render();
  }

  setX(x) {
    this.x = x;
    this.render();
  }

  hasPrevious() {
    return this.previous.length > 0;
  }

  // The chart as a picture that stands on its own on a slide: an opaque background, a title
  // naming the metric and what was raced, and a legend with each line's latest value
  // (uPlot's legend is HTML, not part of its canvas).
  png(race) {
    const title = `${METRICS[this.metric].label}: ${race}`;
    const plot = this.plot.ctx.canvas;
    const px = uPlot.pxRatio;
    const pad = 16 * px;
    const top = pad + 30 * px;
    const out = document.createElement("canvas");
    out.width = plot.width + 2 * pad;
    out.height = top + plot.height + 36 * px + pad;
    const ctx = out.getContext("2d");
    const ink = axisStyle().stroke;
    const font = getComputedStyle(document.body).fontFamily;
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, out.width, out.height);
    ctx.fillStyle = ink;
    ctx.textBaseline = "middle";
    ctx.font = `700 ${16 * px}px ${font}`;
    ctx.fillText(title, pad, pad + 10 * px, out.width - 2 * pad);
    ctx.drawImage(plot, pad, top);

    let x = pad;
    const y = top + plot.height + 20 * px;
    ctx.font = `${13 * px}px ${font}`;
    const entries = this.strategies.map((s) => {
      const last = this.latest(s);
      const value = last ? ` ${formatValue(this.metric, last[this.metric])}` : "";
      return { colour: colourOf(s), text: `${this.labels[s]}${value}`, dash: [] };
    });
    if (this.hasPrevious()) entries.push({ colour: "#888", text: "previous race", dash: [6 * px, 4 * px] });
    for (const { colour, text, dash } of entries) {
      ctx.strokeStyle = colour;
      ctx.lineWidth = 3 * px;
      ctx.setLineDash(dash);
      ctx.beginPath();
      ctx.moveTo(x, y);
      ctx.lineTo(x + 22 * px, y);
      ctx.stroke();
      ctx.fillStyle = ink;
      ctx.fillText(text, x + 28 * px, y);
      x += 28 * px + ctx.measureText(text).width + 22 * px;
    }
    return out.toDataURL("image/png");
  }

  latest(strategy) {
    return this.current.findLast((e) => e.strategy === strategy);
  }

  // What the picture shows, in words, for a screen reader: the canvas says nothing, and the
  // legend is inside the picture's role. Kept current, not announced: the status line does that.
  describe() {
    const { label } = METRICS[this.metric];
    const count = ["", "one", "two", "three", "four", "five"][this.strategies.length] || this.strategies.length;
    const reached = Math.max(0, ...this.current.map((e) => e.epoch));
    const values = this.strategies.flatMap((s) => this.latest(s) ?? []).map((e) => `${this.labels[e.strategy]} ${formatValue(this.metric, e[this.metric])}`);
    const of = this.epochs ? ` of ${this.epochs}` : "";
    this.root.setAttribute("aria-label", reached
      ? `${label} of the ${count} strategies after epoch ${reached}${of}: ${values.join(", ")}.`
      : `${label} of the ${count} strategies: no epochs yet.`);
  }

  // uPlot wants one shared x column: join each line's own (x, y) table.
  data() {
    const tables = [];
    for (const epochs of this.hasPrevious() ? [this.current, this.previous] : [this.current]) {
      for (const s of this.strategies) {
        const points = epochs.filter((e) => e.strategy === s);
        tables.push([points.map((e) => e[this.x]), points.map((e) => e[this.metric])]);
      }
    }
    const data = uPlot.join(tables);
    return data[0].length ? data : [[], ...tables.map(() => [])];
  }

  // The race's own epochs, or the previous race's where that ran longer, so its lines stay whole.
  epochRange() {
    const last = Math.max(this.epochs ?? 1, ...this.previous.map((e) => e.epoch));
    return last > 1 ? [1, last] : [0.5, 1.5];
  }

  options() {
    const m = METRICS[this.metric];
    const fmt = (v) => formatValue(this.metric, v);
    // Off the chart, the legend reads out where each line has got to rather than dashes.
    const latest = (u, sidx) => u.data[sidx].findLast((v) => v != null) ?? null;
    const line = (s, ghost) => ({
      label: ghost ? `${this.labels[s]} (previous)` : this.labels[s],
      stroke: ghost ? `${colourOf(s)}55` : colourOf(s),
      width: ghost ? 1.5 : 3,
      dash: ghost ? [6, 4] : undefined,
      spanGaps: true,
      value: (u, v, sidx, idx) => fmt(idx == null ? latest(u, sidx) : v),
      points: { show: !ghost, size: 7 },
      show: true,
    });
    const series = [
      {
        label: this.x === "epoch" ? "epoch" : "compute s",
        value: (u, v, _, idx) => (idx == null ? (u.data[0].length ? "latest" : "–") : v == null ? "–" : this.x === "epoch" ? v : v.toFixed(2)),
      },
      ...this.strategies.map((s) => line(s, false)),
      ...(this.hasPrevious() ? this.strategies.map((s) => line(s, true)) : []),
    ];
    const axis = axisStyle();
    return {
      ...this.size(),
      series,
      scales: {
        x: this.x === "epoch" ? { time: false, range: () => this.epochRange() } : { time: false },
        y: m.percent ? { range: [0, 1] } : { range: (_, lo, hi) => [0, Math.max(hi ?? 1, 0.5) * 1.05] },
      },
      axes: [
        {
          ...axis,
          label: this.x === "epoch" ? "epoch" : "compute seconds (each strategy's own)",
          ...(this.x === "epoch" ? { incrs: [1, 2, 5, 10, 20, 50] } : {}),
        },
        { ...axis, values: (_, ticks) => ticks.map((v) => (m.percent ? `${Math.round(100 * v)}%` : v.toFixed(2))), size: 56 },
      ],
      legend: { live: true },
      cursor: { points: { size: 9 } },
    };
  }

  render() {
    cancelAnimationFrame(this.pending); // a new plot draws every epoch so far
    this.pending = 0;
    if (this.plot) this.plot.destroy();
    const options = this.options();
    this.axisFont = options.axes[0].font; // before uPlot rewrites it for the pixel ratio
    this.plot = new uPlot(options, this.data(), this.root);
    this.describe();
  }

  update() {
    this.plot.setData(this.data());
    this.describe();
  }

  // Half as tall as wide, within bounds; and on a projector's 720 or 768 lines, short enough that
  // the whole chart, its axis and legend, shows under the strip without scrolling. A chart that
  // starts below the first screen (one column, on a phone) keeps its proportions.
  size() {
    const width = this.root.clientWidth || 600;
    const least = document.body.classList.contains("embed") ? 170 : 220;
    let height = Math.min(460, Math.round(width * 0.5));
    // The screen's height without a phone's or tablet's toolbar (the root element's, not the
    // window's), so a toolbar folding away as the page scrolls does not resize the chart.
    const screen = document.documentElement.clientHeight;
    const top = this.root.getBoundingClientRect().top + window.scrollY;
    const legend = this.plot?.root.querySelector(".u-legend")?.offsetHeight || 40;
    if (top < screen) height = Math.min(height, screen - top - legend - 24);
    return { width, height: Math.max(least, height) };
  }

  resize() {
    if (!this.plot) return;
    if (axisStyle().font !== this.axisFont) return this.render(); // the page's text grew or shrank with the screen
    const { width, height } = this.size();
    if (Math.abs(width - this.plot.width) > 2 || Math.abs(height - this.plot.height) > 2) this.plot.setSize({ width, height });
  }
}

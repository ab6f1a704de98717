// Small SVG plots drawn by hand (the trade-off and layer-by-layer panels): an element maker,
// round bounds, and a plot area with its grid, ticks and axis titles.

const NS = "http://www.w3.org/2000/svg";

export function svg(tag, attributes = {}, text = null) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  if (text !== null) el.textContent = text;
  return el;
}

// Round bounds a little outside the values (fractions), in steps of ``step`` points, at most 100 %.
export function bounds(values, step) {
  const lo = Math.floor((Math.min(...values) * 100 - 1) / step) * step;
  const hi = Math.min(100, Math.ceil((Math.max(...values) * 100 + 1) / step) * step);
  return [lo / 100, hi / 100];
}

// A plot area inside ``box`` ({left, top, width, height}): scales, grid, ticks and axis titles.
// ``x`` and ``y``: {lo, hi, ticks: [values], label: v => text, title}. Returns the scales.
export function frame(root, box, x, y) {
  const sx = (v) => box.left + ((v - x.lo) / (x.hi - x.lo)) * box.width;
  const sy = (v) => box.top + box.height - ((v - y.lo) / (y.hi - y.lo)) * box.height;
  const bottom = box.top + box.height;
  for (const v of x.ticks) {
    root.append(svg("line", { x1: sx(v), x2: sx(v), y1: box.top, y2: bottom, class: "grid" }));
    root.append(svg("text", { x: sx(v), y: bottom + 16, class: "tick", "text-anchor": "middle" }, x.label(v)));
  }
  for (const v of y.ticks) {
    root.append(svg("line", { x1: box.left, x2: box.left + box.width, y1: sy(v), y2: sy(v), class: "grid" }));
    root.append(svg("text", { x: box.left - 6, y: sy(v) + 4, class: "tick", "text-anchor": "end" }, y.label(v)));
  }
  if (x.title) root.append(svg("text", { x: box.left + box.width / 2, y: bottom + 34, class: "axis", "text-anchor": "middle" }, x.title));
  if (y.title) {
    const cy = box.top + box.height / 2;
    root.append(svg("text", { x: 12, y: cy, class: "axis", "text-anchor": "middle", transform: `rotate(-90 12 ${cy})` }, y.title));
  }
  return { sx, sy };
}

// Every ``step`` from lo to hi, as fractions.
export function steps(lo, hi, step) {
  const out = [];
  for (let v = lo; v <= hi + 1e-9; v += step) out.push(Math.round(v * 1e6) / 1e6);
  return out;
}

// A mark a person can point at or tab to: its numbers in the readout, a click or Enter to pick it.
export function pickable(mark, { label, describe, leave, pick }) {
  mark.classList.add("point");
  mark.setAttribute("tabindex", "0");
  mark.setAttribute("role", "button");
  mark.setAttribute("aria-label", label);
  mark.append(svg("title", {}, label));
  mark.addEventListener("pointerenter", describe);
  mark.addEventListener("focus", describe);
  mark.addEventListener("pointerleave", leave);
  mark.addEventListener("blur", leave);
  mark.addEventListener("click", pick);
  mark.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      pick();
    }
  });
  return mark;
}

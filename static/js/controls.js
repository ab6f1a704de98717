// The controls: one per race field, built from /api/config's field table and bound to the
// state. A field's `control` says which kind: "units" (the lock slider), "size" (the data
// slider), "log" (a log-scaled slider), "count" (a plain slider), "choice" (a menu), "checks"
// (a box per option) or "number" (a field); its `group` says where it goes ("basic", "keep",
// "extra", "advanced", "task"); `moot_when` and `needs`, when it has no effect. An option
// this server cannot train (a body whose weights are missing) stays in its menu, disabled,
// saying what is missing.

import { show } from "./state.js";

const N_STEPS = 1000;

// Log-scaled sliders: 25→50 images is as far as 2,500→5,000. Whole numbers stay whole; the
// rest keep three significant digits, so a strength reads 0.0316, not 0.031622776.
export function fromSlider(t, range, whole) {
  const lo = Math.log(range.min);
  const hi = Math.log(range.max);
  const v = Math.exp(lo + ((hi - lo) * t) / N_STEPS);
  return whole ? Math.round(v) : Math.min(range.max, Math.max(range.min, Number(v.toPrecision(3))));
}

export function toSlider(v, range) {
  const lo = Math.log(range.min);
  const hi = Math.log(range.max);
  return Math.round((N_STEPS * (Math.log(v) - lo)) / (hi - lo));
}

export function describeN(n, classes) {
  const per = Math.floor(n / classes);
  return `${n.toLocaleString("en")} images · ${per.toLocaleString("en")}${n % classes ? "+" : ""} per class`;
}

export function describeLocked(k, units) {
  if (k === 0) return "0 units · everything trains";
  return `${k} unit${k > 1 ? "s" : ""} · ${units.slice(0, k).map((u) => u.label).join(", ")}`;
}

const NOT_RECORDED = "This site holds no race recorded that way: it replays only what its bake recorded.";
const sentence = (text) => `${text.replace(/^./, (c) => c.toUpperCase())}.`;

function element(tag, attributes = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) el.setAttribute(name, value);
  el.append(...children);
  return el;
}

export class Controls {
  // ``roots``: the element of each group ({basic, advanced}); ``table``: the StateTable.
  constructor(config, table, state, roots, { onChange, onProblem }) {
    this.config = config;
    this.table = table;
    this.state = state;
    this.onChange = onChange;
    this.onProblem = onProblem;
    this.body = config.units.filter((u) => u.name !== "head");
    this.classes = config.classes.length;
    this.inputs = {};
    this.sliders = {}; // name → how it reads and shows its value
    this.abouts = {}; // a menu's name → the line that describes its chosen option
    this.checks = {}; // a set's name → its box per option
    let row = null;
    for (const field of table.fields) {
      const root = roots[field.group];
      if (field.control === "choice") {
        root.append(this.choiceField(field));
        row = null;
      } else if (field.control === "checks") {
        root.append(this.checksField(field));
        row = null;
      } else if (field.control === "number") {
        const box = this.numberField(field);
        // A group's basic number fields sit side by side, as the sliders' small companions.
        if (field.group === "basic") {
          row ??= root.appendChild(element("div", { class: "row" }));
          row.append(box);
        } else root.append(box);
      } else {
        root.append(this.sliderField(field));
        row = null;
      }
    }
    this.show();
  }

  numberField(field) {
    const input = element("input", { type: "number", id: field.name, name: field.name, min: field.min, max: field.max, title: sentence(field.help) });
    if (field.kind === "int") input.setAttribute("inputmode", "numeric");
    else input.step = "any";
    input.addEventListener("change", () => {
      const { value, problem } = this.table.fit(field.name, input.value);
      this.set(field.name, value);
      if (problem) this.onProblem(problem);
    });
    this.inputs[field.name] = input;
    // The advanced group hides as one (hide=advanced); a basic field hides by its own name.
    const hideable = field.group === "basic" ? { "data-control": field.name } : {};
    return element("div", { class: "field small", ...hideable }, element("label", { for: field.name }, field.label), input);
  }

  // A menu; under it, the chosen option's own one-line description, then the field's help.
  choiceField(field) {
    const select = element("select", { id: field.name, name: field.name, title: sentence(field.help), "aria-describedby": `${field.name}-about` });
    for (const option of field.options) {
      // On a baked page, an option no race was recorded with stays in the menu, saying why it cannot be chosen.
      const recorded = this.table.snap(field.name, option.value) === option.value;
      const missing = option.unavailable ? ` ${sentence(option.unavailable.replace(/\.$/, ""))}` : "";
      const title = sentence(option.description) + (recorded ? "" : ` ${NOT_RECORDED}`) + missing;
      const label = !recorded ? `${option.label} (not recorded)` : option.unavailable ? `${option.label} (not installed)` : option.label;
      select.appendChild(element("option", { value: option.value, title }, label)).disabled = !recorded || Boolean(option.unavailable);
    }
    select.addEventListener("change", () => {
      const { value, problem } = this.table.fit(field.name, select.value);
      this.set(field.name, value);
      if (problem) this.onProblem(problem);
    });
    this.inputs[field.name] = select;
    const about = element("p", { class: "about", id: `${field.name}-about` });
    this.abouts[field.name] = { about, options: field.options };
    return element(
      "div",
      { class: "field", "data-control": field.name },
      element("label", { for: field.name }, field.label),
      select,
      about,
      element("p", { class: "hint" }, sentence(field.help)),
    );
  }

  // A box per option (the lanes a race adds), each with its colour and its one-line description.
  checksField(field) {
    const boxes = {};
    const group = element("div", { class: "field", role: "group", "aria-label": field.label });
    for (const option of field.options) {
      const id = `${field.name}-${option.value}`;
      const box = element("input", { type: "checkbox", id, name: field.name, value: option.value });
      box.addEventListener("change", () => {
        const chosen = field.options.map((o) => o.value).filter((v) => boxes[v].checked);
        // On a baked page, the recorded set nearest what was ticked, keeping this box as ticked.
        const near = field.recorded ? this.table.nearestSet(field, chosen, { lane: option.value, has: box.checked }) : chosen;
        const { value, problem } = this.table.fit(field.name, near.join(","));
        this.set(field.name, value);
        if (problem) this.onProblem(problem);
        const lanes = (set) => (set.length ? set.join(" and ") : "no extra lane");
        if (!problem && near !== chosen) this.onProblem(`This site recorded races with ${lanes(value)}, not with ${lanes(chosen)}: showing the nearest.`);
      });
      boxes[option.value] = box;
      const label = element("label", { for: id }, element("span", { class: "swatch", "aria-hidden": "true" }), option.label);
      group.append(element("div", { class: `lane s-${option.value}` }, box, label, element("p", { class: "hint" }, sentence(option.description))));
    }
    this.checks[field.name] = boxes;
    return group;
  }

  sliderField(field) {
    const output = element("output", { id: `${field.name}-out`, for: field.name });
    const input = element("input", { type: "range", id: field.name, name: field.name, step: "1" });
    const log = field.control === "size" || field.control === "log";
    // Log sliders run over N_STEPS positions; the units slider over the units themselves.
    const range = () => this.table.field(field.name);
    const whole = field.kind === "int";
    const text = { size: (v) => describeN(v, this.classes), units: (v) => describeLocked(v, this.body), log: show, count: show }[field.control];
    const slider = log
      ? { read: () => fromSlider(Number(input.value), range(), whole), position: (v) => toSlider(v, range()), text }
      : { read: () => Number(input.value), position: (v) => v, text };
    if (log) Object.assign(input, { min: 0, max: N_STEPS });
    else Object.assign(input, { min: field.min, max: field.max });
    input.addEventListener("input", () => this.set(field.name, this.table.snap(field.name, slider.read())));
    this.inputs[field.name] = input;
    this.sliders[field.name] = { ...slider, output };
    return element(
      "div",
      { class: "field", "data-control": field.name },
      element("label", { for: field.name }, `${field.label} `, output),
      input,
      element("p", { class: "hint" }, sentence(field.help)),
    );
  }

  // An option a menu gains while the page is open (an uploaded dataset), or loses.
  addOption(name, option) {
    const field = this.table.field(name);
    if (!field.options.some((o) => o.value === option.value)) field.options.push(option);
    if (![...this.inputs[name].options].some((o) => o.value === option.value)) {
      this.inputs[name].append(element("option", { value: option.value, title: sentence(option.description) }, option.label));
    }
  }

  removeOption(name, value) {
    const field = this.table.field(name);
    field.options.splice(field.options.findIndex((o) => o.value === value) >>> 0, 1);
    [...this.inputs[name].options].find((o) => o.value === value)?.remove();
    if (this.state[name] === value) this.set(name, field.default);
  }

  // The chosen body's units and the chosen dataset's class count, for the sliders' readings.
  setTask(units, classes) {
    this.body = units.filter((u) => u.name !== "head");
    this.classes = classes.length;
    this.show();
  }

  set(name, value) {
    this.state[name] = value;
    this.show();
    this.onChange(name);
  }

  // Reflect the state into every control (after a URL load or a watched race's config).
  show() {
    for (const [name, boxes] of Object.entries(this.checks)) {
      for (const [value, box] of Object.entries(boxes)) {
        box.checked = this.state[name].includes(value);
        // On a baked page: a box no recorded set would let change is shown, fixed, saying why.
        const field = this.table.field(name);
        const possible = !field.recorded || field.recorded.some((r) => r.includes(value) !== box.checked);
        box.disabled = this.disabled || !possible;
        box.parentElement.title = possible ? "" : NOT_RECORDED;
      }
    }
    for (const [name, input] of Object.entries(this.inputs)) {
      input.disabled = this.disabled || this.moot(name) || this.table.fixed(name);
      const slider = this.sliders[name];
      if (!slider) {
        input.value = this.state[name];
        const menu = this.abouts[name];
        if (menu) menu.about.textContent = sentence(menu.options.find((o) => o.value === this.state[name])?.description ?? "");
        continue;
      }
      input.value = slider.position(this.state[name]);
      const note = this.moot(name) ? " (no effect)" : this.table.fixed(name) ? " (the one value recorded)" : "";
      const text = `${slider.text(this.state[name])}${note}`;
      slider.output.textContent = text;
      input.setAttribute("aria-valuetext", text);
    }
  }

  // A field with no effect as the others stand (a strength with no regulariser chosen).
  moot(name) {
    const { moot_when: when, needs } = this.table.field(name);
    if (needs && !Object.entries(needs).every(([other, value]) => (this.state[other] ?? []).includes(value))) return true;
    return Boolean(when) && Object.entries(when).every(([other, value]) => this.state[other] === value);
  }

  setDisabled(disabled) {
    this.disabled = disabled;
    this.show();
  }
}

// What only a server can do: class races (a code, a broadcast) and the list of recent races.
const NEEDS_A_SERVER = ["broadcast", "join", "recent", "upload"];

// Hide the controls a link names (`hide=seed,advanced`); a name the page does not know is a
// problem for the status line, so an author testing an embed sees a misspelt one at once.
// ``also``: names hidden without being written to links (the controls a lesson leaves out).
export function hideControls(ui, recorded, also = []) {
  const hidden = [...ui.hide, ...(recorded ? NEEDS_A_SERVER : []), ...also];
  for (const name of hidden) document.querySelectorAll(`[data-control="${CSS.escape(name)}"]`).forEach((el) => (el.hidden = true));
  const hideable = [...new Set([...document.querySelectorAll("[data-control]")].map((el) => el.dataset.control))].sort();
  const unknown = [...ui.hide].filter((name) => !hideable.includes(name));
  if (unknown.length) ui.problems.push(`hide= names nothing called ${unknown.map((n) => `"${n}"`).join(", ")}; it can hide ${hideable.join(", ")}.`);
}

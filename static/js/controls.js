// The controls: sliders and fields bound to the state, with limits from /api/config.

import { fit, RACE_FIELDS } from "./state.js";

const N_STEPS = 1000;

// The data slider is log-scaled: 25→50 is as far as 2,500→5,000.
export function nFromSlider(t, range) {
  const lo = Math.log(range.min);
  const hi = Math.log(range.max);
  return Math.round(Math.exp(lo + ((hi - lo) * t) / N_STEPS));
}

export function sliderFromN(n, range) {
  const lo = Math.log(range.min);
  const hi = Math.log(range.max);
  return Math.round((N_STEPS * (Math.log(n) - lo)) / (hi - lo));
}

export function describeN(n, classes) {
  const per = Math.floor(n / classes);
  return `${n.toLocaleString("en")} images · ${per.toLocaleString("en")}${n % classes ? "+" : ""} per class`;
}

export function describeFrozen(k, units) {
  if (k === 0) return "0 units · everything trains";
  return `${k} unit${k > 1 ? "s" : ""} · ${units.slice(0, k).map((u) => u.label).join(", ")}`;
}

export class Controls {
  constructor(config, state, onChange, onProblem) {
    this.config = config;
    this.state = state;
    this.onChange = onChange;
    this.onProblem = onProblem;
    this.body = config.units.filter((u) => u.name !== "head");
    const { limits } = config;
    this.frozen = document.getElementById("frozen");
    this.frozen.min = limits.frozen.min;
    this.frozen.max = limits.frozen.max;
    this.n = document.getElementById("n");
    for (const name of ["epochs", "seed", "lr_scratch", "lr_head", "body_lr_ratio"]) {
      const input = document.getElementById(name);
      input.min = limits[name].min;
      input.max = limits[name].max;
      input.addEventListener("change", () => this.readNumber(name, input));
    }
    this.frozen.addEventListener("input", () => this.set("frozen", Number(this.frozen.value)));
    this.n.addEventListener("input", () => this.set("n", nFromSlider(Number(this.n.value), limits.n)));
    this.show();
  }

  readNumber(name, input) {
    const { value, problem } = fit(name, input.value, this.config.limits[name]);
    this.set(name, value);
    if (problem) this.onProblem(problem);
  }

  set(name, value) {
    this.state[name] = value;
    this.show();
    this.onChange(name);
  }

  // Reflect the state into every control (after a URL load or a watched race's config).
  show() {
    const s = this.state;
    this.frozen.value = s.frozen;
    const frozenText = describeFrozen(s.frozen, this.body);
    document.getElementById("frozen-out").textContent = frozenText;
    this.frozen.setAttribute("aria-valuetext", frozenText);
    this.n.value = sliderFromN(s.n, this.config.limits.n);
    const nText = describeN(s.n, this.config.classes.length);
    document.getElementById("n-out").textContent = nText;
    this.n.setAttribute("aria-valuetext", nText);
    for (const name of RACE_FIELDS.slice(2)) document.getElementById(name).value = s[name];
  }

  setDisabled(disabled) {
    for (const name of RACE_FIELDS) document.getElementById(name).disabled = disabled;
  }
}

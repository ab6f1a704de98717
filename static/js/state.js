// The page's state as a typed table, in the manner of TensorFlow Playground's State.PROPS: the
// race fields come from /api/config (name, label, kind, range, default), and this table reads
// them from the URL query string and writes them back, with the race configuration's own names
// (?locked=3&n=200&epochs=10&seed=0). Nothing here names a field: a new one needs no edit.

// Whole numbers in full (the largest seed is 2,147,483,647, not 2,147,480,000); rates to six digits.
export const show = (v) => {
  if (typeof v !== "number") return v;
  return v.toLocaleString("en", Number.isInteger(v) ? {} : { maximumSignificantDigits: 6 });
};

export class StateTable {
  // ``fields``: /api/config's list, kept by reference, so a range the server narrows later
  // (a smaller dataset than the settings allow) is the one every reader sees.
  constructor(fields) {
    this.fields = fields;
  }

  get names() {
    return this.fields.map((f) => f.name);
  }

  field(name) {
    return this.fields.find((f) => f.name === name);
  }

  // A number for one race field from what a person typed or a link carried, put inside its
  // limits; ``problem`` says what was wrong and what is allowed, or is null when nothing was.
  fit(name, text) {
    const f = this.field(name);
    const read = { choice: this.choose, set: this.chooseSet }[f.kind] ?? this.number;
    const { value, problem } = read.call(this, f, text);
    const near = this.snap(name, value);
    if (near === value || text === null) return { value: near, problem };
    const say = (v) => (Array.isArray(v) ? v.join(" and ") || "none" : show(v));
    const recorded = `${f.label} ${say(value)} was not recorded on this site; using the nearest recorded, ${say(near)} (recorded: ${f.recorded.map(say).join(", ")}).`;
    return { value: near, problem: problem ? `${problem} ${recorded}` : recorded };
  }

  // On a baked page, the value its races were recorded at nearest to ``value`` (on a log scale
  // for the log sliders' fields); ``value`` itself on a live page, which may train any.
  snap(name, value) {
    const f = this.field(name);
    if (f.kind === "set" && f.recorded) return this.nearestSet(f, value);
    if (!f.recorded || f.recorded.includes(value)) return value;
    if (f.kind === "choice") return f.recorded.includes(f.default) ? f.default : f.recorded[0];
    const log = f.control === "size" || f.control === "log";
    const distance = (v) => (log ? Math.abs(Math.log(v / value)) : Math.abs(v - value));
    return f.recorded.reduce((best, v) => (distance(v) < distance(best) ? v : best));
  }

  // The recorded set closest to ``value`` (most lanes shared, fewest differing); with ``keep``,
  // only sets that hold it, or lack it (``keep.has``): what a person just ticked or unticked stays.
  nearestSet(f, value, keep = null) {
    if (f.recorded.some((r) => r.join() === value.join())) return value;
    const fits = f.recorded.filter((r) => !keep || r.includes(keep.lane) === keep.has);
    const score = (r) => 2 * r.filter((v) => value.includes(v)).length - r.filter((v) => !value.includes(v)).length - value.filter((v) => !r.includes(v)).length;
    return fits.reduce((best, r) => (best === null || score(r) > score(best) ? r : best), null);
  }

  // Whether a baked page recorded one value only: its control then shows it and cannot move.
  fixed(name) {
    return this.field(name).recorded?.length === 1;
  }

  number(f, text) {
    const whole = f.kind === "int";
    const raw = Number(text);
    if (text === null || text.trim() === "" || !Number.isFinite(raw)) {
      const given = text && text.trim() ? `, not "${text}"` : "";
      const problem = text === null ? null : `${f.label} needs a number from ${show(f.min)} to ${show(f.max)}${given}; using the default, ${show(f.default)}.`;
      return { value: f.default, problem };
    }
    const value = Math.min(f.max, Math.max(f.min, whole ? Math.round(raw) : raw));
    if (value === raw) return { value, problem: null };
    const rounding = whole && raw >= f.min && raw <= f.max;
    const why = rounding ? "must be a whole number" : `must be ${show(f.min)}–${show(f.max)}`;
    return { value, problem: `${f.label} ${why}, not ${show(raw)}; using ${show(value)}.` };
  }

  // Several options at once, as a link writes them ("gradual,lora"), kept in racing order.
  chooseSet(f, text) {
    if (text === null) return { value: [...f.default], problem: null };
    const allowed = f.options.map((o) => o.value);
    const asked = text.split(",").map((v) => v.trim()).filter(Boolean);
    const value = allowed.filter((v) => asked.includes(v));
    const unknown = asked.filter((v) => !allowed.includes(v));
    if (!unknown.length) return { value, problem: null };
    const kept = value.length ? `adding ${value.join(", ")}` : "adding none";
    return { value, problem: `${f.label} can be ${allowed.join(", ")}, not ${unknown.map((v) => `"${v}"`).join(", ")}; ${kept}.` };
  }

  choose(f, text) {
    const found = f.options.find((o) => o.value === text);
    if (found || text === null) return { value: found ? found.value : f.default, problem: null };
    const allowed = f.options.map((o) => o.value).join(", ");
    return { value: f.default, problem: `${f.label} must be one of ${allowed}, not "${text}"; using ${f.default}.` };
  }

  // Read the state from the URL, every number inside the server's limits; ``problems`` lists
  // what a hand-edited or stale link asked for that could not be used as it was.
  read(search = window.location.search) {
    const params = new URLSearchParams(search);
    // ``join``: a class code from a /w/CODE link the server did not know (a typo, an ended race).
    // ``lesson``: a guided lesson's id, kept in every link the page writes.
    const state = { hide: new Set(), race: params.get("race") || null, join: params.get("join"), lesson: params.get("lesson"), problems: [] };
    for (const name of this.names) {
      const { value, problem } = this.fit(name, this.given(params, name));
      state[name] = value;
      if (problem) state.problems.push(problem);
    }
    for (const name of (params.get("hide") || "").split(",")) if (name.trim()) state.hide.add(this.current(name.trim()));
    return state;
  }

  // A field's value in a link: under its name, or a name it had before (``former``), which
  // course pages already link with (?frozen=3 is ?locked=3).
  given(params, name) {
    const names = [name, ...(this.field(name).former ?? [])];
    return params.get(names.find((n) => params.has(n)) ?? name);
  }

  // Today's name of a field a link names, by its own name or a former one.
  current(name) {
    return this.fields.find((f) => (f.former ?? []).includes(name))?.name ?? name;
  }

  // The race configuration the state describes, as a `start` message carries it.
  config(state) {
    return Object.fromEntries(this.names.map((name) => [name, state[name]]));
  }

  query(state, { withRace = false } = {}) {
    const params = new URLSearchParams();
    for (const name of this.names) {
      if (Array.isArray(state[name]) && !state[name].length) continue; // no extra lanes: nothing to say
      params.set(name, String(state[name]));
    }
    if (state.lesson) params.set("lesson", state.lesson);
    if (state.hide.size) params.set("hide", [...state.hide].join(","));
    if (withRace && state.race) params.set("race", state.race);
    return params.toString();
  }

  write(state) {
    window.history.replaceState(null, "", `${window.location.pathname}?${this.query(state, { withRace: true })}`);
  }
}

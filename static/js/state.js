// The whole UI state as a typed table, parsed from and written to the URL query string,
// with the same names as the race configuration (?frozen=3&n=200&epochs=10&seed=0).

export const RACE_FIELDS = ["frozen", "n", "epochs", "seed", "lr_scratch", "lr_head", "body_lr_ratio"];
const INT_FIELDS = new Set(["frozen", "n", "epochs", "seed"]);

// As the controls are labelled, so a message points at the one to fix.
const LABELS = { frozen: "Fine-tune locks", n: "Target images", epochs: "Epochs", seed: "Seed",
  lr_scratch: "Scratch's learning rate", lr_head: "New head's learning rate", body_lr_ratio: "Fine-tune body × head" };
// Whole numbers in full (the largest seed is 2,147,483,647, not 2,147,480,000); rates to six digits.
const show = (v) => {
  if (typeof v !== "number") return v;
  return v.toLocaleString("en", Number.isInteger(v) ? {} : { maximumSignificantDigits: 6 });
};

// A number for one race field from what a person typed or a link carried, put inside its
// limits; ``problem`` says what was wrong and what is allowed, or is null when nothing was.
export function fit(name, text, range) {
  const label = LABELS[name] || name;
  const raw = Number(text);
  if (text === null || text.trim() === "" || !Number.isFinite(raw)) {
    const given = text && text.trim() ? `, not "${text}"` : "";
    const problem = text === null ? null : `${label} needs a number from ${show(range.min)} to ${show(range.max)}${given}; using the default, ${show(range.default)}.`;
    return { value: range.default, problem };
  }
  const value = Math.min(range.max, Math.max(range.min, INT_FIELDS.has(name) ? Math.round(raw) : raw));
  if (value === raw) return { value, problem: null };
  const rounding = INT_FIELDS.has(name) && raw >= range.min && raw <= range.max;
  const why = rounding ? "must be a whole number" : `must be ${show(range.min)}–${show(range.max)}`;
  return { value, problem: `${label} ${why}, not ${show(raw)}; using ${show(value)}.` };
}

// Read the state from the URL, every number inside the server's limits; ``problems`` lists
// what a hand-edited or stale link asked for that could not be used as it was.
export function fromUrl(limits, search = window.location.search) {
  const params = new URLSearchParams(search);
  // ``join``: a class code from a /w/CODE link the server did not know (a typo, an ended race).
  const state = { hide: new Set(), race: params.get("race") || null, join: params.get("join"), problems: [] };
  for (const name of RACE_FIELDS) {
    const { value, problem } = fit(name, params.get(name), limits[name]);
    state[name] = value;
    if (problem) state.problems.push(problem);
  }
  for (const name of (params.get("hide") || "").split(",")) if (name) state.hide.add(name.trim());
  return state;
}

export function config(state) {
  return Object.fromEntries(RACE_FIELDS.map((name) => [name, state[name]]));
}

export function query(state, { withRace = false } = {}) {
  const params = new URLSearchParams();
  for (const name of RACE_FIELDS) params.set(name, String(state[name]));
  if (state.hide.size) params.set("hide", [...state.hide].join(","));
  if (withRace && state.race) params.set("race", state.race);
  return params.toString();
}

export function toUrl(state) {
  const url = `${window.location.pathname}?${query(state, { withRace: true })}`;
  window.history.replaceState(null, "", url);
}

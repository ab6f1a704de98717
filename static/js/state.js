// The whole UI state as a typed table, parsed from and written to the URL query string,
// with the same names as the race configuration (?frozen=3&n=200&epochs=10&seed=0).

export const RACE_FIELDS = ["frozen", "n", "epochs", "seed", "lr_scratch", "lr_head", "body_lr_ratio"];
const INT_FIELDS = new Set(["frozen", "n", "epochs", "seed"]);

// Read the state from the URL, clamping every number into the server's limits.
export function fromUrl(limits, search = window.location.search) {
  const params = new URLSearchParams(search);
  const state = { hide: new Set(), race: params.get("race") || null };
  for (const name of RACE_FIELDS) {
    const range = limits[name];
    const raw = Number(params.get(name));
    let value = params.has(name) && Number.isFinite(raw) ? raw : range.default;
    if (INT_FIELDS.has(name)) value = Math.round(value);
    state[name] = Math.min(range.max, Math.max(range.min, value));
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

// Numbers and sentences shared by the strip, the counters, the chart and the page's notes.

export function compact(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)} k`;
  return String(n);
}

export function percent(fraction, digits = 1) {
  return `${(100 * fraction).toFixed(digits)} %`;
}

export function seconds(s) {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

// Seconds as a class would say them: to the nearest 5 s, or to the minute past 90 s.
function roughly(s) {
  return s < 90 ? `about ${Math.round(s / 5) * 5} s` : `about ${Math.round(s / 60)} min`;
}

// How long a race has to go, for a class deciding whether to wait: nothing under a few seconds.
export function timeLeft(s) {
  if (!(s >= 5)) return "";
  const left = roughly(s);
  return `${left[0].toUpperCase()}${left.slice(1)} left`;
}

// How long a queued race should wait before it starts, as the server estimates it.
export function waitFor(s) {
  if (s === null || s === undefined) return "";
  return s < 5 ? "starting in a moment" : `${roughly(s)} to wait`;
}

// Why fine-tune starts slower than frozen: it warms up, by design, to spare the pretrained units.
export function scheduleNote({ warmup_epochs: warm, cosine_decay: cosine }) {
  const parts = [];
  if (warm > 0) parts.push(`Fine-tune ramps its rates up over its first ${warm} epoch${warm === 1 ? "" : "s"}, so the new head's random first steps do not disturb the pretrained units.`);
  if (cosine) parts.push("Every rate then decays along a cosine to zero by the last epoch.");
  return parts.join(" ");
}

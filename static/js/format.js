// Number formatting shared by the strip, the counters and the chart.

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

// How long a race has to go, for a class deciding whether to wait: nothing under a few seconds.
export function timeLeft(s) {
  if (!(s >= 5)) return "";
  if (s < 90) return `About ${Math.round(s / 5) * 5} s left`;
  return `About ${Math.round(s / 60)} min left`;
}

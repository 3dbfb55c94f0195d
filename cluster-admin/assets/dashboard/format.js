// Numbers, durations and sizes for people; "–" for a figure not known yet.

export const NONE = "–";

const known = (x) => x !== null && x !== undefined && Number.isFinite(x);

/** A count with thousands separators. */
export function count(n) {
  return known(n) ? Math.round(n).toLocaleString("en-US") : NONE;
}

/** A rate: 3 significant digits below 100, whole above. */
export function rate(x) {
  if (!known(x)) return NONE;
  if (x === 0) return "0";
  return x >= 100 ? Math.round(x).toLocaleString("en-US") : x.toPrecision(3).replace(/\.?0+$/, "");
}

/** A share (0 to 1) as a percentage. */
export function percent(share) {
  if (!known(share)) return NONE;
  const p = share * 100;
  return (p === 0 ? "0" : p < 0.1 ? "<0.1" : p.toFixed(p < 10 ? 1 : 0)) + " %";
}

/** Milliseconds: 0.42 ms, 12 ms, 1.5 s. */
export function millis(ms) {
  if (!known(ms)) return NONE;
  if (ms < 1) return ms.toFixed(2) + " ms";
  if (ms < 100) return ms.toFixed(1) + " ms";
  if (ms < 1000) return Math.round(ms) + " ms";
  return (ms / 1000).toFixed(ms < 10000 ? 2 : 1) + " s";
}

/** "p50 / p99" in ms. */
export function latencyPair(p50, p99) {
  if (!known(p50) && !known(p99)) return NONE;
  return millis(p50) + " / " + millis(p99);
}

/** An uptime: 45 s, 12 min, 3 h 5 min, 2 d 4 h. */
export function uptime(ms) {
  if (!known(ms)) return NONE;
  const s = Math.floor(ms / 1000);
  if (s < 60) return s + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return m + " min";
  const h = Math.floor(m / 60);
  if (h < 24) return h + " h " + (m % 60) + " min";
  return Math.floor(h / 24) + " d " + (h % 24) + " h";
}

/** Megabytes. */
export function megabytes(mb) {
  if (!known(mb)) return NONE;
  return mb >= 1024 ? (mb / 1024).toFixed(2) + " GB" : mb.toFixed(mb < 10 ? 1 : 0) + " MB";
}

/** CPU in percent of one core. */
export function cpu(p) {
  return known(p) ? p.toFixed(p < 10 ? 1 : 0) + " %" : NONE;
}

/** A clock time (HH:MM:SS) of a Unix time in ms. */
export function clock(ms) {
  const d = new Date(ms);
  const two = (n) => String(n).padStart(2, "0");
  return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
}

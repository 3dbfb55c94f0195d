// The charts: request rate, error rate, p50/p99 latency and memory per slot over the last
// minutes, one point per status snapshot, drawn with uPlot (vendored, MIT).
//
// The history lives in the page and starts when the page opens (Prometheus is the place for
// long-term history); it is bounded to `MINUTES`.

export const MINUTES = 10;

const PALETTE = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989",
  "#0a7ea4", "#e16f24", "#57606a", "#4d7c0f"];

export class Charts {
  /** @param {Record<string, HTMLElement>} el the four chart containers */
  constructor(el) {
    this.el = el;
    this.times = [];
    this.rps = [];
    this.errors = [];
    this.p50 = [];
    this.p99 = [];
    this.memory = new Map(); // slot -> values, aligned with `times`
    this.plots = {};
    this.memorySlots = "";
    this.available = typeof window.uPlot === "function";
    if (!this.available) {
      for (const div of Object.values(el)) div.textContent = "Charts unavailable: uPlot did not load.";
      return;
    }
    const resize = new ResizeObserver(() => this.resize());
    for (const div of Object.values(el)) resize.observe(div);
  }

  /** Adds the point of one status snapshot, taken at `at` (ms). */
  push(status, at) {
    const rates = status.rates || {};
    const t = at / 1000;
    this.times.push(t);
    this.rps.push(rates.requestsPerSec ?? null);
    this.errors.push(rates.errorRate === undefined ? null : rates.errorRate * 100);
    this.p50.push(rates.latencyP50Ms ?? null);
    this.p99.push(rates.latencyP99Ms ?? null);
    const bySlot = new Map();
    for (const w of status.workers) {
      if (w.memoryUsage === null || w.memoryUsage === undefined) continue;
      // During a replacement two workers share a slot: show the one in rotation.
      if (!bySlot.has(w.slot) || w.rotation === "in") bySlot.set(w.slot, w.memoryUsage);
    }
    for (const slot of bySlot.keys()) {
      if (!this.memory.has(slot)) this.memory.set(slot, new Array(this.times.length - 1).fill(null));
    }
    for (const [slot, values] of this.memory) values.push(bySlot.get(slot) ?? null);
    this.trim(t - MINUTES * 60);
    this.draw();
  }

  trim(oldest) {
    let n = 0;
    while (n < this.times.length && this.times[n] < oldest) n++;
    if (n === 0) return;
    for (const a of [this.times, this.rps, this.errors, this.p50, this.p99]) a.splice(0, n);
    for (const [slot, values] of this.memory) {
      values.splice(0, n);
      if (values.every((v) => v === null)) this.memory.delete(slot);
    }
  }

  draw() {
    if (!this.available) return;
    this.plot("rps", [{ label: "req/s" }], [this.times, this.rps]);
    this.plot("errors", [{ label: "errors %" }], [this.times, this.errors]);
    this.plot("latency", [{ label: "p50" }, { label: "p99" }], [this.times, this.p50, this.p99]);
    const slots = [...this.memory.keys()].sort((a, b) => a - b);
    const key = slots.join(",");
    if (key !== this.memorySlots && this.plots.memory) {
      // Slots came or went: the series change, so the chart is built again.
      this.plots.memory.destroy();
      delete this.plots.memory;
    }
    this.memorySlots = key;
    this.plot("memory", slots.map((s) => ({ label: "slot " + s })),
      [this.times, ...slots.map((s) => this.memory.get(s))]);
  }

  plot(name, series, data) {
    const existing = this.plots[name];
    if (existing) {
      existing.setData(data);
      return;
    }
    const div = this.el[name];
    const ink = getComputedStyle(document.body).color;
    const grid = { stroke: "rgba(128,128,128,0.2)", width: 1 };
    const opts = {
      width: Math.max(div.clientWidth, 200),
      height: 160,
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, 1) * 1.1] } },
      series: [{}, ...series.map((s, i) => ({
        label: s.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: false,
        points: { show: false },
      }))],
      axes: [
        { stroke: ink, grid, ticks: grid },
        { stroke: ink, grid, ticks: grid, size: 48 },
      ],
      legend: { show: true, live: false },
      cursor: { drag: { x: false, y: false } },
    };
    div.textContent = "";
    this.plots[name] = new window.uPlot(opts, data, div);
  }

  resize() {
    for (const [name, plot] of Object.entries(this.plots)) {
      const width = Math.max(this.el[name].clientWidth, 200);
      if (plot.width !== width) plot.setSize({ width, height: 160 });
    }
  }
}

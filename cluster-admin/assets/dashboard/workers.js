// The workers table: one row per live worker process (and one per crash-looping slot that
// has none), updated in place from each status snapshot.

import * as f from "./format.js";

const COLUMNS = [
  ["slot", "Slot"], ["pid", "PID"], ["state", "State"], ["uptime", "Uptime"],
  ["inflight", "In flight"], ["requests", "Requests"], ["rps", "Req/s"], ["errors", "Errors"],
  ["latency", "p50 / p99"], ["cpu", "CPU"], ["memory", "Memory"], ["restarts", "Restarts"],
  ["reason", "Last reason"],
];

/** What a worker is doing, in one word, and the longer story for its tooltip. */
export function stateOf(w, crashLooping) {
  if (w.rotation === "leaving" || w.status === "draining" || w.status === "stopping") {
    const word = w.status === "ready" ? "leaving" : w.status;
    return [word, w.leavingReason || ""];
  }
  if (w.status === "starting") {
    if (crashLooping) return ["crash-looping", "its slot keeps exiting soon after start"];
    return ["starting", w.replaces ? `replaces worker ${w.replaces}` : ""];
  }
  if (w.ejected || w.rotation === "ejected") return ["ejected", "out of rotation, still running"];
  return [w.status, w.heartbeatStatus || ""];
}

export class WorkersTable {
  /** @param {HTMLElement} body the table's tbody */
  constructor(body) {
    this.body = body;
    this.rows = new Map();
  }

  /** Shows the workers of `status`. */
  update(status) {
    const looping = new Set(status.crashLoopingSlots || []);
    const workers = [...status.workers].sort((a, b) => a.slot - b.slot || a.workerId - b.workerId);
    const seen = new Set();
    const order = [];
    for (const w of workers) {
      const key = "w" + w.workerId;
      seen.add(key);
      const row = this.row(key, w.workerId, w.slot);
      row.tr.dataset.pid = w.pid;
      this.fill(row, w, looping.has(w.slot));
      order.push(row.tr);
    }
    for (const slot of looping) {
      if (workers.some((w) => w.slot === slot)) continue;
      const key = "s" + slot;
      seen.add(key);
      const row = this.row(key, null, slot);
      this.fillEmptySlot(row, slot);
      order.push(row.tr);
    }
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.tr.remove();
        this.rows.delete(key);
      }
    }
    // Move rows only when the order changed (moving a row would take the focus off its button).
    const current = [...this.body.children];
    if (current.length !== order.length || current.some((tr, i) => tr !== order[i])) {
      for (const tr of order) this.body.appendChild(tr);
    }
  }

  row(key, workerId, slot) {
    let row = this.rows.get(key);
    if (row) return row;
    const tr = document.createElement("tr");
    const cells = {};
    for (const [name, label] of COLUMNS) {
      const td = document.createElement("td");
      td.dataset.label = label;
      td.className = "c-" + name;
      tr.appendChild(td);
      cells[name] = td;
    }
    const actions = document.createElement("td");
    actions.className = "c-actions";
    if (workerId !== null) {
      tr.dataset.workerId = workerId;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "restart-worker";
      button.dataset.workerId = workerId;
      button.textContent = "Restart";
      button.setAttribute("aria-label", `Restart worker ${workerId} (slot ${slot})`);
      actions.appendChild(button);
      cells.button = button;
    }
    tr.appendChild(actions);
    const state = document.createElement("span");
    cells.state.appendChild(state);
    cells.stateBadge = state;
    row = { tr, cells };
    this.rows.set(key, row);
    return row;
  }

  fill(row, w, crashLooping) {
    const c = row.cells;
    const rates = w.rates || {};
    const [state, story] = stateOf(w, crashLooping);
    set(c.slot, String(w.slot));
    set(c.pid, String(w.pid));
    set(c.stateBadge, state);
    c.stateBadge.className = "badge state-" + state;
    c.stateBadge.title = story;
    set(c.uptime, f.uptime(w.uptime));
    set(c.inflight, f.count(w.connections));
    set(c.requests, f.count(w.requestsHandled));
    set(c.rps, f.rate(rates.requestsPerSec));
    set(c.errors, w.errors ? `${f.count(w.errors)} (${f.percent(rates.errorRate)} now)` : "0");
    // Over the sliding window, as the totals ("–" when it saw no response).
    set(c.latency, f.latencyPair(rates.latencyP50Ms, rates.latencyP99Ms));
    set(c.cpu, f.cpu(w.cpuPercent));
    set(c.memory, f.megabytes(w.memoryUsage));
    set(c.restarts, w.recycles ? `${w.restarts} + ${w.recycles} recycled` : String(w.restarts));
    set(c.reason, w.lastRestartReason || "");
    const canRestart = w.status === "ready" && w.rotation !== "leaving";
    if (c.button.disabled === canRestart) c.button.disabled = !canRestart;
  }

  fillEmptySlot(row, slot) {
    const c = row.cells;
    set(c.slot, String(slot));
    set(c.pid, f.NONE);
    set(c.stateBadge, "crash-looping");
    c.stateBadge.className = "badge state-crash-looping";
    c.stateBadge.title = "no worker now: the next start is delayed";
    for (const name of ["uptime", "inflight", "requests", "rps", "errors", "latency", "cpu", "memory", "restarts"]) {
      set(c[name], f.NONE);
    }
  }
}

/** Sets an element's text only when it changed (no layout work otherwise). */
function set(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

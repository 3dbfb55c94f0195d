// The controls: scale by one, set the count, rolling restart, restart one worker. Each calls
// the REST API; what the server answers (its message when it refuses: busy, out of range) is
// shown under the controls, and the operation under way with its progress (n of N).

import { millis } from "./format.js";

const API = "/api/admin/cluster";
const KINDS = { "rolling-restart": "Rolling restart", restart: "Restart", rollback: "Rollback" };

export class Controls {
  constructor() {
    this.message = document.getElementById("control-message");
    this.operationBox = document.getElementById("operation");
    this.operationText = document.getElementById("operation-text");
    this.progress = document.getElementById("operation-progress");
    this.input = document.getElementById("scale-n");
    this.bounds = null;
    this.current = null; // the operation shown: {id, kind, done, total, ended}
    this.inputTouched = false;

    this.clickPost("scale-up", "scale", { by: 1 }, (r) => `Scaled from ${r.from} to ${r.to} workers`);
    this.clickPost("scale-down", "scale", { by: -1 }, (r) => `Scaled from ${r.from} to ${r.to} workers`);
    this.clickPost("rolling-restart", "restart", { mode: "rolling" }, (r) => {
      this.showOperation({ id: r.operation, kind: r.kind, done: 0, total: r.workers });
      return `${KINDS[r.kind] || r.kind} #${r.operation} started`;
    });
    this.input.addEventListener("input", () => {
      this.inputTouched = true;
    });
    document.getElementById("scale-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.setCount(e.submitter || document.getElementById("scale-set"));
    });
    document.getElementById("worker-rows").addEventListener("click", (e) => {
      const button = e.target.closest("button.restart-worker");
      if (!button) return;
      const id = button.dataset.workerId;
      this.post(button, `workers/${id}/restart`, {},
        () => `Worker ${id} will be replaced once its successor is ready`);
    });
  }

  /** Follows a status snapshot: the scaling bounds and the operation under way. */
  status(status) {
    const { minWorkers, maxWorkers } = status.scaling;
    this.bounds = [minWorkers, maxWorkers];
    this.input.min = minWorkers;
    this.input.max = maxWorkers;
    if (!this.inputTouched && document.activeElement !== this.input) {
      this.input.value = status.desiredWorkers;
    }
    const op = status.operation;
    if (op) this.showOperation({ id: op.id, kind: op.kind, done: op.done, total: op.total });
  }

  /** Follows an operation's events. */
  event(e) {
    switch (e.type) {
      case "operationStarted":
        this.showOperation({ id: e.operation, kind: e.kind, done: 0, total: e.workers });
        break;
      case "operationProgress":
        this.showOperation({ id: e.operation, kind: e.kind, done: e.done, total: e.total });
        break;
      case "operationFinished":
        this.showOperation({
          id: e.operation, kind: e.kind, done: e.replaced, total: e.replaced,
          ended: `done in ${millis(e.tookMs)}`,
        });
        break;
      case "operationFailed":
        this.showOperation({ ...(this.current || {}), id: e.operation, kind: e.kind, ended: `failed: ${e.reason}` });
        break;
      default:
    }
  }

  showOperation(op) {
    const cur = this.current;
    // A snapshot taken before the last event must not move an operation back.
    if (cur && cur.id === op.id && (cur.ended || (op.done ?? 0) < (cur.done ?? 0)) && !op.ended) return;
    if (cur && op.id < cur.id) return;
    this.current = op;
    const done = op.done ?? 0;
    const total = op.total ?? 0;
    const name = KINDS[op.kind] || op.kind;
    let text = `${name} #${op.id}: ${done} of ${total}`;
    if (op.ended) text += `, ${op.ended}`;
    this.operationText.textContent = text;
    this.progress.max = Math.max(total, 1);
    this.progress.value = done;
    this.operationBox.hidden = false;
    this.operationBox.dataset.state = op.ended ? (op.ended.startsWith("failed") ? "failed" : "done") : "running";
  }

  setCount(button) {
    const text = this.input.value.trim();
    const n = Number(text);
    if (text === "" || !Number.isInteger(n)) {
      this.say("error", "Enter a whole number of workers.");
      return;
    }
    if (this.bounds && (n < this.bounds[0] || n > this.bounds[1])) {
      this.say("error", `Enter a number from ${this.bounds[0]} to ${this.bounds[1]} (scaling.minWorkers to scaling.maxWorkers).`);
      return;
    }
    this.post(button, "scale", { workers: n }, (r) => {
      this.inputTouched = false;
      return r.from === r.to ? `Already ${r.to} workers` : `Scaled from ${r.from} to ${r.to} workers`;
    });
  }

  clickPost(id, route, body, success) {
    const button = document.getElementById(id);
    button.addEventListener("click", () => this.post(button, route, body, success));
  }

  /** POSTs `body` to `route`, with `button` disabled meanwhile. */
  async post(button, route, body, success) {
    button.disabled = true;
    try {
      const response = await fetch(`${API}/${route}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
        credentials: "same-origin",
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        this.say("ok", success(answer));
      } else {
        this.say("error", answer.error || `The cluster answered ${response.status}.`);
      }
    } catch (err) {
      this.say("error", `The cluster did not answer (${err.message}).`);
    } finally {
      button.disabled = false;
    }
  }

  say(kind, text) {
    this.message.textContent = text;
    this.message.dataset.kind = kind;
  }
}

// Cluster events in words, for the event log: what happened, and how much it matters.

import { millis, megabytes } from "./format.js";

const KINDS = { "rolling-restart": "Rolling restart", restart: "Restart", rollback: "Rollback" };
const kind = (k) => KINDS[k] || k;
const worker = (e) => `worker ${e.workerId} (slot ${e.slot})`;
const pid = (p) => (p === null || p === undefined ? "?" : p);

/** `[level, text]` for an event: level is "info", "good", "warn" or "bad". */
export function describe(e) {
  switch (e.type) {
    case "listening":
      return ["info", `Listening on ${e.addr}`];
    case "workerStarted":
      return ["info", `Worker ${e.workerId} started in slot ${e.slot} (pid ${e.pid}, generation ${e.generation})`];
    case "workerState":
      return [e.to === "ready" ? "good" : "info", `${cap(worker(e))}: ${e.from} → ${e.to}`];
    case "workerExited": {
      const how = e.signal !== null && e.signal !== undefined ? `signal ${e.signal}` : `code ${e.code}`;
      if (e.expected) return ["info", `${cap(worker(e))}, pid ${e.pid}, exited (${e.reason || how})`];
      return ["bad", `${cap(worker(e))}, pid ${e.pid}, crashed: ${how}${e.reason ? " (" + e.reason + ")" : ""}`];
    }
    case "workerFailedStart":
      return ["bad", `Slot ${e.slot}: the worker failed to start: ${e.reason}`];
    case "crashLooping":
      return ["bad", `Slot ${e.slot} is crash-looping (${e.quickExits} quick exits): next start in ${millis(e.retryInMs)}`];
    case "recycling":
      return ["warn", `Recycling ${worker(e)}: ${e.reason}`];
    case "recycled":
      return ["good", `Worker ${e.workerId} replaced by worker ${e.replacementId} (slot ${e.slot})`];
    case "recycleFailed":
      return ["bad", `Could not replace ${worker(e)}: it keeps serving`];
    case "killed":
      return ["bad", `Killed ${worker(e)}: ${e.reason}`];
    case "ejected":
      return ["warn", `Took ${worker(e)} out of rotation: ${e.reason}`];
    case "readmitted":
      return ["good", `${cap(worker(e))} is back in rotation`];
    case "retiring":
      return ["info", `${cap(worker(e))}, pid ${e.pid}, leaves: ${e.reason}`];
    case "scaled":
      return ["info", `Scaled from ${e.from} to ${e.to} workers (${e.by})`];
    case "autoscale":
      return ["info", `Autoscale ${e.direction}, ${e.from} → ${e.to}: ${e.reason}`];
    case "operationStarted":
      return ["info", `${kind(e.kind)} #${e.operation} started: ${e.workers} workers to generation ${e.generation} (${e.by})`];
    case "operationProgress":
      return ["info", `${kind(e.kind)} #${e.operation}: ${e.done} of ${e.total} (slot ${e.slot}: pid ${pid(e.oldPid)} → ${e.newPid})`];
    case "operationFinished":
      return ["good", `${kind(e.kind)} #${e.operation} finished: ${e.replaced} replaced in ${millis(e.tookMs)}`];
    case "operationFailed":
      return ["bad", `${kind(e.kind)} #${e.operation} failed: ${e.reason}` +
        (e.rolledBack ? `; rolling ${e.rolledBack} back` : "")];
    case "configReloaded": {
      const keys = (e.changes || []).map((c) => `${c.key} (${c.applies})`);
      return ["info", keys.length ? `Configuration reloaded: ${keys.join(", ")}` : "Configuration reloaded: no change"];
    }
    case "configReloadFailed":
      return ["bad", `Configuration reload refused: ${e.error}`];
    case "memoryPressure":
      return ["warn", `${cap(worker(e))} is over its memory limit: ${megabytes(e.rssMb)} of ${megabytes(e.limitMb)}`];
    case "leakSuspected":
      return ["warn", `${cap(worker(e))} may leak memory: +${e.slopeMbPerMin.toFixed(1)} MB/min, now ${megabytes(e.rssMb)}` +
        (e.minutesToLimit ? `, limit in ${Math.round(e.minutesToLimit)} min` : "")];
    case "rateLimitStoreDown":
      return ["bad", `Rate limit store ${e.store} is down (${e.reason}); fallback: ${e.fallback}`];
    case "rateLimitStoreUp":
      return ["good", `Rate limit store ${e.store} is back after ${(e.downForMs / 1000).toFixed(1)} s`];
    case "logReopenRequested":
      return ["info", "Log files reopened"];
    case "shutdownStarted":
      return ["warn", e.graceful ? "Shutting down gracefully" : "Shutting down now"];
    case "stopped":
      return ["bad", "The cluster has stopped"];
    default:
      return ["info", e.type];
  }
}

function cap(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

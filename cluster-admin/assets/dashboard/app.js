// The dashboard: follows the events stream and shows the cluster's totals, workers, charts
// and events; the controls call the REST API.

import * as f from "./format.js";
import { Stream } from "./stream.js";
import { describe } from "./words.js";
import { WorkersTable } from "./workers.js";
import { Charts, MINUTES } from "./charts.js";
import { Controls } from "./controls.js";

/** Entries kept in the event log. */
const LOG_SIZE = 200;

const $ = (id) => document.getElementById(id);

const workers = new WorkersTable($("worker-rows"));
const controls = new Controls();
const charts = new Charts({
  rps: $("chart-rps"), errors: $("chart-errors"), latency: $("chart-latency"), memory: $("chart-memory"),
});
$("chart-minutes").textContent = String(MINUTES);

function showStatus(status) {
  const rates = status.rates || {};
  const health = status.health || {};
  const running = status.workers.length;
  let ready = `${status.readyWorkers} / ${status.desiredWorkers}`;
  if (running !== status.desiredWorkers) ready += ` (${running} running)`;
  set("t-workers", ready);
  set("t-rps", f.rate(rates.requestsPerSec));
  set("t-errors", f.percent(rates.errorRate));
  set("t-latency", f.latencyPair(rates.latencyP50Ms, rates.latencyP99Ms));
  set("t-memory", f.megabytes(health.memoryUsage && health.memoryUsage.total));
  set("t-cpu", f.cpu(health.cpuUsage && health.cpuUsage.total));
  set("t-generation", String(status.generation));
  // Shared-socket mode: the workers accept on the front socket and the kernel balances; no
  // request crosses the primary, so the request figures above stay at zero.
  set("t-strategy", status.mode === "shared-socket"
    ? "kernel (shared socket: per-request metrics do not apply)" : status.strategy);
  set("listen", `on ${status.listen}`);
  document.title = `cluster · ${status.readyWorkers}/${status.desiredWorkers} ready`;
  workers.update(status);
  controls.status(status);
  charts.push(status, Date.now());
}

function logEvent(event) {
  const [level, text] = describe(event);
  const li = document.createElement("li");
  li.className = "event event-" + level;
  li.dataset.type = event.type;
  const time = document.createElement("time");
  const at = event.time || Date.now();
  time.dateTime = new Date(at).toISOString();
  time.textContent = f.clock(at);
  li.append(time, " ", text);
  const log = $("event-log");
  log.prepend(li);
  while (log.children.length > LOG_SIZE) log.lastElementChild.remove();
}

const STATES = {
  connecting: ["connecting", "badge-wait", ""],
  live: ["live", "badge-good", ""],
  reconnecting: ["disconnected", "badge-bad", "Disconnected from the cluster: reconnecting…"],
  stale: ["no updates", "badge-bad", "No update from the cluster for a while: the figures below are old."],
  stopped: ["stopped", "badge-bad", "The cluster has stopped. Waiting for it to come back…"],
};

function showConnection(state, lastStatusAt) {
  const [word, badge, banner] = STATES[state];
  const el = $("connection");
  el.textContent = word;
  el.className = "badge " + badge;
  document.body.dataset.connection = state;
  const bar = $("banner");
  bar.hidden = !banner;
  bar.textContent = banner + (banner && lastStatusAt ? ` Last update at ${f.clock(lastStatusAt)}.` : "");
}

function set(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

const stream = new Stream("/api/admin/cluster/events", {
  status: showStatus,
  event: (event) => {
    logEvent(event);
    controls.event(event);
  },
  state: showConnection,
});
stream.start();

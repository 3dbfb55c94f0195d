// The events stream: one EventSource, reconnected on its own.
//
// - The first connection asks for the kept events (`lastEventId=0`), so the log shows what
//   happened before the page was opened; they arrive before the first status snapshot.
// - While the EventSource retries by itself it sends `Last-Event-ID`; when it gives up (a
//   non-200 answer, such as a proxy's 502 while the primary restarts) a new one is opened
//   with `lastEventId=<last id>`, after 1, 2, 4... up to 15 s.
// - No status snapshot for three intervals (at least 6 s) makes the stream "stale".

/** Every event type the cluster sends (an EventSource hears named events only). */
export const EVENT_TYPES = [
  "listening", "workerStarted", "workerState", "workerExited", "workerFailedStart",
  "crashLooping", "recycling", "recycled", "recycleFailed", "killed", "ejected", "readmitted",
  "retiring", "scaled", "autoscale", "operationStarted", "operationProgress",
  "operationFinished", "operationFailed", "configReloaded", "configReloadFailed",
  "memoryPressure", "leakSuspected", "logReopenRequested", "shutdownStarted", "stopped",
];

export class Stream {
  /**
   * @param {string} url the events route
   * @param {{status: Function, event: Function, state: Function}} on what to call with a
   *   status snapshot, an event (and whether it was replayed), and a connection state
   *   ("connecting", "live", "reconnecting", "stale", "stopped").
   */
  constructor(url, on) {
    this.url = url;
    this.on = on;
    this.lastId = 0;
    this.source = null;
    this.backoff = 1000;
    this.lastStatusAt = 0;
    this.interval = 2000;
    this.sawStatus = false;
    this.stopped = false;
    this.state = "";
    setInterval(() => this.watch(), 1000);
  }

  start() {
    this.setState(this.lastStatusAt ? "reconnecting" : "connecting");
    const source = new EventSource(`${this.url}?lastEventId=${this.lastId}`);
    this.source = source;
    this.sawStatus = false;
    source.addEventListener("status", (m) => this.status(m));
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (m) => this.event(m));
    }
    source.onopen = () => {
      this.backoff = 1000;
    };
    source.onerror = () => {
      if (source !== this.source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The browser gave up on this one: open another, later.
        this.setState(this.stopped ? "stopped" : "reconnecting");
        setTimeout(() => this.start(), this.backoff);
        this.backoff = Math.min(this.backoff * 2, 15000);
      } else if (!this.stopped) {
        this.setState("reconnecting");
      }
    };
  }

  status(message) {
    this.remember(message);
    const now = Date.now();
    if (this.lastStatusAt && this.sawStatus) {
      // Follow the server's admin.eventsInterval, smoothed.
      this.interval = 0.8 * this.interval + 0.2 * Math.min(now - this.lastStatusAt, 60000);
    }
    this.lastStatusAt = now;
    this.sawStatus = true;
    this.stopped = false;
    this.setState("live");
    this.on.status(JSON.parse(message.data));
  }

  event(message) {
    this.remember(message);
    const event = JSON.parse(message.data);
    if (event.type === "stopped") {
      this.stopped = true;
      this.setState("stopped");
    }
    this.on.event(event, !this.sawStatus);
  }

  remember(message) {
    const id = Number(message.lastEventId);
    if (Number.isInteger(id) && id >= 0) this.lastId = id;
  }

  watch() {
    if (this.state !== "live") return;
    const limit = Math.max(6000, 3 * this.interval);
    if (Date.now() - this.lastStatusAt > limit) this.setState("stale");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.on.state(state, this.lastStatusAt);
  }
}

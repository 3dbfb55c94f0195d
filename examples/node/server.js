'use strict';
// A plain Node.js `http` worker for the tests that run Node workers under `cluster`
// (no npm dependencies). Same contract as the Rust `hello` example:
//   PORT env (default 3000), HOST env (default 127.0.0.1); WORKER_QUIET=1 hides the banner.
//   SOCKET_PATH env: listen on that Unix socket instead (as adapter-node does; the cluster sets it
//   with upstream: "unix"); server.close() removes the file.
//   LISTEN_FDS >= 1 with LISTEN_PID = our pid (socket activation, cluster's shared-socket
//   mode): accept on the socket inherited at fd 3 instead of binding PORT or SOCKET_PATH.
//   GET /                         -> 200 "hello from node worker <NODE_APP_INSTANCE> pid <pid>\n"
//   GET /pid                      -> 200, the pid as text (no newline)
//   GET /health                   -> 200 "ok\n"
//   GET /slow?ms=N                -> waits N ms (capped at 60000), then 200 "slept N ms\n"
//   GET /stream?n=N&interval=MS   -> 200 text/event-stream: N events (default 5, cap 1000)
//                                    "id: i\ndata: event i\n\n", i = 1..N, MS ms apart (default 200)
//   POST|PUT /echo                -> 200, the request body piped back, same Content-Type
//   GET /headers                  -> 200 JSON of req.headers
//   GET /env                      -> 200 JSON: PORT, HOST, SOCKET_PATH, CLUSTER_WORKER_ID,
//                                    NODE_APP_INSTANCE, LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES
//   GET /crash                    -> exits at once with code 70, without answering
//   GET /page?size=N&nt=1         -> 200 text/html, a page of about N bytes (default 20000, cap
//                                    10 MB) with Content-Length, a strong ETag "page-N" and
//                                    Accept-Ranges: bytes; nt=1 adds Cache-Control: no-transform
//   GET /data.json?n=N            -> 200 application/json, N records (default 200, cap 100000),
//                                    sent without Content-Length (chunked)
//   GET /parts?id=ID&n=N          -> 200 text/html sent in N parts (default 3, cap 100): the first
//                                    at once, each next one only after GET /release?id=ID (or 20 s)
//   GET /release?id=ID            -> 200 "released N\n": lets the waiting /parts?id=ID go on
//   anything else                 -> 404
// server.keepAliveTimeout is left at Node's default (5 s) on purpose: the proxy's upstream
// idle timeout must be shorter, and the tests exercise that.
// SIGTERM/SIGINT: stop accepting, answer further requests with Connection: close, close what
// is still idle after 1 s (a connection accepted just before the signal gets to send its first
// request), let in-flight requests finish, then exit 0; exit 1 if that takes more than 5 s.
// Heartbeat, when started with an IPC channel (`cluster` opens one for `node` workers,
// NODE_CHANNEL_FD): {"v":1,"type":"ready"} once listening, {"v":1,"type":"status",...}, then
// {"v":1,"type":"heartbeat"} every second. A {"type":"memory-pressure","rssMb":…,"limitMb":…}
// message from the cluster is logged as "memory-pressure: <rss> MB of <limit> MB", and runs
// global.gc() when node has --expose-gc. The channel and the timer are unref'd so that they
// never keep the process alive, and nothing is sent once the cluster has hung up.
const http = require('http');
const net = require('net');

let stopping = false;

const PORT = parseInt(process.env.PORT || '3000', 10);
const HOST = process.env.HOST || '127.0.0.1';
const SOCKET_PATH = process.env.SOCKET_PATH || '';
const INSTANCE = process.env.NODE_APP_INSTANCE || '-';

function num(params, key, dflt, max) {
  const v = parseInt(params.get(key) || '', 10);
  return Math.min(Number.isFinite(v) && v >= 0 ? v : dflt, max);
}

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// A deterministic text of about `size` bytes, compressible like a real page.
function filler(size, tag) {
  let out = '';
  for (let i = 0; out.length < size; i += 1) {
    out += `<li class="row-${i % 7}">${tag} item ${i}: the quick brown fox jumps over the lazy dog</li>\n`;
  }
  return out;
}

function page(res, params) {
  const size = num(params, 'size', 20000, 10 * 1024 * 1024);
  const body = `<!doctype html><html><body><ul>\n${filler(size, 'page')}</ul></body></html>\n`;
  const headers = {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    ETag: `"page-${size}"`,
    'Accept-Ranges': 'bytes',
  };
  if (params.get('nt') === '1') headers['Cache-Control'] = 'no-transform';
  res.writeHead(200, headers);
  res.end(body);
}

function data(res, params) {
  const n = num(params, 'n', 200, 100000);
  const records = [];
  for (let i = 0; i < n; i += 1) records.push({ id: i, name: `record ${i}`, tags: ['a', 'b', 'c'] });
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.write('');
  res.end(JSON.stringify({ records }));
}

// /parts waiting for /release, by id.
const waiting = new Map();

function parts(req, res, params) {
  const id = params.get('id') || '-';
  const n = Math.max(num(params, 'n', 3, 100), 1);
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  let i = 0;
  let timer = null;
  const next = () => {
    waiting.delete(id);
    clearTimeout(timer);
    i += 1;
    res.write(`part ${i} of ${id}\n${filler(2000, `part ${i}`)}`);
    if (i >= n) return res.end();
    waiting.set(id, next);
    timer = setTimeout(next, 20000);
  };
  res.on('close', () => {
    clearTimeout(timer);
    if (waiting.get(id) === next) waiting.delete(id);
  });
  next();
}

function stream(req, res, params) {
  const n = num(params, 'n', 5, 1000);
  const interval = num(params, 'interval', 200, 60000);
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  let i = 0;
  let timer = null;
  const next = () => {
    i += 1;
    if (i > n) return res.end();
    res.write(`id: ${i}\ndata: event ${i}\n\n`);
    timer = setTimeout(next, i < n ? interval : 0);
  };
  res.on('close', () => clearTimeout(timer));
  next();
}

const server = http.createServer((req, res) => {
  if (stopping) res.shouldKeepAlive = false;
  const q = req.url.indexOf('?');
  const path = q === -1 ? req.url : req.url.slice(0, q);
  const params = new URLSearchParams(q === -1 ? '' : req.url.slice(q + 1));
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (path === '/echo' && (req.method === 'POST' || req.method === 'PUT')) {
    const headers = {};
    if (req.headers['content-type']) headers['Content-Type'] = req.headers['content-type'];
    res.writeHead(200, headers);
    return req.pipe(res);
  }
  if (!get) return send(res, 404, 'not found\n');
  switch (path) {
    case '/':
      return send(res, 200, `hello from node worker ${INSTANCE} pid ${process.pid}\n`);
    case '/pid':
      return send(res, 200, String(process.pid));
    case '/health':
      return send(res, 200, 'ok\n');
    case '/slow': {
      const ms = num(params, 'ms', 0, 60000);
      return setTimeout(() => send(res, 200, `slept ${ms} ms\n`), ms);
    }
    case '/stream':
      return stream(req, res, params);
    case '/headers':
      return send(res, 200, JSON.stringify(req.headers), 'application/json');
    case '/env': {
      const env = {};
      for (const k of ['PORT', 'HOST', 'SOCKET_PATH', 'CLUSTER_WORKER_ID', 'NODE_APP_INSTANCE',
        'LISTEN_PID', 'LISTEN_FDS', 'LISTEN_FDNAMES']) {
        env[k] = process.env[k] === undefined ? null : process.env[k];
      }
      return send(res, 200, JSON.stringify(env), 'application/json');
    }
    case '/page':
      return page(res, params);
    case '/data.json':
      return data(res, params);
    case '/parts':
      return parts(req, res, params);
    case '/release': {
      const go = waiting.get(params.get('id') || '-');
      if (go) setImmediate(go);
      return send(res, 200, `released ${go ? 1 : 0}\n`);
    }
    case '/crash':
      if (req.method === 'GET') process.exit(70);
      return send(res, 404, 'not found\n');
    default:
      return send(res, 404, 'not found\n');
  }
});
// keepAliveTimeout deliberately left at Node's default (5 s); see the header comment.
// Socket activation, as @sveltejs/adapter-node reads it: with LISTEN_FDS >= 1 and LISTEN_PID
// equal to our pid, accept on the socket inherited at fd 3 (cluster's shared-socket mode)
// instead of binding SOCKET_PATH or PORT.
const inherited = parseInt(process.env.LISTEN_PID || '', 10) === process.pid
  && parseInt(process.env.LISTEN_FDS || '0', 10) >= 1;
// Where it listens, for the banner and the status message.
function where() {
  const a = server.address();
  const at = typeof a === 'string' ? `unix:${a}` : `${a.address}:${a.port}`;
  return inherited ? `${at} (inherited fd 3)` : at;
}
const listening = () => {
  if (process.env.WORKER_QUIET !== '1') {
    console.log(`node worker ${INSTANCE} pid ${process.pid} listening on ${where()}`);
  }
  startHeartbeat();
};
if (inherited) server.listen({ fd: 3 }, listening);
else if (SOCKET_PATH) server.listen(SOCKET_PATH, listening);
else server.listen(PORT, HOST, listening);

function startHeartbeat() {
  if (typeof process.send !== 'function') return;
  // Memory pressure: the cluster says so when this worker crosses maxMemoryUsage, before the
  // memory policy recycles it; freeing memory in time keeps the worker. `global.gc` exists when
  // node runs with --expose-gc.
  process.on('message', (msg) => {
    if (!msg || msg.type !== 'memory-pressure') return;
    console.log(`memory-pressure: ${msg.rssMb} MB of ${msg.limitMb} MB${global.gc ? ', running gc' : ''}`);
    if (global.gc) global.gc();
  });
  process.channel.unref();
  // The callback takes any send error, so it never becomes an 'error' event on process.
  const report = (msg) => process.connected && process.send(msg, () => {});
  report({ v: 1, type: 'ready' });
  report({ v: 1, type: 'status', status: `serving on ${where()}` });
  setInterval(() => report({ v: 1, type: 'heartbeat' }), 1000).unref();
}

function shutdown() {
  if (stopping) return;
  stopping = true;
  // Stop accepting. net.Server's close, unlike http.Server's, leaves idle connections open: a
  // connection accepted just before the signal may not have sent its first request yet, and
  // closing it would fail that request. Requests from now on are answered with
  // `Connection: close`; what is still idle a second later is closed.
  net.Server.prototype.close.call(server, () => process.exit(0));
  setTimeout(() => server.closeIdleConnections(), 1000).unref();
  setTimeout(() => process.exit(1), 5000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

'use strict';
// Run by `cluster import pm2` as `node -e <this> -- FILE OUT`: evaluates the PM2 ecosystem FILE
// the way PM2 does (require for .js/.cjs, import() for .mjs and ES modules, a JavaScript
// expression for .json) and writes to OUT, as JSON:
//   {"value": <the exported configuration, JSON values only>,
//    "nonJson": [{"path": ["apps", 0, "env", "X"], "kind": "a function"}, ...],
//    "envRead": ["NODE_ENV", ...]}
// Values JSON cannot hold (functions, undefined, symbols, class instances, NaN, cycles) are
// left out of "value" and listed in "nonJson", so that nothing is dropped silently.
// "envRead" names the environment variables the file read while it was evaluated: their
// values here are baked into the result. Nothing is written to stdout: the file may print.
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const { pathToFileURL } = require('url');

const [file, out] = process.argv.slice(1).map((p) => path.resolve(p));

const envRead = new Set();
const realEnv = process.env;
let recording = false;
// Records `key` when the code reading it is not Node's own (which reads FORCE_COLOR and the like).
function note(key) {
  if (!recording || typeof key !== 'string') return;
  const caller = (new Error().stack || '').split('\n')[3] || '';
  if (!/\(node:|at node:/.test(caller)) envRead.add(key);
}
process.env = new Proxy(realEnv, {
  get(target, key, receiver) {
    note(key);
    return Reflect.get(target, key, receiver);
  },
  has(target, key) {
    note(key);
    return Reflect.has(target, key);
  },
});

function namespace(ns) {
  return ns.default !== undefined ? ns.default : Object.assign({}, ns);
}

async function load() {
  const ext = path.extname(file);
  if (ext === '.json') {
    // As PM2 reads it: a JavaScript object literal (comments and unquoted keys allowed).
    const code = '(' + fs.readFileSync(file, 'utf8') + ')';
    return vm.runInThisContext(code, { filename: file, timeout: 1000 });
  }
  if (ext === '.mjs') return namespace(await import(pathToFileURL(file).href));
  try {
    return require(file);
  } catch (e) {
    // An ES module where CommonJS was tried (`"type": "module"` in package.json).
    if (e && (e.code === 'ERR_REQUIRE_ESM' || e.code === 'ERR_REQUIRE_ASYNC_MODULE')) {
      return namespace(await import(pathToFileURL(file).href));
    }
    throw e;
  }
}

const nonJson = [];

function clean(v, at, seen) {
  const report = (kind) => {
    nonJson.push({ path: at, kind });
    return undefined;
  };
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : report(String(v));
  if (typeof v === 'function') return report('a function');
  if (typeof v === 'undefined') return report('undefined');
  if (typeof v !== 'object') return report('a ' + typeof v);
  if (seen.has(v)) return report('a circular reference');
  const proto = Object.getPrototypeOf(v);
  if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) {
    const name = v.constructor && v.constructor.name ? v.constructor.name : 'object';
    return report('a ' + name + ' object');
  }
  seen.add(v);
  let result;
  if (Array.isArray(v)) {
    result = [];
    v.forEach((item, i) => {
      const c = clean(item, at.concat(i), seen);
      if (c !== undefined) result.push(c);
    });
  } else {
    result = {};
    for (const key of Object.keys(v)) {
      const c = clean(v[key], at.concat(key), seen);
      if (c !== undefined) result[key] = c;
    }
  }
  seen.delete(v);
  return result;
}

(async () => {
  recording = true;
  let value;
  try {
    value = await load();
    if (value && typeof value.then === 'function') value = await value;
  } finally {
    recording = false;
  }
  const cleaned = clean(value, [], new Set());
  const result = { value: cleaned === undefined ? null : cleaned, nonJson, envRead: [...envRead].sort() };
  fs.writeFileSync(out, JSON.stringify(result));
  process.exit(0);
})().catch((e) => {
  process.stderr.write((e && e.stack ? e.stack : String(e)) + '\n');
  process.exit(1);
});

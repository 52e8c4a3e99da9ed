'use strict';
// Shared harness for the real-client tests (tests/eventsource.t,
// chromium.t, demo.t, publishers.t, cors.t, tls.t, resume-clients.t,
// firefox.t, durable-clients.t): TAP output, a global timeout, a private
// redis-server and sserelay on free loopback ports in a temporary
// directory, a tiny RESP client for PUBLISH, HAProxy in front of several
// daemons, and loading npm modules from $SSERELAY_JS_MODULES
// (a directory holding node_modules, filled by tests/js/install.sh; never
// the source tree).
//
// Environment:
//   SSERELAY              path to the daemon binary (set by make check)
//   REDIS_SERVER          path to redis-server (default: redis-server in PATH)
//   SSERELAY_JS_MODULES   directory containing node_modules
//   SSERELAY_REQUIRE_ALL  =1: a missing prerequisite fails instead of skipping
//   SSERELAY_KEEP_TMP     =1: keep the temporary directory even on success
//   SSERELAY_JS_TIMEOUT_S global timeout in seconds (default 60)
//   HAPROXY               haproxy to use (default: haproxy in PATH or /usr/sbin)

const fs = require('fs');
const os = require('os');
const net = require('net');
const path = require('path');
const http = require('http');
const { spawn } = require('child_process');
const Module = require('module');

// ---- TAP -----------------------------------------------------------------

let testNo = 0;
let failures = 0;
let finished = false;
const cleanups = [];   // async, run in reverse order at the end
const children = new Set(); // ChildProcess objects still alive
let tmpDir = null;
let globalTimer = null;

function diag(msg) {
  for (const line of String(msg).split('\n')) process.stdout.write(`# ${line}\n`);
}

function ok(cond, name, info) {
  testNo++;
  process.stdout.write(`${cond ? 'ok' : 'not ok'} ${testNo} - ${name}\n`);
  if (!cond) {
    failures++;
    if (info !== undefined) diag(typeof info === 'string' ? info : JSON.stringify(info, null, 2));
  }
  return !!cond;
}

function is(got, want, name) {
  const g = JSON.stringify(got), w = JSON.stringify(want);
  return ok(g === w, name, `got:      ${g}\nexpected: ${w}`);
}

function requireAll() { return process.env.SSERELAY_REQUIRE_ALL === '1'; }

// Missing prerequisite: skip the whole test, or fail under SSERELAY_REQUIRE_ALL=1.
function skipAll(reason) {
  finished = true;
  if (requireAll()) {
    process.stdout.write(`not ok 1 - prerequisite missing: ${reason}\n1..1\n`);
    diag('SSERELAY_REQUIRE_ALL=1: missing prerequisites are failures');
    process.exit(1);
  }
  process.stdout.write(`1..0 # SKIP ${reason}\n`);
  process.exit(0);
}

// ---- npm modules from $SSERELAY_JS_MODULES ---------------------------------

function loadModule(name) {
  const dir = process.env.SSERELAY_JS_MODULES;
  if (!dir) skipAll(`SSERELAY_JS_MODULES not set (run tests/js/install.sh DIR and export SSERELAY_JS_MODULES=DIR)`);
  const anchor = path.join(path.resolve(dir), 'node_modules', '.sserelay-anchor.js');
  try {
    return Module.createRequire(anchor)(name);
  } catch (e) {
    skipAll(`npm module ${name} not found under ${dir}/node_modules (run tests/js/install.sh ${dir}): ${e.code || e.message}`);
  }
}

// The module, or null when it is not there (for a test that can run part
// of itself without it); loadModule() skips the whole test instead.
function tryModule(name) {
  const dir = process.env.SSERELAY_JS_MODULES;
  if (!dir) return null;
  try {
    return Module.createRequire(path.join(path.resolve(dir), 'node_modules', '.sserelay-anchor.js'))(name);
  } catch (_) { return null; }
}

// ---- processes and cleanup -----------------------------------------------

function makeTmpDir(tag) {
  tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), `sserelay-${tag}-`));
  return tmpDir;
}

function killAllSync() {
  for (const c of children) {
    try { process.kill(c.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  }
  children.clear();
}

function onCleanup(fn) { cleanups.push(fn); }

async function runCleanups() {
  while (cleanups.length) {
    const fn = cleanups.pop();
    try { await fn(); } catch (e) { diag(`cleanup: ${e && e.stack || e}`); }
  }
  killAllSync();
}

function removeTmp() {
  if (!tmpDir) return;
  if (failures > 0 || process.env.SSERELAY_KEEP_TMP === '1') {
    diag(`kept temporary directory ${tmpDir}`);
    return;
  }
  try { fs.rmSync(tmpDir, { recursive: true, force: true }); } catch (_) { /* ignore */ }
}

async function finish() {
  if (finished) return;
  finished = true;
  if (globalTimer) clearTimeout(globalTimer);
  await runCleanups();
  removeTmp();
  process.stdout.write(`1..${testNo}\n`);
  process.exit(failures > 0 || testNo === 0 ? 1 : 0);
}

// Runs main() under a global timeout; any exception is a failed test.
// SSERELAY_JS_TIMEOUT_S overrides the timeout (e.g. for slow machines).
function run(main, { timeoutMs = 60000 } = {}) {
  const envT = Number(process.env.SSERELAY_JS_TIMEOUT_S);
  if (envT > 0) timeoutMs = envT * 1000;
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      ok(false, `interrupted by ${sig}`);
      killAllSync();
      finish();
    });
  }
  globalTimer = setTimeout(() => {
    ok(false, `global timeout of ${timeoutMs / 1000} s reached`);
    for (const fn of timeoutHooks) { try { fn(); } catch (_) { /* ignore */ } }
    // Give async cleanups 5 s, then kill everything and leave.
    setTimeout(() => { killAllSync(); process.stdout.write(`1..${testNo}\n`); process.exit(1); }, 5000).unref();
    finish();
  }, timeoutMs);
  Promise.resolve()
    .then(main)
    .catch((e) => { ok(false, `unexpected error: ${e && e.message || e}`, e && e.stack || String(e)); })
    .then(finish);
}
const timeoutHooks = [];
function onTimeout(fn) { timeoutHooks.push(fn); }

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() (sync or async) until it returns a truthy value; throws after timeoutMs.
async function waitFor(fn, what, timeoutMs = 10000, stepMs = 25) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(stepMs);
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Spawns a child whose stdout+stderr go to a log file and into memory.
function spawnLogged(cmd, args, logName, opts = {}) {
  const logPath = path.join(tmpDir, logName);
  const log = fs.openSync(logPath, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpDir, ...opts });
  children.add(child);
  child.output = '';
  const onData = (b) => { child.output += b.toString('utf8'); fs.writeSync(log, b); };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  child.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => { children.delete(child); resolve({ code, signal }); });
    child.on('error', (e) => { children.delete(child); child.output += `spawn error: ${e.message}\n`; resolve({ code: null, signal: null, error: e }); });
  });
  child.exited.then(() => { try { fs.closeSync(log); } catch (_) { /* ignore */ } });
  child.logPath = logPath;
  return child;
}

// Sends SIGTERM (or sig) and waits up to ms; then SIGKILL.
async function stopChild(child, { sig = 'SIGTERM', ms = 5000 } = {}) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exited;
  try { process.kill(child.pid, sig); } catch (_) { /* gone */ }
  const t0 = Date.now();
  const r = await Promise.race([child.exited, sleep(ms).then(() => null)]);
  if (r) return { ...r, ms: Date.now() - t0 };
  try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ }
  const r2 = await child.exited;
  return { ...r2, ms: Date.now() - t0, killed: true };
}

function tail(text, n = 40) {
  return String(text).split('\n').slice(-n).join('\n');
}

// ---- RESP client ---------------------------------------------------------

class Resp {
  constructor(port) { this.port = port; this.buf = Buffer.alloc(0); this.waiters = []; }

  connect() {
    return new Promise((resolve, reject) => {
      const s = net.createConnection({ host: '127.0.0.1', port: this.port });
      s.once('connect', () => { s.removeListener('error', reject); resolve(); });
      s.once('error', reject);
      s.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._drain(); });
      s.on('error', (e) => { for (const w of this.waiters.splice(0)) w.reject(e); });
      s.on('close', () => { for (const w of this.waiters.splice(0)) w.reject(new Error('redis connection closed')); });
      this.sock = s;
    });
  }

  // Returns [value, nextOffset] or null when incomplete.
  static parse(buf, off) {
    const eol = buf.indexOf('\r\n', off);
    if (eol < 0) return null;
    const type = String.fromCharCode(buf[off]);
    const line = buf.toString('utf8', off + 1, eol);
    const next = eol + 2;
    switch (type) {
      case '+': return [line, next];
      case '-': return [new Error(line), next];
      case ':': return [Number(line), next];
      case '$': {
        const n = Number(line);
        if (n < 0) return [null, next];
        if (buf.length < next + n + 2) return null;
        return [buf.subarray(next, next + n), next + n + 2];
      }
      case '*': {
        const n = Number(line);
        if (n < 0) return [null, next];
        const arr = [];
        let o = next;
        for (let i = 0; i < n; i++) {
          const r = Resp.parse(buf, o);
          if (!r) return null;
          arr.push(r[0]);
          o = r[1];
        }
        return [arr, o];
      }
      default: throw new Error(`bad RESP type byte ${JSON.stringify(type)}`);
    }
  }

  _drain() {
    while (this.waiters.length) {
      const r = Resp.parse(this.buf, 0);
      if (!r) return;
      this.buf = this.buf.subarray(r[1]);
      const w = this.waiters.shift();
      if (r[0] instanceof Error) w.reject(r[0]); else w.resolve(r[0]);
    }
  }

  command(...args) {
    const parts = [Buffer.from(`*${args.length}\r\n`)];
    for (const a of args) {
      const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a), 'utf8');
      parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
    }
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.sock.write(Buffer.concat(parts));
    });
  }

  publish(channel, payload) { return this.command('PUBLISH', channel, payload); }

  close() { if (this.sock) this.sock.destroy(); }
}

// ---- redis-server and sserelay -------------------------------------------

function findRedisServer() {
  const env = process.env.REDIS_SERVER;
  if (env) return fs.existsSync(env) ? env : null;
  for (const d of (process.env.PATH || '').split(':')) {
    const p = path.join(d || '.', 'redis-server');
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (_) { /* next */ }
  }
  return null;
}

// Checks the prerequisites common to both tests; skips (or fails) when missing.
function checkPrerequisites() {
  const bin = process.env.SSERELAY;
  if (!bin || !fs.existsSync(bin)) {
    // Not a skip: make check always sets it; a missing binary is a broken build.
    process.stdout.write(`not ok 1 - SSERELAY is not set or does not exist (${bin || 'unset'})\n1..1\n`);
    finished = true;
    process.exit(1);
  }
  if (!findRedisServer()) skipAll(`redis-server not found (REDIS_SERVER=${process.env.REDIS_SERVER || ''})`);
}

// A private redis-server on a free port, or on `port` (to start one again
// where it was, after a test killed it, with the same directory and so
// the same data); `args` are added to the command line (a later option
// wins: ['--appendonly', 'yes']).  Up once it answers PING (not while it
// is still loading its data).
async function startRedis({ port, args = [] } = {}) {
  if (!port) port = await freePort();
  const dir = path.join(tmpDir, 'redis');
  fs.mkdirSync(dir, { recursive: true });
  const child = spawnLogged(findRedisServer(),
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...args],
    'redis.log');
  onCleanup(() => stopChild(child, { ms: 3000 }));
  const client = new Resp(port);
  await waitFor(async () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited: ${tail(child.output, 10)}`);
    const c = new Resp(port);
    try { await c.connect(); return (await c.command('PING')) === 'PONG'; } finally { c.close(); }
  }, `redis-server on port ${port}`, 10000, 50);
  await client.connect();
  onCleanup(() => client.close());
  return { port, child, client, url: `redis://127.0.0.1:${port}` };
}

function httpGet(port, pathName, { timeoutMs = 3000, headers = {} } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${pathName} timed out`)));
    req.on('error', reject);
  });
}

async function healthz(port) {
  const r = await httpGet(port, '/healthz');
  let json = null;
  try { json = JSON.parse(r.body); } catch (_) { /* not JSON */ }
  return { status: r.status, json, body: r.body };
}

let daemonRuns = 0;

// Starts sserelay on `port` (a free one when omitted) and waits until
// /healthz answers 200 (listening and subscribed to Redis), or, when
// `ready` is given (e.g. for HTTPS), until `await ready(port)` is truthy.
// `scheme` only changes the returned base URL.
async function startDaemon({ redisUrl, port, args = [], ready = null, scheme = 'http' } = {}) {
  if (!port) port = await freePort();
  daemonRuns++;
  // An empty configuration unless the test names its own (a later -c
  // wins): the host's SYSCONFDIR/sserelay.conf must not leak in.
  const argv = ['-c', '/dev/null', '--listen', `127.0.0.1:${port}`,
    '--redis', redisUrl, ...args];
  const child = spawnLogged(process.env.SSERELAY, argv, `sserelay.${daemonRuns}.log`);
  child.argv = argv;
  onCleanup(async () => {
    if (child.exitCode === null && child.signalCode === null) await stopChild(child, { ms: 3000 });
  });
  await waitFor(async () => {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sserelay exited (code ${child.exitCode}, signal ${child.signalCode}):\n${tail(child.output, 20)}`);
    }
    if (ready) return ready(port);
    const h = await healthz(port);
    return h.status === 200;
  }, `sserelay ${ready ? 'ready' : '/healthz 200'} on port ${port}`, 15000, 50).catch((e) => {
    diag(`sserelay ${argv.join(' ')}\n${tail(child.output, 30)}`);
    throw e;
  });
  return { port, child, base: `${scheme}://127.0.0.1:${port}` };
}

// Waits until /healthz reports at least n open streams (so a PUBLISH made now
// reaches them).
async function waitStreams(port, n, timeoutMs = 10000) {
  return waitFor(async () => {
    const h = await healthz(port);
    return h.json && typeof h.json.streams === 'number' && h.json.streams >= n ? h.json : null;
  }, `/healthz streams >= ${n}`, timeoutMs, 25);
}

// Sanitizer reports in a daemon's output (ASan/LSan/UBSan).
function sanitizerReports(text) {
  return String(text).split('\n')
    .filter((l) => /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error:/.test(l));
}

// SIGTERM the daemon; TAP-checks exit 0 within limitMs and a clean log.
async function stopDaemonChecked(d, label, limitMs = 2000) {
  const r = await stopChild(d.child, { ms: 10000 });
  ok(r.code === 0 && !r.killed, `${label}: sserelay exits 0 on SIGTERM`,
    `exit code ${r.code}, signal ${r.signal}${r.killed ? ', needed SIGKILL' : ''}\n${tail(d.child.output)}`);
  ok(r.ms <= limitMs, `${label}: sserelay exits within ${limitMs} ms of SIGTERM (took ${r.ms} ms)`);
  const reps = sanitizerReports(d.child.output);
  ok(reps.length === 0, `${label}: no sanitizer reports in the daemon log`, tail(d.child.output, 60));
  return r;
}

// ---- headless Chromium -----------------------------------------------------

// The one way the tests start a browser (tests/chromium.t, demo.t, cors.t,
// tls.t, resume-clients.t): Debian's Chromium (CHROMIUM, default
// /usr/bin/chromium) driven by npm playwright-core, which downloads no
// browser of its own.
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--disable-dev-shm-usage', '--disable-breakpad'];

function chromiumPath() {
  const exe = process.env.CHROMIUM || '/usr/bin/chromium';
  return fs.existsSync(exe) ? exe : null;
}

// For a test that needs a browser: skips (fails under
// SSERELAY_REQUIRE_ALL=1) now, before anything starts, without Chromium
// or playwright-core.
function requireChromium() {
  const exe = chromiumPath();
  if (!exe) skipAll(`${process.env.CHROMIUM || '/usr/bin/chromium'} not found (apt-get install chromium)`);
  loadModule('playwright-core');
  return exe;
}

// Launches Chromium with CHROMIUM_FLAGS (extraArgs appended) in a fresh
// profile (--user-data-dir, a new directory under dir at each launch),
// HOME and XDG dirs there too; contextOptions go to playwright (e.g. a
// viewport).  Closed at cleanup or on the global timeout.
async function launchChromium(dir, { extraArgs = [], contextOptions = {} } = {}) {
  const exe = requireChromium();
  const { chromium } = loadModule('playwright-core');
  const home = fs.mkdtempSync(path.join(dir, 'chromium-home-'));
  const profile = fs.mkdtempSync(path.join(dir, 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    ...contextOptions,
    executablePath: exe,
    headless: true,
    timeout: 30000,
    args: [...CHROMIUM_FLAGS, ...extraArgs],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') },
  });
  onCleanup(() => context.close());
  onTimeout(() => { context.close().catch(() => {}); });
  diag(`headless Chromium ${context.browser() ? context.browser().version() : ''} (${exe})`);
  return context;
}

// Records a page's console lines, errors and requests (page.consoleLines,
// page.pageErrors, page.requests); the same for Playwright's Chromium and
// puppeteer's Firefox pages.
function recordPage(page) {
  page.consoleLines = [];
  page.pageErrors = [];
  page.requests = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => {
    page.pageErrors.push(e.message);
    page.consoleLines.push(`pageerror: ${e.message}`);
  });
  page.on('request', (r) => page.requests.push(r.url()));
  return page;
}

// The context's first page, with its console and errors recorded
// (page.consoleLines, page.pageErrors, page.requests) and /favicon.ico
// answered 204 so that it does not reach the daemon.
async function openPage(context, { first = true } = {}) {
  const page = recordPage((first && context.pages()[0]) || await context.newPage());
  await page.route('**/favicon.ico', (r) => r.fulfill({ status: 204, body: '' }));
  return page;
}

// ---- numbered messages -----------------------------------------------------

// PUBLISH {"n": from} .. {"n": from+count-1}, message i on
// channels[i % channels.length], in one write (cork/uncork): Redis reads
// them at once and sends them to the daemon's subscription together (one
// broker batch).  Resolves to the subscriber counts.
async function publishBurst(client, channels, from, count) {
  const ps = [];
  client.sock.cork();
  for (let i = from; i < from + count; i++) {
    ps.push(client.publish(channels[i % channels.length], JSON.stringify({ n: i })));
  }
  process.nextTick(() => client.sock.uncork());
  return Promise.all(ps);
}

// The same, one PUBLISH after the other's reply.
async function publishEach(client, channels, from, count) {
  for (let i = from; i < from + count; i++) {
    await client.publish(channels[i % channels.length], JSON.stringify({ n: i }));
  }
}

// The n of each received event ({"data": {"n": ...}}), or "?<data>".
function eventNumbers(got) {
  return got.map((g) => { try { return JSON.parse(g.data).data.n; } catch (_) { return `?${g.data}`; } });
}

// ---- a test CA and a server certificate ------------------------------------

// Makes, with openssl in dir, a test CA (ca.pem) and, for each name in
// `names` (default just 'server'), a certificate for 127.0.0.1 (IP SAN)
// and localhost signed by it (NAME.pem, NAME.key).  Returns the paths of
// the first and `spki`, base64(sha256(SPKI DER)) of its key: what
// Chromium's --ignore-certificate-errors-spki-list takes to trust this one
// key (not a blanket --ignore-certificate-errors).  Throws (with openssl's
// stderr) when openssl fails.
function makeTestPki(dir, { names = ['server'] } = {}) {
  const { execFileSync } = require('child_process');
  const openssl = (args, input) => execFileSync('openssl', args, { cwd: dir, input, stdio: ['pipe', 'pipe', 'pipe'] });
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-days', '2',
    '-keyout', 'ca.key', '-out', 'ca.pem', '-subj', '/CN=sserelay test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  fs.writeFileSync(path.join(dir, 'server.ext'), [
    'basicConstraints=CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    '',
  ].join('\n'));
  for (const n of names) {
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-sha256', '-keyout', `${n}.key`,
      '-out', `${n}.csr`, '-subj', `/CN=${n} 127.0.0.1`]);
    openssl(['x509', '-req', '-in', `${n}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key',
      '-CAcreateserial', '-sha256', '-days', '2', '-out', `${n}.pem`, '-extfile', 'server.ext']);
  }
  const pub = openssl(['x509', '-in', `${names[0]}.pem`, '-pubkey', '-noout']);
  const der = openssl(['pkey', '-pubin', '-outform', 'der'], pub);
  const spki = openssl(['dgst', '-sha256', '-binary'], der).toString('base64');
  return {
    ca: path.join(dir, 'ca.pem'), cert: path.join(dir, `${names[0]}.pem`),
    key: path.join(dir, `${names[0]}.key`), spki,
  };
}

// ---- headless Firefox ESR ----------------------------------------------------

// The one way the tests start Firefox (tests/firefox.t): Debian's Firefox
// ESR (FIREFOX, default /usr/bin/firefox-esr) driven by npm puppeteer-core
// over WebDriver BiDi (puppeteer-core downloads no browser; plain
// `puppeteer` would try to).  puppeteer writes its own test preferences
// into the profile (no updates, no telemetry, no safe browsing, ...);
// these are added to keep the browser off the network and off the daemon
// except for what a test asks for.
const FIREFOX_PREFS = {
  'network.proxy.type': 0,                       // direct, whatever the environment says
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'network.predictor.enabled': false,
  'network.trr.mode': 5,                         // no DNS over HTTPS
  'captivedetect.canonicalURL': '',
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'browser.safebrowsing.provider.google4.updateURL': '',
  'browser.safebrowsing.provider.mozilla.updateURL': '',
  'extensions.systemAddon.update.enabled': false,
  'extensions.blocklist.enabled': false,
  'app.update.auto': false,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.server': '',
  'datareporting.usage.uploadEnabled': false,
  'browser.ping-centre.telemetry': false,
  'browser.newtabpage.activity-stream.feeds.telemetry': false,
  'browser.chrome.site_icons': false,            // no /favicon.ico requests to the daemon
  'browser.tabs.unloadOnLowMemory': false,
};

function firefoxPath() {
  const exe = process.env.FIREFOX || '/usr/bin/firefox-esr';
  return fs.existsSync(exe) ? exe : null;
}

// For a test that needs Firefox: skips (fails under SSERELAY_REQUIRE_ALL=1)
// now, before anything starts, without Firefox or puppeteer-core.
function requireFirefox() {
  const exe = firefoxPath();
  if (!exe) skipAll(`${process.env.FIREFOX || '/usr/bin/firefox-esr'} not found (apt-get install firefox-esr)`);
  loadModule('puppeteer-core');
  return exe;
}

// Launches headless Firefox with FIREFOX_PREFS (prefs added) in a fresh
// profile (a new directory under dir at each launch, removed with the
// test's temporary directory), HOME and XDG dirs there too.  Returns the
// puppeteer Browser; browser.firefoxVersion is what Firefox reports.
// Closed at cleanup; on the global timeout, or if node exits first, its
// process group is killed by pid (puppeteer starts it as a group leader).
async function launchFirefox(dir, { prefs = {}, extraArgs = [] } = {}) {
  const exe = requireFirefox();
  const puppeteer = loadModule('puppeteer-core');
  const home = fs.mkdtempSync(path.join(dir, 'firefox-home-'));
  const profile = fs.mkdtempSync(path.join(dir, 'firefox-profile-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: exe,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: { ...FIREFOX_PREFS, ...prefs },
    args: extraArgs,
    timeout: 60000,
    protocolTimeout: 60000,
    // the harness handles signals (and closes the browser at cleanup)
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: path.join(home, '.config'),
      XDG_CACHE_HOME: path.join(home, '.cache'),
      MOZ_CRASHREPORTER_DISABLE: '1',
    },
  });
  const proc = browser.process();
  const killGroup = () => {
    if (proc && proc.pid && proc.exitCode === null && proc.signalCode === null) {
      try { process.kill(-proc.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    }
  };
  onCleanup(async () => {
    await Promise.race([browser.close().catch(() => {}), sleep(10000)]);
    killGroup();
  });
  onTimeout(killGroup);
  process.on('exit', killGroup);
  browser.firefoxVersion = await browser.version();
  diag(`headless Firefox ${browser.firefoxVersion} (${exe}), puppeteer-core ${puppeteerVersion()} over ${browser.protocol}`);
  return browser;
}

function puppeteerVersion() {
  try {
    const dir = process.env.SSERELAY_JS_MODULES;
    return JSON.parse(fs.readFileSync(path.join(path.resolve(dir), 'node_modules', 'puppeteer-core', 'package.json'), 'utf8')).version;
  } catch (_) { return '?'; }
}

// A new Firefox page with its console and errors recorded
// (page.consoleLines, page.pageErrors, page.requests), as openPage does
// for Chromium.
async function openFirefoxPage(browser) {
  return recordPage(await browser.newPage());
}

// ---- npm eventsource -------------------------------------------------------

// A fetch for `new EventSource(url, { fetch })` that records each
// connection attempt in `attempts`: its Last-Event-ID, status, headers,
// and the raw body as it arrives (a.raw; a.ended once it ended cleanly).
function fetchSpy(attempts) {
  return async (input, init) => {
    const hdrs = new Headers(init && init.headers);
    const a = { t: Date.now(), url: String(input), lastEventId: hdrs.get('last-event-id'), raw: '', ended: false };
    attempts.push(a);
    const res = await fetch(input, init);
    a.status = res.status;
    a.contentType = res.headers.get('content-type');
    a.cacheControl = res.headers.get('cache-control');
    if (!res.body) return res;
    const [mine, copy] = res.body.tee();
    (async () => {
      const dec = new TextDecoder();
      try {
        for await (const chunk of copy) a.raw += dec.decode(chunk, { stream: true });
        a.ended = true;
      } catch (e) { a.readError = e.message; }
    })();
    return new Response(mine, { status: res.status, statusText: res.statusText, headers: res.headers });
  };
}

// ---- the example publishers (tests/demo.t, tests/publishers.t) -------------

const EXAMPLES = path.resolve(process.env.TESTS_SRCDIR || __dirname, '..', 'examples');
const PYTHON = '/usr/bin/python3'; // Debian's, the one python3-redis is for

function inPath(prog, extraDirs = []) {
  for (const d of [...extraDirs, ...(process.env.PATH || '').split(':')]) {
    const p = path.join(d || '.', prog);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (_) { /* next */ }
  }
  return null;
}

// Checks what the publishers need: the files in examples/ (a failure, not
// a skip: they are part of the source tree), redis-cli (usually next to
// the redis-server the tests use), /usr/bin/python3 with redis-py, npm
// redis.  Returns { run(file, args, env) } which runs one publisher,
// resolving with { code, signal, output }.
function examplePublishers(files) {
  for (const f of files) {
    if (!fs.existsSync(path.join(EXAMPLES, f))) {
      process.stdout.write(`not ok 1 - ${path.join(EXAMPLES, f)} is missing (TESTS_SRCDIR=${process.env.TESTS_SRCDIR || ''})\n1..1\n`);
      process.exit(1);
    }
  }
  const redisDir = process.env.REDIS_SERVER ? path.dirname(process.env.REDIS_SERVER) : null;
  const redisCli = inPath('redis-cli', redisDir ? [redisDir] : []);
  if (!redisCli) skipAll('redis-cli not found (apt-get install redis-tools)');
  if (require('child_process').spawnSync(PYTHON, ['-c', 'import redis'], { stdio: 'ignore' }).status !== 0) {
    skipAll(`${PYTHON} cannot import redis (apt-get install python3-redis)`);
  }
  loadModule('redis'); // publish.js needs it: skip or fail here, not later
  const nodeModules = path.join(path.resolve(process.env.SSERELAY_JS_MODULES), 'node_modules');
  let runs = 0;
  return {
    redisCli,
    run(file, args, env) {
      const cmd = { 'publish.sh': '/bin/sh', 'publish.py': PYTHON, 'publish.js': process.execPath }[file];
      const child = spawnLogged(cmd, [path.join(EXAMPLES, file), ...args], `${file}.${++runs}.log`, {
        env: { ...env, PATH: `${path.dirname(redisCli)}:${process.env.PATH || ''}`, NODE_PATH: nodeModules },
      });
      // a publisher that hangs is killed (and then fails its test)
      const timer = setTimeout(() => { try { process.kill(child.pid, 'SIGKILL'); } catch (_) { /* gone */ } }, 30000);
      return child.exited.then((r) => { clearTimeout(timer); return { ...r, output: child.output }; });
    },
  };
}

// ---- HAProxy in front of several daemons -----------------------------------

// Debian's haproxy (HAPROXY overrides: a path, or a name looked up in
// PATH), as tests/lib/topology.py's find_haproxy finds it.
function haproxyPath() {
  const env = process.env.HAPROXY;
  if (env) {
    if (path.isAbsolute(env)) {
      try { fs.accessSync(env, fs.constants.X_OK); return env; } catch (_) { return null; }
    }
    return inPath(env);
  }
  return inPath('haproxy', ['/usr/sbin', '/usr/local/sbin']);
}

// An haproxy.cfg (e.g. examples/haproxy.cfg) with its first `bind` on
// 127.0.0.1:port and its `server` lines replaced by one per backend port
// (named sserelay1..N, with the first server line's options), and an admin
// `stats socket` added to the global section: tests/lib/topology.py's
// render_haproxy, line for line.
function renderHAProxy(text, port, backends, statsSocket) {
  const out = [];
  let serversDone = false, bindDone = false;
  for (const line of text.split('\n')) {
    let m = /^(\s*)bind\s+\S+(.*)$/.exec(line);
    if (m && !bindDone) {
      out.push(`${m[1]}bind 127.0.0.1:${port}${m[2]}`);
      bindDone = true;
      continue;
    }
    m = /^(\s*)server\s+\S+\s+\S+(.*)$/.exec(line);
    if (m) {
      if (!serversDone) {
        backends.forEach((b, i) => out.push(`${m[1]}server sserelay${i + 1} 127.0.0.1:${b}${m[2]}`));
        serversDone = true;
      }
      continue;
    }
    out.push(line);
    if (statsSocket && /^global\s*$/.test(line)) out.push(`\tstats socket ${statsSocket} mode 600 level admin`);
  }
  if (!bindDone || !serversDone) throw new Error('haproxy config without a bind or server line');
  return `${out.join('\n').replace(/\n+$/, '')}\n`;
}

// One command on an HAProxy admin socket (e.g. "show stat"); resolves
// with HAProxy's whole answer.
function haproxyAdmin(socketPath, command, timeoutMs = 5000) {
  return new Promise((resolve, reject) => {
    let data = '';
    const s = net.createConnection(socketPath);
    s.setTimeout(timeoutMs, () => s.destroy(new Error(`haproxy admin "${command}" timed out`)));
    s.on('connect', () => s.write(`${command}\n`));
    s.on('data', (d) => { data += d.toString('utf8'); });
    s.on('end', () => resolve(data));
    s.on('error', reject);
  });
}

let haproxyRuns = 0;

// Starts haproxy -db with renderHAProxy(configText) in front of the
// backend ports, on a free port (another one if that was taken in the
// meantime), after `haproxy -c` accepts the file, and waits until it
// listens and its admin socket is there.  Returns { port, cfg, child,
// admin(cmd), serverStats(), stop() }; serverStats() is "show stat" as
// { sserelay1: { status, scur, ... }, ... }.  Stopped at cleanup.
async function startHAProxy(configText, backends) {
  const exe = haproxyPath();
  if (!exe) throw new Error('haproxy not found (apt-get install haproxy)');
  const { spawnSync } = require('child_process');
  const dir = path.join(tmpDir, `haproxy-${++haproxyRuns}`);
  fs.mkdirSync(dir, { recursive: true });
  const cfg = path.join(dir, 'haproxy.cfg');
  const sock = path.join(dir, 'admin.sock');
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(cfg, renderHAProxy(configText, port, backends, sock));
    const c = spawnSync(exe, ['-c', '-f', cfg], { cwd: dir, encoding: 'utf8', timeout: 30000 });
    if (c.status !== 0) throw new Error(`haproxy -c rejects ${cfg}:\n${c.stdout}${c.stderr}`);
    const child = spawnLogged(exe, ['-db', '-f', cfg], `haproxy-${haproxyRuns}.log`, { cwd: dir });
    const stop = () => stopChild(child, { ms: 3000 });
    onCleanup(stop);
    try {
      await waitFor(async () => {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`haproxy exited (code ${child.exitCode}):\n${tail(child.output, 20)}`);
        }
        await new Promise((resolve, reject) => {
          const s = net.createConnection({ host: '127.0.0.1', port }, () => { s.destroy(); resolve(); });
          s.on('error', reject);
        });
        return fs.existsSync(sock);
      }, `haproxy listening on port ${port}`, 15000, 50);
    } catch (e) {
      await stop();
      // the free port was taken again in the meantime: another one
      if (attempt < 4 && /cannot bind|Address already in use/i.test(child.output)) continue;
      throw e;
    }
    return {
      port, cfg, child, stop,
      admin: (cmd) => haproxyAdmin(sock, cmd),
      async serverStats() {
        const lines = (await haproxyAdmin(sock, 'show stat')).split('\n').filter((l) => l.trim());
        if (!lines.length || !lines[0].startsWith('# ')) return {};
        const head = lines[0].slice(2).split(',');
        const out = {};
        for (const l of lines.slice(1)) {
          const v = l.split(',');
          const row = Object.fromEntries(head.map((k, i) => [k, v[i]]));
          if (row.svname !== 'FRONTEND' && row.svname !== 'BACKEND') out[row.svname] = row;
        }
        return out;
      },
    };
  }
}

// "id: <8 hex epoch>-<decimal seq>"
function parseId(id) {
  const m = /^([0-9a-f]{8})-([0-9]+)$/.exec(String(id));
  return m ? { epoch: m[1], seq: BigInt(m[2]) } : null;
}

module.exports = {
  ok, is, diag, run, finish, skipAll, requireAll, loadModule, tryModule, makeTmpDir,
  onCleanup, onTimeout, sleep, waitFor, freePort, spawnLogged, stopChild, tail,
  Resp, startRedis, startDaemon, stopDaemonChecked, waitStreams, healthz, httpGet,
  checkPrerequisites, sanitizerReports, parseId,
  chromiumPath, requireChromium, launchChromium, openPage, fetchSpy,
  firefoxPath, requireFirefox, launchFirefox, openFirefoxPage,
  makeTestPki, publishBurst, publishEach, eventNumbers,
  haproxyPath, renderHAProxy, haproxyAdmin, startHAProxy,
  EXAMPLES, PYTHON, inPath, examplePublishers,
  get tmpDir() { return tmpDir; },
};

#!/usr/bin/env node
'use strict';
// HTTP/2 in front (issue 15): examples/nginx.conf's HTTP/2 server block
// (commented out there; uncommented here by taking one "#" off each line,
// as the file says, with only ports, certificate and document root
// changed) run by Debian's nginx next to the example's plain server, with
// a test CA and certificate made here with openssl.  Headless Chromium,
// trusting only that key (--ignore-certificate-errors-spki-list), loads a
// page of the https origin and opens 10 EventSources on it, for 10
// different users, at once: all 10 open and receive their own PUBLISHed
// message, over h2 (the page's nextHopProtocol) and over ONE connection
// (nginx's access log: $server_protocol and $connection).
// The contrast README.md explains: the same 10 from a page of the plain
// HTTP/1.1 origin: Chromium opens 6 connections to an origin, so only 6
// streams reach the daemon and get the message published then; the other
// 4 stay CONNECTING, and each one gets through only when one of the 6 is
// closed.
//
// Needs nginx (/usr/sbin/nginx, NGINX to override), openssl, Chromium and
// SSERELAY_JS_MODULES; skips without them unless SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const EXAMPLE = path.join(h.EXAMPLES, 'nginx.conf');
const N = 10;

h.checkPrerequisites();
if (!fs.existsSync(EXAMPLE)) {
  process.stdout.write(`not ok 1 - ${EXAMPLE} is missing\n1..1\n`);
  process.exit(1);
}
const NGINX = (() => {
  if (process.env.NGINX) return fs.existsSync(process.env.NGINX) ? process.env.NGINX : null;
  return h.inPath('nginx', ['/usr/sbin', '/usr/local/sbin']);
})();
if (!NGINX) h.skipAll('nginx not found (apt-get install nginx)');
if (!h.inPath('openssl')) h.skipAll('openssl not found (apt-get install openssl)');
h.requireChromium();

// ---- the example, made runnable -------------------------------------------

// The example's HTTP/2 block, uncommented: the "#server {" line to its
// "#}", one leading "#" taken off each line.
function http2Block(text) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^#server \{\s*$/.test(l));
  const end = start < 0 ? -1 : lines.findIndex((l, i) => i > start && /^#\}\s*$/.test(l));
  if (start < 0 || end < 0) return null;
  return lines.slice(start, end + 1).map((l) => l.replace(/^#/, '')).join('\n');
}

// The example (its active part, then its HTTP/2 block) with only ports,
// certificate and document root changed; each change counted.
function siteConf(example, { httpPort, httpsPort, daemonPort, cert, key, root }) {
  const counts = {};
  const sub = (text, re, to, name) => text.replace(re, (m0) => {
    counts[name] = (counts[name] || 0) + 1;
    return m0.replace(re, to);
  });
  let plain = example.replace(/\n# ---- HTTP\/2 over TLS[\s\S]*$/, '\n');
  let h2 = http2Block(example) || '';
  plain = sub(plain, /^(\s*)listen 80;/m, `$1listen 127.0.0.1:${httpPort};`, 'listen 80');
  plain = sub(plain, /^\s*listen \[::\]:80;\n/m, '', 'listen [::]:80');
  plain = sub(plain, /\b127\.0\.0\.1:8080;/, `127.0.0.1:${daemonPort};`, 'upstream');
  plain = sub(plain, /^(\s*)root \/var\/www\/html;/m, `$1root ${root};`, 'root');
  h2 = sub(h2, /^(\s*)listen 443 ssl http2;/m, `$1listen 127.0.0.1:${httpsPort} ssl http2;`, 'listen 443');
  h2 = sub(h2, /^\s*listen \[::\]:443 ssl http2;\n/m, '', 'listen [::]:443');
  h2 = sub(h2, /^(\s*)ssl_certificate \S+;/m, `$1ssl_certificate ${cert};`, 'ssl_certificate');
  h2 = sub(h2, /^(\s*)ssl_certificate_key \S+;/m, `$1ssl_certificate_key ${key};`, 'ssl_certificate_key');
  h2 = sub(h2, /^(\s*)root \/var\/www\/html;/m, `$1root ${root};`, 'root');
  return { text: `${plain}\n${h2}\n`, h2, counts };
}

function mainConf(prefix) {
  const lines = ['worker_processes 1;', `pid ${prefix}/nginx.pid;`, `error_log ${prefix}/error.log info;`];
  if (process.getuid() === 0) {
    // as root nginx switches its workers to this user; they only proxy
    // and read the test page
    const grp = spawnSync('id', ['-gn', 'nobody'], { encoding: 'utf8' }).stdout.trim() || 'nogroup';
    lines.push(`user nobody ${grp};`);
  }
  return [...lines,
    'events { worker_connections 256; }',
    'http {',
    // one line per request: its connection number and protocol
    '    log_format sse \'$connection $server_protocol $status "$request"\';',
    `    access_log ${prefix}/access.log sse;`,
    `    client_body_temp_path ${prefix}/client_body;`,
    `    proxy_temp_path ${prefix}/proxy;`,
    `    fastcgi_temp_path ${prefix}/fastcgi;`,
    `    uwsgi_temp_path ${prefix}/uwsgi;`,
    `    scgi_temp_path ${prefix}/scgi;`,
    '    types { text/html html; }',
    `    include ${prefix}/sserelay-site.conf;`,
    '}', ''].join('\n');
}

// nginx -p PREFIX in the foreground; stopped (master and workers) by pid.
function nginxCmd(prefix, ...extra) {
  return [NGINX, ['-p', `${prefix}/`, '-c', `${prefix}/nginx.conf`, '-e', `${prefix}/error.log`, ...extra]];
}

function workersOf(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
  } catch (_) { return []; }
}

async function startNginx(prefix, ports) {
  const [cmd, args] = nginxCmd(prefix, '-g', 'daemon off;');
  const child = h.spawnLogged(cmd, args, 'nginx.stderr.log');
  let workers = [];
  const stop = async () => {
    workers = workers.concat(workersOf(child.pid));
    const r = await h.stopChild(child, { sig: 'SIGTERM', ms: 5000 });
    for (const w of workers) { try { process.kill(w, 'SIGKILL'); } catch (_) { /* gone */ } }
    return r;
  };
  h.onCleanup(stop);
  const net = require('net');
  const canConnect = (port) => new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
  await h.waitFor(async () => {
    if (child.exitCode !== null) return 'exited';
    for (const p of ports) if (!(await canConnect(p))) return false;
    return true;
  }, `nginx listening on ${ports.join(', ')}`, 15000, 50);
  if (child.exitCode !== null) throw new Error(`nginx exited: ${h.tail(child.output, 10)}`);
  workers = workersOf(child.pid);
  return { child, stop };
}

function nginxLog(prefix, name) {
  try { return fs.readFileSync(path.join(prefix, name), 'utf8'); } catch (_) { return ''; }
}

// ---- pages ------------------------------------------------------------------

// Opens n EventSources in the page, stream i for user <tag><i>; records
// per stream its readyState changes and messages in window.__es.
function openStreams(page, tag, n) {
  return page.evaluate(([t, k]) => {
    window.__es = [];
    for (let i = 0; i < k; i++) {
      const es = new EventSource(`/events?user=${t}${i}`);
      const rec = { es, opened: false, got: [] };
      es.onopen = () => { rec.opened = true; };
      es.onmessage = (ev) => { rec.got.push(JSON.parse(ev.data).data); };
      window.__es.push(rec);
    }
  }, [tag, n]);
}

function streamsState(page) {
  return page.evaluate(() => window.__es.map((r) => ({ rs: r.es.readyState, opened: r.opened, got: r.got.slice() })));
}

async function daemonStreams(port) {
  return (await h.healthz(port)).json.streams;
}

async function publishAll(redis, tag, n, what) {
  for (let i = 0; i < n; i++) await redis.client.publish(`user:${tag}${i}`, JSON.stringify({ to: i, what }));
}

h.run(async () => {
  const tmp = h.makeTmpDir('http2');
  let pki;
  try {
    pki = h.makeTestPki(tmp);
  } catch (e) {
    ok(false, 'openssl made a test CA and a server certificate', `${e.message}\n${e.stderr || ''}`);
    return;
  }
  ok(true, `openssl made a test CA and a certificate for 127.0.0.1 (SPKI ${pki.spki})`);

  const example = fs.readFileSync(EXAMPLE, 'utf8');
  const block = http2Block(example);
  ok(block !== null, 'examples/nginx.conf has the commented-out HTTP/2 server block ("#server {" to "#}")');
  if (block === null) return;
  for (const directive of ['listen 443 ssl http2;', 'proxy_http_version 1.1;', 'proxy_set_header Connection "";',
    'proxy_buffering off;', 'proxy_cache off;', 'proxy_read_timeout 1h;', 'ssl_certificate ', 'ssl_certificate_key ']) {
    ok(new RegExp(`^\\s*${directive.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm').test(block),
      `its HTTP/2 block sets ${directive.trim()}`);
  }

  // README.md shows the same block (its directives, comments aside)
  const directives = (text) => text.split('\n').map((l) => l.replace(/#.*$/, '').trim().replace(/\s+/g, ' '))
    .filter(Boolean);
  let readme = '';
  try { readme = fs.readFileSync(path.join(h.EXAMPLES, '..', 'README.md'), 'utf8'); } catch (_) { /* checked */ }
  const m = /\n### HTTP\/2\n[\s\S]*?\n```nginx\n([\s\S]*?)\n```\n/.exec(readme);
  is(m ? directives(m[1]) : null, directives(block), 'README.md ("### HTTP/2") shows the example\'s block');

  const redis = await h.startRedis();
  const d = await h.startDaemon({ redisUrl: redis.url, args: ['--heartbeat', '0.2'] });

  // nginx's prefix and the test page; as root the workers run as nobody:
  // the temporary directory must let them reach the page
  const prefix = path.join(tmp, 'nginx');
  const root = path.join(tmp, 'www');
  fs.mkdirSync(prefix);
  fs.mkdirSync(root);
  fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>sserelay http2</title><p>test page</p>\n');
  fs.chmodSync(tmp, 0o711);
  fs.chmodSync(root, 0o755);
  fs.chmodSync(path.join(root, 'index.html'), 0o644);

  let ng = null;
  let httpPort;
  let httpsPort;
  for (let attempt = 0; attempt < 4 && !ng; attempt++) {
    httpPort = await h.freePort();
    httpsPort = await h.freePort();
    const site = siteConf(example, { httpPort, httpsPort, daemonPort: d.port, cert: pki.cert, key: pki.key, root });
    fs.writeFileSync(path.join(prefix, 'sserelay-site.conf'), site.text);
    fs.writeFileSync(path.join(prefix, 'nginx.conf'), mainConf(prefix));
    if (attempt === 0) {
      is(site.counts, {
        'listen 80': 1, 'listen [::]:80': 1, upstream: 1, root: 2, 'listen 443': 1, 'listen [::]:443': 1,
        ssl_certificate: 1, ssl_certificate_key: 1,
      }, 'the example changed only in its ports, certificate paths and document roots, each once');
      const [cmd, args] = nginxCmd(prefix, '-t');
      const t = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000 });
      const out = `${t.stdout || ''}${t.stderr || ''}`;
      ok(t.status === 0 && /test is successful/.test(out), 'nginx -t passes with both server blocks of the example', out);
      ok(!/\[(warn|emerg)\]/.test(out), 'nginx -t prints no warning', out);
    }
    try {
      ng = await startNginx(prefix, [httpPort, httpsPort]);
    } catch (e) {
      const log = nginxLog(prefix, 'error.log');
      if (!/in use/.test(log) || attempt === 3) {
        ok(false, 'nginx starts with the example', `${e.message}\n${log}`);
        return;
      }
      diag(`port taken, again: ${e.message}`);
    }
  }
  ok(true, `nginx runs the example: http on ${httpPort}, https (HTTP/2) on ${httpsPort}, sserelay on ${d.port}`);

  const context = await h.launchChromium(tmp, { extraArgs: [`--ignore-certificate-errors-spki-list=${pki.spki}`] });

  // ---- HTTP/2: 10 streams from one page, all open at once ----
  const page = await h.openPage(context);
  const resp = await page.goto(`https://127.0.0.1:${httpsPort}/`, { timeout: 30000 });
  is(resp && resp.status(), 200, 'Chromium loads the test page over https through nginx (trusting the test key only)');
  const proto = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  is(proto, 'h2', 'the page came over HTTP/2 (nextHopProtocol)');

  await openStreams(page, 'h2u', N);
  await h.waitFor(async () => (await streamsState(page)).every((s) => s.rs === 1), `all ${N} EventSources OPEN`, 20000)
    .catch((e) => diag(e.message));
  let st = await streamsState(page);
  is(st.filter((s) => s.rs === 1).length, N, `over HTTP/2 all ${N} EventSources of the page are OPEN at once`);
  await h.waitStreams(d.port, N).catch((e) => diag(e.message));
  is(await daemonStreams(d.port), N, `sserelay has ${N} streams (one upstream connection each)`);
  await publishAll(redis, 'h2u', N, 'h2');
  await h.waitFor(async () => (await streamsState(page)).every((s) => s.got.length >= 1), `${N} messages`, 15000)
    .catch((e) => diag(e.message));
  st = await streamsState(page);
  is(st.map((s) => s.got), Array.from({ length: N }, (_, i) => [{ to: i, what: 'h2' }]),
    `each of the ${N} EventSources received its own user's message, and only that`);

  // nginx logs a request when it ends: close the streams, then read
  await page.evaluate(() => { for (const r of window.__es) r.es.close(); });
  const logRe = /^(\d+) (\S+) (\d+) "GET \/events\?user=h2u(\d+) (\S+)"$/;
  const evLines = () => nginxLog(prefix, 'access.log').split('\n').map((l) => logRe.exec(l)).filter(Boolean);
  await h.waitFor(() => evLines().length >= N, `${N} /events lines in nginx's access log`, 15000)
    .catch((e) => diag(e.message));
  const lines = evLines();
  is(lines.length, N, `nginx logged the ${N} streams`);
  is([...new Set(lines.map((m) => m[2]))], ['HTTP/2.0'], 'nginx served them as HTTP/2.0 ($server_protocol)');
  is(new Set(lines.map((m) => m[1])).size, 1, `all ${N} on one connection ($connection ${lines.length ? lines[0][1] : '?'})`);
  await h.waitFor(async () => (await daemonStreams(d.port)) === 0, 'the daemon\'s streams closed', 10000)
    .catch((e) => diag(e.message));
  is(await daemonStreams(d.port), 0, 'closing them in the browser closes them in sserelay (at its next heartbeat)');
  await page.close();

  // ---- HTTP/1.1: the same page on the plain origin gets 6 at a time ----
  const p1 = await h.openPage(context, { first: false });
  const r1 = await p1.goto(`http://127.0.0.1:${httpPort}/`, { timeout: 30000 });
  is(r1 && r1.status(), 200, 'Chromium loads the test page over plain http through nginx');
  is(await p1.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'http/1.1',
    'that page came over HTTP/1.1');
  await openStreams(p1, 'h1u', N);
  await h.waitFor(async () => (await streamsState(p1)).filter((s) => s.rs === 1).length >= 6, '6 OPEN', 20000)
    .catch((e) => diag(e.message));
  await h.waitStreams(d.port, 6).catch((e) => diag(e.message));
  // published now: every stream that is open gets it, one still queued in
  // the browser never will (a first connection replays nothing)
  await publishAll(redis, 'h1u', N, 'first');
  const firsts = async () => (await streamsState(p1)).filter((s) => s.got.some((g) => g.what === 'first')).length;
  await h.waitFor(async () => (await firsts()) >= 6, '6 messages', 15000).catch((e) => diag(e.message));
  st = await streamsState(p1);
  const openIdx = st.map((s, i) => (s.rs === 1 ? i : -1)).filter((i) => i >= 0);
  is(openIdx.length, 6, `over HTTP/1.1 only 6 of the ${N} EventSources are OPEN`);
  is(st.filter((s) => s.rs === 0 && !s.opened).length, N - 6, `the other ${N - 6} stay CONNECTING (queued in the browser)`);
  await h.waitFor(async () => (await daemonStreams(d.port)) === 6, 'sserelay at 6 streams', 10000)
    .catch((e) => diag(e.message));
  is(await daemonStreams(d.port), 6, 'sserelay has 6 streams');
  is(await firsts(), 6, 'the message published then reached the 6 open ones only');

  // each of the 6 that closes lets one queued EventSource through
  const seen = new Set(openIdx);
  for (let k = 0; k < N - 6; k++) {
    const victim = openIdx[k];
    await p1.evaluate((i) => window.__es[i].es.close(), victim);
    await h.waitFor(async () => (await streamsState(p1)).filter((s, i) => s.rs === 1 && !seen.has(i)).length >= 1,
      'a queued EventSource to open', 15000).catch((e) => diag(e.message));
    st = await streamsState(p1);
    const now = st.map((s, i) => (s.rs === 1 ? i : -1)).filter((i) => i >= 0);
    for (const i of now) seen.add(i);
    is(now.length, 6, `closing one of them lets exactly one queued EventSource open (${k + 1} of ${N - 6}): still 6 OPEN`);
  }
  await h.waitFor(async () => (await daemonStreams(d.port)) === 6, 'sserelay back at 6 streams', 10000)
    .catch((e) => diag(e.message));
  await publishAll(redis, 'h1u', N, 'second');
  const want = new Set(st.map((s, i) => (s.rs === 1 ? i : -1)).filter((i) => i >= 0));
  await h.waitFor(async () => (await streamsState(p1)).filter((s) => s.got.some((g) => g.what === 'second')).length >= 6,
    'the second messages', 15000).catch((e) => diag(e.message));
  st = await streamsState(p1);
  is(st.map((s, i) => s.got.map((g) => g.what).join('+') || '-'),
    st.map((s, i) => [openIdx.includes(i) ? 'first' : null, want.has(i) ? 'second' : null].filter(Boolean).join('+') || '-'),
    'the late ones missed the first message (they were not connected) and got the second');
  await p1.evaluate(() => { for (const r of window.__es) r.es.close(); });
  await p1.close();
  await context.close();

  const err = nginxLog(prefix, 'error.log');
  const bad = err.split('\n').filter((l) => /\[(emerg|alert|crit|error)\]/.test(l));
  ok(bad.length === 0, 'nginx error log has no errors', bad.join('\n').slice(0, 3000));
  const r = await ng.stop();
  ok(r.code === 0 || r.signal === 'SIGTERM', `nginx stopped (exit ${r.code}, signal ${r.signal})`);
  await h.stopDaemonChecked(d, 'sserelay');
}, { timeoutMs: 150000 });

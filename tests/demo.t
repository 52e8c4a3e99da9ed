#!/usr/bin/env node
'use strict';
// The web developer's demo, end to end: `sserelay --demo` serves
// examples/demo.html at /; headless Debian Chromium opens
// /?user=alice&upload=u7&upload=u9&upload=u8; the three example publishers
// (examples/publish.sh with redis-cli, publish.py with Debian's redis-py,
// publish.js with npm redis) each simulate one upload; the test reads the DOM
// (never a screenshot): every progress bar goes 0, 10, ... 100 % and ends
// complete, the three "Upload <id> finished" notifications appear, the
// connection shows open. Then the daemon is stopped (SIGTERM drain): the page
// shows reconnecting; started again on the same port: open, 1 reconnect, and
// a later notification arrives. A page with an invalid id shows closed.
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh: playwright-core, redis),
// Chromium (CHROMIUM, default /usr/bin/chromium), redis-cli, and
// /usr/bin/python3 with redis-py (python3-redis); skips without them unless
// SSERELAY_REQUIRE_ALL=1. The examples are found in $TESTS_SRCDIR/../examples.

const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const PYTHON = '/usr/bin/python3'; // Debian's, the one python3-redis is for
const EXAMPLES = path.resolve(process.env.TESTS_SRCDIR || __dirname, '..', 'examples');
const UPLOADS = { u7: 'publish.sh', u9: 'publish.py', u8: 'publish.js' };

function inPath(prog, extraDirs = []) {
  for (const d of [...extraDirs, ...(process.env.PATH || '').split(':')]) {
    const p = path.join(d || '.', prog);
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch (_) { /* next */ }
  }
  return null;
}

h.checkPrerequisites();
for (const f of ['demo.html', ...Object.values(UPLOADS)]) {
  // Not a skip: the examples are part of the source tree.
  if (!fs.existsSync(path.join(EXAMPLES, f))) {
    process.stdout.write(`not ok 1 - ${path.join(EXAMPLES, f)} is missing (TESTS_SRCDIR=${process.env.TESTS_SRCDIR || ''})\n1..1\n`);
    process.exit(1);
  }
}
if (!fs.existsSync(CHROMIUM)) h.skipAll(`${CHROMIUM} not found (apt-get install chromium)`);
// redis-cli usually sits next to the redis-server the tests use.
const redisDir = process.env.REDIS_SERVER ? path.dirname(process.env.REDIS_SERVER) : null;
const redisCli = inPath('redis-cli', redisDir ? [redisDir] : []);
if (!redisCli) h.skipAll('redis-cli not found (apt-get install redis-tools)');
if (spawnSync(PYTHON, ['-c', 'import redis'], { stdio: 'ignore' }).status !== 0) {
  h.skipAll(`${PYTHON} cannot import redis (apt-get install python3-redis)`);
}
const { chromium } = h.loadModule('playwright-core');
h.loadModule('redis'); // publish.js needs it; skip/fail here rather than later
const nodeModules = path.join(path.resolve(process.env.SSERELAY_JS_MODULES), 'node_modules');

// Runs one example publisher; resolves with { code, output }.
function runPublisher(file, upload, env) {
  const script = path.join(EXAMPLES, file);
  const cmd = { 'publish.sh': '/bin/sh', 'publish.py': PYTHON, 'publish.js': process.execPath }[file];
  const child = h.spawnLogged(cmd, [script, upload, 'alice'], `${file}.log`, {
    env: {
      ...process.env,
      PATH: `${path.dirname(redisCli)}:${process.env.PATH || ''}`,
      NODE_PATH: nodeModules,
      ...env,
    },
  });
  return child.exited.then((r) => ({ ...r, output: child.output }));
}

h.run(async () => {
  const tmp = h.makeTmpDir('demo');
  const redis = await h.startRedis();
  const common = ['--demo', '--retry', '500', '--heartbeat', '0.5'];
  let d = await h.startDaemon({ redisUrl: redis.url, args: common });
  const port = d.port;

  // ---- the page as the daemon serves it ----
  const source = fs.readFileSync(path.join(EXAMPLES, 'demo.html'), 'utf8');
  for (const p of ['/', '/demo.html']) {
    const r = await h.httpGet(port, p);
    is(r.status, 200, `GET ${p} with --demo: 200`);
    ok(/^text\/html\b/.test(r.headers['content-type'] || ''), `GET ${p}: Content-Type text/html (${r.headers['content-type']})`);
    ok(r.body === source, `GET ${p}: the body is examples/demo.html as built in (rebuild after editing it)`,
      `got ${r.body.length} bytes, examples/demo.html has ${source.length}`);
  }
  ok(!/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(source) && !/@import|url\(\s*["']?(?:https?:)?\/\//i.test(source),
    'demo.html loads nothing from elsewhere (no external src/href/url())');
  for (const [file, shebang] of [['publish.sh', '#!/bin/sh'], ['publish.py', '#!/usr/bin/python3'], ['publish.js', '#!/usr/bin/env node']]) {
    const f = path.join(EXAMPLES, file);
    const first = fs.readFileSync(f, 'utf8').split('\n')[0];
    let x = true;
    try { fs.accessSync(f, fs.constants.X_OK); } catch (_) { x = false; }
    ok(first === shebang && x, `examples/${file} is executable and starts with ${shebang}`, { first, executable: x });
  }

  // ---- headless Chromium ----
  const home = path.join(tmp, 'home');
  fs.mkdirSync(home, { recursive: true });
  const context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    viewport: { width: 390, height: 900 }, // a phone-sized window
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--disable-breakpad'],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') },
  });
  h.onCleanup(() => context.close());
  h.onTimeout(() => { context.close().catch(() => {}); });
  ok(true, `headless Chromium ${context.browser() ? context.browser().version() : ''} launched from ${CHROMIUM}`);

  const page = context.pages()[0] || await context.newPage();
  const pageErrors = [];
  const consoleLines = [];
  const requests = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('request', (r) => requests.push(r.url()));
  await page.route('**/favicon.ico', (r) => r.fulfill({ status: 204, body: '' }));

  const query = '?user=alice&upload=u7&upload=u9&upload=u8';
  const resp = await page.goto(`${d.base}/${query}`, { timeout: 15000 });
  is(resp && resp.status(), 200, `Chromium loads ${d.base}/${query}`);

  const dom = () => page.evaluate(() => ({
    state: document.querySelector('#state').dataset.state,
    stateText: document.querySelector('#state').textContent,
    readyState: document.querySelector('#ready-state').dataset.readyState,
    reconnects: document.querySelector('#reconnects').textContent,
    lastEventId: document.querySelector('#last-event-id').textContent,
    events: Number(document.querySelector('#event-count').textContent),
    uploads: [...document.querySelectorAll('#uploads [data-upload]')].map((li) => ({
      id: li.dataset.upload, pct: li.dataset.pct, state: li.dataset.state,
      value: li.querySelector('progress').value, shown: li.querySelector('.pct').textContent,
    })),
    notifications: [...document.querySelectorAll('#notifications li')].map((li) => ({
      channel: li.dataset.channel, kind: li.className, text: li.querySelector('.text').textContent,
    })),
    streamUrl: document.querySelector('#stream-url').textContent,
  }));
  const waitDom = (fn, what, ms = 10000) => h.waitFor(async () => fn(await dom()), what, ms, 50)
    .catch(async (e) => { diag(`${e.message}\nDOM: ${JSON.stringify(await dom())}`); return null; });

  await waitDom((s) => s.state === 'open', '#state open');
  let s = await dom();
  is([s.state, s.stateText, s.readyState, s.reconnects], ['open', 'open', '1', '0'],
    'the page shows the connection open (readyState 1, 0 reconnects)');
  is(s.streamUrl, '/events?user=alice&upload=u7&upload=u9&upload=u8', 'one EventSource for the user and all uploads, same origin');
  is(s.uploads.map((u) => [u.id, u.pct, u.state]), [['u7', '0', 'waiting'], ['u9', '0', 'waiting'], ['u8', '0', 'waiting']],
    'one progress bar per upload, at 0 %, in query order');
  for (const id of Object.keys(UPLOADS)) {
    is(await page.getByRole('progressbar', { name: `Upload ${id}` }).count(), 1, `the bar of ${id} is labelled "Upload ${id}" for assistive technology`);
  }
  is(s.notifications, [], 'no notifications yet');
  const es = requests.filter((u) => u.includes('/events?'));
  is(es.length, 1, 'the page opened exactly one /events stream');
  ok(requests.every((u) => u.startsWith(`${d.base}/`)), 'every request of the page goes to the daemon', requests);
  ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'nothing overflows sideways in a 390 px wide window');
  await h.waitStreams(port, 1);

  // Record every value each bar takes, in order: one mutation record per
  // change, even when several events are handled in one task; each record
  // holds the value before it, the element the last one.
  await page.evaluate(() => {
    window.__pctOld = {};
    for (const li of document.querySelectorAll('#uploads [data-upload]')) {
      const olds = window.__pctOld[li.dataset.upload] = [];
      new MutationObserver((records) => { for (const r of records) olds.push(r.oldValue); })
        .observe(li, { attributes: true, attributeFilter: ['data-pct'], attributeOldValue: true });
    }
  });

  // ---- the three publishers at once ----
  const env = { REDIS_URL: redis.url, DELAY_MS: '40' };
  const results = await Promise.all(Object.entries(UPLOADS).map(([id, file]) => runPublisher(file, id, env)));
  Object.entries(UPLOADS).forEach(([id, file], i) => {
    const r = results[i];
    ok(r.code === 0, `examples/${file} ${id} alice exits 0`, h.tail(r.output, 20));
    const lines = r.output.split('\n').filter((l) => l.startsWith('PUBLISH '));
    const want = [];
    for (let p = 0; p <= 100; p += 10) want.push(`PUBLISH upload:${id} {"pct":${p}}`);
    want.push(`PUBLISH user:alice {"type":"notification","text":"Upload ${id} finished"}`);
    is(lines.map((l) => l.replace(/ -> .*/, '')), want, `examples/${file}: prints each PUBLISH: 11 progress steps, then the notification`);
    ok(lines.length > 0 && lines.every((l) => / -> [1-9][0-9]* subscriber\(s\)$/.test(l)),
      `examples/${file}: every message reached the daemon (subscriber count >= 1)`, lines);
  });

  await waitDom((x) => x.uploads.every((u) => u.pct === '100') && x.notifications.length >= 3,
    'all bars at 100 % and 3 notifications');
  s = await dom();
  for (const u of s.uploads) {
    is([u.pct, u.value, u.shown, u.state], ['100', 100, '100 %', 'done'], `bar ${u.id} (${UPLOADS[u.id]}) reaches 100 % and shows complete`);
  }
  const pcts = await page.evaluate(() => {
    const out = {};
    for (const li of document.querySelectorAll('#uploads [data-upload]')) {
      const seq = [...window.__pctOld[li.dataset.upload], li.dataset.pct];
      out[li.dataset.upload] = seq.filter((v, i) => i === 0 || v !== seq[i - 1]);
    }
    return out;
  });
  for (const id of Object.keys(UPLOADS)) {
    is(pcts[id], ['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100'], `bar ${id} went through every step`);
  }
  is(s.notifications.map((n) => n.text).sort(), ['Upload u7 finished', 'Upload u8 finished', 'Upload u9 finished'],
    'the three notifications appear with their texts');
  ok(s.notifications.every((n) => n.channel === 'user:alice' && n.kind === 'notification'),
    'notifications are marked with their channel user:alice', s.notifications);
  is(s.events, 36, 'the page counted 36 events (3 x 12)');
  ok(h.parseId(s.lastEventId) !== null, `the last event id is shown (${s.lastEventId})`);
  is([s.state, s.readyState, s.reconnects], ['open', '1', '0'], 'still open, no reconnects');

  const shot = path.join(tmp, 'demo.png');
  await page.screenshot({ path: shot, fullPage: true });
  diag(`screenshot: ${shot} (kept with SSERELAY_KEEP_TMP=1)`);

  // ---- SIGTERM drain: the page shows it is coming back ----
  await h.stopDaemonChecked(d, 'first run');
  await waitDom((x) => x.state === 'reconnecting', '#state reconnecting', 5000);
  s = await dom();
  is([s.state, s.readyState], ['reconnecting', '0'], 'after the drain the page shows reconnecting (readyState 0)');

  d = await h.startDaemon({ redisUrl: redis.url, port, args: common });
  ok(true, `sserelay restarted on the same port ${port}`);
  await waitDom((x) => x.state === 'open', '#state open again', 20000);
  s = await dom();
  is([s.state, s.readyState, s.reconnects], ['open', '1', '1'], 'open again by itself, reconnects 1');

  await h.waitStreams(port, 1);
  await redis.client.publish('user:alice', '{"message":"back after restart"}');
  await redis.client.publish('user:alice', 'plain text');
  await waitDom((x) => x.notifications.length >= 5, '2 more notifications');
  s = await dom();
  is(s.notifications.slice(0, 2).map((n) => n.text), ['plain text', 'back after restart'],
    'notifications after the restart arrive, newest first (data.message, and a non-JSON payload as text)');

  // ---- a request the daemon refuses: the browser gives up, the page says so ----
  const bad = await context.newPage();
  await bad.goto(`${d.base}/?user=${encodeURIComponent('a b')}&upload=u7`, { timeout: 15000 });
  const closed = await bad.waitForFunction(() => document.querySelector('#state').dataset.state === 'closed', null, { timeout: 10000 })
    .then(() => true, (e) => { diag(e.message); return false; });
  ok(closed && await bad.evaluate(() => !document.querySelector('#reconnect').hidden),
    'an invalid id (400) shows closed and offers a Reconnect button');
  await bad.close();

  is(pageErrors, [], 'no JavaScript errors on the page');
  if (pageErrors.length || consoleLines.length) diag(`page console:\n${consoleLines.join('\n')}`);
  await context.close();
  await h.stopDaemonChecked(d, 'second run');
}, { timeoutMs: 90000 });

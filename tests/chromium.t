#!/usr/bin/env node
'use strict';
// Real browser: headless Debian Chromium (/usr/bin/chromium, driven by npm
// playwright-core; no browser is downloaded) opens
// new EventSource('/events?user=alice&upload=u7') from a page of the daemon's
// own origin (/healthz, so no CORS is involved), and records what it receives.
// Then the daemon is stopped (SIGTERM drain: the browser must go back to
// CONNECTING, not CLOSED), started again on the same port, and the same
// EventSource must reconnect by itself and receive a later event.
//
// Needs SSERELAY_JS_MODULES (see tests/js/install.sh) and Chromium
// (CHROMIUM env, default /usr/bin/chromium); skips without them unless
// SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

h.checkPrerequisites();
if (!fs.existsSync(CHROMIUM)) h.skipAll(`${CHROMIUM} not found (apt-get install chromium)`);
const { chromium } = h.loadModule('playwright-core');

h.run(async () => {
  const tmp = h.makeTmpDir('chromium');
  const redis = await h.startRedis();
  // --retry 500: the drain sends a jittered retry around it; keeps the
  // reconnection quick.
  const common = ['--retry', '500', '--heartbeat', '0.1'];
  let d = await h.startDaemon({ redisUrl: redis.url, args: common });
  const port = d.port;

  const home = path.join(tmp, 'home');
  fs.mkdirSync(home, { recursive: true });
  const context = await chromium.launchPersistentContext(path.join(tmp, 'chromium-profile'), {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--disable-dev-shm-usage', '--disable-breakpad'],
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: path.join(home, '.config'), XDG_CACHE_HOME: path.join(home, '.cache') },
  });
  h.onCleanup(() => context.close());
  h.onTimeout(() => { context.close().catch(() => {}); });
  ok(true, `headless Chromium ${context.browser() ? context.browser().version() : ''} launched from ${CHROMIUM}`);

  const page = context.pages()[0] || await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

  await page.route('**/favicon.ico', (r) => r.fulfill({ status: 204, body: '' }));
  const resp = await page.goto(`${d.base}/healthz`, { timeout: 15000 });
  is(resp && resp.status(), 200, 'page loads the daemon\'s /healthz (same origin)');

  await page.evaluate(() => {
    window.__got = [];
    window.__errors = [];
    window.__opens = 0;
    const es = new EventSource('/events?user=alice&upload=u7');
    window.__es = es;
    es.onopen = () => { window.__opens++; };
    es.onerror = () => { window.__errors.push({ t: Date.now(), readyState: es.readyState }); };
    es.onmessage = (ev) => {
      window.__got.push({ data: ev.data, lastEventId: ev.lastEventId, type: ev.type, origin: ev.origin });
    };
  });
  await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 })
    .catch((e) => diag(e.message));
  is(await page.evaluate(() => window.__es.readyState), 1, 'EventSource readyState is OPEN (1)');
  await h.waitStreams(port, 1);

  const payloads = [
    ['user:alice', '{"step":1}'],
    ['upload:u7', 'half way: 50% — ünïcödé ✓'],
    ['user:alice', '{"step":3,"done":true,"list":[1,"two",null]}'],
  ];
  for (const [ch, p] of payloads) {
    const n = await redis.client.publish(ch, p);
    ok(n >= 1, `PUBLISH ${ch} reaches a subscriber (${n})`);
  }
  await page.waitForFunction(() => window.__got.length >= 3, null, { timeout: 10000 })
    .catch((e) => diag(e.message));
  // A moment for anything extra (there must be nothing; heartbeats every
  // 0.1 s are comments and dispatch nothing).
  await h.sleep(500);
  const got = await page.evaluate(() => window.__got);
  is(got.length, 3, 'the page received exactly 3 events');
  const bodies = got.map((g) => { try { return JSON.parse(g.data); } catch (_) { return { unparsable: g.data }; } });
  is(bodies, [
    { channel: 'user:alice', data: { step: 1 } },
    { channel: 'upload:u7', data: 'half way: 50% — ünïcödé ✓' },
    { channel: 'user:alice', data: { step: 3, done: true, list: [1, 'two', null] } },
  ], 'contents and order of the events (JSON envelope, UTF-8 intact)');
  ok(got.every((g) => g.type === 'message'), 'all dispatched to onmessage as "message"');
  is([...new Set(got.map((g) => g.origin))], [d.base], 'event origin is the daemon');
  const ids = got.map((g) => h.parseId(g.lastEventId));
  ok(got.every((g) => g.lastEventId.length > 0) && ids.every(Boolean),
    'every event has a lastEventId of the form <8 hex>-<seq>', got.map((g) => g.lastEventId));
  if (ids.every(Boolean)) {
    ok(ids.every((x, i) => i === 0 || (x.epoch === ids[0].epoch && x.seq > ids[i - 1].seq)),
      'lastEventId increases', got.map((g) => g.lastEventId));
  }
  is(await page.evaluate(() => window.__es.readyState), 1, 'EventSource still OPEN after the events');
  is(await page.evaluate(() => window.__errors.length), 0, 'no error events so far');

  // ---- SIGTERM drain: the browser must plan to come back ----
  await h.stopDaemonChecked(d, 'first run');
  await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 5000 }).catch((e) => diag(e.message));
  const errs = await page.evaluate(() => window.__errors);
  ok(errs.length > 0 && errs[0].readyState === 0,
    'after the drain the browser fires error with readyState CONNECTING (will reconnect)', errs);
  ok(await page.evaluate(() => window.__es.readyState) !== 2, 'EventSource is not CLOSED');

  d = await h.startDaemon({ redisUrl: redis.url, port, args: common });
  ok(true, `sserelay restarted on the same port ${port}`);
  await page.waitForFunction(() => window.__es.readyState === 1 && window.__opens >= 2, null, { timeout: 20000 })
    .catch((e) => diag(e.message));
  const st = await page.evaluate(() => ({ rs: window.__es.readyState, opens: window.__opens, errors: window.__errors }));
  ok(st.rs === 1 && st.opens >= 2, `the same EventSource reconnected by itself (opens=${st.opens})`, st);

  await h.waitStreams(port, 1);
  const n = await redis.client.publish('upload:u7', '{"after":"restart"}');
  ok(n >= 1, `PUBLISH after restart reaches a subscriber (${n})`);
  await page.waitForFunction(() => window.__got.length >= 4, null, { timeout: 10000 }).catch((e) => diag(e.message));
  const all = await page.evaluate(() => window.__got);
  is(all.length, 4, 'one more event after the restart');
  if (all.length >= 4) {
    let body = null;
    try { body = JSON.parse(all[3].data); } catch (_) { /* checked below */ }
    is(body, { channel: 'upload:u7', data: { after: 'restart' } }, 'event after restart: envelope and payload');
    ok(h.parseId(all[3].lastEventId) !== null, `event after restart has an id (${all[3].lastEventId})`);
  }

  if (consoleLines.length) diag(`page console:\n${consoleLines.join('\n')}`);
  await page.evaluate(() => window.__es.close());
  await context.close();
  await h.stopDaemonChecked(d, 'second run');
});

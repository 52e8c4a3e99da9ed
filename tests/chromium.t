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

const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
h.requireChromium();

h.run(async () => {
  const tmp = h.makeTmpDir('chromium');
  const redis = await h.startRedis();
  // --retry 500: the drain sends a jittered retry around it; keeps the
  // reconnection quick.
  const common = ['--retry', '500', '--heartbeat', '0.1'];
  let d = await h.startDaemon({ redisUrl: redis.url, args: common });
  const port = d.port;

  const context = await h.launchChromium(tmp);
  const page = await h.openPage(context);
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
  // Heartbeats (every 0.1 s) are comments and must dispatch nothing: once
  // the daemon has queued a few more of them, a last message marks the
  // end, and nothing may have come between.
  const hb0 = (await h.healthz(port)).json.heartbeats;
  await h.waitFor(async () => (await h.healthz(port)).json.heartbeats >= hb0 + 3, '3 more heartbeats', 10000)
    .catch((e) => diag(e.message));
  await redis.client.publish('user:alice', '"end"');
  await page.waitForFunction(() => window.__got.length >= 4, null, { timeout: 10000 })
    .catch((e) => diag(e.message));
  const got = await page.evaluate(() => window.__got);
  is(got.length && got[got.length - 1].data, '{"channel":"user:alice","data":"end"}',
    'the marker published last arrives last');
  got.pop();
  is(got.length, 3, 'the page received exactly 3 events before it (heartbeats dispatched nothing)');
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
  await page.waitForFunction(() => window.__got.length >= 5, null, { timeout: 10000 }).catch((e) => diag(e.message));
  const all = await page.evaluate(() => window.__got);
  is(all.length, 5, 'one more event after the restart');
  if (all.length >= 5) {
    let body = null;
    try { body = JSON.parse(all[4].data); } catch (_) { /* checked below */ }
    is(body, { channel: 'upload:u7', data: { after: 'restart' } }, 'event after restart: envelope and payload');
    ok(h.parseId(all[4].lastEventId) !== null, `event after restart has an id (${all[4].lastEventId})`);
  }

  if (page.consoleLines.length) diag(`page console:\n${page.consoleLines.join('\n')}`);
  await page.evaluate(() => window.__es.close());
  await context.close();
  await h.stopDaemonChecked(d, 'second run');
});

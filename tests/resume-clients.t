#!/usr/bin/env node
'use strict';
// Exact resume with real clients (issue 5, "Tests that must exist"): the npm
// `eventsource` package and headless Chromium (tests/js/harness.js's
// launchChromium, as every browser test), each in turn:
//  1. receives messages;
//  2. the daemon drops its stream by the slow-client close: --ring-size 4 and
//     a burst of 50 PUBLISHes in one pipelined write (one broker batch)
//     overflow the ring, the stream ends with "retry: 200";
//  3. the client reconnects BY ITSELF with its Last-Event-ID, and every
//     message published (before, the burst, 5 more while it reconnects, 3
//     after, then one more once those arrived, which marks the end) is seen
//     exactly once, in order, with no reset;
//  4. the daemon is restarted (SIGTERM drain, start again on the same port):
//     the client's resume yields one `reset` event (addEventListener) whose
//     data.reason is unknown-epoch, then live messages again.
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh) and Chromium (CHROMIUM,
// default /usr/bin/chromium); skips without them unless SSERELAY_REQUIRE_ALL=1.

const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const CHANNELS = ['user:rc', 'upload:rcu'];
const STREAM_PATH = '/events?user=rc&upload=rcu';

h.checkPrerequisites();
const { EventSource } = h.loadModule('eventsource');
if (typeof EventSource !== 'function') h.skipAll('npm eventsource does not export EventSource');
const haveChromium = h.chromiumPath() !== null;

// Message i on CHANNELS[i % 2]; a burst in one write, more than
// --ring-size 4 for the stream (tests/js/harness.js).
const publishBurst = (client, from, count) => h.publishBurst(client, CHANNELS, from, count);
const publishEach = (client, from, count) => h.publishEach(client, CHANNELS, from, count);
const numbers = h.eventNumbers;

// ---- the two clients, behind one small interface -------------------------

function eventsourceDriver() {
  const st = { got: [], resets: [], errors: [], opens: 0, attempts: [] };
  let es = null;
  return {
    name: 'npm eventsource',
    async open(url) {
      es = new EventSource(url, { fetch: h.fetchSpy(st.attempts) });
      h.onCleanup(() => es.close());
      es.onopen = () => { st.opens++; };
      es.onerror = (e) => { st.errors.push({ t: Date.now(), message: e && e.message }); };
      es.onmessage = (ev) => { st.got.push({ data: ev.data, lastEventId: ev.lastEventId }); };
      es.addEventListener('reset', (ev) => { st.resets.push({ data: ev.data, lastEventId: ev.lastEventId, at: st.got.length }); });
    },
    async state() {
      return { rs: es.readyState, opens: st.opens, got: st.got.slice(), resets: st.resets.slice(), errors: st.errors.length };
    },
    attempts() { return st.attempts.map((a) => ({ lastEventId: a.lastEventId, status: a.status })); },
    firstBody() { return st.attempts[0] ? st.attempts[0] : null; },
    async close() { if (es) es.close(); },
  };
}

async function chromiumDriver(tmp) {
  const context = await h.launchChromium(tmp);
  const page = await h.openPage(context);
  // Chromium adds Last-Event-ID in its network stack, where playwright does
  // not see it (not even allHeaders()): the daemon's log shows it instead.
  const attempts = () => page.requests.filter((u) => u.includes('/events?'));
  return {
    name: `headless Chromium ${context.browser() ? context.browser().version() : ''}`,
    consoleLines: page.consoleLines,
    async open(url) {
      // a page of the daemon's own origin, so no CORS is involved
      const u = new URL(url);
      await page.goto(`${u.origin}/healthz`, { timeout: 15000 });
      await page.evaluate((p) => {
        window.__st = { got: [], resets: [], errors: 0, opens: 0 };
        const es = new EventSource(p);
        window.__es = es;
        es.onopen = () => { window.__st.opens++; };
        es.onerror = () => { window.__st.errors++; };
        es.onmessage = (ev) => { window.__st.got.push({ data: ev.data, lastEventId: ev.lastEventId }); };
        es.addEventListener('reset', (ev) => {
          window.__st.resets.push({ data: ev.data, lastEventId: ev.lastEventId, at: window.__st.got.length });
        });
      }, u.pathname + u.search);
    },
    async state() {
      return page.evaluate(() => ({ rs: window.__es.readyState, ...window.__st }));
    },
    attempts() { return null; },
    requests() { return attempts().length; },
    firstBody() { return null; },
    async close() {
      await page.evaluate(() => window.__es.close()).catch(() => {});
      await context.close();
    },
  };
}

// ---- the scenario --------------------------------------------------------

async function scenario(redis, driver, label) {
  const args = ['--ring-size', '4', '--retry', '200', '--heartbeat', '0.5', '--log-level', 'debug'];
  let d = await h.startDaemon({ redisUrl: redis.url, args });
  const port = d.port;
  const waitState = async (pred, what, ms = 10000) => {
    try {
      return await h.waitFor(async () => { const s = await driver.state(); return pred(s) ? s : null; }, what, ms);
    } catch (e) {
      diag(`${label}: ${e.message}`);
      return driver.state();
    }
  };

  await driver.open(`${d.base}${STREAM_PATH}`);
  await waitState((s) => s.rs === 1, 'OPEN');
  await h.waitStreams(port, 1);
  ok(true, `${label}: ${driver.name} connected`);

  // 1. messages 0..4
  await publishEach(redis.client, 0, 5);
  let s = await waitState((x) => x.got.length >= 5, '5 events');
  is(numbers(s.got), [0, 1, 2, 3, 4], `${label}: receives messages 0..4`);

  // 2. a burst of 50 in one write overflows --ring-size 4: slow close
  const h0 = (await h.healthz(port)).json;
  const counts = await publishBurst(redis.client, 5, 50);
  ok(counts.every((c) => c >= 1), `${label}: the burst of 50 reached the daemon`);
  // 3. five more while the client is away (retry: 200)
  await publishEach(redis.client, 55, 5);
  await h.waitFor(async () => (await h.healthz(port)).json.slow_closes > h0.slow_closes,
    'slow close', 5000).catch((e) => diag(e.message));
  const h1 = (await h.healthz(port)).json;
  ok(h1.slow_closes > h0.slow_closes, `${label}: the daemon closed the stream as slow (/healthz slow_closes ${h0.slow_closes} -> ${h1.slow_closes})`);
  s = await waitState((x) => x.opens >= 2 && x.rs === 1 && x.got.length >= 60, 'reconnect and 60 events');
  ok(s.opens >= 2, `${label}: the client reconnected by itself (opens=${s.opens})`);
  await h.waitStreams(port, 1);
  await publishEach(redis.client, 60, 3);
  s = await waitState((x) => x.got.length >= 63, '63 events');
  // One more, published now: a duplicate of anything before would have
  // been sent before it.
  await publishEach(redis.client, 63, 1);
  s = await waitState((x) => x.got.length >= 64, 'the last event');
  const want = Array.from({ length: 64 }, (_, i) => i);
  is(numbers(s.got), want, `${label}: every message (before, the burst, while reconnecting, after) seen exactly once, in order`);
  const seqs = s.got.map((g) => h.parseId(g.lastEventId));
  ok(seqs.every(Boolean) && seqs.every((x, i) => i === 0 || (x.epoch === seqs[0].epoch && x.seq > seqs[i - 1].seq)),
    `${label}: lastEventId increases along all of it`, s.got.map((g) => g.lastEventId));
  is(s.resets, [], `${label}: no reset event: the resume was complete`);

  const att = driver.attempts();
  const ids = new Set(s.got.map((g) => g.lastEventId));
  if (att) {
    ok(att.length >= 2 && att[0].lastEventId === null && att.slice(1).every((a) => a.lastEventId && ids.has(a.lastEventId)),
      `${label}: each reconnection sent Last-Event-ID = an id it had received`, att);
  }
  // the daemon's side (log-level debug): one resume per reconnection, each
  // from an id the client had received, none of them a reset
  const resumed = [...d.child.output.matchAll(/http: resume from '([^']*)': (\d+) events replayed/g)];
  ok(resumed.length === s.opens - 1 && resumed.every((m) => ids.has(m[1])) && resumed.some((m) => Number(m[2]) > 0)
    && !/http: resume from .*: reset/.test(d.child.output),
    `${label}: every reconnection resumed from an id the client had received (${resumed.map((m) => `${m[1]}: ${m[2]} replayed`).join(', ')})`,
    h.tail(d.child.output, 30));
  if (s.opens > 2) diag(`${label}: ${s.opens - 1} slow closes and resumes (--ring-size 4 also trips on ordinary publishing)`);
  const first = driver.firstBody();
  if (first) {
    ok(/\nretry: 200\n\n$/.test(first.raw), `${label}: the dropped stream ended with "retry: 200"`,
      JSON.stringify(first.raw.slice(-120)));
    const firstIds = [...first.raw.matchAll(/^id: (.*)$/gm)].map((m) => m[1]);
    is(att[1] && att[1].lastEventId, firstIds[firstIds.length - 1],
      `${label}: the first reconnection's Last-Event-ID is the last id of the dropped stream`);
  }
  const h2 = (await h.healthz(port)).json;
  ok(h2.resumes > h0.resumes && h2.replayed > h0.replayed,
    `${label}: /healthz counts the resume (resumes ${h0.resumes} -> ${h2.resumes}, replayed ${h0.replayed} -> ${h2.replayed})`);

  // 4. restart: the old epoch's id yields reset unknown-epoch
  const oldEpoch = seqs[0] && seqs[0].epoch;
  await h.stopDaemonChecked(d, `${label}: first run`);
  d = await h.startDaemon({ redisUrl: redis.url, port, args });
  s = await waitState((x) => x.resets.length >= 1 && x.rs === 1, 'reset after the restart', 15000);
  is(s.resets.length, 1, `${label}: after the restart one reset event`);
  if (s.resets.length) {
    let data = null;
    try { data = JSON.parse(s.resets[0].data); } catch (_) { /* checked */ }
    is(data && data.reason, 'unknown-epoch', `${label}: reset data.reason is unknown-epoch`);
    const rid = h.parseId(s.resets[0].lastEventId);
    ok(rid && rid.epoch !== oldEpoch, `${label}: the reset's id belongs to the new run (${s.resets[0].lastEventId})`);
    is(s.resets[0].at, 64, `${label}: the reset comes after the 64 messages, nothing replayed before it`);
  }
  await h.waitStreams(port, 1);
  await publishEach(redis.client, 64, 2);
  s = await waitState((x) => x.got.length >= 66, 'events after the restart');
  await publishEach(redis.client, 66, 1);
  s = await waitState((x) => x.got.length >= 67, 'the last event after the restart');
  is(numbers(s.got).slice(64), [64, 65, 66], `${label}: live messages after the reset, once each`);
  is(s.resets.length, 1, `${label}: still one reset`);
  await driver.close();
  await h.stopDaemonChecked(d, `${label}: second run`);
}

h.run(async () => {
  const tmp = h.makeTmpDir('resume-clients');
  const redis = await h.startRedis();
  await scenario(redis, eventsourceDriver(), 'eventsource');
  if (!haveChromium) {
    const exe = process.env.CHROMIUM || '/usr/bin/chromium';
    if (h.requireAll()) ok(false, `${exe} not found (SSERELAY_REQUIRE_ALL=1)`);
    else ok(true, `chromium scenario # SKIP ${exe} not found`);
    return;
  }
  const drv = await chromiumDriver(tmp);
  await scenario(redis, drv, 'chromium');
  if (drv.consoleLines.length) diag(`page console:\n${drv.consoleLines.join('\n')}`);
}, { timeoutMs: 90000 });

#!/usr/bin/env node
'use strict';
// Firefox as a real client (issue 15): Debian's Firefox ESR
// (/usr/bin/firefox-esr, FIREFOX to override), headless, driven by npm
// puppeteer-core over WebDriver BiDi (tests/js/harness.js's launchFirefox;
// no browser is downloaded).  A page of the daemon's own origin (/healthz,
// so no CORS) opens new EventSource('/events?user=ff&upload=ffu') and
// records what it receives:
//  1. PUBLISHed messages arrive (JSON format): envelope, UTF-8, order, ids,
//     and a NUL inside a payload survives as \u0000;
//  2. the daemon ends the stream by the slow-client close (--ring-size 4 and
//     a burst of 50 PUBLISHes in one write, as tests/resume-clients.t does
//     for Chromium): Firefox reconnects by itself with Last-Event-ID and
//     gets exactly the missed messages, in order, no duplicates, no reset;
//  3. the daemon is stopped (SIGTERM drain) and started again on the same
//     port: Firefox reconnects by itself, gets one `reset` event with
//     reason unknown-epoch, then live messages;
//  4. --format raw: a payload with NUL bytes arrives in Firefox without
//     them (as README.md and sserelay(8) say), in Chromium with them, and
//     the daemon did send them (a plain HTTP read of the same stream).
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh) and firefox-esr; skips
// without them unless SSERELAY_REQUIRE_ALL=1.  The Chromium half of 4 needs
// /usr/bin/chromium (CHROMIUM) too.

const http = require('http');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const CHANNELS = ['user:ff', 'upload:ffu'];
const STREAM_PATH = '/events?user=ff&upload=ffu';

h.checkPrerequisites();
h.requireFirefox();
const haveChromium = h.chromiumPath() !== null;
if (haveChromium) h.loadModule('playwright-core');

// Message i on CHANNELS[i % 2]; a burst in one write, more than
// --ring-size 4 for the stream (tests/js/harness.js).
const publishBurst = (client, from, count) => h.publishBurst(client, CHANNELS, from, count);
const publishEach = (client, from, count) => h.publishEach(client, CHANNELS, from, count);
const numbers = h.eventNumbers;

// Opens the EventSource in `page` (on the page's origin) and records
// messages, resets, opens and errors in window.__st.  Works in both
// browsers (puppeteer's and playwright's page.evaluate take the same form).
function openEventSource(page, streamPath) {
  return page.evaluate((p) => {
    window.__st = { got: [], resets: [], errors: [], opens: 0 };
    const es = new EventSource(p);
    window.__es = es;
    es.onopen = () => { window.__st.opens++; };
    es.onerror = () => { window.__st.errors.push(es.readyState); };
    es.onmessage = (ev) => {
      window.__st.got.push({
        data: ev.data, lastEventId: ev.lastEventId, type: ev.type, origin: ev.origin,
        codes: Array.from(ev.data, (c) => c.codePointAt(0)),
      });
    };
    es.addEventListener('reset', (ev) => {
      window.__st.resets.push({ data: ev.data, lastEventId: ev.lastEventId, at: window.__st.got.length });
    });
  }, streamPath);
}

async function pageState(page) {
  return page.evaluate(() => ({ rs: window.__es.readyState, ...window.__st }));
}

// Waits until pred(state of the page) holds; on timeout says so and
// returns the last state (the assertions that follow then fail with it).
async function waitState(page, pred, what, ms = 15000) {
  try {
    return await h.waitFor(async () => { const s = await pageState(page); return pred(s) ? s : null; }, what, ms, 50);
  } catch (e) {
    diag(e.message);
    return pageState(page);
  }
}

// The body of GET streamPath as raw bytes, until `until(buffer)` holds.
function rawStream(port, streamPath) {
  const st = { buf: Buffer.alloc(0), status: null };
  const req = http.get({ host: '127.0.0.1', port, path: streamPath, agent: false }, (res) => {
    st.status = res.statusCode;
    res.on('data', (d) => { st.buf = Buffer.concat([st.buf, d]); });
    res.on('error', () => {});
  });
  req.on('error', (e) => { st.error = e.message; });
  st.close = () => req.destroy();
  h.onCleanup(() => req.destroy());
  return st;
}

// ---- 1-3: JSON format, slow close and exact resume, restart --------------

async function jsonScenario(redis, browser) {
  const args = ['--ring-size', '4', '--retry', '200', '--heartbeat', '0.5', '--log-level', 'debug'];
  let d = await h.startDaemon({ redisUrl: redis.url, args });
  const port = d.port;
  const page = await h.openFirefoxPage(browser);
  // Last-Event-ID as Firefox sends it, when BiDi shows request headers
  const lastIds = [];
  page.on('request', (r) => {
    if (!r.url().includes('/events?')) return;
    const hd = r.headers();
    lastIds.push(Object.prototype.hasOwnProperty.call(hd, 'last-event-id') ? hd['last-event-id'] : null);
  });
  const resp = await page.goto(`${d.base}/healthz`, { timeout: 30000 });
  is(resp && resp.status(), 200, 'Firefox loads the daemon\'s /healthz (same origin)');
  await openEventSource(page, STREAM_PATH);
  let s = await waitState(page, (x) => x.rs === 1, 'OPEN');
  is(s.rs, 1, 'EventSource readyState is OPEN (1)');
  await h.waitStreams(port, 1);

  // 1. receiving
  const payloads = [
    ['user:ff', '{"step":1}'],
    ['upload:ffu', 'half way: 50% — ünïcödé ✓'],
    ['user:ff', Buffer.from('nul\0inside')],
  ];
  for (const [ch, p] of payloads) {
    const n = await redis.client.publish(ch, p);
    ok(n >= 1, `PUBLISH ${ch} reaches a subscriber (${n})`);
  }
  s = await waitState(page, (x) => x.got.length >= 3, '3 events');
  const bodies = s.got.map((g) => { try { return JSON.parse(g.data); } catch (_) { return { unparsable: g.data }; } });
  is(bodies, [
    { channel: 'user:ff', data: { step: 1 } },
    { channel: 'upload:ffu', data: 'half way: 50% — ünïcödé ✓' },
    { channel: 'user:ff', data: 'nul\0inside' },
  ], 'Firefox receives the events: JSON envelope, UTF-8 intact, a NUL kept as \\u0000 in JSON');
  ok(s.got.every((g) => g.type === 'message'), 'all dispatched to onmessage as "message"');
  is([...new Set(s.got.map((g) => g.origin))], [d.base], 'event origin is the daemon');
  const ids0 = s.got.map((g) => h.parseId(g.lastEventId));
  ok(ids0.every(Boolean) && ids0.every((x, i) => i === 0 || (x.epoch === ids0[0].epoch && x.seq > ids0[i - 1].seq)),
    'every event has an increasing lastEventId <8 hex>-<seq>', s.got.map((g) => g.lastEventId));
  const base = s.got.length;

  // 2. messages 0..4, then a burst of 50 in one write overflows --ring-size 4
  await publishEach(redis.client, 0, 5);
  s = await waitState(page, (x) => x.got.length >= base + 5, '5 more events');
  is(numbers(s.got.slice(base)), [0, 1, 2, 3, 4], 'receives messages 0..4');
  const opens0 = s.opens;
  const h0 = (await h.healthz(port)).json;
  const counts = await publishBurst(redis.client, 5, 50);
  ok(counts.every((c) => c >= 1), 'the burst of 50 reached the daemon');
  await publishEach(redis.client, 55, 5); // while Firefox is away (retry: 200)
  await h.waitFor(async () => (await h.healthz(port)).json.slow_closes > h0.slow_closes,
    'slow close', 10000).catch((e) => diag(e.message));
  const h1 = (await h.healthz(port)).json;
  ok(h1.slow_closes > h0.slow_closes,
    `the daemon closed the stream as slow (/healthz slow_closes ${h0.slow_closes} -> ${h1.slow_closes})`);
  s = await waitState(page, (x) => x.opens > opens0 && x.rs === 1 && x.got.length >= base + 60, 'reconnect and 60 events', 20000);
  ok(s.opens > opens0, `Firefox reconnected by itself (opens=${s.opens})`);
  await h.waitStreams(port, 1);
  await publishEach(redis.client, 60, 3);
  s = await waitState(page, (x) => x.got.length >= base + 63, '63 events');
  // one more, published now: a duplicate of anything before would have
  // been sent before it
  await publishEach(redis.client, 63, 1);
  s = await waitState(page, (x) => x.got.length >= base + 64, 'the last event');
  const got = s.got.slice(base);
  is(numbers(got), Array.from({ length: 64 }, (_, i) => i),
    'every message (before, the burst, while reconnecting, after) seen exactly once, in order');
  const seqs = s.got.map((g) => h.parseId(g.lastEventId));
  ok(seqs.every(Boolean) && seqs.every((x, i) => i === 0 || (x.epoch === seqs[0].epoch && x.seq > seqs[i - 1].seq)),
    'lastEventId increases along all of it', s.got.map((g) => g.lastEventId));
  is(s.resets, [], 'no reset event: the resume was complete');

  // the daemon's side (log-level debug): one resume per reconnection, each
  // from an id Firefox had received, none of them a reset
  const ids = new Set(s.got.map((g) => g.lastEventId));
  const resumed = [...d.child.output.matchAll(/http: resume from '([^']*)': (\d+) events replayed/g)];
  ok(resumed.length === s.opens - 1 && resumed.every((m) => ids.has(m[1])) && resumed.some((m) => Number(m[2]) > 0)
    && !/http: resume from .*: reset/.test(d.child.output),
    `every reconnection sent Last-Event-ID = an id Firefox had received (${resumed.map((m) => `${m[1]}: ${m[2]} replayed`).join(', ')})`,
    h.tail(d.child.output, 30));
  if (s.opens > 2) diag(`${s.opens - 1} slow closes and resumes (--ring-size 4 also trips on ordinary publishing)`);
  if (lastIds.length >= 2 && lastIds.slice(1).some((x) => x !== null)) {
    ok(lastIds[0] === null && lastIds.slice(1).every((x) => ids.has(x)),
      'BiDi shows the Last-Event-ID header of each reconnection, an id Firefox had received', lastIds);
  } else {
    diag(`BiDi request headers do not show Last-Event-ID (${JSON.stringify(lastIds)}); the daemon's log above does`);
  }
  const h2 = (await h.healthz(port)).json;
  ok(h2.resumes > h0.resumes && h2.replayed > h0.replayed,
    `/healthz counts the resume (resumes ${h0.resumes} -> ${h2.resumes}, replayed ${h0.replayed} -> ${h2.replayed})`);

  // 3. restart on the same port: the old epoch's id yields reset unknown-epoch
  const oldEpoch = seqs[0] && seqs[0].epoch;
  const total = s.got.length;
  const opens1 = s.opens;
  const errors1 = s.errors.length; // the slow closes fired some already
  await h.stopDaemonChecked(d, 'first run');
  s = await waitState(page, (x) => x.errors.length > errors1, 'error after the drain', 10000);
  ok(s.errors.length > errors1 && s.errors.slice(errors1).every((rs) => rs === 0) && s.rs === 0,
    'after the drain Firefox fires error and stays CONNECTING (will reconnect)',
    { rs: s.rs, errors: s.errors.slice(errors1) });
  d = await h.startDaemon({ redisUrl: redis.url, port, args });
  ok(true, `sserelay restarted on the same port ${port}`);
  s = await waitState(page, (x) => x.opens > opens1 && x.rs === 1 && x.resets.length >= 1, 'reconnect and reset', 30000);
  ok(s.opens > opens1 && s.rs === 1, `the same EventSource reconnected by itself (opens=${s.opens})`);
  is(s.resets.length, 1, 'after the restart one reset event');
  if (s.resets.length) {
    let data = null;
    try { data = JSON.parse(s.resets[0].data); } catch (_) { /* checked */ }
    is(data && data.reason, 'unknown-epoch', 'reset data.reason is unknown-epoch');
    const rid = h.parseId(s.resets[0].lastEventId);
    ok(rid && rid.epoch !== oldEpoch, `the reset's id belongs to the new run (${s.resets[0].lastEventId})`);
    is(s.resets[0].at, total, 'the reset comes after everything received before, nothing replayed before it');
  }
  await h.waitStreams(port, 1);
  await publishEach(redis.client, 64, 2);
  s = await waitState(page, (x) => x.got.length >= total + 2, 'events after the restart');
  await publishEach(redis.client, 66, 1);
  s = await waitState(page, (x) => x.got.length >= total + 3, 'the last event after the restart');
  is(numbers(s.got.slice(total)), [64, 65, 66], 'live messages after the reset, once each');
  is(s.resets.length, 1, 'still one reset');
  const nid = h.parseId(s.got[s.got.length - 1].lastEventId);
  ok(nid && nid.epoch !== oldEpoch, 'they carry ids of the new run');

  if (page.consoleLines.length) diag(`Firefox console:\n${page.consoleLines.join('\n')}`);
  await page.evaluate(() => window.__es.close());
  await page.close();
  await h.stopDaemonChecked(d, 'second run');
}

// ---- 4: --format raw and NUL bytes ----------------------------------------

const NUL_PAYLOADS = [
  // [payload bytes, what Chromium's e.data is, what Firefox's e.data is]
  ['a\0b', 'a\0b', 'ab'],
  ['x\0\0y\0', 'x\0\0y\0', 'xy'],
  ['line one\0\nline\0 two', 'line one\0\nline\0 two', 'line one\nline two'],
  ['no nul ✓', 'no nul ✓', 'no nul ✓'],
];

async function rawScenario(redis, browser, tmp) {
  const d = await h.startDaemon({ redisUrl: redis.url, args: ['--format', 'raw', '--heartbeat', '0.5'] });
  const clients = [];
  const ff = await h.openFirefoxPage(browser);
  await ff.goto(`${d.base}/healthz`, { timeout: 30000 });
  clients.push({ name: 'Firefox', page: ff, key: 2 });
  if (haveChromium) {
    const context = await h.launchChromium(tmp);
    const cr = await h.openPage(context);
    await cr.goto(`${d.base}/healthz`, { timeout: 30000 });
    clients.push({ name: 'Chromium', page: cr, key: 1 });
  } else if (h.requireAll()) {
    ok(false, `${process.env.CHROMIUM || '/usr/bin/chromium'} not found (SSERELAY_REQUIRE_ALL=1)`);
  } else {
    ok(true, `raw NUL in Chromium # SKIP ${process.env.CHROMIUM || '/usr/bin/chromium'} not found`);
  }
  for (const c of clients) await openEventSource(c.page, STREAM_PATH);
  const wire = rawStream(d.port, STREAM_PATH);
  for (const c of clients) await waitState(c.page, (x) => x.rs === 1, `${c.name} OPEN`);
  await h.waitStreams(d.port, clients.length + 1);

  for (const [p] of NUL_PAYLOADS) await redis.client.publish('user:ff', Buffer.from(p, 'utf8'));
  const n = NUL_PAYLOADS.length;
  // the events on the wire, each as its data lines (ids and comments left out)
  const wireEvents = () => wire.buf.toString('utf8').split('\n\n')
    .map((b) => b.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)))
    .filter((ls) => ls.length > 0);
  const wireWant = NUL_PAYLOADS.map(([p]) => p.split('\n'));
  await h.waitFor(() => wireEvents().length >= n, 'the raw events on the wire', 15000)
    .catch((e) => diag(e.message));
  is(wireEvents(), wireWant, 'the daemon sends the payload bytes as they are, NUL bytes included (one data: line per line)');
  wire.close();

  for (const c of clients) {
    const s = await waitState(c.page, (x) => x.got.length >= n, `${c.name}: ${n} events`);
    const want = NUL_PAYLOADS.map((x) => x[c.key]);
    is(s.got.map((g) => g.data), want,
      c.name === 'Firefox'
        ? 'Firefox drops NUL bytes from raw event data (documented)'
        : 'Chromium keeps NUL bytes in raw event data (documented)');
    is(s.got.map((g) => g.codes.filter((x) => x === 0).length), want.map((w) => [...w].filter((x) => x === '\0').length),
      `${c.name}: number of U+0000 in each e.data`);
    if (c.page.consoleLines.length) diag(`${c.name} console:\n${c.page.consoleLines.join('\n')}`);
    await c.page.evaluate(() => window.__es.close());
  }
  await h.stopDaemonChecked(d, 'raw run');
}

h.run(async () => {
  const tmp = h.makeTmpDir('firefox');
  const redis = await h.startRedis();
  const browser = await h.launchFirefox(tmp);
  ok(/^firefox\//.test(browser.firefoxVersion), `headless Firefox runs over WebDriver BiDi (${browser.firefoxVersion})`);
  await jsonScenario(redis, browser);
  await rawScenario(redis, browser, tmp);
}, { timeoutMs: 180000 });

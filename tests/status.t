#!/usr/bin/env node
'use strict';
// GET /status (issue 23): headless Debian Chromium (playwright-core, a
// phone-sized window) opens the page on --metrics-listen while streams open
// and close and messages flow, and reads its DOM (never a screenshot):
//  - the page is src/status.html as built in, loads nothing from elsewhere,
//    polls only the daemon's /healthz, throws no error, fits 390 px;
//  - while messages flow, every figure is what the /healthz answer it was
//    drawn from says (the page keeps that answer and the one before, for the
//    rates), and that answer is one /healthz gave: its counters lie between
//    two answers the test read itself just before and just after;
//  - with the traffic stopped (nothing published, no stream opening or
//    closing), the figures equal /healthz exactly and the rates are 0;
//  - streams opening and closing move the open streams figure, a bad
//    Last-Event-ID the resets table (malformed-id), a stream over
//    --max-streams the refusals table (limit: global), a client that does
//    not read the slow closes;
//  - Redis killed: the Redis figure turns DOWN and the change is listed;
//    Redis back: UP, listed after it;
//  - a daemon without --metrics-listen serves the page on its main listener,
//    and with --history-size 0 (no history_* in /healthz) draws no history.
// Every step waits for a condition; a figure is compared with /healthz only
// when the two cannot differ (frozen inputs, or the answer the page drew).
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh: playwright-core) and
// Chromium (CHROMIUM, default /usr/bin/chromium); skips without them unless
// SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
h.requireChromium();

const SOURCE = path.resolve(process.env.TESTS_SRCDIR || __dirname, '..', 'src', 'status.html');

// the page's own formatting (src/status.html)
const fmtInt = (n) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const fmtRate = (r) => (r < 10 ? r.toFixed(1) : fmtInt(r));
const sum = (o) => (o ? Object.values(o).reduce((a, b) => a + b, 0) : 0);
const COUNTERS = ['streams_total', 'redis_messages', 'events_delivered', 'redis_reconnects', 'slow_closes'];

// A stream read by node's http client (chunks decoded): s.text is its body.
function openStream(port, pathName, headers = {}) {
  const req = http.get({ host: '127.0.0.1', port, path: pathName, agent: false,
    headers: { Accept: 'text/event-stream', ...headers } });
  const s = { text: '', destroy: () => req.destroy() };
  req.on('response', (res) => {
    res.setEncoding('utf8');
    res.on('data', (d) => { s.text += d; });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  h.onCleanup(s.destroy);
  return s;
}
const dataLines = (s) => (s.text.match(/^data: /mg) || []).length;

// A client that sends its request and then reads nothing.
function deafStream(port, pathName) {
  const s = net.connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  s.on('connect', () => {
    s.pause();
    s.write(`GET ${pathName} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`);
  });
  h.onCleanup(() => s.destroy());
  return s;
}

h.run(async () => {
  const tmp = h.makeTmpDir('status');
  let redis = await h.startRedis();
  const mport = await h.freePort();
  const admin = (p) => h.httpGet(mport, p);
  const health = async () => (await h.healthz(mport)).json;
  const d = await h.startDaemon({
    redisUrl: redis.url,
    args: ['--metrics-listen', `127.0.0.1:${mport}`, '--heartbeat', '0.2', '--retry', '500',
      '--max-streams', '6', '--ring-size', '4', '--history-ttl', '3600'],
    ready: async () => (await h.healthz(mport)).status === 200,
  });

  // ---- the page as served ----
  const source = fs.readFileSync(SOURCE, 'utf8');
  let r = await admin('/status');
  is(r.status, 200, 'GET /status on --metrics-listen: 200');
  ok(/^text\/html; charset=utf-8$/.test(r.headers['content-type'] || ''), `Content-Type text/html; charset=utf-8 (${r.headers['content-type']})`);
  ok(r.body === source, 'the body is src/status.html as built in', `got ${r.body.length} bytes, src/status.html has ${source.length}`);
  ok(!/\b(?:src|href)\s*=\s*["']?(?:[a-z]+:)?\/\//i.test(source) && !/@import|url\(|@font-face/i.test(source)
    && !/<script[^>]+src=/i.test(source) && !/<link\b/i.test(source),
  'status.html loads nothing from elsewhere (no external script, style, font or url())');
  r = await h.httpGet(d.port, '/status');
  is(r.status, 404, 'with --metrics-listen the main listener answers 404 for /status');

  // ---- Chromium on it, phone-sized ----
  const context = await h.launchChromium(tmp, { contextOptions: { viewport: { width: 390, height: 900 } } });
  const page = await h.openPage(context);
  const base = `http://127.0.0.1:${mport}`;
  const resp = await page.goto(`${base}/status`, { timeout: 15000 });
  is(resp && resp.status(), 200, 'Chromium loads /status');

  // Everything the page shows, read in one task: a poll never lands halfway.
  const view = () => page.evaluate(() => {
    const root = document.getElementById('figures');
    const fig = (id) => { const e = document.getElementById(id); return { value: e.dataset.value, text: e.textContent }; };
    const rows = (id) => [...document.querySelectorAll(`#${id} tbody tr`)].map((tr) => ({
      key: tr.dataset.key, value: tr.dataset.value, text: [...tr.cells].map((c) => c.textContent),
    }));
    const ids = ['streams', 'streams-limit', 'streams-total', 'in-rate', 'delivered-rate', 'in-total', 'delivered-total',
      'reconnects', 'resets-total', 'refusals-total', 'slow-closes',
      'history-messages', 'history-bytes', 'history-channels', 'history-evicted', 'resumes'];
    return {
      polls: Number(root.dataset.polls),
      sample: root.dataset.sample ? JSON.parse(root.dataset.sample) : null,
      prev: root.dataset.prev ? JSON.parse(root.dataset.prev) : null,
      t: Number(root.dataset.t),
      prevT: Number(root.dataset.prevT),
      conn: document.getElementById('conn').dataset.state,
      redis: { state: document.getElementById('redis').dataset.state, text: document.getElementById('redis').textContent },
      changes: [...document.querySelectorAll('#redis-changes li')].map((li) => ({ state: li.dataset.state, text: li.textContent })),
      figs: Object.fromEntries(ids.map((id) => [id, fig(id)])),
      resets: rows('resets'),
      refusals: rows('refusals'),
      historyShown: !document.getElementById('group-history').hidden,
      paths: [...document.querySelectorAll('#chart-streams path, #chart-events path')].map((p) => p.getAttribute('d') || ''),
      redisRects: [...document.querySelectorAll('#chart-redis rect')].map((x) => x.getAttribute('class')),
      overflow: document.documentElement.scrollWidth > window.innerWidth,
    };
  });
  const waitView = (fn, what, ms = 20000) => h.waitFor(async () => { const v = await view(); return fn(v) ? v : null; }, what, ms, 50)
    .catch(async (e) => { diag(`${e.message}\nview: ${JSON.stringify(await view())}`); return null; });
  // a view drawn from an answer that /healthz gave after now: two polls on
  // (polls run one after the other, so the second was asked after this
  // call); three for the answer before it too
  const nextView = async (what, n = 2) => { const p = (await view()).polls; return waitView((v) => v.polls >= p + n, what); };

  // What the page shows, derived from the answer it was drawn from: the
  // figures of the page are all functions of (sample, prev, t, prevT).
  function expectFigures(v) {
    const s = v.sample, p = v.prev;
    const rate = (f) => (p && v.t > v.prevT && s[f] >= p[f] ? (s[f] - p[f]) / ((v.t - v.prevT) / 1000) : null);
    const out = {
      streams: s.streams, 'streams-limit': s.streams_max || s.connections_max, 'streams-total': s.streams_total, 'in-total': s.redis_messages,
      'delivered-total': s.events_delivered, reconnects: s.redis_reconnects,
      'resets-total': sum(s.resets), 'refusals-total': sum(s.auth_refusals) + sum(s.limit_refusals),
      'slow-closes': s.slow_closes, 'in-rate': rate('redis_messages'), 'delivered-rate': rate('events_delivered'),
    };
    if ('history_messages' in s) {
      Object.assign(out, { 'history-messages': s.history_messages, 'history-channels': s.history_channels,
        'history-evicted': s.history_evicted, resumes: s.resumes });
    }
    return out;
  }
  function figuresMatch(v, label) {
    const want = expectFigures(v);
    const bad = [];
    for (const [id, x] of Object.entries(want)) {
      const f = v.figs[id];
      if (x === null) { if (f.text !== '?') bad.push([id, f, x]); continue; }
      const text = /rate$/.test(id) ? fmtRate(x) : fmtInt(x);
      if (Math.abs(Number(f.value) - x) > 1e-9 * Math.max(1, x) || f.text !== text) bad.push([id, f, x, text]);
    }
    const rowsWant = (keys) => keys.flatMap((k) => Object.entries(v.sample[k] || {}).filter(([, n]) => n > 0)
      .map(([name, n]) => ({ key: `${k}.${name}`, value: String(n) })));
    const rowsGot = (rows) => rows.map((x) => ({ key: x.key, value: x.value }));
    if (JSON.stringify(rowsGot(v.resets)) !== JSON.stringify(rowsWant(['resets']))) bad.push(['resets', v.resets]);
    if (JSON.stringify(rowsGot(v.refusals)) !== JSON.stringify(rowsWant(['auth_refusals', 'limit_refusals']))) bad.push(['refusals', v.refusals]);
    if (v.redis.state !== v.sample.redis) bad.push(['redis', v.redis]);
    return ok(bad.length === 0, `${label}: every figure is what the /healthz answer it was drawn from says`, { bad, sample: v.sample });
  }

  let v = await waitView((x) => x.polls >= 2 && x.conn === 'live', 'two answers drawn');
  ok(v, 'the page polls /healthz and says live');
  if (!v) return;
  ok(v.historyShown && 'history_messages' in v.sample, 'history kept in memory: the history figures are drawn');
  ok(!v.overflow, 'nothing overflows sideways in a 390 px wide window');
  figuresMatch(v, 'idle');

  // ---- streams open, messages flow ----
  const streams = [0, 1, 2].map((i) => openStream(d.port, `/events?user=s${i}`));
  v = await waitView((x) => x.sample && x.sample.streams === 3, '3 streams on the page');
  is(v && v.figs.streams.text, '3', 'three streams opened: the page shows 3 open streams');
  let flowing = true;
  let published = 0;
  const pump = (async () => {
    while (flowing) {
      await h.publishEach(redis.client, ['user:s0', 'user:s1', 'user:s2'], published, 5);
      published += 5;
      await h.sleep(50);
    }
  })();
  for (let round = 1; round <= 3; round++) {
    const before = await health();
    v = await nextView(`a poll during traffic, round ${round}`);
    const after = await health();
    if (!v) break;
    figuresMatch(v, `traffic, round ${round}`);
    const s = v.sample;
    const between = COUNTERS.filter((k) => !(before[k] <= s[k] && s[k] <= after[k]));
    ok(between.length === 0 && s.streams === 3 && before.streams === 3 && after.streams === 3,
      `traffic, round ${round}: the answer the page drew lies between two /healthz answers read around it`,
      { between, before, sample: s, after });
  }
  v = await waitView((x) => x.figs['in-rate'].value !== '' && Number(x.figs['in-rate'].value) > 0, 'a rate above 0');
  ok(v && Number(v.figs['delivered-rate'].value) > 0, 'events in and delivered per second are above 0 while messages flow',
    v && v.figs);
  ok(v && v.paths.every((d) => /^M[\d.]+ [\d.]+/.test(d)), 'the streams and events charts have lines', v && v.paths);
  flowing = false;
  await pump;

  // ---- frozen: nothing published, nothing opening or closing ----
  // want[i]: the events stream i must have received once all is delivered
  const frozen = async (label, want) => {
    let before = null;
    await h.waitFor(async () => {
      before = await health();
      return before.redis_messages === published && want.every((n, i) => dataLines(streams[i]) >= n);
    }, `${label}: every message delivered`, 20000, 50).catch((e) => diag(e.message));
    const w = await nextView(`${label}: three polls after the traffic stopped`, 3);
    const after = await health();
    if (!w) return null;
    figuresMatch(w, label);
    const same = ['streams', ...COUNTERS, 'history_messages', 'history_bytes', 'history_channels', 'history_evicted']
      .filter((k) => before[k] !== after[k] || w.sample[k] !== after[k]);
    ok(same.length === 0 && JSON.stringify([w.sample.resets, w.sample.auth_refusals, w.sample.limit_refusals])
      === JSON.stringify([after.resets, after.auth_refusals, after.limit_refusals]),
    `${label}: the page shows what /healthz says now`, { same, before, page: w.sample, after });
    is([w.figs['in-rate'].text, w.figs['delivered-rate'].text], ['0.0', '0.0'], `${label}: no traffic, 0.0 /s in and delivered`);
    return w;
  };
  const perStream = [0, 1, 2].map((j) => Array.from({ length: published }, (_, i) => i).filter((i) => i % 3 === j).length);
  v = await frozen('frozen', perStream);
  is(v && [v.figs.streams.value, v.figs['streams-limit'].value, v.figs['in-total'].value, v.figs['delivered-total'].value],
    ['3', '6', String(published), String(published)], `frozen: 3 streams of at most 6, ${published} messages in and delivered`);

  // ---- streams close ----
  streams[1].destroy();
  streams[2].destroy();
  v = await waitView((x) => x.sample.streams === 1, 'the page shows 1 open stream');
  is(v && v.figs.streams.text, '1', 'two streams closed: the page shows 1 open stream');

  // ---- a reset: a Last-Event-ID that is not one ----
  const bad = openStream(d.port, '/events?user=r', { 'Last-Event-ID': 'not-an-id' });
  await h.waitFor(() => /event: reset/.test(bad.text), 'the reset event', 10000).catch((e) => diag(e.message));
  v = await waitView((x) => x.resets.some((row) => row.key === 'resets.malformed-id'), 'the malformed-id row');
  is(v && v.resets.map((row) => [row.key, row.text]), [['resets.malformed-id', ['malformed-id', '1', '1']]],
    'a bad Last-Event-ID: the resets table has malformed-id, 1 in 10 min and in all');
  bad.destroy();

  // ---- a slow close: a client that reads nothing, --ring-size 4 ----
  const slow = deafStream(d.port, '/events?user=slow');
  await h.waitStreams(mport, 2);
  const pad = 'p'.repeat(65536);
  let n = 0;
  while (n < 1000 && (await health()).slow_closes < 1) {
    await redis.client.publish('user:slow', pad);
    n++;
  }
  published += n;
  slow.destroy();
  v = await waitView((x) => x.sample.slow_closes >= 1, 'the slow close on the page');
  is(v && v.figs['slow-closes'].text, '1', `a client that does not read (after ${n} messages of 64 KiB): 1 slow close`);

  // ---- refusals: over --max-streams 6 ----
  const hold = [];
  for (let i = 0; i < 6; i++) hold.push(openStream(d.port, `/events?user=m${i}`));
  await h.waitFor(async () => (await health()).limit_refusals.global >= 1, 'a refusal', 10000).catch((e) => diag(e.message));
  v = await waitView((x) => x.refusals.some((row) => row.key === 'limit_refusals.global'), 'the global limit row');
  const refused = (await health()).limit_refusals.global;
  ok(v && v.refusals.length === 1 && v.refusals[0].key === 'limit_refusals.global'
    && v.refusals[0].text[0] === 'limit: global' && Number(v.refusals[0].value) >= 1,
  `streams over --max-streams 6: the refusals table has "limit: global" (${refused})`, v && v.refusals);
  for (const x of hold) x.destroy();
  await h.waitFor(async () => (await health()).streams === 1, 'back to 1 stream', 10000).catch((e) => diag(e.message));
  v = await frozen('frozen again', perStream.slice(0, 1));

  // ---- Redis killed, and back ----
  await h.stopChild(redis.child, { sig: 'SIGKILL' });
  v = await waitView((x) => x.redis.state === 'down', 'Redis DOWN on the page', 30000);
  is(v && v.redis.text, 'DOWN', 'Redis killed: the page shows Redis DOWN');
  const hd = await h.healthz(mport);
  is([hd.status, hd.json && hd.json.redis], [503, 'down'], '...as /healthz does (503, "redis":"down")');
  ok(v && v.changes.length >= 1 && v.changes[0].state === 'down' && /^down at \d\d:\d\d:\d\d( \(up .+\))?$/.test(v.changes[0].text),
    'the change is listed: "down at HH:MM:SS"', v && v.changes);
  redis = await h.startRedis({ port: redis.port });
  v = await waitView((x) => x.redis.state === 'up', 'Redis UP on the page', 30000);
  is(v && v.redis.text, 'UP', 'Redis back: the page shows Redis UP');
  ok(v && v.changes.length >= 2 && v.changes[0].state === 'up' && v.changes[1].state === 'down'
    && /^up at \d\d:\d\d:\d\d \(down \d+ s\)$/.test(v.changes[0].text),
  'both changes are listed, newest first: "up at HH:MM:SS (down N s)", then down', v && v.changes);
  ok(v && v.redisRects.includes('down') && v.redisRects.includes('up'), 'the Redis band is red where it was down, green where up',
    v && v.redisRects);
  is(v && v.figs.reconnects.value, String(v && v.sample.redis_reconnects), 'connections lost: as /healthz says');
  figuresMatch(v, 'Redis back');

  is(page.pageErrors, [], 'no page errors');
  const foreign = page.requests.filter((u) => !u.startsWith(`${base}/`));
  is(foreign, [], 'every request of the page goes to the metrics listener');
  ok(page.requests.filter((u) => u.endsWith('/healthz')).length >= 5, 'the page polls /healthz');
  await h.stopDaemonChecked(d, 'metrics-listen daemon', 5000);

  // ---- on the main listener, without a history ----
  const d2 = await h.startDaemon({ redisUrl: redis.url, args: ['--history-size', '0'] });
  r = await h.httpGet(d2.port, '/status');
  is(r.status, 200, 'without --metrics-listen /status is on the main listener');
  const page2 = await h.openPage(context, { first: false });
  await page2.goto(`${d2.base}/status`, { timeout: 15000 });
  const h2 = (await h.healthz(d2.port)).json;
  ok(h2 && !('history_messages' in h2), '--history-size 0: /healthz has no history_* field');
  const shown = await h.waitFor(() => page2.evaluate(() => (Number(document.getElementById('figures').dataset.polls) >= 2
    ? { history: !document.getElementById('group-history').hidden, streams: document.getElementById('streams').dataset.value,
      limit: document.getElementById('streams-limit').dataset.value } : null)),
  'page 2 polls', 20000, 50).catch((e) => { diag(e.message); return null; });
  ok(shown && !shown.history && shown.streams === '0', '...and the page draws no history, but the rest', shown);
  is(shown && shown.limit, String(h2 && h2.connections_max), 'without --max-streams the limit shown is the connection limit');
  is(page2.pageErrors, [], 'no page errors (main listener)');
  await h.stopDaemonChecked(d2, 'main-listener daemon', 5000);
}, { timeoutMs: 240000 });

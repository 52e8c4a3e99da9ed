#!/usr/bin/env node
'use strict';
// --history redis with real clients (issue 13): resume on any instance.
//
// What tests/durable.t does with its own Python client, here with the npm
// `eventsource` client, headless Chromium (npm playwright-core) and Firefox
// ESR (npm puppeteer-core over WebDriver BiDi), one after the other, each
// against a fresh pair of instances:
//
//  - two instances (--history redis --subscribe exact) behind HAProxy
//    (examples/haproxy.cfg, only its bind and server lines rewritten, and
//    an admin stats socket added) on one Redis;
//  - one EventSource on the 3 channels of one stream, opened through
//    HAProxy (the browsers from a page of HAProxy's origin);
//  - 2,000 messages at about 500/s, FCALL sserelay_publish, round robin
//    on the 3 channels;
//  - each time the client has received 90 more messages, it is moved: the
//    other instance is enabled in HAProxy (and seen UP), the one holding
//    the stream disabled and its sessions shut; the client reconnects BY
//    ITSELF with its Last-Event-ID, and lands on the other instance
//    (HAProxy's scur says which).  20 moves, alternately 10 on each; the
//    moves left when the publisher is done resume from the history alone;
//  - then one last message per channel: once those arrived, anything sent
//    twice would have come before them.  Each channel's messages are
//    exactly those sent, once each, in order; no `reset` event; every
//    message event has an id; 21 opens; each instance counted (/healthz
//    resumes) exactly the resumes that landed on it, and closed no stream
//    as too slow; both stop cleanly.
//
// --retry 100 (ms) keeps the reconnections quick; Firefox waits at least
// 500 ms whatever the retry, and misses about 100 messages of each
// channel meanwhile, all the default --history-size keeps: 1000 here, as
// this test is about exact resumes, not trimming (durable.t covers
// history-exceeded).  --log-level debug: the daemons' logs, kept with the
// temporary directory when a test fails, show each resume.
//
// Needs haproxy, SSERELAY_JS_MODULES (tests/js/install.sh), chromium and
// firefox-esr; a missing client is skipped (the whole test without any),
// and is a failure under SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const TOTAL = 2000;
const RATE = 500;     // messages per second
const MOVES = 20;
const STEP = 90;      // messages received between two moves
const DAEMON_ARGS = ['--history', 'redis', '--subscribe', 'exact', '--heartbeat', '0.5',
  '--retry', '100', '--history-size', '1000', '--log-level', 'debug'];

h.checkPrerequisites();
if (!h.haproxyPath()) h.skipAll('haproxy not found (apt-get install haproxy)');
if (!process.env.SSERELAY_JS_MODULES) {
  h.skipAll('SSERELAY_JS_MODULES not set (run tests/js/install.sh DIR and export SSERELAY_JS_MODULES=DIR)');
}
const HAPROXY_CFG = fs.readFileSync(path.join(h.EXAMPLES, 'haproxy.cfg'), 'utf8');

// Each client: whether it can run here, or why not.
const esModule = h.tryModule('eventsource');
const CLIENTS = [
  {
    name: 'npm eventsource', tag: 'des',
    missing: esModule && typeof esModule.EventSource === 'function' ? null
      : 'npm module eventsource not found under $SSERELAY_JS_MODULES',
    driver: () => eventsourceDriver(),
  },
  {
    name: 'Chromium', tag: 'dcr',
    missing: !h.chromiumPath() ? `${process.env.CHROMIUM || '/usr/bin/chromium'} not found (apt-get install chromium)`
      : !h.tryModule('playwright-core') ? 'npm module playwright-core not found under $SSERELAY_JS_MODULES' : null,
    driver: () => chromiumDriver(),
  },
  {
    name: 'Firefox', tag: 'dff',
    missing: !h.firefoxPath() ? `${process.env.FIREFOX || '/usr/bin/firefox-esr'} not found (apt-get install firefox-esr)`
      : !h.tryModule('puppeteer-core') ? 'npm module puppeteer-core not found under $SSERELAY_JS_MODULES' : null,
    driver: () => firefoxDriver(),
  },
];
if (CLIENTS.every((c) => c.missing)) h.skipAll(CLIENTS.map((c) => c.missing).join('; '));

// ---- the clients, behind one small interface --------------------------------
//
// open(url) opens the EventSource; summary() is { rs, opens, errors, n
// (message events), resets }, cheap enough to poll; all() is { got:
// [[channel, data, lastEventId]], resets: [data] }.

function record(st, ev) {
  let j = null;
  try { j = JSON.parse(ev.data); } catch (_) { /* kept as it came */ }
  st.got.push(j && typeof j.channel === 'string' ? [j.channel, j.data, ev.lastEventId] : ['?', ev.data, ev.lastEventId]);
}

function eventsourceDriver() {
  const { EventSource } = esModule;
  const st = { got: [], resets: [], opens: 0, errors: 0 };
  const attempts = [];
  let es = null;
  return {
    async open(url) {
      es = new EventSource(url, { fetch: h.fetchSpy(attempts) });
      h.onCleanup(() => es.close());
      es.onopen = () => { st.opens++; };
      es.onerror = () => { st.errors++; };
      es.onmessage = (ev) => record(st, ev);
      es.addEventListener('reset', (ev) => { st.resets.push(ev.data); });
    },
    async summary() {
      return { rs: es.readyState, opens: st.opens, errors: st.errors, n: st.got.length, resets: st.resets.length };
    },
    async all() { return { got: st.got.slice(), resets: st.resets.slice() }; },
    // the Last-Event-ID of each connection, as sent
    lastEventIds() { return attempts.map((a) => a.lastEventId); },
    async close() { if (es) es.close(); },
  };
}

// In a page: the same recording as eventsourceDriver's.
function pageOpen(p) {
  const st = { got: [], resets: [], opens: 0, errors: 0 };
  window.__st = st;
  const es = new EventSource(p);
  window.__es = es;
  es.onopen = () => { st.opens++; };
  es.onerror = () => { st.errors++; };
  es.onmessage = (ev) => {
    let j = null;
    try { j = JSON.parse(ev.data); } catch (_) { /* kept as it came */ }
    st.got.push(j && typeof j.channel === 'string' ? [j.channel, j.data, ev.lastEventId] : ['?', ev.data, ev.lastEventId]);
  };
  es.addEventListener('reset', (ev) => { st.resets.push(ev.data); });
}

function pageDriver(page) {
  return {
    async open(url) {
      const u = new URL(url);
      const resp = await page.goto(`${u.origin}/healthz`, { timeout: 30000 });
      is(resp && resp.status(), 200, 'the page loads /healthz through HAProxy (the stream is then same-origin)');
      await page.evaluate(pageOpen, u.pathname + u.search);
    },
    summary() {
      return page.evaluate(() => ({
        rs: window.__es.readyState, opens: window.__st.opens, errors: window.__st.errors,
        n: window.__st.got.length, resets: window.__st.resets.length,
      }));
    },
    all() { return page.evaluate(() => ({ got: window.__st.got, resets: window.__st.resets })); },
    lastEventIds() { return null; },
    async close() {
      await page.evaluate(() => window.__es.close()).catch(() => {});
      if (page.consoleLines.length) diag(`console:\n${page.consoleLines.join('\n')}`);
    },
  };
}

async function chromiumDriver() {
  const context = await h.launchChromium(h.tmpDir);
  const page = await h.openPage(context);
  const d = pageDriver(page);
  const close = d.close;
  d.close = async () => { await close(); await context.close(); };
  return d;
}

async function firefoxDriver() {
  const browser = await h.launchFirefox(h.tmpDir);
  const page = await h.openFirefoxPage(browser);
  const d = pageDriver(page);
  const close = d.close;
  d.close = async () => { await close(); await browser.close().catch(() => {}); };
  return d;
}

// ---- publishing ---------------------------------------------------------------

// TOTAL messages "m<k>" at RATE per second, round robin on chans, each
// with FCALL sserelay_publish on its own connection; sent[channel] lists
// what Redis acknowledged.
async function publisher(redisPort, chans, sent) {
  const c = new h.Resp(redisPort);
  await c.connect();
  try {
    const t0 = Date.now();
    for (let k = 0; k < TOTAL; k++) {
      const d = t0 + (k * 1000) / RATE - Date.now();
      if (d > 0) await h.sleep(d); // pacing the publisher, not a wait
      const ch = chans[k % chans.length];
      await c.command('FCALL', 'sserelay_publish', '1', ch, `m${k}`);
      sent[ch].push(`m${k}`);
    }
    return Date.now() - t0;
  } finally {
    c.close();
  }
}

// ---- one client's run -----------------------------------------------------------

async function scenario(client, redis) {
  const t0 = Date.now();
  const chans = [`user:${client.tag}`, `upload:${client.tag}1`, `upload:${client.tag}2`];
  const streamPath = `/events?user=${client.tag}&upload=${client.tag}1&upload=${client.tag}2`;
  const label = client.name;

  const a = await h.startDaemon({ redisUrl: redis.url, args: DAEMON_ARGS });
  const b = await h.startDaemon({ redisUrl: redis.url, args: DAEMON_ARGS });
  const hp = await h.startHAProxy(HAPROXY_CFG, [a.port, b.port]);
  const daemonOf = { sserelay1: a, sserelay2: b };
  const servers = Object.keys(daemonOf);
  const stat = () => hp.serverStats();
  const scur = (st, s) => Number(st[s] && st[s].scur) || 0;
  const up = (st, s) => !!st[s] && /^UP/.test(st[s].status);
  await h.waitFor(async () => { const st = await stat(); return servers.every((s) => up(st, s)); },
    'both servers UP in HAProxy', 15000, 50);

  const drv = await client.driver();
  await drv.open(`http://127.0.0.1:${hp.port}${streamPath}`);
  let sum = await h.waitFor(async () => { const s = await drv.summary(); return s.rs === 1 && s.opens === 1 ? s : null; },
    `${label}: the EventSource open`, 15000, 20);
  // the stream is on one server (the page's /healthz went before it)
  let st = await h.waitFor(async () => {
    const x = await stat();
    return servers.filter((s) => scur(x, s) > 0).length === 1 ? x : null;
  }, 'the stream on one server', 10000, 20);
  let on = servers.find((s) => scur(st, s) > 0);
  ok(true, `${label}: a stream through HAProxy, on ${on}`);

  // a stream opens once its positions are read and its channels
  // subscribed: what is published from now on reaches it
  const sent = Object.fromEntries(chans.map((ch) => [ch, []]));
  let pubDone = false;
  const pub = publisher(redis.port, chans, sent)
    .then((ms) => ({ ms }), (e) => ({ error: e.message }))
    .finally(() => { pubDone = true; });

  const landed = [];
  const during = [];  // whether the publisher was still running at each move
  const waits = [];
  let prevN = 0;
  let ticks = 0;
  while (landed.length < MOVES) {
    // each move carries something new, so that each reconnection sends a
    // later Last-Event-ID: once the publisher is done (a loaded box can
    // have the client behind the moves), one more message per channel
    if (pubDone) {
      for (const ch of chans) {
        await redis.client.command('FCALL', 'sserelay_publish', '1', ch, `tick${ticks}`);
        sent[ch].push(`tick${ticks}`);
      }
      ticks++;
    }
    const want = Math.max((landed.length + 1) * STEP, prevN + 1);
    sum = await h.waitFor(async () => { const s = await drv.summary(); return s.n >= want ? s : null; },
      `${label}: ${want} messages received (move ${landed.length + 1})`, 30000, 10);
    st = await h.waitFor(async () => {
      const x = await stat();
      return servers.filter((s) => scur(x, s) > 0).length === 1 ? x : null;
    }, 'the stream on one server', 10000, 20);
    on = servers.find((s) => scur(st, s) > 0);
    const other = servers.find((s) => s !== on);
    during.push(!pubDone);
    prevN = sum.n;
    const tm = Date.now();
    // new streams go to the other one (once HAProxy has it UP), the
    // current one is cut as a deploy or a crash would cut it
    await hp.admin(`enable server sserelay/${other}`);
    await h.waitFor(async () => up(await stat(), other), `${other} UP again`, 10000, 20);
    await hp.admin(`disable server sserelay/${on}`);
    await hp.admin(`shutdown sessions server sserelay/${on}`);
    const opens = sum.opens;
    await h.waitFor(async () => {
      const s = await drv.summary();
      if (s.rs !== 1 || s.opens !== opens + 1) return false;
      const x = await stat();
      return scur(x, other) === 1 && scur(x, on) === 0;
    }, `${label}: the client back, on ${other} (move ${landed.length + 1})`, 15000, 10)
      .catch(async (e) => {
        diag(`${JSON.stringify(await drv.summary())}\nA ${(await h.healthz(a.port)).body}\n` +
          `B ${(await h.healthz(b.port)).body}\n${JSON.stringify(await stat())}`);
        throw e;
      });
    waits.push(Date.now() - tm);
    landed.push(other);
  }
  const pr = await pub;
  ok(!pr.error, `${label}: the publisher sent ${TOTAL} messages with FCALL sserelay_publish` +
    `${pr.ms ? ` in ${(pr.ms / 1000).toFixed(1)} s` : ''}`, pr.error);
  is(landed.length, MOVES, `${label}: the client was moved ${MOVES} times`);
  ok(landed.every((s, i) => i === 0 || s !== landed[i - 1])
    && servers.every((s) => landed.filter((x) => x === s).length === MOVES / 2),
  `${label}: alternately to each instance, ${MOVES / 2} times each`, landed);
  diag(`${label}: ${during.filter(Boolean).length} moves while the publisher ran, ` +
    `the rest from the history; reconnection ${Math.min(...waits)}..${Math.max(...waits)} ms`);

  // the last message of each channel: a duplicate of anything before it
  // would have been sent before it
  for (const ch of chans) {
    await redis.client.command('FCALL', 'sserelay_publish', '1', ch, 'end');
    sent[ch].push('end');
  }
  const n = TOTAL + chans.length * (ticks + 1);
  await h.waitFor(async () => (await drv.summary()).n >= n, `${label}: ${n} messages`, 30000, 20)
    .catch((e) => diag(e.message));
  sum = await drv.summary();
  const all = await drv.all();
  for (const ch of chans) {
    const got = all.got.filter((g) => g[0] === ch).map((g) => g[1]);
    const want = sent[ch];
    const count = new Map();
    for (const x of got) count.set(x, (count.get(x) || 0) + 1);
    const dups = [...count].filter(([, c]) => c > 1).map(([x]) => x);
    const have = new Set(got);
    const lost = want.filter((x) => !have.has(x));
    ok(JSON.stringify(got) === JSON.stringify(want),
      `${label}: ${ch}: all ${want.length} messages, exactly once, in order`,
      `${got.length} received, duplicates ${JSON.stringify(dups.slice(0, 10))}, ` +
      `missing ${JSON.stringify(lost.slice(0, 10))}`);
  }
  const stray = all.got.filter((g) => !chans.includes(g[0]));
  is(stray, [], `${label}: no event of another channel, nothing unparsable`);
  is(all.resets, [], `${label}: no reset event: every resume was exact`);
  ok(all.got.every((g) => /^r/.test(g[2])), `${label}: every message has an id (the stream's position)`,
    all.got.filter((g) => !/^r/.test(g[2])).slice(0, 5));
  is(sum.opens, MOVES + 1, `${label}: ${MOVES + 1} connections, each one opened once`);
  const ids = drv.lastEventIds();
  if (ids) {
    // npm eventsource: the Last-Event-ID each reconnection sent
    const pos = new Map(all.got.map((g, i) => [g[2], i]));
    ok(ids.length === MOVES + 1 && ids[0] === null
      && ids.slice(1).every((x, i) => pos.has(x) && (i === 0 || pos.get(x) > pos.get(ids[i]))),
    `${label}: each reconnection sent Last-Event-ID, a later id received each time`, ids);
  }
  const ha = (await h.healthz(a.port)).json;
  const hb = (await h.healthz(b.port)).json;
  const onA = landed.filter((s) => daemonOf[s] === a).length;
  ok(ha.resumes === onA && hb.resumes === MOVES - onA,
    `${label}: both instances replayed from Redis (resumes ${ha.resumes} and ${hb.resumes}, ` +
    `replayed ${ha.replayed} and ${hb.replayed})`, { a: ha, b: hb });
  is([ha.slow_closes, hb.slow_closes], [0, 0], `${label}: no stream closed as too slow`);

  await drv.close();
  await hp.stop();
  await h.stopDaemonChecked(a, `${label}, instance A`);
  await h.stopDaemonChecked(b, `${label}, instance B`);
  diag(`${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

h.run(async () => {
  h.makeTmpDir('durable-clients');
  const redis = await h.startRedis();
  for (const c of CLIENTS) {
    if (c.missing) {
      if (h.requireAll()) ok(false, `${c.name}: ${c.missing} (SSERELAY_REQUIRE_ALL=1)`);
      else ok(true, `${c.name} # SKIP ${c.missing}`);
      continue;
    }
    await scenario(c, redis);
  }
}, { timeoutMs: 300000 });

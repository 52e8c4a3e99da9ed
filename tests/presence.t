#!/usr/bin/env node
'use strict';
// Presence (issue 22): who has streams open on a channel, across every
// instance, and join/leave events.
//
//  - two instances (A, B; --presence --presence-events --presence-ttl 3
//    --presence-grace 2) behind HAProxy (examples/haproxy.cfg,
//    leastconn) on one Redis; a watcher (npm `eventsource`, anonymous, on
//    upload:u7 only) records the join and leave events;
//  - alice and bob (npm eventsource) and carol (headless Chromium, npm
//    playwright-core) open streams on upload:u7 through HAProxy, and two
//    anonymous streams: FCALL sserelay_presence 1 upload:u7 answers
//    exactly alice 1, bob 1, carol 1, "" 3 (the watcher is anonymous too),
//    through both instances; sserelay_presence_count answers [3, 6];
//  - each new stream gets event: presence first, who is there then (the
//    watcher: nobody named, itself anonymous; erin, through HAProxy:
//    everyone, herself too, anonymous 3), once;
//  - the watcher gets one join for each of them; a page reload of alice's
//    (her stream closed and opened again at once, on A) inside the grace
//    gives neither a leave nor a join: dave, on A as well, then leaves for
//    real, and once his leave has come (a leave is checked in due order
//    on an instance) alice still has one join and no leave, and her
//    reloaded page was told who is there;
//  - B SIGKILLed: its people are gone from the answer within
//    --presence-ttl of the kill (measured from the kill);
//  - --presence is live: an instance started with it off counts nobody;
//    SIGHUP with it on counts the stream already open, SIGHUP with it
//    off takes its entries out of Redis.
//
// Needs haproxy and SSERELAY_JS_MODULES (tests/js/install.sh) with
// eventsource and playwright-core, and chromium; Chromium missing is a
// skip of its part, a failure under SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const TTL = 3;
const GRACE = 2;
const ARGS = ['--retry', '200', '--heartbeat', '1', '--presence', '--presence-events',
  '--presence-ttl', String(TTL), '--presence-grace', String(GRACE)];

h.checkPrerequisites();
if (!h.haproxyPath()) h.skipAll('haproxy not found (apt-get install haproxy)');
if (!process.env.SSERELAY_JS_MODULES) {
  h.skipAll('SSERELAY_JS_MODULES not set (run tests/js/install.sh DIR and export SSERELAY_JS_MODULES=DIR)');
}
const esModule = h.tryModule('eventsource');
if (!esModule || typeof esModule.EventSource !== 'function') h.skipAll('npm module eventsource not found');
const { EventSource } = esModule;
const chromiumMissing = !h.chromiumPath() ? 'chromium not found'
  : !h.tryModule('playwright-core') ? 'npm module playwright-core not found' : null;
const HAPROXY_CFG = fs.readFileSync(path.join(h.EXAMPLES, 'haproxy.cfg'), 'utf8');

function client(url) {
  const st = { opens: 0, joins: [], leaves: [], snapshots: [], msgs: [], es: null };
  st.es = new EventSource(url);
  st.es.onmessage = (ev) => st.msgs.push([ev.data, ev.lastEventId]);
  h.onCleanup(() => st.es.close());
  st.es.onopen = () => { st.opens++; };
  st.es.addEventListener('join', (ev) => st.joins.push({ ...JSON.parse(ev.data), id: ev.lastEventId }));
  st.es.addEventListener('leave', (ev) => st.leaves.push({ ...JSON.parse(ev.data), id: ev.lastEventId }));
  st.es.addEventListener('presence', (ev) => st.snapshots.push(JSON.parse(ev.data)));
  return st;
}

// the answer as an object who -> streams
async function presence(redis, ch) {
  const a = await redis.client.command('FCALL', 'sserelay_presence', '1', ch);
  const o = {};
  for (let i = 0; i < a.length; i += 2) o[a[i]] = Number(a[i + 1]);
  return o;
}
// the presence snapshots st got for channel ch
const snapOf = (st, ch) => st.snapshots.filter((x) => x.channel === ch);
const same = (x, y) => JSON.stringify(x) === JSON.stringify(y);

h.run(async () => {
  h.makeTmpDir('presence');
  const redis = await h.startRedis();
  const a = await h.startDaemon({ redisUrl: redis.url, args: ARGS });
  const b = await h.startDaemon({ redisUrl: redis.url, args: ARGS });
  const hp = await h.startHAProxy(HAPROXY_CFG, [a.port, b.port]);
  const servers = ['sserelay1', 'sserelay2'];
  const scur = (st, s) => Number(st[s] && st[s].scur) || 0;
  await h.waitFor(async () => {
    const st = await hp.serverStats();
    return servers.every((s) => st[s] && /^UP/.test(st[s].status));
  }, 'both servers UP in HAProxy', 15000, 50);
  const via = `http://127.0.0.1:${hp.port}`;
  const CH = 'upload:u7';

  const watcher = client(`http://127.0.0.1:${a.port}/events?upload=u7`);
  await h.waitFor(() => watcher.opens === 1, 'the watcher open', 10000);
  await h.waitFor(() => watcher.snapshots.length > 0, 'the watcher\'s snapshot', 10000);
  is(watcher.snapshots, [{ channel: CH, users: [], anonymous: 1 }],
    'the first stream is told who is there (event: presence): nobody named, itself anonymous');
  const alice = client(`http://127.0.0.1:${a.port}/events?user=alice&upload=u7`);
  const bob = client(`${via}/events?user=bob&upload=u7`);
  const anon1 = client(`${via}/events?upload=u7`);
  const anon2 = client(`${via}/events?upload=u7`);
  await h.waitFor(() => [alice, bob, anon1, anon2].every((c) => c.opens === 1), 'four streams open', 10000);
  let chrome = null;
  const want = { '': 3, alice: 1, bob: 1 };
  if (chromiumMissing) {
    if (h.requireAll()) ok(false, `Chromium: ${chromiumMissing} (SSERELAY_REQUIRE_ALL=1)`);
    else ok(true, `Chromium # SKIP ${chromiumMissing}`);
  } else {
    const context = await h.launchChromium(h.tmpDir);
    h.onCleanup(() => context.close().catch(() => {}));
    const page = await h.openPage(context);
    await page.goto(`${via}/healthz`, { timeout: 30000 });
    await page.evaluate(() => {
      window.__es = new EventSource('/events?user=carol&upload=u7');
      window.__opens = 0;
      window.__es.onopen = () => { window.__opens++; };
    });
    await h.waitFor(() => page.evaluate(() => window.__opens === 1), 'Chromium: carol\'s stream open', 15000);
    chrome = context;
    want.carol = 1;
  }
  const st = await hp.serverStats();
  ok(scur(st, 'sserelay1') > 0 && scur(st, 'sserelay2') > 0, 'streams through both instances',
    servers.map((s) => scur(st, s)));
  const got = await h.waitFor(async () => { const p = await presence(redis, CH); return same(p, want) ? p : null; },
    'the presence answer', 10000, 50).catch(async (e) => { diag(JSON.stringify(await presence(redis, CH))); throw e; });
  is(got, want, `sserelay_presence 1 ${CH}: exactly the people connected, anonymous under ""`);
  const people = Object.keys(want).filter((w) => w).length;
  const streams = Object.values(want).reduce((x, y) => x + y, 0);
  is(await redis.client.command('FCALL', 'sserelay_presence_count', '1', CH), [people, streams],
    `sserelay_presence_count: [${people}, ${streams}]`);

  const named = Object.keys(want).filter((w) => w).sort();
  await h.waitFor(() => named.every((w) => watcher.joins.some((j) => j.user === w)), 'a join for each', 10000);
  is(watcher.joins.map((j) => j.user).sort(), named, 'the watcher got one join for each, and nothing for the anonymous');
  ok(watcher.joins.every((j) => j.channel === CH), 'each join names the channel');

  // a new stream is told who is there (event: presence), whichever
  // instance it reaches, itself included
  const erin = client(`${via}/events?user=erin&upload=u7`);
  await h.waitFor(() => erin.snapshots.length === 2, 'erin\'s snapshots', 10000);
  is(snapOf(erin, CH), [{ channel: CH, users: named.concat(['erin']).sort(), anonymous: 3 }],
    'a new stream through HAProxy: event: presence lists everyone there, itself too, and the anonymous streams');
  is(snapOf(erin, 'user:erin'), [{ channel: 'user:erin', users: ['erin'], anonymous: 0 }],
    'and one for each of its channels (user:erin)');
  erin.es.close();
  await h.waitFor(async () => !('erin' in await presence(redis, CH)), 'erin gone from the answer', 10000);

  // a page reload inside the grace, then dave leaves for real, all on A
  const dave = client(`http://127.0.0.1:${a.port}/events?user=dave&upload=u7`);
  await h.waitFor(() => watcher.joins.some((j) => j.user === 'dave'), 'dave\'s join', 10000);
  alice.es.close();
  const alice2 = client(`http://127.0.0.1:${a.port}/events?user=alice&upload=u7`);
  await h.waitFor(() => alice2.opens === 1, 'alice\'s page reloaded', 10000);
  await h.waitFor(() => snapOf(alice2, CH).length > 0, 'the reloaded page\'s snapshot', 10000);
  dave.es.close();
  await h.waitFor(() => watcher.leaves.some((l) => l.user === 'dave'), 'dave\'s leave, after the grace', 10000 + GRACE * 1000);
  is(watcher.joins.filter((j) => j.user === 'alice').length, 1, 'alice\'s reload: no second join');
  is(snapOf(alice2, CH), [{ channel: CH, users: named.concat(['dave']).sort(), anonymous: 3 }],
    'alice\'s reloaded page is told who is there (no join told it)');
  is(watcher.leaves.filter((l) => l.user === 'alice').length, 0, 'alice\'s reload: no leave');
  is(watcher.joins.filter((j) => j.user === 'dave').length, 1, 'dave: one join');
  is(watcher.leaves.filter((l) => l.user === 'dave').length, 1, 'dave: one leave');

  // B dies: its people are gone within the ttl
  const onB = await h.healthz(b.port);
  diag(`B has ${onB.json && onB.json.streams} streams`);
  const onA = (await h.healthz(a.port)).json.streams;
  // by Redis's clock, which is what the answers go by: the instances'
  // entry expiries (ms) just before the kill, and the time of the kill
  const IKEY = `sserelay:{${CH}}:i`;
  const scores = async () => {
    const z = await redis.client.command('ZRANGE', IKEY, '0', '-1', 'WITHSCORES');
    const o = {};
    for (let i = 0; i < z.length; i += 2) o[z[i]] = Number(z[i + 1]);
    return o;
  };
  const redisMs = async () => {
    const [sec, usec] = await redis.client.command('TIME');
    return Number(sec) * 1000 + Math.floor(Number(usec) / 1000);
  };
  const tk = Date.now();
  b.child.kill('SIGKILL');
  await b.child.exited;
  const killMs = await redisMs();
  const before = await scores();    // B refreshes no more
  const sum = (p) => Object.values(p).reduce((x, y) => x + y, 0);
  const after = await h.waitFor(async () => {
    const p = await presence(redis, CH);
    return sum(p) === onA ? p : null;
  }, 'only A\'s streams left in the answer', TTL * 1000 + 10000, 50);
  const dt = Date.now() - tk;
  // the instance that refreshed no more is B (or both, if A had no time
  // to): its entries stopped counting at its last expiry, at most
  // --presence-ttl after the kill
  const now = await scores();
  const dead = Object.keys(before).filter((i) => now[i] === undefined || now[i] === before[i]);
  ok(dead.length >= 1 && dead.every((i) => (now[i] === undefined ? before[i] : now[i]) <= killMs + TTL * 1000),
    `B's entries expired within --presence-ttl (${TTL} s) of its SIGKILL by Redis's clock ` +
    `(seen gone ${dt} ms after it)`, { before, now, killMs });
  is(sum(after), onA, `what is left is A's ${onA} streams: ${JSON.stringify(after)}`);
  ok(after.alice === 1, 'alice (on A) is still there');

  // --presence is live on SIGHUP: on, the streams open are counted; off,
  // this instance's entries leave Redis
  const conf = path.join(h.tmpDir, 'hup.conf');
  fs.writeFileSync(conf, 'presence no\n');
  const c = await h.startDaemon({ redisUrl: redis.url, args: ['--heartbeat', '1', '-c', conf] });
  const frank = client(`http://127.0.0.1:${c.port}/events?user=frank&upload=hup`);
  await h.waitFor(() => frank.opens === 1, 'frank\'s stream open (presence off)', 10000);
  is(await presence(redis, 'upload:hup'), {}, 'with presence off nobody is counted');
  fs.writeFileSync(conf, 'presence yes\n');
  c.child.kill('SIGHUP');
  await h.waitFor(async () => same(await presence(redis, 'upload:hup'), { frank: 1 }),
    'frank counted after SIGHUP with presence yes', 10000);
  ok(true, 'SIGHUP turns presence on: the stream already open is counted');
  fs.writeFileSync(conf, 'presence no\n');
  c.child.kill('SIGHUP');
  await h.waitFor(async () => same(await presence(redis, 'upload:hup'), {}),
    'frank gone after SIGHUP with presence no', 10000);
  ok(true, 'SIGHUP turns presence off: this instance\'s entries leave Redis');
  frank.es.close();
  await h.stopDaemonChecked(c, 'instance C (SIGHUP)');

  // --history redis: join and leave are messages like any other, with
  // their position, and a client that resumes from before them gets them
  const d = await h.startDaemon({ redisUrl: redis.url,
    args: ARGS.concat(['--history', 'redis', '--presence-grace', '1']) });
  const HP = `http://127.0.0.1:${d.port}/events`;
  const w2 = client(`${HP}?upload=h1`);
  await h.waitFor(() => w2.opens === 1, 'a watcher on upload:h1 (--history redis)', 10000);
  await redis.client.command('FCALL', 'sserelay_publish', '1', 'upload:h1', 'before');
  await h.waitFor(() => w2.msgs.length === 1, 'the message before them', 10000);
  const first = w2.msgs[0][1];
  const gina = client(`${HP}?user=gina&upload=h1`);
  await h.waitFor(() => w2.joins.some((j) => j.user === 'gina'), 'gina\'s join (--history redis)', 10000);
  gina.es.close();
  await h.waitFor(() => w2.leaves.some((l) => l.user === 'gina'), 'gina\'s leave (--history redis)', 15000);
  const jid = w2.joins.find((j) => j.user === 'gina').id;
  const lid = w2.leaves.find((l) => l.user === 'gina').id;
  ok(/^r/.test(jid) && /^r/.test(lid) && jid !== lid,
    `--history redis: join and leave have positions like any message (${jid}, ${lid})`);
  // a client resuming from the message before them gets both, in order
  const again = client(`${HP}?upload=h1&lastEventId=${encodeURIComponent(first)}`);
  await h.waitFor(() => again.leaves.length === 1, 'the resumed client has the leave', 10000)
    .catch((e) => { diag(JSON.stringify(again)); throw e; });
  is([again.joins.map((j) => [j.user, j.id]), again.leaves.map((l) => [l.user, l.id])],
    [[['gina', jid]], [['gina', lid]]], '--history redis: a resume from before them replays the join and the leave');
  for (const c of [w2, again]) c.es.close();
  await h.stopDaemonChecked(d, 'instance D (--history redis)');

  if (chrome) await chrome.close();
  for (const c of [watcher, alice2, bob, anon1, anon2]) c.es.close();
  await hp.stop();
  await h.stopDaemonChecked(a, 'instance A');
}, { timeoutMs: 120000 });

#!/usr/bin/env node
'use strict';
// --history redis through everything at once (issue 20): instance crashes,
// every connection cut, and a Redis restart, under a steady publisher,
// with four real clients that reconnect by themselves.
//
//  - Redis with appendonly yes and appendfsync always (what it acknowledged
//    is on disk); two instances (--history redis --subscribe exact) behind
//    HAProxy (examples/haproxy.cfg, only its bind and server lines
//    rewritten, an admin socket added);
//  - four npm eventsource clients, each on its own user channel and one
//    upload channel they all share (so a channel of several streams is
//    caught up once for all of them);
//  - FCALL sserelay_publish at 300 messages a second, round robin on the 5
//    channels, from before the first event to after the last; a message is
//    acknowledged when FCALL answered its position;
//  - in turn: instance A SIGKILLed and started again; every client
//    connection cut (HAProxy shuts every session); Redis SIGKILLed and
//    started again on its data, with 300 messages published at once as soon
//    as it answers (the instances stay up, their streams open: they catch
//    up from Redis instead of a reset); instance B SIGKILLed and started
//    again.  After each, the test waits until every client has the
//    last message acknowledged on each of its channels.
//  - then: each client got every acknowledged message of its channels
//    exactly once and in order (a message whose FCALL never answered, as
//    Redis died, may be there too, once), nothing else, and no client saw
//    event: reset; both instances recovered streams after the Redis
//    restart (/healthz recoveries) and stop cleanly.
//
// Nothing here is timed: each step waits for what a user would see.
// --retry 100 (ms) keeps the clients' reconnections quick.
//
// Needs haproxy and SSERELAY_JS_MODULES (tests/js/install.sh); skipped
// without them, a failure under SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const RATE = 300;       // messages per second while Redis is up
const CLIENTS = 4;
const BURST = 300;      // messages published at once when Redis is back
const AHEAD = 450;      // messages acknowledged after an event before the catch-up check
const DAEMON_ARGS = ['--history', 'redis', '--subscribe', 'exact', '--heartbeat', '0.5',
  '--retry', '100', '--log-level', 'debug'];
const REDIS_ARGS = ['--appendonly', 'yes', '--appendfsync', 'always'];

h.checkPrerequisites();
if (!h.haproxyPath()) h.skipAll('haproxy not found (apt-get install haproxy)');
const { EventSource } = h.loadModule('eventsource');
if (typeof EventSource !== 'function') h.skipAll('npm module eventsource has no EventSource');
const HAPROXY_CFG = fs.readFileSync(path.join(h.EXAMPLES, 'haproxy.cfg'), 'utf8');

// ---- the clients ----------------------------------------------------------------

function client(i, url) {
  const c = {
    name: `client ${i}`, chans: [`user:o${i}`, 'upload:shared'],
    got: {}, stray: [], resets: [], opens: 0, errors: 0, attempts: [],
  };
  for (const ch of c.chans) c.got[ch] = [];
  const es = new EventSource(`${url}/events?user=o${i}&upload=shared`, { fetch: h.fetchSpy(c.attempts) });
  h.onCleanup(() => es.close());
  es.onopen = () => { c.opens++; };
  es.onerror = () => { c.errors++; };
  es.onmessage = (ev) => {
    let j = null;
    try { j = JSON.parse(ev.data); } catch (_) { /* kept as it came */ }
    if (j && c.got[j.channel] && /^r/.test(ev.lastEventId)) c.got[j.channel].push(j.data);
    else c.stray.push([ev.data, ev.lastEventId]);
  };
  es.addEventListener('reset', (ev) => { c.resets.push(ev.data); });
  c.es = es;
  return c;
}

// ---- publishing -------------------------------------------------------------------

// "m<k>" at RATE per second, round robin on chans, with FCALL
// sserelay_publish on one connection, until ctl.stop.  sent[channel] lists
// what Redis acknowledged (answered a position for), in order; maybe holds
// what was sent without an answer (Redis died meanwhile) or answered with
// an error: not acknowledged, so neither promised nor forbidden, but at
// most once.  While Redis is away it connects again every 20 ms; the pace
// starts again from there (no burst to make up for the outage).
async function publisher(port, chans, sent, maybe, ctl) {
  let c = null;
  let k = 0;
  let t0 = 0, n0 = 0;
  while (!ctl.stop) {
    if (!c) {
      const x = new h.Resp(port);
      try {
        await x.connect();
        x.sock.on('close', () => { x.closed = true; });
        c = x;
        t0 = Date.now();
        n0 = k;
      } catch (_) {
        x.close();
        await h.sleep(20); // Redis is down: try again
        continue;
      }
    }
    const d = t0 + ((k - n0) * 1000) / RATE - Date.now();
    if (d > 0) await h.sleep(d); // pacing the publisher, not a wait
    if (c.closed) {
      c = null;
      continue;
    }
    if (ctl.burst && k > 0 && k === n0) {
      // back on a restarted Redis: BURST at once (one write, in order),
      // most likely before the instances are subscribed again, so that
      // their streams have that much to catch up
      const ms = [];
      const ps = [];
      c.sock.cork();
      for (let i = 0; i < ctl.burst; i++, k++) {
        const ch = chans[k % chans.length];
        ms.push([ch, `m${k}`]);
        ps.push(c.command('FCALL', 'sserelay_publish', '1', ch, `m${k}`).then((x) => x, (e) => e));
      }
      process.nextTick(() => c.sock.uncork());
      const rs = await Promise.all(ps);
      rs.forEach((x, i) => {
        const [ch, m] = ms[i];
        if (!(x instanceof Error) && x && x.length) {
          sent[ch].push(m);
          ctl.acked++;
        } else {
          maybe.add(m);
          if (x instanceof Error) ctl.errors.push(x.message);
        }
      });
      if (rs.some((x) => !(x instanceof Error))) ctl.burst = 0;
      else await h.sleep(20); // still loading its data: again
      n0 = k;
      t0 = Date.now();
      continue;
    }
    const ch = chans[k % chans.length];
    const m = `m${k}`;
    k++;
    try {
      const pos = await c.command('FCALL', 'sserelay_publish', '1', ch, m);
      if (pos && pos.length) {
        sent[ch].push(m);
        ctl.acked++;
      } else maybe.add(m);
    } catch (e) {
      maybe.add(m);
      if (c.closed || /closed|ECONNRESET|EPIPE/.test(e.message)) {
        c.close();
        c = null;
      } else {
        ctl.errors.push(e.message); // LOADING while Redis reads its data, ...
        await h.sleep(20);
      }
    }
  }
  if (c) c.close();
  return k;
}

h.run(async () => {
  h.makeTmpDir('outage-clients');
  let redis = await h.startRedis({ args: REDIS_ARGS });
  const a = await h.startDaemon({ redisUrl: redis.url, args: DAEMON_ARGS });
  const b = await h.startDaemon({ redisUrl: redis.url, args: DAEMON_ARGS });
  const inst = { sserelay1: a, sserelay2: b };
  const hp = await h.startHAProxy(HAPROXY_CFG, [a.port, b.port]);
  const servers = Object.keys(inst);
  const up = (st, s) => !!st[s] && /^UP/.test(st[s].status);
  const bothUp = (what) => h.waitFor(async () => {
    const st = await hp.serverStats();
    return servers.every((s) => up(st, s));
  }, `both servers UP in HAProxy (${what})`, 60000, 50);
  await bothUp('at start');

  const url = `http://127.0.0.1:${hp.port}`;
  const cls = [];
  for (let i = 0; i < CLIENTS; i++) cls.push(client(i, url));
  await h.waitFor(() => cls.every((c) => c.opens === 1), 'the 4 EventSources open', 20000, 20);
  // a stream opens once its positions are read and its channels are
  // subscribed: what is published from now on reaches it
  await h.waitFor(async () => (await h.healthz(a.port)).json.streams
    + (await h.healthz(b.port)).json.streams === CLIENTS, 'the 4 streams on the instances', 10000, 20);
  ok(true, `${CLIENTS} npm eventsource clients through HAProxy`);

  const chans = [...cls.map((c) => c.chans[0]), 'upload:shared'];
  const sent = Object.fromEntries(chans.map((ch) => [ch, []]));
  const maybe = new Set();
  const ctl = { stop: false, acked: 0, errors: [] };
  const tp = Date.now();
  const pub = publisher(redis.port, chans, sent, maybe, ctl)
    .then((k) => ({ k }), (e) => ({ error: e.message }));

  // Once AHEAD more messages were acknowledged after an event (the
  // publisher runs on through it), every client has the last acknowledged
  // message of each of its channels: nothing is left behind.
  const caughtUp = async (what) => {
    const mark = ctl.acked + AHEAD;
    await h.waitFor(() => ctl.acked >= mark, `${AHEAD} messages acknowledged after ${what}`, 60000, 10);
    const last = Object.fromEntries(chans.map((ch) => [ch, sent[ch][sent[ch].length - 1]]));
    await h.waitFor(() => cls.every((c) => c.chans.every((ch) => c.got[ch].includes(last[ch]))),
      `every client has the last message of each of its channels (${what})`, 60000, 10)
      .catch((e) => {
        diag(JSON.stringify(cls.map((c) => ({
          name: c.name, rs: c.es.readyState, opens: c.opens, resets: c.resets,
          last: Object.fromEntries(c.chans.map((ch) => [ch, c.got[ch].slice(-1)[0]])),
        }))));
        diag(`want ${JSON.stringify(last)}`);
        throw e;
      });
    ok(true, `${what}: every client is up to date (${ctl.acked} acknowledged so far)`);
  };
  const restartInstance = async (name) => {
    const d = inst[name];
    process.kill(d.child.pid, 'SIGKILL');
    await d.child.exited;
    const n = await h.startDaemon({ redisUrl: redis.url, port: d.port, args: DAEMON_ARGS });
    inst[name] = n;
    await bothUp(`${name} started again`);
    return n;
  };

  await caughtUp('the start');

  await restartInstance('sserelay1');
  await caughtUp('instance A SIGKILLed and started again');

  const before = cls.map((c) => c.opens);
  await hp.admin('shutdown sessions server sserelay/sserelay1');
  await hp.admin('shutdown sessions server sserelay/sserelay2');
  await h.waitFor(() => cls.every((c, i) => c.opens > before[i] && c.es.readyState === 1),
    'every client connected again after the cut', 60000, 10);
  await caughtUp('every client connection cut');

  const rec0 = await Promise.all(servers.map(async (s) => (await h.healthz(inst[s].port)).json.recoveries));
  ctl.burst = BURST;
  process.kill(redis.child.pid, 'SIGKILL');
  await redis.child.exited;
  const seenDown = await h.waitFor(async () => {
    const x = await Promise.all(servers.map((s) => h.healthz(inst[s].port)));
    return x.every((r) => r.status === 503);
  }, 'both instances see Redis down', 30000, 20).then(() => true, () => false);
  ok(seenDown, 'Redis SIGKILLed: both instances report it down (/healthz 503)');
  redis = await h.startRedis({ port: redis.port, args: REDIS_ARGS });
  await h.waitFor(async () => {
    const x = await Promise.all(servers.map((s) => h.healthz(inst[s].port)));
    return x.every((r) => r.status === 200);
  }, 'both instances back on Redis', 60000, 20);
  await caughtUp('Redis SIGKILLed and started again with its data');
  const hz1 = await Promise.all(servers.map(async (s) => (await h.healthz(inst[s].port)).json));
  const rec1 = hz1.map((x) => x.recoveries);
  ok(rec1.every((x, i) => x > rec0[i]),
    `both instances caught their open streams up from Redis (recoveries ${rec0} -> ${rec1})`);
  diag(`events those recoveries queued: ${hz1.map((x) => x.recovered)}`);

  await restartInstance('sserelay2');
  await caughtUp('instance B SIGKILLed and started again');

  ctl.stop = true;
  const pr = await pub;
  const secs = (Date.now() - tp) / 1000;
  ok(!pr.error, `the publisher ran: ${ctl.acked} acknowledged of ${pr.k} sent in ${secs.toFixed(1)} s ` +
    `(${RATE}/s while Redis was up)`, pr.error);
  diag(`not acknowledged: ${maybe.size} (${[...new Set(ctl.errors)].slice(0, 3).join('; ')})`);

  // the last message of each channel: a duplicate of anything before it
  // would have come before it
  const c = new h.Resp(redis.port);
  await c.connect();
  for (const ch of chans) {
    await c.command('FCALL', 'sserelay_publish', '1', ch, 'end');
    sent[ch].push('end');
  }
  c.close();
  await h.waitFor(() => cls.every((x) => x.chans.every((ch) => x.got[ch].includes('end'))),
    'every client has the end of each of its channels', 60000, 10).catch((e) => diag(e.message));

  for (const cl of cls) {
    for (const ch of cl.chans) {
      const got = cl.got[ch];
      const count = new Map();
      for (const x of got) count.set(x, (count.get(x) || 0) + 1);
      const dups = [...count].filter(([, n]) => n > 1).map(([x]) => x);
      const acked = new Set(sent[ch]);
      const gotAcked = got.filter((x) => acked.has(x));
      const have = new Set(got);
      const lost = sent[ch].filter((x) => !have.has(x));
      const extra = got.filter((x) => !acked.has(x) && !maybe.has(x));
      ok(dups.length === 0 && extra.length === 0 && JSON.stringify(gotAcked) === JSON.stringify(sent[ch]),
        `${cl.name}: ${ch}: all ${sent[ch].length} acknowledged messages, exactly once, in order`,
        `${got.length} received, duplicates ${JSON.stringify(dups.slice(0, 10))}, ` +
        `missing ${JSON.stringify(lost.slice(0, 10))}, never sent ${JSON.stringify(extra.slice(0, 10))}`);
    }
    is(cl.stray, [], `${cl.name}: every event is a message of its channels, with an id`);
    is(cl.resets, [], `${cl.name}: no reset event`);
    const ids = cl.attempts.map((x) => x.lastEventId);
    ok(ids.length === cl.opens && ids[0] === null && ids.slice(1).every((x) => x && /^r/.test(x)),
      `${cl.name}: ${cl.opens} connections, each reconnection with its Last-Event-ID`, ids);
  }
  const hz = await Promise.all(servers.map(async (s) => (await h.healthz(inst[s].port)).json));
  diag(`recoveries ${hz.map((x) => x.recoveries)}, recovered ${hz.map((x) => x.recovered)}, ` +
    `resumes ${hz.map((x) => x.resumes)}, replayed ${hz.map((x) => x.replayed)}`);
  is(hz.map((x) => x.slow_closes), [0, 0], 'no stream closed as too slow');

  for (const cl of cls) cl.es.close();
  await hp.stop();
  // stopped as stopDaemonChecked does, without its bound on the time
  // SIGTERM takes (a loaded box may take longer)
  for (const s of servers) {
    const d = inst[s];
    const r = await h.stopChild(d.child, { ms: 30000 });
    ok(r.code === 0 && !r.killed, `instance ${s}: exits 0 on SIGTERM`,
      `exit code ${r.code}, signal ${r.signal}${r.killed ? ', needed SIGKILL' : ''}\n${h.tail(d.child.output)}`);
    is(h.sanitizerReports(d.child.output), [], `instance ${s}: no sanitizer reports in its log`);
  }
}, { timeoutMs: 300000 });

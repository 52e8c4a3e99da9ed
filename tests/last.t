#!/usr/bin/env node
'use strict';
// ?last=N with a real client, the npm `eventsource` package: a new stream
// starts from the newest N kept messages of each of its channels, merged in
// publish order, each with its id, then goes live with no gap and no
// duplicate.  Once with the history in memory (PUBLISH), once with the
// history in Redis (--history redis, FCALL sserelay_publish):
//  - last=3 on a user and two uploads, 5 messages each published before:
//    exactly the 3 newest of each, in publish order, then live;
//  - last larger than what is kept (--history-size 4): what is kept;
//  - last=-1, last=x, last over --max-last: 400 with a one-line reason,
//    and the EventSource gives up (no stream);
//  - a Last-Event-ID with last (header, and ?lastEventId=): the resume,
//    not the backlog;
//  - /metrics counts the streams that asked and the events they carried;
//  - --max-last is live: a reload (SIGHUP) raises it from 2 to 4;
//  - under --auth jwt a backlog holds only what the token allows: the
//    user's and the allowed upload's; a refused upload gets 403, nothing.
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh); skips without it unless
// SSERELAY_REQUIRE_ALL=1.

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
const { EventSource } = h.loadModule('eventsource');
if (typeof EventSource !== 'function') h.skipAll('npm eventsource does not export EventSource');

const CHANNELS = ['user:ann', 'upload:p1', 'upload:p2'];
const QUERY = 'user=ann&upload=p1&upload=p2';

// An EventSource on url that records what it gets; headers are added to
// its first request only (a browser's first connection has none).
function open(url, headers = {}) {
  const st = { got: [], resets: [], errors: [], opens: 0, statuses: [] };
  let first = true;
  const es = new EventSource(url, {
    fetch: async (u, init) => {
      const hd = { ...(init && init.headers) };
      if (first) Object.assign(hd, headers);
      first = false;
      const r = await fetch(u, { ...init, headers: hd });
      st.statuses.push(r.status);
      return r;
    },
  });
  es.onopen = () => { st.opens++; };
  es.onerror = () => { st.errors.push(es.readyState); };
  es.onmessage = (ev) => {
    const j = JSON.parse(ev.data);
    st.got.push({ channel: j.channel, data: j.data, id: ev.lastEventId });
  };
  es.addEventListener('reset', (ev) => st.resets.push(JSON.parse(ev.data).reason));
  h.onCleanup(() => es.close());
  st.es = es;
  return st;
}

async function scenario(redis, mode) {
  const durable = mode === 'redis';
  const args = ['--history', mode, '--history-size', '4', '--max-last', '5',
    '--retry', '200', '--heartbeat', '0.5'];
  const d = await h.startDaemon({ redisUrl: redis.url, args });
  const pub = (ch, payload) => (durable
    ? redis.client.command('FCALL', 'sserelay_publish', '1', ch, payload)
    : redis.client.publish(ch, payload));
  const tag = `${mode}:`;

  // a stream that is there all along: memory history is kept by a
  // daemon that receives the messages, and this one watches them arrive
  const watch = open(`${d.base}/events?${QUERY}`);
  await h.waitFor(() => watch.opens === 1, `${tag} the watching stream open`, 10000);
  await h.waitStreams(d.port, 1);
  const sent = [];
  for (let k = 0; k < 15; k++) {
    const ch = CHANNELS[k % 3];
    await pub(ch, JSON.stringify({ k }));
    sent.push({ channel: ch, k });
  }
  await h.waitFor(() => watch.got.length >= 15, `${tag} the watcher has all 15`, 10000);

  // last=3: the 3 newest of each channel (k 6..14), in publish order
  const a = open(`${d.base}/events?${QUERY}&last=3`);
  await h.waitFor(() => a.got.length >= 9, `${tag} a backlog of 9`, 10000).catch((e) => diag(e.message));
  const want = sent.slice(6).map((x) => `${x.channel}/${x.k}`);
  is(a.got.slice(0, 9).map((g) => `${g.channel}/${g.data.k}`), want,
    `${tag} last=3 on a user and two uploads: the 3 newest of each, in publish order`);
  is(a.got.slice(0, 9).map((g) => g.id), watch.got.slice(6, 15).map((g) => g.id),
    `${tag} each with its normal id (the one a live stream got)`);
  is(a.resets, [], `${tag} no reset`);
  await h.waitStreams(d.port, 2);
  for (let k = 15; k < 21; k++) await pub(CHANNELS[k % 3], JSON.stringify({ k }));
  await h.waitFor(() => a.got.length >= 15, `${tag} 6 live`, 10000).catch((e) => diag(e.message));
  await h.waitFor(() => watch.got.length >= 21, `${tag} the watcher has 21`, 10000).catch((e) => diag(e.message));
  is(a.got.map((g) => g.data.k), [6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20],
    `${tag} then live, no gap, no duplicate`);

  // more than is kept (--history-size 4): what is kept
  const b = open(`${d.base}/events?${QUERY}&last=5`);
  await h.waitFor(() => b.got.length >= 12, `${tag} a backlog of 12`, 10000).catch((e) => diag(e.message));
  await h.waitStreams(d.port, 3);
  await pub('upload:p1', JSON.stringify({ k: 21 }));
  await h.waitFor(() => b.got.length >= 13, `${tag} one live`, 10000).catch((e) => diag(e.message));
  is(b.got.map((g) => g.data.k), [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21],
    `${tag} last=5 with 4 kept per channel: the 4 kept of each, then live`);

  // refused: 400 with a reason, and the EventSource does not retry
  for (const [v, why] of [['-1', /^last must be a number from 0 to 5$/],
    ['x', /^last must be a number from 0 to 5$/], ['6', /^last is over this server's bound of 5$/]]) {
    const r = await h.httpGet(d.port, `/events?${QUERY}&last=${encodeURIComponent(v)}`);
    ok(r.status === 400 && why.test(r.body.trim()) && r.body.trim().split('\n').length === 1,
      `${tag} last=${v}: 400 "${r.body.trim()}"`, r);
    const e = open(`${d.base}/events?${QUERY}&last=${encodeURIComponent(v)}`);
    await h.waitFor(() => e.es.readyState === EventSource.CLOSED, `${tag} last=${v}: closed`, 5000)
      .catch((x) => diag(x.message));
    ok(e.es.readyState === EventSource.CLOSED && e.opens === 0 && e.got.length === 0,
      `${tag} last=${v}: the EventSource gives up, nothing received`, e.statuses);
    e.es.close();
  }

  // a Last-Event-ID wins: the resume, not the backlog
  const resumeFrom = watch.got[16].id;
  for (const [how, url, headers] of [
    ['header', `${d.base}/events?${QUERY}&last=5`, { 'Last-Event-ID': resumeFrom }],
    ['query', `${d.base}/events?${QUERY}&last=5&lastEventId=${encodeURIComponent(resumeFrom)}`, {}]]) {
    const c = open(url, headers);
    await h.waitFor(() => c.got.length >= 5, `${tag} a resume of 5 (${how})`, 10000).catch((e) => diag(e.message));
    is(c.got.map((g) => g.data.k), [17, 18, 19, 20, 21],
      `${tag} Last-Event-ID (${how}) and last=5: the resume after it, not the backlog`);
    is(c.resets, [], `${tag} no reset (${how})`);
    c.es.close();
  }
  for (const s of [watch, a, b]) s.es.close();

  const m = await h.httpGet(d.port, '/metrics');
  const metric = (name) => Number((new RegExp(`^${name} (\\d+)$`, 'm').exec(m.body) || [])[1]);
  is([metric('sserelay_backlogs_total'), metric('sserelay_backlog_events_total')], [2, 21],
    `${tag} /metrics: 2 streams asked for a backlog, of 9 and 12 events`);
  await h.stopDaemonChecked(d, mode);
}

function hs256(secret, payload) {
  const b64 = (x) => Buffer.from(JSON.stringify(x)).toString('base64url');
  const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${head}.${crypto.createHmac('sha256', secret).update(head).digest('base64url')}`;
}

async function reloadAndJwt(redis, tmp) {
  const conf = path.join(tmp, 'sserelay.conf');
  const key = path.join(tmp, 'jwt.key');
  const secret = 'a secret of thirty-two bytes, at least';
  fs.writeFileSync(key, secret, { mode: 0o600 });
  const write = (n) => fs.writeFileSync(conf, `max-last ${n}\nauth jwt\njwt-algorithm HS256\njwt-key-file ${key}\n`);
  write(2);
  const d = await h.startDaemon({ redisUrl: redis.url, args: ['-c', conf, '--heartbeat', '0.5'] });
  const token = hs256(secret, { sub: 'ann', exp: Math.floor(Date.now() / 1000) + 600, sserelay: { uploads: ['p1'] } });
  const url = (q) => `${d.base}/events?${q}&access_token=${token}`;

  // a watcher first: the history is kept while messages arrive
  const watch = open(url('user=ann&upload=p1'));
  await h.waitFor(() => watch.opens === 1, 'jwt: the watching stream open', 10000);
  await h.waitStreams(d.port, 1);
  for (let k = 0; k < 9; k++) await redis.client.publish(CHANNELS[k % 3], JSON.stringify({ k }));
  await redis.client.publish('user:ann', JSON.stringify({ k: 9 }));
  await h.waitFor(() => watch.got.length >= 7, 'jwt: the watcher has its 7', 10000);

  let r = await h.httpGet(d.port, `/events?user=ann&upload=p1&last=3&access_token=${token}`);
  is([r.status, r.body.trim()], [400, "last is over this server's bound of 2"], 'max-last 2: last=3 refused');
  write(4);
  const at = d.child.output.length;
  d.child.kill('SIGHUP');
  await h.waitFor(() => /reload: 'max-last' changed/.test(d.child.output.slice(at)), 'the reload', 10000)
    .catch((e) => diag(e.message));
  const a = open(url('user=ann&upload=p1&last=3'));
  await h.waitFor(() => a.got.length >= 6, 'jwt: a backlog of 6', 10000).catch((e) => diag(e.message));
  is(a.got.map((g) => `${g.channel}/${g.data.k}`),
    ['upload:p1/1', 'user:ann/3', 'upload:p1/4', 'user:ann/6', 'upload:p1/7', 'user:ann/9'],
    'after SIGHUP to max-last 4, last=3 under a token for ann and upload p1: the 3 newest of each, nothing of p2');
  r = await h.httpGet(d.port, `/events?user=ann&upload=p2&last=3&access_token=${token}`);
  is(r.status, 403, 'an upload the token does not allow, with last: 403, no backlog');
  ok(!/"k"/.test(r.body), 'and no message in its body', r.body);
  for (const s of [watch, a]) s.es.close();
  await h.stopDaemonChecked(d, 'jwt');
}

h.run(async () => {
  const tmp = h.makeTmpDir('last');
  const redis = await h.startRedis();
  await scenario(redis, 'memory');
  await scenario(redis, 'redis');
  await reloadAndJwt(redis, tmp);
}, { timeoutMs: 90000 });

#!/usr/bin/env node
'use strict';
// Revocation (issue 22): FCALL sserelay_revoke ends a channel's streams on
// every instance and keeps new ones out for a while.
//
//  - two instances (A, B) behind HAProxy (examples/haproxy.cfg, leastconn)
//    on one Redis, B through a TCP relay the test can cut; alice has two
//    npm `eventsource` streams through HAProxy (one on each instance) and
//    a headless Chromium page (npm playwright-core) a third; bob one;
//  - FCALL sserelay_revoke 1 user:alice 6 answers 2 (both instances got
//    it at once); each of alice's streams gets `event: revoked` (data
//    user:alice) within 1 s of the call, measured from the call to the
//    event; each EventSource then comes back, is refused with 403 and
//    ends CLOSED (Chromium's for good: CLOSED is final); bob's stream
//    goes on and still gets what is published to him;
//  - an instance C started after the call refuses alice too (403 revoked);
//    once the 6 s are over she is let in again (waited for);
//  - sserelay_unrevoke ends a revocation early;
//  - B cut from Redis during a revocation of carol (the call answers 1)
//    ends carol's stream once it is back;
//  - with --auth jwt, dave's old token is refused after the revocation and
//    a token issued after it is let in at once;
//  - /metrics: revocations applied, streams ended, refusals.
//
// Needs haproxy and SSERELAY_JS_MODULES (tests/js/install.sh) with
// eventsource and playwright-core, and chromium; Chromium missing is a
// skip of its part, a failure under SSERELAY_REQUIRE_ALL=1.

const crypto = require('crypto');
const fs = require('fs');
const net = require('net');
const http = require('http');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const ARGS = ['--retry', '200', '--heartbeat', '1'];
const SECONDS = 6;

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

// an npm EventSource that records what happens to it
function client(url) {
  const st = { opens: 0, errors: 0, got: [], revoked: [], es: null };
  st.es = new EventSource(url);
  h.onCleanup(() => st.es.close());
  st.es.onopen = () => { st.opens++; };
  st.es.onerror = () => { st.errors++; };
  st.es.onmessage = (ev) => st.got.push(ev.data);
  st.es.addEventListener('revoked', (ev) => st.revoked.push({ at: Date.now(), data: ev.data }));
  return st;
}

// the status of GET path, without waiting for a stream's body
function status(port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      if (res.statusCode === 200) { req.destroy(); resolve({ status: 200, body: '' }); return; }
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body: body.trim() }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${p} timed out`)));
    req.on('error', reject);
  });
}

async function metrics(port) {
  const r = await h.httpGet(port, '/metrics');
  const m = {};
  for (const l of r.body.split('\n')) {
    const x = /^(sserelay_(?:revocations_applied|revoked_streams|revoke_refusals)_total) (\d+)/.exec(l);
    if (x) m[x[1].replace(/^sserelay_|_total$/g, '')] = Number(x[2]);
  }
  return m;
}

// A TCP relay to Redis that the test can cut (every connection closed, no
// new one accepted) and restore on the same port.
async function relay(target) {
  const port = await h.freePort();
  const socks = new Set();
  let server = null;
  const listen = () => new Promise((resolve, reject) => {
    server = net.createServer((c) => {
      const up = net.createConnection({ host: '127.0.0.1', port: target });
      socks.add(c); socks.add(up);
      c.pipe(up); up.pipe(c);
      const end = () => { c.destroy(); up.destroy(); socks.delete(c); socks.delete(up); };
      c.on('error', end); up.on('error', end); c.on('close', end); up.on('close', end);
    });
    server.on('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await listen();
  const r = {
    port,
    cut() {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of socks) s.destroy();
        socks.clear();
      });
    },
    restore: listen,
  };
  h.onCleanup(() => r.cut());
  return r;
}

function b64url(x) { return Buffer.from(x).toString('base64url'); }
function jwt(key, claims) {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = crypto.createHmac('sha256', key).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function chromiumPage(origin, p) {
  const context = await h.launchChromium(h.tmpDir);
  h.onCleanup(() => context.close().catch(() => {}));
  const page = await h.openPage(context);
  const resp = await page.goto(`${origin}/healthz`, { timeout: 30000 });
  is(resp && resp.status(), 200, 'Chromium: the page loads /healthz through HAProxy');
  await page.evaluate((u) => {
    const st = { opens: 0, errors: 0, revoked: [] };
    window.__st = st;
    const es = new EventSource(u);
    window.__es = es;
    es.onopen = () => { st.opens++; };
    es.onerror = () => { st.errors++; };
    es.addEventListener('revoked', (ev) => st.revoked.push({ at: Date.now(), data: ev.data }));
  }, p);
  return {
    page, context,
    state: () => page.evaluate(() => ({ rs: window.__es.readyState, ...window.__st })),
  };
}

h.run(async () => {
  h.makeTmpDir('revoke');
  const redis = await h.startRedis();
  const cutB = await relay(redis.port);
  const a = await h.startDaemon({ redisUrl: redis.url, args: ARGS });
  const b = await h.startDaemon({ redisUrl: `redis://127.0.0.1:${cutB.port}`, args: ARGS });
  const hp = await h.startHAProxy(HAPROXY_CFG, [a.port, b.port]);
  const servers = ['sserelay1', 'sserelay2'];
  const scur = (st, s) => Number(st[s] && st[s].scur) || 0;
  await h.waitFor(async () => {
    const st = await hp.serverStats();
    return servers.every((s) => st[s] && /^UP/.test(st[s].status));
  }, 'both servers UP in HAProxy', 15000, 50);
  const via = `http://127.0.0.1:${hp.port}`;

  // alice: one stream on each instance (leastconn), then Chromium's
  const e1 = client(`${via}/events?user=alice`);
  await h.waitFor(() => e1.opens === 1, 'alice\'s first stream open', 10000);
  const e2 = client(`${via}/events?user=alice`);
  await h.waitFor(() => e2.opens === 1, 'alice\'s second stream open', 10000);
  const st0 = await hp.serverStats();
  ok(scur(st0, 'sserelay1') === 1 && scur(st0, 'sserelay2') === 1,
    'alice has a stream on each instance', servers.map((s) => scur(st0, s)));
  let chrome = null;
  if (chromiumMissing) {
    if (h.requireAll()) ok(false, `Chromium: ${chromiumMissing} (SSERELAY_REQUIRE_ALL=1)`);
    else ok(true, `Chromium # SKIP ${chromiumMissing}`);
  } else {
    chrome = await chromiumPage(via, '/events?user=alice');
    await h.waitFor(async () => (await chrome.state()).opens === 1, 'Chromium: alice\'s stream open', 15000);
  }
  const bob = client(`${via}/events?user=bob`);
  await h.waitFor(() => bob.opens === 1, 'bob\'s stream open', 10000);

  // the call
  const t0 = Date.now();
  const got = await redis.client.command('FCALL', 'sserelay_revoke', '1', 'user:alice', String(SECONDS));
  is(got, 2, 'sserelay_revoke answers 2: both instances got it at once');
  await h.waitFor(() => e1.revoked.length && e2.revoked.length, 'event: revoked on both npm streams', 10000);
  for (const [name, e] of [['first', e1], ['second', e2]]) {
    const dt = e.revoked[0].at - t0;
    ok(dt <= 1000, `alice's ${name} stream: event: revoked ${dt} ms after the call (within 1 s)`);
    is(e.revoked.map((x) => x.data), ['user:alice'], `alice's ${name} stream: its data is the channel, once`);
  }
  await h.waitFor(() => e1.es.readyState === 2 && e2.es.readyState === 2,
    'both npm EventSources CLOSED (refused on their reconnection)', 15000);
  is([e1.opens, e2.opens], [1, 1], 'neither npm EventSource opened again');
  if (chrome) {
    const s = await h.waitFor(async () => { const x = await chrome.state(); return x.revoked.length ? x : null; },
      'Chromium: event: revoked', 10000);
    const dt = s.revoked[0].at - t0;
    ok(dt <= 1000, `Chromium: event: revoked ${dt} ms after the call (within 1 s)`);
    is(s.revoked[0].data, 'user:alice', 'Chromium: its data is the channel');
    const c = await h.waitFor(async () => { const x = await chrome.state(); return x.rs === 2 ? x : null; },
      'Chromium\'s EventSource CLOSED', 15000);
    is(c.opens, 1, 'Chromium: CLOSED after its one stream, and CLOSED is final: it does not come back');
  }
  ok(bob.es.readyState === 1 && bob.revoked.length === 0, 'bob\'s stream goes on');
  await redis.client.command('PUBLISH', 'user:bob', 'still here');
  await h.waitFor(() => bob.got.some((d) => d.includes('still here')), 'bob gets a message after the call', 10000);

  // refused everywhere, by a late instance too
  const c = await h.startDaemon({ redisUrl: redis.url, args: ARGS });
  for (const [name, d] of [['A', a], ['B', b], ['C (started after the call)', c]]) {
    const r = await status(d.port, '/events?user=alice');
    ok(r.status === 403 && r.body === 'revoked', `instance ${name} refuses alice: 403 revoked`, r);
  }
  is((await status(c.port, '/events?user=bob')).status, 200, 'instance C lets bob in');
  const ma = await metrics(a.port);
  const mb = await metrics(b.port);
  ok(ma.revocations_applied === 1 && mb.revocations_applied === 1 &&
    ma.revoked_streams + mb.revoked_streams === (chrome ? 3 : 2) &&
    ma.revoke_refusals + mb.revoke_refusals >= (chrome ? 4 : 3),
  '/metrics: one revocation applied by each instance, its streams ended, the refusals counted', { a: ma, b: mb });

  // after its seconds
  await h.waitFor(async () => (await status(a.port, '/events?user=alice')).status === 200 &&
      (await status(c.port, '/events?user=alice')).status === 200,
  `alice let in again after ${SECONDS} s`, SECONDS * 1000 + 15000, 200);
  ok(Date.now() - t0 >= SECONDS * 1000 - 1000, `...not before the ${SECONDS} s were over`);

  // unrevoke
  await redis.client.command('FCALL', 'sserelay_revoke', '1', 'user:erin', '3600');
  await h.waitFor(async () => (await status(b.port, '/events?user=erin')).status === 403, 'erin refused', 10000);
  is(await redis.client.command('FCALL', 'sserelay_unrevoke', '1', 'user:erin'), 1,
    'sserelay_unrevoke answers 1');
  await h.waitFor(async () => (await status(a.port, '/events?user=erin')).status === 200 &&
      (await status(b.port, '/events?user=erin')).status === 200, 'erin let in again after the unrevoke', 10000);

  // B cut from Redis during the call
  const carol = client(`http://127.0.0.1:${b.port}/events?user=carol`);
  await h.waitFor(() => carol.opens === 1, 'carol\'s stream open on B', 10000);
  await cutB.cut();
  const n = await redis.client.command('FCALL', 'sserelay_revoke', '1', 'user:carol', '3600');
  is(n, 2, 'with B cut from Redis the call answers 2: A and C got it at once');
  await cutB.restore();
  await h.waitFor(() => carol.revoked.length === 1, 'B, back on Redis, ends carol\'s stream with event: revoked', 20000);
  await h.waitFor(async () => (await status(b.port, '/events?user=carol')).status === 403, 'B refuses carol', 10000);

  // JWT: only tokens issued before
  const key = path.join(h.tmpDir, 'jwt.key');
  const secret = 'revoke-test-secret-revoke-test-secret';
  fs.writeFileSync(key, secret);
  const j = await h.startDaemon({ redisUrl: redis.url, args: [...ARGS, '--auth', 'jwt', '--jwt-key-file', key] });
  const now = () => Math.floor(Date.now() / 1000);
  const old = jwt(secret, { sub: 'dave', iat: now() - 60, exp: now() + 3600 });
  const dave = client(`http://127.0.0.1:${j.port}/events?user=dave&access_token=${old}`);
  await h.waitFor(() => dave.opens === 1, 'dave\'s stream open (JWT)', 10000);
  await redis.client.command('FCALL', 'sserelay_revoke', '1', 'user:dave', '3600');
  await h.waitFor(() => dave.revoked.length === 1, 'dave\'s stream ends with event: revoked', 10000);
  const r1 = await status(j.port, `/events?user=dave&access_token=${old}`);
  ok(r1.status === 403 && r1.body === 'revoked', 'his old token (issued before) is refused: 403 revoked', r1);
  const fresh = jwt(secret, { sub: 'dave', iat: now(), exp: now() + 3600 });
  is((await status(j.port, `/events?user=dave&access_token=${fresh}`)).status, 200,
    'a token issued after the revocation is let in at once');

  if (chrome) await chrome.context.close();
  for (const e of [e1, e2, bob, carol, dave]) e.es.close();
  await hp.stop();
  for (const [name, d] of [['A', a], ['B', b], ['C', c], ['J', j]]) await h.stopDaemonChecked(d, `instance ${name}`);
}, { timeoutMs: 180000 });

#!/usr/bin/env node
'use strict';
// A client that leaves is seen at once, whatever the heartbeat (issue 19):
// the writer threads watch every stream's socket (EPOLLRDHUP, EPOLLHUP,
// EPOLLERR), so a closed stream stops counting at once.
//
// 1. A user who closes a page three times, then reloads one three times,
//    under --max-streams-per-user 2 with --heartbeat 15: headless Chromium
//    (each load its own EventSource) gets its stream every time, never an
//    `event: overload`, and limit_refusals.user stays 0.
// 2. /healthz `streams` is back to 0 within 1 s of the clients' going
//    (heartbeat 15 s): npm eventsource clients that close, raw sockets that
//    close (FIN) and raw sockets that vanish with a TCP reset (RST).
// 3. --subscribe exact --subscribe-linger 2: the channel of a stream that
//    closes is let go of in Redis (PUBSUB CHANNELS) within 3 s.
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh) and Chromium; skips
// without them unless SSERELAY_REQUIRE_ALL=1.

const path = require('path');
const net = require('net');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
h.requireChromium();

// the time until /healthz counts `n` streams, or null past limitMs
async function timeUntilStreams(port, n, limitMs) {
  const t0 = Date.now();
  for (;;) {
    const hz = await h.healthz(port);
    if (hz.json && hz.json.streams === n) return Date.now() - t0;
    if (Date.now() - t0 > limitMs) return null;
    await h.sleep(10);
  }
}

// a raw HTTP/1.1 stream; resolves once its first bytes came
function rawStream(port, user) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(`GET /events?user=${user} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    s.once('data', () => resolve(s));
    s.on('error', reject);
  });
}

async function reloads(redis) {
  const d = await h.startDaemon({
    redisUrl: redis.url,
    args: ['--max-streams-per-user', '2', '--heartbeat', '15'],
  });
  const context = await h.launchChromium(h.tmpDir);
  // a page of the daemon's own origin, served by the browser's router
  const page = `${d.base}/closes.html`;
  const html = `<!doctype html><title>closes</title><script>
    window.__open = false; window.__overload = 0; window.__errors = 0;
    const es = new EventSource('/events?user=alice');
    es.onopen = () => { window.__open = true; };
    es.onerror = () => { window.__errors++; };
    es.addEventListener('overload', () => { window.__overload++; });
    </script>`;
  await context.route(page, (r) => r.fulfill({ status: 200, contentType: 'text/html', body: html }));
  await context.route('**/favicon.ico', (r) => r.fulfill({ status: 204, body: '' }));

  // the stream opened (its first bytes came: onopen) and no overload
  const opened = async (p, what) => {
    await p.waitForFunction(() => window.__open || window.__overload > 0, null,
      { timeout: 15000 }).catch((e) => diag(e.message));
    const st = await p.evaluate(() => ({ open: window.__open, overload: window.__overload }));
    ok(st.open && st.overload === 0, `${what}: the stream opens, no overload`, JSON.stringify(st));
  };

  for (let i = 1; i <= 3; i++) {
    const p = await context.newPage();
    await p.goto(page);
    await opened(p, `page ${i}, then closed`);
    await p.close();
  }
  const p = await context.newPage();
  await p.goto(page);
  await opened(p, 'a page');
  for (let i = 1; i <= 3; i++) {
    await p.reload();
    await opened(p, `reload ${i}`);
  }
  const hz = await h.healthz(d.port);
  is(hz.json.limit_refusals.user, 0, 'limit_refusals.user is 0 after three closes and three reloads');
  is(hz.json.streams, 1, 'one stream open: the last page\'s');
  await p.close();
  await h.stopDaemonChecked(d, 'reloads');
}

async function gone(redis) {
  const d = await h.startDaemon({ redisUrl: redis.url, args: ['--heartbeat', '15'] });
  const EventSource = h.loadModule('eventsource');
  const ES = EventSource.EventSource || EventSource;

  // npm eventsource clients that close
  const es = [];
  for (let i = 0; i < 4; i++) es.push(new ES(`${d.base}/events?user=es${i}`));
  await h.waitStreams(d.port, 4);
  es.forEach((e) => e.close());
  let ms = await timeUntilStreams(d.port, 0, 10000);
  ok(ms !== null && ms <= 1000, `4 EventSources closed: /healthz streams is 0 within 1 s (${ms} ms; heartbeat 15 s)`);

  // raw sockets that close (FIN)
  const fin = await Promise.all([0, 1, 2, 3].map((i) => rawStream(d.port, `fin${i}`)));
  await h.waitStreams(d.port, 4);
  fin.forEach((s) => s.end());
  ms = await timeUntilStreams(d.port, 0, 10000);
  ok(ms !== null && ms <= 1000, `4 sockets closed (FIN): streams 0 within 1 s (${ms} ms)`);

  // raw sockets that vanish with a reset (RST)
  const rst = await Promise.all([0, 1, 2, 3].map((i) => rawStream(d.port, `rst${i}`)));
  await h.waitStreams(d.port, 4);
  rst.forEach((s) => s.resetAndDestroy());
  ms = await timeUntilStreams(d.port, 0, 10000);
  ok(ms !== null && ms <= 1000, `4 sockets reset (RST): streams 0 within 1 s (${ms} ms)`);
  await h.stopDaemonChecked(d, 'gone');
}

async function linger(redis) {
  const d = await h.startDaemon({
    redisUrl: redis.url,
    args: ['--subscribe', 'exact', '--subscribe-linger', '2', '--heartbeat', '15'],
  });
  const subscribed = async () => (await redis.client.command('PUBSUB', 'CHANNELS', 'user:lone')).length === 1;
  const s = await rawStream(d.port, 'lone');
  await h.waitFor(subscribed, 'user:lone subscribed', 10000);
  ok(await subscribed(), 'exact: the stream\'s channel is subscribed');
  s.end();
  const t0 = Date.now();
  await h.waitFor(async () => !(await subscribed()), 'user:lone let go of', 30000, 20)
    .catch((e) => diag(e.message));
  const ms = Date.now() - t0;
  ok(!(await subscribed()) && ms <= 3000,
    `--subscribe-linger 2: the channel is let go of within 3 s of its last client leaving (${ms} ms)`);
  await h.stopDaemonChecked(d, 'linger');
}

h.run(async () => {
  h.makeTmpDir('closes');
  const redis = await h.startRedis();
  await reloads(redis);
  await gone(redis);
  await linger(redis);
}, { timeoutMs: 120000 });

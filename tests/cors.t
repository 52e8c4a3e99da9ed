#!/usr/bin/env node
'use strict';
// CORS (issue 7), from a real browser on another origin: headless Debian
// Chromium loads a page from a tiny node HTTP server on one loopback port
// (http://127.0.0.1:PAGEPORT) and opens
//   new EventSource('http://127.0.0.1:DPORT/events?user=alice', { withCredentials: true })
// against a daemon with --cors-origin PAGEORIGIN and --auth jwt, the token
// (HS256, made here with node's crypto) in the cookie sserelay_token for
// 127.0.0.1: the page receives published events; without the cookie it gets
// 401 and nothing.  A daemon whose --cors-origin does not list the page's
// origin: the page's EventSource errors and receives nothing.  Then the
// headers themselves over raw HTTP: the exact origin echoed,
// Access-Control-Allow-Credentials: true, Vary: Origin, on streams and on
// errors; the preflight OPTIONS -> 204 with Allow-Methods, Allow-Headers
// (Authorization, Last-Event-ID, Cache-Control) and Max-Age 600; nothing
// for an origin not in the list.

const fs = require('fs');
const path = require('path');
const http = require('http');
const crypto = require('crypto');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
h.requireChromium();

const SECRET = 'cors-test-secret';

function b64u(x) { return Buffer.from(x).toString('base64url'); }
function jwtHS256(payload, secret) {
  const head = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64u(JSON.stringify(payload));
  const sig = crypto.createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

// One request; resolves at the end of the body, or 400 ms after the
// headers for a stream (then the connection is dropped).
function rawReq(port, method, pathName, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathName, headers, agent: false }, (res) => {
      let body = '';
      let done = false;
      const fin = () => {
        if (done) return;
        done = true;
        req.destroy();
        resolve({ status: res.statusCode, headers: res.headers, body });
      };
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', fin);
      res.on('error', fin);
      setTimeout(fin, 400);
    });
    req.setTimeout(5000, () => req.destroy(new Error(`${method} ${pathName} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function tokens(v) {
  return String(v || '').split(',').map((x) => x.trim().toLowerCase()).filter(Boolean);
}

function checkCorsHeaders(r, origin, label) {
  is(r.headers['access-control-allow-origin'], origin, `${label}: Access-Control-Allow-Origin is exactly ${origin}`);
  is(r.headers['access-control-allow-credentials'], 'true', `${label}: Access-Control-Allow-Credentials: true`);
  ok(tokens(r.headers.vary).includes('origin'), `${label}: Vary lists Origin (got ${JSON.stringify(r.headers.vary)})`);
}

function checkNoCors(r, label) {
  const ac = Object.keys(r.headers).filter((k) => k.startsWith('access-control-'));
  is(ac, [], `${label}: no Access-Control-* headers`);
}

async function openPageEventSource(page, url, withCredentials) {
  await page.evaluate(([u, wc]) => {
    window.__got = [];
    window.__errors = [];
    window.__opens = 0;
    const es = new EventSource(u, { withCredentials: wc });
    window.__es = es;
    es.onopen = () => { window.__opens++; };
    es.onerror = () => { window.__errors.push(es.readyState); };
    es.onmessage = (ev) => { window.__got.push({ data: ev.data, origin: ev.origin, lastEventId: ev.lastEventId }); };
  }, [url, withCredentials]);
}

h.run(async () => {
  const tmp = h.makeTmpDir('cors');
  const redis = await h.startRedis();

  // ---- the page's origin: a tiny node server
  const page_ = http.createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><meta charset="utf-8"><title>cors page</title><p>another origin</p>');
  });
  const pagePort = await h.freePort();
  await new Promise((resolve) => page_.listen(pagePort, '127.0.0.1', resolve));
  h.onCleanup(() => new Promise((resolve) => page_.close(resolve)));
  const pageOrigin = `http://127.0.0.1:${pagePort}`;

  const keyFile = path.join(tmp, 'hs256.key');
  fs.writeFileSync(keyFile, `${SECRET}\n`);
  const token = jwtHS256({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }, SECRET);

  const common = ['--retry', '500', '--heartbeat', '0.2'];
  // A: the page's origin allowed (second in the list), with JWT auth
  const argsA = [...common, '--cors-origin', `http://elsewhere.example,${pageOrigin}`,
    '--auth', 'jwt', '--jwt-algorithm', 'HS256', '--jwt-key-file', keyFile];
  let dA = await h.startDaemon({ redisUrl: redis.url, args: argsA });
  // B: only another origin allowed, no auth
  const dB = await h.startDaemon({ redisUrl: redis.url, args: [...common, '--cors-origin', 'http://elsewhere.example'] });
  // C: the page's origin allowed, no auth (EventSource without credentials)
  const dC = await h.startDaemon({ redisUrl: redis.url, args: [...common, '--cors-origin', pageOrigin] });

  // ---- headers over raw HTTP
  const bearer = { Authorization: `Bearer ${token}` };
  let r = await rawReq(dA.port, 'GET', '/events?user=alice', { Origin: pageOrigin, ...bearer });
  is(r.status, 200, 'GET stream, allowed Origin, token: 200');
  checkCorsHeaders(r, pageOrigin, 'stream');
  r = await rawReq(dA.port, 'GET', '/events?user=alice', { Origin: 'http://elsewhere.example', ...bearer });
  checkCorsHeaders(r, 'http://elsewhere.example', 'stream, the other listed origin');
  r = await rawReq(dA.port, 'GET', '/events?user=alice', { Origin: pageOrigin });
  is(r.status, 401, 'GET without a token: 401');
  checkCorsHeaders(r, pageOrigin, '401 error');
  r = await rawReq(dA.port, 'GET', '/events', { Origin: pageOrigin, ...bearer });
  ok(r.status >= 400 && r.status < 500, `GET /events without user: ${r.status}`);
  checkCorsHeaders(r, pageOrigin, `${r.status} error`);
  for (const bad of ['http://evil.example', `http://127.0.0.1:${pagePort + 1}`, 'null',
    `${pageOrigin}.evil.example`, `http://127.0.0.1:${pagePort}0`]) {
    r = await rawReq(dA.port, 'GET', '/events?user=alice', { Origin: bad, ...bearer });
    checkNoCors(r, `stream, Origin ${bad} (not listed)`);
  }
  r = await rawReq(dA.port, 'GET', '/events?user=alice', { ...bearer });
  checkNoCors(r, 'stream without Origin');

  // preflight: no credentials are sent with it, so no token either
  const pre = {
    Origin: pageOrigin,
    'Access-Control-Request-Method': 'GET',
    'Access-Control-Request-Headers': 'authorization,last-event-id',
  };
  r = await rawReq(dA.port, 'OPTIONS', '/events?user=alice', pre);
  is(r.status, 204, 'preflight OPTIONS /events (allowed Origin, no token): 204');
  is(r.body, '', 'preflight: no body');
  checkCorsHeaders(r, pageOrigin, 'preflight');
  is(tokens(r.headers['access-control-allow-methods']).sort(), ['get', 'head', 'options'],
    'preflight: Access-Control-Allow-Methods: GET, HEAD, OPTIONS');
  const allowH = tokens(r.headers['access-control-allow-headers']);
  for (const x of ['authorization', 'last-event-id', 'cache-control']) {
    ok(allowH.includes(x), `preflight: Access-Control-Allow-Headers lists ${x}`, r.headers['access-control-allow-headers']);
  }
  is(r.headers['access-control-max-age'], '600', 'preflight: Access-Control-Max-Age: 600');
  r = await rawReq(dA.port, 'OPTIONS', '/events?user=alice', { ...pre, Origin: 'http://evil.example' });
  checkNoCors(r, `preflight from an origin not listed (status ${r.status})`);
  r = await rawReq(dB.port, 'OPTIONS', '/events?user=alice', pre);
  checkNoCors(r, `preflight to daemon B (page origin not listed; status ${r.status})`);

  // ---- the browser
  const context = await h.launchChromium(tmp);
  const page = await h.openPage(context);
  const { consoleLines } = page;
  const resp = await page.goto(`${pageOrigin}/`, { timeout: 15000 });
  is(resp && resp.status(), 200, `page loaded from ${pageOrigin}`);

  // A with the cookie: credentials cross-origin
  await context.addCookies([{ name: 'sserelay_token', value: token, url: `http://127.0.0.1:${dA.port}` }]);
  await openPageEventSource(page, `${dA.base}/events?user=alice`, true);
  await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
  is(await page.evaluate(() => window.__es.readyState), 1,
    'withCredentials EventSource to the daemon (cookie token, allowed origin) is OPEN');
  is(await page.evaluate(() => window.__es.withCredentials), true, 'es.withCredentials is true');
  await h.waitStreams(dA.port, 1);
  for (let i = 1; i <= 3; i++) await redis.client.publish('user:alice', `{"n":${i}}`);
  // and a last one: anything extra would come before it
  await redis.client.publish('user:alice', '"end"');
  await page.waitForFunction(() => window.__got.length >= 4, null, { timeout: 10000 }).catch((e) => diag(e.message));
  let got = await page.evaluate(() => window.__got);
  is(got.map((g) => { try { return JSON.parse(g.data); } catch (_) { return g.data; } }),
    [...[1, 2, 3].map((n) => ({ channel: 'user:alice', data: { n } })), { channel: 'user:alice', data: 'end' }],
    'the page on another origin received the 3 published events (and the last one)');
  is([...new Set(got.map((g) => g.origin))], [dA.base], 'event origin is the daemon');
  is(await page.evaluate(() => window.__errors.length), 0, 'no error events');
  await page.evaluate(() => window.__es.close());

  // A without the cookie: 401, the browser gives up, nothing arrives
  await context.clearCookies();
  await openPageEventSource(page, `${dA.base}/events?user=alice`, true);
  // a 401 is fatal: CLOSED for good, so nothing can arrive after it
  await page.waitForFunction(() => window.__errors.length > 0 && window.__es.readyState === 2, null, { timeout: 10000 })
    .catch((e) => diag(e.message));
  is(await page.evaluate(() => [window.__es.readyState, window.__got.length, window.__opens]), [2, 0, 0],
    'without the cookie: EventSource CLOSED (401), no open, no events');
  await page.evaluate(() => window.__es.close());

  // C: an allowed origin without credentials
  await openPageEventSource(page, `${dC.base}/events?user=carol`, false);
  await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
  await h.waitStreams(dC.port, 1);
  await redis.client.publish('user:carol', '"hi carol"');
  await page.waitForFunction(() => window.__got.length >= 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
  got = await page.evaluate(() => window.__got);
  is(got.map((g) => g.data), ['{"channel":"user:carol","data":"hi carol"}'],
    'EventSource without credentials to an allowing daemon receives the event');
  await page.evaluate(() => window.__es.close());

  // B: the page's origin is not listed
  for (const wc of [false, true]) {
    await openPageEventSource(page, `${dB.base}/events?user=bob`, wc);
    // the browser decides on the response's headers: an error, not an
    // open (with a wrong Access-Control-Allow-Origin it would open)
    await page.waitForFunction(() => window.__errors.length > 0, null, { timeout: 10000 }).catch((e) => diag(e.message));
    const st = await page.evaluate(() => ({ rs: window.__es.readyState, got: window.__got.length, errors: window.__errors.length, opens: window.__opens }));
    ok(st.errors > 0 && st.rs !== 1 && st.got === 0 && st.opens === 0,
      `origin not in --cors-origin (withCredentials ${wc}): EventSource errors, never opens (readyState ${st.rs}), receives nothing`, st);
    await page.evaluate(() => window.__es.close());
  }
  const blocked = consoleLines.filter((l) => /CORS|Access-Control/i.test(l));
  ok(blocked.length > 0, 'Chromium reported the CORS block on the console', consoleLines.slice(-10).join('\n'));

  // A again, and the browser's own reconnection: daemon A drains (SIGTERM)
  // and comes back on the same port; the EventSource reconnects by itself,
  // cross-origin with the cookie and its Last-Event-ID (of the old run: so
  // the new run answers with event: reset unknown-epoch, which proves the
  // header arrived), then gets a new event.
  await context.addCookies([{ name: 'sserelay_token', value: token, url: `http://127.0.0.1:${dA.port}` }]);
  await openPageEventSource(page, `${dA.base}/events?user=alice`, true);
  await page.evaluate(() => {
    window.__resets = [];
    window.__es.addEventListener('reset', (ev) => { window.__resets.push(ev.data); });
  });
  await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
  await h.waitStreams(dA.port, 1);
  await redis.client.publish('user:alice', '"before restart"');
  await page.waitForFunction(() => window.__got.length >= 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
  const lastId = await page.evaluate(() => (window.__got[0] || {}).lastEventId);
  ok(h.parseId(lastId), `credentialed cross-origin stream: an event with id ${lastId}`);
  await h.stopDaemonChecked(dA, 'daemon A (first run)', 5000);
  dA = await h.startDaemon({ redisUrl: redis.url, port: dA.port, args: argsA });
  await page.waitForFunction(() => window.__opens >= 2 && window.__es.readyState === 1, null, { timeout: 20000 })
    .catch((e) => diag(e.message));
  is(await page.evaluate(() => [window.__opens, window.__es.readyState]), [2, 1],
    'after a restart of the daemon the EventSource reconnected by itself, cross-origin with credentials');
  await page.waitForFunction(() => window.__resets.length >= 1, null, { timeout: 5000 }).catch((e) => diag(e.message));
  const resets = await page.evaluate(() => window.__resets);
  ok(resets.length === 1 && /unknown-epoch/.test(resets[0]),
    'the reconnection carried Last-Event-ID (the new run answered reset unknown-epoch)', resets);
  await h.waitStreams(dA.port, 1);
  await redis.client.publish('user:alice', '"after restart"');
  await page.waitForFunction(() => window.__got.length >= 2, null, { timeout: 10000 }).catch((e) => diag(e.message));
  is(await page.evaluate(() => window.__got.map((g) => JSON.parse(g.data).data)), ['before restart', 'after restart'],
    'and receives the next event');
  await page.evaluate(() => window.__es.close());

  for (const [d, name] of [[dA, 'A'], [dB, 'B'], [dC, 'C']]) await h.stopDaemonChecked(d, `daemon ${name}`, 5000);
}, { timeoutMs: 120000 });

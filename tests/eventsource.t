#!/usr/bin/env node
'use strict';
// Real client: the npm `eventsource` package (WHATWG EventSource for Node)
// receives events published on user:alice and upload:u7, then reconnects by
// itself (same EventSource object) after the daemon is stopped with SIGTERM
// and started again on the same port, sending Last-Event-ID, and receives an
// event published after the restart.
//
// Needs SSERELAY_JS_MODULES (see tests/js/install.sh); skips without it
// unless SSERELAY_REQUIRE_ALL=1.

const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
const { EventSource } = h.loadModule('eventsource');
if (typeof EventSource !== 'function') h.skipAll('npm eventsource does not export EventSource');

h.run(async () => {
  h.makeTmpDir('eventsource');
  const redis = await h.startRedis();
  const common = ['--retry', '300', '--heartbeat', '0.2', '--log-level', 'debug'];
  let d = await h.startDaemon({ redisUrl: redis.url, args: common });
  const port = d.port;
  const url = `${d.base}/events?user=alice&upload=u7`;

  // Record every connection attempt the EventSource makes (and its headers).
  // The spy also tees each response body into a raw transcript so the wire
  // bytes (opening retry:, final retry: of the drain) can be checked too.
  const attempts = [];
  const fetchSpy = h.fetchSpy(attempts);

  const got = [];
  const errors = [];
  let opens = 0;
  const es = new EventSource(url, { fetch: fetchSpy });
  h.onCleanup(() => es.close());
  es.onopen = () => { opens++; };
  es.onerror = (e) => { errors.push({ t: Date.now(), message: e && e.message, code: e && e.code }); };
  es.onmessage = (ev) => { got.push({ data: ev.data, lastEventId: ev.lastEventId, type: ev.type }); };

  await h.waitFor(() => es.readyState === EventSource.OPEN, 'EventSource open', 10000);
  ok(true, 'EventSource connects (readyState OPEN)');
  await h.waitStreams(port, 1);

  // ---- events on both channels ----
  let n = await redis.client.publish('user:alice', '{"pct":40,"msg":"hé ✓"}');
  ok(n >= 1, `PUBLISH user:alice reaches a subscriber (${n})`);
  n = await redis.client.publish('upload:u7', 'plain text, not JSON');
  ok(n >= 1, `PUBLISH upload:u7 reaches a subscriber (${n})`);
  await redis.client.publish('user:bob', '"not for alice"');
  await redis.client.publish('upload:u8', '"not for u7"');
  await redis.client.publish('user:alice', '[1,2,3]');

  await h.waitFor(() => got.length >= 3, '3 events', 10000).catch((e) => diag(e.message));
  is(got.length, 3, 'received exactly the 3 events for user:alice and upload:u7');
  const bodies = got.map((g) => { try { return JSON.parse(g.data); } catch (_) { return { unparsable: g.data }; } });
  is(bodies[0], { channel: 'user:alice', data: { pct: 40, msg: 'hé ✓' } }, 'event 1: JSON payload embedded in the envelope (UTF-8 intact)');
  is(bodies[1], { channel: 'upload:u7', data: 'plain text, not JSON' }, 'event 2: non-JSON payload embedded as a JSON string');
  is(bodies[2], { channel: 'user:alice', data: [1, 2, 3] }, 'event 3: JSON array payload');
  ok(got.every((g) => g.type === 'message'), 'all events dispatched as "message" (no event: field)');
  ok(got.every((g) => typeof g.lastEventId === 'string' && g.lastEventId.length > 0),
    'every event has a non-empty lastEventId', got.map((g) => g.lastEventId));
  const ids = got.map((g) => h.parseId(g.lastEventId));
  ok(ids.every(Boolean), 'ids look like <8 hex>-<seq>', got.map((g) => g.lastEventId));
  if (ids.every(Boolean)) {
    ok(ids.every((x) => x.epoch === ids[0].epoch), 'ids share one epoch within a daemon run', got.map((g) => g.lastEventId));
    ok(ids.every((x, i) => i === 0 || x.seq > ids[i - 1].seq), 'ids increase along the stream', got.map((g) => g.lastEventId));
  }
  const lastIdBefore = got.length ? got[got.length - 1].lastEventId : null;
  is(attempts.length, 1, 'one connection so far');
  is([attempts[0].status, attempts[0].contentType, attempts[0].cacheControl],
    [200, 'text/event-stream', 'no-cache'], 'status 200, Content-Type text/event-stream, Cache-Control no-cache');
  ok(attempts[0].raw.startsWith('retry: 300\n: sserelay\n\n'), 'stream opens with "retry: 300" and a comment',
    JSON.stringify(attempts[0].raw.slice(0, 80)));

  // Heartbeats (--heartbeat 0.2) are comments: on the wire, never events.
  const nGot = got.length;
  const pings = () => (attempts[0].raw.match(/\n: ping\n/g) || []).length;
  await h.waitFor(() => pings() >= 3, '3 heartbeats', 10000).catch((e) => diag(e.message));
  ok(pings() >= 3, 'heartbeat ": ping" comments on the wire', JSON.stringify(attempts[0].raw.slice(-200)));
  is(got.length, nGot, 'heartbeats dispatch no events');

  // ---- restart the daemon on the same port ----
  const errorsBefore = errors.length;
  const tStop = Date.now();
  await h.stopDaemonChecked(d, 'first run');
  await h.waitFor(() => es.readyState === EventSource.CONNECTING || errors.length > errorsBefore,
    'EventSource notices the end of the stream', 5000).catch((e) => diag(e.message));
  ok(es.readyState !== EventSource.CLOSED, `EventSource is not CLOSED after the drain (readyState ${es.readyState})`,
    errors.slice(errorsBefore));
  await h.waitFor(() => attempts[0].ended || attempts[0].readError, 'first stream body to end', 3000).catch(() => {});
  ok(attempts[0].ended, 'the first stream ended cleanly (chunked body terminated)', attempts[0].readError);
  const m = /\nretry: ([0-9]+)\n\n$/.exec(attempts[0].raw);
  ok(m !== null, `the drain sent a final "retry:" line as the last bytes${m ? ` (retry: ${m[1]})` : ''}`,
    JSON.stringify(attempts[0].raw.slice(-120)));

  d = await h.startDaemon({ redisUrl: redis.url, port, args: common });
  ok(true, `sserelay restarted on the same port ${port} (${Date.now() - tStop} ms after SIGTERM)`);

  await h.waitFor(() => es.readyState === EventSource.OPEN && opens >= 2, 'EventSource reopened', 15000)
    .catch((e) => diag(`${e.message}; attempts=${JSON.stringify(attempts)} errors=${JSON.stringify(errors)}`));
  ok(es.readyState === EventSource.OPEN && opens >= 2, `the same EventSource reconnected by itself (opens=${opens}, attempts=${attempts.length})`);
  const reconnect = attempts[attempts.length - 1];
  ok(attempts.length >= 2 && reconnect.lastEventId === lastIdBefore,
    'the reconnection sent Last-Event-ID = the last id received', attempts);

  await h.waitStreams(port, 1);
  const before = got.length;
  n = await redis.client.publish('upload:u7', '{"after":"restart"}');
  ok(n >= 1, `PUBLISH after restart reaches a subscriber (${n})`);
  await h.waitFor(() => got.length > before, 'event after restart', 10000).catch((e) => diag(e.message));
  const after = got.slice(before);
  is(after.length, 1, 'one event after the restart');
  if (after.length) {
    let body = null;
    try { body = JSON.parse(after[0].data); } catch (_) { /* checked below */ }
    is(body, { channel: 'upload:u7', data: { after: 'restart' } }, 'event after restart: envelope and payload');
    ok(after[0].lastEventId.length > 0 && h.parseId(after[0].lastEventId) !== null,
      `event after restart has an id (${after[0].lastEventId})`);
  }
  ok(es.readyState === EventSource.OPEN, 'EventSource still OPEN');

  es.close();
  await h.stopDaemonChecked(d, 'second run');
});

#!/usr/bin/env node
'use strict';
// The web developer's demo, end to end: `sserelay --demo` serves
// examples/demo.html at /; headless Debian Chromium opens
// /?user=alice&upload=u7&upload=u9&upload=u8; the three example publishers
// (examples/publish.sh with redis-cli, publish.py with Debian's redis-py,
// publish.js with npm redis) each simulate one upload; the test reads the DOM
// (never a screenshot): every progress bar goes 0, 10, ... 100 % and ends
// complete, the three "Upload <id> finished" notifications appear, the
// connection shows open. Then the daemon is stopped (SIGTERM drain): the page
// shows reconnecting; started again on the same port: open, 1 reconnect, the
// reset (unknown-epoch) shown with the bars cleared as stale for a refetch,
// and later progress and notifications arrive. With --broadcast, a message
// on the broadcast channel (examples/publish.sh -b TEXT, then redis-cli's)
// shows as a banner at the top of the page, the latest one, until it is
// dismissed; it is not logged as a notification. A page with an invalid id
// shows closed. A daemon with --max-streams 1, its one stream taken: the page
// shows the server busy (event: overload) and that the browser will retry,
// and once the stream is free it is open without the notice. With
// --presence --presence-events, alice's page shows who is watching her
// upload: bob when his page opens, and no longer once it has closed; bob's
// page, opened later, lists alice too.
//
// Needs SSERELAY_JS_MODULES (tests/js/install.sh: playwright-core, redis),
// Chromium (CHROMIUM, default /usr/bin/chromium), redis-cli, and
// /usr/bin/python3 with redis-py (python3-redis); skips without them unless
// SSERELAY_REQUIRE_ALL=1. The examples are found in $TESTS_SRCDIR/../examples.

const fs = require('fs');
const http = require('http');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag, EXAMPLES } = h;

const UPLOADS = { u7: 'publish.sh', u9: 'publish.py', u8: 'publish.js' };

h.checkPrerequisites();
const publishers = h.examplePublishers(['demo.html', ...Object.values(UPLOADS)]);
h.requireChromium();

// Runs one example publisher for user alice; resolves with { code, output }.
function runPublisher(file, upload, env) {
  return publishers.run(file, [upload, 'alice'], { ...process.env, ...env });
}

h.run(async () => {
  const tmp = h.makeTmpDir('demo');
  const redis = await h.startRedis();
  const common = ['--demo', '--retry', '500', '--heartbeat', '0.5', '--broadcast', 'notifications:broadcast'];
  let d = await h.startDaemon({ redisUrl: redis.url, args: common });
  const port = d.port;

  // ---- the page as the daemon serves it ----
  const source = fs.readFileSync(path.join(EXAMPLES, 'demo.html'), 'utf8');
  for (const p of ['/', '/demo.html']) {
    const r = await h.httpGet(port, p);
    is(r.status, 200, `GET ${p} with --demo: 200`);
    ok(/^text\/html\b/.test(r.headers['content-type'] || ''), `GET ${p}: Content-Type text/html (${r.headers['content-type']})`);
    ok(r.body === source, `GET ${p}: the body is examples/demo.html as built in (rebuild after editing it)`,
      `got ${r.body.length} bytes, examples/demo.html has ${source.length}`);
  }
  ok(!/\b(?:src|href)\s*=\s*["']?(?:https?:)?\/\//i.test(source) && !/@import|url\(\s*["']?(?:https?:)?\/\//i.test(source),
    'demo.html loads nothing from elsewhere (no external src/href/url())');
  for (const [file, shebang] of [['publish.sh', '#!/bin/sh'], ['publish.py', '#!/usr/bin/python3'], ['publish.js', '#!/usr/bin/env node']]) {
    const f = path.join(EXAMPLES, file);
    const first = fs.readFileSync(f, 'utf8').split('\n')[0];
    let x = true;
    try { fs.accessSync(f, fs.constants.X_OK); } catch (_) { x = false; }
    ok(first === shebang && x, `examples/${file} is executable and starts with ${shebang}`, { first, executable: x });
  }

  // ---- headless Chromium, a phone-sized window ----
  const context = await h.launchChromium(tmp, { contextOptions: { viewport: { width: 390, height: 900 } } });
  const page = await h.openPage(context);
  const { pageErrors, consoleLines, requests } = page;

  const query = '?user=alice&upload=u7&upload=u9&upload=u8';
  const resp = await page.goto(`${d.base}/${query}`, { timeout: 15000 });
  is(resp && resp.status(), 200, `Chromium loads ${d.base}/${query}`);

  const dom = () => page.evaluate(() => ({
    state: document.querySelector('#state').dataset.state,
    stateText: document.querySelector('#state').textContent,
    readyState: document.querySelector('#ready-state').dataset.readyState,
    reconnects: document.querySelector('#reconnects').textContent,
    lastEventId: document.querySelector('#last-event-id').textContent,
    events: Number(document.querySelector('#event-count').textContent),
    uploads: [...document.querySelectorAll('#uploads [data-upload]')].map((li) => ({
      id: li.dataset.upload, pct: li.dataset.pct, state: li.dataset.state,
      value: li.querySelector('progress').value, shown: li.querySelector('.pct').textContent,
    })),
    notifications: [...document.querySelectorAll('#notifications li')].map((li) => ({
      channel: li.dataset.channel, kind: li.className, text: li.querySelector('.text').textContent,
    })),
    streamUrl: document.querySelector('#stream-url').textContent,
    notice: {
      hidden: document.querySelector('#notice').hidden,
      kind: document.querySelector('#notice').dataset.kind || '',
      text: document.querySelector('#notice').textContent,
    },
    uploadNotes: [...document.querySelectorAll('#uploads [data-upload] .note')].map((n) => n.textContent),
    banner: {
      hidden: document.querySelector('#banner').hidden,
      visible: document.querySelector('#banner').getBoundingClientRect().height > 0,
      role: document.querySelector('#banner').getAttribute('role'),
      text: document.querySelector('#banner-text').textContent,
      channel: document.querySelector('#banner-channel').textContent,
      // above everything else: the first element of the page, on top
      first: document.querySelector('main').firstElementChild === document.querySelector('#banner'),
      above: document.querySelector('#banner').getBoundingClientRect().bottom
        <= document.querySelector('header').getBoundingClientRect().top,
    },
  }));
  const waitDom = (fn, what, ms = 10000) => h.waitFor(async () => fn(await dom()), what, ms, 50)
    .catch(async (e) => { diag(`${e.message}\nDOM: ${JSON.stringify(await dom())}`); return null; });

  await waitDom((s) => s.state === 'open', '#state open');
  let s = await dom();
  is([s.state, s.stateText, s.readyState, s.reconnects], ['open', 'open', '1', '0'],
    'the page shows the connection open (readyState 1, 0 reconnects)');
  is(s.streamUrl, '/events?user=alice&upload=u7&upload=u9&upload=u8&last=1',
    'one EventSource for the user and all uploads, same origin, asking for the newest message of each (last=1)');
  is(s.uploads.map((u) => [u.id, u.pct, u.state]), [['u7', '0', 'waiting'], ['u9', '0', 'waiting'], ['u8', '0', 'waiting']],
    'one progress bar per upload, at 0 %, in query order');
  for (const id of Object.keys(UPLOADS)) {
    is(await page.getByRole('progressbar', { name: `Upload ${id}` }).count(), 1, `the bar of ${id} is labelled "Upload ${id}" for assistive technology`);
  }
  is(s.notifications, [], 'no notifications yet');
  ok(s.banner.hidden && !s.banner.visible, 'no banner before a broadcast', s.banner);
  const es = requests.filter((u) => u.includes('/events?'));
  is(es.length, 1, 'the page opened exactly one /events stream');
  ok(requests.every((u) => u.startsWith(`${d.base}/`)), 'every request of the page goes to the daemon', requests);
  ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth),
    'nothing overflows sideways in a 390 px wide window');
  await h.waitStreams(port, 1);

  // Record every value each bar takes, in order: one mutation record per
  // change, even when several events are handled in one task; each record
  // holds the value before it, the element the last one.
  await page.evaluate(() => {
    window.__pctOld = {};
    for (const li of document.querySelectorAll('#uploads [data-upload]')) {
      const olds = window.__pctOld[li.dataset.upload] = [];
      new MutationObserver((records) => { for (const r of records) olds.push(r.oldValue); })
        .observe(li, { attributes: true, attributeFilter: ['data-pct'], attributeOldValue: true });
    }
  });

  // ---- the three publishers at once ----
  const env = { REDIS_URL: redis.url, DELAY_MS: '40' };
  const results = await Promise.all(Object.entries(UPLOADS).map(([id, file]) => runPublisher(file, id, env)));
  Object.entries(UPLOADS).forEach(([id, file], i) => {
    const r = results[i];
    ok(r.code === 0, `examples/${file} ${id} alice exits 0`, h.tail(r.output, 20));
    const lines = r.output.split('\n').filter((l) => l.startsWith('PUBLISH '));
    const want = [];
    for (let p = 0; p <= 100; p += 10) want.push(`PUBLISH upload:${id} {"pct":${p}}`);
    want.push(`PUBLISH user:alice {"type":"notification","text":"Upload ${id} finished"}`);
    is(lines.map((l) => l.replace(/ -> .*/, '')), want, `examples/${file}: prints each PUBLISH: 11 progress steps, then the notification`);
    ok(lines.length > 0 && lines.every((l) => / -> [1-9][0-9]* subscriber\(s\)$/.test(l)),
      `examples/${file}: every message reached the daemon (subscriber count >= 1)`, lines);
  });

  await waitDom((x) => x.uploads.every((u) => u.pct === '100') && x.notifications.length >= 3,
    'all bars at 100 % and 3 notifications');
  s = await dom();
  for (const u of s.uploads) {
    is([u.pct, u.value, u.shown, u.state], ['100', 100, '100 %', 'done'], `bar ${u.id} (${UPLOADS[u.id]}) reaches 100 % and shows complete`);
  }
  const pcts = await page.evaluate(() => {
    const out = {};
    for (const li of document.querySelectorAll('#uploads [data-upload]')) {
      const seq = [...window.__pctOld[li.dataset.upload], li.dataset.pct];
      out[li.dataset.upload] = seq.filter((v, i) => i === 0 || v !== seq[i - 1]);
    }
    return out;
  });
  for (const id of Object.keys(UPLOADS)) {
    is(pcts[id], ['0', '10', '20', '30', '40', '50', '60', '70', '80', '90', '100'], `bar ${id} went through every step`);
  }
  is(s.notifications.map((n) => n.text).sort(), ['Upload u7 finished', 'Upload u8 finished', 'Upload u9 finished'],
    'the three notifications appear with their texts');
  ok(s.notifications.every((n) => n.channel === 'user:alice' && n.kind === 'notification'),
    'notifications are marked with their channel user:alice', s.notifications);
  is(s.events, 36, 'the page counted 36 events (3 x 12)');
  ok(h.parseId(s.lastEventId) !== null, `the last event id is shown (${s.lastEventId})`);
  const lastIdBefore = s.lastEventId;
  is([s.state, s.readyState, s.reconnects], ['open', '1', '0'], 'still open, no reconnects');

  const shot = path.join(tmp, 'demo.png');
  await page.screenshot({ path: shot, fullPage: true });
  diag(`screenshot: ${shot} (kept with SSERELAY_KEEP_TMP=1)`);

  // ---- SIGTERM drain: the page shows it is coming back ----
  await h.stopDaemonChecked(d, 'first run');
  await waitDom((x) => x.state === 'reconnecting', '#state reconnecting', 5000);
  s = await dom();
  is([s.state, s.readyState], ['reconnecting', '0'], 'after the drain the page shows reconnecting (readyState 0)');

  d = await h.startDaemon({ redisUrl: redis.url, port, args: common });
  ok(true, `sserelay restarted on the same port ${port}`);
  await waitDom((x) => x.state === 'open', '#state open again', 20000);
  s = await dom();
  is([s.state, s.readyState, s.reconnects], ['open', '1', '1'], 'open again by itself, reconnects 1');

  // The new run cannot replay what the old one sent (the history lived in
  // its memory): the resume gets event: reset, unknown-epoch.
  await waitDom((x) => !x.notice.hidden && x.notice.kind === 'reset', 'the reset notice');
  s = await dom();
  ok(!s.notice.hidden && s.notice.kind === 'reset' && /reset/.test(s.notice.text) && /unknown-epoch/.test(s.notice.text)
    && /cannot be replayed/.test(s.notice.text),
  'after the restart the page says the server reset its state (unknown-epoch) and that events were missed', s.notice);
  is(s.uploads.map((u) => [u.id, u.state, u.pct, u.value, u.shown]),
    Object.keys(UPLOADS).map((id) => [id, 'stale', '0', 0, '? %']),
    'every bar is cleared and marked stale (a real app refetches here)');
  ok(s.uploadNotes.every((n) => /refetching/.test(n)), 'each bar says it is being refetched', s.uploadNotes);
  ok(h.parseId(s.lastEventId) !== null && h.parseId(s.lastEventId).epoch !== (h.parseId(lastIdBefore) || {}).epoch,
    `the last event id is the reset's, of the new run (${s.lastEventId})`);

  await h.waitStreams(port, 1);
  await redis.client.publish('upload:u7', '{"pct":30}');
  await waitDom((x) => x.uploads[0].state === 'running', 'u7 running again');
  s = await dom();
  is(s.uploads.map((u) => [u.id, u.state, u.pct]), [['u7', 'running', '30'], ['u9', 'stale', '0'], ['u8', 'stale', '0']],
    'the next progress event brings its bar back; the others stay stale');
  await redis.client.publish('user:alice', '{"message":"back after restart"}');
  await redis.client.publish('user:alice', 'plain text');
  await waitDom((x) => x.notifications.length >= 5, '2 more notifications');
  s = await dom();
  is(s.notifications.slice(0, 2).map((n) => n.text), ['plain text', 'back after restart'],
    'notifications after the restart arrive, newest first (data.message, and a non-JSON payload as text)');

  // ---- join mid-story: the page opens with last=1 ----
  // Upload u5 is at 60 % before the page opens: its bar shows 60 % at once,
  // from the stream's backlog, before any new message; then 70 % live.
  const before = (await h.healthz(port)).json.redis_messages;
  for (let pct = 0; pct <= 60; pct += 10) await redis.client.publish('upload:u5', JSON.stringify({ pct }));
  await h.waitFor(async () => (await h.healthz(port)).json.redis_messages >= before + 7,
    'the daemon received the 7 progress messages', 10000, 25);
  const mid = await context.newPage();
  const midDom = () => mid.evaluate(() => {
    const li = document.querySelector('#uploads [data-upload="u5"]');
    return {
      state: document.querySelector('#state').dataset.state,
      events: Number(document.querySelector('#event-count').textContent),
      bar: { pct: li.dataset.pct, state: li.dataset.state, value: li.querySelector('progress').value },
    };
  });
  await mid.goto(`${d.base}/?user=carol&upload=u5`, { timeout: 15000 });
  let m = await h.waitFor(async () => { const x = await midDom(); return x.bar.pct === '60' ? x : null; },
    'the u5 bar at 60 %', 10000).catch(async (e) => { diag(e.message); return midDom(); });
  is([m.state, m.bar.pct, m.bar.state, m.bar.value, m.events], ['open', '60', 'running', 60, 1],
    'a page opened at 60 % shows 60 % at once: one event, the newest of u5, before any new message');
  await h.waitStreams(port, 2);
  await redis.client.publish('upload:u5', '{"pct":70}');
  m = await h.waitFor(async () => { const x = await midDom(); return x.bar.pct === '70' ? x : null; },
    'the u5 bar at 70 %', 10000).catch(async (e) => { diag(e.message); return midDom(); });
  is([m.bar.pct, m.events], ['70', 2], 'then 70 % arrives live, nothing twice');
  await mid.close();

  // ---- a broadcast channel: the banner at the top ----
  const nBefore = s.notifications.length;
  const pub = await publishers.run('publish.sh', ['-b', 'Maintenance tonight at 6 "UTC"', 'u9', 'alice'],
    { ...process.env, ...env });
  ok(pub.code === 0 && /PUBLISH notifications:broadcast \{"type":"broadcast","text":"Maintenance tonight at 6 \\"UTC\\""\} -> 1 subscriber/.test(pub.output),
    'examples/publish.sh -b TEXT u9 alice: exits 0, the banner published on notifications:broadcast reached the daemon', h.tail(pub.output, 20));
  await waitDom((x) => !x.banner.hidden, 'the banner');
  s = await dom();
  ok(!s.banner.hidden && s.banner.visible && s.banner.role === 'alert', 'a message on the broadcast channel shows the banner (role alert)', s.banner);
  is([s.banner.text, s.banner.channel], ['Maintenance tonight at 6 "UTC"', 'notifications:broadcast'],
    'the banner shows the text and the channel it came on');
  ok(s.banner.first && s.banner.above, 'the banner is at the top, above the connection panel', s.banner);
  is(s.notifications.length, nBefore + 1, 'the broadcast is not logged: only the upload\'s notification was added');
  is(s.uploads[1].pct, '100', 'and the upload publish.sh simulated (u9) went to 100 %');
  await redis.client.publish('notifications:broadcast', 'Back to normal');
  await waitDom((x) => x.banner.text === 'Back to normal', 'the second banner');
  s = await dom();
  ok(!s.banner.hidden && s.banner.text === 'Back to normal', 'the next broadcast replaces it (a plain-text payload as it is)', s.banner);
  await page.click('#banner-close');
  await waitDom((x) => x.banner.hidden, 'the banner dismissed');
  s = await dom();
  ok(s.banner.hidden && !s.banner.visible, 'the close button dismisses the banner', s.banner);
  is([s.state, s.reconnects], ['open', '1'], 'the stream stayed open through all that');

  // ---- a request the daemon refuses: the browser gives up, the page says so ----
  const bad = await context.newPage();
  await bad.goto(`${d.base}/?user=${encodeURIComponent('a b')}&upload=u7`, { timeout: 15000 });
  const closed = await bad.waitForFunction(() => document.querySelector('#state').dataset.state === 'closed', null, { timeout: 10000 })
    .then(() => true, (e) => { diag(e.message); return false; });
  ok(closed && await bad.evaluate(() => !document.querySelector('#reconnect').hidden),
    'an invalid id (400) shows closed and offers a Reconnect button');
  await bad.close();

  // ---- the server is busy: event: overload, and the browser retries ----
  const busy = await h.startDaemon({ redisUrl: redis.url, args: ['--demo', '--retry', '500', '--heartbeat', '0.5', '--max-streams', '1'] });
  const holder = await new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: busy.port, path: '/events?user=holder', agent: false },
      (res) => { res.resume(); resolve(req); });
    req.on('error', reject);
  });
  h.onCleanup(() => holder.destroy());
  await h.waitStreams(busy.port, 1);
  const page2 = await h.openPage(context, { first: false });
  await page2.goto(`${busy.base}/?user=alice&upload=u7`, { timeout: 15000 });
  const dom2 = () => page2.evaluate(() => ({
    state: document.querySelector('#state').dataset.state,
    hidden: document.querySelector('#notice').hidden,
    kind: document.querySelector('#notice').dataset.kind || '',
    text: document.querySelector('#notice').textContent,
  }));
  let b = await h.waitFor(async () => { const x = await dom2(); return !x.hidden && x.kind === 'overload' ? x : null; },
    'the overload notice', 10000).catch(async (e) => { diag(e.message); return dom2(); });
  ok(!b.hidden && b.kind === 'overload' && /busy/.test(b.text) && /global/.test(b.text) && /try again by itself/.test(b.text),
    'over --max-streams 1 the page says the server is busy (limit global) and that the browser will try again', b);
  b = await h.waitFor(async () => { const x = await dom2(); return x.state === 'reconnecting' ? x : null; },
    'reconnecting', 10000).catch(async (e) => { diag(e.message); return dom2(); });
  is(b.state, 'reconnecting', 'the connection shows reconnecting, not closed: the browser retries by itself');
  holder.destroy();
  b = await h.waitFor(async () => { const x = await dom2(); return x.state === 'open' && x.hidden ? x : null; },
    'open once the stream is free', 20000).catch(async (e) => { diag(e.message); return dom2(); });
  ok(b.state === 'open' && b.hidden, 'once the other stream has gone the browser gets in by itself and the notice goes', b);
  await h.waitStreams(busy.port, 1);
  await redis.client.publish('upload:u7', '{"pct":70}');
  const pct = await page2.waitForFunction(() => document.querySelector('#uploads [data-upload="u7"]').dataset.pct === '70',
    null, { timeout: 10000 }).then(() => true, (e) => { diag(e.message); return false; });
  ok(pct, 'and its events arrive (u7 at 70 %)');
  is(page2.pageErrors, [], 'no JavaScript errors on the busy page');
  await page2.close();

  // ---- presence: who is watching this upload ----
  const pres = await h.startDaemon({ redisUrl: redis.url,
    args: ['--demo', '--heartbeat', '0.5', '--presence', '--presence-events', '--presence-grace', '1'] });
  const pa = await h.openPage(context, { first: false });
  await pa.goto(`${pres.base}/?user=alice&upload=u3`, { timeout: 15000 });
  const watchersOn = (p) => p.evaluate(() => {
    const li = document.querySelector('#watching [data-upload="u3"]');
    return li ? li.dataset.who : '';
  });
  const watchers = () => watchersOn(pa);
  await h.waitFor(async () => (await watchers()) === 'alice', 'alice watching u3 on her own page', 10000)
    .catch((e) => diag(e.message));
  const pb = await h.openPage(context, { first: false });
  await pb.goto(`${pres.base}/?user=bob&upload=u3`, { timeout: 15000 });
  const both = await h.waitFor(async () => { const w = await watchers(); return w === 'alice,bob' ? w : null; },
    'bob joins u3', 10000).catch(async (e) => { diag(e.message); return watchers(); });
  is(both, 'alice,bob', 'the page shows who is watching u3: alice and bob');
  const onB = () => watchersOn(pb);
  const bobSees = await h.waitFor(async () => { const w = await onB(); return w === 'alice,bob' ? w : null; },
    'bob\'s page lists alice', 10000).catch(async (e) => { diag(e.message); return onB(); });
  is(bobSees, 'alice,bob', 'bob\'s page, opened after alice\'s, lists her too (event: presence)');
  await pb.close();
  const one = await h.waitFor(async () => { const w = await watchers(); return w === 'alice' ? w : null; },
    'bob leaves u3', 10000).catch(async (e) => { diag(e.message); return watchers(); });
  is(one, 'alice', 'bob closed his page: after the grace only alice is watching');
  is(pa.pageErrors, [], 'no JavaScript errors on the presence page');
  await pa.close();
  await h.stopDaemonChecked(pres, 'presence daemon');

  is(pageErrors, [], 'no JavaScript errors on the page');
  if (pageErrors.length || consoleLines.length) diag(`page console:\n${consoleLines.join('\n')}`);
  await context.close();
  await h.stopDaemonChecked(d, 'second run');
  await h.stopDaemonChecked(busy, 'busy daemon');
}, { timeoutMs: 90000 });

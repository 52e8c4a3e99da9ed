#!/usr/bin/env node
'use strict';
// The example publishers on their own (examples/publish.sh with redis-cli,
// publish.py with Debian's /usr/bin/python3 and redis-py, publish.js with npm
// redis): a Redis subscriber must see exactly the simulated upload (11
// progress messages, then the notification), the URL must come from -u or
// REDIS_URL (the option wins), a password in the URL must work and never be
// printed, DELAY_MS must be honoured, -r ROOM and -b TEXT (with -R and -B
// for other channels) must add the chat message and the banner, byte for
// byte the same from all three, and every failure (Redis unreachable, wrong
// password, invalid id) must end with a non-zero exit status.  With -D each
// publishes durably, FCALL sserelay_publish (the Function a daemon with
// --history redis loads): the same messages, each with its position, kept
// in the channel's Redis stream.
// tests/demo.t runs the same publishers against the daemon and a browser.
//
// Needs redis-cli, /usr/bin/python3 with redis-py (python3-redis) and
// SSERELAY_JS_MODULES with npm redis; skips without them unless
// SSERELAY_REQUIRE_ALL=1.

const fs = require('fs');
const net = require('net');
const path = require('path');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

const FILES = ['publish.sh', 'publish.py', 'publish.js'];

h.checkPrerequisites();
const publishers = h.examplePublishers(FILES);

// Runs one publisher with args and env (REDIS_URL and DELAY_MS only from
// env); resolves with { code, output, ms }.
async function run(file, args, env = {}) {
  const base = { ...process.env };
  delete base.REDIS_URL;
  delete base.DELAY_MS;
  const t0 = Date.now();
  const r = await publishers.run(file, args, { ...base, DELAY_MS: '0', ...env });
  return { ...r, ms: Date.now() - t0 };
}

// A raw RESP subscriber: collects [channel, payload] of every message.
async function subscriber(port, channels) {
  const sock = net.createConnection({ host: '127.0.0.1', port });
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const got = [];
  let confirmed = 0;
  let buf = Buffer.alloc(0);
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      const r = h.Resp.parse(buf, 0);
      if (!r) break;
      buf = buf.subarray(r[1]);
      const [kind, ch, payload] = r[0].map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : x));
      if (kind === 'subscribe') confirmed++;
      else if (kind === 'message') got.push([ch, payload]);
    }
  });
  const args = ['SUBSCRIBE', ...channels];
  sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`);
  await h.waitFor(() => confirmed === channels.length, 'SUBSCRIBE confirmations', 5000);
  h.onCleanup(() => sock.destroy());
  return { got, close: () => sock.destroy() };
}

function expected(upload, user) {
  const want = [];
  for (let p = 0; p <= 100; p += 10) want.push([`upload:${upload}`, `{"pct":${p}}`]);
  want.push([`user:${user}`, `{"type":"notification","text":"Upload ${upload} finished"}`]);
  return want;
}

h.run(async () => {
  const tmp = h.makeTmpDir('publishers');
  const redis = await h.startRedis();
  const sub = await subscriber(redis.port, ['upload:p1', 'upload:p2', 'upload:p3', 'user:bob', 'user:alice', 'upload:u7',
    'chat:room:r1', 'notifications:broadcast', 'rooms.r2', 'site:all']);

  // A second Redis that wants a password.
  const authPort = await h.freePort();
  fs.mkdirSync(path.join(tmp, 'redis-auth'));
  const authRedis = h.spawnLogged(process.env.REDIS_SERVER || h.inPath('redis-server'),
    ['--port', String(authPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', path.join(tmp, 'redis-auth'), '--requirepass', 's3cr3t-pw'], 'redis-auth.log');
  h.onCleanup(() => h.stopChild(authRedis, { ms: 3000 }));
  await h.waitFor(() => /Ready to accept connections/.test(authRedis.output), 'password redis-server ready', 10000);

  const deadPort = await h.freePort(); // nothing listens there

  const uploads = { 'publish.sh': 'p1', 'publish.py': 'p2', 'publish.js': 'p3' };
  for (const file of FILES) {
    const up = uploads[file];
    diag(`---- examples/${file}`);

    // The URL from -u, overriding a wrong REDIS_URL.
    sub.got.length = 0;
    let r = await run(file, ['-u', redis.url, up, 'bob'], { REDIS_URL: `redis://127.0.0.1:${deadPort}`, DELAY_MS: '30' });
    ok(r.code === 0, `${file} -u URL ${up} bob: exits 0 (-u wins over REDIS_URL)`, h.tail(r.output));
    await h.waitFor(() => sub.got.length >= 12, '12 messages', 5000).catch((e) => diag(e.message));
    is(sub.got, expected(up, 'bob'), `${file}: a subscriber sees 0..100 % on upload:${up}, then the notification on user:bob`);
    ok(r.ms >= 300, `${file}: DELAY_MS=30 paces the 10 steps (took ${r.ms} ms)`);
    ok(r.output.split('\n').filter((l) => / -> 1 subscriber\(s\)$/.test(l)).length === 12,
      `${file}: prints each PUBLISH with its subscriber count`, r.output);

    // Defaults: upload u7, user alice; the URL from REDIS_URL.
    sub.got.length = 0;
    r = await run(file, [], { REDIS_URL: redis.url });
    ok(r.code === 0, `${file} with no arguments, REDIS_URL set: exits 0`, h.tail(r.output));
    await h.waitFor(() => sub.got.length >= 12, '12 messages', 5000).catch((e) => diag(e.message));
    is(sub.got, expected('u7', 'alice'), `${file}: defaults are upload u7 and user alice`);

    // A chat room and a banner, on the default channels and on others.
    const banner = 'Maintenance at 6 "UTC" \\ été';
    const bannerJson = '{"type":"broadcast","text":"Maintenance at 6 \\"UTC\\" \\\\ été"}';
    sub.got.length = 0;
    r = await run(file, ['-u', redis.url, '-r', 'r1', '-b', banner, up, 'bob']);
    ok(r.code === 0, `${file} -r r1 -b TEXT: exits 0`, h.tail(r.output));
    await h.waitFor(() => sub.got.length >= 14, '14 messages', 5000).catch((e) => diag(e.message));
    is(sub.got, [...expected(up, 'bob'),
      ['chat:room:r1', `{"type":"chat","user":"bob","text":"Upload ${up} finished"}`],
      ['notifications:broadcast', bannerJson]],
    `${file} -r r1 -b TEXT: the upload, then a chat message on chat:room:r1 and the banner on notifications:broadcast (quotes and backslash escaped, UTF-8 kept)`);
    sub.got.length = 0;
    r = await run(file, ['-u', redis.url, '-r', 'r2', '-R', 'rooms.', '-b', 'hi', '-B', 'site:all', up, 'bob']);
    ok(r.code === 0, `${file} -R rooms. -B site:all: exits 0`, h.tail(r.output));
    await h.waitFor(() => sub.got.length >= 14, '14 messages', 5000).catch((e) => diag(e.message));
    is(sub.got.slice(12), [['rooms.r2', `{"type":"chat","user":"bob","text":"Upload ${up} finished"}`],
      ['site:all', '{"type":"broadcast","text":"hi"}']], `${file} -R rooms. -B site:all: those channels instead`);

    // A password in the URL works and is never printed.
    for (const url of [`redis://:s3cr3t-pw@127.0.0.1:${authPort}`, `redis://default:s3cr3t-pw@127.0.0.1:${authPort}/2`]) {
      r = await run(file, ['-u', url, up, 'bob']);
      ok(r.code === 0 && / -> 0 subscriber\(s\)$/m.test(r.output), `${file} -u ${url.replace('s3cr3t-pw', '***')}: AUTH works`, h.tail(r.output));
      ok(!r.output.includes('s3cr3t-pw'), `${file}: the password is not printed`, r.output);
    }
    r = await run(file, ['-u', `redis://default:wrong-pw@127.0.0.1:${authPort}`, up, 'bob']);
    ok(r.code !== 0 && r.code !== null, `${file}: wrong password: non-zero exit (${r.code})`, h.tail(r.output));
    ok(!r.output.includes('wrong-pw'), `${file}: wrong password: not printed either`, r.output);
    r = await run(file, ['-u', `redis://127.0.0.1:${authPort}`, up, 'bob']);
    ok(r.code !== 0 && r.code !== null && /NOAUTH|[Aa]uthentication/.test(r.output),
      `${file}: no password where one is required: non-zero exit and Redis's reason`, h.tail(r.output));

    // Failures.
    sub.got.length = 0;
    r = await run(file, [up, 'bob'], { REDIS_URL: `redis://127.0.0.1:${deadPort}` });
    ok(r.code !== 0 && r.code !== null, `${file}: Redis unreachable: non-zero exit (${r.code}, ${r.ms} ms)`, h.tail(r.output));
    ok(r.output.includes(`127.0.0.1:${deadPort}`), `${file}: Redis unreachable: the message names the server`, r.output);
    r = await run(file, ['-u', redis.url, 'bad id', 'bob']);
    ok(r.code !== 0 && r.code !== null, `${file}: invalid upload id: non-zero exit (${r.code})`, h.tail(r.output));
    r = await run(file, ['-u', redis.url, up, 'bob/x']);
    ok(r.code !== 0 && r.code !== null, `${file}: invalid user id: non-zero exit (${r.code})`, h.tail(r.output));
    r = await run(file, ['-u', redis.url, up, 'bob'], { DELAY_MS: 'soon' });
    ok(r.code !== 0 && r.code !== null, `${file}: DELAY_MS not a number: non-zero exit (${r.code})`, h.tail(r.output));
    r = await run(file, ['-u', redis.url, '-r', 'bad room', up, 'bob']);
    ok(r.code !== 0 && r.code !== null, `${file}: invalid room id: non-zero exit (${r.code})`, h.tail(r.output));
    // They have all exited: anything they published reached Redis before
    // this marker, and the subscriber gets messages in that order.
    await redis.client.publish('user:bob', 'marker');
    await h.waitFor(() => sub.got.length >= 1, 'the marker', 5000).catch((e) => diag(e.message));
    is(sub.got, [['user:bob', 'marker']], `${file}: nothing was published by the failing runs`);
  }

  // redis-cli style -h/-p for the shell version.
  sub.got.length = 0;
  const r = await run('publish.sh', ['-h', '127.0.0.1', '-p', String(redis.port), 'p1', 'bob']);
  ok(r.code === 0, 'publish.sh -h HOST -p PORT: exits 0', h.tail(r.output));
  await h.waitFor(() => sub.got.length >= 12, '12 messages', 5000).catch((e) => diag(e.message));
  is(sub.got, expected('p1', 'bob'), 'publish.sh -h/-p: the same messages');

  // -D: durably, through the daemon's Redis Function
  const d = await h.startDaemon({ redisUrl: redis.url, args: ['--history', 'redis'] });
  await h.waitFor(async () => {
    try { return (await redis.client.command('FCALL_RO', 'sserelay_version', '0')) !== null; } catch (e) { return false; }
  }, 'the daemon loaded its function library', 10000);
  const durableUploads = { 'publish.sh': 'd1', 'publish.py': 'd2', 'publish.js': 'd3' };
  const dsub = await subscriber(redis.port, ['upload:d1', 'upload:d2', 'upload:d3', 'user:alice']);
  for (const file of FILES) {
    const up = durableUploads[file];
    dsub.got.length = 0;
    const rd = await run(file, ['-D', '-u', redis.url, up, 'alice']);
    ok(rd.code === 0, `${file} -D: exits 0`, h.tail(rd.output));
    ok(rd.output.split('\n').filter((l) => /^FCALL sserelay_publish 1 \S+ .* -> position [0-9a-f]+:[0-9]+$/.test(l)).length === 12,
      `${file} -D: prints each FCALL with the message's position`, rd.output);
    await h.waitFor(() => dsub.got.length >= 12, '12 messages', 5000).catch((e) => diag(e.message));
    // on the channel: "\0sr1:<epoch>:<offset>:" then the message
    ok(dsub.got.every(([, p]) => /^\u0000sr1:[0-9a-f]+:[0-9]+:/.test(p)),
      `${file} -D: each message is published with its position`, dsub.got);
    const unwrapped = dsub.got.map(([ch, p]) => [ch, p.replace(/^\u0000sr1:[0-9a-f]+:[0-9]+:/, '')]);
    is(unwrapped, expected(up, 'alice'), `${file} -D: the same messages as without -D`);
    const kept = await redis.client.command('XLEN', `sserelay:{upload:${up}}:s`);
    is(kept, 11, `${file} -D: all 11 kept in the channel's Redis stream`);
  }
  await h.stopDaemonChecked(d, 'daemon (--history redis)');
  dsub.close();
  sub.close();
}, { timeoutMs: 120000 });

#!/usr/bin/env node
'use strict';
// publish.js: simulate an upload with the npm `redis` client (v4), the way an
// application would report progress to sserelay:
// PUBLISH upload:<id> {"pct":0} .. {"pct":100} in steps of 10, then
// PUBLISH user:<id> a notification that it finished.  With -r ROOM it then
// says so in a chat room too, PUBLISH chat:room:<ROOM>
// {"type":"chat","user":USER,"text":...} (the channel of ?room=ROOM with
// sserelay --channel room=chat:room:), and with -b TEXT it ends with a banner
// for every browser, PUBLISH notifications:broadcast
// {"type":"broadcast","text":TEXT} (sserelay --broadcast
// notifications:broadcast).  -R PREFIX and -B CHANNEL change those channels.
//
//     npm install redis@4
//     node examples/publish.js [-D] [-u URL] [-d DELAY_MS] [-r ROOM] [-R PREFIX]
//         [-b TEXT] [-B CHANNEL] [UPLOAD] [USER]
//
// -D publishes durably, for sserelay --history redis: FCALL sserelay_publish
// 1 <channel> <payload>, kept in Redis so a client resumes on any instance.
//
// UPLOAD defaults to u7, USER to alice. The Redis server is -u URL, else
// REDIS_URL, else redis://127.0.0.1:6379. DELAY_MS (-d or env, default 300)
// is the pause between two progress steps.
// Watch it with `sserelay --demo` and http://127.0.0.1:8080/?user=alice&upload=u7
// Exits non-zero on any error (Redis unreachable, error reply, bad argument).

const path = require('path');

const prog = path.basename(process.argv[1] || 'publish.js');
const ID_RE = /^[A-Za-z0-9._:@-]{1,128}$/; // the ids sserelay accepts

function usage(msg) {
  if (msg) console.error(`${prog}: ${msg}`);
  console.error(`usage: ${prog} [-D] [-u URL] [-d DELAY_MS] [-r ROOM] [-R PREFIX] [-b TEXT] [-B CHANNEL] [UPLOAD] [USER]`);
  process.exit(2);
}

function parseArgs(argv) {
  const o = {
    url: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    delay: process.env.DELAY_MS || '300',
    durable: false,
    room: null,
    roomPrefix: 'chat:room:',
    banner: null,
    bannerChannel: 'notifications:broadcast',
    pos: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '-u' || a === '--url') o.url = val();
    else if (a.startsWith('--url=')) o.url = a.slice(6);
    else if (a === '-d' || a === '--delay-ms') o.delay = val();
    else if (a.startsWith('--delay-ms=')) o.delay = a.slice(11);
    else if (a === '-D' || a === '--durable') o.durable = true;
    else if (a === '-r' || a === '--room') o.room = val();
    else if (a === '-R' || a === '--room-prefix') o.roomPrefix = val();
    else if (a === '-b' || a === '--broadcast') o.banner = val();
    else if (a === '-B' || a === '--broadcast-channel') o.bannerChannel = val();
    else if (a === '--help') usage();
    else if (a.startsWith('-') && a !== '-') usage(`unknown option ${a}`);
    else o.pos.push(a);
  }
  if (o.pos.length > 2) usage('too many arguments');
  [o.upload = 'u7', o.user = 'alice'] = o.pos;
  if (!ID_RE.test(o.upload)) usage(`invalid upload id '${o.upload}' (1..128 of A-Za-z0-9._:@-)`);
  if (!ID_RE.test(o.user)) usage(`invalid user id '${o.user}' (1..128 of A-Za-z0-9._:@-)`);
  if (o.room !== null && !ID_RE.test(o.room)) usage(`invalid room id '${o.room}' (1..128 of A-Za-z0-9._:@-)`);
  if (!o.bannerChannel) usage('the broadcast channel must not be empty');
  if (!/^[0-9]+$/.test(String(o.delay))) usage(`DELAY_MS must be a number of milliseconds, not '${o.delay}'`);
  o.delay = Number(o.delay);
  return o;
}

async function main() {
  const o = parseArgs(process.argv.slice(2));
  let createClient;
  try {
    ({ createClient } = require('redis'));
  } catch (e) {
    console.error(`${prog}: npm module redis not found (npm install redis@4, or set NODE_PATH): ${e.code || e.message}`);
    process.exit(1);
  }

  const where = o.url.replace(/^([a-z]+:\/\/[^:/@]*):[^@/]*@/, '$1:***@'); // never print the password
  console.log(`${prog}: upload ${o.upload} of user ${o.user} on ${where}, ${o.delay} ms per step`);
  // No endless reconnecting: a publisher that cannot reach Redis should fail.
  let client = null;
  let lastError = null;
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  try {
    client = createClient({ url: o.url, socket: { connectTimeout: 5000, reconnectStrategy: false } });
    client.on('error', (e) => { lastError = e; });
    await client.connect();
    const publish = async (channel, payload) => {
      const msg = JSON.stringify(payload);
      if (o.durable) {
        // --history redis: kept in Redis, numbered, resumable anywhere
        const pos = await client.fCall('sserelay_publish', { keys: [channel], arguments: [msg] });
        console.log(`FCALL sserelay_publish 1 ${channel} ${msg} -> position ${pos}`);
        return;
      }
      const n = await client.publish(channel, msg);
      console.log(`PUBLISH ${channel} ${msg} -> ${n} subscriber(s)`);
    };
    for (let pct = 0; pct <= 100; pct += 10) {
      await publish(`upload:${o.upload}`, { pct });
      if (pct < 100) await sleep(o.delay);
    }
    await publish(`user:${o.user}`, { type: 'notification', text: `Upload ${o.upload} finished` });
    if (o.room !== null) await publish(`${o.roomPrefix}${o.room}`, { type: 'chat', user: o.user, text: `Upload ${o.upload} finished` });
    if (o.banner !== null) await publish(o.bannerChannel, { type: 'broadcast', text: o.banner });
    await client.quit();
  } catch (e) {
    const why = (e && e.message) || (lastError && lastError.message) || String(e);
    console.error(`${prog}: ${where}: ${why}`);
    if (client && client.isOpen) await client.disconnect().catch(() => {});
    process.exit(1);
  }
}

main();

#!/usr/bin/env node
'use strict';
// TLS (issue 7): a test CA and a server certificate for 127.0.0.1 (IP SAN)
// and localhost are made here with openssl; the daemon serves HTTPS with
// --tls-cert/--tls-key (from a configuration file, so SIGHUP can change
// them).  curl --cacert receives a PUBLISH over https; curl without the
// CA fails verification; plain HTTP to the TLS port gets no HTTP answer;
// headless Chromium, told to trust the server key with
// --ignore-certificate-errors-spki-list=<sha256 of its SPKI> (not a blanket
// --ignore-certificate-errors), opens an EventSource on https and receives
// events.  Startup with a missing or bad certificate or key exits 1 naming
// the option; SIGHUP with a changed tls-cert logs that it needs a restart
// and the daemon keeps serving, with the old certificate, without dropping
// streams.

const fs = require('fs');
const net = require('net');
const path = require('path');
const https = require('https');
const crypto = require('crypto');
const { spawn, spawnSync } = require('child_process');
const h = require(path.join(__dirname, 'js', 'harness.js'));
const { ok, is, diag } = h;

h.checkPrerequisites();
for (const prog of ['openssl', 'curl']) {
  if (spawnSync('sh', ['-c', `command -v ${prog}`]).status !== 0) h.skipAll(`${prog} not found`);
}
h.requireChromium();

let tmp;
const f = (name) => path.join(tmp, name);

// The test CA and two server certificates (h.makeTestPki), and the SPKI
// hash of the first computed again by node, to check openssl's.
function makePki() {
  const { spki } = h.makeTestPki(tmp, { names: ['server', 'server2'] });
  const spkiNode = crypto.createHash('sha256')
    .update(crypto.createPublicKey(fs.readFileSync(f('server.key'))).export({ type: 'spki', format: 'der' }))
    .digest('base64');
  return { spki, spkiNode };
}

function httpsGet(port, pathName, { ca, host = '127.0.0.1', timeoutMs = 3000 } = {}) {
  return new Promise((resolve, reject) => {
    const req = https.get({ host, port, path: pathName, ca, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body, cert: res.socket.getPeerCertificate && res.socket.getPeerCertificate() }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${pathName} timed out`)));
    req.on('error', reject);
  });
}

async function httpsStreams(port, ca) {
  const r = await httpsGet(port, '/healthz', { ca });
  return JSON.parse(r.body).streams;
}

// The certificate the server presents now (sha256 fingerprint).
function servedFingerprint(port) {
  return new Promise((resolve, reject) => {
    const s = require('tls').connect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      s.destroy();
      resolve(c && c.fingerprint256);
    });
    s.setTimeout(3000, () => s.destroy(new Error('TLS connect timed out')));
    s.on('error', reject);
  });
}

// curl -N as a child: stdout collected.
function curlStream(url, extra) {
  const c = spawn('curl', ['-sS', '-N', ...extra, url], { stdio: ['ignore', 'pipe', 'pipe'] });
  c.out = '';
  c.err = '';
  c.stdout.on('data', (d) => { c.out += d.toString('utf8'); });
  c.stderr.on('data', (d) => { c.err += d.toString('utf8'); });
  c.done = new Promise((resolve) => c.on('exit', (code) => resolve(code)));
  h.onCleanup(() => { try { c.kill('SIGKILL'); } catch (_) { /* gone */ } });
  return c;
}

function curl(args) {
  return spawnSync('curl', ['-sS', '--max-time', '5', ...args], { encoding: 'utf8', timeout: 10000 });
}

// Starts the daemon by hand and expects it to fail at startup.
function startupFails(redisUrl, args) {
  const r = spawnSync(process.env.SSERELAY, ['-c', '/dev/null', '--listen', '127.0.0.1:1', '--redis', redisUrl, ...args],
    { encoding: 'utf8', timeout: 15000 });
  return { code: r.status, signal: r.signal, out: `${r.stdout || ''}${r.stderr || ''}` };
}

h.run(async () => {
  tmp = h.makeTmpDir('tls');
  let pki;
  try {
    pki = makePki();
  } catch (e) {
    ok(false, 'openssl made a test CA and server certificates', `${e.message}\n${e.stderr || ''}`);
    return;
  }
  ok(true, 'openssl made a test CA and two server certificates for 127.0.0.1 and localhost');
  is(pki.spki, pki.spkiNode, `SPKI hash of the server key (openssl and node agree: ${pki.spki})`);
  const ca = fs.readFileSync(f('ca.pem'));
  const fp1 = new crypto.X509Certificate(fs.readFileSync(f('server.pem'))).fingerprint256;

  const redis = await h.startRedis();

  // ---- startup errors
  const bad = f('garbage.pem');
  fs.writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n');
  const cases = [
    ['a missing certificate file', ['--tls-cert', f('nonexistent.pem'), '--tls-key', f('server.key')], 'tls-cert'],
    ['a certificate file that is no certificate', ['--tls-cert', bad, '--tls-key', f('server.key')], 'tls-cert'],
    ['an empty certificate file', ['--tls-cert', '/dev/null', '--tls-key', f('server.key')], 'tls-cert'],
    ['a missing key file', ['--tls-cert', f('server.pem'), '--tls-key', f('nonexistent.key')], 'tls-key'],
    ['a key file that is no key', ['--tls-cert', f('server.pem'), '--tls-key', bad], 'tls-key'],
    ['--tls-cert without --tls-key', ['--tls-cert', f('server.pem')], 'tls-key'],
    ['--tls-key without --tls-cert', ['--tls-key', f('server.key')], 'tls-cert'],
  ];
  for (const [name, args, opt] of cases) {
    const r = startupFails(redis.url, args);
    ok(r.code === 1 && r.out.includes(opt), `startup with ${name}: exit 1, the message names ${opt}`,
      `exit ${r.code} signal ${r.signal}\n${h.tail(r.out, 10)}`);
  }
  const mm = startupFails(redis.url, ['--tls-cert', f('server.pem'), '--tls-key', f('server2.key')]);
  ok(mm.code === 1 && /tls/i.test(mm.out), 'startup with a key that does not match the certificate: exit 1, names the TLS options',
    `exit ${mm.code}\n${h.tail(mm.out, 10)}`);

  // ---- the daemon on HTTPS, its certificate from a configuration file
  const conf = f('tls.conf');
  fs.writeFileSync(conf, `tls-cert ${f('server.pem')}\ntls-key ${f('server.key')}\n`);
  const d = await h.startDaemon({
    redisUrl: redis.url,
    args: ['-c', conf, '--heartbeat', '0.2', '--retry', '500'],
    scheme: 'https',
    ready: async (port) => {
      const r = await httpsGet(port, '/healthz', { ca });
      return r.status === 200 && JSON.parse(r.body).redis === 'up';
    },
  });
  const port = d.port;
  ok(true, `sserelay serves HTTPS on ${port}; node verified the chain to the test CA`);
  is(await servedFingerprint(port), fp1, 'the served certificate is server.pem');

  // curl with the CA: a stream receives a PUBLISH
  const c1 = curlStream(`https://127.0.0.1:${port}/events?user=a`, ['--cacert', f('ca.pem')]);
  await h.waitFor(() => /: sserelay/.test(c1.out) || c1.exitCode !== null, 'curl stream opening', 10000).catch((e) => diag(e.message));
  ok(/^retry: 500\n/.test(c1.out), 'curl --cacert ca.pem -N https://127.0.0.1:PORT/events?user=a: the stream opens', c1.out + c1.err);
  await h.waitFor(async () => (await httpsStreams(port, ca)) >= 1, 'stream counted', 5000).catch((e) => diag(e.message));
  await redis.client.publish('user:a', '"over tls"');
  await h.waitFor(() => c1.out.includes('over tls'), 'event over TLS', 5000).catch((e) => diag(e.message));
  ok(c1.out.includes('data: {"channel":"user:a","data":"over tls"}'), 'curl received the PUBLISH over HTTPS', c1.out + c1.err);

  let r = curl(['--cacert', f('ca.pem'), '--resolve', `localhost:${port}:127.0.0.1`, `https://localhost:${port}/healthz`]);
  ok(r.status === 0 && /"redis"/.test(r.stdout), 'curl https://localhost:PORT (DNS SAN) verifies too', r.stderr);
  r = curl([`https://127.0.0.1:${port}/healthz`]);
  ok(r.status === 60, `curl without the test CA fails verification (exit ${r.status}, 60 expected)`, r.stderr);
  r = curl([`http://127.0.0.1:${port}/healthz`]);
  ok(r.status !== 0 && !/"redis"/.test(r.stdout), `curl with plain http:// to the TLS port fails (exit ${r.status})`, r.stdout + r.stderr);
  const plain = await new Promise((resolve) => {
    const s = net.createConnection({ host: '127.0.0.1', port }, () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
    let buf = Buffer.alloc(0);
    s.on('data', (b) => { buf = Buffer.concat([buf, b]); });
    s.on('error', () => {});
    s.on('close', () => resolve(buf));
    setTimeout(() => { s.destroy(); }, 2000);
  });
  ok(!plain.toString('latin1').startsWith('HTTP/'), 'plain HTTP on the TLS port gets no HTTP response',
    JSON.stringify(plain.toString('latin1').slice(0, 200)));
  ok(d.child.exitCode === null, 'the daemon is still running after the plain-HTTP attempt');

  // ---- Chromium, trusting just this key
  const context = await h.launchChromium(tmp, { extraArgs: [`--ignore-certificate-errors-spki-list=${pki.spki}`] });
  const page = await h.openPage(context);
  let resp = null;
  try {
    resp = await page.goto(`${d.base}/healthz`, { timeout: 15000 });
  } catch (e) {
    diag(e.message);
  }
  is(resp && resp.status(), 200, `Chromium loads ${d.base}/healthz`);
  if (resp) {
    await page.evaluate(() => {
      window.__got = [];
      window.__errors = 0;
      const es = new EventSource('/events?user=tlsuser');
      window.__es = es;
      es.onerror = () => { window.__errors++; };
      es.onmessage = (ev) => { window.__got.push(ev.data); };
    });
    await page.waitForFunction(() => window.__es.readyState === 1, null, { timeout: 10000 }).catch((e) => diag(e.message));
    is(await page.evaluate(() => window.__es.readyState), 1, 'EventSource on https is OPEN');
    await h.waitFor(async () => (await httpsStreams(port, ca)) >= 2, 'browser stream counted', 5000).catch((e) => diag(e.message));
    await redis.client.publish('user:tlsuser', '"one"');
    await redis.client.publish('user:tlsuser', '"two"');
    await page.waitForFunction(() => window.__got.length >= 2, null, { timeout: 10000 }).catch((e) => diag(e.message));
    is(await page.evaluate(() => window.__got.map((x) => JSON.parse(x).data)), ['one', 'two'], 'the page received both events over TLS');
  }

  // control: without the flag the same Chromium refuses the certificate
  const plainDir = path.join(tmp, 'control');
  fs.mkdirSync(plainDir);
  const ctx2 = await h.launchChromium(plainDir);
  const p2 = ctx2.pages()[0] || await ctx2.newPage();
  let ctlErr = '';
  try {
    await p2.goto(`${d.base}/healthz`, { timeout: 15000 });
  } catch (e) {
    ctlErr = e.message;
  }
  ok(/ERR_CERT_AUTHORITY_INVALID|ERR_CERT/.test(ctlErr), 'control: Chromium without the SPKI flag refuses the test certificate',
    ctlErr || 'the page loaded');
  await ctx2.close();

  // ---- SIGHUP with another certificate: needs a restart, nothing drops
  const logLen = d.child.output.length;
  fs.writeFileSync(conf, `tls-cert ${f('server2.pem')}\ntls-key ${f('server2.key')}\n`);
  process.kill(d.child.pid, 'SIGHUP');
  await h.waitFor(() => /reload: 'tls-cert' changed.*restart/.test(d.child.output.slice(logLen)), 'reload log line', 5000)
    .catch((e) => diag(e.message));
  const after = d.child.output.slice(logLen);
  ok(/warn.*reload: 'tls-cert' changed.*restart/.test(after), 'SIGHUP with a new tls-cert: logged (warn) as taking effect only after a restart', after);
  ok(/reload: 'tls-key' changed.*restart/.test(after), 'and the same for tls-key', after);
  is(await servedFingerprint(port), fp1, 'it still presents the old certificate');
  ok(d.child.exitCode === null, 'the daemon keeps running');
  r = curl(['--cacert', f('ca.pem'), `https://127.0.0.1:${port}/healthz`]);
  ok(r.status === 0 && /"redis":"up"/.test(r.stdout), 'new HTTPS requests are served after the SIGHUP', r.stderr);
  await redis.client.publish('user:a', '"after sighup"');
  await redis.client.publish('user:tlsuser', '"three"');
  await h.waitFor(() => c1.out.includes('after sighup'), 'curl event after SIGHUP', 5000).catch((e) => diag(e.message));
  ok(c1.out.includes('after sighup') && c1.exitCode === null, 'the curl stream opened before the SIGHUP still receives events');
  if (resp) {
    await page.waitForFunction(() => window.__got.length >= 3, null, { timeout: 5000 }).catch((e) => diag(e.message));
    is(await page.evaluate(() => [window.__got.length, window.__errors, window.__es.readyState]), [3, 0, 1],
      'the browser stream too, without an error or reconnection');
    await page.evaluate(() => window.__es.close());
  }
  c1.kill('SIGTERM');
  await h.stopDaemonChecked(d, 'TLS daemon', 5000);
}, { timeoutMs: 120000 });

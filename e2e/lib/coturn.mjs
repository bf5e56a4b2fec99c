// A real TURN server (Debian's coturn, `turnserver`) on loopback, for tests that need relayed
// WebRTC: browsers that may only talk through a relay, or a relay that dies and comes back.
//
//   const turn = await startCoturn(t, { secret: 's3cret', realm: 'drawmesh.test' });
//   turn.url                                   // 'turn:127.0.0.1:PORT'
//   turn.iceServer('alice', 600)               // { urls, username, credential } for RTCPeerConnection
//   await turn.restart();                      // same port, same secret (stop, then start again)
//
// It runs from a config file passed with `-c` (never `-n`, which makes coturn ignore the file:
// REST-secret auth then fails, see shared/notes/toolchain.md), with TLS, DTLS and the CLI off and
// loopback peers allowed (else every loopback peer gets 403 Forbidden IP). Its log goes to
// e2e/artifacts/<name>-coturn.log. It is stopped when the test ends (t.after) and when this
// process exits. startCoturn returns only once the server answers a STUN request on its port.

import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifactPath } from './server.mjs';

export const TURNSERVER = process.env.DRAWMESH_TURNSERVER || '/usr/bin/turnserver';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** How often the readiness probe resends its STUN request (UDP may drop it, the server may be starting). */
const PROBE_INTERVAL_MS = 100;
/**
 * Relay ports come from 61000-65535, above Linux's ephemeral range (32768-60999), so no outgoing
 * connection of another process holds them; each server takes a random block of this many.
 */
const RELAY_BLOCK = 100;
const RELAY_FIRST = 61_000;
const RELAY_BLOCKS = Math.floor((65_535 - RELAY_FIRST) / RELAY_BLOCK);

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * TURN REST credentials (coturn's `use-auth-secret`): username `<unix expiry>:<peerId>`, password
 * base64(HMAC-SHA1(secret, username)). coturn refuses them once the expiry has passed.
 *
 * @param {string} secret  the server's static-auth-secret
 * @param {string} peerId  any name; coturn only logs it
 * @param {number} ttlSecs seconds from now until they expire (negative: already expired)
 * @returns {{username: string, credential: string}}
 */
export function turnCredentials(secret, peerId, ttlSecs) {
  const username = `${Math.floor(Date.now() / 1000) + ttlSecs}:${peerId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/**
 * Starts coturn on a free loopback port and waits until it answers STUN there.
 *
 * @param {import('node:test').TestContext | null} t  stops it (and removes its files) when the test ends
 * @param {{secret?: string, realm?: string, name?: string}} [options]  name: artifact log prefix
 * @returns {Promise<{port: number, url: string, secret: string, realm: string, logFile: string,
 *   relayPorts: {min: number, max: number},
 *   iceServer: (peerId: string, ttlSecs?: number) => {urls: string, username: string, credential: string},
 *   stop: () => Promise<void>, restart: () => Promise<void>}>}
 */
export async function startCoturn(t, options = {}) {
  const secret = options.secret ?? randomBytes(16).toString('hex');
  const realm = options.realm ?? 'drawmesh.test';
  const name = options.name ?? 'turn';
  const dir = mkdtempSync(join(tmpdir(), 'drawmesh-coturn-'));
  const logFile = artifactPath(`${name}-coturn.log`);
  // A fresh log per test run; restarts append to it (simple-log: no rollover, no date in the name).
  writeFileSync(logFile, '');
  const port = await freePort();
  const minPort = RELAY_FIRST + RELAY_BLOCK * Math.floor(Math.random() * RELAY_BLOCKS);
  const config = join(dir, 'turnserver.conf');
  writeFileSync(
    config,
    [
      'listening-ip=127.0.0.1',
      'relay-ip=127.0.0.1',
      `listening-port=${port}`,
      `min-port=${minPort}`,
      `max-port=${minPort + RELAY_BLOCK - 1}`,
      'use-auth-secret',
      `static-auth-secret=${secret}`,
      `realm=${realm}`,
      'no-tls',
      'no-dtls',
      'no-cli',
      // Tests' peers are all on 127.0.0.1, which coturn refuses as a peer address by default.
      'allow-loopback-peers',
      `userdb=${join(dir, 'turndb')}`,
      `pidfile=${join(dir, 'turn.pid')}`,
      `log-file=${logFile}`,
      'simple-log',
      'no-stdout-log',
      '',
    ].join('\n'),
  );

  /** The running process, and what it printed (coturn's own log goes to logFile). */
  let current = null;

  const start = async () => {
    const child = spawn(TURNSERVER, ['-c', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(child);
    const proc = { child, output: '', exited: false };
    const exited = new Promise((done) =>
      child.on('exit', (code, signal) => {
        proc.exited = true;
        running.delete(child);
        proc.exit = `code ${code}, signal ${signal}`;
        done();
      }),
    );
    proc.exitedPromise = exited;
    for (const stream of [child.stdout, child.stderr]) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        proc.output = (proc.output + chunk).slice(-4000);
      });
    }
    current = proc;
    const spawnError = new Promise((_, fail) => child.on('error', (err) => fail(new Error(`could not start ${TURNSERVER}: ${err.message}`))));
    const died = exited.then(() => {
      throw new Error(`turnserver exited before it was ready (${proc.exit}); see ${logFile}\n${proc.output}`);
    });
    // Both only matter during the race below; later (a stop, say) they must not be unhandled.
    spawnError.catch(() => {});
    died.catch(() => {});
    try {
      await Promise.race([stunAnswers(port, START_TIMEOUT_MS), died, spawnError]);
    } catch (err) {
      await halt();
      throw new Error(`${err.message}\n(turnserver on 127.0.0.1:${port}, log ${logFile})`);
    }
  };

  /** Stops the process: SIGTERM, SIGKILL if it lingers. Keeps the config for a restart. */
  const halt = async () => {
    const proc = current;
    if (!proc || proc.exited) return;
    proc.child.kill('SIGTERM');
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    await proc.exitedPromise;
    clearTimeout(timer);
  };

  t?.after(async () => {
    await halt();
    rmSync(dir, { recursive: true, force: true });
  });

  await start();

  return {
    port,
    url: `turn:127.0.0.1:${port}`,
    secret,
    realm,
    logFile,
    /** The UDP ports relayed allocations get (coturn's min-port..max-port). */
    relayPorts: { min: minPort, max: minPort + RELAY_BLOCK - 1 },
    /** An RTCIceServer for this server, with credentials for `peerId` valid `ttlSecs`. */
    iceServer: (peerId, ttlSecs = 3600) => ({ urls: `turn:127.0.0.1:${port}`, ...turnCredentials(secret, peerId, ttlSecs) }),
    stop: halt,
    /** Stops the server if it runs and starts it again on the same port with the same secret. */
    restart: async () => {
      await halt();
      await start();
    },
  };
}

/**
 * A port free on 127.0.0.1 for both TCP and UDP right now (coturn listens on both). Another
 * process could still take it before coturn binds; startCoturn then fails with coturn's log.
 */
async function freePort() {
  for (let tries = 0; tries < 20; tries++) {
    const tcp = createServer();
    await new Promise((done, fail) => {
      tcp.once('error', fail);
      tcp.listen(0, '127.0.0.1', done);
    });
    const { port } = tcp.address();
    const udp = createSocket('udp4');
    const udpFree = await new Promise((done) => {
      udp.once('error', () => done(false));
      udp.bind(port, '127.0.0.1', () => done(true));
    });
    await new Promise((done) => tcp.close(done));
    if (udpFree) {
      await new Promise((done) => udp.close(done));
      return port;
    }
    udp.close();
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1 after 20 tries');
}

/**
 * Resolves once a STUN Binding request (RFC 5389) sent over UDP to 127.0.0.1:port gets a Binding
 * success response with the same transaction id; resends every PROBE_INTERVAL_MS; rejects after
 * `timeoutMs`. coturn answers Binding without credentials, from the same listener that takes
 * TURN allocations, so an answer means the server is up on that port.
 */
export function stunAnswers(port, timeoutMs) {
  const transaction = randomBytes(12);
  const request = Buffer.alloc(20);
  request.writeUInt16BE(0x0001, 0); // Binding request
  request.writeUInt16BE(0, 2); // no attributes
  request.writeUInt32BE(0x2112a442, 4); // magic cookie
  transaction.copy(request, 8);
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const send = () => socket.send(request, port, '127.0.0.1', () => {});
    const finish = (err) => {
      clearInterval(resend);
      clearTimeout(timer);
      socket.close();
      if (err) reject(err);
      else resolve();
    };
    // ICMP port unreachable (nobody listening yet) surfaces as an error on some systems: keep trying.
    socket.on('error', () => {});
    socket.on('message', (msg) => {
      if (msg.length >= 20 && msg.readUInt16BE(0) === 0x0101 && msg.subarray(8, 20).equals(transaction)) finish();
    });
    const resend = setInterval(send, PROBE_INTERVAL_MS);
    const timer = setTimeout(
      () => finish(new Error(`no STUN answer from 127.0.0.1:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    send();
  });
}

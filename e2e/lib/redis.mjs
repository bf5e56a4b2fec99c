// A real redis-server (Debian's package) on a free loopback port, for tests of several server
// processes sharing rooms. Nothing is persisted. Stopped when the test ends and on process exit.
//
//   const redis = await startRedis(t);
//   redis.url   // 'redis://127.0.0.1:PORT/'

import { spawn } from 'node:child_process';
import { createConnection, createServer } from 'node:net';

export const REDIS_SERVER = process.env.DRAWMESH_REDIS_SERVER || 'redis-server';
const START_TIMEOUT_MS = 10_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** A port free on 127.0.0.1 now. */
export function freePort() {
  return new Promise((found, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => found(port));
    });
  });
}

/** True when something on `port` answers a Redis PING with +PONG. */
function pings(port) {
  return new Promise((answer) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    let reply = '';
    const done = (ok) => {
      socket.destroy();
      answer(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk;
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

/**
 * @param {import('node:test').TestContext | null} t
 * @returns {Promise<{port: number, url: string, stop: () => Promise<void>}>}
 */
export async function startRedis(t) {
  const port = await freePort();
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  running.add(child);
  const exited = new Promise((done) => child.on('exit', done));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    running.delete(child);
  };
  t?.after(stop);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await pings(port))) {
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer on ${port} within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, url: `redis://127.0.0.1:${port}/`, stop };
}

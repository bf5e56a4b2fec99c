// nginx (Debian's nginx-light) as the load balancer in front of several server processes, run
// as an ordinary process (`daemon off`, everything in a temporary directory). It serves the
// repository's own example, deploy/nginx/drawmesh.conf, with the upstream servers and the
// listening port replaced by the test's.
//
//   const lb = await startNginx(t, ['127.0.0.1:4001', '127.0.0.1:4002']);
//   lb.url   // 'http://127.0.0.1:PORT/'

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './redis.mjs';
import { REPO_ROOT, artifactPath } from './server.mjs';

export const NGINX = process.env.DRAWMESH_NGINX || '/usr/sbin/nginx';
export const EXAMPLE_CONFIG = join(REPO_ROOT, 'deploy', 'nginx', 'drawmesh.conf');
const START_TIMEOUT_MS = 10_000;

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** The example config with `upstreams` ("host:port") and `port` in place of its own. */
export function exampleConfig(upstreams, port) {
  const example = readFileSync(EXAMPLE_CONFIG, 'utf8');
  const servers = upstreams.map((u) => `    server ${u};`).join('\n');
  const withUpstreams = example.replace(/(upstream drawmesh \{\n)(?:\s*server [^;]+;\n)+/, `$1${servers}\n`);
  const withPort = withUpstreams.replace(/listen \d+;/, `listen 127.0.0.1:${port};`);
  if (withUpstreams === example || withPort === withUpstreams) {
    throw new Error(`${EXAMPLE_CONFIG} no longer has the upstream block or listen line this test rewrites`);
  }
  return withPort;
}

function listening(port) {
  return new Promise((answer) => {
    const socket = createConnection({ port, host: '127.0.0.1' });
    socket.on('connect', () => {
      socket.destroy();
      answer(true);
    });
    socket.on('error', () => answer(false));
  });
}

/**
 * @param {import('node:test').TestContext | null} t
 * @param {string[]} upstreams  "127.0.0.1:PORT" of each server process
 * @returns {Promise<{url: string, port: number, stop: () => Promise<void>}>}
 */
export async function startNginx(t, upstreams, { name = 'nginx' } = {}) {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'drawmesh-nginx-'));
  writeFileSync(join(dir, 'drawmesh.conf'), exampleConfig(upstreams, port));
  writeFileSync(
    join(dir, 'nginx.conf'),
    [
      'daemon off;',
      'worker_processes 1;',
      `pid ${join(dir, 'nginx.pid')};`,
      `error_log ${artifactPath(`${name}-error.log`)} info;`,
      'events { worker_connections 1024; }',
      'http {',
      `  access_log ${artifactPath(`${name}-access.log`)};`,
      `  client_body_temp_path ${join(dir, 'body')};`,
      `  proxy_temp_path ${join(dir, 'proxy')};`,
      `  fastcgi_temp_path ${join(dir, 'fastcgi')};`,
      `  uwsgi_temp_path ${join(dir, 'uwsgi')};`,
      `  scgi_temp_path ${join(dir, 'scgi')};`,
      `  include ${join(dir, 'drawmesh.conf')};`,
      '}',
      '',
    ].join('\n'),
  );
  const child = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const exited = new Promise((done) => child.on('exit', done));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGQUIT');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
    rmSync(dir, { recursive: true, force: true });
  };
  t?.after(stop);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await listening(port))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`nginx did not listen on ${port}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url: `http://127.0.0.1:${port}/`, port, stop };
}

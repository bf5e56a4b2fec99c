// Starts the real Drawmesh signaling server for one test file and stops it afterwards.
//
//   const server = await startServer(t, { dist: 'e2e/fixtures/tutorial-client' });
//   server.url   // 'http://127.0.0.1:PORT/'
//
// The binary is $DRAWMESH_SERVER_BIN (default target/debug/drawmesh-server) and the web client
// directory $DRAWMESH_DIST (default dist), both relative to the repository root unless absolute.
// The server runs with RUST_LOG=info (unless RUST_LOG is set); its stdout and stderr go to
// e2e/artifacts/<name>-server.log. It is killed when the test ends, whether it passed or failed,
// and when this process exits.
//
// A test that kills the server and brings it back (browsers hold its URL, so the new one must
// listen on the same port) starts the second one with the first one's port:
//
//   await server.kill();                                   // SIGKILL: no goodbye to anyone
//   const again = await startServer(t, { port: server.port, name: 'x-restarted' });

import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (e2e/..). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Where logs and failure screenshots go (gitignored). */
export const ARTIFACTS = join(REPO_ROOT, 'e2e', 'artifacts');

const LISTENING = /Drawmesh listening on (http:\/\/127\.0\.0\.1:\d+\/)/;
const START_TIMEOUT_MS = 20_000;

/** A path from the environment or a default, relative to the repository root. */
export function repoPath(value) {
  return isAbsolute(value) ? value : join(REPO_ROOT, value);
}

export function artifactPath(file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, file);
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/**
 * Starts the server and waits for its "listening" line.
 *
 * @param {import('node:test').TestContext | null} t  registers the shutdown with t.after when given
 * @param {{dist?: string, name?: string, args?: string[], port?: number,
 *          env?: Record<string, string | undefined>}} [options]
 *   port: listen there instead of on a free port (0); env: variables added to this process's
 *   environment for the server, where `undefined` removes one (say TOKEN_SECRET, so the server
 *   makes a random secret even if the developer's shell sets one)
 * @returns {Promise<{url: string, port: number, logFile: string, stop: () => Promise<void>,
 *   kill: () => Promise<void>, log: () => string}>}  stop: SIGTERM (SIGKILL after 5 s);
 *   kill: SIGKILL at once, as a crash or an OOM kill would; both wait for the exit
 */
export async function startServer(t, options = {}) {
  const bin = repoPath(process.env.DRAWMESH_SERVER_BIN || 'target/debug/drawmesh-server');
  const dist = repoPath(options.dist ?? (process.env.DRAWMESH_DIST || 'dist'));
  if (!existsSync(bin)) {
    throw new Error(`server binary ${bin} not found: build it (cargo build -p server) or set DRAWMESH_SERVER_BIN`);
  }
  if (!existsSync(join(dist, 'index.html'))) {
    throw new Error(`${dist}/index.html not found: build the web client (trunk build) or set DRAWMESH_DIST`);
  }

  const name = options.name ?? 'server';
  const logFile = artifactPath(`${name}-server.log`);
  const logStream = createWriteStream(logFile);
  let logText = '';
  let logClosed = null;
  const record = (chunk) => {
    // Output still in the pipe may arrive after the exit, when the log is closed.
    if (!logClosed) logStream.write(chunk);
    logText += chunk;
  };

  // No ICE servers unless a test says otherwise (args win over the environment): the tests
  // run offline, and the server's default is a public STUN server. A server without
  // TOKEN_SECRET keeps its certificate key in the artifacts, not in the home directory (one
  // file for every such server of the run, so a restarted one keeps its key).
  const env = {
    ICE_SERVERS: '[]',
    CERT_KEY_FILE: join(ARTIFACTS, 'state', 'cert-key'),
    ...process.env,
    RUST_LOG: process.env.RUST_LOG || 'info',
  };
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  const child = spawn(bin, ['--port', String(options.port ?? 0), '--dist', dist, ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', record);

  let exited = false;
  const exitedPromise = new Promise((done) =>
    child.on('exit', (code, signal) => {
      exited = true;
      running.delete(child);
      record(`\n[e2e] server exited: code ${code}, signal ${signal}\n`);
      done();
    }),
  );

  // Both stop and kill may run (a test kills, then t.after stops): the log closes once.
  const closeLog = () => (logClosed ??= new Promise((done) => logStream.end(done)));
  const stop = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exitedPromise;
      clearTimeout(timer);
    }
    await closeLog();
  };
  const kill = async () => {
    if (!exited) {
      child.kill('SIGKILL');
      await exitedPromise;
    }
    await closeLog();
  };
  t?.after(stop);

  const url = await new Promise((found, fail) => {
    let stdout = '';
    const timer = setTimeout(
      () => fail(new Error(`server printed no "Drawmesh listening on" line within ${START_TIMEOUT_MS} ms; see ${logFile}`)),
      START_TIMEOUT_MS,
    );
    child.stdout.on('data', (chunk) => {
      record(chunk);
      stdout += chunk;
      const m = LISTENING.exec(stdout);
      if (m) {
        clearTimeout(timer);
        found(m[1]);
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      fail(new Error(`could not start ${bin}: ${err.message}`));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`server exited before listening (code ${code}, signal ${signal}); log:\n${logText}`));
    });
  }).catch(async (err) => {
    await stop();
    throw err;
  });

  return { url, port: Number(new URL(url).port), logFile, stop, kill, log: () => logText };
}

/**
 * A fresh room URL: GET / redirects to /<roomId>; returns that URL (without query).
 * @param {string} baseUrl
 */
export async function newRoomUrl(baseUrl) {
  const res = await fetch(baseUrl, { redirect: 'manual' });
  const location = res.headers.get('location');
  if (res.status < 300 || res.status >= 400 || !location) {
    throw new Error(`GET / answered ${res.status} (location ${location}), expected a redirect to a room`);
  }
  const room = new URL(location, baseUrl);
  if (!/^\/[A-Za-z0-9_-]{12}$/.test(room.pathname)) {
    throw new Error(`GET / redirected to ${room.pathname}, expected /<12-character room id>`);
  }
  return room.origin + room.pathname;
}

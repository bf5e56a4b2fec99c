// A peer whose tab died disappears from the others within a bound, even when the server has not
// said so. alice hears the server only through a proxy the test freezes (her stream stays open
// but carries nothing more, so the server's `remove-peer` never reaches her); bob's whole browser
// is then killed with SIGKILL, so his data channel never closes cleanly either. Only the mesh's
// own liveness check (pings every 2 s, silent for 20 s: gone) can notice.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../lib/browser.mjs';
import { inRoom, join, waitForPeers } from '../lib/drawmesh.mjs';
import { startProxy } from '../lib/proxy.mjs';

const PREFIX = 'dead_peer';
/** The link's silence timeout (shared::link::SILENCE_TIMEOUT_MS) plus ticks and slack. */
const GONE_WITHIN_MS = 24_000;

/**
 * A Chromium of its own for bob, started as a browser server so the test holds its process
 * (a Browser from launch() does not expose it).
 */
async function ownBrowser(t) {
  const server = await chromium.launchServer({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, timeout: 60_000 });
  t.after(() => server.close().catch(() => {}));
  const browser = await chromium.connect(server.wsEndpoint());
  return { server, browser };
}

/** SIGKILLs a Chromium and its helper processes (renderers, network service). */
function killBrowser(server) {
  const proc = server.process();
  assert.ok(proc?.pid, 'the browser was launched by this test');
  try {
    // Playwright starts Chromium in a process group of its own.
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    proc.kill('SIGKILL');
  }
}

test('a peer whose tab died disappears without the server saying so', { timeout: 90_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const proxy = await startProxy(t, new URL(server.url).port);
    const alice = await join(t, browser, new URL(new URL(room).pathname, proxy.url).href, 'alice', { prefix: PREFIX, users });
    const own = await ownBrowser(t);
    const bob = await join(t, own.browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    proxy.freeze();
    bob.closed = true; // its page dies with its browser: nothing to close afterwards
    const killed = Date.now();
    killBrowser(own.server);
    await waitForPeers(alice, 0, GONE_WITHIN_MS);
    const took = Date.now() - killed;
    // The server did not tell her: her stream is frozen, and she still believes it connected.
    const state = await alice.page.evaluate(() => document.querySelector('#status')?.dataset.state);
    assert.equal(state, 'connected');
    assert.ok(alice.consoleLines.some((l) => l.includes('went silent')), alice.diagnostics());
    console.log(`bob disappeared from alice's list ${took} ms after his browser was killed`);
    alice.assertHealthy();
  });
});

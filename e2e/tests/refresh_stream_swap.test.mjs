// A token refresh moves the session to a new SSE stream. Until that stream reaches the server, the
// server goes on delivering to the old one: an introduction, an offer or a candidate sent then
// must still count. Here alice's new stream is held back (a slow network, made deterministic by
// holding the request in the browser) while bob joins and sends her his offer; once it goes
// through, alice and bob must connect at once, not after the 10 s in which a lost offer is
// negotiated afresh (shared::link::OPEN_TIMEOUT_MS).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inRoom, join, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'refresh_stream_swap';
/** Long enough that bob joins between two refreshes (they come at 80% of a token's life). */
const TTL_SECS = 10;
/** Well under link::OPEN_TIMEOUT_MS (10 s), after which a lost offer is retried anyway. */
const CONNECT_MS = 5_000;

/** Resolves with the first request or response of `page` that `matches`, within `timeoutMs`. */
function next(page, event, matches, what, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      page.off(event, on);
      reject(new Error(`no ${what} within ${timeoutMs} ms`));
    }, timeoutMs);
    const on = (x) => {
      if (!matches(x)) return;
      clearTimeout(timer);
      page.off(event, on);
      resolve(x);
    };
    page.on(event, on);
  });
}

test('what the server sends while a refreshed session moves to its new stream is not lost', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX, args: ['--token-ttl', String(TTL_SECS)] }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });

    // Hold alice's next stream (the one her refresh opens) until bob's offer has gone out.
    let release;
    const released = new Promise((resolve) => (release = resolve));
    let held = false;
    await alice.page.route('**/api/connect?*', async (route) => {
      if (!held) {
        held = true;
        await released;
      }
      await route.continue();
    });
    const refreshed = next(alice.page, 'response', (r) => r.url().endsWith('/api/refresh'), 'token refresh', (TTL_SECS + 10) * 1000);
    const newStream = next(alice.page, 'request', (r) => new URL(r.url()).pathname === '/api/connect', 'new stream', (TTL_SECS + 10) * 1000);
    assert.equal((await refreshed).status(), 200, 'alice renewed her token');
    await newStream;

    // The server still delivers to alice's old stream: bob's introduction and his offer go there.
    // (Bob's offer may go out before join() returns: listen from before his page loads.)
    let offered;
    const bob = await join(t, browser, room, 'bob', {
      prefix: PREFIX,
      users,
      beforeLoad: async (page) => {
        offered = next(
          page,
          'response',
          (r) => /^\/api\/relay\/[^/]+\/session-description$/.test(new URL(r.url()).pathname) && r.ok(),
          "bob's offer relayed",
          10_000,
        );
        offered.catch(() => {}); // awaited below, unless join fails first
      },
    });
    await offered;
    release();

    // Alice's new stream goes through; she must already have bob's offer and answer it.
    const started = Date.now();
    await waitForPeers(alice, 1, CONNECT_MS);
    await waitForPeers(bob, 1, CONNECT_MS);
    t.diagnostic(`alice and bob connected ${Date.now() - started} ms after alice's new stream went through`);
    for (const user of users) user.assertHealthy();
  });
});

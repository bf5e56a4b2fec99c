// Tokens expire; sessions must not. With 6-second tokens, alice and bob keep their peer ids and
// their connection across several refreshes, and once their first tokens have long expired the
// server still introduces them to a newcomer (which needs their renewed tokens to relay offers,
// answers and candidates).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'token_refresh';
const TTL_SECS = 6;
/** The server accepts a token this long past its expiry (clock skew between servers). */
const LEEWAY_SECS = 5;

/** Resolves when `user`'s page has had `count` successful token refreshes. */
function refreshes(user, count) {
  let seen = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${user.name}: only ${seen} of ${count} token refreshes`)),
      (TTL_SECS * count + 20) * 1000,
    );
    user.page.on('response', (res) => {
      if (res.url().endsWith('/api/refresh') && res.request().method() === 'POST') {
        assert.equal(res.status(), 200, `${user.name}: refresh answered ${res.status()}`);
        seen += 1;
        if (seen === count) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
  });
}

test('sessions outlive their tokens: same peer ids, same connections, still introduced', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX, args: ['--token-ttl', String(TTL_SECS)] }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    // Counting starts now: refreshes at ~80% of each 6 s token.
    const enough = Math.ceil((TTL_SECS + LEEWAY_SECS) / (TTL_SECS * 0.8)) + 1;
    const aliceRefreshed = refreshes(alice, enough);
    const bobRefreshed = refreshes(bob, enough);
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    const [bobAsSeenByAlice] = await peerIds(alice);
    const [aliceAsSeenByBob] = await peerIds(bob);

    // Past the first tokens' expiry (and leeway): every request now needs a renewed token.
    await Promise.all([aliceRefreshed, bobRefreshed]);
    assert.deepEqual(await peerIds(alice), [bobAsSeenByAlice], 'alice still sees the same bob');
    assert.deepEqual(await peerIds(bob), [aliceAsSeenByBob], 'bob still sees the same alice');
    await waitForPeers(alice, 1);

    // A newcomer: alice and bob answer carol's offers through the relay with renewed tokens.
    const carol = await join(t, browser, room, 'carol', { prefix: PREFIX, users });
    for (const user of [alice, bob, carol]) await waitForPeers(user, 2);
    const carolSees = (await peerIds(carol)).sort();
    assert.deepEqual(carolSees, [aliceAsSeenByBob, bobAsSeenByAlice].sort(), 'carol meets the same alice and bob');
    for (const user of users) user.assertHealthy();
  });
});

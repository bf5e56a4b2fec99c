// A room takes so many people (the server's --max-peers-per-room; 2 here): the next person is
// told the room is full, in words, on the status line, at desktop and phone sizes; the people in
// the room never see them; and once somebody leaves, the page that waited gets in by itself.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openUser, screenshotAll } from '../lib/browser.mjs';
import { inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'room_full';

async function waitForFull(user) {
  await user.waitFor(() => document.querySelector('#status')?.dataset.state === 'full', null, '#status[data-state="full"]');
  return user.page.evaluate(() => document.querySelector('#status').textContent);
}

test('the next person in a full room is told so, and gets in when a place frees', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX, args: ['--max-peers-per-room', '2'] }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    const carol = await openUser(t, browser, `${room}?name=carol`, { name: 'carol', logPrefix: PREFIX, viewport: { width: 1280, height: 800 } });
    users.push(carol);
    const dave = await openUser(t, browser, `${room}?name=dave`, { name: 'dave', logPrefix: PREFIX, viewport: { width: 390, height: 844 }, context: { hasTouch: true, isMobile: true } });
    users.push(dave);
    for (const u of [carol, dave]) {
      const text = await waitForFull(u);
      assert.match(text, /^This room is full \(2 people\) · retrying in 10s$/, `${u.name}: ${text}`);
      assert.equal(await u.page.evaluate(() => document.querySelector('#status').title), text, 'the whole text on hover');
    }
    await screenshotAll([carol, dave], `${PREFIX}-refused`);
    // Alice and bob see only each other.
    assert.equal((await peerIds(alice)).length, 1);
    assert.equal((await peerIds(bob)).length, 1);

    // Bob leaves: one of the two waiting pages takes his place when it next asks (every 10 s).
    const [bobId] = await peerIds(alice);
    await bob.close();
    await alice.waitFor(
      (gone) => {
        const ids = [...document.querySelectorAll('#peers li[data-peer-id]')].map((li) => li.dataset.peerId);
        return ids.length === 1 && ids[0] !== gone;
      },
      bobId,
      'a newcomer in bob\'s place',
      30_000,
    );
    // Whichever it was sees alice; the room holds two, so alice lists nobody else.
    await Promise.any([waitForPeers(carol, 1, 30_000), waitForPeers(dave, 1, 30_000)]);
    assert.equal((await peerIds(alice)).length, 1);
    for (const u of users) if (u !== bob) u.assertHealthy();
  });
});

// A connection that loses its path is repaired in place by an ICE restart. alice and bob may use
// relayed candidates only (?ice=relay), through a real coturn; the test restarts coturn, which
// loses every allocation, so both connections go `disconnected`. The offerer restarts ICE (new
// candidates, a new allocation, the same RTCPeerConnection and data channels): the two stay in
// each other's lists, no fresh negotiation is needed, and strokes flow again.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { startCoturn } from '../lib/coturn.mjs';
import { CANVAS, chooseSwatch, chooseTool, inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'ice_restart';
const SECRET = 'e2e-ice-restart-secret';
/** Noticing the loss (consent checks fail), the 2 s grace, and the restart itself. */
const HEALED_WITHIN_MS = 30_000;

test('a lost relay path is repaired by an ICE restart on the same connection', { timeout: 120_000 }, async (t) => {
  const turn = await startCoturn(t, { secret: SECRET, name: PREFIX });
  const args = ['--turn-urls', turn.url, '--turn-secret', SECRET];
  await inRoom(t, { prefix: PREFIX, args }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users, query: 'ice=relay' });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users, query: 'ice=relay' });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    const before = [await peerIds(alice), await peerIds(bob)];

    await turn.restart();
    // bob joined last, so he offers, and so he restarts.
    await bob.waitFor(
      () => document.querySelector('#peers li[data-link="reconnecting"]') !== null,
      null,
      'bob: the link to alice shows reconnecting',
      HEALED_WITHIN_MS,
    );
    for (const user of users) {
      await user.waitFor(
        () => document.querySelector('#peers li[data-link="relayed"]') !== null,
        null,
        `${user.name}: the link is relayed again`,
        HEALED_WITHIN_MS,
      );
    }
    assert.ok(bob.consoleLines.some((l) => l.includes('restarting ICE')), bob.diagnostics());
    for (const user of users) {
      assert.ok(!user.consoleLines.some((l) => l.includes('negotiating afresh') || l.includes('went silent')), user.diagnostics());
    }
    assert.deepEqual([await peerIds(alice), await peerIds(bob)], before, 'the same peers, never dropped');

    await chooseTool(alice, 'pen');
    await chooseSwatch(alice, '#2f9e44');
    const box = await canvasBox(alice.page, CANVAS);
    const y = Math.round(box.height * 0.6);
    await dragStroke(alice.page, [{ x: 100, y }, { x: 450, y }], { selector: CANVAS });
    await waitForStroke(bob, { selector: CANVAS, points: [150, 250, 350].map((x) => ({ x, y })), color: '#2f9e44' });
    for (const user of users) user.assertHealthy();
  });
});

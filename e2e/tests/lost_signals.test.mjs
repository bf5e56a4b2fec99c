// No stuck connections: a negotiation that loses a signaling message is torn down and started
// again. The fault is the test's own: a Playwright route in one browser answers chosen relay POSTs
// with 200 and drops them (nothing in the product can be switched to lose messages), so the
// server, the browsers and WebRTC are all real and only the message is missing.
//
// - bob (the joiner, who offers) loses his first offer: alice never hears of him;
// - alice (who answers) loses her first answer: bob's offer hangs;
// - both lose every ICE candidate of their first connections (the host candidates of one machine
//   are enough to connect only when at least one side learns the other's).
// Each time, the two end up connected exactly once and strokes flow.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { CANVAS, chooseSwatch, chooseTool, inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'lost_signals';
/** One open timeout (10 s) plus the second attempt's negotiation, with room to spare. */
const RETRY_WAIT_MS = 40_000;

/**
 * Drops the relay POSTs of `event` for which `drop(body)` is true (answering 200, as the server
 * would). Returns the list of dropped bodies.
 */
async function dropRelays(page, event, drop) {
  const dropped = [];
  await page.route(`**/api/relay/*/${event}`, async (route) => {
    const body = route.request().postData() ?? '';
    if (drop(body, dropped.length)) {
      dropped.push(body);
      await route.fulfill({ status: 200, body: '' });
    } else {
      await route.continue();
    }
  });
  return dropped;
}

/** Drops the first `n` session descriptions. */
const firstDescriptions = (n) => (page) => dropRelays(page, 'session-description', (_, k) => k < n);

/**
 * Drops every ICE candidate of the first connection: those with the first username fragment
 * seen (a new connection gathers with a new one).
 */
function firstConnectionCandidates() {
  let first = null;
  return (page) =>
    dropRelays(page, 'ice-candidate', (body) => {
      let ufrag;
      try {
        ufrag = JSON.parse(body).usernameFragment ?? null;
      } catch {
        return false;
      }
      if (first === null) first = ufrag;
      return ufrag === first;
    });
}

async function connectsDespite(t, name, { aliceFault, bobFault }) {
  const prefix = `${PREFIX}-${name}`;
  await inRoom(t, { prefix }, async ({ room, browser, users }) => {
    let aliceDropped = [];
    let bobDropped = [];
    const alice = await join(t, browser, room, 'alice', {
      prefix,
      users,
      beforeLoad: async (page) => {
        if (aliceFault) aliceDropped = await aliceFault(page);
      },
    });
    const bob = await join(t, browser, room, 'bob', {
      prefix,
      users,
      beforeLoad: async (page) => {
        if (bobFault) bobDropped = await bobFault(page);
      },
    });
    await waitForPeers(alice, 1, RETRY_WAIT_MS);
    await waitForPeers(bob, 1, RETRY_WAIT_MS);
    assert.ok(aliceDropped.length + bobDropped.length > 0, 'the fault dropped something');
    // The open connection came from a second negotiation, not from the first.
    const renegotiated = bob.consoleLines.some((l) => l.includes('negotiating afresh'));
    assert.ok(renegotiated, `bob negotiated afresh:\n${bob.diagnostics()}`);
    // Exactly one entry each: the retry replaced the stuck connection.
    assert.equal((await peerIds(alice)).length, 1);
    assert.equal((await peerIds(bob)).length, 1);

    // Strokes flow over the new connection.
    await chooseTool(bob, 'pen');
    await chooseSwatch(bob, '#e03131');
    const box = await canvasBox(bob.page, CANVAS);
    const y = Math.round(box.height * 0.5);
    await dragStroke(bob.page, [{ x: 100, y }, { x: 400, y }], { selector: CANVAS });
    const points = [150, 250, 350].map((x) => ({ x, y }));
    await waitForStroke(alice, { selector: CANVAS, points, color: '#e03131' });
    for (const user of users) user.assertHealthy();
  });
}

test('a lost offer is negotiated again', { timeout: 90_000 }, async (t) => {
  await connectsDespite(t, 'offer', { bobFault: firstDescriptions(1) });
});

test('a lost answer is negotiated again', { timeout: 90_000 }, async (t) => {
  await connectsDespite(t, 'answer', { aliceFault: firstDescriptions(1) });
});

test('lost candidates on both sides are negotiated again', { timeout: 90_000 }, async (t) => {
  await connectsDespite(t, 'candidates', {
    aliceFault: firstConnectionCandidates(),
    bobFault: firstConnectionCandidates(),
  });
});

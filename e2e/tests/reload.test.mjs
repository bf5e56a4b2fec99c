// The drawing survives in the browser: a reload restores it, and when everybody has left, the
// first to come back alone sees everybody's strokes from the copy saved in IndexedDB (the room's
// append-only records, see client/src/storage.rs and lib/storage.mjs).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { launchBrowser, openInContext, screenshotAll } from '../lib/browser.mjs';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import {
  CANVAS,
  chooseSwatch,
  chooseTool,
  join,
  peerIds,
  roomIdOf,
  setWidth,
  waitForElements,
  waitForPeers,
  waitForReady,
} from '../lib/drawmesh.mjs';
import { newRoomUrl, startServer } from '../lib/server.mjs';
import { waitForSaved } from '../lib/storage.mjs';

const PREFIX = 'reload';
const COLORS = ['#e03131', '#2f9e44', '#1971c2'];

/** A horizontal stroke at fraction `fy` of the canvas height, and points on its centre line. */
function horizontal(box, fy) {
  const y = Math.round(box.height * fy);
  return {
    drag: [{ x: Math.round(box.width * 0.15), y }, { x: Math.round(box.width * 0.75), y }],
    check: [0.25, 0.4, 0.55, 0.7].map((f) => ({ x: Math.round(box.width * f), y })),
  };
}

test('a reload restores the drawing', { timeout: 90_000 }, async (t) => {
  const server = await startServer(t, { name: `${PREFIX}-alone` });
  const room = await newRoomUrl(server.url);
  const browser = await launchBrowser(t);
  const users = [];
  try {
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-alone`, users });
    await chooseTool(alice, 'pen');
    await setWidth(alice, 6);
    const box = await canvasBox(alice.page, CANVAS);
    const strokes = [0.25, 0.5, 0.75].map((fy) => horizontal(box, fy));
    for (const [i, s] of strokes.entries()) {
      await chooseSwatch(alice, COLORS[i]);
      await dragStroke(alice.page, s.drag, { selector: CANVAS });
    }
    await waitForElements(alice, 3);
    for (const [i, s] of strokes.entries()) await waitForStroke(alice, { selector: CANVAS, points: s.check, color: COLORS[i] });
    await waitForSaved(alice, roomIdOf(room));

    await alice.page.reload({ waitUntil: 'load' });
    await waitForReady(alice);
    await waitForElements(alice, 3);
    for (const [i, s] of strokes.entries()) await waitForStroke(alice, { selector: CANVAS, points: s.check, color: COLORS[i] });

    alice.assertHealthy();
  } catch (err) {
    await screenshotAll(users, `${PREFIX}-alone`);
    throw err;
  }
});

test('after everybody left, the first back alone sees everybody\'s strokes', { timeout: 90_000 }, async (t) => {
  const server = await startServer(t, { name: `${PREFIX}-return` });
  const room = await newRoomUrl(server.url);
  const roomId = roomIdOf(room);
  const browser = await launchBrowser(t);
  const users = [];
  try {
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-return`, users });
    const bob = await join(t, browser, room, 'bob', { prefix: `${PREFIX}-return`, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    const [bobId] = await peerIds(alice);
    assert.ok(bobId, 'alice lists bob in #peers');

    const box = await canvasBox(alice.page, CANVAS);
    const aliceStroke = horizontal(box, 0.3);
    const bobStroke = horizontal(box, 0.65);
    for (const [user, color] of [[alice, COLORS[0]], [bob, COLORS[2]]]) {
      await chooseTool(user, 'pen');
      await chooseSwatch(user, color);
      await setWidth(user, 6);
    }
    await dragStroke(alice.page, aliceStroke.drag, { selector: CANVAS });
    await dragStroke(bob.page, bobStroke.drag, { selector: CANVAS });
    for (const user of [alice, bob]) {
      await waitForElements(user, 2);
      await waitForStroke(user, { selector: CANVAS, points: aliceStroke.check, color: COLORS[0] });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke.check, color: COLORS[2] });
    }
    // Alice's saved copy has bob's stroke too (his ops carry his peer id).
    await waitForSaved(alice, roomId, { text: bobId });

    // Everybody leaves: bob's browser goes away entirely, alice closes her tab.
    await bob.close();
    await alice.closePage();

    // Alice comes back alone (same browser profile): both strokes are there.
    const back = await openInContext(t, alice.context, `${room}?name=alice`, { name: 'alice', logPrefix: `${PREFIX}-return-back` });
    users.push(back);
    await waitForReady(back);
    await waitForPeers(back, 0);
    await waitForElements(back, 2);
    await waitForStroke(back, { selector: CANVAS, points: aliceStroke.check, color: COLORS[0] });
    await waitForStroke(back, { selector: CANVAS, points: bobStroke.check, color: COLORS[2] });

    for (const user of users) user.assertHealthy();
  } catch (err) {
    await screenshotAll(users, `${PREFIX}-return`);
    throw err;
  }
});

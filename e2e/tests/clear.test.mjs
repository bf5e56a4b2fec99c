// Clear asks first: #clear opens dialog#clear-dialog; cancelling keeps the drawing, confirming
// clears it on every browser.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import {
  CANVAS,
  chooseSwatch,
  chooseTool,
  inRoom,
  join,
  setWidth,
  waitForElements,
  waitForGone,
  waitForPeers,
} from '../lib/drawmesh.mjs';

const PREFIX = 'clear';
const RED = '#e03131';
const BLUE = '#1971c2';

async function waitForDialog(user, open) {
  await user.waitFor(
    (want) => document.querySelector('dialog#clear-dialog')?.open === want,
    open,
    `dialog#clear-dialog to be ${open ? 'open' : 'closed'}`,
  );
}

test('clear asks for confirmation, then clears the drawing on every browser', { timeout: 90_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    const box = await canvasBox(alice.page, CANVAS);
    const row = (fy) => [0.25, 0.4, 0.55, 0.7].map((f) => ({ x: Math.round(box.width * f), y: Math.round(box.height * fy) }));
    const aliceStroke = row(0.3);
    const bobStroke = row(0.65);
    for (const [user, color, points] of [[alice, RED, aliceStroke], [bob, BLUE, bobStroke]]) {
      await chooseTool(user, 'pen');
      await chooseSwatch(user, color);
      await setWidth(user, 6);
      await dragStroke(user.page, [{ x: box.width * 0.15, y: points[0].y }, { x: box.width * 0.75, y: points[0].y }], { selector: CANVAS });
    }
    for (const user of [alice, bob]) {
      await waitForElements(user, 2);
      await waitForStroke(user, { selector: CANVAS, points: aliceStroke, color: RED });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke, color: BLUE });
    }

    // Cancel: the dialog closes and nothing changes (alice made no op).
    const opsBefore = await alice.page.evaluate(() => document.body.dataset.ops);
    await alice.page.locator('#clear').click();
    await waitForDialog(alice, true);
    await alice.page.locator('#clear-cancel').click();
    await waitForDialog(alice, false);
    const opsAfter = await alice.page.evaluate(() => document.body.dataset.ops);
    assert.equal(opsAfter, opsBefore, 'cancelling the clear dialog makes no op (body[data-ops] unchanged)');
    for (const user of [alice, bob]) {
      await waitForElements(user, 2, 2_000);
      await waitForStroke(user, { selector: CANVAS, points: aliceStroke, color: RED, timeout: 2_000 });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke, color: BLUE, timeout: 2_000 });
    }

    // Confirm: everything goes, on both browsers.
    await alice.page.locator('#clear').click();
    await waitForDialog(alice, true);
    await alice.page.locator('#clear-confirm').click();
    await waitForDialog(alice, false);
    for (const user of [alice, bob]) {
      await waitForElements(user, 0);
      await waitForGone(user, { points: aliceStroke, color: RED });
      await waitForGone(user, { points: bobStroke, color: BLUE });
    }

    for (const user of users) user.assertHealthy();
  });
});

// Undo is per user: alice and bob each draw a stroke; alice's Ctrl+Z removes her stroke on both
// browsers and leaves bob's; Ctrl+Shift+Z brings it back on both. A user who has done nothing has
// nothing to undo.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import {
  CANVAS,
  chooseSwatch,
  chooseTool,
  focusPage,
  inRoom,
  join,
  setWidth,
  waitForElements,
  waitForGone,
  waitForPeers,
} from '../lib/drawmesh.mjs';

const PREFIX = 'undo';
const RED = '#e03131';
const BLUE = '#1971c2';

/** Waits until `selector` is disabled (true) or enabled (false). */
async function waitForDisabled(user, selector, disabled) {
  await user.waitFor(
    ([sel, want]) => {
      const el = document.querySelector(sel);
      return el !== null && el.disabled === want;
    },
    [selector, disabled],
    `${selector} to be ${disabled ? 'disabled' : 'enabled'}`,
  );
}

test("an undo removes only the user's own stroke, on every browser, and redo restores it", { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    // Nobody has done anything yet: nothing to undo or redo.
    for (const user of [alice, bob]) {
      await waitForDisabled(user, '#undo', true);
      await waitForDisabled(user, '#redo', true);
    }

    const box = await canvasBox(alice.page, CANVAS);
    const y1 = Math.round(box.height * 0.3);
    const y2 = Math.round(box.height * 0.65);
    const aliceStroke = [0.2, 0.35, 0.5, 0.65].map((f) => ({ x: Math.round(box.width * f), y: y1 }));
    const bobStroke = [0.2, 0.35, 0.5, 0.65].map((f) => ({ x: Math.round(box.width * f), y: y2 }));

    for (const [user, color] of [[alice, RED], [bob, BLUE]]) {
      await chooseTool(user, 'pen');
      await chooseSwatch(user, color);
      await setWidth(user, 6);
    }
    await dragStroke(alice.page, [{ x: box.width * 0.15, y: y1 }, { x: box.width * 0.7, y: y1 }], { selector: CANVAS });
    await waitForElements(bob, 1); // ordered: bob's stroke is later than alice's everywhere
    await dragStroke(bob.page, [{ x: box.width * 0.15, y: y2 }, { x: box.width * 0.7, y: y2 }], { selector: CANVAS });

    for (const user of [alice, bob]) {
      await waitForElements(user, 2);
      await waitForStroke(user, { selector: CANVAS, points: aliceStroke, color: RED });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke, color: BLUE });
    }
    await waitForDisabled(alice, '#undo', false);

    // Alice undoes: her stroke goes, bob's stays, on both browsers.
    await focusPage(alice);
    await alice.page.keyboard.press('Control+KeyZ');
    for (const user of [alice, bob]) {
      await waitForElements(user, 1);
      await waitForGone(user, { points: aliceStroke, color: RED });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke, color: BLUE, timeout: 2_000 });
    }
    await waitForDisabled(alice, '#redo', false);
    // Bob's own undo is still there for him: alice's undo did not touch his work.
    await waitForDisabled(bob, '#undo', false);

    // Alice redoes: her stroke is back on both.
    await focusPage(alice);
    await alice.page.keyboard.press('Control+Shift+KeyZ');
    for (const user of [alice, bob]) {
      await waitForElements(user, 2);
      await waitForStroke(user, { selector: CANVAS, points: aliceStroke, color: RED });
      await waitForStroke(user, { selector: CANVAS, points: bobStroke, color: BLUE, timeout: 2_000 });
    }
    await waitForDisabled(alice, '#redo', true);

    for (const user of users) user.assertHealthy();
  });
});

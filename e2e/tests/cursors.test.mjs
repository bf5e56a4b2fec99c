// Live cursors: when alice moves her mouse over her canvas, bob sees her cursor, with her name,
// at the same place on his canvas (same view), following her; when her pointer leaves the
// canvas, her cursor goes away on his screen.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox } from '../lib/canvas.mjs';
import { CANVAS, inRoom, join, peerIds, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'cursors';
const NEAR_PX = 20;

/**
 * In-page: the visible `.cursor[data-peer-id=id]`'s top-left corner, once it is within `near` px
 * of (x, y) (page CSS px); false until then.
 */
function cursorNearInPage({ id, x, y, near }) {
  const el = document.querySelector(`#cursors .cursor[data-peer-id="${CSS.escape(id)}"]`);
  if (!el || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true })) return false;
  const r = el.getBoundingClientRect();
  if (Math.abs(r.left - x) > near || Math.abs(r.top - y) > near) return false;
  return { left: r.left, top: r.top, name: el.querySelector('.cursor-name')?.textContent ?? null };
}

/** In-page: the cursor's state, for failure messages. */
function cursorStateInPage(id) {
  const el = document.querySelector(`#cursors .cursor[data-peer-id="${CSS.escape(id)}"]`);
  if (!el) {
    const all = [...document.querySelectorAll('#cursors .cursor')].map((c) => c.dataset.peerId);
    return `no .cursor[data-peer-id="${id}"] (cursors present: ${JSON.stringify(all)}; #cursors ${document.querySelector('#cursors') ? 'exists' : 'missing'})`;
  }
  const r = el.getBoundingClientRect();
  const visible = el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
  return `cursor at (${r.left}, ${r.top}) size ${r.width}x${r.height}, visible ${visible}, name ${JSON.stringify(el.querySelector('.cursor-name')?.textContent)}`;
}

test("each user sees the others' cursors, named, where they point", { timeout: 90_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    const [aliceId] = await peerIds(bob);
    assert.ok(aliceId, 'bob lists alice in #peers');

    const aliceBox = await canvasBox(alice.page, CANVAS);
    const bobBox = await canvasBox(bob.page, CANVAS);

    // Alice hovers (no button pressed) at two places in turn; bob's view of her cursor follows.
    for (const [fx, fy] of [[0.3, 0.4], [0.7, 0.75]]) {
      const x = Math.round(aliceBox.width * fx);
      const y = Math.round(aliceBox.height * fy);
      await alice.page.mouse.move(aliceBox.x + x, aliceBox.y + y, { steps: 5 });
      const expected = { x: bobBox.x + x, y: bobBox.y + y };
      let seen;
      try {
        seen = await bob.waitFor(
          cursorNearInPage,
          { id: aliceId, x: expected.x, y: expected.y, near: NEAR_PX },
          `alice's cursor within ${NEAR_PX} px of (${expected.x}, ${expected.y}) on bob's page`,
        );
      } catch (err) {
        const state = await bob.page.evaluate(cursorStateInPage, aliceId).catch((e) => e.message);
        throw new Error(`${err.message}\n${state}`);
      }
      assert.equal(seen.name?.trim(), 'alice', `alice's cursor on bob's page is labelled with her name (.cursor-name)`);
    }

    // Her pointer leaves the canvas (onto the menubar): her cursor disappears on bob's page.
    await alice.page.mouse.move(aliceBox.x + aliceBox.width / 2, Math.max(2, aliceBox.y / 2), { steps: 5 });
    try {
      await bob.waitFor(
        (id) => {
          const el = document.querySelector(`#cursors .cursor[data-peer-id="${CSS.escape(id)}"]`);
          return !el || !el.checkVisibility({ opacityProperty: true, visibilityProperty: true });
        },
        aliceId,
        "alice's cursor to be hidden on bob's page after her pointer left her canvas",
      );
    } catch (err) {
      const state = await bob.page.evaluate(cursorStateInPage, aliceId).catch((e) => e.message);
      throw new Error(`${err.message}\n${state}`);
    }

    for (const user of users) user.assertHealthy();
  });
});

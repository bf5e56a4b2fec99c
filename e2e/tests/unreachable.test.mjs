// A peer that cannot be reached is shown, with the reason, instead of silently missing strokes.
// bob may use relayed candidates only (?ice=relay) but the server has no TURN service, so bob has
// no candidate at all: offers and answers get through (the server relays them), yet no candidate
// pair can work. After three failed attempts (10, 20 and 30 s: shared::link's back-off) both
// list each other as unreachable, blaming the route and suggesting TURN.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshotAll } from '../lib/browser.mjs';
import { inRoom, join } from '../lib/drawmesh.mjs';

const PREFIX = 'unreachable';
/** Three attempts of 10, 20 and 30 s, plus ticks and slack. */
const SHOWN_WITHIN_MS = 75_000;

test('a peer that cannot be reached is listed as unreachable, with why', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const bob = await join(t, browser, room, 'bob', { prefix: PREFIX, users, query: 'ice=relay' });
    for (const user of users) {
      const [text, title] = await user.waitFor(
        () => {
          const li = document.querySelector('#peers li[data-link="unreachable"]');
          return li ? [li.textContent, li.title] : false;
        },
        null,
        `${user.name}: li[data-link="unreachable"]`,
        SHOWN_WITHIN_MS,
      );
      assert.match(text, /unreachable: no route$/);
      assert.match(title, /no network route between us \(a TURN server would help\)/);
      // Not counted as connected.
      const count = await user.page.$eval('#peers', (el) => el.dataset.count);
      assert.equal(count, '0');
    }
    assert.ok(bob.consoleLines.some((l) => l.includes('negotiating afresh')), bob.diagnostics());
    await screenshotAll(users, `${PREFIX}-shown`);
    for (const user of users) user.assertHealthy();
    void alice;
  });
});

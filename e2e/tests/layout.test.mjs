// The canvas never moves on screen when people join or leave: the people present are listed
// over the canvas, not in the menubar's flow, so a longer list cannot wrap the bar onto another
// line and push the drawing down (it did at 1280 px when a second person arrived, under a pen
// mid-stroke too). Checked at desktop and phone sizes, with a stroke in progress while the
// room fills; and a stroke drawn under the list draws.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { screenshotAll } from '../lib/browser.mjs';
import { canvasBox, waitForStroke } from '../lib/canvas.mjs';
import { chooseCustomColor, inRoom, join, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'layout';
const INK = '#202020';

/** Where the canvas is on screen and how big its drawing buffer is. */
async function placement(user) {
  const box = await canvasBox(user.page, '#board');
  const buffer = await user.page.evaluate(() => {
    const c = document.querySelector('#board');
    return { width: c.width, height: c.height };
  });
  return { ...box, buffer };
}

test('the canvas stays where it is while people join and leave', { timeout: 180_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users, viewport: { width: 1280, height: 800 } });
    const phone = await join(t, browser, room, 'phoebe', {
      prefix: PREFIX,
      users,
      viewport: { width: 390, height: 844 },
    });
    await waitForPeers(alice, 1);
    const before = { alice: await placement(alice), phone: await placement(phone) };

    await chooseCustomColor(alice, INK);
    // Alice starts a stroke and keeps her pen down while the room fills.
    const box = before.alice;
    await alice.page.mouse.move(box.x + 100, box.y + 60);
    await alice.page.mouse.down();
    await alice.page.mouse.move(box.x + 160, box.y + 60, { steps: 6 });

    const names = ['bartholomew', 'cassiopeia', 'maximiliana', 'wilhelmina'];
    const arrivals = [];
    for (const name of names) arrivals.push(await join(t, browser, room, name, { prefix: PREFIX, users }));
    await waitForPeers(alice, 1 + names.length);
    await waitForPeers(phone, 1 + names.length);

    // Her pen, still at the same place on screen, goes on to where it ends.
    await alice.page.mouse.move(box.x + 220, box.y + 60, { steps: 6 });
    await alice.page.mouse.up();
    await screenshotAll([alice, phone], `${PREFIX}-full`);

    assert.deepEqual(await placement(alice), before.alice, 'alice\'s canvas moved or was resized as people joined');
    assert.deepEqual(await placement(phone), before.phone, 'the phone\'s canvas moved or was resized as people joined');
    // The stroke lies under the path the pointer took on screen: from x 100 to 220, at y 60.
    const points = [100, 130, 160, 190, 220].map((x) => ({ x, y: 60 }));
    await waitForStroke(alice, { selector: '#board', points, color: INK });

    // A stroke under the people list draws as anywhere else: the pills take no pointer events.
    const pills = await alice.page.locator('#peers li').first().boundingBox();
    const under = { x: pills.x + pills.width / 2 - box.x, y: pills.y + pills.height / 2 - box.y };
    const before2 = await alice.page.evaluate(() => Number(document.body.dataset.elements));
    await alice.page.mouse.move(box.x + under.x - 40, box.y + under.y);
    await alice.page.mouse.down();
    await alice.page.mouse.move(box.x + under.x + 40, box.y + under.y, { steps: 8 });
    await alice.page.mouse.up();
    await alice.waitFor((n) => Number(document.body.dataset.elements) === n, before2 + 1, 'the stroke under the pills');
    await waitForStroke(alice, { selector: '#board', points: [under], color: INK });

    for (const u of arrivals) await u.close();
    await waitForPeers(alice, 1);
    await waitForPeers(phone, 1);
    assert.deepEqual(await placement(alice), before.alice, 'alice\'s canvas moved as people left');
    assert.deepEqual(await placement(phone), before.phone, 'the phone\'s canvas moved as people left');
    for (const u of [alice, phone]) u.assertHealthy();
  });
});

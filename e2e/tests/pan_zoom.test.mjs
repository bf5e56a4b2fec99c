// Pan and zoom, as a person does it: the wheel zooms about the pointer, space + drag pans, and the
// zoom button puts the view back. Checked where it shows: the stroke's pixels move on the canvas.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, dragStroke, readPixels, waitForStroke } from '../lib/canvas.mjs';
import {
  CANVAS,
  chooseSwatch,
  inRoom,
  join,
  waitForElements,
  waitForGone,
} from '../lib/drawmesh.mjs';

const PREFIX = 'pan_zoom';
const RED = '#e03131';

test('the wheel zooms about the pointer, space + drag pans, the zoom button resets', { timeout: 90_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    const { page } = alice;
    const box = await canvasBox(page, CANVAS);
    const at = (fx, fy) => ({ x: Math.round(box.width * fx), y: Math.round(box.height * fy) });
    const zoomOf = () => page.evaluate(() => Number(document.querySelector('#board').dataset.zoom));

    // A horizontal stroke across the middle: x from 0.3 to 0.7 of the canvas.
    await chooseSwatch(alice, RED);
    await dragStroke(page, [at(0.3, 0.5), at(0.7, 0.5)], { selector: CANVAS });
    await waitForElements(alice, 1);
    await waitForStroke(alice, { selector: CANVAS, points: [at(0.5, 0.5), at(0.65, 0.5)], color: RED });
    // Beyond its right end: blank at zoom 1.
    const beyond = at(0.8, 0.5);
    await waitForGone(alice, { points: [beyond], color: RED });
    assert.equal(await zoomOf(), 1);

    // Wheel up over the canvas centre: zoom in about it; the stroke grows past 0.8.
    const centre = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.wheel(0, -300);
    await alice.waitFor(() => Number(document.querySelector('#board').dataset.zoom) > 1.5, null, 'zoom > 1.5');
    const zoom = await zoomOf();
    const zoomText = await page.locator('#zoom').innerText();
    assert.equal(zoomText.trim(), `${Math.round(zoom * 100)}%`, '#zoom shows the zoom');
    await waitForStroke(alice, { selector: CANVAS, points: [beyond, at(0.5, 0.5)], color: RED });

    // Space + drag pans: the stroke follows the pointer down by 100 px.
    await page.keyboard.down('Space');
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.down();
    await page.mouse.move(centre.x, centre.y + 100, { steps: 8 });
    await page.mouse.up();
    await page.keyboard.up('Space');
    const moved = { x: at(0.5, 0.5).x, y: at(0.5, 0.5).y + 100 };
    await waitForStroke(alice, { selector: CANVAS, points: [moved], color: RED });
    await waitForGone(alice, { points: [at(0.5, 0.5)], color: RED });
    assert.equal(await page.evaluate(() => document.body.dataset.elements), '1', 'panning drew nothing');

    // The zoom button puts the view back: the stroke is where it was drawn.
    await page.locator('#zoom').click();
    await alice.waitFor(() => document.querySelector('#board').dataset.zoom === '1', null, 'zoom back to 1');
    await waitForStroke(alice, { selector: CANVAS, points: [at(0.5, 0.5), at(0.65, 0.5)], color: RED });
    const [px] = await readPixels(page, CANVAS, [beyond]);
    assert.ok(!(px[0] > 200 && px[1] < 90 && px[2] < 90), `beyond the stroke is blank again (${px})`);
    alice.assertHealthy();
  });
});

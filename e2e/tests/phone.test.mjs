// On a phone-sized screen (390x844, touch only) every tool is on screen and can be tapped, a
// finger draws, two fingers pinch-zoom about their midpoint, and undo works; a desktop peer sees
// the same drawing. Touches go in through the DevTools protocol (`Input.dispatchTouchEvent`), so
// the page gets real touch pointer events, as from a finger. The final screenshot is the
// README's phone picture (docs/phone.png, or $DRAWMESH_PHONE_SCREENSHOT).

import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { test } from 'node:test';
import { screenshotAll } from '../lib/browser.mjs';
import { canvasBox, waitForStroke } from '../lib/canvas.mjs';
import { artifactPath, repoPath } from '../lib/server.mjs';
import { CANVAS, inRoom, join, waitForElements, waitForGone, waitForPeers } from '../lib/drawmesh.mjs';

const PREFIX = 'phone';
const PHONE = { viewport: { width: 390, height: 844 }, context: { hasTouch: true, isMobile: true } };

/** A touch screen driven through the DevTools protocol; points are page CSS px. */
async function touchScreen(page) {
  const cdp = await page.context().newCDPSession(page);
  const send = (type, touchPoints) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints });
  return {
    /** One finger along `points`, with `steps` moves between each pair. */
    async drag(points, steps = 8) {
      const [first, ...rest] = points;
      await send('touchStart', [{ x: first.x, y: first.y, id: 1 }]);
      let at = first;
      for (const p of rest) {
        for (let i = 1; i <= steps; i++) {
          const x = at.x + ((p.x - at.x) * i) / steps;
          const y = at.y + ((p.y - at.y) * i) / steps;
          await send('touchMove', [{ x, y, id: 1 }]);
        }
        at = p;
      }
      await send('touchEnd', []);
    },
    /**
     * A finger's tap on `selector`, until `done` (a page function) holds. Headless Chromium's
     * touch emulation sometimes turns the first tap after a one-finger drag into pointer events
     * without a click (seen on a bare page with a bare canvas too, so not the app's doing); a tap
     * that changed nothing in 2 s is tapped again, at most 3 times. `done` must be false before
     * the tap, so a tap that did land is never repeated.
     */
    async tapUntil(selector, done, what) {
      const holds = () => page.evaluate(typeof done === 'string' ? `Boolean(${done})` : done);
      assert.equal(await holds(), false, `before tapping ${selector}: ${what} already`);
      for (let attempt = 1; ; attempt++) {
        await page.tap(selector);
        try {
          await page.waitForFunction(done, null, { timeout: 2_000 });
          return;
        } catch (err) {
          if (attempt === 3) throw new Error(`tapped ${selector} 3 times, still not ${what}: ${err.message}`);
        }
      }
    },
    /** Two fingers about `centre`, from `from` px apart to `to` px apart, horizontally. */
    async pinch(centre, from, to, steps = 10) {
      const fingers = (d) => [
        { x: centre.x - d / 2, y: centre.y, id: 1 },
        { x: centre.x + d / 2, y: centre.y, id: 2 },
      ];
      await send('touchStart', fingers(from));
      for (let i = 1; i <= steps; i++) await send('touchMove', fingers(from + ((to - from) * i) / steps));
      await send('touchEnd', []);
    },
  };
}

/** Whether the element is inside the viewport and is what a tap at its centre lands on. */
function reachableInPage(selector) {
  const el = document.querySelector(selector);
  if (!el) return `${selector}: missing`;
  const r = el.getBoundingClientRect();
  if (r.width < 1 || r.height < 1) return `${selector}: no size`;
  if (r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight) {
    return `${selector}: off screen at ${Math.round(r.left)},${Math.round(r.top)}-${Math.round(r.right)},${Math.round(r.bottom)}`;
  }
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  if (!hit || !(el === hit || el.contains(hit))) return `${selector}: covered by ${hit?.outerHTML.slice(0, 60)}`;
  return null;
}

test('on a phone, every tool is reachable, a finger draws, two pinch-zoom, undo works', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ room, browser, users }) => {
    const phone = await join(t, browser, room, 'phoebe', { prefix: PREFIX, users, ...PHONE });
    const desk = await join(t, browser, room, 'desmond', { prefix: PREFIX, users, viewport: { width: 1024, height: 700 } });
    await waitForPeers(phone, 1);
    const { page } = phone;

    // Every control of the menubar is on screen and on top where a finger would tap it.
    const controls = await page.$$eval('.menubar button, .menubar input, .menubar a', (els) =>
      els.map((el) => (el.id ? `#${el.id}` : el.dataset.tool ? `[data-tool="${el.dataset.tool}"]` : el.dataset.color ? `[data-color="${el.dataset.color}"]` : `.${el.className.split(' ').join('.')}`)),
    );
    assert.ok(controls.length >= 20, `the menubar's controls: ${controls.join(' ')}`);
    for (const selector of controls) {
      assert.equal(await page.evaluate(reachableInPage, selector), null);
    }

    const touch = await touchScreen(page);
    const box = await canvasBox(page, CANVAS);
    const at = (fx, fy) => ({ x: Math.round(box.width * fx), y: Math.round(box.height * fy) });
    const onPage = (p) => ({ x: box.x + p.x, y: box.y + p.y });

    // A stroke with a finger, in a swatch tapped (red, or blue if red was ours already): across
    // the middle, x from 0.3 to 0.7 of the canvas.
    const mine = await page.evaluate(() => document.querySelector('#current-color').dataset.color);
    const ink = mine === '#e03131' ? '#1971c2' : '#e03131';
    await touch.tapUntil(
      `[data-color="${ink}"]`,
      `document.querySelector('#current-color').dataset.color === '${ink}'`,
      `${ink} chosen`,
    );
    await touch.drag([at(0.3, 0.5), at(0.7, 0.5)].map(onPage));
    await waitForElements(phone, 1);
    await waitForElements(desk, 1);
    await waitForStroke(phone, { selector: CANVAS, points: [at(0.35, 0.5), at(0.5, 0.5), at(0.65, 0.5)], color: ink });

    // The rectangle tool, tapped, then a rectangle dragged with a finger.
    await touch.tapUntil('[data-tool="rect"]', () => document.querySelector('[data-tool="rect"]').classList.contains('active'), 'the rectangle tool active');
    await touch.drag([at(0.2, 0.65), at(0.8, 0.8)].map(onPage));
    await waitForElements(phone, 2);
    await waitForElements(desk, 2);

    // Undo, tapped: the rectangle goes, here and on the desktop.
    await touch.tapUntil('#undo', () => document.body.dataset.elements === '1', 'undone');
    await waitForElements(desk, 1);

    // Two fingers spread about the stroke's left end: the view zooms about their midpoint, so the
    // left end stays put, the stroke's middle moves right by the zoom, and left of the fingers
    // stays blank (a zoom about the canvas's centre would have spread ink there).
    const left = at(0.3, 0.5);
    await touch.pinch(onPage(left), 60, 180);
    await phone.waitFor(() => Number(document.querySelector('#board').dataset.zoom) > 1.5, null, 'zoom > 1.5');
    const zoom = await page.evaluate(() => Number(document.querySelector('#board').dataset.zoom));
    assert.equal((await page.locator('#zoom').innerText()).trim(), `${Math.round(zoom * 100)}%`);
    const middle = at(0.5, 0.5);
    const movedTo = { x: Math.round(left.x + (middle.x - left.x) * zoom), y: middle.y };
    assert.ok(movedTo.x < box.width - 4, `the stroke's middle stays on screen at zoom ${zoom}`);
    await waitForStroke(phone, { selector: CANVAS, points: [movedTo, at(0.31, 0.5)], color: ink });
    await waitForGone(phone, { points: [at(0.2, 0.5), at(0.25, 0.5)], color: ink });
    assert.equal(await page.evaluate(() => document.body.dataset.elements), '1', 'pinching drew nothing');

    await screenshotAll([phone], `${PREFIX}-final`);
    copyFileSync(artifactPath(`${PREFIX}-final-phoebe.png`), repoPath(process.env.DRAWMESH_PHONE_SCREENSHOT || 'docs/phone.png'));
    for (const u of users) u.assertHealthy();
  });
});

// Palm rejection on a tablet: while a pen is down, the palm's touches neither draw nor pinch;
// and a pen takes over from a palm that landed first. Pen and touches go in through the DevTools
// protocol (`Input.dispatchMouseEvent` with pointerType "pen", `Input.dispatchTouchEvent`), so
// the page gets real pen and touch pointer events, interleaved as a writing hand makes them.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canvasBox, waitForStroke } from '../lib/canvas.mjs';
import { CANVAS, chooseCustomColor, inRoom, join, waitForElements, waitForGone } from '../lib/drawmesh.mjs';

const PREFIX = 'palm';
const INK = '#202020';

async function hand(page) {
  const cdp = await page.context().newCDPSession(page);
  const pen = (type, p, buttons = 1) =>
    cdp.send('Input.dispatchMouseEvent', {
      type,
      x: p.x,
      y: p.y,
      button: type === 'mouseMoved' && buttons === 0 ? 'none' : 'left',
      buttons,
      clickCount: type === 'mouseMoved' ? 0 : 1,
      pointerType: 'pen',
      force: 0.5,
    });
  const touch = (type, points) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: points.map((p, i) => ({ x: p.x, y: p.y, id: 10 + i })) });
  return { pen, touch };
}

const lerp = (a, b, t) => ({ x: a.x + (b.x - a.x) * t, y: a.y + (b.y - a.y) * t });

test('a palm on the screen neither draws nor zooms while the pen writes, and never blocks the pen', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ room, browser, users }) => {
    const tablet = await join(t, browser, room, 'tabitha', {
      prefix: PREFIX,
      users,
      viewport: { width: 1024, height: 768 },
      context: { hasTouch: true },
    });
    await chooseCustomColor(tablet, INK);
    const { page } = tablet;
    const box = await canvasBox(page, CANVAS);
    const at = (fx, fy) => ({ x: Math.round(box.width * fx), y: Math.round(box.height * fy) });
    const onPage = (p) => ({ x: box.x + p.x, y: box.y + p.y });
    const { pen, touch } = await hand(page);
    const zoom = () => page.evaluate(() => document.querySelector('#board').dataset.zoom);

    // 1. The pen goes down; the palm lands, drags, and a second part of it spreads (a pinch,
    // were it fingers); the pen writes on; then all lift.
    const [a, b] = [at(0.2, 0.3), at(0.5, 0.3)];
    const [palm1, palm2] = [at(0.6, 0.7), at(0.8, 0.8)];
    await pen('mousePressed', onPage(a));
    await touch('touchStart', [onPage(palm1)]);
    for (let i = 1; i <= 6; i++) {
      await pen('mouseMoved', onPage(lerp(a, b, i / 12)));
      await touch('touchMove', [onPage(lerp(palm1, palm2, i / 6))]);
    }
    await touch('touchStart', [onPage(palm2), onPage(at(0.9, 0.9))]);
    for (let i = 1; i <= 6; i++) {
      await touch('touchMove', [onPage(lerp(palm2, at(0.7, 0.75), i / 6)), onPage(lerp(at(0.9, 0.9), at(0.98, 0.98), i / 6))]);
      await pen('mouseMoved', onPage(lerp(a, b, 0.5 + i / 12)));
    }
    await pen('mouseReleased', onPage(b));
    await touch('touchEnd', []);

    await waitForElements(tablet, 1);
    await waitForStroke(tablet, { selector: CANVAS, points: [lerp(a, b, 0.1), lerp(a, b, 0.5), lerp(a, b, 0.9)], color: INK });
    await waitForGone(tablet, { points: [palm1, lerp(palm1, palm2, 0.5), palm2], color: INK });
    assert.equal(await zoom(), '1', 'the palm zoomed the view');

    // 2. The palm lands first, then the pen: the pen draws its whole line (the palm's touch,
    // cut short where the pen came, is at most a dot at the palm).
    const [c, d] = [at(0.2, 0.5), at(0.5, 0.5)];
    const palm = at(0.7, 0.6);
    await touch('touchStart', [onPage(palm)]);
    await pen('mousePressed', onPage(c));
    for (let i = 1; i <= 8; i++) {
      await pen('mouseMoved', onPage(lerp(c, d, i / 8)));
      await touch('touchMove', [onPage(lerp(palm, at(0.85, 0.65), i / 8))]);
    }
    await pen('mouseReleased', onPage(d));
    await touch('touchEnd', []);
    await waitForStroke(tablet, { selector: CANVAS, points: [lerp(c, d, 0.1), lerp(c, d, 0.5), lerp(c, d, 0.9)], color: INK });
    await waitForGone(tablet, { points: [lerp(palm, at(0.85, 0.65), 0.5), at(0.85, 0.65)], color: INK });
    assert.equal(await zoom(), '1');
    tablet.assertHealthy();
  });
});

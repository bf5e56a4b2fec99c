// Drawmesh's main promise, end to end: people who open the same room link draw together.
// Three browsers (alice, bob, carol) join one room through the real server, connect to each other
// over WebRTC data channels, and a stroke drawn in one appears on the others' canvases; when carol
// leaves, alice and bob see it and go on drawing together.
//
// Needs the built web client (dist/, or $DRAWMESH_DIST) and server binary
// (target/debug/drawmesh-server, or $DRAWMESH_SERVER_BIN). On success it writes
// docs/screenshot.png (or $DRAWMESH_SCREENSHOT): alice's and bob's browsers side by side, showing
// the same drawing.

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { test } from 'node:test';
import { launchBrowser, openUser, screenshotAll } from '../lib/browser.mjs';
import { canvasBox, dragStroke, parseColor, readPixels, waitForStroke } from '../lib/canvas.mjs';
import { newRoomUrl, repoPath, startServer } from '../lib/server.mjs';

const PREFIX = 'draw_together';
const VIEWPORT = { width: 800, height: 500 };
const CANVAS = '#board';

/** Waits until the app has started, is connected to the server and has `count` open peers. */
async function waitForPeers(user, count) {
  await user.waitFor(() => document.body.dataset.ready === 'true', null, 'body[data-ready="true"]');
  await user.waitFor(
    (n) => document.querySelector(`#peers[data-count="${n}"]`) !== null,
    count,
    `#peers[data-count="${count}"]`,
  );
  await user.waitFor(
    () => document.querySelector('#status')?.dataset.state === 'connected',
    null,
    '#status[data-state="connected"]',
  );
  const items = await user.page.locator('#peers li[data-peer-id]').count();
  assert.equal(items, count, `${user.name}: #peers lists ${count} li[data-peer-id]`);
}

/** The palette's colours in `user`'s page, and the active one. */
async function palette(user) {
  return user.page.evaluate(() => {
    const swatches = [...document.querySelectorAll('.swatch[data-color]')];
    return {
      colors: swatches.map((s) => s.dataset.color.toLowerCase()),
      active: swatches.find((s) => s.classList.contains('active'))?.dataset.color.toLowerCase() ?? null,
    };
  });
}

/**
 * The swatch, not in `avoid`, that stands out most on a light canvas: strong chroma and dark
 * enough (chroma × (1 − luma)), so neither grey, black, nor a pale yellow.
 */
function distinctiveColor(colors, avoid) {
  const score = (hex) => {
    const [r, g, b] = parseColor(hex);
    const chroma = (Math.max(r, g, b) - Math.min(r, g, b)) / 255;
    const luma = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    return chroma * (1 - luma);
  };
  const candidates = colors.filter((c) => !avoid.includes(c));
  assert.ok(candidates.length > 0, `no swatch left to pick among ${colors} avoiding ${avoid}`);
  return candidates.reduce((best, c) => (score(c) > score(best) ? c : best));
}

/** Clicks the swatch of `color` and waits until it is the active one. */
async function chooseColor(user, color) {
  await user.page.locator(`.swatch[data-color="${color}" i]`).first().click();
  await user.waitFor(
    (c) => document.querySelector('.swatch.active')?.dataset.color.toLowerCase() === c,
    color,
    `swatch ${color} to become active`,
  );
}

/**
 * Asserts the canvas is still blank at `points`: each pixel is as it was before any stroke, or
 * plain background (transparent, or near white if the client paints a background), and in no
 * case near one of the stroke colours.
 */
async function assertBlank(user, points, before, strokeColors) {
  const now = await readPixels(user.page, CANVAS, points);
  now.forEach((px, i) => {
    const unchanged = px.every((v, c) => Math.abs(v - before[i][c]) <= 2);
    const background = px[3] === 0 || px.slice(0, 3).every((v) => v >= 230);
    assert.ok(unchanged || background, `${user.name}: pixel at ${JSON.stringify(points[i])} is ${px}, was ${before[i]}`);
    for (const color of strokeColors) {
      const rgb = parseColor(color);
      const near = px[3] > 0 && rgb.every((v, c) => Math.abs(v - px[c]) <= 48);
      assert.ok(!near, `${user.name}: pixel at ${JSON.stringify(points[i])} is ${px}, the stroke colour ${color}`);
    }
  });
}

/** Points at fractions of the canvas's CSS size. */
function at(box, fx, fy) {
  return { x: Math.round(box.width * fx), y: Math.round(box.height * fy) };
}

test('three browsers in one room draw together', { timeout: 180_000 }, async (t) => {
  const server = await startServer(t, { name: PREFIX });
  const room = await newRoomUrl(server.url);
  const browser = await launchBrowser(t);

  const users = []; // each writes its console log to e2e/artifacts/ when its context closes
  try {
    const open = async (name) => {
      const user = await openUser(t, browser, `${room}?name=${name}`, { name, logPrefix: PREFIX, viewport: VIEWPORT });
      users.push(user);
      return user;
    };
    const alice = await open('alice');
    const bob = await open('bob');
    const carol = await open('carol');

    // Everybody connects to everybody: a full mesh of open data channels.
    for (const user of users) await waitForPeers(user, 2);
    for (const user of users) {
      const shown = await user.page.evaluate(() => {
        const el = document.querySelector('#username');
        return el ? el.value || el.textContent : null;
      });
      assert.ok(shown?.includes(user.name), `${user.name}: #username shows the ?name= (got ${JSON.stringify(shown)})`);
    }

    const box = await canvasBox(alice.page, CANVAS);
    // Far from both strokes: must stay as it was.
    const far = [at(box, 0.9, 0.9)];
    const before = {};
    for (const user of users) before[user.name] = await readPixels(user.page, CANVAS, far);

    // 1. Alice picks a distinctive colour and draws an L-shaped stroke.
    const { colors, active } = await palette(alice);
    assert.ok(colors.length >= 2, `the palette offers colours (got ${colors})`);
    const first = distinctiveColor(colors, [active].filter(Boolean));
    await chooseColor(alice, first);
    await dragStroke(alice.page, [at(box, 0.2, 0.45), at(box, 0.6, 0.45), at(box, 0.6, 0.8)], { selector: CANVAS });
    // Points on the stroke's centre line, away from its ends and corner.
    const firstPoints = [at(box, 0.3, 0.45), at(box, 0.4, 0.45), at(box, 0.5, 0.45), at(box, 0.6, 0.62)];
    await waitForStroke(alice, { selector: CANVAS, points: firstPoints, color: first });
    await waitForStroke(bob, { selector: CANVAS, points: firstPoints, color: first });
    await waitForStroke(carol, { selector: CANVAS, points: firstPoints, color: first });
    for (const user of [bob, carol]) await assertBlank(user, far, before[user.name], [first]);

    // 2. Carol leaves; alice and bob see one peer left.
    await carol.close();
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);

    // 3. Bob draws in another colour; alice paints it.
    const second = distinctiveColor((await palette(bob)).colors, [first]);
    await chooseColor(bob, second);
    await dragStroke(bob.page, [at(box, 0.15, 0.3), at(box, 0.75, 0.3)], { selector: CANVAS });
    const secondPoints = [at(box, 0.25, 0.3), at(box, 0.45, 0.3), at(box, 0.65, 0.3)];
    await waitForStroke(bob, { selector: CANVAS, points: secondPoints, color: second });
    await waitForStroke(alice, { selector: CANVAS, points: secondPoints, color: second });
    // Both still show alice's stroke, and nothing far away.
    await waitForStroke(alice, { selector: CANVAS, points: firstPoints, color: first, timeout: 1_000 });
    await waitForStroke(bob, { selector: CANVAS, points: firstPoints, color: first, timeout: 1_000 });
    for (const user of [alice, bob]) await assertBlank(user, far, before[user.name], [first, second]);

    for (const user of users) user.assertHealthy();

    // Passed: the picture for the README.
    await writeScreenshot(browser, [alice, bob], repoPath(process.env.DRAWMESH_SCREENSHOT || 'docs/screenshot.png'));
  } catch (err) {
    await screenshotAll(users, PREFIX);
    throw err;
  }
});

/** Puts the users' pages side by side under a caption bar, into one PNG at `path`. */
async function writeScreenshot(browser, users, path) {
  const shots = [];
  for (const user of users) {
    const png = await user.page.screenshot({ type: 'png' });
    shots.push({ name: user.name, src: `data:image/png;base64,${png.toString('base64')}` });
  }
  const gap = 16;
  const width = VIEWPORT.width * shots.length + gap * (shots.length + 1);
  const context = await browser.newContext({ viewport: { width, height: 600 }, deviceScaleFactor: 1 });
  try {
    const page = await context.newPage();
    const figures = shots
      .map(
        (s) => `<figure><img src="${s.src}" width="${VIEWPORT.width}" height="${VIEWPORT.height}">` +
          `<figcaption>${s.name}</figcaption></figure>`,
      )
      .join('');
    await page.setContent(`<!DOCTYPE html><html><head><style>
      body { margin: 0; background: #e9ecef; font: 15px system-ui, sans-serif; color: #212529; }
      header { background: #212529; color: #f8f9fa; padding: 10px ${gap}px; font-weight: 600; }
      main { display: flex; gap: ${gap}px; padding: ${gap}px; }
      figure { margin: 0; }
      img { display: block; border: 1px solid #adb5bd; box-shadow: 0 2px 6px rgba(0,0,0,.15); }
      figcaption { padding-top: 6px; text-align: center; }
    </style></head><body>
      <header>Two browsers, one room</header><main>${figures}</main>
    </body></html>`);
    await page.waitForFunction(() => [...document.images].every((i) => i.complete && i.naturalWidth > 0));
    mkdirSync(dirname(path), { recursive: true });
    await page.screenshot({ path, fullPage: true });
  } finally {
    await context.close();
  }
}

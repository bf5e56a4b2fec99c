// Drawmesh's page contract, for the end-to-end tests: joining a room, waiting for peers and for
// the document's element count, picking tools, colours and widths, undo/redo, exports, and reading
// regions of the canvas.
//
// Everything waits on DOM state (page.waitForFunction through User.waitFor), never on fixed sleeps.
//
// The DOM it relies on: #board, #status[data-state], #peers[data-count] > li[data-peer-id],
// body[data-ready], body[data-elements], body[data-ops], [data-tool].active, input#color-custom,
// input#width, #undo, #redo, #clear + dialog#clear-dialog, #export-png, #export-svg,
// input#text-input, #cursors .cursor[data-peer-id] .cursor-name, #zoom, #board[data-zoom],
// #storage-warning[data-state][data-task], body[data-storage-persisted] (the saved drawing itself
// is read from IndexedDB by lib/storage.mjs).

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { launchBrowser, openUser, screenshotAll, WAIT_MS } from './browser.mjs';
import { parseColor, readPixels } from './canvas.mjs';
import { newRoomUrl, startServer } from './server.mjs';

export const CANVAS = '#board';
export const TOOLS = ['pen', 'eraser', 'line', 'rect', 'ellipse', 'text'];

/** The room id of a room URL (its path without the slash). */
export function roomIdOf(url) {
  return new URL(url).pathname.replace(/^\//, '');
}

/**
 * Opens `room?name=<name>` (plus `&query`, e.g. 'ice=relay') for a new user and waits for the
 * app to start. `beforeLoad(page)` runs before navigation (see openInContext); `context` adds
 * browser-context options (`{ hasTouch: true, isMobile: true }`: a phone).
 */
export async function join(t, browser, room, name, { prefix, viewport = { width: 800, height: 500 }, users, query, beforeLoad, context } = {}) {
  const url = `${room}?name=${encodeURIComponent(name)}${query ? `&${query}` : ''}`;
  const user = await openUser(t, browser, url, {
    name,
    logPrefix: prefix,
    viewport,
    beforeLoad,
    context,
  });
  users?.push(user);
  await waitForReady(user);
  return user;
}

/** Waits for body[data-ready="true"], #status connected and the document's counters. */
export async function waitForReady(user) {
  await user.waitFor(() => document.body.dataset.ready === 'true', null, 'body[data-ready="true"]');
  await user.waitFor(
    () => document.querySelector('#status')?.dataset.state === 'connected',
    null,
    '#status[data-state="connected"]',
  );
  await user.waitFor(
    () => document.body.dataset.elements !== undefined,
    null,
    'body[data-elements] (the document\'s element count)',
  );
}

/** Waits until `user` has `count` peers (#peers[data-count] and as many li[data-peer-id]). */
export async function waitForPeers(user, count, timeout = WAIT_MS) {
  await user.waitFor(
    (n) =>
      document.querySelector(`#peers[data-count="${n}"]`) !== null &&
      document.querySelectorAll('#peers li[data-peer-id]').length === n,
    count,
    `#peers[data-count="${count}"] with ${count} li[data-peer-id]`,
    timeout,
  );
}

/** The peer ids `user` lists in #peers. */
export async function peerIds(user) {
  return user.page.$$eval('#peers li[data-peer-id]', (items) => items.map((li) => li.dataset.peerId));
}

/** body[data-elements] as a number. */
export async function elementCount(user) {
  return user.page.evaluate(() => Number(document.body.dataset.elements));
}

/** Waits until body[data-elements] is `count`; the failure names the count seen. */
export async function waitForElements(user, count, timeout = WAIT_MS) {
  try {
    await user.waitFor((n) => document.body.dataset.elements === String(n), count, `body[data-elements="${count}"]`, timeout);
  } catch (err) {
    const seen = await user.page
      .evaluate(() => `data-elements=${document.body.dataset.elements}, data-ops=${document.body.dataset.ops}`)
      .catch(() => '(page unreadable)');
    throw new Error(`${err.message}\n${user.name} shows ${seen}`);
  }
}

/** Resolves after the page has painted two more animation frames (what is queued is on screen). */
export async function nextFrames(user) {
  await user.page.evaluate(
    () => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => done()))),
  );
}

/** Clicks [data-tool=tool] and waits until it is the active one. */
export async function chooseTool(user, tool) {
  await user.page.locator(`[data-tool="${tool}"]`).click();
  await user.waitFor(
    (name) => document.querySelector(`[data-tool="${name}"]`)?.classList.contains('active'),
    tool,
    `[data-tool="${tool}"] to become active`,
  );
}

/** Sets the custom colour (input#color-custom) to `hex` ('#rrggbb'). */
export async function chooseCustomColor(user, hex) {
  await user.page.locator('input#color-custom').fill(hex.toLowerCase());
  await user.waitFor(
    (c) => document.querySelector('input#color-custom')?.value.toLowerCase() === c,
    hex.toLowerCase(),
    `input#color-custom to hold ${hex}`,
  );
}

/** Clicks the swatch of `color` and waits until it is the active one. */
export async function chooseSwatch(user, color) {
  await user.page.locator(`.swatch[data-color="${color}" i]`).first().click();
  await user.waitFor(
    (c) => document.querySelector('.swatch.active')?.dataset.color.toLowerCase() === c,
    color.toLowerCase(),
    `swatch ${color} to become active`,
  );
}

/** The palette's colours (lower-case '#rrggbb'). */
export async function swatchColors(user) {
  return user.page.$$eval('.swatch[data-color]', (s) => s.map((e) => e.dataset.color.toLowerCase()));
}

/** Sets the stroke width (input#width, a range 1 to 32). */
export async function setWidth(user, width) {
  await user.page.locator('input#width').fill(String(width));
  await user.waitFor(
    (w) => document.querySelector('input#width')?.value === String(w),
    width,
    `input#width to be ${width}`,
  );
}

/** Takes keyboard focus away from inputs, so shortcuts go to the app and not to a field. */
export async function focusPage(user) {
  await user.page.evaluate(() => {
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
  });
}

/**
 * Clicks the `#export-png` (or `#export-svg`) button and returns the download:
 * { filename, buffer }.
 */
export async function exportFile(user, button = '#export-png') {
  const [download] = await Promise.all([
    user.page.waitForEvent('download', { timeout: WAIT_MS }),
    user.page.locator(button).click(),
  ]);
  const failure = await download.failure();
  assert.equal(failure, null, `${user.name}: the ${button} download failed: ${failure}`);
  const path = await download.path();
  return { filename: download.suggestedFilename(), buffer: await readFile(path) };
}

/** In-page: true when no pixel within `radius` of any point is near `rgb` (the stroke is gone). */
export function strokeGoneInPage({ selector, points, rgb, tolerance, radius }) {
  const canvas = document.querySelector(selector);
  if (!canvas || !canvas.width || !canvas.height) return false;
  const ctx = canvas.getContext('2d');
  const rect = canvas.getBoundingClientRect();
  const sx = canvas.width / rect.width;
  const sy = canvas.height / rect.height;
  return points.every(({ x, y }) => {
    const r = Math.max(1, Math.round(radius * sx));
    const data = ctx.getImageData(Math.round(x * sx) - r, Math.round(y * sy) - r, 2 * r + 1, 2 * r + 1).data;
    for (let i = 0; i < data.length; i += 4) {
      if (
        data[i + 3] >= 100 &&
        Math.abs(data[i] - rgb[0]) <= tolerance &&
        Math.abs(data[i + 1] - rgb[1]) <= tolerance &&
        Math.abs(data[i + 2] - rgb[2]) <= tolerance
      ) {
        return false;
      }
    }
    return true;
  });
}

/** Waits until no pixel near `points` has `color` on `user`'s canvas. */
export async function waitForGone(user, { selector = CANVAS, points, color, tolerance = 48, radius = 2, timeout }) {
  const rgb = typeof color === 'string' ? parseColor(color) : color;
  try {
    await user.waitFor(strokeGoneInPage, { selector, points, rgb, tolerance, radius }, `the ${color} stroke to be gone from its canvas`, timeout);
  } catch (err) {
    const seen = await readPixels(user.page, selector, points).catch((e) => `(unreadable: ${e.message})`);
    throw new Error(`${err.message}\nat ${JSON.stringify(points)}, pixels seen: ${JSON.stringify(seen)}`);
  }
}

/**
 * In-page: how many pixels in the rectangle {x, y, w, h} (CSS px from the canvas's corner) are
 * near `rgb`. With `min`, a predicate for waitForFunction: the count once it is >= min, else false.
 */
export function countInRegionInPage({ selector, region, rgb, tolerance, min }) {
  const canvas = document.querySelector(selector);
  let n = 0;
  if (canvas && canvas.width && canvas.height) {
    const ctx = canvas.getContext('2d');
    const rect = canvas.getBoundingClientRect();
    const sx = canvas.width / rect.width;
    const sy = canvas.height / rect.height;
    const x = Math.max(0, Math.round(region.x * sx));
    const y = Math.max(0, Math.round(region.y * sy));
    const w = Math.min(canvas.width - x, Math.round(region.w * sx));
    const h = Math.min(canvas.height - y, Math.round(region.h * sy));
    if (w > 0 && h > 0) {
      const data = ctx.getImageData(x, y, w, h).data;
      for (let i = 0; i < data.length; i += 4) {
        if (
          data[i + 3] >= 200 &&
          Math.abs(data[i] - rgb[0]) <= tolerance &&
          Math.abs(data[i + 1] - rgb[1]) <= tolerance &&
          Math.abs(data[i + 2] - rgb[2]) <= tolerance
        ) {
          n++;
        }
      }
    }
  }
  if (min === undefined || min === null) return n;
  return n >= min ? n : false;
}

/** How many pixels of `color` are in `region` of `user`'s canvas now. */
export async function colorInRegion(user, { selector = CANVAS, region, color, tolerance = 24 }) {
  const rgb = typeof color === 'string' ? parseColor(color) : color;
  return user.page.evaluate(countInRegionInPage, { selector, region, rgb, tolerance, min: null });
}

/** Waits until at least `min` pixels of `color` are in `region` of `user`'s canvas. */
export async function waitForColorInRegion(user, { selector = CANVAS, region, color, min, tolerance = 24, what, timeout }) {
  const rgb = typeof color === 'string' ? parseColor(color) : color;
  try {
    return await user.waitFor(
      countInRegionInPage,
      { selector, region, rgb, tolerance, min },
      `${what ?? 'pixels'}: >= ${min} pixels of ${color} in ${JSON.stringify(region)}`,
      timeout,
    );
  } catch (err) {
    const seen = await colorInRegion(user, { selector, region, color, tolerance }).catch(() => '?');
    throw new Error(`${err.message}\n(${seen} such pixels there now)`);
  }
}

/**
 * Runs `body({ server, room, browser, users })` in a new room of a fresh server (started with
 * `args` and `env`, see startServer) with one browser; `users` is where `join` collects the
 * pages it opens. On failure each page's screenshot goes to e2e/artifacts/ before the error is
 * rethrown.
 */
export async function inRoom(t, { prefix, args, env }, body) {
  const server = await startServer(t, { name: prefix, args, env });
  const room = await newRoomUrl(server.url);
  const browser = await launchBrowser(t);
  const users = [];
  try {
    await body({ server, room, browser, users });
  } catch (err) {
    await screenshotAll(users, prefix);
    throw err;
  }
}

// The drawing kept in IndexedDB (client/src/storage.rs), in the real browser:
//   - a 50 MB drawing is restored on reload, compacted by the app into one record, and restored
//     again from what the app wrote;
//   - a drawing in the old localStorage format is moved to IndexedDB on load (and, when the move
//     fails, stays in localStorage and is shown all the same);
//   - a save the browser refuses (a tiny quota, set through the DevTools protocol) shows a
//     warning over the canvas, loses nothing, and the warning goes once a save works again;
//   - persistent storage is asked for, and the answer is on body[data-storage-persisted].

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WAIT_MS } from '../lib/browser.mjs';
import { canvasBox, dragStroke, waitForStroke } from '../lib/canvas.mjs';
import { CANVAS, chooseSwatch, chooseTool, inRoom, join, roomIdOf, setWidth, waitForColorInRegion, waitForElements, waitForReady } from '../lib/drawmesh.mjs';
import { artifactPath } from '../lib/server.mjs';
import { injectSavedDrawing, legacyKey, readSaved, strokeOps, waitForSaved } from '../lib/storage.mjs';

const PREFIX = 'storage';
const VIEWPORT = { width: 800, height: 500 };
const COMPACT_AFTER_RECORDS = 16; // client/src/storage.rs

/** A horizontal stroke at fraction `fy` of the canvas height, and points on its centre line. */
function horizontal(box, fy) {
  const y = Math.round(box.height * fy);
  return {
    drag: [{ x: Math.round(box.width * 0.15), y }, { x: Math.round(box.width * 0.75), y }],
    check: [0.25, 0.4, 0.55, 0.7].map((f) => ({ x: Math.round(box.width * f), y })),
  };
}

/** Reloads `user`'s page; resolves to the ms from the reload until body[data-elements="count"]. */
async function reloadUntil(user, count, timeout) {
  const started = Date.now();
  await user.page.reload({ waitUntil: 'load', timeout: WAIT_MS });
  await waitForElements(user, count, timeout);
  return Date.now() - started;
}

/** The storage warning's state, text and box. */
async function warning(user) {
  return user.page.evaluate(() => {
    const el = document.querySelector('#storage-warning');
    const r = el?.getBoundingClientRect();
    return el && { state: el.dataset.state, task: el.dataset.task ?? null, text: el.textContent, visible: !el.hidden && r.width > 0 && r.height > 0 };
  });
}

async function waitForWarning(user, state, task = null) {
  await user.waitFor(
    ([s, t]) => {
      const el = document.querySelector('#storage-warning');
      return el?.dataset.state === s && (t === null || el.dataset.task === t) && (s === 'ok') === el.hidden;
    },
    [state, task],
    `#storage-warning[data-state="${state}"]${task ? `[data-task="${task}"]` : ''}`,
  );
}

/**
 * Sets (bytes) or lifts (null) the quota of `user`'s origin, through the DevTools protocol. The
 * override lasts as long as the DevTools session that set it, so the session is kept open.
 */
async function overrideQuota(user, bytes) {
  user.cdp ??= await user.page.context().newCDPSession(user.page);
  const origin = new URL(user.page.url()).origin;
  await user.cdp.send('Storage.overrideQuotaForOrigin', bytes === null ? { origin } : { origin, quotaSize: bytes });
}

test('a 50 MB drawing is saved and restored', { timeout: 600_000 }, async (t) => {
  await inRoom(t, { prefix: `${PREFIX}-large` }, async ({ room, browser, users }) => {
    const roomId = roomIdOf(room);
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-large`, users, viewport: VIEWPORT });
    // 20,000 strokes of 100 points: about 50 MB of JSON, in more records than a load tolerates.
    const strokes = 20_000;
    const injected = await injectSavedDrawing(
      alice.page,
      roomId,
      { strokes, points: 100, width: VIEWPORT.width, height: VIEWPORT.height - 60, colors: ['#1971c2', '#2f9e44', '#868e96'], step: 12 },
      { records: COMPACT_AFTER_RECORDS * 2 },
    );
    assert.ok(injected.chars >= 50e6, `the injected drawing is ${injected.chars} characters`);
    t.diagnostic(`injected ${injected.ops} ops in ${injected.records} records, ${(injected.chars / 1e6).toFixed(1)} MB of JSON`);

    // Restored from the injected records.
    const first = await reloadUntil(alice, strokes, 180_000);
    t.diagnostic(`reload → ${strokes} elements from ${injected.records} records: ${first} ms`);

    // The app compacts them: one record, written by the app, with the whole drawing.
    const started = Date.now();
    const compacted = await waitForSaved(alice, roomId, { records: 1, timeout: 180_000 });
    const saved = await readSaved(alice, roomId);
    t.diagnostic(`compaction into 1 record seen after ${Date.now() - started} ms; it holds ${(saved.chars / 1e6).toFixed(1)} MB`);
    assert.equal(compacted.records, 1);
    assert.ok(saved.chars >= 50e6, `the app saved ${saved.chars} characters`);

    // Restored from what the app saved.
    const second = await reloadUntil(alice, strokes, 180_000);
    t.diagnostic(`reload → ${strokes} elements from the app's record: ${second} ms`);
    assert.equal((await readSaved(alice, roomId, { countOnly: true })).records, 1, 'nothing more to compact');
    alice.assertHealthy();
  });
});

/** Writes a small drawing in the old localStorage format (a base and a chunk) for `roomId`. */
async function writeLegacy(user, roomId, ops) {
  const half = Math.floor(ops.length / 2);
  await user.page.evaluate(
    ([key, base, chunk]) => {
      localStorage.setItem(key, base);
      localStorage.setItem(`${key}~0a1b2c3d~0`, chunk);
    },
    [legacyKey(roomId), JSON.stringify(ops.slice(0, half)), JSON.stringify(ops.slice(half))],
  );
}

async function legacyKeys(user, roomId) {
  return user.page.evaluate((key) => Object.keys(localStorage).filter((k) => k === key || k.startsWith(`${key}~`)), legacyKey(roomId));
}

const LEGACY_COLOR = '#e03131';
const legacyDrawing = () => strokeOps({ strokes: 6, points: 40, width: VIEWPORT.width, height: VIEWPORT.height - 60, colors: [LEGACY_COLOR], seed: 3, step: 30 });

test('a drawing in the old localStorage format moves to IndexedDB', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: `${PREFIX}-migrate` }, async ({ room, browser, users }) => {
    const roomId = roomIdOf(room);
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-migrate`, users, viewport: VIEWPORT });
    await writeLegacy(alice, roomId, legacyDrawing());
    assert.equal((await legacyKeys(alice, roomId)).length, 2);

    await alice.page.reload({ waitUntil: 'load' });
    await waitForReady(alice);
    await waitForElements(alice, 6);
    const box = await canvasBox(alice.page, CANVAS);
    await waitForColorInRegion(alice, { region: { x: 0, y: 0, w: box.width, h: box.height }, color: LEGACY_COLOR, min: 200, what: 'the migrated strokes' });
    const saved = await waitForSaved(alice, roomId, { records: 2 });
    assert.equal(saved.records, 2, 'one record per localStorage key');
    assert.deepEqual(await legacyKeys(alice, roomId), [], 'gone from localStorage');
    assert.equal((await warning(alice)).state, 'ok');

    // And it stays: the next load finds it in IndexedDB alone.
    await reloadUntil(alice, 6);
    alice.assertHealthy();
  });
});

test('a failed move out of localStorage leaves it there and still shows the drawing', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: `${PREFIX}-migrate-fail` }, async ({ room, browser, users }) => {
    const roomId = roomIdOf(room);
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-migrate-fail`, users, viewport: VIEWPORT });
    await writeLegacy(alice, roomId, legacyDrawing());
    await overrideQuota(alice, 1);

    await alice.page.reload({ waitUntil: 'load' });
    await waitForReady(alice);
    await waitForElements(alice, 6);
    await waitForWarning(alice, 'error', 'load');
    assert.equal((await legacyKeys(alice, roomId)).length, 2, 'localStorage untouched');
    assert.deepEqual(await readSaved(alice, roomId, { countOnly: true }), { records: 0, chars: null, text: null });

    // With room again, the next load moves it.
    await overrideQuota(alice, null);
    await reloadUntil(alice, 6);
    await waitForSaved(alice, roomId, { records: 2 });
    assert.deepEqual(await legacyKeys(alice, roomId), []);
    alice.assertHealthy();
  });
});

test('a save the browser refuses is shown, loses nothing, and clears once saving works', { timeout: 120_000 }, async (t) => {
  await inRoom(t, { prefix: `${PREFIX}-quota` }, async ({ room, browser, users }) => {
    const roomId = roomIdOf(room);
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-quota`, users, viewport: VIEWPORT });
    await chooseTool(alice, 'pen');
    await setWidth(alice, 6);
    const box = await canvasBox(alice.page, CANVAS);
    assert.equal((await warning(alice)).state, 'ok');

    await overrideQuota(alice, 1);
    const first = horizontal(box, 0.3);
    await chooseSwatch(alice, '#e03131');
    await dragStroke(alice.page, first.drag, { selector: CANVAS });
    await waitForWarning(alice, 'error', 'save');
    const shown = await warning(alice);
    assert.ok(shown.visible, 'the warning is visible');
    assert.match(shown.text, /Could not save the drawing: browser storage is full/);
    assert.deepEqual(await canvasBox(alice.page, CANVAS), box, 'the canvas did not move');
    await waitForElements(alice, 1);
    await waitForStroke(alice, { selector: CANVAS, points: first.check, color: '#e03131' });
    await alice.page.screenshot({ path: artifactPath(`${PREFIX}-quota-warning.png`) });

    // Room again: the next save writes both strokes and the warning goes.
    await overrideQuota(alice, null);
    const second = horizontal(box, 0.6);
    await chooseSwatch(alice, '#1971c2');
    await dragStroke(alice.page, second.drag, { selector: CANVAS });
    await waitForWarning(alice, 'ok');
    await waitForSaved(alice, roomId);
    await reloadUntil(alice, 2);
    await waitForStroke(alice, { selector: CANVAS, points: first.check, color: '#e03131' });
    await waitForStroke(alice, { selector: CANVAS, points: second.check, color: '#1971c2' });
    alice.assertHealthy();
  });
});

test('persistent storage is asked for once there is a drawing', { timeout: 60_000 }, async (t) => {
  await inRoom(t, { prefix: `${PREFIX}-persist` }, async ({ room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: `${PREFIX}-persist`, users, viewport: VIEWPORT });
    const box = await canvasBox(alice.page, CANVAS);
    await dragStroke(alice.page, horizontal(box, 0.5).drag, { selector: CANVAS });
    const answer = await alice.waitFor(
      () => document.body.dataset.storagePersisted,
      null,
      'body[data-storage-persisted]',
    );
    assert.ok(['true', 'false'].includes(answer), `body[data-storage-persisted="${answer}"]`);
    t.diagnostic(`navigator.storage.persist() answered ${answer}`);
    alice.assertHealthy();
  });
});

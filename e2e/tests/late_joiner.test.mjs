// A late joiner gets the whole drawing: alice, alone in a new room, draws 200 strokes; bob joins
// afterwards, receives the document from her over the data channel, with an indicator of how much
// has arrived while it does, and both export the drawing as PNG: the two images are identical
// pixel for pixel.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { canvasBox, parseColor } from '../lib/canvas.mjs';
import {
  chooseSwatch,
  chooseTool,
  exportFile,
  inRoom,
  join,
  roomIdOf,
  setWidth,
  swatchColors,
  waitForElements,
  waitForPeers,
} from '../lib/drawmesh.mjs';
import { comparePixels, countColor, decodePng } from '../lib/png.mjs';
import { artifactPath } from '../lib/server.mjs';

const PREFIX = 'late_joiner';
const STROKES = 200;

/** A small deterministic generator, so a failing run can be replayed exactly. */
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('a late joiner receives all 200 strokes and exports the same PNG, pixel for pixel', { timeout: 240_000 }, async (t) => {
  await inRoom(t, { prefix: PREFIX }, async ({ server, room, browser, users }) => {
    const alice = await join(t, browser, room, 'alice', { prefix: PREFIX, users });
    await chooseTool(alice, 'pen');
    const colors = await swatchColors(alice);
    assert.ok(colors.length >= 4, `the palette offers several colours (got ${colors})`);
    const box = await canvasBox(alice.page, '#board');

    // 200 short strokes: 2 or 3 points each, one mouse event per point (each costs about a
    // frame: Chromium delivers mouse moves aligned with animation frames), changing colour every
    // few strokes and width every 50.
    const rnd = random(20240603);
    const used = new Set();
    const margin = 20;
    const started = Date.now();
    for (let i = 0; i < STROKES; i++) {
      if (i % 4 === 0) {
        const color = colors[(i / 4) % colors.length];
        await chooseSwatch(alice, color);
        used.add(color);
      }
      if (i % 50 === 0) await setWidth(alice, [3, 6, 10, 4][(i / 50) % 4]);
      let x = margin + rnd() * (box.width - 2 * margin);
      let y = margin + rnd() * (box.height - 2 * margin);
      const points = 2 + Math.floor(rnd() * 2);
      await alice.page.mouse.move(box.x + x, box.y + y);
      await alice.page.mouse.down();
      for (let k = 1; k < points; k++) {
        x = Math.min(box.width - margin, Math.max(margin, x + (rnd() - 0.5) * 100));
        y = Math.min(box.height - margin, Math.max(margin, y + (rnd() - 0.5) * 100));
        await alice.page.mouse.move(box.x + x, box.y + y);
      }
      await alice.page.mouse.up();
    }
    await waitForElements(alice, STROKES);
    t.diagnostic(`alice drew ${STROKES} strokes in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // Bob joins the room now and gets everything from alice. Every time his page shows the
    // "receiving the drawing" indicator (#arrival), what it says is kept.
    const joined = Date.now();
    const bob = await join(t, browser, room, 'bob', {
      prefix: PREFIX,
      users,
      beforeLoad: (page) =>
        page.addInitScript(() => {
          window.__arrivals = [];
          new MutationObserver(() => {
            const el = document.querySelector('#arrival');
            if (el && !el.hidden) {
              window.__arrivals.push({ text: el.textContent, arrived: Number(el.dataset.arrived), of: Number(el.dataset.of) });
            }
          }).observe(document, { subtree: true, attributes: true, childList: true, characterData: true });
        }),
    });
    await waitForPeers(alice, 1);
    await waitForPeers(bob, 1);
    await waitForElements(bob, STROKES, 60_000);
    const aliceOps = await alice.page.evaluate(() => document.body.dataset.ops);
    await bob.waitFor((n) => document.body.dataset.ops === n, aliceOps, `body[data-ops="${aliceOps}"] (alice's op count)`);
    // The indicator showed the drawing arriving, counted against all of alice's ops, and is gone
    // once everything is here.
    const arrivals = await bob.page.evaluate(() => window.__arrivals);
    assert.ok(arrivals.length > 0, 'bob was shown the drawing arriving');
    for (const a of arrivals) {
      assert.match(a.text, /^Receiving the drawing… \d+% \(\d+ of \d+\)$/);
      assert.ok(a.arrived <= a.of, JSON.stringify(a));
    }
    assert.ok(arrivals.some((a) => a.arrived < a.of), `seen part way: ${JSON.stringify(arrivals.slice(0, 3))}`);
    assert.ok(
      Math.max(...arrivals.map((a) => a.of)) >= Number(aliceOps) - 10,
      `counted against alice's ${aliceOps} ops: ${JSON.stringify(arrivals.slice(-3))}`,
    );
    await bob.waitFor(() => document.querySelector('#arrival').hidden, null, '#arrival hidden once everything arrived');
    t.diagnostic(`bob's arrival indicator: ${arrivals.length} readings, first ${JSON.stringify(arrivals[0])}`);
    t.diagnostic(`bob had all ${STROKES} strokes (${aliceOps} ops) ${((Date.now() - joined) / 1000).toFixed(1)} s after opening the room`);

    // Both export; the images must be identical.
    const roomId = roomIdOf(room);
    const exports = {};
    for (const user of [alice, bob]) {
      const file = await exportFile(user, '#export-png');
      assert.equal(file.filename, `drawmesh-${roomId}.png`, `${user.name}: the PNG download's file name`);
      writeFileSync(artifactPath(`${PREFIX}-${user.name}-export.png`), file.buffer);
      exports[user.name] = decodePng(file.buffer);
    }
    const a = exports.alice;
    const b = exports.bob;
    assert.ok(
      a.width === b.width && a.height === b.height,
      `the exports have the same size: alice ${a.width}x${a.height}, bob ${b.width}x${b.height}`,
    );
    const diff = comparePixels(a, b);
    assert.equal(
      diff.differing,
      0,
      `${diff.differing} of ${diff.total} pixels differ between alice's and bob's exports ` +
        `(first: ${JSON.stringify(diff.firstDiffs)}); see e2e/artifacts/${PREFIX}-*-export.png`,
    );

    // And the image is the drawing, not a blank page: every colour used is in it.
    const counts = [...used].map((c) => [c, countColor(a, parseColor(c), 8)]);
    const missing = counts.filter(([, n]) => n < 20);
    assert.deepEqual(missing, [], `the export shows strokes of every colour used (pixels per colour: ${JSON.stringify(counts)})`);
    t.diagnostic(`export ${a.width}x${a.height}, identical on both browsers`);

    for (const user of users) user.assertHealthy();
  });
});

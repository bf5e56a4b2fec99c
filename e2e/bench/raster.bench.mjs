// Raster benchmark (not part of `npm test`; run with `npm run bench:raster`): how long this
// Chromium, with the flags the tests use (e2e/lib/browser.mjs: headless, --disable-gpu, so 2D
// canvases are rasterized in software), takes to paint the late-join bench's drawing once, with
// no app at all. It is the floor under the late-join figure: whatever the client does, the
// drawing's pixels have to be made.
//
// The drawing is the late-join bench's shape: BENCH_STROKES (default 10000) random walks of
// BENCH_POINTS (default 50) points, steps up to 20 px, on a 1000 × 590 canvas. Each variant
// clears the canvas, records every stroke (the time of the calls), then reads one pixel through a
// 1 × 1 drawImage, which makes the browser rasterize what was recorded (the time of the raster).
// Variants: one path per stroke (what the client paints for a stroke at one pressure, see
// shared::geometry::stroke_pieces) or one path per segment (what it painted before), round, bevel
// or miter joins, and line widths 1 (a hairline, which Skia draws on a fast path), 1.75 (the
// late-join bench's strokes: base width 1 at full pressure) and 4.

import { readFileSync } from 'node:fs';
import { launchBrowser } from '../lib/browser.mjs';

const STROKES = Number(process.env.BENCH_STROKES || 10_000);
const POINTS = Number(process.env.BENCH_POINTS || 50);

/** In-page: paints the drawing in each variant; resolves to { name: { record, raster } } (ms). */
function paintInPage({ strokes: count, points: length, variants }) {
  const canvas = document.createElement('canvas');
  canvas.width = 1000;
  canvas.height = 590;
  document.body.append(canvas);
  const ctx = canvas.getContext('2d');
  const pixel = document.createElement('canvas').getContext('2d');
  let s = 7;
  const rnd = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const strokes = [];
  for (let i = 0; i < count; i++) {
    let x = 10 + rnd() * 980;
    let y = 10 + rnd() * 570;
    const points = [];
    for (let k = 0; k < length; k++) {
      points.push([Math.round(x), Math.round(y)]);
      x = Math.min(995, Math.max(5, x + (rnd() - 0.5) * 40));
      y = Math.min(585, Math.max(5, y + (rnd() - 0.5) * 40));
    }
    strokes.push(points);
  }
  const out = {};
  for (const { name, join, perSegment, width } of variants) {
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    pixel.drawImage(canvas, 0, 0, 1, 1);
    Object.assign(ctx, { lineCap: 'round', lineJoin: join, lineWidth: width, strokeStyle: '#1971c2' });
    const t0 = performance.now();
    for (const points of strokes) {
      if (perSegment) {
        for (let k = 1; k < points.length; k++) {
          ctx.beginPath();
          ctx.moveTo(...points[k - 1]);
          ctx.lineTo(...points[k]);
          ctx.stroke();
        }
      } else {
        ctx.beginPath();
        ctx.moveTo(...points[0]);
        for (let k = 1; k < points.length; k++) ctx.lineTo(...points[k]);
        ctx.stroke();
      }
    }
    const t1 = performance.now();
    pixel.drawImage(canvas, 0, 0, 1, 1);
    const t2 = performance.now();
    out[name] = { record: t1 - t0, raster: t2 - t1 };
  }
  return out;
}

async function main() {
  const variants = [
    { name: 'a path per stroke, round joins, width 1.75', join: 'round', perSegment: false, width: 1.75 },
    { name: 'a path per segment, round caps, width 1.75', join: 'round', perSegment: true, width: 1.75 },
    { name: 'a path per stroke, bevel joins, width 1.75', join: 'bevel', perSegment: false, width: 1.75 },
    { name: 'a path per stroke, miter joins, width 1.75', join: 'miter', perSegment: false, width: 1.75 },
    { name: 'a path per stroke, round joins, width 1 (hairline)', join: 'round', perSegment: false, width: 1 },
    { name: 'a path per stroke, round joins, width 4', join: 'round', perSegment: false, width: 4 },
  ];
  console.log(`machine: load average ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
  const browser = await launchBrowser(null);
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 650 } });
    await page.setContent('<!doctype html><body style="margin:0"></body>');
    const result = await page.evaluate(paintInPage, { strokes: STROKES, points: POINTS, variants });
    console.log(`${STROKES} strokes of ${POINTS} points (${STROKES * (POINTS - 1)} segments), painted once:`);
    for (const [name, { record, raster }] of Object.entries(result)) {
      console.log(`  ${name}: calls ${record.toFixed(1)} ms, raster ${raster.toFixed(1)} ms, together ${(record + raster).toFixed(1)} ms`);
    }
    console.log(`BENCH_JSON ${JSON.stringify({ bench: 'raster', strokes: STROKES, points: POINTS, result })}`);
  } finally {
    await browser.close().catch(() => {});
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

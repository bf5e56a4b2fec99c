// Reading a page's canvas and drawing on it with the mouse.
//
// Points are CSS pixels from the canvas's top-left corner. The backing store may be larger
// (devicePixelRatio); the in-page helpers scale by canvas.width / its CSS width.

/** '#rrggbb' or 'rgb(r, g, b)' (fractions allowed, as the tutorial's randomColor makes) → [r, g, b]. */
export function parseColor(text) {
  const hex = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(text.trim());
  if (hex) return hex.slice(1).map((h) => parseInt(h, 16));
  const rgb = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/i.exec(text.trim());
  if (rgb) return rgb.slice(1, 4).map((v) => Math.round(Number(v)));
  throw new Error(`not a colour: ${text}`);
}

/**
 * In-page predicate (for waitForFunction): every point has, within `radius` pixels, a pixel of
 * `rgb` (each channel within `tolerance`, alpha >= 200). Tolerates anti-aliasing at the edges of
 * a stroke while demanding its core be the exact colour.
 * Returns true, or false while some point is not painted yet.
 */
export function strokeVisibleInPage({ selector, points, rgb, tolerance, radius }) {
  const canvas = document.querySelector(selector);
  if (!canvas || !canvas.width || !canvas.height) return false;
  const ctx = canvas.getContext('2d');
  const rect = canvas.getBoundingClientRect();
  const sx = canvas.width / rect.width;
  const sy = canvas.height / rect.height;
  return points.every(({ x, y }) => {
    const cx = Math.round(x * sx);
    const cy = Math.round(y * sy);
    const r = Math.max(1, Math.round(radius * sx));
    const data = ctx.getImageData(cx - r, cy - r, 2 * r + 1, 2 * r + 1).data;
    for (let i = 0; i < data.length; i += 4) {
      if (
        data[i + 3] >= 200 &&
        Math.abs(data[i] - rgb[0]) <= tolerance &&
        Math.abs(data[i + 1] - rgb[1]) <= tolerance &&
        Math.abs(data[i + 2] - rgb[2]) <= tolerance
      ) {
        return true;
      }
    }
    return false;
  });
}

/** In-page: the RGBA pixel at each point (CSS px), for assertions and failure messages. */
export function pixelsInPage({ selector, points }) {
  const canvas = document.querySelector(selector);
  const ctx = canvas.getContext('2d');
  const rect = canvas.getBoundingClientRect();
  const sx = canvas.width / rect.width;
  const sy = canvas.height / rect.height;
  return points.map(({ x, y }) => Array.from(ctx.getImageData(Math.round(x * sx), Math.round(y * sy), 1, 1).data));
}

/** The pixels at `points` (CSS px from the canvas's corner) as [[r, g, b, a], ...]. */
export async function readPixels(page, selector, points) {
  return page.evaluate(pixelsInPage, { selector, points });
}

/**
 * Waits until `user`'s canvas shows a stroke of `color` through all `points`.
 * On timeout the error names the pixels actually seen.
 */
export async function waitForStroke(user, { selector = 'canvas', points, color, tolerance = 24, radius = 2, timeout }) {
  const rgb = typeof color === 'string' ? parseColor(color) : color;
  try {
    await user.waitFor(strokeVisibleInPage, { selector, points, rgb, tolerance, radius }, `a ${color} stroke on its canvas`, timeout);
  } catch (err) {
    const seen = await readPixels(user.page, selector, points).catch((e) => `(unreadable: ${e.message})`);
    throw new Error(`${err.message}\nwanted rgb(${rgb}) at ${JSON.stringify(points)}, centre pixels seen: ${JSON.stringify(seen)}`);
  }
}

/** The canvas's top-left corner and size in page CSS pixels. */
export async function canvasBox(page, selector = 'canvas') {
  const box = await page.locator(selector).first().boundingBox();
  if (!box) throw new Error(`${selector} is not visible`);
  return box;
}

/**
 * Drags the mouse through `points` (CSS px from the canvas's corner), pressing at the first and
 * releasing at the last, with intermediate moves so pointermove events fire along the way.
 */
export async function dragStroke(page, points, { selector = 'canvas', steps = 12 } = {}) {
  const box = await canvasBox(page, selector);
  const [first, ...rest] = points;
  await page.mouse.move(box.x + first.x, box.y + first.y);
  await page.mouse.down();
  for (const p of rest) {
    await page.mouse.move(box.x + p.x, box.y + p.y, { steps });
  }
  await page.mouse.up();
}

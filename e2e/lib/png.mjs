// A small PNG decoder (node's zlib, no dependencies) for comparing exported images and page
// screenshots pixel by pixel.
//
//   const { width, height, data } = decodePng(buffer);   // data: RGBA, 4 bytes per pixel
//
// Handles what Chromium writes (canvas.toBlob / toDataURL, page screenshots): 8-bit greyscale,
// grey+alpha, RGB, RGBA and palette images, non-interlaced, every filter type. Anything else
// throws, naming what it met.

import { inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

/** Decodes a PNG buffer into { width, height, data: Uint8Array (RGBA) }. */
export function decodePng(buffer) {
  const buf = Buffer.from(buffer);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) {
    throw new Error(`not a PNG (first bytes ${buf.subarray(0, 8).toString('hex')})`);
  }
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = 0;
  let interlace = 0;
  let palette = null;
  let transparency = null;
  const idat = [];
  for (let pos = 8; pos + 8 <= buf.length; ) {
    const length = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + length);
    pos += 12 + length;
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      bitDepth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === 'PLTE') {
      palette = body;
    } else if (type === 'tRNS') {
      transparency = body;
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      break;
    }
  }
  const channels = CHANNELS[colorType];
  if (!width || !height || !channels) throw new Error(`PNG header unsupported or missing (colour type ${colorType})`);
  if (bitDepth !== 8) throw new Error(`PNG bit depth ${bitDepth} is not supported (only 8)`);
  if (interlace !== 0) throw new Error('interlaced PNGs are not supported');

  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) {
    throw new Error(`PNG data too short: ${raw.length} bytes for ${width}x${height}x${channels}`);
  }
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : null;
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[i - channels] : 0;
      const b = prev ? prev[i] : 0;
      const c = prev && i >= channels ? prev[i - channels] : 0;
      let v = line[i];
      switch (filter) {
        case 0:
          break;
        case 1:
          v += a;
          break;
        case 2:
          v += b;
          break;
        case 3:
          v += (a + b) >> 1;
          break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a);
          const pb = Math.abs(p - b);
          const pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default:
          throw new Error(`PNG row ${y} has unknown filter ${filter}`);
      }
      out[i] = v & 0xff;
    }
  }

  const data = new Uint8Array(width * height * 4);
  for (let i = 0, j = 0; i < width * height; i++, j += channels) {
    let r;
    let g;
    let b;
    let alpha = 255;
    switch (colorType) {
      case 0:
        r = g = b = pixels[j];
        break;
      case 4:
        r = g = b = pixels[j];
        alpha = pixels[j + 1];
        break;
      case 2:
        [r, g, b] = [pixels[j], pixels[j + 1], pixels[j + 2]];
        break;
      case 6:
        [r, g, b, alpha] = [pixels[j], pixels[j + 1], pixels[j + 2], pixels[j + 3]];
        break;
      case 3: {
        const k = pixels[j];
        if (!palette || 3 * k + 2 >= palette.length) throw new Error(`PNG palette index ${k} out of range`);
        [r, g, b] = [palette[3 * k], palette[3 * k + 1], palette[3 * k + 2]];
        if (transparency && k < transparency.length) alpha = transparency[k];
        break;
      }
    }
    data[4 * i] = r;
    data[4 * i + 1] = g;
    data[4 * i + 2] = b;
    data[4 * i + 3] = alpha;
  }
  return { width, height, data };
}

/**
 * Compares two decoded images. Returns { sameSize, differing, total, firstDiffs } where
 * `differing` counts pixels whose RGBA differs in any channel, and `firstDiffs` lists the first
 * few as { x, y, a, b } for failure messages.
 */
export function comparePixels(a, b, keep = 5) {
  if (a.width !== b.width || a.height !== b.height) {
    return { sameSize: false, differing: NaN, total: a.width * a.height, firstDiffs: [] };
  }
  let differing = 0;
  const firstDiffs = [];
  for (let i = 0; i < a.data.length; i += 4) {
    if (
      a.data[i] !== b.data[i] ||
      a.data[i + 1] !== b.data[i + 1] ||
      a.data[i + 2] !== b.data[i + 2] ||
      a.data[i + 3] !== b.data[i + 3]
    ) {
      differing++;
      if (firstDiffs.length < keep) {
        const p = i / 4;
        firstDiffs.push({
          x: p % a.width,
          y: Math.floor(p / a.width),
          a: Array.from(a.data.subarray(i, i + 4)),
          b: Array.from(b.data.subarray(i, i + 4)),
        });
      }
    }
  }
  return { sameSize: true, differing, total: a.width * a.height, firstDiffs };
}

/** How many pixels of `image` are within `tolerance` of `rgb` (and mostly opaque). */
export function countColor(image, rgb, tolerance = 24) {
  let n = 0;
  for (let i = 0; i < image.data.length; i += 4) {
    if (
      image.data[i + 3] >= 200 &&
      Math.abs(image.data[i] - rgb[0]) <= tolerance &&
      Math.abs(image.data[i + 1] - rgb[1]) <= tolerance &&
      Math.abs(image.data[i + 2] - rgb[2]) <= tolerance
    ) {
      n++;
    }
  }
  return n;
}

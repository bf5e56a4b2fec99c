// Rendering benchmark (not part of `npm test`; run with `npm run bench`): one browser, a room whose
// saved document holds 20,000 finished strokes, then a new stroke drawn with many real pointer
// moves. Prints measured figures only:
//   - the number of strokes, and the load time (navigation to body[data-elements="20000"] and to
//     the first frame after it);
//   - the animation-frame intervals while drawing (median, p95, max);
//   - per pointermove: the time until the first frame whose drawing (the page's animation-frame
//     callbacks, the app's compositing included) leaves #board showing the new stroke's colour at
//     the pointer's position, and how many events were shown in the very next frame;
//   - main-thread tasks over 50 ms and IndexedDB saves while drawing (each save's `add` call on
//     the main thread, and the time until its transaction committed).
//
// The document is injected as the room's saved copy in IndexedDB (one record of the `records`
// store holding the JSON array of ops, as the client writes it, see client/src/storage.rs and
// e2e/lib/storage.mjs): the page is opened once (the app creates its database), the ops are
// generated and stored inside the page, and the page is reloaded; the load is timed from that
// reload (so the wasm comes from the HTTP cache: runs that timed a first visit, before the move to
// IndexedDB, read higher). The strokes are as compact as the format allows (one author named "b",
// 2 points each, pressure 1: 4.8 million characters for 20,000 strokes and their 20,000 `finish`
// ops), the size of drawing localStorage used to cap, so the other figures compare with earlier
// runs.
//
// Environment: BENCH_STROKES (default 20000), BENCH_POINTS (points per stroke, default 2),
// BENCH_MOVES (pointer moves of the new stroke, default 300), BENCH_PEERS (people drawing at once,
// default 1: the measured browser alone).
//
// With BENCH_PEERS = N > 1, N − 1 remote peers draw while the measured browser does. They stand for
// people on other machines, so they must not take this machine's cores from the measured page as
// N − 1 more app pages would: each is the end-to-end tests' scripted peer (e2e/lib/hostile.mjs, a
// page of plain JavaScript holding a real WebRTC connection to the measured page, with a
// certificate from the server) that sends, every 16 ms, what the app sends while a person draws:
// one `ops` message growing its stroke by a point (an `add`, 59 `extend`s of one point, a `finish`,
// and again), in the background colours, over the whole canvas.

import { launchBrowser, openInContext } from '../lib/browser.mjs';
import { canvasBox } from '../lib/canvas.mjs';
import { CANVAS, chooseSwatch, chooseTool, focusPage, roomIdOf, setWidth, waitForReady } from '../lib/drawmesh.mjs';
import { newRoomUrl, startServer } from '../lib/server.mjs';
import { Forger, joinHostile } from '../lib/hostile.mjs';
import { injectSavedDrawing } from '../lib/storage.mjs';

const STROKES = Number(process.env.BENCH_STROKES || 20_000);
const POINTS = Number(process.env.BENCH_POINTS || 2);
const MOVES = Number(process.env.BENCH_MOVES || 300);
const PEERS = Number(process.env.BENCH_PEERS || 1);
const VIEWPORT = { width: 1000, height: 650 };
const BACKGROUND_COLORS = ['#868e96', '#2f9e44', '#1971c2', '#f08c00', '#5f3dc4', '#0ca678'];
const NEW_STROKE = '#e03131'; // not among the background colours
function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { n: sorted.length, median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] };
}

const ms = (v) => `${v.toFixed(1)} ms`;

/** In-page instrumentation, installed before the app starts. */
function instrument() {
  const bench = {
    elementsAt: null, // performance.now() when body[data-elements] reached the target
    firstFrameAfterElements: null,
    target: null,
    recording: false,
    frames: [], // rAF timestamps (performance.now() at the callback) while recording
    events: [], // { t, x, y, coalesced, frame: index of the first frame showing it, shownAt }
    rgb: null,
    longTasks: [], // { start, duration } of main-thread tasks over 50 ms while recording
    saves: [], // { start, call, committed, ok, chars } of the app's IndexedDB saves while recording
    // The last frame in which the app drew ({ start, end }): the app asks for frames only while
    // it has something to draw, so once none follows, the picture is final (the repaint done).
    lastAppFrame: null,
  };
  window.__bench = bench;
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) if (bench.recording) bench.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask' });
  } catch {
    // no long-task timing in this browser
  }
  // A save is one `add` of a record on the records store; its transaction's end says when it
  // was stored.
  const add = IDBObjectStore.prototype.add;
  IDBObjectStore.prototype.add = function (value, key) {
    const start = performance.now();
    const request = add.call(this, value, key);
    if (bench.recording) {
      const save = { start, call: performance.now() - start, committed: null, ok: null, chars: String(value?.ops ?? '').length };
      bench.saves.push(save);
      const end = (ok) => () => {
        save.committed = performance.now() - start;
        save.ok = ok;
      };
      this.transaction.addEventListener('complete', end(true));
      this.transaction.addEventListener('abort', end(false));
    }
    return request;
  };
  new MutationObserver(() => {
    if (bench.elementsAt === null && bench.target !== null && document.body?.dataset.elements === String(bench.target)) {
      bench.elementsAt = performance.now();
      requestAnimationFrame(() => {
        bench.firstFrameAfterElements = performance.now();
      });
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-elements'] });

  const shown = (e) => {
    const canvas = document.querySelector('#board');
    const rect = canvas.getBoundingClientRect();
    const sx = canvas.width / rect.width;
    const d = canvas
      .getContext('2d')
      .getImageData(Math.round((e.x - rect.left) * sx), Math.round((e.y - rect.top) * sx), 1, 1).data;
    const yes = Math.abs(d[0] - bench.rgb[0]) <= 10 && Math.abs(d[1] - bench.rgb[1]) <= 10 && Math.abs(d[2] - bench.rgb[2]) <= 10;
    if (!yes && e.firstMiss === null) e.firstMiss = Array.from(d);
    return yes;
  };
  window.addEventListener(
    'pointermove',
    (e) => {
      if (!bench.recording || e.buttons !== 1) return;
      bench.events.push({
        t: performance.now(),
        input: e.timeStamp, // when the browser received the input (before any wait in the queue)
        x: e.clientX,
        y: e.clientY,
        coalesced: e.getCoalescedEvents ? e.getCoalescedEvents().length : 1,
        frame: null,
        shownAt: null,
        firstMiss: null, // the pixel seen the first time it was not shown yet
        buttons: e.buttons,
      });
    },
    { capture: true },
  );
  // Frames: the page's requestAnimationFrame is wrapped so that one native callback per frame
  // notes the frame's time, runs every callback the app registered for this frame (in order;
  // ones registered meanwhile wait for the next frame, as natively), and then, with the frame's
  // drawing done, checks which earlier pointer events #board shows.
  const nativeRaf = window.requestAnimationFrame.bind(window);
  let queue = new Map();
  let nextId = 1;
  window.requestAnimationFrame = (callback) => {
    const id = nextId++;
    queue.set(id, callback);
    return id;
  };
  window.cancelAnimationFrame = (id) => {
    queue.delete(id);
  };
  const frame = (timestamp) => {
    const now = performance.now();
    if (bench.recording) bench.frames.push(now);
    const callbacks = queue;
    queue = new Map();
    if (callbacks.size > 0) bench.lastAppFrame = { start: now, end: null };
    for (const callback of callbacks.values()) {
      try {
        callback(timestamp);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    if (callbacks.size > 0) bench.lastAppFrame.end = performance.now();
    if (bench.recording && bench.rgb) {
      const index = bench.frames.length - 1;
      const done = performance.now();
      for (const e of bench.events) {
        if (e.frame === null && e.t < now && shown(e)) {
          e.frame = index;
          e.shownAt = done;
        }
      }
    }
    nativeRaf(frame);
  };
  nativeRaf(frame);
}

/**
 * Joins `count` scripted peers to `room`, waits until each has a drawing channel open to `user`
 * and the sync `user` sends it has gone quiet, then starts them drawing. Resolves to
 * { stop(): Promise<number of ops messages sent> }.
 */
async function startRemoteDrawing(browser, server, room, user, count) {
  const forger = new Forger();
  const peers = [];
  for (let i = 0; i < count; i++) {
    const peer = await joinHostile(null, browser, server, room, { prefix: `remote${i}`, username: `remote${i}`, key: forger.key });
    const benchId = await peer.peerNamed('bench');
    await peer.waitForOpen(benchId);
    peers.push({ peer, benchId });
  }
  // The measured page syncs what it has to each newcomer; let that end before measuring.
  for (const { peer, benchId } of peers) {
    await peer.user.waitFor(
      (id) => {
        const p = window.__hostile.peers[id];
        const now = performance.now();
        if (p.received !== p.lastCount) Object.assign(p, { lastCount: p.received, lastAt: now });
        return now - p.lastAt > 1000;
      },
      benchId,
      'the sync from the measured page to go quiet',
      120_000,
    );
  }
  const started = Date.now();
  await Promise.all(
    peers.map(({ peer, benchId }, i) =>
      peer.page.evaluate(
        ({ to, colors, width, height, seed }) => {
          const h = window.__hostile;
          const author = h.me.id;
          const channel = h.peers[to].drawing;
          let s = seed >>> 0;
          const rnd = () => {
            s = (s * 1664525 + 1013904223) >>> 0;
            return s / 2 ** 32;
          };
          let seq = 0;
          let stroke = null; // { add: seq, points: n, x, y }
          h.sentOps = 0;
          h.timer = setInterval(() => {
            seq += 1;
            let op;
            if (stroke === null) {
              stroke = { add: seq, points: 1, x: 20 + rnd() * (width - 40), y: 20 + rnd() * (height - 40) };
              op = { add: { shape: { stroke: { points: [{ x: stroke.x, y: stroke.y, p: 0.5 }] } }, color: colors[seq % colors.length], width: 3 } };
            } else if (stroke.points < 60) {
              stroke.points += 1;
              stroke.x = Math.min(width - 5, Math.max(5, stroke.x + (rnd() - 0.5) * 16));
              stroke.y = Math.min(height - 5, Math.max(5, stroke.y + (rnd() - 0.5) * 16));
              op = { extend: { element: stroke.add, points: [{ x: stroke.x, y: stroke.y, p: 0.5 }] } };
            } else {
              op = { finish: { element: stroke.add } };
              stroke = null;
            }
            // Lamport times above the saved drawing's, so the strokes stack on top as a person's do.
            channel.send(JSON.stringify({ ops: { ops: [{ author, seq, lamport: 1_000_000 + seq, op }] } }));
            h.sentOps += 1;
          }, 16);
        },
        { to: benchId, colors: BACKGROUND_COLORS, width: VIEWPORT.width, height: VIEWPORT.height - 60, seed: 100 + i },
      ),
    ),
  );
  console.log(`remote peers: ${count} joined, synced and drawing (${Date.now() - started} ms to start them)`);
  return {
    async stop() {
      let sent = 0;
      for (const { peer } of peers) {
        sent += await peer.page.evaluate(() => {
          clearInterval(window.__hostile.timer);
          return window.__hostile.sentOps;
        });
      }
      return sent;
    },
  };
}

async function main() {
  const server = await startServer(null, { name: 'bench' });
  const browser = await launchBrowser(null);
  try {
    const room = await newRoomUrl(server.url);
    const roomId = roomIdOf(room);
    const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    await context.addInitScript(instrument);
    await context.addInitScript((target) => {
      window.__bench.target = target;
    }, STROKES);
    const user = await openInContext(null, context, `${room}?name=bench`, { name: 'bench', logPrefix: 'bench' });
    await waitForReady(user);
    const saved = await injectSavedDrawing(user.page, roomId, {
      strokes: STROKES,
      points: POINTS,
      width: VIEWPORT.width,
      height: VIEWPORT.height - 60,
      colors: BACKGROUND_COLORS,
    });
    console.log(`document: ${STROKES} strokes (${POINTS} points each), ${saved.ops} ops, saved copy ${(saved.chars / 1e6).toFixed(1)} MB of JSON`);
    await user.page.reload({ waitUntil: 'load' });
    await waitForReady(user);
    await user.waitFor((n) => document.body.dataset.elements === String(n), STROKES, `body[data-elements="${STROKES}"]`, 120_000);
    await user.waitFor(() => window.__bench.firstFrameAfterElements !== null, null, 'a frame after loading', 30_000);
    const load = await user.page.evaluate(() => ({
      elements: window.__bench.elementsAt,
      frame: window.__bench.firstFrameAfterElements,
      nav: performance.getEntriesByType('navigation')[0]?.domContentLoadedEventEnd ?? null,
    }));
    console.log(`load: ${STROKES} elements after ${ms(load.elements)} from navigation start; first frame after it at ${ms(load.frame)} (DOMContentLoaded ${load.nav === null ? '?' : ms(load.nav)})`);

    const remote = PEERS > 1 ? await startRemoteDrawing(browser, server, room, user, PEERS - 1) : null;

    // The new stroke: a slow spiral over the middle of the canvas, MOVES pointer moves.
    await chooseTool(user, 'pen');
    await chooseSwatch(user, NEW_STROKE);
    await setWidth(user, 6);
    const box = await canvasBox(user.page, CANVAS);
    await user.page.evaluate((hex) => {
      window.__bench.rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    }, NEW_STROKE);
    const cx = box.x + box.width / 2;
    const cy = box.y + box.height / 2;
    const point = (i) => {
      const a = (i / MOVES) * 6 * Math.PI;
      const r = 30 + (i / MOVES) * Math.min(box.width, box.height) * 0.4;
      return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
    };
    await user.page.mouse.move(...point(0));
    await user.page.evaluate(() => {
      window.__bench.recording = true;
    });
    await user.page.mouse.down();
    const started = Date.now();
    for (let i = 1; i <= MOVES; i++) await user.page.mouse.move(...point(i));
    const drawMs = Date.now() - started;
    await user.page.mouse.up();
    // Let the last events be judged by the frame after them.
    await user.waitFor(
      () => window.__bench.events.every((e) => e.frame !== null) || window.__bench.frames.length > 0 && performance.now() - window.__bench.events.at(-1).t > 500,
      null,
      'the last pointer events to be rendered (or half a second past them)',
      30_000,
    );
    const result = await user.page.evaluate(() => {
      const b = window.__bench;
      b.recording = false;
      return { frames: b.frames, events: b.events, elements: document.body.dataset.elements, longTasks: b.longTasks, saves: b.saves };
    });
    user.assertHealthy();

    const intervals = result.frames.slice(1).map((t, i) => t - result.frames[i]);
    const frameStats = stats(intervals);
    const shownEvents = result.events.filter((e) => e.frame !== null);
    const latency = stats(shownEvents.map((e) => e.shownAt - e.t));
    const inputLatency = stats(shownEvents.map((e) => e.shownAt - e.input));
    // "Next frame": the first frame that started after the event.
    const nextFrameOf = (e) => result.frames.findIndex((f) => f > e.t);
    const inNext = shownEvents.filter((e) => e.frame === nextFrameOf(e)).length;
    const coalesced = result.events.reduce((n, e) => n + e.coalesced, 0);
    console.log(`drawing: ${MOVES} mouse moves sent in ${drawMs} ms → ${result.events.length} pointermove events (${coalesced} coalesced moves), ${result.frames.length} frames`);
    console.log(`frame interval while drawing: median ${ms(frameStats.median)}, p95 ${ms(frameStats.p95)}, max ${ms(frameStats.max)} (${frameStats.n} intervals)`);
    console.log(`pointermove dispatched → frame showing it (its callbacks done): median ${ms(latency.median)}, p95 ${ms(latency.p95)}, max ${ms(latency.max)}`);
    console.log(`input received (event.timeStamp) → that frame's callbacks done: median ${ms(inputLatency.median)}, p95 ${ms(inputLatency.p95)}, max ${ms(inputLatency.max)}`);
    console.log(`events shown in the next frame: ${inNext} of ${result.events.length}; shown later: ${shownEvents.length - inNext}; never seen: ${result.events.length - shownEvents.length}`);
    console.log(`every pointer event rendered in the next frame: ${inNext === result.events.length ? 'yes' : 'NO'}`);
    for (const e of shownEvents.filter((e) => e.frame !== nextFrameOf(e))) {
      const next = nextFrameOf(e);
      const i = result.events.indexOf(e);
      const prev = result.events[i - 1];
      console.log(
        `  late: event ${i} at ${ms(e.t)} (${e.x}, ${e.y}) shown in frame ${e.frame} (${ms(e.shownAt)}), next frame was ${next} ` +
          `(${ms(result.frames[next])}); pixel there then ${JSON.stringify(e.firstMiss)}; previous event ${prev ? ms(prev.t) : '-'}`,
      );
    }
    const longest = [...result.longTasks].sort((a, b) => b.duration - a.duration).slice(0, 5);
    console.log(`main-thread tasks over 50 ms while drawing: ${result.longTasks.length}${longest.length ? ` (longest: ${longest.map((l) => ms(l.duration)).join(', ')})` : ''}`);
    if (result.saves.length) {
      const failed = result.saves.filter((x) => x.ok === false).length;
      const pending = result.saves.filter((x) => x.ok === null).length;
      console.log(
        `IndexedDB saves while drawing: ${result.saves.length} (add() on the main thread: ${result.saves.map((x) => ms(x.call)).join(', ')}; ` +
          `add → committed: ${result.saves.map((x) => (x.committed === null ? 'pending' : ms(x.committed))).join(', ')}; ` +
          `${failed} refused, ${pending} still pending; largest ${(Math.max(...result.saves.map((x) => x.chars)) / 1e6).toFixed(3)} M characters)`,
      );
    }
    console.log(`elements after the new stroke: ${result.elements}`);
    if (remote) {
      const sent = await remote.stop();
      console.log(`remote peers drawing meanwhile: ${PEERS - 1}, ${sent} ops messages sent (${(sent / (PEERS - 1) / (drawMs / 1000)).toFixed(1)} per peer per second of the measured stroke)`);
      return;
    }

    // Zoom and pan steps. A step shows the committed layer moved and scaled at once, then
    // repaints it crisp a slice per frame while the view holds still. Each step is timed from its
    // input event to the end of the frame after it (a task queued from that frame), and to the
    // end of the last frame the app drew before it stopped asking for frames (the repaint done:
    // nothing is drawn for QUIET_MS after it). The next step waits for that, so each figure is
    // one step's whole cost.
    await user.page.evaluate(() => {
      window.__steps = [];
      const step = (kind) => () => {
        const t0 = performance.now();
        const s = { kind, t0, frame: null };
        window.__steps.push(s);
        requestAnimationFrame(() => setTimeout(() => (s.frame = performance.now() - t0), 0));
      };
      window.addEventListener('wheel', step('zoom'), { capture: true, passive: true });
      window.addEventListener('pointermove', (e) => e.buttons === 1 && window.__panning && step('pan')(), { capture: true });
      window.addEventListener('pointerup', () => window.__panning && step('release')(), { capture: true });
    });
    const QUIET_MS = 300;
    const settled = async (i) => {
      await user.waitFor((n) => window.__steps.length >= n && window.__steps[n - 1].frame !== null, i + 1, `step ${i + 1} shown`);
      return user.waitFor(
        ([n, quiet]) => {
          const s = window.__steps[n - 1];
          const last = window.__bench.lastAppFrame;
          if (!last || last.end === null || last.start < s.t0 || performance.now() - last.end < quiet) return false;
          return { frame: s.frame, crisp: last.end - s.t0, zoom: Number(document.querySelector('#board').dataset.zoom) };
        },
        [i + 1, QUIET_MS],
        `step ${i + 1} repainted`,
        60_000,
      );
    };
    const steps = [-300, -300, -300, -300, 300, 300, 300, 300];
    const zooms = [];
    await user.page.mouse.move(cx, cy);
    for (const [i, dy] of steps.entries()) {
      await user.page.mouse.wheel(0, dy);
      zooms.push(await settled(i));
    }
    console.log(`zoom steps (zoom: wheel → its frame done / → repaint done): ${zooms.map((z) => `${z.zoom.toFixed(2)}x ${ms(z.frame)} / ${ms(z.crisp)}`).join(', ')}`);

    // Pan at the zoom the steps ended at (everything in view): space + drag, PAN_STEPS moves.
    const PAN_STEPS = 8;
    const pans = [];
    const elementsBeforePan = await user.page.evaluate(() => document.body.dataset.elements);
    await focusPage(user); // the width slider has the focus: the space bar would go to it
    await user.page.keyboard.down('Space');
    await user.page.mouse.move(cx, cy);
    await user.page.mouse.down();
    await user.page.evaluate(() => {
      window.__panning = true;
    });
    for (let i = 0; i < PAN_STEPS; i++) {
      await user.page.mouse.move(cx + 30 * (i + 1), cy + 15 * (i + 1));
      pans.push(await settled(steps.length + i));
    }
    await user.page.mouse.up();
    await user.page.keyboard.up('Space');
    const release = await settled(steps.length + PAN_STEPS); // the pointer's release: the repaint
    await user.page.evaluate(() => {
      window.__panning = false;
    });
    const elementsAfterPan = await user.page.evaluate(() => document.body.dataset.elements);
    if (elementsAfterPan !== elementsBeforePan) throw new Error(`the pan drew: ${elementsBeforePan} → ${elementsAfterPan} elements`);
    console.log(
      `pan steps at ${pans[0].zoom.toFixed(2)}x (pointermove → its frame done / → the app's last frame): ${pans.map((p) => `${ms(p.frame)} / ${ms(p.crisp)}`).join(', ')}; ` +
        `release (pointerup → its frame done / → repaint done): ${ms(release.frame)} / ${ms(release.crisp)}`,
    );
    const all = [...zooms, ...pans, release];
    console.log(
      `every zoom and pan step within one frame (16.7 ms): ${all.every((s) => s.frame <= 1000 / 60) ? 'yes' : 'NO'} ` +
        `(slowest ${ms(Math.max(...all.map((s) => s.frame)))}); repaint done after: median ${ms(stats(all.map((s) => s.crisp)).median)}, max ${ms(Math.max(...all.map((s) => s.crisp)))}; elements after panning: ${elementsAfterPan}`,
    );
    await user.close();
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

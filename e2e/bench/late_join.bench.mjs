// Late-join benchmark (not part of `npm test`; run with `npm run bench:late-join`). The budget it
// measures: "a newcomer shows a 10,000-stroke drawing (strokes of 50 points) within 1 s of its
// data channel opening, and a progress indicator while a large drawing arrives". Prints measured
// figures only (no pass/fail beyond sanity), and the machine's load (/proc/loadavg at start and
// end, the number of cores), since the figures depend on what else runs.
//
// The drawing: BENCH_STROKES finished pen strokes of BENCH_POINTS points (strokeOps in
// e2e/lib/storage.mjs), by one self-certifying author `local-<public key>`. A late joiner checks
// every op's author signature (shared/src/signing.rs), so the ops are signed by the native forge
// tool (shared/examples/forge.rs, through the Forger of e2e/lib/hostile.mjs): the ops are cut into
// messages where the client, drawing offline, would seal its chain (every SEAL_EVERY_BYTES of ops
// by Op::estimated_size, mirrored below), and forge signs each message at its end, chaining
// across them. The proofs of all messages are what a client that drew this would have saved.
// (One proof for the whole drawing, BENCH_SEAL_BYTES=0, is not a drawing a client makes: the
// seed hands it on as one unproven run, a newcomer holds at most MAX_HELD_BYTES_PER_SENDER of a
// third author's ops waiting for a proof and refuses the rest, so the proof at the end covers a
// chain it never got, and it takes none of them.)
//
// The seed, A: a page that opens the room (its app creates the database), gets the signed ops
// injected as one saved record of its IndexedDB (`{room, ops, trust}`, as client/src/storage.rs
// writes it, with the proofs in `trust`), and is reloaded: it loads them, checks the proofs, and
// shows body[data-elements=BENCH_STROKES]. It stays in the room. Each newcomer joins a room at
// rest: the seed's app has asked for no animation frame for QUIET_MS (after a load, the committed
// layer is repainted a slice per frame for seconds, client/src/board/render.rs).
//
// The newcomer, B: a fresh browser context (nothing saved) opening the room, BENCH_RUNS times,
// one after the other. An init script, installed in both contexts before the app starts,
// records in window.__bench (performance.now(), i.e. milliseconds since that page's navigation
// started):
//   - channelOpenAt: the first data channel labelled "drawing" (shared::sync::DOC_CHANNEL)
//     reaching `open`, whether the page made it (RTCPeerConnection.prototype.createDataChannel,
//     patched) or received it (a `datachannel` listener on every RTCPeerConnection, whose
//     constructor is wrapped); `channelVia` says which;
//   - on that channel: when the other side's hello came, when each `ops` message arrived, and
//     when the page sent each `ops` message (the channel's send(), wrapped): the seed's sending
//     and the newcomer's receiving of the sync, compared through performance.timeOrigin;
//   - elementsAt / opsAt: a MutationObserver on body's data-elements / data-ops (which the app
//     sets in the frame after a document change, client/src/scheduler.rs) seeing the drawing's
//     element count / op count; frameAt: the first animation frame after elementsAt (a
//     requestAnimationFrame from the observer's callback);
//   - lastAppFrameAt: the last animation frame the app asked for (requestAnimationFrame
//     wrapped), read once it has asked for none for QUIET_MS: when its painting ended;
//   - inkAtFrame: #board's painted (non-transparent) pixels, read in the frame at frameAt, which
//     shows what the app composed in the frame that counted every element; printed as a share
//     of the count once painting ended (coverage, not stacking order);
//   - the arrival indicator, #arrival (client/src/ui.rs show_arrival, driven from
//     client/src/peers.rs): a MutationObserver on it notes when it is first shown (its `hidden`
//     attribute removed), every text it shows, and when it is hidden again;
//   - main-thread tasks over 50 ms (PerformanceObserver 'longtask'), to tell where the time went.
// The budget figure is channel open → the first frame after all elements are counted.
//
// Environment: BENCH_STROKES (default 10000), BENCH_POINTS (points per stroke, default 50),
// BENCH_RUNS (newcomers, one after the other, default 1), BENCH_SEAL_BYTES (the seal interval by
// estimated size, default the client's SEAL_EVERY_BYTES; 0: one proof for the whole drawing),
// BENCH_TIMEOUT_MS (how long a newcomer may take to show the drawing, default 60000),
// BENCH_PROFILE (set: CPU profiles of the seed and of each newcomer, from the newcomer's
// navigation to the frame showing the drawing, saved in e2e/artifacts/ with their top functions
// printed; the profiler slows the pages, so such a run's figures are not the bench's).

import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { launchBrowser, openInContext } from '../lib/browser.mjs';
import { roomIdOf, waitForReady } from '../lib/drawmesh.mjs';
import { Forger } from '../lib/hostile.mjs';
import { artifactPath, newRoomUrl, startServer } from '../lib/server.mjs';
import { injectSignedRecord, strokeOps } from '../lib/storage.mjs';

// shared/src/signing.rs: SEAL_EVERY_BYTES = PROOF_SPAN_BYTES / 2, PROOF_SPAN_BYTES = 2 << 20.
const SEAL_EVERY_BYTES = (2 << 20) / 2;

const STROKES = Number(process.env.BENCH_STROKES || 10_000);
const POINTS = Number(process.env.BENCH_POINTS || 50);
const RUNS = Number(process.env.BENCH_RUNS || 1);
const SEAL_BYTES = Number(process.env.BENCH_SEAL_BYTES ?? SEAL_EVERY_BYTES);
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS || 60_000);
const PROFILE = Boolean(process.env.BENCH_PROFILE);
const VIEWPORT = { width: 1000, height: 650 };
const COLORS = ['#868e96', '#2f9e44', '#1971c2', '#f08c00', '#5f3dc4', '#0ca678'];
const DOC_CHANNEL = 'drawing'; // shared::sync::DOC_CHANNEL
const BUDGET_MS = 1000;

const ms = (v) => (v === null || v === undefined ? '-' : `${v.toFixed(1)} ms`);
const mb = (chars) => `${(chars / 1e6).toFixed(1)} MB`;
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').trim();
function median(values) {
  const sorted = values.filter((v) => v !== null).sort((a, b) => a - b);
  if (!sorted.length) return null;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Op::estimated_size (shared/src/document.rs) for the two kinds strokeOps makes: what the
 * client's chain counts towards its next seal (Ledger::record_mine).
 */
function estimatedSize(op) {
  const id = 64 + op.author.length;
  if (op.op.add) return id + 64 + op.op.add.shape.stroke.points.length * 40;
  return id + 16; // finish
}

/** `ops` cut after each op that brings the unsealed bytes to `every` (all in one for 0). */
function sealedMessages(ops, every) {
  if (!every) return [ops];
  const messages = [];
  let current = [];
  let unsealed = 0;
  for (const op of ops) {
    current.push(op);
    unsealed += estimatedSize(op);
    if (unsealed >= every) {
      messages.push(current);
      current = [];
      unsealed = 0;
    }
  }
  if (current.length) messages.push(current);
  return messages;
}

/** In-page instrumentation, installed before the app starts (see the header). */
function instrument({ label, elements, ops }) {
  const bench = {
    target: { elements, ops },
    channelOpenAt: null,
    channelVia: null,
    helloAt: null,
    opsMessages: 0,
    opsChars: 0, // characters of JSON, or bytes of packed messages
    packed: false, // the sync came packed
    opsAts: [], // when each ops message arrived
    elementsAt: null,
    opsAt: null,
    frameAt: null,
    lastAppFrameAt: null, // the last animation frame the app asked for
    inkAtFrame: null, // #board's painted pixels as of the frame that counted every element
    arrival: { shownAt: null, hiddenAt: null, texts: [] },
    longTasks: [],
    timeOrigin: performance.timeOrigin, // to compare the seed's times with the newcomer's
    sent: { messages: 0, chars: 0, ats: [] }, // ops messages this page sent, and when
  };
  window.__bench = bench;
  // The pixels #board has painted (the canvas is cleared to transparent; the page's background
  // is CSS): compared with the count once painting ended, how much of the picture a frame showed.
  window.__benchInk = () => {
    const board = document.querySelector('#board');
    const data = board.getContext('2d').getImageData(0, 0, board.width, board.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n += 1;
    return n;
  };

  const watchChannel = (channel, via) => {
    if (channel.label !== label) return;
    const opened = () => {
      if (bench.channelOpenAt === null) {
        bench.channelOpenAt = performance.now();
        bench.channelVia = via;
      }
    };
    if (channel.readyState === 'open') opened();
    else channel.addEventListener('open', opened);
    // What the seed sends: its sync reply, paced by the channel's buffer.
    const send = channel.send;
    // An ops message is JSON text starting {"ops" or, to a peer that takes them, binary (a
    // packed sync, shared::packed); its size is counted in characters or bytes.
    const opsSize = (data) =>
      typeof data === 'string' ? (data.startsWith('{"ops"') ? data.length : null) : (data?.byteLength ?? null);
    channel.send = function (data) {
      const size = opsSize(data);
      if (size !== null) {
        const t = performance.now();
        bench.sent.messages += 1;
        bench.sent.chars += size;
        bench.sent.ats.push(t);
      }
      return send.call(this, data);
    };
    channel.addEventListener('message', (e) => {
      const t = performance.now();
      const size = opsSize(e.data);
      if (size !== null) {
        bench.opsMessages += 1;
        bench.opsChars += size;
        bench.opsAts.push(t);
        if (typeof e.data !== 'string') bench.packed = true;
      } else if (bench.helloAt === null && e.data.startsWith('{"hello"')) {
        bench.helloAt = t;
      }
    });
  };
  // The offerer makes the channel; the answerer gets it in a `datachannel` event, which a
  // listener added by the wrapped constructor sees whatever handler the app sets.
  const Native = window.RTCPeerConnection;
  const create = Native.prototype.createDataChannel;
  Native.prototype.createDataChannel = function (...args) {
    const channel = create.apply(this, args);
    watchChannel(channel, 'createDataChannel');
    return channel;
  };
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('datachannel', (e) => watchChannel(e.channel, 'datachannel event'));
    }
  };

  // The app asks for a frame only when it has something to paint (a repaint of its committed
  // layer goes on a slice per frame, client/src/board/render.rs): the last one it asked for is
  // when its painting ended.
  const nativeRaf = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) =>
    nativeRaf((timestamp) => {
      bench.lastAppFrameAt = performance.now();
      callback(timestamp);
    });

  new MutationObserver(() => {
    const data = document.body?.dataset;
    if (!data) return;
    const t = performance.now();
    if (bench.opsAt === null && data.ops === String(bench.target.ops)) bench.opsAt = t;
    if (bench.elementsAt === null && data.elements === String(bench.target.elements)) {
      bench.elementsAt = t;
      nativeRaf(() => {
        bench.frameAt = performance.now();
        bench.inkAtFrame = window.__benchInk();
      });
    }
  }).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-elements', 'data-ops'] });

  // #arrival is made by the app at start-up; watch for it, then watch it alone.
  const watchArrival = (el) => {
    const a = bench.arrival;
    const look = () => {
      const t = performance.now();
      if (!el.hidden) {
        a.shownAt ??= t;
        const text = el.textContent;
        if (a.texts.at(-1)?.text !== text) a.texts.push({ t, text });
      } else if (a.shownAt !== null && a.hiddenAt === null) {
        a.hiddenAt = t;
      }
    };
    new MutationObserver(look).observe(el, { attributes: true, childList: true, characterData: true, subtree: true });
    look();
  };
  const finder = new MutationObserver(() => {
    const el = document.getElementById('arrival');
    if (el) {
      finder.disconnect();
      watchArrival(el);
    }
  });
  finder.observe(document, { childList: true, subtree: true });

  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) bench.longTasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: 'longtask' });
  } catch {
    // no long-task timing in this browser
  }
}

const QUIET_MS = 1000;

/**
 * Waits until `user`'s app has asked for no animation frame for QUIET_MS (its painting done);
 * resolves to { at }: the time of the last frame it asked for (performance.now(), null if none),
 * or to null if it did not settle within `timeout`.
 */
async function quiet(user, timeout) {
  return user
    .waitFor(
      (q) => ((window.__bench.lastAppFrameAt ?? 0) + q <= performance.now() ? { at: window.__bench.lastAppFrameAt } : false),
      QUIET_MS,
      `no animation frame for ${QUIET_MS} ms`,
      timeout,
    )
    .catch(() => null);
}

/** What a page shows of the drawing now, and its last warnings (when a wait failed). */
async function shows(user) {
  const seen = await user.page
    .evaluate(() => `data-elements=${document.body.dataset.elements}, data-ops=${document.body.dataset.ops}`)
    .catch(() => '(page unreadable)');
  const warnings = user.consoleErrors.slice(-5).map((l) => `    ${l.slice(0, 300)}`);
  return `${seen}${warnings.length ? `; last warnings:\n${warnings.join('\n')}` : ''}`;
}

/**
 * One newcomer: a fresh context opening the room; resolves to what its page recorded, with what
 * the seed sent and its long tasks meanwhile (`seed`).
 */
async function newcomer(browser, room, run, target, seedUser) {
  // The newcomer joins a room at rest: the seed has painted (after its load, or after the last
  // newcomer left).
  if ((await quiet(seedUser, 60_000)) === null) console.log(`  run ${run}: the seed still painted after 60 s; the newcomer joins anyway`);
  await seedUser.page.evaluate(() => {
    window.__bench.sent = { messages: 0, chars: 0, ats: [] };
    window.__bench.longTasks = [];
  });
  const context = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
  await context.addInitScript(instrument, { label: DOC_CHANNEL, ...target });
  const name = `newcomer${run}`;
  // Both profilers start before the newcomer's navigation (openInContext's beforeLoad).
  const profilers = [];
  const beforeLoad = PROFILE
    ? async (page) => {
        profilers.push(await startProfiler(seedUser, 'seed'));
        profilers.push(await startProfiler({ context, page }, name));
      }
    : undefined;
  const user = await openInContext(null, context, `${room}?name=${name}`, { name, logPrefix: 'bench-late-join', beforeLoad });
  try {
    await waitForReady(user);
    await user.waitFor(() => window.__bench.channelOpenAt !== null, null, `a "${DOC_CHANNEL}" data channel to open`);
    let reached = true;
    try {
      await user.waitFor(() => window.__bench.frameAt !== null, null, `body[data-elements="${target.elements}"] and a frame after it`, TIMEOUT_MS);
    } catch (err) {
      reached = false;
      console.log(`  run ${run}: the newcomer did not show the drawing within ${TIMEOUT_MS} ms: ${await shows(user)}`);
    }
    // The indicator hides with the last ops message (or ARRIVAL_STALL_MS after progress stops).
    if (reached) {
      await user
        .waitFor(() => window.__bench.arrival.shownAt === null || window.__bench.arrival.hiddenAt !== null, null, '#arrival to be hidden again', 10_000)
        .catch(() => {});
      await quiet(user, 30_000);
    }
    const inkAtEnd = await user.page.evaluate(() => window.__benchInk());
    for (const stop of profilers) await stop();
    const b = await user.page.evaluate(() => ({ ...window.__bench, shows: { elements: document.body.dataset.elements, ops: document.body.dataset.ops } }));
    const seed = await seedUser.page.evaluate(() => ({ sent: window.__bench.sent, longTasks: window.__bench.longTasks, timeOrigin: window.__bench.timeOrigin }));
    user.assertHealthy();
    return { reached, ...b, inkAtEnd, seed };
  } finally {
    await user.close();
  }
}

/**
 * Starts the DevTools CPU profiler in `user`'s page; resolves to a function that stops it, saves
 * the profile in e2e/artifacts/ and prints where the time went.
 */
async function startProfiler(user, name) {
  const cdp = await user.context.newCDPSession(user.page);
  await cdp.send('Profiler.enable');
  await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
  await cdp.send('Profiler.start');
  return async () => {
    const { profile } = await cdp.send('Profiler.stop');
    await cdp.detach().catch(() => {});
    const file = artifactPath(`bench-late-join-${name}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    printProfile(profile, name, file);
  };
}

/**
 * The functions with the most self time in a CPU profile (DevTools' Profiler.Profile): each
 * sample counts the time until the next one. The release wasm has no name section, so its
 * functions show as wasm-function[index].
 */
function printProfile(profile, name, file) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000;
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    const where = url ? ` ${url.split('/').pop()}${lineNumber >= 0 ? `:${lineNumber + 1}` : ''}` : '';
    const key = `${functionName || '(anonymous)'}${where}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 15);
  console.log(`  CPU profile of ${name}, from the newcomer's navigation to the frame showing the drawing (${ms(total)} sampled, ${file}); most self time:`);
  for (const [key, t] of top) console.log(`    ${ms(t).padStart(10)}  ${key}`);
}

/** A newcomer's figures, relative to its channel opening. */
function figures(b) {
  const open = b.channelOpenAt;
  const since = (t) => (t === null ? null : t - open);
  const longTasks = b.longTasks.filter((l) => l.start + l.duration > open && (b.frameAt === null || l.start < b.frameAt));
  const texts = b.arrival.texts;
  // The seed's clock moved onto the newcomer's, then relative to the channel opening.
  const seedSince = (t) => (t === null ? null : b.seed.timeOrigin + t - (b.timeOrigin + open));
  // Tasks from the channel opening to the frame that showed the drawing, as for the newcomer.
  const end = b.frameAt === null ? Infinity : b.frameAt - open;
  const seedTasks = b.seed.longTasks.filter((l) => seedSince(l.start + l.duration) > 0 && seedSince(l.start) < end);
  return {
    reached: b.reached,
    shows: b.shows,
    channelVia: b.channelVia,
    navigationToOpen: open,
    openToHello: since(b.helloAt),
    openToFirstOps: since(b.opsAts[0] ?? null),
    openToLastOps: since(b.opsAts.at(-1) ?? null),
    opsMessages: b.opsMessages,
    opsChars: b.opsChars,
    packed: b.packed,
    openToElements: since(b.elementsAt),
    openToOps: since(b.opsAt),
    openToFrame: since(b.frameAt),
    // The last frame the app asked for (once it asked for none for QUIET_MS): its painting done.
    openToLastAppFrame: b.reached ? since(b.lastAppFrameAt) : null,
    // What #board showed at the frame after all elements were counted, of what it shows at the end.
    inkAtFramePercent: b.inkAtFrame === null || !b.inkAtEnd ? null : (100 * b.inkAtFrame) / b.inkAtEnd,
    arrivalShown: b.arrival.shownAt !== null,
    openToArrivalShown: since(b.arrival.shownAt),
    openToArrivalHidden: since(b.arrival.hiddenAt),
    arrivalTexts: texts.length,
    arrivalFirst: texts[0]?.text ?? null,
    arrivalLast: texts.at(-1)?.text ?? null,
    // Each change of the indicator's percentage: [ms after channel open, percent].
    arrivalProgress: texts.map((x) => [Math.round(since(x.t)), Number(/(\d+)%/.exec(x.text)?.[1] ?? NaN)]),
    seedOpsMessagesSent: b.seed.sent.messages,
    openToSeedFirstSent: seedSince(b.seed.sent.ats[0] ?? null),
    openToSeedLastSent: seedSince(b.seed.sent.ats.at(-1) ?? null),
    // Each ops message from the seed's send() to its arrival at the newcomer (the channel is
    // ordered and reliable: the k-th sent is the k-th received): median and largest.
    sentToArrivedMedian: median(b.opsAts.map((t, k) => (k < b.seed.sent.ats.length ? since(t) - seedSince(b.seed.sent.ats[k]) : null))),
    sentToArrivedMax: b.opsAts.reduce((m, t, k) => (k < b.seed.sent.ats.length ? Math.max(m, since(t) - seedSince(b.seed.sent.ats[k])) : m), 0),
    seedLongTasks: seedTasks.length,
    seedLongTaskMs: seedTasks.reduce((n, l) => n + l.duration, 0),
    seedLongestTaskMs: seedTasks.reduce((n, l) => Math.max(n, l.duration), 0),
    longTasks: longTasks.length,
    longTaskMs: longTasks.reduce((n, l) => n + l.duration, 0),
    longestTaskMs: longTasks.reduce((n, l) => Math.max(n, l.duration), 0),
  };
}

function printRun(run, f, target) {
  const within = f.openToFrame !== null && f.openToFrame <= BUDGET_MS;
  console.log(`newcomer run ${run}: "${DOC_CHANNEL}" channel open ${ms(f.navigationToOpen)} after navigation start (seen via ${f.channelVia})`);
  console.log(
    `  channel open → the seed's hello ${ms(f.openToHello)}, first ops message ${ms(f.openToFirstOps)}, last ${ms(f.openToLastOps)} ` +
      `(${f.opsMessages} ops messages, ${mb(f.opsChars)}${f.packed ? ' packed' : ' of JSON'})`,
  );
  console.log(
    `  channel open → all ${target.elements} elements ${ms(f.openToElements)}, all ${target.ops} ops ${ms(f.openToOps)}, ` +
      `first frame after ${ms(f.openToFrame)}${f.reached ? '' : ` (shows ${f.shows.elements} elements, ${f.shows.ops} ops)`}; ` +
      `last frame the app asked for ${ms(f.openToLastAppFrame)}`,
  );
  if (f.inkAtFramePercent !== null) {
    console.log(`  #board as of the frame that counted every element: ${f.inkAtFramePercent.toFixed(1)}% of the pixels it has painted once painting ended`);
  }
  console.log(
    f.arrivalShown
      ? `  arrival indicator: shown ${ms(f.openToArrivalShown)} after channel open, hidden at ${ms(f.openToArrivalHidden)}; ` +
          `${f.arrivalTexts} texts, first "${f.arrivalFirst}", last "${f.arrivalLast}"`
      : '  arrival indicator: never shown',
  );
  if (f.arrivalShown) console.log(`  arrival progress (ms after channel open: percent): ${f.arrivalProgress.map(([t, p]) => `${t}: ${p}%`).join(', ')}`);
  console.log(`  newcomer's main-thread tasks over 50 ms from channel open to that frame: ${f.longTasks}, ${ms(f.longTaskMs)} in all, longest ${ms(f.longestTaskMs)}`);
  console.log(
    `  seed: sent ${f.seedOpsMessagesSent} ops messages from ${ms(f.openToSeedFirstSent)} to ${ms(f.openToSeedLastSent)} after the channel opened ` +
      `(send → arrival: median ${ms(f.sentToArrivedMedian)}, largest ${ms(f.sentToArrivedMax)}); ` +
      `its main-thread tasks over 50 ms meanwhile: ${f.seedLongTasks}, ${ms(f.seedLongTaskMs)} in all, longest ${ms(f.seedLongestTaskMs)}`,
  );
  console.log(`  within 1 s of the data channel opening: ${within ? 'yes' : 'NO'} (${f.openToFrame === null ? 'never' : ms(f.openToFrame)})`);
}

async function main() {
  const loadStart = loadavg();
  const cores = availableParallelism();
  console.log(`machine: ${cores} cores; load average at start: ${loadStart}`);
  const server = await startServer(null, { name: 'bench-late-join' });
  const browser = await launchBrowser(null);
  try {
    const room = await newRoomUrl(server.url);
    const roomId = roomIdOf(room);

    // The drawing, signed.
    const forger = new Forger();
    const author = `local-${forger.key}`;
    const ops = strokeOps({ strokes: STROKES, points: POINTS, width: VIEWPORT.width, height: VIEWPORT.height - 60, author, colors: COLORS });
    const messages = sealedMessages(ops, SEAL_BYTES);
    const signStarted = Date.now();
    const signed = forger.sign(messages).map((text) => JSON.parse(text).ops);
    const signMs = Date.now() - signStarted;
    const signedOps = signed.flatMap((m) => m.ops);
    const trust = { proofs: signed.flatMap((m) => m.proofs), certs: signed.flatMap((m) => m.certs ?? []) };
    if (signedOps.length !== ops.length) throw new Error(`forge returned ${signedOps.length} ops for ${ops.length}`);
    // As the client writes a record: JSON.stringify's numbers, not serde's "220.0".
    const opsJson = JSON.stringify(signedOps);
    const trustJson = JSON.stringify(trust);
    const target = { elements: STROKES, ops: ops.length };
    console.log(
      `drawing: ${STROKES} strokes of ${POINTS} points, ${ops.length} ops by ${author.slice(0, 14)}…, signed by forge in ${messages.length} ` +
        `message(s) (${trust.proofs.length} proofs; seal every ${SEAL_BYTES || '∞'} estimated bytes) in ${signMs} ms; ` +
        `saved record: ops ${mb(opsJson.length)} + trust ${(trustJson.length / 1e3).toFixed(1)} kB of JSON`,
    );

    // The seed: the signed drawing as its saved copy, loaded by a reload.
    const seedContext = await browser.newContext({ viewport: VIEWPORT, deviceScaleFactor: 1 });
    await seedContext.addInitScript(instrument, { label: DOC_CHANNEL, ...target });
    const seed = await openInContext(null, seedContext, `${room}?name=seed`, { name: 'seed', logPrefix: 'bench-late-join' });
    await waitForReady(seed);
    await injectSignedRecord(seed.page, roomId, opsJson, trustJson);
    await seed.page.reload({ waitUntil: 'load' });
    await waitForReady(seed);
    try {
      await seed.waitFor(() => window.__bench.frameAt !== null, null, `body[data-elements="${STROKES}"] and a frame after it`, 120_000);
    } catch (err) {
      throw new Error(`the seed did not load the signed drawing: ${await shows(seed)}\n${err.message}`);
    }
    const seedQuiet = await quiet(seed, 60_000);
    const seedLoad = await seed.page.evaluate(() => ({
      elements: window.__bench.elementsAt,
      frame: window.__bench.frameAt,
      inkPercent: (100 * window.__bench.inkAtFrame) / window.__benchInk(),
    }));
    seedLoad.painted = seedQuiet?.at ?? null;
    console.log(
      `seed (A): ${STROKES} elements ${ms(seedLoad.elements)} after its reload's navigation start; first frame after ${ms(seedLoad.frame)}; ` +
        `last frame the app asked for ${seedQuiet === null ? `(still painting after 60 s)` : ms(seedLoad.painted)}; ` +
        `#board as of the frame that counted every element: ${seedLoad.inkPercent.toFixed(1)}% of the pixels painted at the end`,
    );

    const runs = [];
    for (let run = 1; run <= RUNS; run++) {
      const f = figures(await newcomer(browser, room, run, target, seed));
      runs.push(f);
      printRun(run, f, target);
    }
    seed.assertHealthy();
    await seed.close();

    const med = {
      openToElements: median(runs.map((f) => f.openToElements)),
      openToFrame: median(runs.map((f) => f.openToFrame)),
      navigationToOpen: median(runs.map((f) => f.navigationToOpen)),
    };
    if (RUNS > 1) {
      console.log(
        `median of ${RUNS} runs: channel open → all elements ${ms(med.openToElements)}, → first frame after ${ms(med.openToFrame)}; ` +
          `navigation start → channel open ${ms(med.navigationToOpen)}`,
      );
    }
    const within = med.openToFrame !== null && runs.every((f) => f.reached) && med.openToFrame <= BUDGET_MS;
    console.log(`within 1 s of the data channel opening: ${within ? 'yes' : 'NO'} (${med.openToFrame === null ? 'never' : ms(med.openToFrame)}${RUNS > 1 ? ', median' : ''})`);
    const loadEnd = loadavg();
    console.log(`machine: ${cores} cores; load average at end: ${loadEnd}`);
    const round = (v) => (typeof v === 'number' ? Math.round(v * 10) / 10 : v);
    const rounded = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, round(v)]));
    console.log(
      `BENCH_JSON ${JSON.stringify({
        bench: 'late_join',
        strokes: STROKES,
        points: POINTS,
        ops: ops.length,
        messagesSigned: messages.length,
        proofs: trust.proofs.length,
        opsJsonChars: opsJson.length,
        trustJsonChars: trustJson.length,
        signMs,
        seed: rounded({
          navigationToElements: seedLoad.elements,
          navigationToFrame: seedLoad.frame,
          navigationToLastAppFrame: seedLoad.painted,
          inkAtFramePercent: seedLoad.inkPercent,
        }),
        runs: runs.map(rounded),
        median: rounded(med),
        withinBudget: within,
        cores,
        loadavg: { start: loadStart, end: loadEnd },
      })}`,
    );
  } finally {
    await browser.close().catch(() => {});
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

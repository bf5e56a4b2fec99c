// The drawing the page keeps in IndexedDB, seen from the tests: generating a large drawing as
// saved ops, injecting it as the app's records, reading back what the app saved, and the old
// localStorage format (for the migration test).
//
// The layout mirrors client/src/storage.rs: database `drawmesh`, object store `records` (key
// `id`, auto-incremented) with an index `room`; a record is { id, room, ops }, `ops` being one
// JSON array of ops as a string. The helpers never create the database: the app does, with its
// schema, the first time a page of the origin loads (wait for body[data-ready] first).
//
// Functions named ...InPage run inside the page and must be self-contained; the Node-side
// wrappers pass them their arguments (and the generator's source, which is evaluated there).

/** Names shared with client/src/storage.rs. */
export const DB = { name: 'drawmesh', store: 'records', index: 'room' };

/** The old localStorage key of a room's base (chunks add `~<tab>~<n>`). */
export function legacyKey(roomId) {
  return `drawmesh:room:${roomId}`;
}

/**
 * The ops (Op's serde shape) of `strokes` finished pen strokes by one author, each a random walk
 * of `points` points inside `width` × `height`, in `colors` in turn. Deterministic for a seed.
 * Self-contained: it also runs in the page (see injectSavedDrawing).
 */
export function strokeOps({ strokes, points = 2, width, height, author = 'b', colors, seed = 7, step = 40 }) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const ops = [];
  let seq = 0;
  for (let i = 0; i < strokes; i++) {
    let x = 10 + rnd() * (width - 20);
    let y = 10 + rnd() * (height - 20);
    const line = [];
    for (let k = 0; k < points; k++) {
      line.push({ x: Math.round(x), y: Math.round(y), p: 1 });
      x = Math.min(width - 5, Math.max(5, x + (rnd() - 0.5) * step));
      y = Math.min(height - 5, Math.max(5, y + (rnd() - 0.5) * step));
    }
    seq += 1;
    const add = seq;
    ops.push({
      author,
      seq,
      lamport: seq,
      op: { add: { shape: { stroke: { points: line } }, color: colors[i % colors.length], width: 1 } },
    });
    seq += 1;
    ops.push({ author, seq, lamport: seq, op: { finish: { element: add } } });
  }
  return ops;
}

/**
 * In-page: reads `room`'s records. Resolves to { records, chars, text } (chars: the JSON's total
 * length; text: all of it joined, only if `withText`; with `countOnly`, only `records` is read,
 * cheaply), or null while the app has not created the database.
 */
export function readSavedInPage({ db: names, room, countOnly = false, withText = false }) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(names.name);
    open.onupgradeneeded = () => open.transaction.abort(); // not there yet: create nothing
    open.onerror = (e) => {
      e.preventDefault();
      resolve(null);
    };
    open.onsuccess = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(names.store)) {
        db.close();
        resolve(null);
        return;
      }
      const index = db.transaction(names.store).objectStore(names.store).index(names.index);
      const req = countOnly ? index.count(room) : index.getAll(room);
      req.onsuccess = () => {
        db.close();
        if (countOnly) {
          resolve({ records: req.result, chars: null, text: null });
          return;
        }
        const texts = req.result.map((r) => (typeof r.ops === 'string' ? r.ops : ''));
        resolve({
          records: texts.length,
          chars: texts.reduce((n, t) => n + t.length, 0),
          text: withText ? texts.join('\n') : null,
        });
      };
      req.onerror = () => {
        db.close();
        reject(req.error);
      };
    };
  });
}

/** What `user`'s page has saved for `roomId` (see readSavedInPage). */
export async function readSaved(user, roomId, { countOnly = false, withText = false } = {}) {
  return user.page.evaluate(
    ([source, args]) => (0, eval)(`(${source})`)(args),
    [readSavedInPage.toString(), { db: DB, room: roomId, countOnly, withText }],
  );
}

let waits = 0;

/**
 * Waits until `user`'s page has saved something for `roomId` in IndexedDB and, if given, its
 * JSON mentions `text` and it is made of exactly `records` records. Resolves to what
 * readSavedInPage saw (without the text).
 */
export async function waitForSaved(user, roomId, { text = null, records = null, timeout } = {}) {
  const countOnly = text === null && records !== null;
  const what =
    `IndexedDB to hold room ${roomId}'s drawing` +
    (text ? ` mentioning ${text}` : '') +
    (records !== null ? ` in ${records} record(s)` : '');
  waits += 1;
  return user.waitFor(
    // waitForFunction polls a synchronous predicate (a promise would count as truthy at once):
    // each poll starts a read unless one is running, and judges the last read that finished.
    ([source, args, want, id]) => {
      const reads = (window.__drawmeshSavedReads ??= {});
      const state = (reads[id] ??= { busy: false, saved: undefined });
      if (!state.busy) {
        state.busy = true;
        (0, eval)(`(${source})`)(args).then(
          (saved) => Object.assign(state, { busy: false, saved }),
          (err) => Object.assign(state, { busy: false, saved: { error: String(err) } }),
        );
      }
      const saved = state.saved;
      if (saved?.error) throw new Error(`reading IndexedDB failed: ${saved.error}`);
      if (!saved || saved.records === 0) return false;
      if (want.records !== null && saved.records !== want.records) return false;
      if (want.text !== null && !saved.text.includes(want.text)) return false;
      delete reads[id];
      return { records: saved.records, chars: saved.chars };
    },
    [readSavedInPage.toString(), { db: DB, room: roomId, countOnly, withText: text !== null }, { text, records }, `${Date.now()}-${waits}`],
    what,
    timeout,
  );
}

/**
 * In-page: adds `records` (objects as client/src/storage.rs writes them: { room, ops } with `ops`
 * the JSON of an array of ops, and `trust`, the JSON of the proofs and certificates that sign
 * them, once ops are signed) to the records store in one transaction. Resolves when committed.
 */
export function addRecordsInPage({ db: names, records }) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open(names.name);
    open.onupgradeneeded = () => open.transaction.abort();
    open.onerror = () => reject(new Error(`no ${names.name} database yet: load the app first (${open.error})`));
    open.onsuccess = () => {
      const db = open.result;
      const tx = db.transaction(names.store, 'readwrite');
      const store = tx.objectStore(names.store);
      for (const record of records) store.add(record);
      tx.oncomplete = () => {
        db.close();
        resolve();
      };
      tx.onabort = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}

/**
 * In-page: generates a drawing with `generator` (strokeOps' source) and `options`, and adds it to
 * `room` as `records` records of about equal size, with `adder` (addRecordsInPage's source).
 * Resolves to { ops, records, chars }.
 */
export async function injectInPage({ db, room, generator, adder, options, records }) {
  const ops = (0, eval)(`(${generator})`)(options);
  const per = Math.ceil(ops.length / records);
  const texts = [];
  for (let i = 0; i < ops.length; i += per) texts.push(JSON.stringify(ops.slice(i, i + per)));
  await (0, eval)(`(${adder})`)({ db, records: texts.map((text) => ({ room, ops: text })) });
  return { ops: ops.length, records: texts.length, chars: texts.reduce((n, t) => n + t.length, 0) };
}

/**
 * Adds a generated drawing (strokeOps(options)) to `roomId`'s saved records in `page`, as
 * `records` records; the page must have loaded the app once (it creates the database). The ops
 * are generated in the page: a 50 MB drawing never crosses the DevTools protocol.
 */
export async function injectSavedDrawing(page, roomId, options, { records = 1 } = {}) {
  return page.evaluate(
    ([args]) => (0, eval)(`(${args.injector})`)(args),
    [
      {
        injector: injectInPage.toString(),
        db: DB,
        room: roomId,
        generator: strokeOps.toString(),
        adder: addRecordsInPage.toString(),
        options,
        records,
      },
    ],
  );
}

/**
 * Adds one signed record to `roomId`'s saved records in `page` (addRecordsInPage): `opsJson`
 * the JSON array of ops, `trustJson` the JSON of `{proofs, certs}`. The page must have loaded the
 * app once (it creates the database). Both strings cross the DevTools protocol whole.
 */
export async function injectSignedRecord(page, roomId, opsJson, trustJson) {
  await page.evaluate(
    ([source, args]) => (0, eval)(`(${source})`)(args),
    [addRecordsInPage.toString(), { db: DB, records: [{ room: roomId, ops: opsJson, trust: trustJson }] }],
  );
  return { chars: opsJson.length + trustJson.length };
}

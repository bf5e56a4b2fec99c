//! The room's drawing saved in the browser, in IndexedDB, so a reload, or everyone leaving and
//! coming back, finds it again; it then merges with the peers' through the normal sync.
//!
//! **Why IndexedDB.** The drawing used to live in `localStorage`, which holds about 5 MB per site:
//! past that, saves were refused and a large drawing silently stopped being kept. IndexedDB may use
//! a large share of the disk, writes off the main thread, and commits each transaction whole or
//! not at all.
//!
//! **Layout.** Database `drawmesh` (version [`DB_VERSION`], created by its `upgradeneeded`), one
//! object store `records` keyed by an auto-incremented `id`, with an index `room` on the room id.
//! A record is `{ id, room: "<roomId>", ops: "<JSON array of ops>", trust: "<JSON>" }`: the ops
//! encoded by [`crate::wire`] as one string, which stays compact and is cheap for the browser to
//! clone, and beside them the proofs that sign them and their authors' certificates
//! ([`shared::signing`]), so that after a reload this page can still hand them on to peers who
//! check them. Records written before signing have no `trust`: their ops load and show here, but
//! no peer would take them from us.
//!
//! **Append-only.** Saving must stay cheap however large the drawing grows (re-encoding 20,000
//! strokes blocks the page for well over 100 ms), so each save writes just the ops made or
//! received since the last one (`Document::missing_from` the version vector saved) as one new
//! record. Two tabs of one room add records side by side and never overwrite each other. Loading
//! reads all of the room's records; ops are idempotent, so overlaps are harmless. After a load
//! that read more than [`COMPACT_AFTER_RECORDS`] records, the next save writes the whole document
//! as one base record and deletes the records read, in one transaction. One save runs at a time:
//! a save asked for meanwhile waits for it and then writes everything new at once.
//!
//! **Migration.** The first load of a room copies what `localStorage` holds for it (its base
//! `drawmesh:room:<roomId>` and chunks `drawmesh:room:<roomId>~<tab>~<n>`), one record per key, in
//! the same transaction that reads the records, and removes those keys only once that transaction
//! has completed. If it fails, `localStorage` stays as it was and its ops are loaded from there.
//!
//! **Errors.** A failed save (a full quota, IndexedDB blocked or unavailable) comes back as a
//! [`StorageError`] for the app to show; the live document keeps everything, and the next save
//! writes whatever is still missing. A record that does not decode is skipped with a warning (and
//! dropped by the next compaction); a stored op that fails validation is skipped by the board.

use crate::wire;
use shared::RoomId;
use shared::document::{Document, Op, VersionVector};
use shared::signing::{Certificate, Ledger, Proof};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::Future;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    DomException, IdbDatabase, IdbKeyRange, IdbObjectStoreParameters, IdbOpenDbRequest, IdbRequest,
    IdbTransaction, IdbTransactionMode,
};

/// The database every room's drawing lives in.
pub const DB_NAME: &str = "drawmesh";
/// The schema's version: bump it, and extend `create_schema`, to change the layout.
pub const DB_VERSION: u32 = 1;
/// The object store of records.
pub const RECORDS: &str = "records";
/// The index of records by room id.
pub const BY_ROOM: &str = "room";
/// Records a load tolerates before the next save compacts them into one.
pub const COMPACT_AFTER_RECORDS: usize = 16;

/// Why the drawing could not be saved (or loaded). Its `Display` is for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageError {
    /// The browser's storage quota for this site is used up (`QuotaExceededError`).
    Full,
    /// No usable IndexedDB: some private modes and sandboxed frames, or the browser refused.
    Unavailable(String),
    /// Another tab holds an older version of the database open and does not let go.
    Blocked,
    /// Anything else the browser reported.
    Failed(String),
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Full => f.write_str("browser storage is full"),
            StorageError::Unavailable(why) => write!(f, "browser storage is unavailable ({why})"),
            StorageError::Blocked => {
                f.write_str("another Drawmesh tab is blocking the browser storage; reload it")
            }
            StorageError::Failed(why) => f.write_str(why),
        }
    }
}

impl StorageError {
    fn from_exception(err: &DomException) -> StorageError {
        match err.name().as_str() {
            "QuotaExceededError" => StorageError::Full,
            "SecurityError" | "InvalidAccessError" => StorageError::Unavailable(err.message()),
            _ => StorageError::Failed(format!("{}: {}", err.name(), err.message())),
        }
    }

    fn from_js(err: &JsValue) -> StorageError {
        match err.dyn_ref::<DomException>() {
            Some(exception) => StorageError::from_exception(exception),
            None => StorageError::Failed(describe(err)),
        }
    }
}

// ---- IndexedDB's events as futures ----
//
// IndexedDB reports through events on request and transaction objects. Each helper below makes a
// promise whose own `resolve` and `reject` functions are the event handlers, so no Rust closure
// has to be kept alive or leaked, and then reads the outcome off the object. The handlers, and
// the `JsFuture`'s own reactions to the promise, are set when the helper is *called*, not when its
// future is first polled: a transaction's `complete` may fire before the caller gets round to
// awaiting it, and a caller that gives up early (a failed request before its transaction's end)
// must not leave a rejected promise without a handler, which the page reports as an error.

/// Settles when `request` succeeds (its `result`) or fails (its `error`).
fn request_done(request: &IdbRequest) -> impl Future<Output = Result<JsValue, StorageError>> {
    let settled = JsFuture::from(js_sys::Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    }));
    let request = request.clone();
    async move {
        match settled.await {
            Ok(_) => request.result().map_err(|err| StorageError::from_js(&err)),
            Err(_) => Err(match request.error() {
                Ok(Some(err)) => StorageError::from_exception(&err),
                _ => StorageError::Failed("a storage request failed".to_owned()),
            }),
        }
    }
}

/// Settles when `tx` has committed (`complete`: only then is its data stored), or has failed:
/// `error` (a request failed; the event bubbles up from it) or `abort` (the browser refused the
/// commit, as it does when the quota is exceeded).
fn committed(tx: &IdbTransaction) -> impl Future<Output = Result<(), StorageError>> {
    let settled = JsFuture::from(js_sys::Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    }));
    let tx = tx.clone();
    async move {
        let Err(event) = settled.await else {
            return Ok(());
        };
        // The failed request's error, else the transaction's.
        let from_event = js_sys::Reflect::get(&event, &"target".into())
            .and_then(|target| js_sys::Reflect::get(&target, &"error".into()))
            .ok()
            .and_then(|err| err.dyn_into::<DomException>().ok());
        Err(match from_event.or_else(|| tx.error()) {
            Some(err) => StorageError::from_exception(&err),
            None => StorageError::Failed("the browser aborted the storage transaction".to_owned()),
        })
    }
}

/// Asks the browser to commit `tx` now rather than when the page next goes idle: as the page
/// goes away there may be no idle moment left. (`commit()` is missing in older browsers; they
/// commit on their own once the requests are done.)
fn commit_now(tx: &IdbTransaction) {
    #[allow(deprecated)] // web-sys marks it so, though every current engine has it
    let _ = tx.commit();
}

// ---- The database ----

thread_local! {
    /// The open connection, shared by every store of the page.
    static DB: RefCell<Option<IdbDatabase>> = const { RefCell::new(None) };
}

/// The database, opened (and created or upgraded) on first use.
async fn database() -> Result<IdbDatabase, StorageError> {
    if let Some(db) = DB.with(|db| db.borrow().clone()) {
        return Ok(db);
    }
    let factory = crate::dom::window()
        .map_err(|_| StorageError::Unavailable("no window".to_owned()))?
        .indexed_db()
        .map_err(|err| StorageError::Unavailable(describe(&err)))?
        .ok_or_else(|| StorageError::Unavailable("no IndexedDB".to_owned()))?;
    let open = factory
        .open_with_u32(DB_NAME, DB_VERSION)
        .map_err(|err| StorageError::Unavailable(describe(&err)))?;
    let upgrade = {
        let open = open.clone();
        Closure::<dyn FnMut()>::new(move || create_schema(&open))
    };
    open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let settled = js_sys::Promise::new(&mut |resolve, reject| {
        open.set_onsuccess(Some(&resolve));
        open.set_onerror(Some(&reject));
        // Only a newer version than another tab has open can be blocked; that tab closes on
        // `versionchange` (below) unless it runs an old client.
        open.set_onblocked(Some(&reject));
    });
    let outcome = JsFuture::from(settled).await;
    open.set_onupgradeneeded(None);
    drop(upgrade);
    if let Err(event) = outcome {
        let kind = js_sys::Reflect::get(&event, &"type".into()).ok();
        if kind.and_then(|k| k.as_string()).as_deref() == Some("blocked") {
            return Err(StorageError::Blocked);
        }
        return Err(match open.error() {
            Ok(Some(err)) => StorageError::from_exception(&err),
            _ => StorageError::Unavailable("the browser would not open IndexedDB".to_owned()),
        });
    }
    let db: IdbDatabase = open
        .result()
        .and_then(|db| db.dyn_into())
        .map_err(|err| StorageError::from_js(&err))?;
    // Another tab wants a newer version: let go, so its upgrade is not blocked; the next save
    // here opens the database again.
    let close = {
        let db = db.clone();
        Closure::once_into_js(move || {
            db.close();
            forget_database();
        })
    };
    db.set_onversionchange(Some(close.unchecked_ref()));
    DB.with(|slot| *slot.borrow_mut() = Some(db.clone()));
    Ok(db)
}

/// Runs in `upgradeneeded`: makes the records store and its room index. On failure the upgrade is
/// aborted, so the database is not left at this version without them.
fn create_schema(open: &IdbOpenDbRequest) {
    let created = open
        .result()
        .and_then(|db| db.dyn_into::<IdbDatabase>())
        .and_then(|db| {
            if db.object_store_names().contains(RECORDS) {
                return Ok(());
            }
            let params = IdbObjectStoreParameters::new();
            params.set_key_path(&"id".into());
            params.set_auto_increment(true);
            let store = db.create_object_store_with_optional_parameters(RECORDS, &params)?;
            store.create_index_with_str(BY_ROOM, "room").map(drop)
        });
    if let Err(err) = created {
        crate::dom::warn(&format!(
            "could not create the drawing store: {}",
            describe(&err)
        ));
        if let Some(tx) = open.transaction() {
            let _ = tx.abort();
        }
    }
}

/// Drops the cached connection (it closed, or failed): the next use opens a new one.
fn forget_database() {
    DB.with(|slot| slot.borrow_mut().take());
}

/// A transaction on the records store. The browser closes a connection after a failure in its
/// storage backend (seen here as "Backend aborted error" under a full quota), so when the cached
/// one refuses, a fresh one gets a second try.
async fn transaction(mode: IdbTransactionMode) -> Result<IdbTransaction, StorageError> {
    if let Ok(tx) = database()
        .await?
        .transaction_with_str_and_mode(RECORDS, mode)
    {
        return Ok(tx);
    }
    forget_database();
    database()
        .await?
        .transaction_with_str_and_mode(RECORDS, mode)
        .map_err(|err| {
            forget_database();
            StorageError::from_js(&err)
        })
}

/// A new record of `room` holding `ops` (a JSON array of ops).
fn record(room: &str, ops: &str, trust: &str) -> Result<JsValue, StorageError> {
    let record = js_sys::Object::new();
    for (field, value) in [("room", room), ("ops", ops), ("trust", trust)] {
        js_sys::Reflect::set(&record, &field.into(), &value.into())
            .map_err(|err| StorageError::from_js(&err))?;
    }
    Ok(record.into())
}

// ---- Loading ----

/// The proofs and certificates saved with a record's ops.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Trust {
    #[serde(default)]
    proofs: Vec<Proof>,
    #[serde(default)]
    certs: Vec<Certificate>,
}

/// What a load found.
pub struct Loaded {
    /// Every op stored for the room, in no particular order (the board validates each one).
    pub ops: Vec<Op>,
    /// The proofs saved with them.
    pub proofs: Vec<Proof>,
    /// The certificates saved with them.
    pub certs: Vec<Certificate>,
    /// Which records were read, and what they hold: for [`RoomStore::loaded_into`].
    pub records: LoadedRecords,
    /// A problem that did not stop the load: moving the room out of `localStorage` failed (its
    /// ops were loaded from there, and it stays as it was).
    pub problem: Option<StorageError>,
}

/// The records a load read: deleted by a compaction, and counted as saved.
pub struct LoadedRecords {
    ids: Vec<JsValue>,
    stored: VersionVector,
}

impl LoadedRecords {
    /// How many IndexedDB records the load read.
    pub fn count(&self) -> usize {
        self.ids.len()
    }
}

/// Reads every record of `room`, first moving into IndexedDB whatever `localStorage` still
/// holds for it (see the module docs).
pub async fn load(room: &RoomId) -> Result<Loaded, StorageError> {
    let room = room.as_str();
    let legacy = legacy_entries(room);
    let mut problem = None;
    let mut texts = Vec::new();
    let records = if legacy.is_empty() {
        read(room, &[]).await?
    } else {
        match read(room, &legacy).await {
            Ok(records) => {
                remove_legacy(&legacy);
                records
            }
            Err(err) => {
                crate::dom::warn(&format!(
                    "could not move the saved drawing to IndexedDB: {err}"
                ));
                problem = Some(err);
                texts.extend(legacy.into_iter().map(|(key, text)| (key, text.into())));
                read(room, &[]).await?
            }
        }
    };
    let mut ids = Vec::with_capacity(records.len());
    let mut trust = Trust::default();
    for record in records {
        let id = js_sys::Reflect::get(&record, &"id".into()).unwrap_or(JsValue::UNDEFINED);
        let ops = js_sys::Reflect::get(&record, &"ops".into()).unwrap_or(JsValue::UNDEFINED);
        if let Some(text) = js_sys::Reflect::get(&record, &"trust".into())
            .ok()
            .and_then(|t| t.as_string())
        {
            match wire::decode::<Trust>(&text) {
                Ok(mut part) => {
                    trust.proofs.append(&mut part.proofs);
                    trust.certs.append(&mut part.certs);
                }
                Err(why) => crate::dom::warn(&format!("stored signatures unreadable: {why}")),
            }
        }
        let name = id
            .as_f64()
            .map_or_else(|| "?".to_owned(), |id| id.to_string());
        texts.push((format!("record {name}"), ops));
        ids.push(id);
    }
    let mut ops = Vec::new();
    for (name, text) in texts {
        let decoded = match text.as_string() {
            Some(text) => wire::decode::<Vec<Op>>(&text),
            None => Err("not a string".to_owned()),
        };
        match decoded {
            Ok(mut part) => ops.append(&mut part),
            Err(why) => crate::dom::warn(&format!("stored drawing {name} unreadable: {why}")),
        }
    }
    let stored = held(&ops);
    Ok(Loaded {
        ops,
        proofs: trust.proofs,
        certs: trust.certs,
        records: LoadedRecords { ids, stored },
        problem,
    })
}

/// In one transaction: adds `migrate` (localStorage entries) as records, then reads all of
/// `room`'s records. Resolves once the transaction has completed.
async fn read(room: &str, migrate: &[(String, String)]) -> Result<Vec<JsValue>, StorageError> {
    let mode = if migrate.is_empty() {
        IdbTransactionMode::Readonly
    } else {
        IdbTransactionMode::Readwrite
    };
    let tx = transaction(mode).await?;
    let done = committed(&tx);
    let store = tx
        .object_store(RECORDS)
        .map_err(|e| StorageError::from_js(&e))?;
    for (_, text) in migrate {
        store
            .add(&record(room, text, "{}")?)
            .map_err(|e| StorageError::from_js(&e))?;
    }
    let all = IdbKeyRange::only(&room.into())
        .and_then(|range| store.index(BY_ROOM)?.get_all_with_key(&range))
        .map_err(|e| StorageError::from_js(&e))?;
    let records = request_done(&all);
    commit_now(&tx);
    let records = records.await?;
    done.await?;
    Ok(records
        .dyn_into::<js_sys::Array>()
        .map(|records| records.to_vec())
        .unwrap_or_default())
}

/// What `localStorage` holds for `room` in the old format, as (key, text).
fn legacy_entries(room: &str) -> Vec<(String, String)> {
    let Some(storage) = local_storage() else {
        return Vec::new();
    };
    let base = format!("drawmesh:room:{room}");
    let is_ours = |key: &str| {
        key == base
            || key
                .strip_prefix(&base)
                .is_some_and(|rest| rest.starts_with('~'))
    };
    let len = storage.length().unwrap_or(0);
    let keys: Vec<String> = (0..len)
        .filter_map(|i| storage.key(i).ok().flatten())
        .filter(|key| is_ours(key))
        .collect();
    keys.into_iter()
        .filter_map(|key| {
            let text = storage.get_item(&key).ok().flatten()?;
            Some((key, text))
        })
        .collect()
}

fn remove_legacy(entries: &[(String, String)]) {
    let Some(storage) = local_storage() else {
        return;
    };
    for (key, _) in entries {
        if let Err(err) = storage.remove_item(key) {
            crate::dom::warn(&format!(
                "could not remove {key} from localStorage: {}",
                describe(&err)
            ));
        }
    }
}

/// `localStorage`, if this page may use it.
fn local_storage() -> Option<web_sys::Storage> {
    crate::dom::window().ok()?.local_storage().ok().flatten()
}

/// For each author, how many of their ops `ops` holds without a gap from the first: what these
/// ops are known to store. Saves write each author's ops in order, so one pass over the records
/// in the order they were written finds nearly all of it; a few more catch records written out
/// of order by other tabs. It stops there: counting short only means saving some ops again.
fn held(ops: &[Op]) -> VersionVector {
    let mut held = VersionVector::default();
    for _ in 0..HELD_PASSES {
        let mut grew = false;
        for op in ops {
            match held.0.get_mut(&op.author) {
                Some(seq) if op.seq == *seq + 1 => *seq = op.seq,
                None if op.seq == 1 => {
                    held.0.insert(op.author.clone(), 1);
                }
                _ => continue,
            }
            grew = true;
        }
        if !grew {
            break;
        }
    }
    held
}

/// Passes `held` makes at most.
const HELD_PASSES: usize = 4;

// ---- Saving ----

/// One page's saving of a room's drawing: what is stored already, and whether a save is running.
pub struct RoomStore {
    room: String,
    /// Every op this vector covers is stored (saved from here, or found by the load).
    saved: VersionVector,
    /// Records to replace by one at the next save (a load read many).
    compact: Option<Vec<JsValue>>,
    /// A save is in flight.
    writing: bool,
    /// A save was asked for while one was in flight.
    again: bool,
}

/// One write under way: the ops picked when it began, encoded. Run it with [`Save::write`], then
/// hand it back to [`RoomStore::end_save`].
pub struct Save {
    room: String,
    text: String,
    /// The proofs and certificates for those ops, encoded.
    trust: String,
    ops: usize,
    /// The records it replaces (a compaction), deleted in the same transaction.
    replaces: Vec<JsValue>,
    /// The document's version vector when the ops were picked: stored once this succeeds.
    covers: VersionVector,
}

impl Save {
    /// How many ops it writes.
    pub fn op_count(&self) -> usize {
        self.ops
    }

    /// True when it replaces the records of a load by one.
    pub fn compacts(&self) -> bool {
        !self.replaces.is_empty()
    }

    /// Writes it as one new record (deleting what it replaces), in one transaction. Resolves when
    /// that has committed. Started in `pagehide`, it usually completes: the browser finishes a
    /// transaction whose requests it has already been given, and it is committed at once.
    pub async fn write(&self) -> Result<(), StorageError> {
        let tx = transaction(IdbTransactionMode::Readwrite).await?;
        let done = committed(&tx);
        let store = tx
            .object_store(RECORDS)
            .map_err(|e| StorageError::from_js(&e))?;
        store
            .add(&record(&self.room, &self.text, &self.trust)?)
            .map_err(|e| StorageError::from_js(&e))?;
        for id in &self.replaces {
            store.delete(id).map_err(|e| StorageError::from_js(&e))?;
        }
        commit_now(&tx);
        done.await
    }
}

impl RoomStore {
    /// The store of `room`, for this page.
    pub fn new(room: &RoomId) -> RoomStore {
        RoomStore {
            room: room.as_str().to_owned(),
            saved: VersionVector::default(),
            compact: None,
            writing: false,
            again: false,
        }
    }

    /// Call once a load's ops are in `doc`: what the load found counts as saved (as far as `doc`
    /// took it in: an op the board refused is not), and if it read many records, the next save
    /// compacts them. `doc` may hold more by now (drawn or received meanwhile): that is saved
    /// by the next save as usual.
    pub fn loaded_into(&mut self, records: LoadedRecords, doc: &Document) {
        let mut found = records.stored;
        let have = doc.version_vector();
        for (author, seq) in found.0.iter_mut() {
            *seq = (*seq).min(have.get(author));
        }
        merge(&mut self.saved, &found);
        if records.ids.len() > COMPACT_AFTER_RECORDS {
            self.compact = Some(records.ids);
        }
        if !found.0.is_empty() {
            request_persistence_once();
        }
    }

    /// Starts a save of what `doc` holds that is not stored yet: picks and encodes the ops now,
    /// so `doc` is free again at once. `None` when there is nothing new, or when a save is in
    /// flight: then the next [`RoomStore::end_save`] says to save again.
    pub fn begin_save(
        &mut self,
        doc: &Document,
        ledger: &Ledger,
    ) -> Result<Option<Save>, StorageError> {
        if self.writing {
            self.again = true;
            return Ok(None);
        }
        let covers = doc.version_vector();
        let (ops, replaces): (Vec<&Op>, Vec<JsValue>) = match &self.compact {
            Some(ids) => (doc.ops().collect(), ids.clone()),
            // Integrated ops only: ops still waiting for what they depend on would be written
            // again by every save for as long as they wait (a peer's sync brings them back).
            None => (
                doc.missing_from(&self.saved)
                    .into_iter()
                    .filter(|op| covers.covers(&op.id()))
                    .collect(),
                Vec::new(),
            ),
        };
        if ops.is_empty() {
            return Ok(None);
        }
        let text = wire::encode(&ops).map_err(StorageError::Failed)?;
        // The proofs of the ops written (a compaction writes every op, so every proof), and the
        // certificates of their authors.
        let since = if replaces.is_empty() {
            self.saved.clone()
        } else {
            VersionVector::default()
        };
        let authors: std::collections::BTreeSet<_> = ops.iter().map(|op| &op.author).collect();
        let trust = Trust {
            proofs: ledger
                .proofs()
                .filter(|p| authors.contains(&p.author) && p.seq > since.get(&p.author))
                .collect(),
            certs: ledger
                .certificates()
                .filter(|c| authors.contains(&c.peer))
                .cloned()
                .collect(),
        };
        let trust = wire::encode(&trust).map_err(StorageError::Failed)?;
        self.writing = true;
        Ok(Some(Save {
            room: self.room.clone(),
            text,
            trust,
            ops: ops.len(),
            replaces,
            covers,
        }))
    }

    /// Takes back a finished `save` and how it went. Returns true when another save should run
    /// now (one was asked for meanwhile, or a failed compaction left ops unsaved).
    pub fn end_save(&mut self, save: Save, outcome: &Result<(), StorageError>) -> bool {
        self.writing = false;
        match outcome {
            Ok(()) => {
                merge(&mut self.saved, &save.covers);
                if save.compacts() {
                    self.compact = None;
                }
                request_persistence_once();
            }
            Err(err) if save.compacts() => {
                // The records stay as they are: fall back to appending what is new.
                crate::dom::warn(&format!("could not compact the saved drawing: {err}"));
                self.compact = None;
                self.again = true;
            }
            Err(_) => {}
        }
        std::mem::take(&mut self.again)
    }
}

/// Raises `into` to cover `from` too (both stand for ops stored from each author's first on).
fn merge(into: &mut VersionVector, from: &VersionVector) {
    for (author, &seq) in &from.0 {
        let have = into.0.entry(author.clone()).or_insert(0);
        *have = (*have).max(seq);
    }
}

/// Deletes every record of `room` (what a fresh start of a room in tests needs).
pub async fn remove_all(room: &RoomId) -> Result<(), StorageError> {
    let tx = transaction(IdbTransactionMode::Readwrite).await?;
    let done = committed(&tx);
    let store = tx
        .object_store(RECORDS)
        .map_err(|e| StorageError::from_js(&e))?;
    let keys = IdbKeyRange::only(&room.as_str().into())
        .and_then(|range| store.index(BY_ROOM)?.get_all_keys_with_key(&range))
        .map_err(|e| StorageError::from_js(&e))?;
    let keys = request_done(&keys).await?;
    let keys = keys.dyn_into::<js_sys::Array>().unwrap_or_default();
    for key in keys.iter() {
        store.delete(&key).map_err(|e| StorageError::from_js(&e))?;
    }
    done.await
}

// ---- Persistence ----

thread_local! {
    static PERSISTENCE_ASKED: Cell<bool> = const { Cell::new(false) };
}

/// Asks the browser, once per page and once there is a drawing worth keeping, to keep this
/// site's storage even under storage pressure (`navigator.storage.persist()`; Chromium decides
/// by itself, Firefox may ask the person). The answer goes to `body[data-storage-persisted]`:
/// `true`, `false`, or `unsupported` where there is no `navigator.storage` (insecure pages,
/// older browsers).
pub fn request_persistence_once() {
    if PERSISTENCE_ASKED.with(|asked| asked.replace(true)) {
        return;
    }
    wasm_bindgen_futures::spawn_local(async {
        let answer = match persist().await {
            Some(true) => "true",
            Some(false) => "false",
            None => "unsupported",
        };
        if let Some(body) = crate::dom::document().ok().and_then(|d| d.body()) {
            let _ = body.set_attribute("data-storage-persisted", answer);
        }
    });
}

/// `navigator.storage.persist()`, or `None` where it does not exist.
async fn persist() -> Option<bool> {
    let navigator = crate::dom::window().ok()?.navigator();
    // `Navigator::storage` assumes it exists; look first.
    let manager = js_sys::Reflect::get(&navigator, &"storage".into()).ok()?;
    let manager: web_sys::StorageManager = manager.dyn_into().ok()?;
    let promise = manager.persist().ok()?;
    JsFuture::from(promise).await.ok()?.as_bool()
}

fn describe(err: &JsValue) -> String {
    js_sys::Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

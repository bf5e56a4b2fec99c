//! The saved drawing in the browser's real IndexedDB: round trip, append-only saves, one save at a
//! time, compaction, and the move out of the old `localStorage` format.
//!
//! Each test uses a room of its own, and reads what is stored through its own IndexedDB
//! connection (`raw_records`), not through the module under test.

use crate::support::{board, board_of, drag, from_peer, pixel, rgba};
use client::board::Board;
use client::storage::{self, BY_ROOM, COMPACT_AFTER_RECORDS, DB_NAME, RECORDS, RoomStore};
use client::tools::Tool;
use shared::color::Color;
use shared::document::Op;
use shared::room::{ROOM_ID_RANDOM_BYTES, RoomId};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use wasm_bindgen_test::wasm_bindgen_test;

const RED: Color = Color::rgb(0xe0, 0x31, 0x31);
const BLUE: Color = Color::rgb(0x19, 0x71, 0xc2);

fn new_room() -> RoomId {
    let mut bytes = [0u8; ROOM_ID_RANDOM_BYTES];
    web_sys::window()
        .unwrap()
        .crypto()
        .unwrap()
        .get_random_values_with_u8_array(&mut bytes)
        .unwrap();
    RoomId::from_random_bytes(bytes)
}

/// A red stroke and a blue rectangle.
fn drawing() -> Board {
    let mut board = board(300, 200, RED);
    drag(&mut board, (50.0, 60.0), (150.0, 60.0));
    board.set_tool(Tool::Rect);
    board.set_color(BLUE);
    drag(&mut board, (100.0, 100.0), (200.0, 150.0));
    board
}

/// Runs `body` (JavaScript, with `db` open and the arguments `args`) on a fresh connection to the
/// app's database, and resolves to what `body` hands `done`. Never creates the database: that is
/// the app's job, and one made here would lack its schema.
async fn on_database(args: &[JsValue], body: &str) -> JsValue {
    let source = format!(
        "return new Promise((done, fail) => {{
           const open = indexedDB.open({DB_NAME:?});
           open.onupgradeneeded = () => open.transaction.abort();
           open.onerror = () => fail(open.error);
           open.onsuccess = () => {{
             const db = open.result;
             const finish = (value) => {{ db.close(); done(value); }};
             try {{ {body} }} catch (err) {{ db.close(); fail(err); }}
           }};
         }});"
    );
    let run = js_sys::Function::new_with_args("a, b", &source);
    let a = args.first().cloned().unwrap_or(JsValue::UNDEFINED);
    let b = args.get(1).cloned().unwrap_or(JsValue::UNDEFINED);
    let promise: js_sys::Promise = run.call2(&JsValue::NULL, &a, &b).unwrap().into();
    JsFuture::from(promise).await.unwrap()
}

/// The stored records of `room` in key order: (id, the JSON text of its ops).
async fn raw_records(room: &RoomId) -> Vec<(f64, String)> {
    let found = on_database(
        &[room.as_str().into()],
        &format!(
            "const req = db.transaction({RECORDS:?}).objectStore({RECORDS:?}).index({BY_ROOM:?}).getAll(a);
             req.onsuccess = () => finish(req.result.map((r) => [r.id, r.ops]));
             req.onerror = () => fail(req.error);"
        ),
    )
    .await;
    js_sys::Array::from(&found)
        .iter()
        .map(|pair| {
            let pair = js_sys::Array::from(&pair);
            (
                pair.get(0).as_f64().unwrap(),
                pair.get(1).as_string().unwrap(),
            )
        })
        .collect()
}

/// How many ops each stored record of `room` holds, in key order.
async fn record_sizes(room: &RoomId) -> Vec<usize> {
    raw_records(room)
        .await
        .iter()
        .map(|(_, text)| client::wire::decode::<Vec<Op>>(text).unwrap().len())
        .collect()
}

/// Stores `value` as the `ops` of a record of `room`: under `id` (replacing it), or as a new one.
async fn put_raw(room: &RoomId, id: Option<f64>, value: JsValue) {
    let record = js_sys::Object::new();
    js_sys::Reflect::set(&record, &"room".into(), &room.as_str().into()).unwrap();
    js_sys::Reflect::set(&record, &"ops".into(), &value).unwrap();
    if let Some(id) = id {
        js_sys::Reflect::set(&record, &"id".into(), &id.into()).unwrap();
    }
    on_database(
        &[record.into()],
        &format!(
            "const tx = db.transaction({RECORDS:?}, 'readwrite');
             tx.objectStore({RECORDS:?}).put(a);
             tx.oncomplete = () => finish(null);
             tx.onabort = () => fail(tx.error);"
        ),
    )
    .await;
}

/// Saves what `doc` holds that is not stored yet, as the app does; returns how many ops went.
async fn save(store: &mut RoomStore, board: &Board) -> usize {
    let Some(save) = store.begin_save(board.doc(), board.ledger()).unwrap() else {
        return 0;
    };
    let outcome = save.write().await;
    outcome.clone().unwrap();
    let count = save.op_count();
    assert!(
        !store.end_save(save, &outcome),
        "no other save was asked for"
    );
    count
}

/// Loads `room` into a fresh board, as the app does (then its store knows what is stored).
async fn load(room: &RoomId, store: &mut RoomStore) -> Board {
    let loaded = storage::load(room).await.unwrap();
    assert!(loaded.problem.is_none());
    let mut board = board(300, 200, RED);
    board.load(loaded.ops, loaded.proofs, loaded.certs);
    store.loaded_into(loaded.records, board.doc());
    board
}

#[wasm_bindgen_test]
async fn the_drawing_survives_a_save_and_load() {
    let room = new_room();
    let mut board = drawing();
    let mut store = RoomStore::new(&room);
    assert_eq!(save(&mut store, &board).await, board.doc().op_count());

    let mut restored = load(&room, &mut RoomStore::new(&room)).await;
    assert_eq!(restored.doc().op_count(), board.doc().op_count());
    assert_eq!(
        restored.doc().version_vector(),
        board.doc().version_vector()
    );
    assert_eq!(restored.visible_count(), 2);
    assert_eq!(pixel(&mut restored, 100.0, 60.0), rgba(RED));
    assert_eq!(pixel(&mut restored, 150.0, 100.0), rgba(BLUE));
    assert_eq!(pixel(&mut board, 100.0, 60.0), rgba(RED));

    // A tampered op is skipped, the rest still load; so does a record that is not JSON, or not
    // even a string.
    let (id, text) = raw_records(&room).await.pop().unwrap();
    // The rectangle's add is the last op: only it goes (an author's later ops would wait for
    // an earlier one that never comes).
    let at = text.rfind("\"width\":4").unwrap();
    let tampered = format!("{}\"width\":999{}", &text[..at], &text[at + 9..]);
    assert_ne!(tampered, text);
    put_raw(&room, Some(id), tampered.into()).await;
    put_raw(&room, None, "[{\"author\": tru".into()).await;
    put_raw(&room, None, JsValue::from_f64(7.0)).await;
    let loaded = storage::load(&room).await.unwrap();
    assert_eq!(loaded.records.count(), 3);
    let mut partial = crate::support::board(300, 200, RED);
    partial.load(loaded.ops, loaded.proofs, loaded.certs);
    assert_eq!(
        partial.visible_count(),
        1,
        "the rectangle's add was skipped"
    );
    assert_eq!(pixel(&mut partial, 100.0, 60.0), rgba(RED));
    assert_eq!(pixel(&mut partial, 150.0, 100.0), [0, 0, 0, 0]);

    storage::remove_all(&room).await.unwrap();
    let empty = storage::load(&room).await.unwrap();
    assert!(empty.ops.is_empty(), "nothing stored: nothing loaded");
}

/// What `from` (named `name`) sends `to` when `to` says hello, delivered. Returns ops integrated.
fn sync(from: &mut Board, name: &str, to: &mut Board) -> usize {
    let batches = from.sync_reply(&to.doc().version_vector(), |_| false);
    let mut integrated = 0;
    for b in batches {
        let text = client::wire::encode(&shared::sync::ChannelMessage::Ops {
            ops: b.ops,
            proofs: b.proofs,
            certs: b.certs,
        })
        .unwrap();
        if let Ok(client::board::Received::Ops { integrated: n, .. }) =
            from_peer(to, name, &text, &[name])
        {
            integrated += n;
        }
    }
    integrated
}

#[wasm_bindgen_test]
async fn signatures_are_saved_with_the_ops_so_a_reload_can_hand_them_on() {
    let room = new_room();
    let mut alice = board_of("alice", 300, 200, RED);
    drag(&mut alice, (50.0, 60.0), (150.0, 60.0));
    drag(&mut alice, (50.0, 90.0), (150.0, 90.0));
    let mut bob = board_of("bob", 300, 200, BLUE);
    assert_eq!(sync(&mut alice, "alice", &mut bob), alice.doc().op_count());
    save(&mut RoomStore::new(&room), &bob).await;
    // Alice has left. Bob reloads (a new page: a new id) and carol joins.
    let loaded = storage::load(&room).await.unwrap();
    assert!(!loaded.proofs.is_empty() && !loaded.certs.is_empty());
    let mut reloaded = board_of("bob-again", 300, 200, BLUE);
    reloaded.load(loaded.ops.clone(), loaded.proofs, loaded.certs.clone());
    let mut carol = board_of("carol", 300, 200, RED);
    assert_eq!(
        sync(&mut reloaded, "bob-again", &mut carol),
        alice.doc().op_count()
    );
    assert_eq!(carol.visible_count(), 2);
    assert_eq!(pixel(&mut carol, 100.0, 90.0), rgba(RED));
    // Without the saved signatures, nobody could take alice's work from him.
    let mut unsigned = board_of("bob-unsigned", 300, 200, BLUE);
    unsigned.load(loaded.ops, vec![], loaded.certs);
    assert_eq!(unsigned.visible_count(), 2, "he still shows it");
    let mut dave = board_of("dave", 300, 200, RED);
    assert_eq!(sync(&mut unsigned, "bob-unsigned", &mut dave), 0);
    assert_eq!(dave.visible_count(), 0);
}

#[wasm_bindgen_test]
async fn a_save_writes_only_what_changed_and_tabs_do_not_collide() {
    let room = new_room();
    let mut board = drawing();
    let mut tab_a = RoomStore::new(&room);
    let first = board.doc().op_count();
    assert_eq!(save(&mut tab_a, &board).await, first);
    assert_eq!(
        save(&mut tab_a, &board).await,
        0,
        "nothing new: nothing written"
    );
    assert_eq!(record_sizes(&room).await, vec![first]);

    // One more stroke: the next save writes its ops alone, in a new record.
    drag(&mut board, (10.0, 10.0), (20.0, 10.0));
    let added = board.doc().op_count() - first;
    assert!(added > 0);
    assert_eq!(save(&mut tab_a, &board).await, added);
    assert_eq!(record_sizes(&room).await, vec![first, added]);

    // A second tab of the same room saving its own drawing adds records, never overwrites.
    let mut other = board_of("other-tab", 300, 200, BLUE);
    drag(&mut other, (50.0, 50.0), (60.0, 50.0));
    let mut tab_b = RoomStore::new(&room);
    save(&mut tab_b, &other).await;
    assert_eq!(record_sizes(&room).await.len(), 3);
    let everyone = load(&room, &mut RoomStore::new(&room)).await;
    assert_eq!(
        everyone.doc().op_count(),
        board.doc().op_count() + other.doc().op_count()
    );
    storage::remove_all(&room).await.unwrap();
}

#[wasm_bindgen_test]
async fn one_save_runs_at_a_time_and_the_next_takes_everything_new() {
    let room = new_room();
    let mut board = drawing();
    let mut store = RoomStore::new(&room);
    let first = store
        .begin_save(board.doc(), board.ledger())
        .unwrap()
        .unwrap();
    let before = board.doc().op_count();
    assert_eq!(first.op_count(), before);

    // Asked again while the first is in flight: nothing starts, the wish is noted.
    drag(&mut board, (10.0, 10.0), (20.0, 10.0));
    assert!(
        store
            .begin_save(board.doc(), board.ledger())
            .unwrap()
            .is_none()
    );
    drag(&mut board, (10.0, 30.0), (20.0, 30.0));
    assert!(
        store
            .begin_save(board.doc(), board.ledger())
            .unwrap()
            .is_none()
    );

    let outcome = first.write().await;
    assert!(outcome.is_ok());
    assert!(
        store.end_save(first, &outcome),
        "the noted wish: save again"
    );
    let second = store
        .begin_save(board.doc(), board.ledger())
        .unwrap()
        .unwrap();
    assert_eq!(
        second.op_count(),
        board.doc().op_count() - before,
        "both later strokes, in one record"
    );
    let outcome = second.write().await;
    assert!(!store.end_save(second, &outcome));
    assert_eq!(
        record_sizes(&room).await,
        vec![before, board.doc().op_count() - before]
    );
    storage::remove_all(&room).await.unwrap();
}

#[wasm_bindgen_test]
async fn many_records_are_compacted_into_one_by_the_save_after_a_load() {
    let room = new_room();
    let mut board = board(300, 200, RED);
    let mut store = RoomStore::new(&room);
    for i in 0..(COMPACT_AFTER_RECORDS + 2) {
        let x = 10.0 + i as f32 * 5.0;
        drag(&mut board, (x, 10.0), (x, 30.0));
        save(&mut store, &board).await;
    }
    assert_eq!(record_sizes(&room).await.len(), COMPACT_AFTER_RECORDS + 2);

    let mut reader = RoomStore::new(&room);
    let restored = load(&room, &mut reader).await;
    assert_eq!(restored.doc().op_count(), board.doc().op_count());
    let compaction = reader
        .begin_save(restored.doc(), restored.ledger())
        .unwrap()
        .unwrap();
    assert!(compaction.compacts());
    let outcome = compaction.write().await;
    assert!(outcome.is_ok());
    assert!(!reader.end_save(compaction, &outcome));
    assert_eq!(
        record_sizes(&room).await,
        vec![board.doc().op_count()],
        "one record with every op"
    );
    assert!(
        reader
            .begin_save(restored.doc(), restored.ledger())
            .unwrap()
            .is_none(),
        "what was loaded counts as saved"
    );

    // A few records are left as they are.
    let mut again = RoomStore::new(&room);
    let restored = load(&room, &mut again).await;
    assert!(
        again
            .begin_save(restored.doc(), restored.ledger())
            .unwrap()
            .is_none()
    );
    storage::remove_all(&room).await.unwrap();
}

#[wasm_bindgen_test]
async fn what_was_drawn_while_loading_is_still_saved() {
    let room = new_room();
    let saved = drawing();
    save(&mut RoomStore::new(&room), &saved).await;

    // A new page: the person draws before the saved drawing has arrived.
    let mut board = board_of("new-page", 300, 200, BLUE);
    let mut store = RoomStore::new(&room);
    drag(&mut board, (10.0, 10.0), (20.0, 10.0));
    let early = board.doc().op_count();
    let loaded = storage::load(&room).await.unwrap();
    board.load(loaded.ops, loaded.proofs, loaded.certs);
    store.loaded_into(loaded.records, board.doc());
    assert_eq!(board.doc().op_count(), early + saved.doc().op_count());
    assert_eq!(
        save(&mut store, &board).await,
        early,
        "the early stroke, not the loaded ops"
    );
    let everything = load(&room, &mut RoomStore::new(&room)).await;
    assert_eq!(everything.doc().op_count(), board.doc().op_count());
    storage::remove_all(&room).await.unwrap();
}

#[wasm_bindgen_test]
async fn a_drawing_in_local_storage_moves_to_indexeddb() {
    let room = new_room();
    let other_room = new_room();
    let local = web_sys::window().unwrap().local_storage().unwrap().unwrap();
    // The old format: a base and chunks named by tab, each a JSON array of ops.
    let mut board = drawing();
    let base_ops: Vec<&Op> = board.doc().ops().collect();
    let base = client::wire::encode(&base_ops).unwrap();
    let first = board.doc().op_count();
    drag(&mut board, (10.0, 10.0), (20.0, 10.0));
    let chunk_ops: Vec<&Op> = board.doc().ops().skip(first).collect();
    let chunk = client::wire::encode(&chunk_ops).unwrap();
    let key = format!("drawmesh:room:{room}");
    local.set_item(&key, &base).unwrap();
    local
        .set_item(&format!("{key}~0a1b2c3d~0"), &chunk)
        .unwrap();
    local
        .set_item(&format!("{key}~0a1b2c3d~1"), "not JSON")
        .unwrap();
    let elsewhere = format!("drawmesh:room:{other_room}");
    local.set_item(&elsewhere, &base).unwrap();

    let mut store = RoomStore::new(&room);
    let mut restored = load(&room, &mut store).await;
    assert_eq!(restored.doc().op_count(), board.doc().op_count());
    assert_eq!(pixel(&mut restored, 100.0, 60.0), rgba(RED));
    let mut sizes = record_sizes_lenient(&room).await;
    sizes.sort();
    assert_eq!(
        sizes,
        vec![None, Some(chunk_ops.len()), Some(first)],
        "one record per key, kept as it was"
    );
    let left: Vec<String> = (0..local.length().unwrap())
        .filter_map(|i| local.key(i).unwrap())
        .filter(|k| k.starts_with(&key))
        .collect();
    assert!(left.is_empty(), "moved out of localStorage: {left:?}");
    assert_eq!(
        local.get_item(&elsewhere).unwrap(),
        Some(base),
        "other rooms stay"
    );
    assert!(
        store
            .begin_save(restored.doc(), restored.ledger())
            .unwrap()
            .is_none(),
        "the migrated ops count as saved"
    );

    // Nothing left to migrate: a second load finds the same.
    let again = load(&room, &mut RoomStore::new(&room)).await;
    assert_eq!(again.doc().op_count(), board.doc().op_count());
    local.remove_item(&elsewhere).unwrap();
    storage::remove_all(&room).await.unwrap();
}

/// Like `record_sizes`, with `None` for a record that does not decode.
async fn record_sizes_lenient(room: &RoomId) -> Vec<Option<usize>> {
    raw_records(room)
        .await
        .iter()
        .map(|(_, text)| {
            client::wire::decode::<Vec<Op>>(text)
                .ok()
                .map(|ops| ops.len())
        })
        .collect()
}

#[wasm_bindgen_test]
async fn a_load_arriving_mid_stroke_leaves_the_stroke_being_drawn() {
    let room = new_room();
    save(&mut RoomStore::new(&room), &drawing()).await;

    let mut board = board_of("new-page", 300, 200, BLUE);
    let p = |x, y| shared::Point::new(x, y, 0.5);
    board.pen(client::canvas::PenInput::Down(p(20.0, 180.0)));
    board.pen(client::canvas::PenInput::Move(vec![p(120.0, 180.0)]));
    assert_eq!(board.live_count(), 1);
    let loaded = storage::load(&room).await.unwrap();
    board.load(loaded.ops, loaded.proofs, loaded.certs);
    assert_eq!(board.live_count(), 1, "my stroke is still being drawn");
    board.pen(client::canvas::PenInput::Move(vec![p(220.0, 180.0)]));
    board.pen(client::canvas::PenInput::Up);
    assert_eq!(board.live_count(), 0);
    assert_eq!(board.visible_count(), 3);
    assert_eq!(pixel(&mut board, 200.0, 180.0), rgba(BLUE));
    assert_eq!(pixel(&mut board, 100.0, 60.0), rgba(RED));
    storage::remove_all(&room).await.unwrap();
}

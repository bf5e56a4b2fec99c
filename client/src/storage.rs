//! The room's drawing saved in the browser (`localStorage`), so a reload, or everyone leaving and
//! coming back, finds it again; it then merges with the peers' through the normal sync.
//!
//! Saving must stay cheap however large the drawing grows (re-encoding 20,000 strokes blocks the
//! page for well over 100 ms), so storage is append-only: each save writes just the ops made or
//! received since the last one (`Document::missing_from` the version vector last saved) as a new
//! chunk. Keys: `drawmesh:room:<roomId>` holds a compacted base; `drawmesh:room:<roomId>~<tab>~<n>`
//! the chunks, named by the tab that wrote them so two tabs of one room never overwrite each
//! other. Loading reads them all (ops are idempotent, so overlaps are harmless); when many chunks
//! have piled up, the loaded document is written back as the base and the chunks read are removed.
//!
//! Storage is a convenience, never a failure: a full quota or a blocked storage is a warning, and
//! a stored op that fails validation is skipped (the board validates each one as it loads it).

use crate::wire;
use shared::RoomId;
use shared::document::{Document, Op, VersionVector};
use wasm_bindgen::JsValue;

/// Chunks tolerated before a load compacts them into the base.
pub const COMPACT_AFTER_CHUNKS: usize = 16;

/// The key a room's drawing is stored under (its base; chunks extend it).
pub fn room_key(room: &RoomId) -> String {
    format!("drawmesh:room:{room}")
}

fn storage() -> Result<web_sys::Storage, String> {
    crate::dom::window()
        .map_err(|_| "no window".to_owned())?
        .local_storage()
        .map_err(|err| describe(&err))?
        .ok_or_else(|| "no localStorage".to_owned())
}

/// One tab's view of a room's stored drawing.
pub struct RoomStore {
    base: String,
    tab: String,
    next_chunk: u32,
    /// What is stored already (by this tab, or loaded from storage).
    saved: VersionVector,
    /// Chunk keys read by the last load: removed if that load's document gets compacted.
    loaded_chunks: Vec<String>,
}

impl RoomStore {
    /// The store under `base` (see [`room_key`]), for this tab.
    pub fn new(base: String) -> RoomStore {
        let tab = format!(
            "{:08x}",
            (js_sys::Math::random() * f64::from(u32::MAX)) as u32
        );
        RoomStore {
            base,
            tab,
            next_chunk: 0,
            saved: VersionVector::default(),
            loaded_chunks: Vec::new(),
        }
    }

    /// Every key of this room in `storage`: its base and every tab's chunks.
    fn keys(&self, storage: &web_sys::Storage) -> Result<Vec<String>, String> {
        let len = storage.length().map_err(|err| describe(&err))?;
        Ok((0..len)
            .filter_map(|i| storage.key(i).ok().flatten())
            .filter(|k| self.is_ours(k))
            .collect())
    }

    fn is_ours(&self, key: &str) -> bool {
        key == self.base
            || key
                .strip_prefix(&self.base)
                .is_some_and(|rest| rest.starts_with('~'))
    }

    /// Every op stored for the room, by any tab. Unreadable entries are skipped with a warning.
    pub fn load(&mut self) -> Result<Vec<Op>, String> {
        let storage = storage()?;
        let keys = self.keys(&storage)?;
        let mut ops = Vec::new();
        self.loaded_chunks.clear();
        for key in keys {
            let Some(text) = storage.get_item(&key).map_err(|err| describe(&err))? else {
                continue;
            };
            match wire::decode::<Vec<Op>>(&text) {
                Ok(mut chunk) => ops.append(&mut chunk),
                Err(why) => {
                    crate::dom::warn(&format!("stored drawing part {key} unreadable: {why}"))
                }
            }
            if key != self.base {
                self.loaded_chunks.push(key);
            }
        }
        Ok(ops)
    }

    /// Call once the loaded ops are in `doc`: they count as saved, and if many chunks had piled
    /// up, `doc` becomes the new base and those chunks go.
    pub fn loaded_into(&mut self, doc: &Document) -> Result<(), String> {
        self.saved = doc.version_vector();
        if self.loaded_chunks.len() <= COMPACT_AFTER_CHUNKS {
            return Ok(());
        }
        let all: Vec<&Op> = doc.ops().collect();
        let storage = storage()?;
        storage
            .set_item(&self.base, &wire::encode(&all)?)
            .map_err(|err| format!("could not compact the saved drawing: {}", describe(&err)))?;
        for key in self.loaded_chunks.drain(..) {
            let _ = storage.remove_item(&key);
        }
        Ok(())
    }

    /// Saves what `doc` holds that is not stored yet, as one new chunk. Returns how many ops it
    /// wrote (0 writes nothing).
    pub fn save(&mut self, doc: &Document) -> Result<usize, String> {
        let new = doc.missing_from(&self.saved);
        if new.is_empty() {
            return Ok(0);
        }
        let key = format!("{}~{}~{}", self.base, self.tab, self.next_chunk);
        storage()?
            .set_item(&key, &wire::encode(&new)?)
            .map_err(|err| format!("could not save the drawing: {}", describe(&err)))?;
        self.next_chunk += 1;
        self.saved = doc.version_vector();
        Ok(new.len())
    }

    /// Forgets everything stored for the room.
    pub fn remove_all(&self) -> Result<(), String> {
        let storage = storage()?;
        let keys = self.keys(&storage)?;
        for key in keys {
            storage.remove_item(&key).map_err(|err| describe(&err))?;
        }
        Ok(())
    }
}

fn describe(err: &JsValue) -> String {
    js_sys::Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{err:?}"))
}

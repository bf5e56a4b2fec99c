//! Where the elements are: a uniform grid over the drawing, so what a view shows and what an
//! eraser touches are found among the elements near them, not by a scan of every element.
//!
//! Elements only ever grow (a stroke's `extend`), never move or shrink, and are never taken out
//! (erasing hides, it does not delete), so the grid only adds: an element's slot joins the cells
//! its box reaches as the box grows. An element too large for [`MAX_CELLS_PER_ELEMENT`] cells, or
//! with a box that is not finite, is kept in a list every query looks through; queries return
//! what meets the area by the exact box. Text is returned by every query: its width is an
//! estimate, not a promise (fonts differ).

use crate::shapes::Bounds;
use std::collections::HashMap;

/// Width and height of a cell, in drawing units (CSS pixels at zoom 1): a few strokes' size, so
/// a view at zoom 1 spans a few dozen cells.
pub const CELL: f32 = 256.0;
/// Beyond this many cells an element goes to the list every query returns.
pub const MAX_CELLS_PER_ELEMENT: usize = 256;
/// A query reaching more cells than this walks every slot instead (a view zoomed far out).
const MAX_QUERY_CELLS: usize = 4096;

/// An element's place in the grid: dense, in the order elements were inserted.
pub type Slot = u32;

/// The grid. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct Grid {
    cells: HashMap<(i32, i32), Vec<Slot>>,
    /// Each slot's box.
    boxes: Vec<Entry>,
    /// Slots every query looks through: too large for cells, or always returned.
    listed: Vec<Slot>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    bounds: Bounds,
    /// In `listed`.
    listed: bool,
    /// Returned by every query, whatever its box.
    always: bool,
}

/// The cells a box reaches, or `None` when it is not finite or reaches too many.
fn cell_range(b: &Bounds) -> Option<(i32, i32, i32, i32)> {
    cell_range_unbounded(b).filter(|&range| cells_in(range) <= MAX_CELLS_PER_ELEMENT as u64)
}

impl Grid {
    /// An empty grid.
    pub fn new() -> Grid {
        Grid::default()
    }

    /// How many elements it holds.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }

    /// Adds an element with box `b` (`always`: returned by every query, see the module docs);
    /// returns its slot.
    pub fn insert(&mut self, b: Bounds, always: bool) -> Slot {
        let slot = Slot::try_from(self.boxes.len()).unwrap_or(Slot::MAX);
        self.boxes.push(Entry {
            bounds: b,
            listed: false,
            always,
        });
        if always {
            self.list(slot);
        } else {
            self.place(slot, b, None);
        }
        slot
    }

    /// The element in `slot` now reaches `b` too (its box grows to the union).
    pub fn grow(&mut self, slot: Slot, b: Bounds) {
        let Some(entry) = self.boxes.get_mut(slot as usize) else {
            return;
        };
        let old = entry.bounds;
        entry.bounds = old.union(b);
        let (new, listed) = (entry.bounds, entry.listed);
        if !listed {
            self.place(slot, new, Some(old));
        }
    }

    /// Puts `slot` in the cells of `new` that `old` did not reach; or in `everywhere` if `new`
    /// reaches too many.
    fn place(&mut self, slot: Slot, new: Bounds, old: Option<Bounds>) {
        let Some((x0, y0, x1, y1)) = cell_range(&new) else {
            self.list(slot);
            return;
        };
        let was = old.and_then(|o| cell_range(&o));
        for x in x0..=x1 {
            for y in y0..=y1 {
                let known = was.is_some_and(|(a0, b0, a1, b1)| {
                    (a0..=a1).contains(&x) && (b0..=b1).contains(&y)
                });
                if !known {
                    self.cells.entry((x, y)).or_default().push(slot);
                }
            }
        }
    }

    fn list(&mut self, slot: Slot) {
        if let Some(entry) = self.boxes.get_mut(slot as usize) {
            if entry.listed {
                return;
            }
            entry.listed = true;
        }
        // Its old cells may still name it; queries dedupe.
        self.listed.push(slot);
    }

    /// The box of `slot`.
    pub fn bounds(&self, slot: Slot) -> Option<Bounds> {
        self.boxes.get(slot as usize).map(|e| e.bounds)
    }

    fn wanted(&self, slot: Slot, area: &Bounds) -> bool {
        let e = &self.boxes[slot as usize];
        e.always || e.bounds.intersects(area)
    }

    /// Every slot whose box meets `area`, and every `always` slot, each once, ascending.
    pub fn query(&self, area: &Bounds) -> Vec<Slot> {
        let mut found: Vec<Slot> = match cell_range_unbounded(area) {
            Some((x0, y0, x1, y1)) if cells_in((x0, y0, x1, y1)) <= MAX_QUERY_CELLS as u64 => {
                let mut found = Vec::new();
                for x in x0..=x1 {
                    for y in y0..=y1 {
                        if let Some(slots) = self.cells.get(&(x, y)) {
                            found.extend(slots.iter().copied().filter(|&s| self.wanted(s, area)));
                        }
                    }
                }
                found.extend(
                    self.listed
                        .iter()
                        .copied()
                        .filter(|&s| self.wanted(s, area)),
                );
                found
            }
            // A huge (or not finite) area: every slot is a candidate.
            _ => (0..self.boxes.len())
                .filter_map(|s| Slot::try_from(s).ok())
                .filter(|&s| self.wanted(s, area))
                .collect(),
        };
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// How many cells a range holds (saturating: a range over the whole `i32` plane is 2^64).
fn cells_in((x0, y0, x1, y1): (i32, i32, i32, i32)) -> u64 {
    let span = |a: i32, b: i32| (i64::from(b) - i64::from(a) + 1).max(0) as u64;
    span(x0, x1).saturating_mul(span(y0, y1))
}

/// The cells an area reaches, however many; `None` when it is not finite.
fn cell_range_unbounded(b: &Bounds) -> Option<(i32, i32, i32, i32)> {
    let finite = [b.min_x, b.min_y, b.max_x, b.max_y]
        .iter()
        .all(|v| v.is_finite());
    if !finite || b.min_x > b.max_x || b.min_y > b.max_y {
        return None;
    }
    // Coordinates are validated to within a million units, so these fit an i32 easily; `as`
    // saturates anyway.
    let cell = |v: f32| (v / CELL).floor() as i32;
    Some((cell(b.min_x), cell(b.min_y), cell(b.max_x), cell(b.max_y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn b(min_x: f32, min_y: f32, max_x: f32, max_y: f32) -> Bounds {
        Bounds {
            min_x,
            min_y,
            max_x,
            max_y,
        }
    }

    #[test]
    fn finds_what_meets_the_area_and_nothing_else() {
        let mut g = Grid::new();
        let near = g.insert(b(10.0, 10.0, 50.0, 50.0), false);
        let far = g.insert(b(5000.0, 5000.0, 5100.0, 5100.0), false);
        let across = g.insert(b(200.0, 200.0, 700.0, 300.0), false);
        assert_eq!(g.query(&b(0.0, 0.0, 100.0, 100.0)), vec![near]);
        assert_eq!(g.query(&b(600.0, 250.0, 650.0, 260.0)), vec![across]);
        assert_eq!(g.query(&b(4990.0, 4990.0, 5000.0, 5000.0)), vec![far]);
        assert!(g.query(&b(1000.0, 1000.0, 1100.0, 1100.0)).is_empty());
    }

    #[test]
    fn a_growing_element_is_found_where_it_grew_to() {
        let mut g = Grid::new();
        let s = g.insert(b(0.0, 0.0, 10.0, 10.0), false);
        let there = b(2000.0, 0.0, 2010.0, 10.0);
        assert!(g.query(&there).is_empty());
        g.grow(s, b(2000.0, 0.0, 2005.0, 5.0));
        assert_eq!(g.query(&there), vec![s]);
        // And in between, since its box is one rectangle.
        assert_eq!(g.query(&b(1000.0, 0.0, 1001.0, 1.0)), vec![s]);
        assert_eq!(g.bounds(s), Some(b(0.0, 0.0, 2005.0, 10.0)));
    }

    #[test]
    fn huge_elements_are_found_by_their_box_and_text_everywhere() {
        let mut g = Grid::new();
        let huge = g.insert(b(-900_000.0, -900_000.0, 900_000.0, 900_000.0), false);
        let text = g.insert(b(10.0, 10.0, 20.0, 20.0), true);
        let nan = g.insert(b(f32::NAN, 0.0, 1.0, 1.0), false);
        let small = g.insert(b(0.0, 0.0, 1.0, 1.0), false);
        let wide = g.insert(b(-100_000.0, 0.0, 100_000.0, 1.0), false);
        assert_eq!(
            g.query(&b(50_000.0, 50_000.0, 50_001.0, 50_001.0)),
            vec![huge, text]
        );
        assert_eq!(
            g.query(&b(0.0, 0.0, 2.0, 2.0)),
            vec![huge, text, small, wide]
        );
        assert_eq!(
            g.query(&b(99_000.0, 0.0, 99_001.0, 0.5)),
            vec![huge, text, wide]
        );
        // A view zoomed far out walks every slot; a box that is not finite meets nothing.
        assert_eq!(
            g.query(&b(-1e6, -1e6, 1e6, 1e6)),
            vec![huge, text, small, wide]
        );
        assert!(!g.query(&b(-1e6, -1e6, 1e6, 1e6)).contains(&nan));
    }

    proptest! {
        /// Whatever the boxes and their growth, a query returns exactly the boxes that meet the
        /// area (plus the always-returned ones), as a scan of every box would.
        #[test]
        fn queries_agree_with_a_scan(
            boxes in prop::collection::vec((-3000.0f32..3000.0, -3000.0f32..3000.0, 0.0f32..900.0, 0.0f32..900.0, any::<bool>()), 1..60),
            grows in prop::collection::vec((0usize..60, -3000.0f32..3000.0, -3000.0f32..3000.0, 0.0f32..300.0), 0..40),
            area in (-4000.0f32..4000.0, -4000.0f32..4000.0, 0.0f32..3000.0, 0.0f32..3000.0),
        ) {
            let mut g = Grid::new();
            let mut scan: Vec<(Bounds, bool)> = Vec::new();
            for (x, y, w, h, text) in boxes {
                let bx = b(x, y, x + w, y + h);
                g.insert(bx, text);
                scan.push((bx, text));
            }
            for (i, x, y, s) in grows {
                let i = i % scan.len();
                let more = b(x, y, x + s, y + s);
                g.grow(i as Slot, more);
                scan[i].0 = scan[i].0.union(more);
            }
            let area = b(area.0, area.1, area.0 + area.2, area.1 + area.3);
            let expected: Vec<Slot> = scan
                .iter()
                .enumerate()
                .filter(|(_, (bx, text))| *text || bx.intersects(&area))
                .map(|(i, _)| i as Slot)
                .collect();
            prop_assert_eq!(g.query(&area), expected);
        }
    }
}

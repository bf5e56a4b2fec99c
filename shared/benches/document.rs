//! The document's costs at the sizes issue 10 names, natively (`cargo bench -p shared --bench
//! document`): integrating a late join of 10,000 strokes of 50 points, listing the visible
//! elements of 20,000 strokes with and without clears (every paint does it), and the eraser's
//! hit test over them. Prints measured figures and the machine's load; asserts nothing.

use shared::document::{Document, OpKind, Shape, VersionVector};
use shared::shapes::{Bounds, hits};
use shared::{Color, PeerId, Point};
use std::hint::black_box;
use std::time::Instant;

const AUTHORS: usize = 8;

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// A small deterministic generator (no dependency for a benchmark's scatter).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
    }
}

/// `strokes` strokes of `points` points each, by [`AUTHORS`] authors, scattered over a
/// 4000 x 3000 drawing, each 40 px across: every op, in the order made.
fn drawing(strokes: usize, points: usize) -> (Document, Vec<shared::document::Op>) {
    let authors: Vec<PeerId> = (0..AUTHORS)
        .map(|i| PeerId(format!("author-{i}")))
        .collect();
    let mut doc = Document::new();
    let mut ops = Vec::new();
    let mut rng = Lcg(7);
    for n in 0..strokes {
        let author = &authors[n % AUTHORS];
        let (x0, y0) = (rng.next() * 4000.0, rng.next() * 3000.0);
        let pts = (0..points)
            .map(|i| {
                Point::new(
                    x0 + 40.0 * i as f32 / points as f32,
                    y0 + 10.0 * rng.next(),
                    1.0,
                )
            })
            .collect();
        let (add, _) = doc.make(
            author,
            OpKind::Add {
                shape: Shape::Stroke { points: pts },
                color: Color::rgb(0x19, 0x71, 0xc2),
                width: 4.0,
            },
        );
        let seq = add.seq;
        ops.push(add);
        let (finish, _) = doc.make(author, OpKind::Finish { element: seq });
        ops.push(finish);
    }
    (doc, ops)
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let start = Instant::now();
    for _ in 0..runs {
        black_box(f());
    }
    start.elapsed().as_secs_f64() * 1000.0 / runs as f64
}

fn main() {
    println!("document benchmark; load average at start {}", loadavg());

    let (_, ops) = drawing(10_000, 50);
    let ms = time(3, || {
        let mut joiner = Document::new();
        for op in ops.iter().cloned() {
            joiner.apply(op);
        }
        joiner.op_count()
    });
    println!(
        "late join, 10,000 strokes of 50 points ({} ops), integrated unchecked: {ms:.1} ms",
        ops.len()
    );

    let (mut doc, _) = drawing(20_000, 8);
    let ms = time(20, || doc.visible().count());
    println!(
        "visible(), 20,000 strokes, no clears: {ms:.2} ms ({} visible)",
        doc.visible().count()
    );
    // 50 clears, each by an author who saw a tenth of everyone's ops; then half undone.
    let authors: Vec<PeerId> = (0..AUTHORS)
        .map(|i| PeerId(format!("author-{i}")))
        .collect();
    let mut clears = Vec::new();
    for c in 0..50u64 {
        let seen = VersionVector(authors.iter().map(|a| (a.clone(), 1 + c * 5)).collect());
        let (op, _) = doc.make(&authors[c as usize % AUTHORS], OpKind::clear(seen));
        clears.push(op);
    }
    for op in clears.iter().step_by(2) {
        doc.make(&op.author, OpKind::Undo { target: op.seq });
    }
    let ms = time(20, || doc.visible().count());
    println!(
        "visible(), 20,000 strokes, 50 clears (25 undone): {ms:.2} ms ({} visible)",
        doc.visible().count()
    );

    let mut rng = Lcg(11);
    let probes: Vec<(f32, f32)> = (0..100)
        .map(|_| (rng.next() * 4000.0, rng.next() * 3000.0))
        .collect();
    let ms = time(3, || {
        probes
            .iter()
            .filter(|(x, y)| doc.visible().any(|e| hits(e, *x, *y, 8.0)))
            .count()
    }) / probes.len() as f64;
    println!("eraser hit test, one point over 20,000 strokes, scanning visible(): {ms:.3} ms");
    let ms = time(20, || {
        probes
            .iter()
            .filter(|(x, y)| !doc.hit(*x, *y, 8.0).is_empty())
            .count()
    }) / probes.len() as f64;
    println!("eraser hit test, one point over 20,000 strokes, through the grid (hit): {ms:.4} ms");
    let view = |x: f32, y: f32, w: f32, h: f32| Bounds {
        min_x: x,
        min_y: y,
        max_x: x + w,
        max_y: y + h,
    };
    let ms = time(20, || {
        doc.visible_in(&view(1500.0, 1200.0, 1000.0, 650.0)).len()
    });
    println!(
        "visible_in, a 1000 x 650 view at zoom 1 over the 4000 x 3000 drawing: {ms:.3} ms ({} elements)",
        doc.visible_in(&view(1500.0, 1200.0, 1000.0, 650.0)).len()
    );
    let ms = time(20, || {
        doc.visible_in(&view(-100.0, -100.0, 4200.0, 3200.0)).len()
    });
    println!("visible_in, everything in view: {ms:.2} ms");
    println!("load average at end {}", loadavg());
}

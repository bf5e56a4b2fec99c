//! Which pointer draws: one at a time, and a pen before any finger (palm rejection).
//!
//! A hand that writes with a pen rests its palm on the screen. The palm's touches must neither
//! draw nor pinch while the pen is down; and a palm that landed first must not keep the pen from
//! drawing. So the [`Arbiter`] keeps the pointer that draws, ignores every other pointer while a
//! pen draws, and lets a pen take over from a finger (whose stroke then ends). Between two fingers
//! or two mice the first keeps the stroke: a second finger is a pinch, not a second stroke.

/// What kind of pointer an event came from (`PointerEvent.pointerType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointerKind {
    /// A mouse or trackpad.
    Mouse,
    /// A pen or stylus.
    Pen,
    /// A finger (or a palm).
    Touch,
}

impl PointerKind {
    /// From `pointerType`; browsers may report other or empty types, which act as a mouse.
    pub fn parse(pointer_type: &str) -> PointerKind {
        match pointer_type {
            "pen" => PointerKind::Pen,
            "touch" => PointerKind::Touch,
            _ => PointerKind::Mouse,
        }
    }
}

/// What a press means for the stroke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    /// Not for drawing: another pointer draws, or a palm while the pen is down.
    Ignore,
    /// This pointer starts a stroke.
    Start,
    /// The stroke in progress ends first (a pen took over from a finger, or the same pointer
    /// pressed again after its lift went missing); then this pointer starts a stroke.
    EndThenStart,
}

/// Keeps the one pointer that draws. See the module docs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Arbiter {
    active: Option<(i32, PointerKind)>,
}

impl Arbiter {
    /// Pointer `id` of `kind` pressed.
    pub fn press(&mut self, id: i32, kind: PointerKind) -> Press {
        match self.active {
            None => {
                self.active = Some((id, kind));
                Press::Start
            }
            Some((active, _)) if active == id => Press::EndThenStart,
            Some((_, PointerKind::Touch)) if kind == PointerKind::Pen => {
                self.active = Some((id, kind));
                Press::EndThenStart
            }
            Some(_) => Press::Ignore,
        }
    }

    /// Whether pointer `id` is the one drawing (its moves extend the stroke).
    pub fn draws(&self, id: i32) -> bool {
        self.active.is_some_and(|(active, _)| active == id)
    }

    /// Pointer `id` lifted (or was cancelled): true if that ends the stroke.
    pub fn lift(&mut self, id: i32) -> bool {
        let ends = self.draws(id);
        if ends {
            self.active = None;
        }
        ends
    }

    /// Whether a pen is drawing: touches then are a palm, for gestures too.
    pub fn pen_down(&self) -> bool {
        matches!(self.active, Some((_, PointerKind::Pen)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PointerKind::{Mouse, Pen, Touch};

    #[test]
    fn a_palm_never_draws_while_the_pen_is_down() {
        let mut a = Arbiter::default();
        assert_eq!(a.press(1, Pen), Press::Start);
        assert!(a.pen_down());
        assert_eq!(a.press(2, Touch), Press::Ignore);
        assert_eq!(a.press(3, Touch), Press::Ignore);
        assert!(!a.draws(2) && a.draws(1));
        // The palm lifting ends nothing; the pen lifting ends the stroke.
        assert!(!a.lift(2));
        assert!(a.lift(1));
        assert!(!a.pen_down());
        // Afterwards a finger draws again.
        assert_eq!(a.press(2, Touch), Press::Start);
    }

    #[test]
    fn a_pen_takes_over_from_a_palm_that_landed_first() {
        let mut a = Arbiter::default();
        assert_eq!(a.press(7, Touch), Press::Start);
        assert_eq!(a.press(1, Pen), Press::EndThenStart);
        assert!(a.draws(1) && !a.draws(7) && a.pen_down());
        // The palm's lift ends nothing now.
        assert!(!a.lift(7));
        assert!(a.draws(1));
    }

    #[test]
    fn the_first_finger_or_mouse_keeps_the_stroke() {
        let mut a = Arbiter::default();
        assert_eq!(a.press(1, Touch), Press::Start);
        assert_eq!(a.press(2, Touch), Press::Ignore);
        assert_eq!(a.press(3, Mouse), Press::Ignore);
        assert!(a.lift(1));
        assert_eq!(a.press(3, Mouse), Press::Start);
        assert_eq!(
            a.press(4, Pen),
            Press::Ignore,
            "a pen does not take over from a mouse"
        );
        assert_eq!(a.press(3, Mouse), Press::EndThenStart, "a missed lift");
        assert!(a.draws(3));
    }

    #[test]
    fn kinds_parse_from_pointer_type() {
        assert_eq!(PointerKind::parse("pen"), Pen);
        assert_eq!(PointerKind::parse("touch"), Touch);
        assert_eq!(PointerKind::parse("mouse"), Mouse);
        assert_eq!(PointerKind::parse(""), Mouse);
    }
}

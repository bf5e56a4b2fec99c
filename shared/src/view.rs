//! The view: which part of the (unbounded) drawing the canvas shows, and how large.
//!
//! Drawing coordinates ("world") are fixed; the view maps them to the canvas's CSS pixels
//! ("screen"): `screen = (world - origin) * zoom`. Panning moves the origin, zooming scales about
//! a fixed screen point (the pointer, or the pinch centre) so what is under it stays under it.

/// Smallest zoom.
pub const MIN_ZOOM: f32 = 0.1;
/// Largest zoom.
pub const MAX_ZOOM: f32 = 10.0;

/// A pan and zoom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct View {
    /// World x at the canvas's left edge.
    pub x: f32,
    /// World y at the canvas's top edge.
    pub y: f32,
    /// Screen pixels per world unit.
    pub zoom: f32,
}

impl Default for View {
    fn default() -> View {
        View {
            x: 0.0,
            y: 0.0,
            zoom: 1.0,
        }
    }
}

impl View {
    /// The world point under a screen point.
    pub fn to_world(&self, sx: f32, sy: f32) -> (f32, f32) {
        (self.x + sx / self.zoom, self.y + sy / self.zoom)
    }

    /// The screen point of a world point.
    pub fn to_screen(&self, wx: f32, wy: f32) -> (f32, f32) {
        ((wx - self.x) * self.zoom, (wy - self.y) * self.zoom)
    }

    /// How a picture painted at view `painted` must be drawn to show this view: scaled by the
    /// first number, then moved by the other two (screen pixels). While a large drawing is
    /// repainted for a new view, frames show the old picture so, to follow a pan or a zoom at
    /// once.
    pub fn relative_to(&self, painted: &View) -> (f32, f32, f32) {
        let scale = self.zoom / painted.zoom;
        (
            scale,
            (painted.x - self.x) * self.zoom,
            (painted.y - self.y) * self.zoom,
        )
    }

    /// Moves the drawing by a screen-pixel drag.
    pub fn pan_by(&mut self, dx: f32, dy: f32) {
        self.x -= dx / self.zoom;
        self.y -= dy / self.zoom;
    }

    /// Multiplies the zoom by `factor` (clamped), keeping the world point under `(sx, sy)` there.
    pub fn zoom_at(&mut self, sx: f32, sy: f32, factor: f32) {
        if !factor.is_finite() || factor <= 0.0 {
            return;
        }
        let (wx, wy) = self.to_world(sx, sy);
        self.zoom = (self.zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        self.x = wx - sx / self.zoom;
        self.y = wy - sy / self.zoom;
    }

    /// The zoom factor for a wheel delta (in pixels): smooth, and symmetric in and out.
    pub fn wheel_factor(delta_y: f32) -> f32 {
        (-delta_y.clamp(-500.0, 500.0) * 0.002).exp()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_old_picture_drawn_relative_to_the_new_view_lands_where_the_new_view_would_paint() {
        let painted = View {
            x: 100.0,
            y: -40.0,
            zoom: 1.5,
        };
        let mut now = painted;
        now.zoom_at(300.0, 200.0, 2.5);
        now.pan_by(-70.0, 35.0);
        let (scale, dx, dy) = now.relative_to(&painted);
        for (wx, wy) in [(0.0, 0.0), (250.0, 90.0), (-1000.0, 4000.0)] {
            let (px, py) = painted.to_screen(wx, wy);
            let (sx, sy) = now.to_screen(wx, wy);
            assert!((px * scale + dx - sx).abs() < 1e-2, "x of ({wx}, {wy})");
            assert!((py * scale + dy - sy).abs() < 1e-2, "y of ({wx}, {wy})");
        }
        assert_eq!(painted.relative_to(&painted), (1.0, 0.0, 0.0));
    }

    use super::*;

    fn close(a: (f32, f32), b: (f32, f32)) -> bool {
        (a.0 - b.0).abs() < 1e-3 && (a.1 - b.1).abs() < 1e-3
    }

    #[test]
    fn world_and_screen_are_inverse() {
        let v = View {
            x: 10.0,
            y: -5.0,
            zoom: 2.5,
        };
        assert!(close(
            v.to_screen(v.to_world(33.0, 44.0).0, v.to_world(33.0, 44.0).1),
            (33.0, 44.0)
        ));
        assert!(close(View::default().to_world(7.0, 8.0), (7.0, 8.0)));
    }

    #[test]
    fn zooming_keeps_the_point_under_the_pointer() {
        let mut v = View::default();
        let under = v.to_world(200.0, 100.0);
        v.zoom_at(200.0, 100.0, 2.0);
        assert_eq!(v.zoom, 2.0);
        assert!(close(v.to_world(200.0, 100.0), under));
        v.zoom_at(0.0, 0.0, 1000.0);
        assert_eq!(v.zoom, MAX_ZOOM);
        v.zoom_at(0.0, 0.0, f32::NAN);
        assert_eq!(v.zoom, MAX_ZOOM);
    }

    #[test]
    fn panning_follows_the_drag() {
        let mut v = View {
            x: 0.0,
            y: 0.0,
            zoom: 2.0,
        };
        let before = v.to_world(50.0, 50.0);
        v.pan_by(20.0, -10.0);
        // The world point that was at (50, 50) is now at (70, 40).
        assert!(close(v.to_world(70.0, 40.0), before));
    }

    #[test]
    fn wheel_in_and_out_cancel() {
        let f = View::wheel_factor(100.0) * View::wheel_factor(-100.0);
        assert!((f - 1.0).abs() < 1e-6);
        assert!(View::wheel_factor(100.0) < 1.0, "wheel down zooms out");
    }
}

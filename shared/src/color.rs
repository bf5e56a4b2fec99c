//! Colours as they travel: `#rrggbb` strings, validated on the way in, plus the swatch palette.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An opaque sRGB colour, written `#rrggbb` on the wire and in CSS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Color {
    /// Red, 0 to 255.
    pub r: u8,
    /// Green, 0 to 255.
    pub g: u8,
    /// Blue, 0 to 255.
    pub b: u8,
}

/// The swatches offered in the palette (the tutorial's part 3 idea: a row of ready colours).
pub const PALETTE: [Color; 12] = [
    Color::rgb(0x22, 0x22, 0x22),
    Color::rgb(0x86, 0x8e, 0x96),
    Color::rgb(0xe0, 0x31, 0x31),
    Color::rgb(0xf0, 0x8c, 0x00),
    Color::rgb(0xf5, 0xc5, 0x18),
    Color::rgb(0x2f, 0x9e, 0x44),
    Color::rgb(0x0c, 0xa6, 0x78),
    Color::rgb(0x33, 0x99, 0x99),
    Color::rgb(0x19, 0x71, 0xc2),
    Color::rgb(0x5f, 0x3d, 0xc4),
    Color::rgb(0xc2, 0x25, 0x9e),
    Color::rgb(0x8d, 0x5a, 0x3b),
];

/// Why a string is not a colour.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColorError;

impl fmt::Display for ColorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("colour must be #rrggbb")
    }
}

impl std::error::Error for ColorError {}

impl Color {
    /// A colour from its components.
    pub const fn rgb(r: u8, g: u8, b: u8) -> Color {
        Color { r, g, b }
    }

    /// Parses `#rrggbb` (either case).
    pub fn parse(s: &str) -> Result<Color, ColorError> {
        let hex = s.strip_prefix('#').ok_or(ColorError)?;
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ColorError);
        }
        let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| ColorError);
        Ok(Color::rgb(channel(0)?, channel(2)?, channel(4)?))
    }

    /// A palette swatch picked by a random number, for a user's starting colour.
    pub fn from_palette(random: u32) -> Color {
        PALETTE[random as usize % PALETTE.len()]
    }
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.r, self.g, self.b)
    }
}

impl TryFrom<String> for Color {
    type Error = ColorError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Color::parse(&s)
    }
}

impl From<Color> for String {
    fn from(c: Color) -> String {
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_hex() {
        let c = Color::parse("#E03131").unwrap();
        assert_eq!(c, Color::rgb(0xe0, 0x31, 0x31));
        assert_eq!(c.to_string(), "#e03131");
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "e03131",
            "#e0313",
            "#e031311",
            "#gg0000",
            "red",
            "rgb(1,2,3)",
            "#ééé",
        ] {
            assert_eq!(Color::parse(bad), Err(ColorError), "{bad}");
        }
    }

    #[test]
    fn palette_pick_covers_every_swatch() {
        let picked: std::collections::HashSet<_> = (0..24).map(Color::from_palette).collect();
        assert_eq!(picked.len(), PALETTE.len());
    }
}

//! Server-Sent Events parsing, incremental (the WHATWG "event stream interpretation", minus the
//! parts a load generator has no use for: `retry`, and the last event id carried across events).
//! Comments are reported rather than dropped: the keep-alive check in `hold` counts them.

use std::fmt;

/// Longest line accepted. The server's largest events are relays (64 KiB of body at most,
/// wrapped in a little JSON); past that the stream is broken, not busy.
const MAX_LINE: usize = 256 * 1024;

/// What the stream delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A `:` comment line (axum's keep-alive is an empty one).
    Comment,
    /// A complete event (dispatched at its blank line).
    Event(SseEvent),
}

/// One event: its `id:`, `event:` (empty when absent: the default type, "message") and `data:`
/// (several data lines joined with `\n`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
    /// The `event:` field.
    pub event: String,
    /// The `data:` lines.
    pub data: String,
}

/// The stream broke the format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineTooLong;

impl fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SSE line longer than {MAX_LINE} bytes")
    }
}

impl std::error::Error for LineTooLong {}

/// Incremental parser: feed it the body bytes as they arrive.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    /// The last byte fed was a CR: an LF right after it belongs to the same line end.
    after_cr: bool,
    id: Option<String>,
    event: String,
    data: String,
    /// A `data:` line was seen for the pending event (an event without one is not dispatched).
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Parses `input`, calling `emit` for every comment and complete event in it. A line or an
    /// event split across calls is completed by a later call.
    pub fn feed(
        &mut self,
        mut input: &[u8],
        emit: &mut impl FnMut(SseItem),
    ) -> Result<(), LineTooLong> {
        while !input.is_empty() {
            if self.after_cr {
                self.after_cr = false;
                if input[0] == b'\n' {
                    input = &input[1..];
                    continue;
                }
            }
            match input.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(end) => {
                    self.push(&input[..end])?;
                    self.after_cr = input[end] == b'\r';
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line, emit);
                    // Keep the allocation: most lines are about the same length.
                    self.line = line;
                    self.line.clear();
                }
                None => {
                    self.push(input)?;
                    input = &[];
                }
            }
        }
        Ok(())
    }

    fn push(&mut self, part: &[u8]) -> Result<(), LineTooLong> {
        if self.line.len() + part.len() > MAX_LINE {
            return Err(LineTooLong);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }

    fn line_done(&mut self, line: &[u8], emit: &mut impl FnMut(SseItem)) {
        if line.is_empty() {
            if self.has_data {
                emit(SseItem::Event(SseEvent {
                    id: self.id.take(),
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                }));
            }
            self.id = None;
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line[0] == b':' {
            emit(SseItem::Comment);
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event = value.into_owned(),
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            // The spec ignores an id holding NUL.
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            // `retry` and unknown fields: nothing we measure.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_split(input: &[u8], split_every: usize) -> Vec<SseItem> {
        let mut parser = SseParser::new();
        let mut items = Vec::new();
        for part in input.chunks(split_every) {
            parser
                .feed(part, &mut |item| items.push(item))
                .expect("short lines");
        }
        items
    }

    fn event(id: Option<&str>, name: &str, data: &str) -> SseItem {
        SseItem::Event(SseEvent {
            id: id.map(str::to_owned),
            event: name.into(),
            data: data.into(),
        })
    }

    #[test]
    fn axum_events_and_keepalives_at_every_split() {
        // What axum writes: fields in any order, keep-alive as an empty comment.
        let stream = b"event: connected\ndata: {\"user\":{\"id\":\"a\"}}\nid: 1\n\n:\n\nid: 2\nevent: add-peer\ndata: {}\n\n";
        for split in 1..=stream.len() {
            assert_eq!(
                parse_split(stream, split),
                vec![
                    event(Some("1"), "connected", "{\"user\":{\"id\":\"a\"}}"),
                    SseItem::Comment,
                    event(Some("2"), "add-peer", "{}"),
                ],
                "split every {split}"
            );
        }
    }

    #[test]
    fn crlf_and_cr_line_ends_split_anywhere() {
        let stream = b"data: a\r\ndata: b\r\rdata:c\rid\r\n\r\n: note\r\n";
        for split in 1..=stream.len() {
            assert_eq!(
                parse_split(stream, split),
                vec![
                    event(None, "", "a\nb"),
                    event(Some(""), "", "c"),
                    SseItem::Comment
                ],
                "split every {split}"
            );
        }
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(parse_split(b"event: lonely\nid: 9\n\n", 64), vec![]);
        // ...and its fields do not leak into the next event.
        assert_eq!(
            parse_split(b"event: lonely\n\ndata: x\n\n", 64),
            vec![event(None, "", "x")]
        );
    }

    #[test]
    fn overlong_line_is_an_error() {
        let mut parser = SseParser::new();
        let long = vec![b'x'; MAX_LINE + 1];
        assert_eq!(parser.feed(&long, &mut |_| {}), Err(LineTooLong));
    }
}

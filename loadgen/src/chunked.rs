//! HTTP/1.1 chunked transfer decoding, incremental. An SSE response has no length, so hyper
//! sends it chunked: one endless body whose chunk boundaries fall anywhere across our reads
//! (a size line can be split between two reads, and so can the CRLF after the data).

use std::fmt;

/// Longest chunk-size line accepted (hex digits plus any extensions). Real ones are a few bytes;
/// a limit keeps a broken peer from growing our buffer without end.
const MAX_SIZE_LINE: usize = 1024;

/// Why a chunked body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The size line is not hexadecimal (or overflows).
    BadSize(String),
    /// The data of a chunk was not followed by CRLF.
    BadTerminator(u8),
    /// The size line exceeded [`MAX_SIZE_LINE`].
    SizeLineTooLong,
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::BadSize(line) => write!(f, "bad chunk size line {line:?}"),
            ChunkError::BadTerminator(b) => {
                write!(f, "chunk data ends with byte {b:#04x}, not CRLF")
            }
            ChunkError::SizeLineTooLong => f.write_str("chunk size line too long"),
        }
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hexadecimal size line, up to its LF.
    Size,
    /// Inside a chunk: this many data bytes still to come.
    Data(u64),
    /// After a chunk's data: its CR.
    DataCr,
    /// After a chunk's data: its LF.
    DataLf,
    /// After the last (zero) chunk: trailer lines until an empty one.
    Trailer,
    /// The body is complete.
    Done,
}

/// Incremental decoder: feed it bytes as they arrive, get the body bytes out.
#[derive(Debug)]
pub struct Dechunker {
    state: State,
    line: Vec<u8>,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker::new()
    }
}

impl Dechunker {
    /// A decoder at the start of a body.
    pub fn new() -> Dechunker {
        Dechunker {
            state: State::Size,
            line: Vec::new(),
        }
    }

    /// Whether the final chunk and its trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, appending the body bytes it holds to `out`. Bytes after the end of the
    /// body are ignored (a keep-alive connection's next response; we never pipeline).
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ChunkError> {
        while !input.is_empty() {
            match self.state {
                State::Size | State::Trailer => {
                    let Some(lf) = input.iter().position(|&b| b == b'\n') else {
                        self.push_line(input)?;
                        return Ok(());
                    };
                    self.push_line(&input[..lf])?;
                    input = &input[lf + 1..];
                    let line = std::mem::take(&mut self.line);
                    let line = line.strip_suffix(b"\r").unwrap_or(&line);
                    self.state = if self.state == State::Size {
                        match parse_size(line)? {
                            0 => State::Trailer,
                            n => State::Data(n),
                        }
                    } else if line.is_empty() {
                        State::Done
                    } else {
                        State::Trailer
                    };
                }
                State::Data(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data(left)
                    };
                }
                State::DataCr => {
                    match input[0] {
                        b'\r' => self.state = State::DataLf,
                        // A bare LF is tolerated, as most decoders do.
                        b'\n' => self.state = State::Size,
                        b => return Err(ChunkError::BadTerminator(b)),
                    }
                    input = &input[1..];
                }
                State::DataLf => {
                    if input[0] != b'\n' {
                        return Err(ChunkError::BadTerminator(input[0]));
                    }
                    self.state = State::Size;
                    input = &input[1..];
                }
                State::Done => return Ok(()),
            }
        }
        Ok(())
    }

    fn push_line(&mut self, part: &[u8]) -> Result<(), ChunkError> {
        if self.line.len() + part.len() > MAX_SIZE_LINE {
            return Err(ChunkError::SizeLineTooLong);
        }
        self.line.extend_from_slice(part);
        Ok(())
    }
}

/// The size in a chunk-size line: hex digits, then optional `;extensions`.
fn parse_size(line: &[u8]) -> Result<u64, ChunkError> {
    let text = String::from_utf8_lossy(line);
    let digits = text.split(';').next().unwrap_or("").trim();
    if digits.is_empty() || digits.len() > 16 {
        return Err(ChunkError::BadSize(text.into_owned()));
    }
    u64::from_str_radix(digits, 16).map_err(|_| ChunkError::BadSize(text.into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_split(input: &[u8], split_every: usize) -> (Vec<u8>, bool) {
        let mut d = Dechunker::new();
        let mut out = Vec::new();
        for part in input.chunks(split_every) {
            d.feed(part, &mut out).expect("valid chunked body");
        }
        (out, d.is_done())
    }

    #[test]
    fn decodes_whole_and_at_every_split() {
        let body = b"5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n";
        for split in 1..=body.len() {
            let (out, done) = decode_split(body, split);
            assert_eq!(out, b"hello, world", "split every {split}");
            assert!(done, "split every {split}");
        }
    }

    #[test]
    fn endless_body_is_not_done() {
        let (out, done) = decode_split(b"18\r\nevent: x\ndata: {\"a\":1}\n\n\r\n3\r\n:\n\n", 3);
        assert_eq!(out, b"event: x\ndata: {\"a\":1}\n\n:\n\n");
        assert!(!done);
    }

    #[test]
    fn uppercase_hex_and_bare_lf() {
        let (out, _) = decode_split(b"A\nabcdefghij\n0\n\n", 4);
        assert_eq!(out, b"abcdefghij");
    }

    #[test]
    fn rejects_garbage() {
        let mut out = Vec::new();
        assert!(matches!(
            Dechunker::new().feed(b"zz\r\n", &mut out),
            Err(ChunkError::BadSize(_))
        ));
        assert_eq!(
            Dechunker::new().feed(b"2\r\nabX", &mut out),
            Err(ChunkError::BadTerminator(b'X'))
        );
        assert_eq!(
            Dechunker::new().feed(&[b'1'; 2000], &mut out),
            Err(ChunkError::SizeLineTooLong)
        );
    }
}

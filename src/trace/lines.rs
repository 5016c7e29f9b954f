//! A streaming line reader with a bounded line buffer.
//!
//! `BufRead::read_until` would grow its buffer to the size of the longest line,
//! so a 2 GB single-line log would need 2 GB. This reader keeps at most
//! `max_line` bytes of each line and skips the rest, so memory stays bounded
//! whatever the input. Lines are split on `\n` only: line numbers are those of
//! the raw file, 1-based (a trailing `\r` stays part of the line and is handled
//! by the cleaner).

use std::io::{self, BufRead};

/// Bytes of one line kept for analysis; the rest of an overlong line is skipped.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024;

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    max_line: usize,
    line_no: u64,
    bytes_read: u64,
    cut: bool,
}

impl<R: BufRead> LineReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: Vec::with_capacity(1024),
            max_line: max_line.max(1),
            line_no: 0,
            bytes_read: 0,
            cut: false,
        }
    }

    /// The next line without its `\n`, or `None` at the end of input.
    /// The slice is valid until the next call; no allocation happens once the
    /// buffer has grown to `max_line`.
    pub fn next_line(&mut self) -> io::Result<Option<&[u8]>> {
        Ok(if self.advance()? {
            Some(&self.buf)
        } else {
            None
        })
    }

    /// Reads the next line into the internal buffer ([`LineReader::line`]);
    /// `false` at the end of input.
    pub fn advance(&mut self) -> io::Result<bool> {
        self.buf.clear();
        self.cut = false;
        let mut seen_any = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !seen_any {
                    return Ok(false);
                }
                break;
            }
            seen_any = true;
            let (chunk_len, found_newline) = match memchr::memchr(b'\n', available) {
                Some(i) => (i, true),
                None => (available.len(), false),
            };
            let room = self.max_line - self.buf.len();
            if chunk_len > room {
                self.cut = true;
            }
            self.buf
                .extend_from_slice(&available[..chunk_len.min(room)]);
            let consumed = chunk_len + usize::from(found_newline);
            self.inner.consume(consumed);
            self.bytes_read += consumed as u64;
            if found_newline {
                break;
            }
        }
        self.line_no += 1;
        Ok(true)
    }

    /// The line last read by [`LineReader::advance`].
    pub fn line(&self) -> &[u8] {
        &self.buf
    }

    /// 1-based number of the line last returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Whether the line last returned was longer than `max_line` and was cut.
    pub fn was_cut(&self) -> bool {
        self.cut
    }

    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn collect(input: &[u8], max: usize) -> Vec<(u64, Vec<u8>, bool)> {
        let mut r = LineReader::with_max_line(BufReader::with_capacity(4, Cursor::new(input)), max);
        let mut out = Vec::new();
        while let Some(l) = r.next_line().unwrap() {
            let l = l.to_vec();
            out.push((r.line_no(), l, r.was_cut()));
        }
        out
    }

    #[test]
    fn splits_on_newline_and_numbers_from_one() {
        let got = collect(b"a\r\nbb\n\nccc", 100);
        assert_eq!(got.len(), 4);
        assert_eq!(got[0], (1, b"a\r".to_vec(), false));
        assert_eq!(got[2], (3, b"".to_vec(), false));
        assert_eq!(got[3], (4, b"ccc".to_vec(), false));
    }

    #[test]
    fn trailing_newline_adds_no_empty_line() {
        assert_eq!(collect(b"x\ny\n", 100).len(), 2);
        assert!(collect(b"", 100).is_empty());
    }

    #[test]
    fn overlong_lines_are_cut_and_the_rest_skipped() {
        let mut input = vec![b'z'; 1000];
        input.extend_from_slice(b"\nnext\n");
        let got = collect(&input, 10);
        assert_eq!(got[0].1, vec![b'z'; 10]);
        assert!(got[0].2);
        assert_eq!(got[1], (2, b"next".to_vec(), false));
    }
}

//! Splitting a byte stream into lines with bounded memory.
//!
//! Reads in large blocks and finds line ends with `memchr`, so a line costs a
//! slice, not a copy. A line longer than the limit is never held in memory:
//! its first bytes are kept for the error message and the rest is skipped up
//! to the next newline. `\r\n` endings lose their `\r`, and a UTF-8 BOM at the
//! very start of the stream is dropped.

use std::io::{self, Read};

const BLOCK: usize = 256 * 1024;
/// The starting buffer of a followed file's reader.
const FOLLOW_BLOCK: usize = 16 * 1024;
/// How many bytes of an overlong line are kept for the reject message.
pub const HEAD_BYTES: usize = 200;

/// One line of input, or the marker of one that was too long.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Text {
        bytes: &'a [u8],
        /// 1-based line number.
        number: u64,
        /// Offset of the line's first byte in the stream.
        offset: u64,
    },
    TooLong {
        head: Vec<u8>,
        len: u64,
        number: u64,
        offset: u64,
    },
}

pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Stream offset of `buf[0]`.
    base: u64,
    next_number: u64,
    max_line: usize,
    /// Whether an unterminated last line is a line (replay) or not (watch).
    final_partial: bool,
    at_start: bool,
    /// An overlong line cut by the end of a growing file: (head, offset,
    /// bytes skipped so far); skipping goes on when more arrives.
    skipping: Option<(Vec<u8>, u64, u64)>,
    /// The size the buffer returns to once a line longer than it has passed.
    min_cap: usize,
}

impl<R: Read> LineReader<R> {
    /// A reader starting at stream `offset` with line number `first_line`.
    pub fn new(inner: R, max_line: usize, offset: u64, first_line: u64) -> LineReader<R> {
        let cap = BLOCK.max(max_line.saturating_add(2).min(64 << 20));
        LineReader::with_capacity(inner, cap, max_line, offset, first_line)
    }

    /// A reader for following one of many files: it starts with a small
    /// buffer, grows it only for a line that does not fit, and shrinks it
    /// back once that line has passed, so memory does not grow with
    /// `files × max_line`.
    pub fn following(inner: R, max_line: usize, offset: u64, first_line: u64) -> LineReader<R> {
        LineReader::with_capacity(inner, FOLLOW_BLOCK, max_line, offset, first_line)
            .hold_partial_line()
    }

    fn with_capacity(
        inner: R,
        cap: usize,
        max_line: usize,
        offset: u64,
        first_line: u64,
    ) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; cap],
            start: 0,
            end: 0,
            eof: false,
            base: offset,
            next_number: first_line,
            max_line,
            final_partial: true,
            at_start: offset == 0,
            skipping: None,
            min_cap: cap,
        }
    }

    /// Gives back the buffer of a reader that is idle at the end of its
    /// stream, keeping only the bytes of an unterminated last line.
    pub fn release(&mut self) {
        let pending = self.end - self.start;
        if pending == 0 {
            self.base += self.end as u64;
            self.buf = Vec::new();
        } else {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.buf.truncate(pending);
            self.buf.shrink_to_fit();
        }
        self.start = 0;
        self.end = pending;
    }

    /// How far into the stream the reader has read (past the lines returned
    /// when a partial line is held).
    pub fn stream_position(&self) -> u64 {
        self.base + self.end as u64
    }

    /// The bytes the line buffer holds now, for tests of memory use.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Leaves an unterminated last line unread, for following a growing file:
    /// the end of the stream is then never final, and the next call reads
    /// again what was appended meanwhile.
    pub fn hold_partial_line(mut self) -> Self {
        self.final_partial = false;
        self
    }

    /// Offset just past the last line returned.
    pub fn offset(&self) -> u64 {
        match &self.skipping {
            Some((_, offset, _)) => *offset,
            None => self.base + self.start as u64,
        }
    }

    /// Number the next line will get.
    pub fn next_number(&self) -> u64 {
        self.next_number
    }

    /// Makes room and reads more; `false` at end of stream.
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof && self.final_partial {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() > self.min_cap && self.end <= self.min_cap / 2 {
            // A line longer than the usual buffer has passed.
            self.buf.truncate(self.min_cap);
            self.buf.shrink_to_fit();
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).max(self.min_cap);
            self.buf.resize(grown, 0);
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    if self.at_start && self.end >= 3 {
                        self.at_start = false;
                        if self.buf[..3] == [0xEF, 0xBB, 0xBF] {
                            self.start = 3;
                        }
                    }
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The next line, or `None` at the end of the stream.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        if self.skipping.is_some() {
            return self.skip_long_line();
        }
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(i) = memchr::memchr(b'\n', avail) {
                if i > self.max_line && !(i == self.max_line + 1 && avail[i - 1] == b'\r') {
                    let head = avail[..HEAD_BYTES.min(i)].to_vec();
                    let line = self.too_long(head, i as u64);
                    self.start += i + 1;
                    return Ok(Some(line));
                }
                let offset = self.base + self.start as u64;
                let number = self.next_number;
                self.next_number += 1;
                let s = self.start;
                self.start += i + 1;
                let mut bytes = &self.buf[s..s + i];
                if let [rest @ .., b'\r'] = bytes {
                    bytes = rest;
                }
                return Ok(Some(Line::Text {
                    bytes,
                    number,
                    offset,
                }));
            }
            if avail.len() > self.max_line + 1 {
                return self.skip_long_line();
            }
            if !self.fill()? {
                if self.at_start && self.end < 3 {
                    self.at_start = false;
                }
                if self.start == self.end || !self.final_partial {
                    return Ok(None);
                }
                // An unterminated last line.
                let offset = self.base + self.start as u64;
                let number = self.next_number;
                self.next_number += 1;
                let s = self.start;
                self.start = self.end;
                let mut bytes = &self.buf[s..self.end];
                if let [rest @ .., b'\r'] = bytes {
                    bytes = rest;
                }
                return Ok(Some(Line::Text {
                    bytes,
                    number,
                    offset,
                }));
            }
        }
    }

    fn too_long(&mut self, head: Vec<u8>, len: u64) -> Line<'static> {
        let number = self.next_number;
        self.next_number += 1;
        Line::TooLong {
            head,
            len,
            number,
            offset: self.base + self.start as u64,
        }
    }

    /// Skips the rest of an overlong line without keeping it; `None` when a
    /// growing file ends inside it (it goes on at the next call).
    fn skip_long_line(&mut self) -> io::Result<Option<Line<'static>>> {
        let (mut head, offset, mut len) = match self.skipping.take() {
            Some(s) => s,
            None => (Vec::new(), self.base + self.start as u64, 0),
        };
        loop {
            let avail = &self.buf[self.start..self.end];
            let line = memchr::memchr(b'\n', avail);
            // The head is the line's own first bytes, however the reads cut it.
            let want = HEAD_BYTES.saturating_sub(head.len());
            head.extend_from_slice(&avail[..want.min(line.unwrap_or(avail.len()))]);
            if let Some(i) = line {
                len += i as u64;
                self.start += i + 1;
                break;
            }
            len += avail.len() as u64;
            // Drop what we have: keep nothing of the line in memory.
            self.base += self.end as u64;
            self.start = 0;
            self.end = 0;
            if !self.fill()? {
                if !self.final_partial {
                    self.skipping = Some((head, offset, len));
                    return Ok(None);
                }
                break;
            }
        }
        let number = self.next_number;
        self.next_number += 1;
        Ok(Some(Line::TooLong {
            head,
            len,
            number,
            offset,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<String> {
        let mut r = LineReader::new(input, max, 0, 1);
        let mut out = Vec::new();
        while let Some(line) = r.next_line().unwrap() {
            out.push(match line {
                Line::Text {
                    bytes,
                    number,
                    offset,
                } => {
                    format!("{number}@{offset}:{}", String::from_utf8_lossy(bytes))
                }
                Line::TooLong {
                    head,
                    len,
                    number,
                    offset,
                } => {
                    format!(
                        "{number}@{offset}:long {len} {}",
                        String::from_utf8_lossy(&head[..3])
                    )
                }
            });
        }
        out
    }

    #[test]
    fn crlf_bom_and_unterminated_last_line() {
        let got = lines(b"\xEF\xBB\xBFa\r\nbb\n\nccc", 100);
        assert_eq!(got, vec!["1@3:a", "2@6:bb", "3@9:", "4@10:ccc"]);
    }

    #[test]
    fn overlong_lines_are_skipped_with_their_head() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 1000));
        input.extend(b"\nfine\n");
        assert_eq!(
            lines(&input, 10),
            vec!["1@0:ok", "2@3:long 1000 xxx", "3@1004:fine"]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes_even_with_crlf() {
        assert_eq!(
            lines(b"abcd\r\nabcde\n", 4),
            vec!["1@0:abcd", "2@6:long 5 abc"]
        );
    }

    #[test]
    fn huge_line_longer_than_the_buffer_uses_bounded_memory() {
        let mut input = Vec::new();
        input.extend(std::iter::repeat_n(b'y', 3 * BLOCK + 17));
        input.extend(b"\nz");
        let got = lines(&input, 1000);
        assert_eq!(
            got,
            vec![
                format!("1@0:long {} yyy", 3 * BLOCK + 17),
                format!("2@{}:z", 3 * BLOCK + 18)
            ]
        );
    }

    /// A reader that hands out at most `n` bytes per read.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = out.len().min(self.1).min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn an_overlong_line_cut_by_a_read_keeps_only_its_own_bytes_as_head() {
        // The line is too long before its newline is read: the head used to
        // be 200 bytes of the buffer, past the line's end.
        let input = format!("{}\nnext\n", "x".repeat(100));
        let mut r = LineReader::new(Trickle(input.as_bytes(), 80), 64, 0, 1);
        match r.next_line().unwrap() {
            Some(Line::TooLong { head, len, .. }) => {
                assert_eq!((head.len(), len), (100, 100));
                assert!(head.iter().all(|&b| b == b'x'));
            }
            other => panic!("{other:?}"),
        }
    }

    /// A reader over a shared buffer that a test appends to.
    struct Growing(std::rc::Rc<std::cell::RefCell<(Vec<u8>, usize)>>);

    impl Read for Growing {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let mut s = self.0.borrow_mut();
            let (data, pos) = &mut *s;
            let n = out.len().min(data.len() - *pos);
            out[..n].copy_from_slice(&data[*pos..*pos + n]);
            *pos += n;
            Ok(n)
        }
    }

    #[test]
    fn a_followed_stream_reads_what_is_appended_after_its_end() {
        let shared = std::rc::Rc::new(std::cell::RefCell::new((b"a\nb".to_vec(), 0)));
        let mut r = LineReader::new(Growing(shared.clone()), 100, 0, 1).hold_partial_line();
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Text { bytes: b"a", .. })
        ));
        assert_eq!(r.next_line().unwrap(), None);
        shared.borrow_mut().0.extend(b"c\n");
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"bc",
                number: 2,
                ..
            })
        ));
        assert_eq!(r.offset(), 5);
    }

    #[test]
    fn an_overlong_line_cut_by_the_end_of_a_growing_file_is_one_reject() {
        let shared = std::rc::Rc::new(std::cell::RefCell::new((b"ok\n".to_vec(), 0)));
        let mut r = LineReader::new(Growing(shared.clone()), 300, 0, 1).hold_partial_line();
        assert!(r.next_line().unwrap().is_some());
        shared
            .borrow_mut()
            .0
            .extend(std::iter::repeat_n(b'x', 1000));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(
            r.offset(),
            3,
            "a checkpoint never points inside the long line"
        );
        shared
            .borrow_mut()
            .0
            .extend(std::iter::repeat_n(b'x', 1000));
        assert_eq!(r.next_line().unwrap(), None);
        shared.borrow_mut().0.extend(b"x\nfine\n");
        match r.next_line().unwrap() {
            Some(Line::TooLong {
                len,
                number,
                offset,
                ..
            }) => assert_eq!((len, number, offset), (2001, 2, 3)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Text {
                bytes: b"fine",
                number: 3,
                ..
            })
        ));
    }

    #[test]
    fn a_following_buffer_shrinks_once_a_long_line_has_passed() {
        let mut input = vec![b'x'; 500_000];
        input.push(b'\n');
        for _ in 0..1000 {
            input.extend_from_slice(b"short line\n");
        }
        let mut r = LineReader::following(&input[..], 1 << 20, 0, 1);
        let first = r.next_line().unwrap();
        assert!(matches!(first, Some(Line::Text { bytes, .. }) if bytes.len() == 500_000));
        assert!(r.capacity() >= 500_000);
        let mut n = 0;
        while r.next_line().unwrap().is_some() {
            n += 1;
        }
        assert_eq!(n, 1000);
        assert!(r.capacity() <= FOLLOW_BLOCK, "{}", r.capacity());
        r.release();
        assert_eq!(r.capacity(), 0);
        assert_eq!(r.offset(), input.len() as u64);
    }

    #[test]
    fn partial_last_line_is_held_when_following() {
        let mut r = LineReader::new(&b"a\nb"[..], 100, 0, 1).hold_partial_line();
        assert!(matches!(
            r.next_line().unwrap(),
            Some(Line::Text { bytes: b"a", .. })
        ));
        assert_eq!(r.next_line().unwrap(), None);
        assert_eq!(r.offset(), 2);
    }
}

//! What makes a followed file the same file: its device and inode, and the
//! first bytes of its content (up to 4 KiB), plus a guard over the bytes just
//! before the read offset.
//!
//! The inode alone is not enough: a deleted file's inode is reused by the
//! next file created, and a file compressed to `.gz` gets a new one. The head
//! of the content tells a reused inode from the same file, and finds a
//! rotated generation again after compression. The guard catches a file that
//! was truncated and grew back past the offset while mmon was stopped.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::checkpoint::sha256_hex;

/// How many leading bytes identify a file's content.
pub const HEAD: usize = 4096;
/// How many bytes before the offset the guard covers.
pub const GUARD: u64 = 4096;

/// Device and inode.
pub fn dev_ino(meta: &std::fs::Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

/// Whether the file starts with the gzip magic bytes.
pub fn is_gzip(file: &File) -> bool {
    let mut magic = [0u8; 2];
    matches!(file.read_at(&mut magic, 0), Ok(2)) && magic == [0x1f, 0x8b]
}

/// Reads up to `limit` bytes (fewer only at the end of the stream).
fn read_up_to(r: &mut impl Read, limit: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(limit.min(HEAD));
    r.take(limit as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Reads a file from its start with `pread`, leaving the descriptor's
/// position (shared by its clones) alone.
struct FromStart<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for FromStart<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// The first bytes of the content, decompressed for gzip.
pub fn head_of(file: &File) -> io::Result<Vec<u8>> {
    let mut f = FromStart { file, pos: 0 };
    if is_gzip(file) {
        let mut gz = flate2::read::MultiGzDecoder::new(BufReader::new(f));
        // A truncated or damaged archive still yields the bytes before the damage.
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        while out.len() < HEAD {
            match gz.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n.min(HEAD - out.len())]),
            }
        }
        return Ok(out);
    }
    read_up_to(&mut f, HEAD)
}

/// Whether `head` (the current first bytes) starts with the recorded head.
pub fn head_matches(head: &[u8], len: u64, sha: &str) -> bool {
    let len = len as usize;
    head.len() >= len && sha256_hex(&head[..len]) == sha
}

/// Length and hash of the bytes just before `offset` of a plain file.
pub fn guard(file: &File, offset: u64) -> io::Result<(u64, String)> {
    let len = offset.min(GUARD);
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, offset - len)?;
    Ok((len, sha256_hex(&buf)))
}

/// Counts lines up to the last newline: (offset past it, number of the next line).
pub fn scan_to_last_newline(r: &mut impl Read) -> io::Result<(u64, u64)> {
    let mut buf = vec![0u8; 256 * 1024];
    let (mut pos, mut end, mut lines) = (0u64, 0u64, 0u64);
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        for i in memchr::memchr_iter(b'\n', &buf[..n]) {
            lines += 1;
            end = pos + i as u64 + 1;
        }
        pos += n as u64;
    }
    Ok((end, lines + 1))
}

/// A file opened once and identified through that same descriptor, so a
/// rename between looking and reading can never swap the file under us.
pub struct Opened {
    pub file: Arc<File>,
    pub meta: Metadata,
    /// The first bytes of the content (decompressed for gzip).
    pub head: Vec<u8>,
}

impl Opened {
    pub fn dev_ino(&self) -> (u64, u64) {
        dev_ino(&self.meta)
    }
}

/// Opens `path` for reading and identifies it by `fstat` and its head.
///
/// Opened non-blocking, so a FIFO never hangs the follower; anything but a
/// regular file is refused.
pub fn open_identified(path: &Path) -> io::Result<Opened> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    let head = head_of(&file)?;
    Ok(Opened {
        file: Arc::new(file),
        meta,
        head,
    })
}

/// Reads a shared descriptor from a position with `pread`: one descriptor
/// serves the line reader, `fstat` and the head, and nothing moves its
/// position under another user.
pub struct At {
    file: Arc<File>,
    pos: u64,
}

impl At {
    pub fn new(file: &Arc<File>, pos: u64) -> At {
        At {
            file: file.clone(),
            pos,
        }
    }
}

impl Read for At {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// A reader of the (decompressed) content of `file` from `offset`, and
/// whether it is gzip.
pub fn reader_at(file: &Arc<File>, offset: u64) -> io::Result<(Box<dyn Read + Send>, bool)> {
    if is_gzip(file) {
        let mut gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            64 * 1024,
            At::new(file, 0),
        ));
        let skipped = io::copy(&mut (&mut gz).take(offset), &mut io::sink())?;
        if skipped < offset {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("compressed content ends at {skipped}, before the saved offset {offset}"),
            ));
        }
        return Ok((Box::new(gz), true));
    }
    Ok((Box::new(At::new(file, offset)), false))
}

/// Looks for the file `(dev, ino)` among the entries of `dir` (its name may
/// be anything, e.g. logrotate's `dateext`), opening and checking each
/// candidate through one descriptor; `same` settles inode reuse by content.
pub fn find_in_dir(
    dir: &Path,
    id: (u64, u64),
    same: &dyn Fn(&Opened) -> bool,
) -> Option<(PathBuf, Opened)> {
    let read = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    for e in std::fs::read_dir(read).ok()?.flatten() {
        let Ok(meta) = e.metadata() else { continue };
        if dev_ino(&meta) != id || !meta.is_file() {
            continue;
        }
        let path = dir.join(e.file_name());
        if let Ok(o) = open_identified(&path)
            && o.dev_ino() == id
            && same(&o)
        {
            return Some((path, o));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_gzip_copy_has_the_head_of_the_plain_file() {
        let dir = tempfile::tempdir().unwrap();
        let text: Vec<u8> = (0..2000)
            .flat_map(|i| format!("{{\"n\":{i}}}\n").into_bytes())
            .collect();
        let plain = dir.path().join("a.jsonl.1");
        std::fs::write(&plain, &text).unwrap();
        let gz = dir.path().join("a.jsonl.1.gz");
        let mut enc = flate2::write::GzEncoder::new(File::create(&gz).unwrap(), Default::default());
        enc.write_all(&text).unwrap();
        enc.finish().unwrap();
        let h1 = head_of(&File::open(&plain).unwrap()).unwrap();
        let h2 = head_of(&File::open(&gz).unwrap()).unwrap();
        assert_eq!(h1.len(), HEAD);
        assert_eq!(h1, h2);
        let sha = sha256_hex(&h1[..100]);
        assert!(head_matches(&h2, 100, &sha));
        assert!(!head_matches(&h2[..50], 100, &sha));
        let file = Arc::new(File::open(&gz).unwrap());
        let (mut r, gzipped) = reader_at(&file, 9).unwrap();
        assert!(gzipped);
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, text[9..]);
    }

    #[test]
    fn the_guard_changes_when_the_bytes_before_the_offset_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"aaaa\nbbbb\n").unwrap();
        let g1 = guard(&File::open(&p).unwrap(), 10).unwrap();
        std::fs::write(&p, b"aaaa\ncccc\nmore\n").unwrap();
        let g2 = guard(&File::open(&p).unwrap(), 10).unwrap();
        assert_eq!(g1.0, 10);
        assert_ne!(g1.1, g2.1);
    }

    #[test]
    fn scanning_stops_after_the_last_whole_line() {
        let got = scan_to_last_newline(&mut &b"a\nbb\nccc"[..]).unwrap();
        assert_eq!(got, (5, 3));
        assert_eq!(scan_to_last_newline(&mut &b""[..]).unwrap(), (0, 1));
    }
}

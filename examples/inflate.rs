//! Decompresses gzip files to nothing with mmon's own inflater (flate2's
//! `MultiGzDecoder`, as `mmon replay` reads `.gz`): the yardstick of
//! `bench/replay.sh` for gzip replay.
//!
//!   cargo run --release --example inflate -- FILE.gz...

use std::io::{BufReader, Read};

fn main() -> std::io::Result<()> {
    let mut total = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for path in std::env::args().skip(1) {
        let file = std::fs::File::open(&path)?;
        let mut gz =
            flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(256 * 1024, file));
        loop {
            match gz.read(&mut buf)? {
                0 => break,
                n => total += n as u64,
            }
        }
    }
    println!("{total}");
    Ok(())
}

//! The fast path of JSONL parsing: a hand-written scanner for the lines
//! nearly every log is made of.
//!
//! Profiles of `replay` put serde_json's visitor machinery (string scanning,
//! key dispatch, number parsing) at about half of single-thread CPU. Metric
//! logs are overwhelmingly one flat object per line whose values are plain
//! strings, numbers, booleans and null, so this module reads exactly that
//! shape in one pass over the bytes, straight into [`Fields`].
//!
//! It never reports an error. Anything else — a backslash escape anywhere, a
//! nested object or array, a control character or bytes that are not UTF-8
//! in a string, any syntax problem, a value the schema rejects — makes it
//! give up, and the caller reparses the line from scratch with serde_json,
//! which accepts all JSON and words every error message. What this path does accept it reads exactly
//! as the serde path would, down to the bits of every float (checked against
//! it by the property tests in `super`).

use super::Key;
use crate::record::Schema;
use crate::source::Fields;
use crate::timestamp;

/// Parses `line` into `fields` if it is a flat object of plain scalars that
/// the schema accepts; `false` otherwise, leaving `fields` partly written.
///
/// Takes bytes that may not be UTF-8: every byte outside strings must be
/// one of JSON's ASCII tokens anyway, and a string holding non-ASCII bytes
/// is validated on its own, so a line this path takes is valid UTF-8 and
/// the common all-ASCII line is never validated separately.
pub(super) fn parse(line: &[u8], schema: &Schema, fields: &mut Fields) -> bool {
    object(line, schema, fields).is_some()
}

fn object(b: &[u8], s: &Schema, f: &mut Fields) -> Option<()> {
    let mut i = skip_ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        let mut nth = 0;
        loop {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let key = match f.keys.repeated(nth, &b[i + 1..], s) {
                // The same key, closing quote and colon as in the last line.
                Some((key, len)) => {
                    i += 1 + len;
                    key
                }
                None => {
                    let close = string_end(b, i + 1)?;
                    let colon = skip_ws(b, close + 1);
                    if b.get(colon) != Some(&b':') {
                        return None;
                    }
                    let key = f.keys.learn(nth, &b[i + 1..close], &b[i + 1..=colon], s);
                    i = colon + 1;
                    key
                }
            };
            nth += 1;
            i = skip_ws(b, i);
            i = skip_ws(b, value(b, i, key, s, f)?);
            match b.get(i) {
                Some(b',') => i = skip_ws(b, i + 1),
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    (skip_ws(b, i) == b.len()).then_some(())
}

/// Reads the value starting at `i` (not whitespace) for `key`; returns the
/// index just past it.
fn value(b: &[u8], i: usize, key: Key, s: &Schema, f: &mut Fields) -> Option<usize> {
    match *b.get(i)? {
        b'"' => {
            let close = string_end(b, i + 1)?;
            let text = &b[i + 1..close];
            match key {
                Key::Parent(_) | Key::Other => {}
                Key::Timestamp => f.time = Some(f.time_of(text, s.unit).ok()?),
                Key::Model => f.set_model(text),
                Key::Version => f.set_version(text),
                Key::Metric(_) => return None,
            }
            Some(close + 1)
        }
        b'-' | b'0'..=b'9' => {
            let (end, parts) = scan_number(b, i)?;
            match key {
                Key::Parent(_) | Key::Other => {}
                Key::Timestamp => {
                    let t = match parts.value(b, i..end)? {
                        Number::Int(n) => timestamp::from_int(n, s.unit),
                        Number::Float(x) => timestamp::from_number(x, s.unit),
                    };
                    f.time = Some(t.ok()?);
                }
                Key::Metric(slot) => {
                    let x = parts.value(b, i..end)?.to_f64();
                    f.set_metric(s, slot, x).ok()?;
                }
                Key::Model | Key::Version => return None,
            }
            Some(end)
        }
        b't' | b'f' => {
            let truth = b[i] == b't';
            let word: &[u8] = if truth { b"true" } else { b"false" };
            if !b[i..].starts_with(word) {
                return None;
            }
            match key {
                Key::Parent(_) | Key::Other => {}
                Key::Metric(slot) => f.set_metric(s, slot, f64::from(u8::from(truth))).ok()?,
                Key::Timestamp | Key::Model | Key::Version => return None,
            }
            Some(i + word.len())
        }
        b'n' => b[i..].starts_with(b"null").then_some(i + 4),
        _ => None,
    }
}

#[inline(always)]
fn skip_ws(b: &[u8], i: usize) -> usize {
    // Most lines are compact: one test settles nearly every call.
    match b.get(i) {
        Some(&c) if c > b' ' => i,
        _ => skip_ws_loop(b, i),
    }
}

fn skip_ws_loop(b: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}

/// Every byte of a word 1, and every byte's high bit: the masks of the
/// eight-bytes-at-a-time scans here and in CSV's split.
pub(in crate::source) const ONES: u64 = 0x0101_0101_0101_0101;
pub(in crate::source) const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The index of the `"` closing the string whose contents start at `i`;
/// `None` at a backslash, a control character, the end of the line, or
/// contents that are not UTF-8.
#[inline(always)]
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    // Eight bytes at a time. Flipping bit 1 maps `"` (0x22) to 0x20 and
    // keeps control characters below it, so one "less than 0x21" test finds
    // both; a "zero" test after xor finds `\`. A byte's high bit in `hits`
    // marks a find; borrows only mark falsely above a true find, so the
    // lowest mark is exact. `high` gathers the bytes' own high bits (some
    // past the close too, which only costs a needless UTF-8 check).
    let mut i = start;
    let mut high = 0;
    let close = 'scan: {
        for chunk in b.get(i..)?.chunks_exact(8) {
            let x = u64::from_le_bytes(chunk.try_into().ok()?);
            high |= x;
            let quote_or_control = x ^ (ONES * 0x02);
            let backslash = x ^ (ONES * u64::from(b'\\'));
            let hits = (quote_or_control.wrapping_sub(ONES * 0x21) & !quote_or_control)
                | (backslash.wrapping_sub(ONES) & !backslash);
            let hits = hits & HIGHS;
            if hits != 0 {
                i += (hits.trailing_zeros() / 8) as usize;
                break 'scan i;
            }
            i += 8;
        }
        loop {
            match *b.get(i)? {
                b'"' | b'\\' | 0..0x20 => break 'scan i,
                c => high |= u64::from(c),
            }
            i += 1;
        }
    };
    if b[close] != b'"' {
        return None;
    }
    let ascii = high & HIGHS == 0;
    (ascii || std::str::from_utf8(&b[start..close]).is_ok()).then_some(close)
}

/// `b` read as a number if it is exactly one JSON number (CSV's fast path):
/// the value `str::parse::<f64>` gives it, bit for bit.
pub(in crate::source) fn number(b: &[u8]) -> Option<f64> {
    let (end, parts) = scan_number(b, 0)?;
    if end != b.len() {
        return None;
    }
    Some(parts.value(b, 0..end)?.to_f64())
}

/// A number as serde_json hands it to the visitor: an integer literal that
/// fits `i64`, or else the nearest `f64`.
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    /// The number as a metric's value.
    #[inline(always)]
    fn to_f64(&self) -> f64 {
        match *self {
            Number::Int(n) => n as f64,
            Number::Float(x) => x,
        }
    }
}

/// What [`scan_number`] learnt on its way over a number.
struct Parts {
    negative: bool,
    /// No fraction and no exponent.
    integer: bool,
    /// The decimal digits read as one integer (wrapped if `digits` > 19).
    mantissa: u64,
    digits: usize,
    /// The number is `mantissa` × 10^`exp` (clamped far beyond f64 range).
    exp: i64,
}

/// Checks the JSON number grammar from `i`; returns where the number ends.
///
/// Inlined: returned through memory, `Parts` cost a store-forwarding stall
/// on every number (a fifth of the parser's time).
#[inline(always)]
fn scan_number(b: &[u8], mut i: usize) -> Option<(usize, Parts)> {
    let negative = b.get(i) == Some(&b'-');
    if negative {
        i += 1;
    }
    let mut mantissa = 0u64;
    let mut digits = 0;
    match b.get(i) {
        // Only one leading zero, and only alone.
        Some(b'0') => {
            i += 1;
            if b.get(i).is_some_and(u8::is_ascii_digit) {
                return None;
            }
        }
        Some(b'1'..=b'9') => {
            let n = read_digits(b, &mut i, &mut mantissa);
            digits += n;
        }
        _ => return None,
    }
    let mut exp = 0i64;
    let mut integer = true;
    if b.get(i) == Some(&b'.') {
        integer = false;
        i += 1;
        let n = read_digits(b, &mut i, &mut mantissa);
        digits += n;
        if n == 0 {
            return None;
        }
        exp = -i64::try_from(n).ok()?;
    }
    if let Some(b'e' | b'E') = b.get(i) {
        integer = false;
        i += 1;
        let negative_exp = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let from = i;
        let mut e = 0i64;
        while let Some(&c @ b'0'..=b'9') = b.get(i) {
            e = (e * 10 + i64::from(c - b'0')).min(1 << 40);
            i += 1;
        }
        if i == from {
            return None;
        }
        exp += if negative_exp { -e } else { e };
    }
    let parts = Parts {
        negative,
        integer,
        mantissa,
        digits,
        exp,
    };
    Some((i, parts))
}

/// Reads the decimal digits from `i` into `mantissa` (wrapping past 19
/// digits); returns how many there were.
#[inline(always)]
fn read_digits(b: &[u8], i: &mut usize, mantissa: &mut u64) -> usize {
    let from = *i;
    while let Some(&c @ b'0'..=b'9') = b.get(*i) {
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        *i += 1;
    }
    *i - from
}

/// Powers of ten that are exact in an `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

impl Parts {
    /// The value of the number at `at` in `line`; `None` if it is out of
    /// range.
    #[inline(always)]
    fn value(&self, line: &[u8], at: std::ops::Range<usize>) -> Option<Number> {
        let m = self.mantissa;
        let exact = self.digits <= 19;
        if self.integer && exact {
            // serde_json's rules: u64 beyond i64 and negatives beyond i64
            // become floats, and so does `-0`.
            return Some(match (self.negative, m) {
                (false, _) if m <= i64::MAX as u64 => Number::Int(m as i64),
                (false, _) => Number::Float(m as f64),
                (true, 0) => Number::Float(-0.0),
                (true, _) if m <= 1 << 63 => Number::Int((m as i64).wrapping_neg()),
                (true, _) => Number::Float(-(m as f64)),
            });
        }
        let x = if exact && m <= 1 << 53 && (-22..=22).contains(&self.exp) {
            // Both factors are exact, so the one rounding is the correct one.
            let m = m as f64;
            let x = if self.exp < 0 {
                m / POW10[self.exp.unsigned_abs() as usize]
            } else {
                m * POW10[self.exp as usize]
            };
            if self.negative { -x } else { x }
        } else {
            // Correctly rounded too, as serde_json's `float_roundtrip` is.
            std::str::from_utf8(line.get(at)?)
                .ok()?
                .parse::<f64>()
                .ok()?
        };
        // serde_json rejects what rounds to infinity; those fields fail anyway.
        x.is_finite().then_some(Number::Float(x))
    }
}

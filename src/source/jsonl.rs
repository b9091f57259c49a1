//! JSONL records: one JSON object per line.
//!
//! Most lines are flat objects of plain scalars and take the hand-written
//! `fast` path. Everything else (escapes, nested values, syntax errors,
//! rejected fields) is parsed with serde_json through a visitor that
//! classifies each key against the schema as it streams by, so unmonitored
//! fields are skipped without being built into values and no per-record map
//! is allocated; that path words every error message.
//!
//! A field name with dots (`model_id = "labels.region"`) is a path into
//! nested objects: `{"labels": {"region": "eu"}}`. A key that equals the
//! whole name is read as it is, so a flat `"labels.region"` key works too.
//! Nested objects always take the serde path.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{FieldError, Fields};
use crate::record::{Schema, short_eq};

pub(super) mod fast;

/// Parses one line into `fields` (freshly reset), or says what is wrong
/// with it.
///
/// The fast path checks UTF-8 only inside strings that are not ASCII. A
/// line it cannot take is validated whole before serde_json parses it as a
/// `&str`, so serde_json skips validating every string again.
pub fn parse(line: &[u8], schema: &Schema, fields: &mut Fields) -> Result<(), FieldError> {
    if fast::parse(line, schema, fields) {
        return Ok(());
    }
    let line = super::utf8(line)?;
    fields.reset(schema.metrics.len());
    parse_serde(line, schema, fields)
}

/// The general parser: any JSON, and every error message.
fn parse_serde(line: &str, schema: &Schema, fields: &mut Fields) -> Result<(), FieldError> {
    let mut de = serde_json::Deserializer::from_str(line);
    let mut visitor = LineVisitor {
        schema,
        fields,
        error: None,
    };
    let result = de::Deserializer::deserialize_map(&mut de, &mut visitor);
    if let Some(e) = visitor.error.take() {
        return Err(e);
    }
    result
        .and_then(|()| de.end())
        .map_err(|e| FieldError::NotJson(e.to_string()))
}

struct LineVisitor<'a> {
    schema: &'a Schema,
    fields: &'a mut Fields,
    /// A field-level problem; the serde error only stops the parse.
    error: Option<FieldError>,
}

#[derive(Debug, Clone, Copy)]
enum Key {
    Timestamp,
    Model,
    Version,
    Metric(usize),
    /// An object holding a dotted field: `Schema::parents[i]`.
    Parent(usize),
    Other,
}

impl Key {
    /// What the field named `k` is to the schema.
    fn of(k: &[u8], s: &Schema) -> Key {
        if short_eq(k, s.timestamp.as_bytes()) {
            Key::Timestamp
        } else if short_eq(k, s.model_id.as_bytes()) {
            Key::Model
        } else if short_eq(k, s.model_version.as_bytes()) {
            Key::Version
        } else if let Some(slot) = s.metrics.iter().position(|m| short_eq(k, m.as_bytes())) {
            Key::Metric(slot)
        } else if s.parents.is_empty() {
            Key::Other
        } else {
            Key::nested(k, None, s)
        }
    }

    /// What the key `k` inside the object at `parent` (or at the top, for
    /// a key that is itself a parent) is to the schema.
    #[cold]
    fn nested(k: &[u8], parent: Option<&str>, s: &Schema) -> Key {
        let is = |name: &str| match parent {
            None => name.as_bytes() == k,
            Some(p) => {
                let n = name.as_bytes();
                n.len() == p.len() + 1 + k.len()
                    && n.starts_with(p.as_bytes())
                    && n[p.len()] == b'.'
                    && n.ends_with(k)
            }
        };
        if parent.is_some() {
            if is(&s.timestamp) {
                return Key::Timestamp;
            } else if is(&s.model_id) {
                return Key::Model;
            } else if is(&s.model_version) {
                return Key::Version;
            } else if let Some(slot) = s.metrics.iter().position(|m| is(m)) {
                return Key::Metric(slot);
            }
        }
        s.parents
            .iter()
            .position(|p| is(p))
            .map_or(Key::Other, Key::Parent)
    }
}

/// The keys of the last line, in order, with what each is to the schema.
///
/// A log's lines repeat the same keys in the same order, so the bytes from
/// a key's opening quote to its colon usually equal those at the same place
/// in the previous line: one comparison then stands for scanning the key,
/// classifying it against every schema name and finding the colon. Like the
/// CSV header layout, it belongs to one [`super::Decoder`], which serves one
/// schema; the schema's address is kept all the same, and a different one
/// starts afresh.
#[derive(Debug, Default)]
pub struct KeyCache {
    schema: usize,
    keys: Vec<CachedKey>,
}

/// A key's text with its closing `"` and what came up to its `:`.
#[derive(Debug)]
struct CachedKey {
    span: Box<[u8]>,
    /// The span's first 16 bytes, zero-padded, and a mask of those it has:
    /// a span of up to 16 bytes is compared with one masked 16-byte load,
    /// without following `span`'s pointer.
    head: u128,
    mask: u128,
    key: Key,
}

/// Lines with more keys than this are classified without the cache.
const CACHED_KEYS: usize = 32;

impl KeyCache {
    /// If `rest`, the line after the opening quote of its `nth` key, starts
    /// with the last line's `nth` key up to its colon: what that key is to
    /// the schema and how many bytes that span covers.
    #[inline]
    fn repeated(&self, nth: usize, rest: &[u8], s: &Schema) -> Option<(Key, usize)> {
        let cached = self.keys.get(nth)?;
        if self.schema != std::ptr::from_ref(s) as usize {
            return None;
        }
        let n = cached.span.len();
        let same = match rest.first_chunk::<16>() {
            Some(r) if n <= 16 => u128::from_le_bytes(*r) & cached.mask == cached.head,
            _ => rest.get(..n).is_some_and(|r| short_eq(r, &cached.span)),
        };
        same.then_some((cached.key, n))
    }

    /// What the `nth` key of a line, named `k`, is to the schema; `span` is
    /// the key's text through its colon, which the caller has checked is a
    /// plain UTF-8 string (no escapes or control characters) followed by
    /// `:`, so that [`KeyCache::repeated`] may take equal bytes as checked.
    fn learn(&mut self, nth: usize, k: &[u8], span: &[u8], s: &Schema) -> Key {
        let schema = std::ptr::from_ref(s) as usize;
        let key = Key::of(k, s);
        if self.schema != schema {
            self.keys.clear();
            self.schema = schema;
        }
        let mut bytes = [0u8; 16];
        let shown = span.len().min(16);
        bytes[..shown].copy_from_slice(&span[..shown]);
        let mask = if shown == 16 {
            u128::MAX
        } else {
            (1u128 << (8 * shown)) - 1
        };
        let cached = CachedKey {
            span: span.into(),
            head: u128::from_le_bytes(bytes),
            mask,
            key,
        };
        if nth < self.keys.len() {
            self.keys[nth] = cached;
        } else if nth == self.keys.len() && nth < CACHED_KEYS {
            self.keys.push(cached);
        }
        key
    }
}

/// Classifies a key at the top of the line, or inside the parent object.
struct KeySeed<'a>(&'a Schema, Option<&'a str>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for KeySeed<'_> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, k: &str) -> Result<Key, E> {
        Ok(match self.1 {
            None => Key::of(k.as_bytes(), self.0),
            Some(parent) => Key::nested(k.as_bytes(), Some(parent), self.0),
        })
    }
}

/// The value of a key that is a parent of dotted fields: an object is read
/// for them, anything else is skipped like an unmonitored field.
struct ParentSeed<'v, 'a> {
    visitor: &'v mut LineVisitor<'a>,
    parent: usize,
}

impl<'de> DeserializeSeed<'de> for ParentSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParentSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let s = self.visitor.schema;
        self.visitor
            .fields_of(map, s.parents.get(self.parent).map(String::as_str))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(())
    }
    fn visit_borrowed_str<E>(self, _: &'de str) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A JSON scalar as it appeared, for fields we read.
enum Scalar<'de> {
    Str(std::borrow::Cow<'de, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An object or array (skipped), named for the error message.
    Nested(&'static str),
}

impl Scalar<'_> {
    fn found(&self) -> String {
        match self {
            Scalar::Str(s) => serde_json::to_string(s.as_ref()).unwrap_or_default(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".into(),
            Scalar::Nested(what) => (*what).into(),
        }
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v.into()))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Str(v.to_string().into()))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'de>, E> {
        Ok(i64::try_from(v)
            .map(Scalar::Int)
            .unwrap_or(Scalar::Float(v as f64)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'de>, E> {
        Ok(Scalar::Null)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an object"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Nested("an array"))
    }
}

impl<'de> Visitor<'de> for &mut LineVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.fields_of(map, None)
    }
}

impl LineVisitor<'_> {
    /// Reads the fields of the line's object, or of the object at `parent`.
    fn fields_of<'de, A: MapAccess<'de>>(
        &mut self,
        mut map: A,
        parent: Option<&str>,
    ) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed(self.schema, parent))? {
            match key {
                Key::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
                Key::Parent(i) => map.next_value_seed(ParentSeed {
                    visitor: self,
                    parent: i,
                })?,
                _ => {
                    let value = map.next_value_seed(ScalarSeed)?;
                    if let Err(e) = self.take(key, value) {
                        self.error = Some(e);
                        return Err(de::Error::custom("field error"));
                    }
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, key: Key, value: Scalar<'_>) -> Result<(), FieldError> {
        let s = self.schema;
        match key {
            Key::Timestamp => {
                let t = match &value {
                    Scalar::Str(text) => self.fields.time_of(text.as_bytes(), s.unit),
                    Scalar::Int(i) => crate::timestamp::from_int(*i, s.unit),
                    Scalar::Float(f) => crate::timestamp::from_number(*f, s.unit),
                    Scalar::Null => return Ok(()),
                    _ => Err(super::TIMESTAMP_EXPECTED.to_string()),
                };
                let t =
                    t.map_err(|expected| FieldError::bad(&s.timestamp, expected, value.found()))?;
                self.fields.time = Some(t);
            }
            Key::Model | Key::Version => {
                let field = if let Key::Model = key {
                    &s.model_id
                } else {
                    &s.model_version
                };
                let text = match value {
                    Scalar::Str(text) => text,
                    Scalar::Null => return Ok(()),
                    other => return Err(FieldError::bad(field, "a string", other.found())),
                };
                if let Key::Model = key {
                    self.fields.set_model(text.as_bytes());
                } else {
                    self.fields.set_version(text.as_bytes());
                }
            }
            Key::Metric(slot) => {
                let x = match value {
                    Scalar::Int(i) => i as f64,
                    Scalar::Float(f) => f,
                    Scalar::Bool(b) => f64::from(u8::from(b)),
                    Scalar::Null => return Ok(()),
                    other => {
                        return Err(FieldError::bad(
                            &s.metrics[slot],
                            "a finite number",
                            other.found(),
                        ));
                    }
                };
                self.fields.set_metric(s, slot, x)?;
            }
            Key::Parent(_) | Key::Other => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::timestamp::Unit;

    fn schema(unit: Unit) -> Schema {
        Schema {
            timestamp: "timestamp".into(),
            model_id: "model_id".into(),
            model_version: "model_version".into(),
            unit,
            metrics: ["accuracy", "correct", "latency_ms", "x"]
                .map(String::from)
                .into(),
            ranges: vec![Some((0.0, 1.0)), Some((0.0, 1.0)), None, None],
            max_line_bytes: 1 << 20,
            delimiter: b',',
            parents: Vec::new(),
        }
    }

    /// What a parse leaves behind, floats as bits so NaN slots compare.
    type Outcome = (
        Result<(), FieldError>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Vec<u64>,
    );

    fn outcome(result: Result<(), FieldError>, f: &Fields) -> Outcome {
        (
            result,
            f.time,
            f.model.as_deref().map(String::from),
            f.version.as_deref().map(String::from),
            f.values.iter().map(|x| x.to_bits()).collect(),
        )
    }

    /// Parses `line` with a fresh `Fields`.
    fn run(
        parser: fn(&str, &Schema, &mut Fields) -> Result<(), FieldError>,
        line: &str,
        s: &Schema,
    ) -> Outcome {
        reparse(parser, &mut Fields::default(), line, s)
    }

    /// Parses `line` with `f`, which may have read other lines before (as a
    /// decoder's does: its caches remember them).
    fn reparse(
        parser: fn(&str, &Schema, &mut Fields) -> Result<(), FieldError>,
        f: &mut Fields,
        line: &str,
        s: &Schema,
    ) -> Outcome {
        f.reset(s.metrics.len());
        let result = parser(line, s, f);
        outcome(result, f)
    }

    /// The public entry point, on the line's bytes.
    fn parse_str(line: &str, s: &Schema, f: &mut Fields) -> Result<(), FieldError> {
        parse(line.as_bytes(), s, f)
    }

    /// Parses `line` both ways, asserts they agree, and returns the outcome
    /// with whether the fast path took the line.
    fn check(line: &str, unit: Unit) -> (Outcome, bool) {
        let s = schema(unit);
        let got = run(parse_str, line, &s);
        let want = run(parse_serde, line, &s);
        assert_eq!(got, want, "{line:?}");
        let mut f = Fields::default();
        f.reset(s.metrics.len());
        (got, fast::parse(line.as_bytes(), &s, &mut f))
    }

    const T: &str = r#""timestamp":"2024-03-01T00:00:00Z""#;
    const X: usize = 3;

    fn not_json(outcome: &Outcome) -> &str {
        match &outcome.0 {
            Err(FieldError::NotJson(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_benchmark_line_takes_the_fast_path() {
        let line = r#"{"timestamp":"2024-03-01T00:00:00.114Z","model_id":"churn","model_version":"1.4.2","request_id":"386ecbe0-6b65-46a4-8b81-48f6b38a088c","score":0.8010,"correct":1,"accuracy":1.0000,"latency_ms":45}"#;
        let ((result, time, model, version, values), fast) = check(line, Unit::S);
        assert!(fast);
        assert_eq!(result, Ok(()));
        assert_eq!(time, Some(1_709_251_200_114_000_000));
        assert_eq!(model.as_deref(), Some("churn"));
        assert_eq!(version.as_deref(), Some("1.4.2"));
        let values: Vec<f64> = values.into_iter().map(f64::from_bits).collect();
        assert_eq!(values[..3], [1.0, 1.0, 45.0]);
        assert!(values[X].is_nan());
    }

    #[test]
    fn non_ascii_strings_stay_on_the_fast_path_and_bad_utf8_leaves_it() {
        let s = schema(Unit::S);
        let mut f = Fields::default();
        f.reset(s.metrics.len());
        let line = format!("{{{T},\"model_id\":\"détection\",\"request_id\":\"ü\"}}");
        assert!(fast::parse(line.as_bytes(), &s, &mut f));
        assert_eq!(f.model.as_deref(), Some("détection"));
        for line in [
            &b"{\"request_id\":\"\xc3\x28\"}"[..],
            b"{\"x\":1,\"\xff\":2}",
            b"{\"model_id\":\"abcdefgh\xe2\x82\"}",
            b"{\"x\":1}\xa0",
        ] {
            f.reset(s.metrics.len());
            assert!(!fast::parse(line, &s, &mut f), "{line:?}");
            assert!(
                matches!(parse(line, &s, &mut f), Err(FieldError::Utf8(_))),
                "{line:?}"
            );
        }
    }

    #[test]
    fn an_escaped_key_is_read_by_serde_as_the_field_it_spells() {
        let line = r#"{"time\u0073tamp":1700000000,"x":2}"#;
        let ((result, time, .., values), fast) = check(line, Unit::S);
        assert!(!fast);
        assert_eq!(result, Ok(()));
        assert_eq!(time, Some(1_700_000_000_000_000_000));
        assert_eq!(f64::from_bits(values[X]), 2.0);
    }

    #[test]
    fn syntax_errors_keep_serde_messages() {
        for (line, message) in [
            (
                format!("{{{T},\"x\":01}}"),
                "invalid number at line 1 column 42",
            ),
            (
                format!("{{{T},\"x\":1,}}"),
                "trailing comma at line 1 column 43",
            ),
            (
                format!("{{{T} \"x\":1}}"),
                "expected `,` or `}` at line 1 column 37",
            ),
            (
                format!("{{{T},\"x\":1.}}"),
                "invalid number at line 1 column 43",
            ),
            (
                format!("{{{T},\"x\":+1}}"),
                "expected value at line 1 column 41",
            ),
            (
                format!("{{{T}}} x"),
                "trailing characters at line 1 column 38",
            ),
            (
                format!("{{{T},\"x\":\"a\tb\"}}"),
                "control character (\\u0000-\\u001F) found while parsing a string at line 1 column 43",
            ),
        ] {
            let (outcome, fast) = check(&line, Unit::S);
            assert!(!fast, "{line}");
            assert_eq!(not_json(&outcome), message, "{line}");
        }
    }

    #[test]
    fn dotted_names_read_nested_objects_and_flat_keys_alike() {
        let mut s = schema(Unit::S);
        s.model_id = "labels.region".into();
        s.metrics[X] = "m.lat.p99".into();
        let s = s.with_parents();
        assert_eq!(s.parents, ["labels", "m", "m.lat"]);
        for line in [
            r#"{"timestamp":1,"labels":{"host":"h","region":"eu"},"m":{"lat":{"p99":7}}}"#,
            r#"{"labels":{"region":"eu"},"timestamp":1,"m":{"lat":{"p99":7,"p50":1}}}"#,
            r#"{"timestamp":1,"labels.region":"eu","m.lat.p99":7}"#,
            r#"{"timestamp":1,"labels":"x","labels":{"region":"eu"},"m":{"lat":{"p99":7}}}"#,
        ] {
            let (result, time, model, _, values) = run(parse_str, line, &s);
            assert_eq!(result, Ok(()), "{line}");
            assert_eq!(time, Some(1_000_000_000));
            assert_eq!(model.as_deref(), Some("eu"), "{line}");
            assert_eq!(f64::from_bits(values[X]), 7.0, "{line}");
        }
        // A wrong value inside is a field error naming the whole path.
        let line = r#"{"timestamp":1,"m":{"lat":{"p99":"slow"}}}"#;
        assert_eq!(
            run(parse_str, line, &s).0.unwrap_err().to_string(),
            "field \"m.lat.p99\": expected a finite number, found \"slow\""
        );
        // Without dotted names a nested object is skipped as before.
        let line = r#"{"timestamp":1,"labels":{"region":"eu"}}"#;
        assert_eq!(run(parse_str, line, &schema(Unit::S)).2, None);
    }

    #[test]
    fn minus_zero_is_a_negative_zero_float_as_in_serde() {
        let ((result, .., values), fast) = check(&format!("{{{T},\"x\":-0}}"), Unit::S);
        assert!(fast);
        assert_eq!(result, Ok(()));
        assert_eq!(values[X], (-0.0f64).to_bits());
    }

    #[test]
    fn out_of_range_numbers_are_rejected_only_where_read() {
        let (outcome, fast) = check(&format!("{{{T},\"x\":1e400}}"), Unit::S);
        assert!(!fast);
        assert_eq!(
            not_json(&outcome),
            "number out of range at line 1 column 45"
        );
        let ((result, .., values), fast) = check(&format!("{{{T},\"y\":1e400}}"), Unit::S);
        assert!(fast);
        assert_eq!(result, Ok(()));
        assert!(f64::from_bits(values[X]).is_nan());
    }

    #[test]
    fn integers_beyond_i64_are_floats() {
        for (n, want) in [
            ("9223372036854775807", 9223372036854775807i64 as f64),
            ("9223372036854775808", 9223372036854775808u64 as f64),
            ("-9223372036854775808", i64::MIN as f64),
            ("-9223372036854775809", -9223372036854775809i128 as f64),
            ("18446744073709551616", 18446744073709551616i128 as f64),
            ("123456789012345678901234567890", 1.2345678901234568e29),
        ] {
            let ((result, .., values), fast) = check(&format!("{{{T},\"x\":{n}}}"), Unit::S);
            assert!(fast, "{n}");
            assert_eq!(result, Ok(()));
            assert_eq!(f64::from_bits(values[X]), want, "{n}");
        }
        // As a timestamp an i64 is exact; beyond, a float out of range.
        let line = r#"{"timestamp":-9223372036854775808}"#;
        assert!(matches!(
            check(line, Unit::S).0.0,
            Err(FieldError::Bad { .. })
        ));
    }

    #[test]
    fn field_errors_fall_back_for_their_messages() {
        for line in [
            format!("{{{T},\"accuracy\":1.5}}"),
            format!("{{{T},\"accuracy\":\"0.5\"}}"),
            format!("{{{T},\"model_id\":1}}"),
            r#"{"timestamp":true}"#.to_string(),
            r#"{"timestamp":"yesterday"}"#.to_string(),
        ] {
            let (outcome, fast) = check(&line, Unit::S);
            assert!(!fast, "{line}");
            assert!(matches!(outcome.0, Err(FieldError::Bad { .. })), "{line}");
        }
    }

    #[test]
    fn duplicate_keys_keep_the_last() {
        let line = r#"{"timestamp":1,"x":1,"model_id":"a","x":2,"model_id":null,"timestamp":2.5}"#;
        let ((result, time, model, _, values), fast) = check(line, Unit::Ms);
        assert!(fast);
        assert_eq!(result, Ok(()));
        assert_eq!(time, Some(2_500_000));
        assert_eq!(model.as_deref(), Some("a"));
        assert_eq!(f64::from_bits(values[X]), 2.0);
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => prop::sample::select(&[
                "timestamp", "model_id", "model_version", "accuracy", "correct",
                "latency_ms", "x", "request_id", "score", "", "timestam", "xx", "é",
            ][..]).prop_map(String::from),
            1 => prop::sample::select(&[
                r"time\u0073tamp", r"x\n", r"accurac\u0079", r#"\""#, "tab\there",
            ][..]).prop_map(String::from),
        ]
        .prop_map(|k| format!("\"{k}\""))
    }

    fn number() -> impl Strategy<Value = String> {
        // Each part is occasionally malformed.
        let sign = prop_oneof![20 => Just(""), 10 => Just("-"), 1 => Just("+")];
        let int = prop_oneof![
            10 => Just("0".to_string()),
            20 => "[1-9][0-9]{0,21}",
            1 => "0[0-9]{1,2}",
            1 => Just(String::new()),
        ];
        let frac = prop_oneof![
            12 => Just(String::new()),
            12 => "\\.[0-9]{1,22}",
            1 => Just(".".to_string()),
        ];
        let exp = prop_oneof![
            20 => Just(String::new()),
            10 => "[eE][+-]?[0-9]{1,3}",
            1 => "[eE][+-]?",
            1 => "[eE][+-]?[0-9]{9,12}",
        ];
        let special = prop::sample::select(
            &[
                "-0",
                "-0.0",
                "0e5",
                "-0e-5",
                "1e400",
                "-1e400",
                "1e-400",
                "-1e-400",
                "4.9e-324",
                "2.4703282292062327e-324",
                "2.4703282292062328e-324",
                "1.7976931348623157e308",
                "1.7976931348623158e308",
                "1.7976931348623159e308",
                "9007199254740993",
                "9007199254740993.0",
                "0.30000000000000004",
                "9223372036854775807",
                "9223372036854775808",
                "-9223372036854775808",
                "-9223372036854775809",
                "18446744073709551615",
                "18446744073709551616",
                "1E22",
                "1e23",
                "123456789e-22",
                ".5",
                "1.",
                "--1",
                "0x1",
                "NaN",
                "Infinity",
                "-",
                "1e+",
                "1.5E-7",
                "1700000000",
                "1700000000123",
                "1700000000.123456",
            ][..],
        );
        prop_oneof![
            3 => (sign, int, frac, exp).prop_map(|(s, i, f, e)| format!("{s}{i}{f}{e}")),
            1 => special.prop_map(String::from),
        ]
    }

    fn string() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(&[
                "2024-03-01T00:00:00Z", "2024-03-01T00:00:00.114+01:00", "2024-03-01 00:00:00.5",
                "1700000000", "fraud", "", "3.0.1", "0.5", "é ü", "del\u{7f}", "unit\u{1f}sep",
                "tab\there", r#"a\"b"#, r"\u00e9", r"2024-03-01T00:00:00\u005a", r"a\\",
            ][..]).prop_map(String::from),
            6 => "[a-zA-Z0-9 .:-]{0,40}",
            1 => "[a-z]{0,12}\\\\[nu\"][a-z]{0,12}",
            1 => "[a-z]{0,12}[\\x00-\\x1f][a-z]{0,12}",
        ]
        .prop_map(|s| format!("\"{s}\""))
    }

    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            5 => number(),
            4 => string(),
            2 => prop::sample::select(&["true", "false", "null", "tru", "nul", "falsey", "True"][..])
                .prop_map(String::from),
            1 => prop::sample::select(&["{}", "[]", "[1,2]", r#"{"x":1}"#, r#"[{"a":"\n"}]"#][..])
                .prop_map(String::from),
        ]
    }

    /// A key and its value: mostly one that suits the field, so that lines
    /// get past their first field error.
    fn field() -> impl Strategy<Value = (String, String)> {
        let quoted = |k: &str| format!("\"{k}\"");
        let fraction = prop_oneof![
            "0\\.[0-9]{1,20}([eE]-?[0-9])?",
            "[01](\\.0{1,3})?",
            Just("-0".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
        ];
        let stamp = prop_oneof![
            prop::sample::select(
                &[
                    r#""2024-03-01T00:00:00.114Z""#,
                    r#""2024-03-01 00:00:00""#,
                    r#""2024-03-01T00:00:00+01:00""#,
                    "null",
                ][..]
            )
            .prop_map(String::from),
            "-?1[0-9]{8,9}(\\.[0-9]{1,12})?([eE][+-]?[0-3])?",
            "-?1[0-9]{11,12}(\\.[0-9]{1,9})?",
            string(),
            number(),
        ];
        let fitting = prop_oneof![
            stamp.prop_map(move |v| (quoted("timestamp"), v)),
            string().prop_map(move |v| (quoted("model_id"), v)),
            string().prop_map(move |v| (quoted("model_version"), v)),
            fraction.prop_map(move |v| (quoted("correct"), v)),
            number().prop_map(move |v| (quoted("x"), v)),
            number().prop_map(move |v| (quoted("latency_ms"), v)),
        ];
        prop_oneof![2 => fitting, 1 => (key(), value())]
    }

    /// Whitespace, or with `broken` sometimes a character JSON does not
    /// take for it.
    fn ws(broken: bool) -> impl Strategy<Value = &'static str> {
        let w = u32::from(broken);
        prop_oneof![
            12 => Just(""),
            2 => Just(" "),
            1 => Just("\t"),
            1 => Just("\r\n "),
            w => Just("\u{a0}"),
            w => Just("\u{c}"),
        ]
    }

    /// A flat object, or with `broken` one that sometimes has its
    /// punctuation wrong.
    fn line(broken: bool) -> impl Strategy<Value = String> {
        let w = u32::from(broken);
        let sep = prop_oneof![12 => Just(","), w => Just(""), w => Just(",,"), w => Just(":")];
        let entry = (field(), ws(broken), ws(broken), ws(broken), sep);
        let open =
            prop_oneof![12 => Just("{"), w => Just(""), w => Just("["), w => Just("\u{feff}{")];
        let close = prop_oneof![
            12 => Just("}"),
            w => Just(""),
            w => Just(",}"),
            w => Just("}}"),
            w => Just("} x"),
            w => Just("]"),
        ];
        let entries = prop::collection::vec(entry, 0..7);
        (ws(broken), open, ws(broken), entries, close, ws(broken)).prop_map(
            |(w1, open, w2, entries, close, w3)| {
                let mut line = format!("{w1}{open}{w2}");
                for (i, ((k, v), a, b, c, sep)) in entries.iter().enumerate() {
                    if i > 0 {
                        line += sep;
                    }
                    line += &format!("{k}{a}:{b}{v}{c}");
                }
                line + close + w3
            },
        )
    }

    /// A line with one character deleted or inserted somewhere.
    fn mutated() -> impl Strategy<Value = String> {
        (line(false), mutation()).prop_map(|(line, m)| m.apply(&line))
    }

    /// Deleting a character of a line, or inserting one of JSON's tokens.
    #[derive(Debug, Clone)]
    struct Mutation {
        at: prop::sample::Index,
        insert: bool,
        byte: u8,
    }

    impl Mutation {
        fn apply(&self, line: &str) -> String {
            let mut chars: Vec<char> = line.chars().collect();
            if self.insert {
                chars.insert(self.at.index(chars.len() + 1), char::from(self.byte));
            } else if !chars.is_empty() {
                chars.remove(self.at.index(chars.len()));
            }
            chars.into_iter().collect()
        }
    }

    fn mutation() -> impl Strategy<Value = Mutation> {
        let byte = prop::sample::select(&b"{}[],:\"\\ 0-.eEa\x01"[..]);
        (any::<prop::sample::Index>(), any::<bool>(), byte)
            .prop_map(|(at, insert, byte)| Mutation { at, insert, byte })
    }

    /// A line the fast path must take: plain values the schema accepts.
    fn clean() -> impl Strategy<Value = String> {
        let stamp = prop_oneof![
            Just(r#""2024-03-01T00:00:00.114Z""#.to_string()),
            Just(r#""2024-03-01 00:00:00""#.to_string()),
            "-?[1-9][0-9]{0,8}(\\.[0-9]{1,6})?",
            Just("null".to_string()),
        ];
        let name = prop_oneof!["\"[a-zA-Z0-9 ._é-]{0,20}\"", Just("null".to_string())];
        let unit = prop_oneof![
            "0\\.[0-9]{1,17}",
            "(0|1)(\\.0{1,5})?",
            Just("-0".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            Just("null".to_string()),
        ];
        let any = "-?(0|[1-9][0-9]{0,25})(\\.[0-9]{1,25})?([eE][+-]?[0-9]{1,2})?";
        let other = prop_oneof![
            any.prop_map(String::from),
            "\"[ -!#-\\[\\]-~é]{0,40}\"",
            Just("1e400".to_string()),
            Just("true".to_string()),
            Just("null".to_string()),
        ];
        let field = prop_oneof![
            stamp.prop_map(|v| ("timestamp", v)),
            name.clone().prop_map(|v| ("model_id", v)),
            name.prop_map(|v| ("model_version", v)),
            unit.clone().prop_map(|v| ("accuracy", v)),
            unit.prop_map(|v| ("correct", v)),
            any.prop_map(|v| ("latency_ms", v)),
            any.prop_map(|v| ("x", v)),
            other.clone().prop_map(|v| ("request_id", v)),
            other.prop_map(|v| ("", v)),
        ];
        let json_ws = prop_oneof![8 => Just(""), 1 => Just(" "), 1 => Just("\t\r\n")];
        prop::collection::vec((field, json_ws.clone(), json_ws), 0..10).prop_map(|fields| {
            let body: Vec<String> = fields
                .iter()
                .map(|((k, v), a, b)| format!("{a}\"{k}\"{b}:{a}{v}{b}"))
                .collect();
            format!("{{{}}}", body.join(","))
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]

        /// Whatever the line, `parse` ends exactly where serde alone does.
        #[test]
        fn same_as_serde(
            line in prop_oneof![4 => line(false), 1 => line(true), 1 => mutated()],
            ms: bool,
        ) {
            let _ = check(&line, if ms { Unit::Ms } else { Unit::S });
        }

        /// One `Fields` reused line after line, as a decoder does (its key
        /// cache remembers the previous line's keys), reads every line as
        /// serde alone does on a fresh one.
        #[test]
        fn a_reused_fields_reads_each_line_afresh(
            lines in proptest::collection::vec(
                prop_oneof![4 => line(false), 1 => clean(), 1 => mutated()],
                1..12,
            ),
        ) {
            let s = schema(Unit::S);
            let mut f = Fields::default();
            for line in &lines {
                let got = reparse(parse_str, &mut f, line, &s);
                prop_assert_eq!(got, run(parse_serde, line, &s), "{}", line);
            }
        }

        /// A line, then copies of it with one change each (a key cut short
        /// or grown, its quote or colon lost or doubled, ...), parsed with
        /// one `Fields`: each reads as serde alone reads it, although the
        /// key cache has seen the unchanged line just before.
        #[test]
        fn near_copies_of_the_last_line_read_afresh(
            base in prop_oneof![clean(), line(false)],
            changes in proptest::collection::vec(mutation(), 1..12),
        ) {
            let s = schema(Unit::S);
            let mut f = Fields::default();
            for change in &changes {
                for line in [base.clone(), change.apply(&base)] {
                    let got = reparse(parse_str, &mut f, &line, &s);
                    prop_assert_eq!(got, run(parse_serde, &line, &s), "{}", line);
                }
            }
        }

        /// Plain flat lines never leave the fast path.
        #[test]
        fn clean_lines_take_the_fast_path(line in clean()) {
            let (_, fast) = check(&line, Unit::S);
            prop_assert!(fast, "{}", line);
        }
    }
}

//! JSONL records: one JSON object per line.
//!
//! Most lines are flat objects of plain scalars and take the hand-written
//! `fast` path. Everything else (escapes, nested values, syntax errors,
//! rejected fields) is parsed with serde_json through a visitor that
//! classifies each key against the schema as it streams by, so unmonitored
//! fields are skipped without being built into values and no per-record map
//! is allocated; that path words every error message.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::{FieldError, Fields};
use crate::record::{Schema, short_eq};

mod fast;

/// Parses one line into `fields` (freshly reset), or says what is wrong
/// with it.
///
/// Takes `&str` because the caller has validated UTF-8 once for the whole
/// line; serde_json then skips validating every string again.
pub fn parse(line: &str, schema: &Schema, fields: &mut Fields) -> Result<(), FieldError> {
    if fast::parse(line, schema, fields) {
        return Ok(());
    }
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

#[derive(Clone, Copy)]
enum Key {
    Timestamp,
    Model,
    Version,
    Metric(usize),
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
        } else {
            Key::Other
        }
    }
}

struct KeySeed<'a>(&'a Schema);

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
        Ok(Key::of(k.as_bytes(), self.0))
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

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed(self.schema))? {
            if let Key::Other = key {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value = map.next_value_seed(ScalarSeed)?;
            if let Err(e) = self.take(key, value) {
                self.error = Some(e);
                return Err(de::Error::custom("field error"));
            }
        }
        Ok(())
    }
}

impl LineVisitor<'_> {
    fn take(&mut self, key: Key, value: Scalar<'_>) -> Result<(), FieldError> {
        let s = self.schema;
        match key {
            Key::Timestamp => {
                let t = match &value {
                    Scalar::Str(text) => super::timestamp_str(text),
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
                    self.fields.set_model(&text);
                } else {
                    self.fields.set_version(&text);
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
            Key::Other => {}
        }
        Ok(())
    }
}

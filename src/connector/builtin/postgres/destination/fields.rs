//! Finds each column's raw JSON in a record's data while serde reads it:
//! no `Value` is built and no field name is allocated, since this runs for
//! every field of every record.
//!
//! It only finds values; it never judges whether one fits its column
//! (that is `encode`'s), and a JSON `null` is no value.

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Finds the raw JSON of each column's field in a record's data.
pub(super) struct Fields<'i, 'a> {
    pub(super) index: &'i FieldIndex,
    pub(super) slots: &'i mut Vec<Option<&'a str>>,
}

impl<'de, 'i> DeserializeSeed<'de> for Fields<'i, 'de> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, 'i> Visitor<'de> for Fields<'i, 'de> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        // Records of a stream list their fields in one order: the column
        // after the last one found is tried first.
        let mut next = 0;
        while let Some(key) = map.next_key_seed(Key(self.index, next))? {
            match key {
                Some(i) => {
                    next = i + 1;
                    let v: &'de RawValue = map.next_value()?;
                    self.slots[i] = (v.get() != "null").then(|| v.get());
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Where each field name's column is: a scan of the names beats hashing
/// for the usual handful of columns; wide tables get a hash map.
pub(super) struct FieldIndex {
    names: Names,
    /// Each field's name as a JSON string, quotes included: how the
    /// records of a stream nearly always spell it.
    quoted: Vec<Vec<u8>>,
}

enum Names {
    Few(Vec<String>),
    Many(HashMap<String, usize>),
}

impl FieldIndex {
    pub(super) fn new(fields: &[String]) -> Self {
        let names = if fields.len() <= 24 {
            Names::Few(fields.to_vec())
        } else {
            Names::Many(
                fields
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f.clone(), i))
                    .collect(),
            )
        };
        let quoted = fields
            .iter()
            .map(|f| serde_json::to_vec(f).expect("a string serializes"))
            .collect();
        FieldIndex { names, quoted }
    }

    /// The column of the field `name`, looked for at `first` first.
    pub(super) fn get(&self, name: &[u8], first: usize) -> Option<usize> {
        match &self.names {
            Names::Few(names) if names.get(first).is_some_and(|n| n.as_bytes() == name) => {
                Some(first)
            }
            Names::Few(names) => names.iter().position(|n| n.as_bytes() == name),
            Names::Many(map) => map.get(std::str::from_utf8(name).ok()?).copied(),
        }
    }

    /// The JSON string (quotes included) of column `i`'s field name.
    pub(super) fn quoted(&self, i: usize) -> Option<&[u8]> {
        self.quoted.get(i).map(Vec::as_slice)
    }
}

/// A field name, looked up without allocating it, and the column to try
/// first.
struct Key<'i>(&'i FieldIndex, usize);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = Option<usize>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.0.get(v.as_bytes(), self.1))
    }
}

//! PostgreSQL types and JSON Schema, both ways: what a column of a type
//! becomes in a stream (schema and the SQL that renders it as JSON), and what
//! column a stream's field becomes in a table.
//!
//! A column's schema admits every value the source sends for it (JSON
//! Schema draft 7, formats checked), and the source never sends another:
//! values JSON and RFC 3339 have no words for (not-a-number, infinities,
//! BC dates, years past 9999, multi-dimensional arrays, NULL elements) are
//! declared, never dropped, and the destination maps each schema back to
//! the column type the value came from. Types are Airbyte's
//! (`airbyte_type`), as its source-postgres gives them.

use serde_json::{json, Value};

/// A column as the catalog describes it.
#[derive(Debug, Clone)]
pub struct PgColumn {
    pub name: String,
    /// `format_type()`: what a literal is cast to (`timestamp with time zone`).
    pub sql_type: String,
    /// `pg_type.typname` of the base type (domains resolved).
    pub typname: String,
    /// `pg_type.typtype`: b base, e enum, c composite, r range, ...
    pub typtype: String,
    /// The element's typname for an array, else empty.
    pub elem: String,
    pub elem_typtype: String,
}

/// How a column's COPY text becomes JSON on the Rust side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    /// An integer or `numeric` without NaN: the text is the number.
    Number,
    /// `float` or `numeric`: a number, or a string for NaN and infinities.
    Float,
    Bool,
    /// A JSON string of the text.
    String,
    /// A JSON string, the text's space between date and time made a `T`.
    Timestamp,
    /// As `Timestamp`, and a zone of hours only (`+00`) given its minutes.
    TimestampTz,
    /// Already JSON (json, jsonb, arrays through `to_json`).
    Json,
}

/// How a column is rendered in the JSON of a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Render {
    /// The column as it is.
    AsIs,
    /// As a JSON string of its text form.
    Text,
    Base64,
    Numeric,
    /// `json` as `jsonb`: its text may hold raw newlines, `jsonb`'s never does.
    Jsonb,
    Int8,
}

/// The strings a number field holds besides JSON numbers: PostgreSQL's
/// not-a-number and infinities (float4, float8, numeric), which JSON has
/// no numbers for, spelled as Airbyte's well-known Number type spells them.
pub const NON_FINITE: &str = "^(NaN|-?Infinity)$";

/// The text of dates, times and timestamps as the source sends them. RFC
/// 3339's `date`, `time` and `date-time` formats have no words for
/// PostgreSQL's infinities, BC era, years past 9999, times without an offset
/// or 24:00; Airbyte's well-known types use patterns for the same reason.
/// Timestamps come with a `T` and, with a zone, an offset of `+HH:MM`.
const DATE: &str = r"^(\d{4,}-\d{2}-\d{2}( BC)?|-?infinity)$";
const TIMESTAMP: &str = r"^(\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?( BC)?|-?infinity)$";
const TIMESTAMPTZ: &str =
    r"^(\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}:\d{2}(:\d{2})?( BC)?|-?infinity)$";
const TIME: &str = r"^\d{2}:\d{2}:\d{2}(\.\d+)?$";
const TIMETZ: &str = r"^\d{2}:\d{2}:\d{2}(\.\d+)?[+-]\d{2}(:\d{2}){0,2}$";

/// The dimensions a PostgreSQL array can have (`MAXDIM`); a column's type
/// does not fix them, so the schema of an array admits them all.
const MAX_DIMS: usize = 6;

/// A value's JSON Schema, without `null`, and the SQL that renders it.
fn scalar(typname: &str, typtype: &str) -> (Value, Render) {
    let typed = |airbyte: &str, pattern: &str| json!({"type": "string", "airbyte_type": airbyte, "pattern": pattern});
    if typtype == "e" {
        return (json!({"type": "string"}), Render::Text);
    }
    match typname {
        "int2" | "int4" | "int8" => (
            json!({"type": "integer", "airbyte_type": "integer"}),
            Render::AsIs,
        ),
        // As bigint, an oid's text is a number.
        "oid" => (
            json!({"type": "integer", "airbyte_type": "integer"}),
            Render::Int8,
        ),
        "float4" | "float8" | "numeric" => (
            json!({"type": ["number", "string"], "pattern": NON_FINITE}),
            Render::AsIs,
        ),
        // Always finite.
        "money" => (json!({"type": "number"}), Render::Numeric),
        "bool" => (json!({"type": "boolean"}), Render::AsIs),
        "date" => (typed("date", DATE), Render::AsIs),
        "time" => (typed("time_without_timezone", TIME), Render::AsIs),
        "timetz" => (typed("time_with_timezone", TIMETZ), Render::AsIs),
        "timestamp" => (typed("timestamp_without_timezone", TIMESTAMP), Render::AsIs),
        "timestamptz" => (typed("timestamp_with_timezone", TIMESTAMPTZ), Render::AsIs),
        // Any JSON value: Airbyte's "unknown" type, kept as JSON.
        "jsonb" => (json!({}), Render::AsIs),
        "json" => (json!({}), Render::Jsonb),
        "bytea" => (
            json!({"type": "string", "contentEncoding": "base64", "airbyte_type": "binary_data"}),
            Render::Base64,
        ),
        "text" | "varchar" | "bpchar" | "char" | "name" | "citext" => {
            (json!({"type": "string"}), Render::AsIs)
        }
        _ => (json!({"type": "string"}), Render::Text),
    }
}

/// `schema` with the types `more` first among its types; a schema without
/// a type (any value) is left as it is.
fn also(mut schema: Value, more: &[&str]) -> Value {
    let types: Vec<Value> = match schema.get("type") {
        Some(Value::String(t)) => vec![json!(t)],
        Some(Value::Array(ts)) => ts.clone(),
        _ => return schema,
    };
    let all: Vec<Value> = more.iter().map(|t| json!(t)).chain(types).collect();
    schema["type"] = json!(all);
    schema
}

/// The elements of an array's dimension `dim` (from 1): `item` or NULL, or
/// arrays of the next dimension's elements, up to PostgreSQL's last.
fn element(item: &Value, dim: usize) -> Value {
    if dim == MAX_DIMS {
        return also(item.clone(), &["null"]);
    }
    let mut v = also(item.clone(), &["null", "array"]);
    if v.get("type").is_some() {
        v["items"] = element(item, dim + 1);
    }
    v
}

impl PgColumn {
    /// The field's JSON Schema, nullable as every column may be: it admits
    /// every value the source sends for the column.
    pub fn schema(&self) -> Value {
        if self.elem.is_empty() {
            return also(scalar(&self.typname, &self.typtype).0, &["null"]);
        }
        let (item, _) = scalar(&self.elem, &self.elem_typtype);
        json!({"type": ["null", "array"], "items": element(&item, 1)})
    }

    /// How [`select`](Self::select)'s text output becomes JSON.
    pub fn json_kind(&self) -> JsonKind {
        if !self.elem.is_empty() {
            return JsonKind::Json;
        }
        if self.typtype == "e" {
            return JsonKind::String;
        }
        match self.typname.as_str() {
            "int2" | "int4" | "int8" | "oid" | "money" => JsonKind::Number,
            "float4" | "float8" | "numeric" => JsonKind::Float,
            "bool" => JsonKind::Bool,
            "timestamp" => JsonKind::Timestamp,
            "timestamptz" => JsonKind::TimestampTz,
            "json" | "jsonb" => JsonKind::Json,
            _ => JsonKind::String,
        }
    }

    /// The SQL expression, over the row alias `s`, whose text output
    /// [`json_kind`](Self::json_kind) turns into the JSON Airbyte's
    /// source-postgres gives.
    pub fn select_text(&self) -> String {
        let e = self.select();
        if self.elem.is_empty() {
            e
        } else {
            format!("to_json({e})")
        }
    }

    /// The SQL expression, over the row alias `s`, that gives the value in
    /// the form Airbyte's source-postgres gives it (bytea as base64, json
    /// as jsonb, enums and odd types as text).
    pub fn select(&self) -> String {
        let col = format!("s.{}", super::ident(&self.name));
        if !self.elem.is_empty() {
            return match scalar(&self.elem, &self.elem_typtype).1 {
                Render::AsIs => col,
                Render::Numeric => format!("{col}::numeric[]"),
                // An empty array stays one (array_agg of nothing is NULL).
                Render::Base64 => format!(
                    "CASE WHEN {col} IS NOT NULL THEN ARRAY(SELECT translate(encode(x, 'base64'), \
                     E'\\n', '') FROM unnest({col}) WITH ORDINALITY u(x, n) ORDER BY n) END"
                ),
                Render::Text => format!("{col}::text[]"),
                Render::Jsonb => format!("{col}::jsonb[]"),
                Render::Int8 => format!("{col}::int8[]"),
            };
        }
        match scalar(&self.typname, &self.typtype).1 {
            Render::AsIs => col,
            Render::Text => format!("{col}::text"),
            Render::Numeric => format!("{col}::numeric"),
            Render::Base64 => format!("translate(encode({col}, 'base64'), E'\\n', '')"),
            Render::Jsonb => format!("{col}::jsonb"),
            Render::Int8 => format!("{col}::int8"),
        }
    }

    /// The SQL expression, over the row alias `s`, whose binary COPY form
    /// is what a destination column of type `sql` (a [`ColType::sql`])
    /// would hold after the JSON way (`select_text` read as JSON and
    /// loaded): None when the column does not go to that type or no
    /// expression gives the same value. `numeric_infinity`: the server
    /// has numeric infinities (14 and later), which float infinities
    /// become.
    pub fn select_binary(&self, sql: &str, numeric_infinity: bool) -> Option<String> {
        let t = ColType::from_schema(&self.schema());
        if t.sql() != sql {
            return None;
        }
        let col = format!("s.{}", super::ident(&self.name));
        if !self.elem.is_empty() {
            return Some(format!("({})::jsonb", self.select_text()));
        }
        let e = match (t, self.typname.as_str()) {
            (ColType::BigInt, "int8") => col,
            (ColType::BigInt, "int2" | "int4" | "oid") => format!("{col}::int8"),
            (ColType::Numeric, "numeric") => col,
            (ColType::Numeric, "money") => self.select(),
            // The float's shortest text, as the JSON way sends it.
            (ColType::Numeric, "float4" | "float8") if numeric_infinity => {
                format!("{col}::text::numeric")
            }
            (ColType::Bool, "bool")
            | (ColType::Date, "date")
            | (ColType::Time, "time")
            | (ColType::TimeTz, "timetz")
            | (ColType::Timestamp, "timestamp")
            | (ColType::TimestampTz, "timestamptz") => col,
            // A JSON `null` is a null field in a record, so NULL.
            (ColType::Jsonb, "jsonb" | "json") => {
                format!("NULLIF({}, 'null'::jsonb)", self.select())
            }
            // Binary text is its bytes; a cast to text would trim the
            // padding of `character(n)`, which its text form keeps.
            (ColType::Text, "text" | "varchar" | "bpchar") if self.typtype != "e" => col,
            (ColType::Text, _) => format!("({})::text", self.select()),
            _ => return None,
        };
        Some(e)
    }

    /// Whether the type orders values so that a cursor over it works.
    pub fn cursor_candidate(&self) -> bool {
        self.elem.is_empty()
            && matches!(
                self.typname.as_str(),
                "int2"
                    | "int4"
                    | "int8"
                    | "numeric"
                    | "float4"
                    | "float8"
                    | "date"
                    | "timestamp"
                    | "timestamptz"
                    | "time"
                    | "text"
                    | "varchar"
                    | "bpchar"
            )
    }
}

/// The column type a destination table gives a field, Destinations V2 style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    BigInt,
    Numeric,
    Bool,
    Date,
    Time,
    TimeTz,
    Timestamp,
    TimestampTz,
    Jsonb,
}

impl ColType {
    pub fn sql(self) -> &'static str {
        match self {
            ColType::Text => "varchar",
            ColType::BigInt => "bigint",
            ColType::Numeric => "numeric",
            ColType::Bool => "boolean",
            ColType::Date => "date",
            ColType::Time => "time",
            ColType::TimeTz => "time with time zone",
            ColType::Timestamp => "timestamp",
            ColType::TimestampTz => "timestamp with time zone",
            ColType::Jsonb => "jsonb",
        }
    }

    /// The type of a field of this JSON Schema.
    pub fn from_schema(schema: &Value) -> ColType {
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => Vec::new(),
        };
        // A number whose only strings are not-a-number and the infinities
        // (the source's floats and numerics) is a number.
        let finite = schema.get("pattern").and_then(Value::as_str) == Some(NON_FINITE);
        let types = match types.as_slice() {
            ["number", "string"] | ["string", "number"] if finite => vec!["number"],
            _ => types,
        };
        let [t] = types.as_slice() else {
            return ColType::Jsonb;
        };
        let airbyte = schema.get("airbyte_type").and_then(Value::as_str);
        let format = schema.get("format").and_then(Value::as_str);
        match *t {
            "integer" => ColType::BigInt,
            "number" if airbyte == Some("integer") => ColType::BigInt,
            "number" => ColType::Numeric,
            "boolean" => ColType::Bool,
            "string" => match (format, airbyte) {
                (_, Some("timestamp_without_timezone")) => ColType::Timestamp,
                (_, Some("timestamp_with_timezone")) | (Some("date-time"), _) => {
                    ColType::TimestampTz
                }
                (_, Some("date")) | (Some("date"), _) => ColType::Date,
                (_, Some("time_with_timezone")) => ColType::TimeTz,
                (_, Some("time_without_timezone")) | (Some("time"), _) => ColType::Time,
                _ => ColType::Text,
            },
            _ => ColType::Jsonb,
        }
    }

    /// The type of an existing column, by `format_type()`.
    pub fn from_sql(sql_type: &str) -> ColType {
        let t = sql_type.split('(').next().unwrap_or("").trim();
        match t {
            "bigint" | "integer" | "smallint" => ColType::BigInt,
            "numeric" | "double precision" | "real" => ColType::Numeric,
            "boolean" => ColType::Bool,
            "date" => ColType::Date,
            "time without time zone" => ColType::Time,
            "time with time zone" => ColType::TimeTz,
            "timestamp without time zone" => ColType::Timestamp,
            "timestamp with time zone" => ColType::TimestampTz,
            "jsonb" | "json" => ColType::Jsonb,
            _ => ColType::Text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(typname: &str, elem: &str) -> PgColumn {
        PgColumn {
            name: "c".into(),
            sql_type: typname.into(),
            typname: typname.into(),
            typtype: "b".into(),
            elem: elem.into(),
            elem_typtype: "b".into(),
        }
    }

    #[test]
    fn array_elements_may_be_null_or_arrays_up_to_six_dimensions() {
        let s = col("_date", "date").schema();
        let mut items = &s["items"];
        for _ in 1..MAX_DIMS {
            assert_eq!(items["type"], json!(["null", "array", "string"]));
            assert_eq!(items["airbyte_type"], "date");
            items = &items["items"];
        }
        assert_eq!(items["type"], json!(["null", "string"]));
        assert!(items.get("items").is_none());
        // Elements of any JSON need no nesting.
        assert_eq!(col("_jsonb", "jsonb").schema()["items"], json!({}));
    }

    #[test]
    fn types_map_to_airbyte_schemas_and_back() {
        for (t, ct) in [
            ("int4", ColType::BigInt),
            ("numeric", ColType::Numeric),
            ("timestamptz", ColType::TimestampTz),
            ("timestamp", ColType::Timestamp),
            ("timetz", ColType::TimeTz),
            ("time", ColType::Time),
            ("date", ColType::Date),
            ("jsonb", ColType::Jsonb),
            ("uuid", ColType::Text),
            ("bool", ColType::Bool),
        ] {
            assert_eq!(ColType::from_schema(&col(t, "").schema()), ct, "{t}");
        }
        for t in ["float4", "float8", "numeric", "money"] {
            assert_eq!(
                ColType::from_schema(&col(t, "").schema()),
                ColType::Numeric,
                "{t}"
            );
        }
        assert_eq!(
            ColType::from_schema(&col("_int4", "int4").schema()),
            ColType::Jsonb
        );
        // Another source's number-or-string is not a number.
        let either = json!({"type": ["number", "string"]});
        assert_eq!(ColType::from_schema(&either), ColType::Jsonb);
        assert_eq!(
            col("bytea", "").select(),
            "translate(encode(s.\"c\", 'base64'), E'\\n', '')"
        );
        assert_eq!(col("uuid", "").select(), "s.\"c\"::text");
        // Binary forms of the value the JSON way stores, or none.
        let bin = |t: &str, elem: &str, sql: &str, inf: bool| col(t, elem).select_binary(sql, inf);
        assert_eq!(
            bin("int4", "", "bigint", true).as_deref(),
            Some("s.\"c\"::int8")
        );
        assert_eq!(bin("int4", "", "numeric", true), None);
        assert_eq!(
            bin("bpchar", "", "varchar", true).as_deref(),
            Some("s.\"c\"")
        );
        assert_eq!(
            bin("uuid", "", "varchar", true).as_deref(),
            Some("(s.\"c\"::text)::text")
        );
        assert_eq!(
            bin("float8", "", "numeric", true).as_deref(),
            Some("s.\"c\"::text::numeric")
        );
        assert_eq!(bin("float8", "", "numeric", false), None);
        assert_eq!(
            bin("_int4", "int4", "jsonb", true).as_deref(),
            Some("(to_json(s.\"c\"))::jsonb")
        );
        assert_eq!(col("json", "").select(), "s.\"c\"::jsonb");
    }
}

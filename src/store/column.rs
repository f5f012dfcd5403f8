//! How values that are not plain numbers or text sit in TEXT columns:
//! words (statuses, kinds, schedules, modes) as their one string form,
//! and structured values as JSON text. Both backends read and write them
//! through `String`, so one impl serves SQLite and PostgreSQL.

use crate::model::{
    ActorKind, AttemptStatus, ConnectionStatus, JobKind, JobStatus, JobTrigger, NamespaceRule,
    Schedule, SchemaChangePolicy,
};
use crate::protocol::{DestinationSyncMode, StateType, SyncMode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type};

/// Implements the column traits for types kept as text: read with
/// `$from(String)`, written with `$to(&self)`.
macro_rules! text_columns {
    ($from:ident, $to:ident: $($t:ty),+ $(,)?) => {$(
        impl<DB: Database> Type<DB> for $t
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: Database> Decode<'r, DB> for $t
        where
            String: Decode<'r, DB>,
        {
            fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
                $from(<String as Decode<DB>>::decode(value)?)
            }
        }

        impl<'q, DB: Database> Encode<'q, DB> for $t
        where
            String: Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as Database>::ArgumentBuffer<'q>,
            ) -> Result<IsNull, BoxDynError> {
                <String as Encode<DB>>::encode($to(self)?, buf)
            }
        }
    )+};
}

/// A word from its one string form.
fn parse<T: std::str::FromStr>(text: String) -> Result<T, BoxDynError>
where
    T::Err: Into<BoxDynError>,
{
    text.parse::<T>().map_err(Into::into)
}

fn display(v: &impl std::fmt::Display) -> Result<String, BoxDynError> {
    Ok(v.to_string())
}

fn from_json<T: DeserializeOwned>(text: String) -> Result<T, BoxDynError> {
    Ok(serde_json::from_str(&text)?)
}

fn to_json(v: &impl Serialize) -> Result<String, BoxDynError> {
    Ok(serde_json::to_string(v)?)
}

text_columns!(parse, display:
    ActorKind,
    ConnectionStatus,
    JobKind,
    JobStatus,
    JobTrigger,
    AttemptStatus,
    SchemaChangePolicy,
    Schedule,
    NamespaceRule,
    SyncMode,
    DestinationSyncMode,
    StateType,
);

/// A value kept as JSON text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonText<T>(pub T);

impl<T, DB: Database> Type<DB> for JsonText<T>
where
    String: Type<DB>,
{
    fn type_info() -> DB::TypeInfo {
        <String as Type<DB>>::type_info()
    }
    fn compatible(ty: &DB::TypeInfo) -> bool {
        <String as Type<DB>>::compatible(ty)
    }
}

impl<'r, T: DeserializeOwned, DB: Database> Decode<'r, DB> for JsonText<T>
where
    String: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <String as Decode<DB>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(&text)?))
    }
}

impl<'q, T: Serialize, DB: Database> Encode<'q, DB> for JsonText<T>
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(
        &self,
        buf: &mut <DB as Database>::ArgumentBuffer<'q>,
    ) -> Result<IsNull, BoxDynError> {
        <String as Encode<DB>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

/// Lets rows take JSON columns as their own types
/// (`#[sqlx(try_from = "JsonText<T>")]`).
macro_rules! json_fields {
    ($($t:ty),+ $(,)?) => {$(
        impl From<JsonText<$t>> for $t {
            fn from(j: JsonText<$t>) -> $t {
                j.0
            }
        }
    )+};
}

json_fields!(
    serde_json::Value,
    Vec<String>,
    Vec<crate::model::StreamProgress>,
    Vec<crate::model::SchemaChange>,
    std::collections::BTreeMap<String, Vec<String>>,
    std::collections::BTreeMap<String, Vec<Vec<String>>>,
    std::collections::BTreeMap<String, crate::protocol::SyncMode>,
    std::collections::BTreeMap<String, crate::protocol::DestinationSyncMode>,
    crate::model::Notifications,
);

// This crate's serde types as JSON text; nullable columns then read as
// `Option<T>`.
text_columns!(from_json, to_json:
    crate::model::Failure,
    crate::protocol::ConfiguredAirbyteCatalog,
);

/// JSON text of a value, to bind.
pub fn json<T: Serialize>(v: &T) -> JsonText<&T> {
    JsonText(v)
}

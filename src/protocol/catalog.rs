//! Catalogs: what a source offers (`AirbyteCatalog`) and what a sync asks of
//! it (`ConfiguredAirbyteCatalog`).

use super::{Extra, StreamDescriptor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AirbyteCatalog {
    pub streams: Vec<AirbyteStream>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct AirbyteStream {
    pub name: String,
    pub json_schema: Value,
    pub supported_sync_modes: Vec<SyncMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_defined_cursor: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub default_cursor_field: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_defined_primary_key: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_resumable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_file_based: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

impl AirbyteStream {
    pub fn descriptor(&self) -> StreamDescriptor {
        StreamDescriptor::new(self.namespace.as_deref(), &self.name)
    }

    /// A stream with a JSON schema and full refresh only; builders add the rest.
    pub fn new(name: &str, json_schema: Value) -> Self {
        AirbyteStream {
            name: name.to_string(),
            json_schema,
            supported_sync_modes: vec![SyncMode::FullRefresh],
            source_defined_cursor: None,
            default_cursor_field: Vec::new(),
            source_defined_primary_key: Vec::new(),
            namespace: None,
            is_resumable: None,
            is_file_based: None,
            extra: Extra::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ConfiguredAirbyteCatalog {
    pub streams: Vec<ConfiguredAirbyteStream>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

impl ConfiguredAirbyteCatalog {
    pub fn find(&self, namespace: Option<&str>, name: &str) -> Option<&ConfiguredAirbyteStream> {
        self.streams
            .iter()
            .find(|s| s.stream.name == name && s.stream.namespace.as_deref() == namespace)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, ToSchema)]
pub struct ConfiguredAirbyteStream {
    pub stream: AirbyteStream,
    pub sync_mode: SyncMode,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cursor_field: Vec<String>,
    pub destination_sync_mode: DestinationSyncMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_object_name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_generation_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_files: Option<bool>,
    #[serde(flatten)]
    #[schema(value_type = HashMap<String, Value>)]
    pub extra: Extra,
}

impl ConfiguredAirbyteStream {
    /// Whether the stream's older generations go once this sync lands
    /// (`minimum_generation_id == generation_id`, as a refresh sends it):
    /// the destination then replaces what it holds, whatever the sync mode.
    pub fn truncates(&self) -> bool {
        matches!(
            (self.generation_id, self.minimum_generation_id),
            (Some(g), Some(m)) if g > 0 && g == m
        )
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    FullRefresh,
    Incremental,
}

impl SyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SyncMode::FullRefresh => "full_refresh",
            SyncMode::Incremental => "incremental",
        }
    }
}

impl std::str::FromStr for SyncMode {
    type Err = String;

    /// Takes `full-refresh` as well as `full_refresh`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "full_refresh" => Ok(SyncMode::FullRefresh),
            "incremental" => Ok(SyncMode::Incremental),
            _ => Err(format!(
                "`{s}` is not a sync mode; use full_refresh or incremental"
            )),
        }
    }
}

impl std::fmt::Display for SyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DestinationSyncMode {
    Append,
    Overwrite,
    AppendDedup,
    Update,
    SoftDelete,
}

impl DestinationSyncMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationSyncMode::Append => "append",
            DestinationSyncMode::Overwrite => "overwrite",
            DestinationSyncMode::AppendDedup => "append_dedup",
            DestinationSyncMode::Update => "update",
            DestinationSyncMode::SoftDelete => "soft_delete",
        }
    }
}

impl std::str::FromStr for DestinationSyncMode {
    type Err = String;

    /// Takes `append-dedup` as well as `append_dedup`.
    fn from_str(s: &str) -> Result<Self, String> {
        let all = [
            DestinationSyncMode::Append,
            DestinationSyncMode::Overwrite,
            DestinationSyncMode::AppendDedup,
            DestinationSyncMode::Update,
            DestinationSyncMode::SoftDelete,
        ];
        let wanted = s.trim().to_ascii_lowercase().replace('-', "_");
        all.into_iter()
            .find(|m| m.as_str() == wanted)
            .ok_or_else(|| {
                format!(
                    "`{s}` is not a destination sync mode; use overwrite, append or append_dedup"
                )
            })
    }
}

impl std::fmt::Display for DestinationSyncMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_catalog_keeps_unknown_fields_and_generations() {
        let text = r#"{"streams":[{"stream":{"name":"users","json_schema":{"type":"object"},"supported_sync_modes":["full_refresh","incremental"],"x_hint":1},"sync_mode":"incremental","cursor_field":["updated_at"],"destination_sync_mode":"append_dedup","primary_key":[["id"]],"generation_id":3,"minimum_generation_id":0,"sync_id":42}]}"#;
        let c: ConfiguredAirbyteCatalog = serde_json::from_str(text).unwrap();
        let s = &c.streams[0];
        assert_eq!(s.destination_sync_mode, DestinationSyncMode::AppendDedup);
        assert_eq!(
            (s.generation_id, s.minimum_generation_id, s.sync_id),
            (Some(3), Some(0), Some(42))
        );
        let back = serde_json::to_value(&c).unwrap();
        assert_eq!(back["streams"][0]["stream"]["x_hint"], 1);
    }
}

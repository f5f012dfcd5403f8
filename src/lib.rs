//! sluice: data sync (ELT) over the Airbyte Protocol, as one binary.
//!
//! Data flows one way: `commands` -> `api` -> `service` -> (`store` | `sync` -> `connector`).
//! Nothing below `commands` knows about clap, indicatif or comfy-table.

pub mod api;
pub mod cli;
pub mod commands;
pub mod connector;
pub mod daemon;
pub mod error;
pub mod fsutil;
pub mod model;
pub mod owner;
pub mod protocol;
pub mod service;
pub mod settings;
pub mod store;
pub mod sync;

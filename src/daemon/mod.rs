//! `sluice daemon`: the job store, the HTTP API over a Unix socket and
//! TCP ([`server`]), the job runner that works the durable queue
//! ([`runner`]), the scheduler that fills it ([`scheduler`]), retention of
//! old jobs ([`housekeeping`]), and its
//! process: locks, token, start and stop ([`control`]). It serves the same
//! `Api` the CLI runs in-process, so a command answers the same either
//! way. Nothing here prints for people or knows clap: `cli.rs` runs it.

pub mod control;
pub mod housekeeping;
pub mod metrics;
pub mod runner;
pub mod scheduler;
pub mod server;

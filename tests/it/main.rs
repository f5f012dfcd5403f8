//! Integration tests: they run the `sluice` binary as a user would.

mod common;

mod assets;
mod docker;

//! Integration tests: they run the `sluice` binary as a user would.

mod common;

mod assets;
mod builtin;
mod cli;
mod daemon;
mod docker;
mod faker;
mod guarantees;
mod housekeeping;
mod layers;
mod managed;
mod openapi;
mod postgres;
mod process;
mod services;
mod ui;

//! What a shell completes as the user types: connector references after
//! `--source`, `--destination` and `--connector`, stored names after the
//! commands that take one. Completion runs `sluice` itself (clap's
//! dynamic completion, `COMPLETE=bash sluice`), so it sees this machine's
//! store as it is now.

use crate::api::{Completion, Local};
use clap_complete::engine::{ArgValueCompleter, CompletionCandidate};
use std::ffi::OsStr;

fn candidates(current: &OsStr, names: Vec<String>) -> Vec<CompletionCandidate> {
    let current = current.to_string_lossy();
    names
        .into_iter()
        .filter(|n| n.starts_with(current.as_ref()))
        .map(CompletionCandidate::new)
        .collect()
}

fn connectors(current: &OsStr) -> Vec<CompletionCandidate> {
    let mut names = Local::names_for_completion(Completion::Connectors);
    names.extend(["python:", "docker:", "exec:"].map(str::to_string));
    candidates(current, names)
}

fn sources(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(current, Local::names_for_completion(Completion::Sources))
}

fn destinations(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(
        current,
        Local::names_for_completion(Completion::Destinations),
    )
}

/// A name after `sluice source ...` or `sluice destination ...`, which
/// share their arguments: the command line being completed says which.
fn actors(current: &OsStr) -> Vec<CompletionCandidate> {
    let destination = std::env::args_os().any(|a| a == "destination");
    if destination {
        destinations(current)
    } else {
        sources(current)
    }
}

fn connections(current: &OsStr) -> Vec<CompletionCandidate> {
    candidates(
        current,
        Local::names_for_completion(Completion::Connections),
    )
}

pub fn connector_refs() -> ArgValueCompleter {
    ArgValueCompleter::new(connectors)
}

pub fn source_names() -> ArgValueCompleter {
    ArgValueCompleter::new(sources)
}

pub fn destination_names() -> ArgValueCompleter {
    ArgValueCompleter::new(destinations)
}

pub fn actor_names() -> ArgValueCompleter {
    ArgValueCompleter::new(actors)
}

pub fn connection_names() -> ArgValueCompleter {
    ArgValueCompleter::new(connections)
}

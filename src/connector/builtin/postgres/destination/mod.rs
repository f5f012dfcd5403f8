//! The destination side: Airbyte's Destinations V2 final tables, loaded
//! with COPY.
//!
//! Two threads share the work. The calling one reads the protocol lines
//! (`input`) and turns each record into a row for COPY (`encode`), typed by
//! the column it lands in (a value that does not fit becomes NULL and a
//! change in `_airbyte_meta`); the writer thread (`writer`) streams those
//! rows into PostgreSQL and owns the transactions, so parsing and loading
//! overlap. Rows go in COPY's binary format, which the server loads without
//! parsing text; a row with a value of a rarer shape (an exponent, a BC
//! date...) goes as COPY text (`text`) instead, and so does every row of a
//! table whose columns have types sluice did not choose. `plan` says what
//! each stream is written to, `ddl` creates, evolves, merges and swaps the
//! tables; this module starts the threads and holds what passes between
//! them.
//!
//! Guarantees:
//! - A state is emitted back only after the transaction holding every
//!   record before it has committed.
//! - `overwrite` loads a new table and swaps it in (drop and rename in one
//!   transaction) when the stream completes; until then the old table is
//!   untouched and the states are held. A leftover new table of a killed
//!   run is dropped by the next one.
//! - `append` copies into the final table inside the checkpoint's
//!   transaction; `append_dedup` copies into a temporary staging table and
//!   merges it by primary key in that same transaction (newest cursor wins,
//!   `_ab_cdc_deleted_at` deletes), so a rerun of records already committed
//!   leaves no duplicate.
//! - A refresh (`minimum_generation_id == generation_id`) replaces the
//!   table whatever the mode: `append` loads a new table as `overwrite`
//!   does, `append_dedup` merges into a new table; either is swapped in
//!   when the stream completes, so a failed refresh changes nothing.

mod ddl;
mod encode;
mod fields;
mod input;
mod plan;
mod record;
mod text;
mod writer;

use super::types::ColType;
use super::Config;
use crate::connector::builtin::handoff::Accepted;
use crate::connector::builtin::{BuiltinError, BuiltinResult, Output};
use crate::protocol::ConfiguredAirbyteCatalog;
use input::read_input;
use plan::{plans, Plan};
use std::io::BufRead;
use std::sync::mpsc::SyncSender;
use writer::writer;

/// What the reading thread asks of the writer, in stream order.
enum Op {
    /// Rows for stream `stream`, in COPY's binary format or as COPY text.
    Rows {
        stream: usize,
        binary: bool,
        rows: Vec<u8>,
    },
    /// A STATE line to emit back once what came before it is committed.
    State(Vec<u8>),
    Complete(usize),
}

pub(super) fn write(
    config: &Config,
    catalog: &ConfiguredAirbyteCatalog,
    input: &mut dyn BufRead,
    out: &mut Output,
) -> BuiltinResult<()> {
    let plans = plans(config, catalog)?;
    let handoff = out.handoff.clone();
    let (tx, rx) = std::sync::mpsc::sync_channel::<Op>(4);
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<Vec<Columns>>(1);
    std::thread::scope(|scope| {
        let plans = &plans;
        let writer = std::thread::Builder::new()
            .name("sluice-postgres-writer".into())
            .spawn_scoped(scope, move || {
                super::block_on(writer(config, plans, rx, ready_tx, out))?
            })
            .map_err(|e| BuiltinError::system(format!("cannot start a thread: {e}")))?;
        let read = match ready_rx.recv() {
            Ok(columns) => {
                let rows = handoff
                    .as_deref()
                    .and_then(|h| h.open(takes_rows(plans, &columns)));
                read_input(input, plans, columns, rows.as_ref(), &tx)
            }
            // The writer failed to set up; its error says why.
            Err(_) => Ok(()),
        };
        drop(tx);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err(BuiltinError::system("the postgres writer crashed")));
        // A failed writer closes the channel under the reader: its error
        // is the cause.
        written.and(read)
    })
}

/// The streams whose rows can come in PostgreSQL's binary format as they
/// are, with the columns they fill: those loaded in binary, whose records
/// do not go whole into one column.
fn takes_rows(plans: &[Plan], columns: &[Columns]) -> Vec<Accepted> {
    plans
        .iter()
        .zip(columns)
        .filter(|(p, c)| c.binary && !p.whole)
        .map(|(p, c)| Accepted {
            stream: p.stream.clone(),
            columns: p
                .fields
                .iter()
                .cloned()
                .zip(c.types.iter().map(|t| t.sql()))
                .collect(),
        })
        .collect()
}

/// The reader's error when the writer thread has gone (its own error
/// says why).
fn writer_stopped<T>(_: T) -> BuiltinError {
    BuiltinError::system("the postgres writer stopped")
}

/// A stream's rows on their way to the writer, in either format.
#[derive(Default)]
struct Batch {
    binary: Vec<u8>,
    text: Vec<u8>,
}

impl Batch {
    /// Sends stream `i`'s rows of either format once they reach `min` bytes
    /// (1: whatever there is).
    fn send(&mut self, i: usize, min: usize, tx: &SyncSender<Op>) -> BuiltinResult<()> {
        for (binary, rows) in [(true, &mut self.binary), (false, &mut self.text)] {
            if !rows.is_empty() && rows.len() >= min {
                let rows = std::mem::replace(rows, Vec::with_capacity(rows.capacity()));
                tx.send(Op::Rows {
                    stream: i,
                    binary,
                    rows,
                })
                .map_err(writer_stopped)?;
            }
        }
        Ok(())
    }
}

/// A stream's columns as the reader needs them.
struct Columns {
    /// Each field's column type.
    types: Vec<ColType>,
    /// Every column has the exact type whose binary form sluice writes (a
    /// table sluice created; not, say, an `integer` column made by hand).
    binary: bool,
    /// `_airbyte_meta` defaults to a row's without changes in the load
    /// table, so binary rows without changes leave it out.
    meta_default: bool,
}

impl Columns {
    fn created(p: &Plan) -> Self {
        Columns {
            types: p.schema_types.clone(),
            binary: true,
            meta_default: false,
        }
    }
}

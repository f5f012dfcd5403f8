//! The writer thread: owns the connection and the transactions. It sets
//! the tables up, tells the reader the columns' types, streams the rows it
//! is sent into COPY (one COPY while the same stream's rows follow), merges
//! what append_dedup staged at each commit, swaps a new table in when its
//! stream completes, and emits the states.
//!
//! It never emits a state before the transaction holding every record
//! before it has committed, nor while a new table that must replace a final
//! one is loaded but not swapped in; such states are held until it is. A
//! new table whose stream did not complete is dropped at the end, the final
//! table left as it was.

use super::ddl::{setup, Target};
use super::plan::Plan;
use super::{Columns, Op};
use crate::connector::builtin::postgres::{binary, Config, Conn};
use crate::connector::builtin::{BuiltinError, BuiltinResult, Output};
use crate::protocol::LogLevel;
use std::sync::mpsc::{Receiver, SyncSender};

/// Sets the tables up, tells the reader the column types, then loads
/// what it sends.
pub(super) async fn writer(
    config: &Config,
    plans: &[Plan],
    rx: Receiver<Op>,
    ready: SyncSender<Vec<Columns>>,
    out: &mut Output,
) -> BuiltinResult<()> {
    let mut conn = Conn::open(config).await?;
    let mut targets = Vec::new();
    let mut columns = Vec::new();
    for p in plans {
        let (t, c) = setup(&mut conn, p, config.drop_cascade).await?;
        targets.push(t);
        columns.push(c);
    }
    if ready.send(columns).is_err() {
        return Ok(());
    }
    let mut in_tx = false;
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut next: Option<Op> = None;
    loop {
        let op = match next.take() {
            Some(op) => op,
            None => match rx.recv() {
                Ok(op) => op,
                Err(_) => break,
            },
        };
        match op {
            Op::Rows {
                stream: i,
                binary,
                rows,
            } => {
                if !in_tx {
                    conn.execute("BEGIN").await?;
                    in_tx = true;
                }
                let t = &mut targets[i];
                let masker = conn.config.clone();
                let fail = |e: sqlx::Error| {
                    BuiltinError::system(format!(
                        "loading stream `{}` into {} failed: {}",
                        plans[i].name,
                        t.load,
                        masker.mask(&e.to_string())
                    ))
                };
                let sql = if binary { &t.copy_binary } else { &t.copy_text };
                let mut copy = conn.conn.copy_in_raw(sql).await.map_err(fail)?;
                if binary {
                    copy.send(binary::HEADER).await.map_err(fail)?;
                }
                copy.send(rows).await.map_err(fail)?;
                // Keep the COPY open while the same stream's rows follow.
                loop {
                    match rx.recv() {
                        Ok(Op::Rows {
                            stream,
                            binary: b,
                            rows,
                        }) if stream == i && b == binary => {
                            copy.send(rows).await.map_err(fail)?;
                        }
                        Ok(other) => {
                            next = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if binary {
                    copy.send(binary::TRAILER).await.map_err(fail)?;
                }
                copy.finish().await.map_err(fail)?;
                if t.swap.is_some() {
                    t.pending = !t.complete;
                }
                t.staged = t.merge_sql.is_some();
            }
            Op::State(line) => {
                commit(&mut conn, &mut targets, &mut in_tx).await?;
                if targets.iter().any(|t| t.pending) {
                    held.push(line);
                } else {
                    out.raw(&line)?;
                    out.flush()?;
                }
            }
            Op::Complete(i) => {
                commit(&mut conn, &mut targets, &mut in_tx).await?;
                let t = &mut targets[i];
                if let Some(swap) = &t.swap {
                    if !t.complete {
                        conn.execute(&swap.sql).await?;
                    }
                }
                t.complete = true;
                t.pending = false;
                if !targets.iter().any(|t| t.pending) {
                    for line in held.drain(..) {
                        out.raw(&line)?;
                    }
                    out.flush()?;
                }
            }
        }
    }
    commit(&mut conn, &mut targets, &mut in_tx).await?;
    for (p, t) in plans.iter().zip(&targets) {
        if let (Some(swap), false) = (&t.swap, t.complete) {
            conn.execute(&format!("DROP TABLE IF EXISTS {}", swap.new))
                .await?;
            out.log(
                LogLevel::Warn,
                format!(
                    "Stream {} did not complete; {} is left as it was.",
                    p.name,
                    p.final_table()
                ),
            )?;
        }
    }
    conn.close().await;
    out.flush()
}

/// Merges what append_dedup staged, then commits.
async fn commit(conn: &mut Conn, targets: &mut [Target], in_tx: &mut bool) -> BuiltinResult<()> {
    if !*in_tx {
        return Ok(());
    }
    for t in targets.iter_mut() {
        if t.staged {
            if let Some(merge) = &t.merge_sql {
                conn.execute(merge).await?;
            }
            t.staged = false;
        }
    }
    conn.execute("COMMIT").await?;
    *in_tx = false;
    Ok(())
}

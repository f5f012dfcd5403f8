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
//!
//! It commits at most every [`COMMIT_EVERY`], not at each state: a source
//! that checkpoints every hundred records would otherwise pay a
//! transaction and a flush of the server's log per hundred records. A
//! state waits at most that long for its commit, whether records follow
//! it or not.

use super::ddl::{setup, Target};
use super::plan::Plan;
use super::{Columns, Op};
use crate::connector::builtin::postgres::{binary, Config, Conn};
use crate::connector::builtin::{BuiltinError, BuiltinResult, Output};
use crate::protocol::LogLevel;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// How often the writer commits while states come (and at most how long a
/// state waits for its commit).
const COMMIT_EVERY: Duration = Duration::from_secs(1);

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
    // States whose records are committed, held until new tables are
    // swapped in; and states whose records are not committed yet.
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut uncommitted: Vec<Vec<u8>> = Vec::new();
    let mut last_commit = Instant::now();
    let mut next: Option<Op> = None;
    loop {
        if !uncommitted.is_empty() && last_commit.elapsed() >= COMMIT_EVERY {
            commit(&mut conn, &mut targets, &mut in_tx).await?;
            last_commit = Instant::now();
            release(&mut uncommitted, &mut held, &targets, out)?;
        }
        let op = match next.take() {
            Some(op) => op,
            None => match receive(&rx, &uncommitted, last_commit) {
                Ok(op) => op,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => break,
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
                // Keep the COPY open while the same stream's rows follow,
                // and no state waits too long for its commit.
                loop {
                    match receive(&rx, &uncommitted, last_commit) {
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
            // Committed at the loop's top once a commit is due.
            Op::State(line) => uncommitted.push(line),
            Op::Complete(i) => {
                commit(&mut conn, &mut targets, &mut in_tx).await?;
                last_commit = Instant::now();
                release(&mut uncommitted, &mut held, &targets, out)?;
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
    release(&mut uncommitted, &mut held, &targets, out)?;
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

/// The next operation; while states wait for a commit, only until the
/// next commit is due (`Timeout` then).
fn receive(
    rx: &Receiver<Op>,
    uncommitted: &[Vec<u8>],
    last_commit: Instant,
) -> Result<Op, RecvTimeoutError> {
    if uncommitted.is_empty() {
        return rx.recv().map_err(|_| RecvTimeoutError::Disconnected);
    }
    match COMMIT_EVERY.checked_sub(last_commit.elapsed()) {
        Some(left) if !left.is_zero() => rx.recv_timeout(left),
        _ => Err(RecvTimeoutError::Timeout),
    }
}

/// States whose records were just committed: emitted, or held while a new
/// table waits to be swapped in.
fn release(
    committed: &mut Vec<Vec<u8>>,
    held: &mut Vec<Vec<u8>>,
    targets: &[Target],
    out: &mut Output,
) -> BuiltinResult<()> {
    if committed.is_empty() {
        return Ok(());
    }
    if targets.iter().any(|t| t.pending) {
        held.append(committed);
        return Ok(());
    }
    for line in committed.drain(..) {
        out.raw(&line)?;
    }
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

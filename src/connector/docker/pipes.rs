//! The pipes transport: a container's stdin and stdout as named pipes in
//! its mounted input directory, so that data moves through the kernel only,
//! as fast as between two processes (and the engine can splice it).
//!
//! The image's entrypoint is replaced by the launcher (`launcher.rs`, built
//! by build.rs and embedded here), which opens the pipes as its stdin and
//! stdout and then execs the very command the engine would have run. The
//! engine's attach connections are slower by a large factor (every byte is
//! copied through the engine and its shim, framed and unframed) and stay
//! the way for engines that do not share this machine's files.

use super::image::runtime;
use crate::connector::{ConnectorError, Stdin, Stdout};
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::net::unix::pipe;

/// Where containers see the launcher.
pub const LAUNCHER: &str = "/sluice-launcher";
/// The pipes' names in the input directory.
pub const STDOUT: &str = "stdout";
pub const STDIN: &str = "stdin";

#[cfg(sluice_launcher)]
const BINARY: Option<&[u8]> = Some(include_bytes!(concat!(env!("OUT_DIR"), "/launcher")));
#[cfg(not(sluice_launcher))]
const BINARY: Option<&[u8]> = None;

/// Whether this build carries the launcher.
pub fn available() -> bool {
    BINARY.is_some()
}

/// Installs the launcher under `dir` (once per version) and returns its path.
pub fn install(dir: &Path) -> io::Result<PathBuf> {
    let bytes = BINARY.ok_or_else(|| io::Error::other("this build of sluice has no launcher"))?;
    // FNV-1a: a name per content, so versions never overwrite each other.
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    let path = dir.join(format!("launcher-{hash:016x}"));
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == bytes.len() as u64) {
        return Ok(path);
    }
    std::fs::create_dir_all(dir)?;
    crate::fsutil::write_atomic(&path, bytes, 0o755)?;
    Ok(path)
}

/// Makes a named pipe, readable and writable by its owner only.
pub fn make_fifo(path: &Path) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: mkfifo reads a NUL-terminated path we own.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Opens our end of the stdout pipe, before the container starts. Reading
/// it waits for the connector: until a writer has come, the pipe is not
/// readable (Linux reports no hang-up before a first writer).
pub fn open_stdout(path: &Path) -> io::Result<pipe::Receiver> {
    let rx = pipe::OpenOptions::new().open_receiver(path)?;
    grow(&rx);
    Ok(rx)
}

/// Opens our end of the stdin pipe once the launcher has opened its end,
/// or gives up when `ended` resolves first (the container is gone).
pub async fn open_stdin(
    path: &Path,
    name: &str,
    ended: impl std::future::Future<Output = ()>,
) -> Result<Stdin, ConnectorError> {
    let connect = async {
        let mut pause = Duration::from_millis(1);
        loop {
            match pipe::OpenOptions::new().open_sender(path) {
                Ok(tx) => return Ok(tx),
                // No reader yet: the launcher has not reached its open.
                Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => return Err(e),
            }
        }
    };
    tokio::select! {
        tx = connect => {
            let tx = tx.map_err(|e| runtime(name, format!("cannot open the container's stdin: {e}")))?;
            grow(&tx);
            Ok(Stdin::Pipe(tx))
        }
        // The connector ended before reading anything; its exit status says why.
        _ = ended => Ok(Stdin::Stream(Box::new(Closed))),
        _ = tokio::time::sleep(Duration::from_secs(120)) => Err(runtime(
            name,
            "the container did not open its stdin within 120 s".into(),
        )),
    }
}

/// Ends the stdout pipe for a reader whose connector never opened it (the
/// launcher failed, the container was killed first): a writer that comes
/// and goes makes the pipe report its end. Harmless after a connector that
/// did write: its data stays ahead of the end.
pub fn release(path: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
}

/// Our end of the stdout pipe as the engine reads it.
pub fn stdout(rx: pipe::Receiver) -> Stdout {
    Stdout::Pipe(rx)
}

/// Larger pipes mean fewer wake-ups per megabyte; failing to grow is harmless.
fn grow(fd: &impl std::os::fd::AsRawFd) {
    // SAFETY: F_SETPIPE_SZ on a pipe we hold only changes its buffer size.
    unsafe {
        libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
    }
}

/// The stdin of a connector that is gone: every write fails.
struct Closed;

impl AsyncWrite for Closed {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_reader_waits_for_its_writer_and_is_released_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        make_fifo(&path).unwrap();
        // Opened before any writer: no end of stream yet.
        let mut rx = open_stdout(&path).unwrap();
        let mut buf = Vec::new();
        let early =
            tokio::time::timeout(Duration::from_millis(100), rx.read_to_end(&mut buf)).await;
        assert!(early.is_err(), "a pipe nobody opened yet must not end");
        // A writer that writes and goes: its data, then the end.
        let mut tx = pipe::OpenOptions::new().open_sender(&path).unwrap();
        tx.write_all(b"hello\n").await.unwrap();
        drop(tx);
        buf.clear();
        rx.read_to_end(&mut buf).await.unwrap();
        assert_eq!(buf, b"hello\n");

        // A connector that never came: released, the reader ends.
        let other = dir.path().join("other");
        make_fifo(&other).unwrap();
        let mut rx = open_stdout(&other).unwrap();
        release(&other);
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), rx.read_to_end(&mut buf))
            .await
            .expect("released")
            .unwrap();
        assert!(buf.is_empty());
    }
}

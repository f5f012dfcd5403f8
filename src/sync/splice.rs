//! Zero-copy forwarding between OS pipes, for Linux.
//!
//! When both connectors talk through OS pipes, the bytes a destination gets
//! never pass through sluice's memory on the way out. A private "mirror"
//! pipe holds every byte read from the source: the reader `tee`s the
//! source into the mirror (page references, no copy) and then `read`s the
//! same bytes to scan them. Once a chunk is scanned, its lines that go on
//! unchanged are `splice`d from the mirror into the destination (no copy),
//! the bytes of lines that are dropped or rewritten are spliced into
//! /dev/null, and replacements are written normally.
//!
//! The mirror's free space is counted with a semaphore so the reader never
//! tees more than the mirror holds. A line longer than half the mirror
//! cannot be held whole, so from such a line on the reader just copies, as
//! the portable path does.

use crate::protocol::codec::Fill;
use bytes::BytesMut;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::Semaphore;

pub(super) struct Mirror {
    read: OwnedFd,
    write: OwnedFd,
    cap: usize,
    space: Arc<Semaphore>,
    devnull: std::fs::File,
}

fn check(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

impl Mirror {
    pub(super) fn new() -> io::Result<Arc<Mirror>> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 fills the two descriptors, which we then own.
        let (read, write) = unsafe {
            if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
                return Err(io::Error::last_os_error());
            }
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        };
        // SAFETY: fcntl on a pipe we own; a refused size leaves the default.
        let cap = unsafe {
            libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
            libc::fcntl(write.as_raw_fd(), libc::F_GETPIPE_SZ)
        };
        let cap = usize::try_from(cap).map_err(|_| io::Error::last_os_error())?;
        Ok(Arc::new(Mirror {
            read,
            write,
            cap,
            space: Arc::new(Semaphore::new(cap)),
            devnull: std::fs::OpenOptions::new().write(true).open("/dev/null")?,
        }))
    }

    /// Moves the next `len` bytes of the mirror into `dst`.
    pub(super) async fn forward(&self, dst: &pipe::Sender, mut len: usize) -> io::Result<()> {
        while len > 0 {
            dst.writable().await?;
            let moved = dst.try_io(|| {
                // SAFETY: splice between two pipes we hold; no memory is touched.
                check(unsafe {
                    libc::splice(
                        self.read.as_raw_fd(),
                        std::ptr::null_mut(),
                        dst.as_raw_fd(),
                        std::ptr::null_mut(),
                        len,
                        libc::SPLICE_F_NONBLOCK | libc::SPLICE_F_MOVE,
                    )
                })
            });
            match moved {
                Ok(0) => return Err(io::Error::other("the mirror pipe ran dry")),
                Ok(n) => {
                    len -= n;
                    self.space.add_permits(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drops the next `len` bytes of the mirror.
    pub(super) fn discard(&self, mut len: usize) -> io::Result<()> {
        while len > 0 {
            // SAFETY: splice from our pipe into /dev/null.
            let n = check(unsafe {
                libc::splice(
                    self.read.as_raw_fd(),
                    std::ptr::null_mut(),
                    self.devnull.as_raw_fd(),
                    std::ptr::null_mut(),
                    len,
                    0,
                )
            })?;
            if n == 0 {
                return Err(io::Error::other("the mirror pipe ran dry"));
            }
            len -= n;
            self.space.add_permits(n);
        }
        Ok(())
    }
}

/// Fills a line buffer by teeing the source into the mirror, then reading
/// the very same bytes.
pub(super) struct TeeFill {
    src: pipe::Receiver,
    mirror: Arc<Mirror>,
    /// Bytes put in the mirror so far.
    teed: u64,
    /// Set once a line was too long for the mirror: plain reads from then on.
    copying: bool,
}

impl TeeFill {
    pub(super) fn new(src: pipe::Receiver, mirror: Arc<Mirror>) -> Self {
        TeeFill {
            src,
            mirror,
            teed: 0,
            copying: false,
        }
    }

    async fn tee(&self, want: usize) -> io::Result<usize> {
        loop {
            self.src.readable().await?;
            let r = self.src.try_io(|| {
                // SAFETY: tee between two pipes we hold; no memory is touched.
                check(unsafe {
                    libc::tee(
                        self.src.as_raw_fd(),
                        self.mirror.write.as_raw_fd(),
                        want,
                        libc::SPLICE_F_NONBLOCK,
                    )
                })
            });
            match r {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => return other,
            }
        }
    }
}

impl Fill for TeeFill {
    fn mirrored(&self) -> u64 {
        self.teed
    }

    async fn fill(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        // The buffer holds only an unfinished line when asked for more.
        if !self.copying && buf.len() >= self.mirror.cap / 2 {
            self.copying = true;
        }
        if self.copying {
            return self.src.read_buf(buf).await;
        }
        let spare = buf.capacity() - buf.len();
        let want = spare.min(self.mirror.cap / 2).max(1);
        let permits = u32::try_from(want).unwrap_or(u32::MAX);
        self.mirror
            .space
            .acquire_many(permits)
            .await
            .map_err(io::Error::other)?
            .forget();
        let n = match self.tee(want).await {
            Ok(n) => n,
            Err(e) => {
                self.mirror.space.add_permits(want);
                return Err(e);
            }
        };
        self.mirror.space.add_permits(want - n);
        if n == 0 {
            return Ok(0);
        }
        // Read exactly the bytes just teed: they are at the head of the pipe.
        let mut got = 0;
        while got < n {
            let spare = buf.spare_capacity_mut();
            // SAFETY: reads at most `n - got` bytes into spare capacity that
            // has room for them (`want` <= spare); they are initialised by
            // the read before the length covers them.
            let r = unsafe {
                libc::read(
                    self.src.as_raw_fd(),
                    spare.as_mut_ptr().add(got) as *mut libc::c_void,
                    n - got,
                )
            };
            match check(r) {
                Ok(0) => return Err(io::Error::other("the source closed mid-read")),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        // SAFETY: the first `n` spare bytes were written above.
        unsafe { buf.set_len(buf.len() + n) };
        self.teed += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::codec::LineReader;
    use tokio::io::AsyncWriteExt;

    /// Bytes through tee+read, then forwarded and discarded, arrive intact.
    #[tokio::test]
    async fn the_mirror_carries_exactly_what_was_read() {
        let (src_tx, src_rx) = pipe::pipe().unwrap();
        let (dst_tx, mut dst_rx) = pipe::pipe().unwrap();
        let mirror = Mirror::new().unwrap();
        let mut input = Vec::new();
        for i in 0..20_000 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let writer = {
            let input = input.clone();
            tokio::spawn(async move {
                let mut tx = src_tx;
                tx.write_all(&input).await.unwrap();
            })
        };
        let mut reader = LineReader::with_fill(TeeFill::new(src_rx, mirror.clone()), 1 << 20);
        let collect = tokio::spawn(async move {
            let mut out = Vec::new();
            dst_rx.read_to_end(&mut out).await.unwrap();
            out
        });
        let mut want = Vec::new();
        let mut n = 0;
        while let Some(chunk) = reader.next_chunk().await.unwrap() {
            // Forward every other chunk, drop the rest.
            if n % 2 == 0 {
                mirror.forward(&dst_tx, chunk.len()).await.unwrap();
                want.extend_from_slice(&chunk);
            } else {
                mirror.discard(chunk.len()).unwrap();
            }
            n += 1;
        }
        writer.await.unwrap();
        drop(dst_tx);
        assert!(n > 1, "several chunks");
        assert_eq!(collect.await.unwrap(), want);
        assert_eq!(
            mirror.space.available_permits(),
            mirror.cap,
            "all space returned"
        );
    }
}

//! Small file-system helpers: atomic writes, private directories, and
//! files or directories that must not outlive a failure.
//!
//! A file written with [`write_atomic`] is either its old self or its new
//! self, never half of either, even if the machine loses power mid-write.
//! An [`Unfinished`] path is removed unless it is finished, also when the
//! process exits without unwinding (`std::process::exit` on a second
//! Ctrl-C); only a process killed outright (SIGKILL) can leave one behind.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// Writes `bytes` to `path` through a temporary file in the same directory:
/// write, fsync, rename over, fsync the directory. `mode` applies to the
/// new file.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` (and its parents) and makes it private to the user (0700).
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let perms = std::fs::metadata(dir)?.permissions();
    if perms.mode() & 0o777 != 0o700 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// A file or directory being made, removed (with what is in it) when this
/// is dropped unless [`Unfinished::finish`] was called first, and at process
/// exit if it is still unfinished then.
#[derive(Debug)]
pub struct Unfinished {
    path: PathBuf,
    id: u64,
    finished: bool,
}

/// What is unfinished in this process: id, path, and the process writing
/// into it, if any.
static UNFINISHED: Mutex<Vec<(u64, PathBuf, Option<u32>)>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(0);
static AT_EXIT: Once = Once::new();
/// The process that registered the exit hook: a forked child that exits
/// must not remove its parent's work.
static OWNER_PID: AtomicU64 = AtomicU64::new(0);

fn unfinished() -> std::sync::MutexGuard<'static, Vec<(u64, PathBuf, Option<u32>)>> {
    UNFINISHED.lock().unwrap_or_else(|e| e.into_inner())
}

impl Unfinished {
    /// Marks `path` as being made; it need not exist yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        AT_EXIT.call_once(|| {
            OWNER_PID.store(u64::from(std::process::id()), Ordering::Relaxed);
            // SAFETY: registers a function with no arguments that never
            // unwinds; it runs once, as the process exits.
            unsafe {
                libc::atexit(remove_unfinished_at_exit);
            }
        });
        let path = path.into();
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        unfinished().push((id, path.clone(), None));
        Unfinished {
            path,
            id,
            finished: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The child process writing into the path, while it runs: it is killed
    /// and waited for before an unfinished path is removed, so it cannot
    /// write the path back. Clear it (`None`) once the child was waited
    /// for, as its pid may then be reused.
    pub fn written_by(&self, pid: Option<u32>) {
        if let Some(entry) = unfinished().iter_mut().find(|e| e.0 == self.id) {
            entry.2 = pid;
        }
    }

    /// The path is whole: keep it.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let mut list = unfinished();
        let writer = list.iter().find(|e| e.0 == self.id).and_then(|e| e.2);
        list.retain(|e| e.0 != self.id);
        drop(list);
        if !self.finished {
            stop_writer(writer);
            remove_path(&self.path);
        }
    }
}

/// Kills a child and waits until it has exited, without reaping it: its
/// owner (tokio) still does.
fn stop_writer(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    // SAFETY: plain syscalls on a child of ours that has not been reaped
    // (its owner clears the pid once it has), so the pid is still its own.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
}

fn remove_path(path: &Path) {
    let _ = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(_) => Ok(()),
    };
}

extern "C" fn remove_unfinished_at_exit() {
    if OWNER_PID.load(Ordering::Relaxed) != u64::from(std::process::id()) {
        return;
    }
    // Never unwinds: a panic here would abort the exit.
    let _ = std::panic::catch_unwind(|| {
        let list = std::mem::take(&mut *unfinished());
        for (_, path, writer) in list {
            stop_writer(writer);
            remove_path(&path);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    /// Set in a copy of this test binary that exits with paths unfinished.
    const EXIT_CHILD: &str = "SLUICE_TEST_UNFINISHED_AT_EXIT";

    #[test]
    fn unfinished_paths_go_unless_finished_also_at_exit() {
        if let Some(dir) = std::env::var_os(EXIT_CHILD) {
            let dir = PathBuf::from(dir);
            std::fs::write(dir.join("partial"), "half").unwrap();
            let _file = Unfinished::new(dir.join("partial"));
            let tree = Unfinished::new(dir.join("venv"));
            // Something that keeps writing into the directory (for 3 s at
            // most, should the test fail).
            let writer = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "for _ in $(seq 300); do mkdir -p {0}/venv/lib; echo x >> {0}/venv/lib/f; sleep 0.01; done",
                    dir.display()
                ))
                .spawn()
                .unwrap();
            tree.written_by(Some(writer.id()));
            while !dir.join("venv/lib/f").exists() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // As a second Ctrl-C does: no destructor runs.
            std::process::exit(130);
        }

        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a");
        std::fs::write(&p, "x").unwrap();
        drop(Unfinished::new(&p));
        assert!(!p.exists(), "an unfinished file is removed when dropped");
        std::fs::create_dir_all(p.join("b")).unwrap();
        drop(Unfinished::new(&p));
        assert!(!p.exists(), "an unfinished directory is removed whole");
        std::fs::write(&p, "x").unwrap();
        Unfinished::new(&p).finish();
        assert!(p.exists(), "a finished one stays");
        let tree = dir.path().join("tree");
        let mut writer = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "for _ in $(seq 300); do mkdir -p {0}/lib; echo x >> {0}/lib/f; sleep 0.01; done",
                tree.display()
            ))
            .spawn()
            .unwrap();
        let u = Unfinished::new(&tree);
        u.written_by(Some(writer.id()));
        while !tree.join("lib/f").exists() {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(u);
        assert!(
            writer.try_wait().unwrap().is_some(),
            "the writer was stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!tree.exists(), "and the directory stays gone");

        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "fsutil::tests::unfinished_paths_go_unless_finished_also_at_exit",
            ])
            .env(EXIT_CHILD, dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(130));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["a"],
            "what was unfinished at exit is gone, and stays gone"
        );
    }

    #[test]
    fn private_dir_is_0700() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b");
        ensure_private_dir(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}

//! The launcher: a tiny static program that sluice mounts into connector
//! containers as their entrypoint. It connects the connector's stdin and
//! stdout to named pipes in the container's input directory, then becomes
//! the connector (exec), so that the connector's output reaches sluice
//! through the kernel alone instead of through the engine's attach stream.
//!
//!     launcher STDIN_FIFO|- STDOUT_FIFO PROGRAM [ARG...]
//!
//! It is built by build.rs as its own program (std only, statically
//! linked) and is not a module of sluice. It must never change what the
//! connector sees beyond its stdin and stdout: environment, working
//! directory, user and arguments are the ones the engine gave.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

fn main() {
    let mut args = std::env::args_os().skip(1);
    let (Some(stdin), Some(stdout), Some(program)) = (args.next(), args.next(), args.next()) else {
        eprintln!("sluice launcher: usage: launcher STDIN_FIFO|- STDOUT_FIFO PROGRAM [ARG...]");
        std::process::exit(125);
    };
    let open = |path: &std::ffi::OsStr, write: bool| {
        std::fs::OpenOptions::new()
            .read(!write)
            .write(write)
            .open(path)
            .unwrap_or_else(|e| {
                eprintln!(
                    "sluice launcher: cannot open {}: {e}",
                    path.to_string_lossy()
                );
                std::process::exit(125);
            })
    };
    let mut command = Command::new(&program);
    command.args(args);
    // stdin first: sluice opens its end of stdin before the one of stdout.
    if stdin != "-" {
        command.stdin(Stdio::from(open(&stdin, false)));
    }
    command.stdout(Stdio::from(open(&stdout, true)));
    let error = command.exec();
    eprintln!(
        "sluice launcher: cannot start {}: {error}",
        program.to_string_lossy()
    );
    std::process::exit(if error.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    });
}

//! Builds the Docker connectors' launcher (src/connector/docker/launcher.rs)
//! as a static program for the target, to be embedded in sluice. Without a
//! static C library to link it with, sluice is built without it and Docker
//! connectors stream through the engine's attach connections instead.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    const SOURCE: &str = "src/connector/docker/launcher.rs";
    println!("cargo:rerun-if-changed={SOURCE}");
    // sqlx::migrate! embeds these.
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo::rustc-check-cfg=cfg(sluice_launcher)");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("-linux-") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let built = Command::new(rustc)
        .args(["--edition=2021", "--crate-name", "sluice_launcher"])
        .args([
            "-C",
            "opt-level=s",
            "-C",
            "panic=abort",
            "-C",
            "strip=symbols",
        ])
        .args(["-C", "target-feature=+crt-static", "--target", &target])
        .arg("-o")
        .arg(out.join("launcher"))
        .arg(SOURCE)
        .status();
    match built {
        Ok(status) if status.success() => println!("cargo:rustc-cfg=sluice_launcher"),
        Ok(status) => println!(
            "cargo:warning=the Docker launcher did not build ({status}); Docker connectors will stream through the engine"
        ),
        Err(e) => println!(
            "cargo:warning=cannot run rustc for the Docker launcher ({e}); Docker connectors will stream through the engine"
        ),
    }
}

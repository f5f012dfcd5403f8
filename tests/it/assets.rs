//! The checked-in completions and man pages match the clap definitions.

use crate::common::Sandbox;
use std::collections::BTreeMap;
use std::path::Path;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            let e = e.expect("dir entry");
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).expect("read file"))
        })
        .collect()
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let sandbox = Sandbox::new();
    let root = sandbox.path("assets");
    sandbox
        .run(&["-q", "generate-assets", "--root", root.to_str().unwrap()])
        .expect_code(0);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["completions", "man"] {
        let want = files(&root.join(dir));
        let have = files(&repo.join(dir));
        assert!(want.len() > 2, "{dir}: too few generated files");
        let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            names(&have),
            names(&want),
            "{dir}/ is stale: run `cargo run -- generate-assets`"
        );
        for (name, bytes) in &want {
            assert!(
                have[name] == *bytes,
                "{dir}/{name} is stale: run `cargo run -- generate-assets`"
            );
        }
    }
}

#[test]
fn every_subcommand_has_a_man_page() {
    let man = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for page in [
        "sluice.1",
        "sluice-sync.1",
        "sluice-connector.1",
        "sluice-connector-install.1",
    ] {
        assert!(man.join(page).exists(), "man/{page} is missing");
    }
}

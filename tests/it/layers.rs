//! The floors of the crate (DESIGN.md, "Module map"): commands talk to the
//! Api only, and the lower floors never reach up. Checked on the source
//! text, so a `use` that breaks a floor fails here before review.

use std::path::{Path, PathBuf};

fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.expect("dir entry").path();
        if path.is_dir() {
            out.extend(sources(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
    out
}

/// Every `crate::NAME` a module's files name, with where.
fn crate_paths(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = match root.join(format!("{dir}.rs")) {
        single if single.exists() => vec![single],
        _ => sources(&root.join(dir)),
    };
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read source");
        for (n, line) in text.lines().enumerate() {
            let mut rest = line;
            while let Some(i) = rest.find("crate::") {
                rest = &rest[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                out.push((name, format!("{}:{}", file.display(), n + 1)));
            }
        }
    }
    out
}

#[test]
fn commands_use_the_api_and_nothing_below_it() {
    let found: Vec<_> = crate_paths("commands")
        .into_iter()
        // fsutil is a helper for writing files, on no floor.
        .filter(|(name, _)| name != "api" && name != "fsutil")
        .collect();
    assert!(
        found.is_empty(),
        "commands reach past the Api (import crate::api only): {found:#?}"
    );
}

#[test]
fn the_lower_floors_never_reach_up() {
    let above = ["api", "service", "commands", "cli", "settings", "error"];
    for floor in ["protocol", "model", "owner", "store", "sync", "connector"] {
        let found: Vec<_> = crate_paths(floor)
            .into_iter()
            .filter(|(name, _)| above.contains(&name.as_str()))
            .collect();
        assert!(
            found.is_empty(),
            "{floor} imports from above it: {found:#?}"
        );
    }
}

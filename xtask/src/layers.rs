//! The layering rule: the workspace's dependency edges, read from the manifests, against the
//! edges the architecture allows, and against the picture ARCHITECTURE.md draws of them.
//!
//! The allowed edges are [`ALLOWED`], one row per crate: a crate may depend on the crates its
//! row names and on nothing else of the workspace, so a new edge is a visible change of this
//! table. `testkit` is a dev-dependency only. ARCHITECTURE.md carries the actual edges between
//! the markers [`DOC_START`] and [`DOC_END`], one line `crate → a, b` per crate; the block must
//! equal the manifests, so the document cannot drift from the code.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use crate::tidy::Violation;

/// Each crate with the workspace crates it may depend on (normal dependencies).
pub const ALLOWED: [(&str, &[&str]); 20] = [
    ("basics", &[]),
    ("product", &["basics"]),
    ("market", &["basics", "product"]),
    ("pricing", &["basics", "product"]),
    ("methodology", &["basics", "market"]),
    ("span", &["pricing"]),
    ("margin", &["basics", "product", "market", "pricing", "methodology"]),
    ("oracle", &["basics"]),
    ("backtest", &["basics", "product", "market", "methodology", "margin"]),
    ("liquidation", &["basics", "product", "market", "methodology", "margin", "backtest"]),
    ("netting", &["basics", "product", "market", "margin"]),
    ("formats", &["basics", "product", "market", "pricing", "methodology", "margin", "netting"]),
    (
        "epoch",
        &["basics", "product", "market", "methodology", "margin", "netting", "formats", "oracle"],
    ),
    (
        "bench",
        &[
            "basics",
            "product",
            "market",
            "pricing",
            "methodology",
            "margin",
            "formats",
            "oracle",
            "epoch",
            "backtest",
            "liquidation",
            "netting",
        ],
    ),
    ("bus", &["basics", "product", "market", "formats", "oracle", "epoch"]),
    ("federation", &["basics", "oracle"]),
    ("testkit", &["market", "methodology", "margin", "formats"]),
    (
        "service",
        &[
            "basics",
            "product",
            "market",
            "pricing",
            "methodology",
            "margin",
            "formats",
            "oracle",
            "epoch",
            "backtest",
            "liquidation",
            "netting",
        ],
    ),
    (
        "cli",
        &[
            "basics",
            "product",
            "market",
            "pricing",
            "methodology",
            "span",
            "margin",
            "formats",
            "oracle",
            "epoch",
            "bench",
            "federation",
            "service",
            "bus",
            "backtest",
            "liquidation",
            "netting",
        ],
    ),
    ("xtask", &[]),
];

/// Where ARCHITECTURE.md's dependency block starts.
pub const DOC_START: &str = "<!-- tidy:layers -->";
/// Where it ends.
pub const DOC_END: &str = "<!-- /tidy:layers -->";

/// A crate's workspace dependencies, split by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edges {
    /// `[dependencies]` on workspace crates.
    pub normal: BTreeSet<String>,
    /// `[dev-dependencies]` on workspace crates.
    pub dev: BTreeSet<String>,
}

/// The workspace crates named in a manifest's `[dependencies]` and `[dev-dependencies]`
/// (`name.workspace = true`, `name = { path = … }` or `name = "…"`), among `crates`.
#[must_use]
pub fn manifest_edges(manifest: &str, crates: &BTreeSet<String>) -> Edges {
    let mut edges = Edges::default();
    let mut section = "";
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        if !crates.contains(name) || !line.contains('=') {
            continue;
        }
        match section {
            "[dependencies]" => _ = edges.normal.insert(name.to_owned()),
            "[dev-dependencies]" => _ = edges.dev.insert(name.to_owned()),
            _ => {}
        }
    }
    edges
}

/// The `crate → a, b` lines between the markers of `doc`, or `None` without the block.
#[must_use]
pub fn doc_edges(doc: &str) -> Option<BTreeMap<String, BTreeSet<String>>> {
    let start = doc.find(DOC_START)? + DOC_START.len();
    let end = start + doc[start..].find(DOC_END)?;
    let mut out = BTreeMap::new();
    for line in doc[start..end].lines().map(str::trim) {
        let Some((name, deps)) = line.split_once('→') else { continue };
        let deps = deps
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "(nothing)")
            .map(str::to_owned)
            .collect();
        out.insert(name.trim().to_owned(), deps);
    }
    Some(out)
}

/// Every broken layering rule of the crates `manifests` describes (name → manifest text),
/// against the architecture document `doc`.
#[must_use]
pub fn check(manifests: &BTreeMap<String, String>, doc: &str) -> Vec<Violation> {
    let mut out = Vec::new();
    let crates: BTreeSet<String> = manifests.keys().cloned().collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.into_iter().collect();
    let mut actual = BTreeMap::new();
    for (name, manifest) in manifests {
        let path = if name == "xtask" {
            "xtask/Cargo.toml".to_owned()
        } else {
            format!("crates/{name}/Cargo.toml")
        };
        let edges = manifest_edges(manifest, &crates);
        let Some(permitted) = allowed.get(name.as_str()) else {
            let detail = format!("crate `{name}` has no row in the layering table (xtask)");
            out.push(Violation::new(&path, 1, "layering", detail));
            continue;
        };
        for dep in &edges.normal {
            if dep == "testkit" {
                let detail = "`testkit` is a dev-dependency only".to_owned();
                out.push(Violation::new(&path, 1, "layering", detail));
            } else if !permitted.contains(&dep.as_str()) {
                let detail = format!("`{name}` may not depend on `{dep}`");
                out.push(Violation::new(&path, 1, "layering", detail));
            }
        }
        actual.insert(name.clone(), edges.normal);
    }
    match doc_edges(doc) {
        None => out.push(Violation::new(
            "ARCHITECTURE.md",
            1,
            "layering",
            format!("no dependency block between {DOC_START} and {DOC_END}"),
        )),
        Some(drawn) if drawn != actual => {
            let names: BTreeSet<&String> = drawn.keys().chain(actual.keys()).collect();
            for name in names {
                let (d, a) = (drawn.get(name), actual.get(name));
                if d != a {
                    let detail = format!("`{name}` drawn as {d:?}, manifests say {a:?}");
                    out.push(Violation::new("ARCHITECTURE.md", 1, "layering", detail));
                }
            }
        }
        Some(_) => {}
    }
    out
}

/// Reads every manifest of the workspace at `root` and ARCHITECTURE.md, and checks them.
#[must_use]
pub fn check_repository(root: &Path) -> Vec<Violation> {
    let mut manifests = BTreeMap::new();
    let entries = fs::read_dir(root.join("crates")).map(|e| e.filter_map(Result::ok).collect());
    let entries: Vec<fs::DirEntry> = entries.unwrap_or_default();
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(text) = fs::read_to_string(entry.path().join("Cargo.toml")) {
            manifests.insert(name, text);
        }
    }
    if let Ok(text) = fs::read_to_string(root.join("xtask/Cargo.toml")) {
        manifests.insert("xtask".to_owned(), text);
    }
    let doc = fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap_or_default();
    check(&manifests, &doc)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{DOC_END, DOC_START, check};

    fn manifests(rows: &[(&str, &str)]) -> BTreeMap<String, String> {
        rows.iter().map(|(n, t)| ((*n).to_owned(), (*t).to_owned())).collect()
    }

    /// The canary: an edge the table does not allow, `testkit` as a normal dependency, a crate
    /// without a row, and a document that draws other edges each fire.
    #[test]
    fn canary_catches_every_layering_fault() {
        let bad = manifests(&[
            ("basics", "[dependencies]\nthiserror.workspace = true\n"),
            ("product", "[dependencies]\nbasics.workspace = true\nmargin.workspace = true\n"),
            ("margin", "[dependencies]\ntestkit.workspace = true\n[dev-dependencies]\n"),
            ("testkit", "[dependencies]\n"),
            ("newcrate", "[dependencies]\nbasics = { path = \"../basics\" }\n"),
        ]);
        let doc = format!("{DOC_START}\nbasics → (nothing)\nproduct → basics\n{DOC_END}\n");
        let details: Vec<String> = check(&bad, &doc).iter().map(|v| v.detail.clone()).collect();
        let has = |s: &str| details.iter().any(|d| d.contains(s));
        assert!(has("`product` may not depend on `margin`"), "{details:#?}");
        assert!(has("`testkit` is a dev-dependency only"), "{details:#?}");
        assert!(has("`newcrate` has no row"), "{details:#?}");
        assert!(has("`product` drawn as"), "{details:#?}");
        let missing = check(&bad, "no block here");
        assert!(missing.iter().any(|v| v.detail.contains("no dependency block")));
    }

    /// A workspace that keeps to the table and draws exactly its edges passes.
    #[test]
    fn a_faithful_workspace_passes() {
        let good = manifests(&[
            ("basics", "[dependencies]\n"),
            ("product", "[dependencies]\nbasics.workspace = true\n[dev-dependencies]\n"),
            ("testkit", "[dependencies]\nmargin.workspace = true\n"),
            (
                "margin",
                "[dependencies]\nproduct.workspace = true\n\
                 [dev-dependencies]\ntestkit.workspace = true\n",
            ),
        ]);
        let doc = format!(
            "{DOC_START}\nbasics → (nothing)\nproduct → basics\nmargin → product\n\
             testkit → margin\n{DOC_END}\n"
        );
        assert_eq!(check(&good, &doc), []);
    }
}

//! Style rules enforced by tests rather than by reviewers (docs/STYLE.md explains each).
//!
//! The checks are deliberately simple line-based scans: they must be fast, dependency-free and
//! obvious to debug. A canary test proves that each rule still fires.

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Longest source line, in columns.
const LINE_COLUMNS_MAX: usize = 100;
/// Longest function body, in lines, unless the ratchet file grants an existing exception.
const FUNCTION_LINES_MAX: usize = 70;

/// Calls that read the clock, the environment or an unseeded random source. They are allowed only
/// in the service and CLI layers, where time and seeds are injected into everything below.
const BANNED_NONDETERMINISM: [&str; 7] = [
    "SystemTime::now",
    "Instant::now",
    "thread_rng",
    "rand::rng(",
    "from_entropy",
    "OsRng",
    "env::var",
];
/// Crates allowed to touch the clock, the environment and the network: the CLI, the service, the
/// oracle federation's network layer and the NATS bus (leases and timeouts are wall-clock).
const BOUNDARY_CRATES: [&str; 5] = ["cli", "service", "federation", "bus", "xtask"];
/// Crates allowed to derive serde traits: the wire and file formats (ours, SPAN's XML) and the
/// outward-facing layers.
const SERDE_CRATES: [&str; 7] =
    ["formats", "span", "oracle", "federation", "bus", "service", "cli"];
/// Markers of unfinished work that must not land.
const BANNED_MARKERS: [&str; 4] = ["FIXME", "todo!(", "unimplemented!(", "dbg!("];

/// One rule broken at one place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    path: String,
    line: usize,
    pub(crate) rule: &'static str,
    pub(crate) detail: String,
}

impl Violation {
    /// A violation of `rule` at `path:line`.
    pub(crate) fn new(path: &str, line: usize, rule: &'static str, detail: String) -> Violation {
        Violation { path: path.to_owned(), line, rule, detail }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: {}", self.path, self.line, self.rule, self.detail)
    }
}

/// Runs every check over the repository rooted at `root`.
pub fn check_repository(root: &Path) -> Vec<Violation> {
    let ratchet = read_ratchet(&root.join("xtask/function-length-ratchet.txt"));
    let mut violations = Vec::new();
    let crates_dir = root.join("crates");
    let mut crate_dirs: Vec<PathBuf> = fs::read_dir(&crates_dir)
        .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    crate_dirs.push(root.join("xtask"));
    crate_dirs.sort();
    for crate_dir in crate_dirs {
        let crate_name =
            crate_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut files = Vec::new();
        collect_rust_files(&crate_dir, &mut files);
        files.sort();
        for file in &files {
            let Ok(text) = fs::read_to_string(file) else { continue };
            let rel = file.strip_prefix(root).unwrap_or(file).to_string_lossy().replace('\\', "/");
            violations.extend(check_source(&crate_name, &rel, &text, &ratchet));
        }
        violations.extend(check_crate_roots(root, &crate_dir, &files));
    }
    violations.extend(crate::layers::check_repository(root));
    violations.sort();
    violations
}

fn collect_rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target" || n == "node_modules") {
                continue;
            }
            collect_rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Reads `path:function = lines` exceptions to the function-length limit.
fn read_ratchet(path: &Path) -> Vec<(String, usize)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (key, value) = l.split_once('=')?;
            Some((key.trim().to_owned(), value.trim().parse().ok()?))
        })
        .collect()
}

/// Checks one source file. `crate_name` decides which layer rules apply.
pub fn check_source(
    crate_name: &str,
    path: &str,
    text: &str,
    ratchet: &[(String, usize)],
) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut push = |line: usize, rule: &'static str, detail: String| {
        out.push(Violation { path: path.to_owned(), line, rule, detail });
    };
    let is_boundary = BOUNDARY_CRATES.contains(&crate_name);
    let may_serde = SERDE_CRATES.contains(&crate_name);
    // Integration tests, benches, and `tests.rs` submodules (declared `#[cfg(test)] mod tests;`).
    let in_tests_dir =
        path.contains("/tests/") || path.contains("/benches/") || path.ends_with("/tests.rs");
    // The checker's own source spells out the banned strings in its rule tables and canary.
    let is_checker = path.ends_with("xtask/src/tidy.rs");
    let mut in_test_module = false;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let columns = line.chars().count();
        if columns > LINE_COLUMNS_MAX {
            push(number, "line-length", format!("{columns} columns > {LINE_COLUMNS_MAX}"));
        }
        if line.trim_start().starts_with("#[cfg(test)]") {
            in_test_module = true;
        }
        let code = line.split("//").next().unwrap_or("");
        for marker in BANNED_MARKERS {
            if line.contains(marker) && !is_checker {
                push(number, "unfinished-work", format!("`{marker}` must not land"));
            }
        }
        if !is_boundary && !in_test_module && !in_tests_dir {
            for call in BANNED_NONDETERMINISM {
                if code.contains(call) && !is_checker {
                    push(number, "nondeterminism", format!("`{call}` outside service/cli"));
                }
            }
        }
        let derives_serde = code.contains("derive(") && code.contains("Serialize");
        if !may_serde && !in_test_module && !is_checker && derives_serde {
            push(number, "serde-layer", "serde derives belong to formats/oracle/service".into());
        }
    }
    for (name, start, lines) in function_lengths(text) {
        let key = format!("{path}:{name}");
        let allowed =
            ratchet.iter().find(|(k, _)| *k == key).map_or(FUNCTION_LINES_MAX, |(_, n)| *n);
        if lines > allowed {
            push(start, "function-length", format!("`{name}` has {lines} lines > {allowed}"));
        }
    }
    out
}

/// Finds `fn` items and the number of lines up to their closing brace at the same indentation.
fn function_lengths(text: &str) -> Vec<(String, usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        let Some(name) = fn_name(trimmed) else { continue };
        let closing = format!("{}}}", " ".repeat(indent));
        let end = lines[i..]
            .iter()
            .position(|l| *l == closing || l.starts_with(&(closing.clone() + " ")));
        if let Some(offset) = end {
            out.push((name, i + 1, offset + 1));
        }
    }
    out
}

fn fn_name(trimmed: &str) -> Option<String> {
    let mut rest = trimmed;
    for prefix in
        ["pub(crate) ", "pub(super) ", "pub ", "const ", "async ", "unsafe ", "extern \"C\" "]
    {
        rest = rest.strip_prefix(prefix).unwrap_or(rest);
    }
    let after = rest.strip_prefix("fn ")?;
    let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
    if trimmed.ends_with(';') || name.is_empty() { None } else { Some(name) }
}

/// Every crate root has a `//!` overview and every source file is reachable through `mod`.
fn check_crate_roots(root: &Path, crate_dir: &Path, files: &[PathBuf]) -> Vec<Violation> {
    let mut out = Vec::new();
    let src = crate_dir.join("src");
    let roots: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .chain(
            fs::read_dir(src.join("bin"))
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.path()),
        )
        .filter(|p| p.is_file())
        .collect();
    let rel = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_string_lossy().replace('\\', "/");
    for root_file in &roots {
        let text = fs::read_to_string(root_file).unwrap_or_default();
        if root_file.ends_with("lib.rs") && !text.lines().any(|l| l.starts_with("//!")) {
            let detail = "crate root needs a `//!` overview".to_owned();
            out.push(Violation { path: rel(root_file), line: 1, rule: "crate-docs", detail });
        }
    }
    let mut reachable = BTreeSet::new();
    let mut stack = roots.clone();
    while let Some(file) = stack.pop() {
        if !reachable.insert(file.clone()) {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        let dir = module_dir(&file);
        for module in declared_modules(&text) {
            for candidate in [dir.join(format!("{module}.rs")), dir.join(&module).join("mod.rs")] {
                if candidate.is_file() {
                    stack.push(candidate);
                }
            }
        }
    }
    for file in files.iter().filter(|f| f.starts_with(&src)) {
        if !reachable.contains(file) {
            let detail = "no `mod` declaration reaches this file".to_owned();
            out.push(Violation { path: rel(file), line: 1, rule: "dead-file", detail });
        }
    }
    out
}

/// The directory in which the children of the module in `file` live.
fn module_dir(file: &Path) -> PathBuf {
    let parent = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let in_bin = parent.file_name().is_some_and(|n| n == "bin");
    if matches!(stem.as_str(), "lib" | "main" | "mod") || in_bin {
        parent
    } else {
        parent.join(stem)
    }
}

fn declared_modules(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| {
            let t = l.trim_start();
            // Any visibility: `pub`, `pub(crate)`, `pub(super)`, `pub(in path)`.
            let t = match t.strip_prefix("pub") {
                Some(rest) if rest.starts_with('(') => rest.split_once(") ").map_or(t, |(_, r)| r),
                Some(rest) => rest.strip_prefix(' ').unwrap_or(t),
                None => t,
            };
            let name = t.strip_prefix("mod ")?.strip_suffix(';')?;
            Some(name.trim().to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_is_tidy() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let violations = check_repository(&root);
        let report: Vec<String> = violations.iter().map(ToString::to_string).collect();
        assert!(violations.is_empty(), "tidy violations:\n{}", report.join("\n"));
    }

    /// The canary: every rule must still fire on a known-bad file, or the checker is broken.
    #[test]
    fn canary_catches_every_rule() {
        let long = format!("// {}", "x".repeat(120));
        let body = "    let x = 1;\n".repeat(80);
        let bad = format!(
            "{long}\nfn f() {{\n    let t = std::time::Instant::now();\n}}\n\
             #[derive(serde::Serialize)]\nstruct S;\n// FIXME later\nfn big() {{\n{body}}}\n"
        );
        let rules: BTreeSet<&str> = check_source("margin", "crates/margin/src/x.rs", &bad, &[])
            .iter()
            .map(|v| v.rule)
            .collect();
        let expected =
            ["function-length", "line-length", "nondeterminism", "serde-layer", "unfinished-work"];
        assert_eq!(rules, expected.into_iter().collect());
        // The boundary layers may read the clock.
        let clock = "fn f() {\n    let t = std::time::Instant::now();\n}\n";
        assert!(check_source("service", "crates/service/src/x.rs", clock, &[]).is_empty());
    }

    #[test]
    fn ratchet_grants_only_the_recorded_length() {
        let body = "    let x = 1;\n".repeat(80);
        let text = format!("fn big() {{\n{body}}}\n");
        let exact = [("p.rs:big".to_owned(), 82)];
        assert!(check_source("margin", "p.rs", &text, &exact).is_empty());
        let smaller = [("p.rs:big".to_owned(), 81)];
        assert_eq!(check_source("margin", "p.rs", &text, &smaller).len(), 1);
    }
}

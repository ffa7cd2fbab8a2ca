//! `ballast conformance derive-pmrm2 DIR`: Derive's PMRM_2 portfolio cases through the engine.
//!
//! Every `*.json` file of DIR is one case in Derive's own layout. Each is converted
//! (`formats::derive`), its parameters override the bundled `derive-pmrm2` profile's, and the
//! engine computes MM and IM net of mark-to-market. A case passes when both are within a
//! relative error of 1e-8 of Derive's (an absolute 1e-8 where Derive's value is exactly 0).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use clap::Args;
use formats::bundled::bundled;
use formats::derive::{CaseDocument, NetMargins, RELATIVE_TOLERANCE, comparison_error};
use formats::methodology::Profile;

/// Arguments of this suite.
#[derive(Debug, Args)]
pub struct DeriveArgs {
    /// Directory holding Derive's case files (`test_*.json`).
    path: PathBuf,
}

/// One case's outcome.
struct Outcome {
    name: String,
    expected: (f64, f64),
    computed: Result<(f64, f64), String>,
    /// Why the case is refused, when Derive's own model refuses it as well.
    refused: Option<String>,
}

impl Outcome {
    fn error(&self) -> f64 {
        match &self.computed {
            Ok((mm, im)) => {
                comparison_error(*mm, self.expected.0).max(comparison_error(*im, self.expected.1))
            }
            Err(_) => f64::INFINITY,
        }
    }
}

/// Runs the suite.
///
/// # Errors
/// An unreadable directory or file, or any failed case.
pub fn run(args: &DeriveArgs) -> Result<()> {
    let Profile::Portfolio(base) = bundled("derive-pmrm2")? else {
        bail!("the bundled derive-pmrm2 profile is not a portfolio methodology");
    };
    let mut files = case_files(&args.path)?;
    files.sort_by_key(|p| case_number(p));
    let (mut passed, mut failed, mut refused) = (0, 0, 0);
    for file in &files {
        let outcome = run_case(file, &base)?;
        if let Some(why) = &outcome.refused {
            println!("refused {}  {why} (Derive's own validation refuses it too)", outcome.name);
            refused += 1;
            continue;
        }
        let error = outcome.error();
        let ok = error <= RELATIVE_TOLERANCE;
        match &outcome.computed {
            Ok((mm, im)) => println!(
                "{} {}  MM expected {:.10} computed {:.10}  IM expected {:.10} computed {:.10}  \
                 error {error:.2e}",
                if ok { "ok  " } else { "FAIL" },
                outcome.name,
                outcome.expected.0,
                mm,
                outcome.expected.1,
                im,
            ),
            Err(why) => println!("FAIL {}  {why}", outcome.name),
        }
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!("{passed} passed, {failed} failed; {refused} refused as Derive refuses them");
    if failed > 0 || passed == 0 {
        bail!("{failed} of {} Derive cases failed", files.len());
    }
    Ok(())
}

fn case_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "json") {
            files.push(path);
        }
    }
    Ok(files)
}

/// The number in `test_12_...json` (cases sort numerically), then the name.
fn case_number(path: &Path) -> (u64, String) {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let number = name.split('_').nth(1).and_then(|n| n.parse().ok()).unwrap_or(u64::MAX);
    (number, name)
}

fn run_case(file: &Path, base: &methodology::Methodology) -> Result<Outcome> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let name = case_number(file).1.trim_end_matches(".json").to_owned();
    let document = CaseDocument::from_json(&text).with_context(|| name.clone())?;
    let expected = (document.result.mm, document.result.im);
    let case = document.to_case(base);
    if let Err(e) = &case
        && matches!(e.kind, formats::ErrorKind::Refused(_))
    {
        let refused = Some(e.to_string());
        return Ok(Outcome { name, expected, computed: Err(e.to_string()), refused });
    }
    let computed = case
        .map_err(|e| e.to_string())
        .and_then(|case| {
            let engine =
                margin::Engine::new(case.methodology.clone()).map_err(|e| e.to_string())?;
            let market = std::sync::Arc::new(case.market);
            let figures = engine.margin(&market, &case.portfolio).map_err(|e| e.to_string())?;
            NetMargins::of(&figures).map_err(|e| e.to_string())
        })
        .map(|m| (m.mm, m.im));
    Ok(Outcome { name, expected, computed, refused: None })
}

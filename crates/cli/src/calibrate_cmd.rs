//! `ballast calibrate`: a methodology's price range and volatility shock per underlying fitted
//! to a target coverage on replayed history, written as a new methodology version that records
//! how it was fitted.
//!
//! The command reads the files, calls `backtest::calibrate` once per underlying and renders;
//! the search, the anti-procyclicality options and the windows are the library's
//! (docs/calibration.md).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use backtest::Confidence;
use backtest::calibrate::{Fit, Span, Spec, calibrate, keccak, with_parameters};
use backtest::replay::{SurfaceModel, Window, replay};
use basics::Currency;
use clap::Args;
use formats::methodology::{Profile, hash_hex};
use methodology::{AntiProcyclicality, Calibration, Methodology, UnderlyingCalibration};

use crate::backtest_cmd::{HistoryFile, SURFACE_TOML, date, day};
use crate::input::read_text;
use crate::profile::load_profile;

/// Arguments of `ballast calibrate`.
#[derive(Debug, Args)]
pub struct CalibrateArgs {
    /// Daily OHLCV files, `BTC=path` or a path whose name starts with the underlying; one fit
    /// per file.
    #[arg(long, num_args = 1.., required = true)]
    pub history: Vec<String>,
    /// The methodology to start from: a bundled name or a TOML file.
    #[arg(long, default_value = "ballast-pm")]
    pub methodology: String,
    /// Surface model (TOML); the bundled `examples/replay/surface.toml` when absent.
    #[arg(long)]
    pub surface: Option<PathBuf>,
    /// First bar date of the fit window (YYYY-MM-DD).
    #[arg(long)]
    pub fit_from: String,
    /// Last bar date of the fit window.
    #[arg(long)]
    pub fit_to: String,
    /// First bar date of the out-of-sample window.
    #[arg(long, requires = "test_to")]
    pub test_from: Option<String>,
    /// Last bar date of the out-of-sample window.
    #[arg(long, requires = "test_from")]
    pub test_to: Option<String>,
    /// Coverage of the initial margin aimed at, in basis points (9900: 99 %).
    #[arg(long, default_value_t = 9_900)]
    pub coverage_bp: u32,
    /// Margin period of risk in days (EMIR's minimum for exchange-traded derivatives is 2).
    #[arg(long, default_value_t = 2)]
    pub horizon_days: u32,
    /// `none`, `buffer`, `stressed-weight` or `floor` (EMIR article 28).
    #[arg(long, default_value = "floor")]
    pub anti_procyclicality: String,
    /// The buffer or the stressed weight, with `buffer` and `stressed-weight`.
    #[arg(long, default_value_t = 0.25)]
    pub share: f64,
    /// Years searched back from the fit's end for the stressed period.
    #[arg(long, default_value_t = 10)]
    pub lookback_years: u32,
    /// The new version (the base's minor version plus one when absent).
    #[arg(long)]
    pub version: Option<String>,
    /// Where to write the calibrated methodology (TOML); standard output when absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `ballast calibrate`.
pub fn run(args: &CalibrateArgs) -> Result<()> {
    let Profile::Portfolio(base) = load_profile(&args.methodology)? else {
        bail!("{} is a per-position profile: there is no grid to calibrate", args.methodology);
    };
    let surface_text = match &args.surface {
        Some(path) => read_text(Some(path))?,
        None => SURFACE_TOML.to_owned(),
    };
    let model = SurfaceModel::from_toml(&surface_text).context("in the surface model")?;
    let option = anti_procyclicality(&args.anti_procyclicality, args.share)?;
    let fit = window(&args.fit_from, &args.fit_to)?;
    let test = match (&args.test_from, &args.test_to) {
        (Some(from), Some(to)) => Some(window(from, to)?),
        _ => None,
    };
    let coverage = Confidence::from_basis_points(args.coverage_bp)?;
    let mut calibrated: Methodology = (*base).clone();
    let mut record = Calibration {
        target_coverage: coverage.tail_probability().mul_add(-1.0, 1.0),
        horizon_days: args.horizon_days,
        anti_procyclicality: option,
        lookback_years: args.lookback_years,
        surface_model: hash_hex(&model.hash()),
        base: hash_hex(&Profile::Portfolio(base.clone()).hash()),
        underlyings: std::collections::BTreeMap::default(),
    };
    let mut report = String::new();
    for spec_text in &args.history {
        let file = HistoryFile::read(spec_text)?;
        let (underlying, history) = (file.underlying, file.parse()?);
        let spec = Spec {
            underlying,
            coverage,
            horizon_days: args.horizon_days,
            fit,
            test,
            anti_procyclicality: option,
            lookback_years: args.lookback_years,
        };
        let window = Window { from: Some(spec.replay_from()), to: Some(spec.replay_to()) };
        let replayed = replay(&[(underlying, &history)], &model, window)?;
        eprintln!("calibrating {underlying} on {} replayed days", replayed.days().len());
        let outcome =
            calibrate(&replayed, &base, &spec).with_context(|| format!("{underlying}"))?;
        calibrated = with_parameters(&calibrated, underlying, outcome.parameters)?;
        record.underlyings.insert(underlying, entry(&file, &outcome));
        render(&mut report, underlying, &outcome);
    }
    calibrated.version = args.version.clone().unwrap_or_else(|| next_version(&base.version));
    calibrated.calibration = Some(record);
    calibrated.validate().map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.kind))?;
    write(args.out.as_ref(), &Profile::Portfolio(Box::new(calibrated)), report)
}

/// Writes the methodology (to `out`, or standard output with the report on standard error).
pub(crate) fn write(out: Option<&PathBuf>, profile: &Profile, mut report: String) -> Result<()> {
    let text = profile.to_toml()?;
    // Invariant: the written file reads back as the same methodology.
    let again = Profile::from_toml(&text)?;
    assert_eq!(again.hash(), profile.hash(), "Invariant: the written methodology reads back");
    let _ = writeln!(
        report,
        "\n{} {} {}",
        profile.name(),
        profile.version(),
        hash_hex(&profile.hash())
    );
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            print!("{report}");
        }
        None => {
            eprint!("{report}");
            print!("{text}");
        }
    }
    Ok(())
}

fn anti_procyclicality(name: &str, share: f64) -> Result<AntiProcyclicality> {
    Ok(match name {
        "none" => AntiProcyclicality::None,
        "floor" => AntiProcyclicality::Floor,
        "buffer" => AntiProcyclicality::Buffer { fraction: share },
        "stressed-weight" => AntiProcyclicality::StressedWeight { weight: share },
        other => bail!(
            "--anti-procyclicality {other:?}: expected none, buffer, stressed-weight or floor"
        ),
    })
}

fn window(from: &str, to: &str) -> Result<Span> {
    let (Some(from), Some(to)) = (date(Some(from))?, date(Some(to))?) else {
        bail!("a window needs both dates");
    };
    Ok(Span { from, to })
}

/// `1.0.0` → `1.1.0`; a version without a numeric minor part gets `.1` appended.
pub(crate) fn next_version(version: &str) -> String {
    let mut parts: Vec<String> = version.split('.').map(str::to_owned).collect();
    match parts.get(1).and_then(|p| p.parse::<u64>().ok()) {
        Some(minor) => {
            parts[1] = (minor + 1).to_string();
            parts.iter_mut().skip(2).for_each(|p| *p = "0".into());
            parts.join(".")
        }
        None => format!("{version}.1"),
    }
}

fn entry(file: &HistoryFile, fit: &Fit) -> UnderlyingCalibration {
    let name = file
        .path
        .file_name()
        .map_or_else(|| file.path.display().to_string(), |n| n.to_string_lossy().into_owned());
    let span = |s: Span| [day(s.from), day(s.to)];
    UnderlyingCalibration {
        history: name,
        history_keccak: hash_hex(&keccak(file.text.as_bytes())),
        fit: span(fit.spec.fit),
        test: fit.spec.test.map(span),
        stressed: fit.stressed.map(span),
        required: [fit.required.price_down, fit.required.price_up, fit.required.vol_scale],
        price_down: fit.parameters.price_down,
        price_up: fit.parameters.price_up,
        vol_scale: fit.parameters.vol_scale,
        in_sample: fit.accounts.iter().map(|a| (a.name.clone(), a.in_sample)).collect(),
        out_of_sample: fit
            .accounts
            .iter()
            .filter_map(|a| a.out_of_sample.map(|s| (a.name.clone(), s)))
            .collect(),
    }
}

fn render(out: &mut String, underlying: Currency, fit: &Fit) {
    let p = fit.parameters;
    let r = fit.required;
    let span = |s: Span| format!("{} to {}", day(s.from), day(s.to));
    let _ = writeln!(
        out,
        "\n{underlying}: fit {}{}{}",
        span(fit.spec.fit),
        fit.spec.test.map_or(String::new(), |t| format!(", test {}", span(t))),
        fit.stressed.map_or(String::new(), |s| format!(", stressed period {}", span(s)))
    );
    let _ = writeln!(
        out,
        "  required: price range -{:.2} % / +{:.2} %, vol shock x{:.2}",
        100.0 * r.price_down,
        100.0 * r.price_up,
        r.vol_scale
    );
    let _ = writeln!(
        out,
        "  written:  price range -{:.2} % / +{:.2} %, vol shock x{:.2} ({} backtests)",
        100.0 * p.price_down,
        100.0 * p.price_up,
        p.vol_scale,
        fit.runs
    );
    let _ =
        writeln!(out, "\n| account | in sample (fit) | stressed period | out of sample (test) |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: |");
    let cell = |s: Option<methodology::Sample>| {
        s.map_or("–".to_owned(), |s| {
            let rate = 100.0 * f64::from(s.exceedances) / f64::from(s.observations.max(1));
            format!("{}/{} ({rate:.2} %)", s.exceedances, s.observations)
        })
    };
    for a in &fit.accounts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            a.name,
            cell(Some(a.in_sample)),
            cell(a.stressed),
            cell(a.out_of_sample)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::next_version;

    #[test]
    fn the_next_version_raises_the_minor_part() {
        assert_eq!(next_version("1.0.0"), "1.1.0");
        assert_eq!(next_version("1.9.3"), "1.10.0");
        assert_eq!(next_version("2.4"), "2.5");
        assert_eq!(next_version("2024-06"), "2024-06.1");
        assert_eq!(next_version("3"), "3.1");
    }
}

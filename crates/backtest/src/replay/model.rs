//! The replayed surface: implied volatility and forwards made from prices alone.
//!
//! No implied-volatility history ships with the price files, so a replayed market needs a model
//! that turns a price path into a surface. This one is deliberately simple and every number of it
//! is a parameter in a file ([`SurfaceModel::from_toml`], hashed by [`SurfaceModel::hash`] as a
//! methodology is):
//!
//! - **Level.** EWMA variance of log returns, `v_t = λ v_(t−1) + (1 − λ) r_t² / g` (`g` the bars
//!   the return spans, so a return across a gap counts as that many bars of variance), annualised
//!   by the bars in a year (365 daily, 8,760 hourly: crypto trades every day). The at-the-money
//!   short-term vol is `σ₀ = √(premium · v · bars) · exp(−β_atm z)`, clamped to
//!   `[vol_min, vol_max]`: implied variance above realised (the variance premium), and higher after
//!   a fall (`z` below).
//! - **Response to returns.** `z` is the log return over the lookback divided by its expected
//!   size under the EWMA vol, clamped to `±z_abs_max`: a crash makes `z` strongly negative.
//! - **Term structure.** The average variance to `T` mean-reverts from `σ₀²` to the long-run level
//!   `σ∞²` (a slow EWMA with `long_run_lambda`, same premium and clamps) at speed `κ`:
//!   `σ²(T) = σ∞² + (σ₀² − σ∞²)(1 − e^(−κT)) / (κT)`. Its total variance `θ(T) = σ²(T)·T` grows
//!   strictly with `T` (its derivative is a positive mix of `σ₀²` and `σ∞²`), so the slices are
//!   ordered.
//! - **Smile.** SSVI (Gatheral and Jacquier, "Arbitrage-free SVI volatility surfaces", 2014):
//!   `w(k) = θ/2 · (1 + ρφk + √((φk + ρ)² + 1 − ρ²))` with `φ(θ) = η θ^(−γ) (1 + θ)^(γ−1)`, and
//!   `ρ = clamp(ρ₀ + β_ρ z, ±ρ_abs_max)`: skew steepens after a fall. With `0 < γ ≤ ½` and
//!   `η (1 + ρ_abs_max) ≤ 2` the surface is free of static arbitrage (their Corollary 4.1 and
//!   Remark 4.4), which [`SurfaceModel::new`] checks; each slice is handed to `market` as the raw
//!   SVI it equals (`a = θ(1 − ρ²)/2`, `b = θφ/2`, `m = −ρ/φ`, `σ = √(1 − ρ²)/φ`), and `market`
//!   checks it again.
//! - **Forwards.** `F(T) = S · e^(cT)` with the carry `c = clamp(c₀ + β_c z, ±c_abs_max)`: contango
//!   that moves with the market, so a basis trade has basis risk. Perpetuals mark at the index;
//!   stable coins are at par; the USD rate is a parameter.

use std::fmt::Write as _;

use basics::{Currency, NANOS_PER_DAY, UnixNanos};
use market::{MarketSnapshot, SnapshotBuilder, SviParams, UnderlyingInput};
use sha3::{Digest, Keccak256};

use crate::error::{Error, ErrorKind};

/// Slices of one replayed surface at most: a tenor grid, not a listing.
pub const TENORS_MAX: usize = 32;
/// The longest tenor of a replayed slice, in days.
pub const TENOR_DAYS_MAX: u32 = 730;
/// The longest lookback of the return response, in days.
pub const LOOKBACK_DAYS_MAX: u32 = 250;
/// The most bars the EWMA may take to warm up.
pub const WARMUP_BARS_MAX: usize = 1_000;
/// The highest at-the-money vol a model may replay, annualised (1,000 %): beyond it no listed
/// option trades, and a cap there only hides a broken price file.
pub const VOL_ANNUAL_MAX: f64 = 10.0;
/// What the canonical text starts with: its format and version, so a hash never collides with
/// another kind of document's.
const CANONICAL_HEADER: &str = "ballast-replay-surface/1\n";

/// The surface model's parameters as plain data; [`SurfaceModel::new`] validates them.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceParams {
    /// A name for reports.
    pub name: String,
    /// EWMA decay of the short-term variance (RiskMetrics: 0.94 for daily data).
    pub lambda: f64,
    /// EWMA decay of the long-run variance the term structure reverts to.
    pub long_run_lambda: f64,
    /// Implied variance over realised variance.
    pub variance_premium: f64,
    /// Floor of every at-the-money vol, annualised.
    pub vol_min: f64,
    /// Cap of every at-the-money vol, annualised.
    pub vol_max: f64,
    /// Returns whose mean square starts both EWMAs; no market is replayed before them.
    pub warmup_bars: usize,
    /// Speed `κ` at which the average variance reverts to the long-run level, per year.
    pub mean_reversion_per_year: f64,
    /// Tenors of the slices, in days, strictly ascending.
    pub tenors_days: Vec<u32>,
    /// Base SSVI correlation `ρ₀` (negative: put skew).
    pub rho: f64,
    /// Change of `ρ` per unit of `z`.
    pub rho_return_beta: f64,
    /// Bound on `|ρ|`.
    pub rho_abs_max: f64,
    /// SSVI curvature level `η`.
    pub eta: f64,
    /// SSVI curvature exponent `γ`.
    pub gamma: f64,
    /// Lookback of the return `z` is made of, in days.
    pub return_lookback_days: u32,
    /// Log change of the at-the-money vol per unit of `−z`.
    pub atm_return_beta: f64,
    /// Bound on `|z|`.
    pub z_abs_max: f64,
    /// Base carry `c₀` of the forwards, per year.
    pub carry_per_year: f64,
    /// Change of the carry per unit of `z`, per year.
    pub carry_return_beta: f64,
    /// Bound on `|c|`, per year.
    pub carry_abs_max: f64,
    /// Continuously compounded USD rate.
    pub usd_rate: f64,
}

/// The state of one underlying on one day, everything its replayed market is made of.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurfaceState {
    /// The index: the bar's close.
    pub spot: f64,
    /// Short-term EWMA variance per bar.
    pub variance_bar: f64,
    /// Long-run EWMA variance per bar.
    pub long_variance_bar: f64,
    /// The standardised recent return `z`, clamped.
    pub trend: f64,
}

/// A validated surface model and its canonical hash.
#[derive(Debug, Clone, PartialEq)]
pub struct SurfaceModel {
    params: SurfaceParams,
    hash: [u8; 32],
}

/// Every key of a surface file, by its path, in canonical order; all are required.
pub const KEYS: [&str; 21] = [
    "name",
    "volatility.lambda",
    "volatility.long_run_lambda",
    "volatility.variance_premium",
    "volatility.vol_min",
    "volatility.vol_max",
    "term.warmup_bars",
    "term.mean_reversion_per_year",
    "term.tenors_days",
    "smile.rho",
    "smile.rho_return_beta",
    "smile.rho_abs_max",
    "smile.eta",
    "smile.gamma",
    "smile.return_lookback_days",
    "smile.atm_return_beta",
    "smile.z_abs_max",
    "forward.carry_per_year",
    "forward.carry_return_beta",
    "forward.carry_abs_max",
    "rates.usd",
];

impl SurfaceModel {
    /// Validates `params`.
    ///
    /// # Errors
    /// `OutOfRange` naming the parameter (`smile.eta`) and the rule it breaks, `Limit` past
    /// [`TENORS_MAX`].
    pub fn new(params: SurfaceParams) -> Result<SurfaceModel, Error> {
        check(&params)?;
        let hash = Keccak256::digest(canonical_text(&params).as_bytes()).into();
        Ok(SurfaceModel { params, hash })
    }

    /// Parses and validates a surface file (docs/backtest.md lists every key; all are required,
    /// so a file states every number it replays with).
    ///
    /// # Errors
    /// `Syntax` for text that is not TOML or a value of the wrong type, `UnknownKey` naming the
    /// key's path, `Missing` naming the absent key, and as [`SurfaceModel::new`].
    pub fn from_toml(text: &str) -> Result<SurfaceModel, Error> {
        let table: toml::Table =
            text.parse().map_err(|e: toml::de::Error| syntax("surface", &e.to_string()))?;
        check_keys(&table)?;
        let get = |path: &'static str| value(&table, path);
        let number = |path: &'static str| get(path).and_then(|v| float(v, path));
        let count = |path: &'static str| get(path).and_then(|v| whole(v, path));
        let tenors = get("term.tenors_days")?
            .as_array()
            .ok_or_else(|| syntax("term.tenors_days", "an array of whole days"))?;
        let tenors_days = tenors
            .iter()
            .map(|v| whole(v, "term.tenors_days").and_then(|n| days(n, "term.tenors_days")))
            .collect::<Result<Vec<u32>, Error>>()?;
        let name = get("name")?.as_str().ok_or_else(|| syntax("name", "a string"))?.to_owned();
        let warmup = count("term.warmup_bars")?;
        SurfaceModel::new(SurfaceParams {
            name,
            lambda: number("volatility.lambda")?,
            long_run_lambda: number("volatility.long_run_lambda")?,
            variance_premium: number("volatility.variance_premium")?,
            vol_min: number("volatility.vol_min")?,
            vol_max: number("volatility.vol_max")?,
            warmup_bars: usize::try_from(warmup)
                .map_err(|_| Error::range("term.warmup_bars", "a count of bars"))?,
            mean_reversion_per_year: number("term.mean_reversion_per_year")?,
            tenors_days,
            rho: number("smile.rho")?,
            rho_return_beta: number("smile.rho_return_beta")?,
            rho_abs_max: number("smile.rho_abs_max")?,
            eta: number("smile.eta")?,
            gamma: number("smile.gamma")?,
            return_lookback_days: days(
                count("smile.return_lookback_days")?,
                "smile.return_lookback_days",
            )?,
            atm_return_beta: number("smile.atm_return_beta")?,
            z_abs_max: number("smile.z_abs_max")?,
            carry_per_year: number("forward.carry_per_year")?,
            carry_return_beta: number("forward.carry_return_beta")?,
            carry_abs_max: number("forward.carry_abs_max")?,
            usd_rate: number("rates.usd")?,
        })
    }

    /// The parameters.
    #[must_use]
    pub fn params(&self) -> &SurfaceParams {
        &self.params
    }

    /// The canonical text: every parameter in a fixed order, numbers in their shortest
    /// round-trip form. Two files that mean the same model (whatever their comments, key order
    /// or number spelling: `1` and `1.0`) give the same text.
    #[must_use]
    pub fn canonical_text(&self) -> String {
        canonical_text(&self.params)
    }

    /// keccak-256 of [`SurfaceModel::canonical_text`], the function methodologies are hashed
    /// with: what a report cites so that a replay can be reproduced.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The longest tenor of the slices, in days: no option may expire after it.
    #[must_use]
    pub fn horizon_days(&self) -> u32 {
        self.params.tenors_days.last().copied().unwrap_or(0)
    }

    /// The at-the-money short-term vol and long-run vol of `state`, annualised, with
    /// `bars_per_year` bars in a year.
    #[must_use]
    pub fn atm_vols(&self, state: &SurfaceState, bars_per_year: f64) -> (f64, f64) {
        let p = &self.params;
        let clamp = |variance_bar: f64| {
            (p.variance_premium * variance_bar * bars_per_year).sqrt().clamp(p.vol_min, p.vol_max)
        };
        let short = (clamp(state.variance_bar) * (-p.atm_return_beta * state.trend).exp())
            .clamp(p.vol_min, p.vol_max);
        (short, clamp(state.long_variance_bar))
    }

    /// The replayed market of `states` (one per underlying) at `valuation`.
    ///
    /// # Errors
    /// `Market` when the snapshot builder refuses a slice or forward (a parameter set at the edge
    /// of the arbitrage bounds, or a state that is not finite).
    pub fn snapshot(
        &self,
        valuation: UnixNanos,
        states: &[(Currency, SurfaceState)],
        bars_per_year: f64,
    ) -> Result<MarketSnapshot, Error> {
        let p = &self.params;
        let mut builder: SnapshotBuilder = MarketSnapshot::builder(valuation)
            .usd_price(Currency::USDC, 1.0)
            .rate(Currency::USD, p.usd_rate);
        for (currency, state) in states {
            builder =
                builder.underlying(*currency, self.underlying(valuation, state, bars_per_year));
        }
        builder.build().map_err(|e| Error::new("market", None, ErrorKind::Market(e.to_string())))
    }

    fn underlying(&self, valuation: UnixNanos, state: &SurfaceState, bars: f64) -> UnderlyingInput {
        let p = &self.params;
        let (short, long) = self.atm_vols(state, bars);
        let carry = (p.carry_per_year + p.carry_return_beta * state.trend)
            .clamp(-p.carry_abs_max, p.carry_abs_max);
        let rho = (p.rho + p.rho_return_beta * state.trend).clamp(-p.rho_abs_max, p.rho_abs_max);
        let kappa = p.mean_reversion_per_year;
        let mut input = UnderlyingInput { index: state.spot, ..UnderlyingInput::default() };
        for &tenor in &p.tenors_days {
            let expiry = UnixNanos(valuation.0 + i64::from(tenor) * NANOS_PER_DAY);
            let years = f64::from(tenor) / basics::DAYS_PER_YEAR;
            let decay = (1.0 - (-kappa * years).exp()) / (kappa * years);
            let variance = long * long + (short * short - long * long) * decay;
            input.forwards.push((expiry, state.spot * (carry * years).exp()));
            input.smiles.push((expiry, ssvi(variance * years, rho, p.eta, p.gamma)));
        }
        input
    }
}

/// The raw SVI parameters of the SSVI slice with ATM total variance `theta`.
fn ssvi(theta: f64, rho: f64, eta: f64, gamma: f64) -> SviParams {
    let phi = eta / (theta.powf(gamma) * (1.0 + theta).powf(1.0 - gamma));
    let root = (1.0 - rho * rho).sqrt();
    SviParams {
        a: theta * (1.0 - rho * rho) / 2.0,
        b: theta * phi / 2.0,
        rho,
        m: -rho / phi,
        sigma: root / phi,
    }
}

fn check(p: &SurfaceParams) -> Result<(), Error> {
    let unit = |x: f64| x > 0.0 && x < 1.0;
    rule("volatility.lambda", p.lambda, unit(p.lambda), "in (0, 1)")?;
    rule("volatility.long_run_lambda", p.long_run_lambda, unit(p.long_run_lambda), "in (0, 1)")?;
    rule("volatility.variance_premium", p.variance_premium, p.variance_premium > 0.0, "> 0")?;
    rule("volatility.vol_min", p.vol_min, p.vol_min > 0.0, "> 0")?;
    let vol_max_ok = p.vol_max >= p.vol_min && p.vol_max <= VOL_ANNUAL_MAX;
    rule("volatility.vol_max", p.vol_max, vol_max_ok, "in [vol_min, VOL_ANNUAL_MAX]")?;
    let kappa = p.mean_reversion_per_year;
    rule("term.mean_reversion_per_year", kappa, kappa > 0.0, "> 0")?;
    let rho_max_ok = p.rho_abs_max >= 0.0 && p.rho_abs_max < 1.0;
    rule("smile.rho_abs_max", p.rho_abs_max, rho_max_ok, "in [0, 1)")?;
    rule("smile.rho", p.rho, p.rho.abs() <= p.rho_abs_max, "within ±rho_abs_max")?;
    rule("smile.rho_return_beta", p.rho_return_beta, true, "finite")?;
    // Gatheral and Jacquier's sufficient condition for a surface free of static arbitrage.
    let eta_ok = p.eta > 0.0 && p.eta * (1.0 + p.rho_abs_max) <= 2.0;
    rule("smile.eta", p.eta, eta_ok, "> 0 with eta · (1 + rho_abs_max) ≤ 2")?;
    rule("smile.gamma", p.gamma, p.gamma > 0.0 && p.gamma <= 0.5, "in (0, 0.5]")?;
    rule("smile.z_abs_max", p.z_abs_max, (0.0..=10.0).contains(&p.z_abs_max), "in [0, 10]")?;
    let beta_ok = p.atm_return_beta.abs() <= 1.0;
    rule("smile.atm_return_beta", p.atm_return_beta, beta_ok, "in [−1, 1]")?;
    let carry_max_ok = (0.0..=1.0).contains(&p.carry_abs_max);
    rule("forward.carry_abs_max", p.carry_abs_max, carry_max_ok, "in [0, 1]")?;
    let carry_ok = p.carry_per_year.abs() <= p.carry_abs_max;
    rule("forward.carry_per_year", p.carry_per_year, carry_ok, "within ±carry_abs_max")?;
    rule("forward.carry_return_beta", p.carry_return_beta, true, "finite")?;
    let rate_ok = p.usd_rate.abs() <= basics::limits::RATE_ABS_MAX;
    rule("rates.usd", p.usd_rate, rate_ok, "within ±RATE_ABS_MAX")?;
    check_grid(p)
}

/// `value` is finite and `ok`, or the error naming `field` and the `rule` it breaks.
fn rule(field: &'static str, value: f64, ok: bool, rule: &str) -> Result<(), Error> {
    if !value.is_finite() {
        return Err(Error::new(field, None, ErrorKind::NotFinite));
    }
    if !ok {
        return Err(Error::range(field, format!("{value} is not {rule}")));
    }
    Ok(())
}

fn check_grid(p: &SurfaceParams) -> Result<(), Error> {
    if p.tenors_days.is_empty() {
        return Err(Error::range("term.tenors_days", "at least one tenor"));
    }
    if p.tenors_days.len() > TENORS_MAX {
        return Err(Error::limit("term.tenors_days", "TENORS_MAX", TENORS_MAX));
    }
    let ascending = p.tenors_days.windows(2).all(|w| w[0] < w[1]);
    if !ascending || p.tenors_days[0] == 0 || p.horizon_days() > TENOR_DAYS_MAX {
        let rule = format!("strictly ascending whole days in [1, {TENOR_DAYS_MAX}]");
        return Err(Error::range("term.tenors_days", rule));
    }
    if p.return_lookback_days == 0 || p.return_lookback_days > LOOKBACK_DAYS_MAX {
        let rule = format!("in [1, {LOOKBACK_DAYS_MAX}] days");
        return Err(Error::range("smile.return_lookback_days", rule));
    }
    if p.warmup_bars < 2 || p.warmup_bars > WARMUP_BARS_MAX {
        return Err(Error::range("term.warmup_bars", format!("in [2, {WARMUP_BARS_MAX}]")));
    }
    Ok(())
}

impl SurfaceParams {
    fn horizon_days(&self) -> u32 {
        self.tenors_days.last().copied().unwrap_or(0)
    }
}

fn canonical_text(p: &SurfaceParams) -> String {
    let mut out = String::from(CANONICAL_HEADER);
    let tenors: Vec<String> = p.tenors_days.iter().map(u32::to_string).collect();
    let lines: [(&str, String); 21] = [
        ("name", format!("{:?}", p.name)),
        ("volatility.lambda", format!("{:?}", p.lambda)),
        ("volatility.long_run_lambda", format!("{:?}", p.long_run_lambda)),
        ("volatility.variance_premium", format!("{:?}", p.variance_premium)),
        ("volatility.vol_min", format!("{:?}", p.vol_min)),
        ("volatility.vol_max", format!("{:?}", p.vol_max)),
        ("term.warmup_bars", p.warmup_bars.to_string()),
        ("term.mean_reversion_per_year", format!("{:?}", p.mean_reversion_per_year)),
        ("term.tenors_days", format!("[{}]", tenors.join(","))),
        ("smile.rho", format!("{:?}", p.rho)),
        ("smile.rho_return_beta", format!("{:?}", p.rho_return_beta)),
        ("smile.rho_abs_max", format!("{:?}", p.rho_abs_max)),
        ("smile.eta", format!("{:?}", p.eta)),
        ("smile.gamma", format!("{:?}", p.gamma)),
        ("smile.return_lookback_days", p.return_lookback_days.to_string()),
        ("smile.atm_return_beta", format!("{:?}", p.atm_return_beta)),
        ("smile.z_abs_max", format!("{:?}", p.z_abs_max)),
        ("forward.carry_per_year", format!("{:?}", p.carry_per_year)),
        ("forward.carry_return_beta", format!("{:?}", p.carry_return_beta)),
        ("forward.carry_abs_max", format!("{:?}", p.carry_abs_max)),
        ("rates.usd", format!("{:?}", p.usd_rate)),
    ];
    for (key, value) in lines {
        let _ = writeln!(out, "{key}={value}");
    }
    out
}

fn syntax(field: &'static str, expected: &str) -> Error {
    Error::new(field, None, ErrorKind::Syntax(expected.to_owned()))
}

/// Every key of the table is one of [`KEYS`], and every section is a table.
fn check_keys(table: &toml::Table) -> Result<(), Error> {
    let unknown = |path: String| Error::new("surface", None, ErrorKind::UnknownKey(path));
    for (key, value) in table {
        let is_section = KEYS.iter().any(|k| k.split_once('.').is_some_and(|(s, _)| s == key));
        if !is_section {
            if !KEYS.contains(&key.as_str()) {
                return Err(unknown(key.clone()));
            }
            continue;
        }
        let toml::Value::Table(inner) = value else {
            return Err(syntax("surface", &format!("[{key}] to be a table")));
        };
        if let Some(extra) = inner.keys().find(|k| !KEYS.contains(&format!("{key}.{k}").as_str())) {
            return Err(unknown(format!("{key}.{extra}")));
        }
    }
    Ok(())
}

/// The value at `path` (`section.key`, or a top-level key).
fn value<'t>(table: &'t toml::Table, path: &'static str) -> Result<&'t toml::Value, Error> {
    let found = match path.split_once('.') {
        None => table.get(path),
        Some((section, key)) => table.get(section).and_then(|v| v.as_table()?.get(key)),
    };
    found.ok_or_else(|| Error::new(path, None, ErrorKind::Missing))
}

fn float(v: &toml::Value, field: &'static str) -> Result<f64, Error> {
    match v {
        toml::Value::Float(x) => Ok(*x),
        toml::Value::Integer(n) => Ok(*n as f64),
        _ => Err(syntax(field, "a number")),
    }
}

fn whole(v: &toml::Value, field: &'static str) -> Result<i64, Error> {
    v.as_integer().ok_or_else(|| syntax(field, "a whole number"))
}

fn days(n: i64, field: &'static str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::range(field, format!("{n} is not a count of days")))
}

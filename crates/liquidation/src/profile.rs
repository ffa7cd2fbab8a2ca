//! Liquidation profiles: a venue's liquidation rules as data, read from TOML, validated and
//! hashed like a methodology, so that a simulation's report cites the exact rules it ran.
//!
//! A profile says when an account is liquidated and to what target, how large one round may be
//! and what it sells, how the sale is executed (a Dutch auction or a sale against the depth
//! model), what the account pays and to whom, and the waterfall once its equity is gone.
//! `docs/liquidation.md` lists every key; all are required, so a file states every number.

use std::fmt::Write as _;

use sha3::{Digest, Keccak256};

use crate::error::{Error, ErrorKind};

/// Every key of a profile file, `section.key` or top-level.
pub const KEYS: [&str; 27] = [
    "name",
    "version",
    "description",
    "target.buffer_scale",
    "target.backstop_below_mm",
    "step.selection",
    "step.position_portion_max",
    "step.notional_min_usd",
    "step.account_notional_max_usd",
    "step.close_factor",
    "step.full_close_health",
    "step.full_close_below_usd",
    "step.leftover_min_usd",
    "step.round_secs",
    "execution.model",
    "execution.start_discount",
    "execution.fast_discount",
    "execution.fast_secs",
    "execution.slow_secs",
    "penalty.fund_fee_delta_one",
    "penalty.fund_fee_option",
    "penalty.liquidator_fee",
    "penalty.fund_fee_of_equity",
    "penalty.bankruptcy_adjustment",
    "penalty.spread_to_mm",
    "waterfall.adl",
    "waterfall.socialise",
];

/// What one round sells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Selection {
    /// Ballast: the positions, and how much of each, that restore the target at the least
    /// expected cost, searched on the full engine.
    Smallest,
    /// Derive: the same fraction of every position (the hedge ratio kept, no picking).
    ProRata,
    /// Deribit (portfolio margin since 2023): the position whose removal lowers the
    /// maintenance margin most, first.
    LargestContributor,
}

impl Selection {
    /// Every selection, in report order.
    pub const ALL: [Selection; 3] =
        [Selection::Smallest, Selection::ProRata, Selection::LargestContributor];

    /// The stable name used in files and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Selection::Smallest => "smallest",
            Selection::ProRata => "pro-rata",
            Selection::LargestContributor => "largest-contributor",
        }
    }
}

/// How a round's sale is executed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Execution {
    /// Sold to the market at the depth model's price (half-spread plus square-root impact, the
    /// friction add-on's parameters).
    Market,
    /// A Dutch auction on the slice's mark-to-market value: the discount starts at
    /// `start_discount`, grows linearly to `fast_discount` over `fast_secs`, then to 1 over
    /// `slow_secs` (Derive's schedule, written as discounts rather than price factors).
    DutchAuction {
        /// Discount when the auction starts.
        start_discount: f64,
        /// Discount at the end of the fast phase.
        fast_discount: f64,
        /// Length of the fast phase, seconds.
        fast_secs: f64,
        /// Length of the slow phase, seconds.
        slow_secs: f64,
    },
}

/// Who absorbs what the fund cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adl {
    /// No auto-deleveraging.
    None,
    /// Opposite-side holders in proportion to their size.
    ProRata,
    /// Opposite-side holders ranked by profit × leverage, highest first (Binance, Bybit,
    /// Hyperliquid).
    Ranked,
    /// Opposite-side holders in turn from a seeded pseudorandom start (dYdX v4).
    RandomStart,
}

impl Adl {
    /// Every rule.
    pub const ALL: [Adl; 4] = [Adl::None, Adl::ProRata, Adl::Ranked, Adl::RandomStart];

    /// The stable name used in files and reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Adl::None => "none",
            Adl::ProRata => "pro-rata",
            Adl::Ranked => "ranked",
            Adl::RandomStart => "random-start",
        }
    }
}

/// A validated liquidation profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Short name (`derive`).
    pub name: String,
    /// Version of this profile's rules.
    pub version: i64,
    /// What the profile follows, with its sources.
    pub description: String,
    /// A round's target: equity back to `buffer_scale × MM` (Derive's buffer margin
    /// `MtM + k · (MM − MtM)` is `≥ 0` exactly when equity ≥ k · MM).
    pub buffer_scale: f64,
    /// Below `backstop_below_mm × MM` the whole account goes to the backstop at the mark and
    /// keeps nothing (Hyperliquid's 2/3); 0 for none.
    pub backstop_below_mm: f64,
    /// What a round sells.
    pub selection: Selection,
    /// Largest share of one position a round may sell (dYdX 10 %).
    pub position_portion_max: f64,
    /// Floor of a round's sale of one position, USD notional (dYdX 1,000): a smaller position
    /// is sold whole.
    pub notional_min_usd: f64,
    /// Largest notional one round may sell of one account, USD (dYdX 100,000); 0 for none.
    pub account_notional_max_usd: f64,
    /// Largest share of the account's notional one round may sell (Aave's close factor 0.5).
    pub close_factor: f64,
    /// At or below this equity / MM a round may sell everything (Aave 0.95); 0 for never.
    pub full_close_health: f64,
    /// A book below this notional, USD, may be sold whole in one round (Aave 2,000).
    pub full_close_below_usd: f64,
    /// A partial round must leave at least this notional, USD, or sell everything (Aave 1,000).
    pub leftover_min_usd: f64,
    /// Seconds between rounds (a block, a cooldown, an auction's length).
    pub round_secs: f64,
    /// How a round's sale is executed.
    pub execution: Execution,
    /// Fee to the insurance fund, fraction of the notional sold of delta-one contracts.
    pub fund_fee_delta_one: f64,
    /// Fee to the insurance fund, fraction of the underlying notional sold of options.
    pub fund_fee_option: f64,
    /// Fee to the liquidator, fraction of the notional sold.
    pub liquidator_fee: f64,
    /// Fee to the insurance fund, fraction of the positive equity of the share of the account
    /// sold (Derive's `liquidatorFeeRate × f × MtM` to the security module).
    pub fund_fee_of_equity: f64,
    /// dYdX's bankruptcy adjustment BA (≥ 1): the fillable price's spread grows as
    /// `clamp(BA · (1 − equity / MM), 0, 1)`; 0 when the profile has no fillable-price limit.
    pub bankruptcy_adjustment: f64,
    /// dYdX's SMMR: the fillable price's widest spread as a multiple of the position's MM.
    pub spread_to_mm: f64,
    /// Auto-deleveraging rule.
    pub adl: Adl,
    /// Whether a loss beyond the fund and ADL is spread over every positive balance; if not it
    /// stays as bad debt (Aave's deficit).
    pub socialise: bool,
    hash: [u8; 32],
}

/// The bundled profiles, by name: the peers of `../shared/research/systemic.md` section A.
pub const BUNDLED: [(&str, &str); 6] = [
    ("ballast", include_str!("../../../liquidations/ballast.toml")),
    ("deribit", include_str!("../../../liquidations/deribit.toml")),
    ("derive", include_str!("../../../liquidations/derive.toml")),
    ("dydx-v4", include_str!("../../../liquidations/dydx-v4.toml")),
    ("hyperliquid", include_str!("../../../liquidations/hyperliquid.toml")),
    ("aave-v3", include_str!("../../../liquidations/aave-v3.toml")),
];

impl Profile {
    /// A bundled profile by name.
    ///
    /// # Errors
    /// `UnknownName` listing the bundled names.
    pub fn bundled(name: &str) -> Result<Profile, Error> {
        let Some((_, text)) = BUNDLED.iter().find(|(n, _)| *n == name) else {
            let known: Vec<&str> = BUNDLED.iter().map(|(n, _)| *n).collect();
            return Err(Error::new("profile", ErrorKind::UnknownName(known.join(", "))));
        };
        Profile::from_toml(text)
    }

    /// Parses and validates a profile file.
    ///
    /// # Errors
    /// `Syntax` for text that is not TOML or a value of the wrong type, `UnknownKey` naming the
    /// key's path, `Missing` naming an absent key, `UnknownName` for an unknown selection,
    /// execution model or ADL rule, and `OutOfRange` naming the parameter and its rule.
    pub fn from_toml(text: &str) -> Result<Profile, Error> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            Error::new("profile", ErrorKind::Syntax(e.to_string()))
        })?;
        check_keys(&table)?;
        let get = |path: &'static str| value(&table, path);
        let number = |path: &'static str| get(path).and_then(|v| float(v, path));
        let word = |path: &'static str| {
            get(path)?.as_str().ok_or_else(|| syntax(path, "a string")).map(str::to_owned)
        };
        let execution = match word("execution.model")?.as_str() {
            "market" => Execution::Market,
            "dutch-auction" => Execution::DutchAuction {
                start_discount: number("execution.start_discount")?,
                fast_discount: number("execution.fast_discount")?,
                fast_secs: number("execution.fast_secs")?,
                slow_secs: number("execution.slow_secs")?,
            },
            _ => return Err(unknown("execution.model", &["market", "dutch-auction"])),
        };
        let selection =
            pick("step.selection", &word("step.selection")?, &Selection::ALL, Selection::name)?;
        let adl = pick("waterfall.adl", &word("waterfall.adl")?, &Adl::ALL, Adl::name)?;
        let socialise = get("waterfall.socialise")?
            .as_bool()
            .ok_or_else(|| syntax("waterfall.socialise", "true or false"))?;
        let mut profile = Profile {
            name: word("name")?,
            version: get("version")?
                .as_integer()
                .ok_or_else(|| syntax("version", "a whole number"))?,
            description: word("description")?,
            buffer_scale: number("target.buffer_scale")?,
            backstop_below_mm: number("target.backstop_below_mm")?,
            selection,
            position_portion_max: number("step.position_portion_max")?,
            notional_min_usd: number("step.notional_min_usd")?,
            account_notional_max_usd: number("step.account_notional_max_usd")?,
            close_factor: number("step.close_factor")?,
            full_close_health: number("step.full_close_health")?,
            full_close_below_usd: number("step.full_close_below_usd")?,
            leftover_min_usd: number("step.leftover_min_usd")?,
            round_secs: number("step.round_secs")?,
            execution,
            fund_fee_delta_one: number("penalty.fund_fee_delta_one")?,
            fund_fee_option: number("penalty.fund_fee_option")?,
            liquidator_fee: number("penalty.liquidator_fee")?,
            fund_fee_of_equity: number("penalty.fund_fee_of_equity")?,
            bankruptcy_adjustment: number("penalty.bankruptcy_adjustment")?,
            spread_to_mm: number("penalty.spread_to_mm")?,
            adl,
            socialise,
            hash: [0; 32],
        };
        // The auction's keys are required by the file format whatever the model, so that a
        // profile switched between models states every number; they are checked either way.
        for key in [
            "execution.start_discount",
            "execution.fast_discount",
            "execution.fast_secs",
            "execution.slow_secs",
        ] {
            number(key)?;
        }
        profile.check()?;
        profile.hash = Keccak256::digest(profile.canonical_text().as_bytes()).into();
        Ok(profile)
    }

    fn check(&self) -> Result<(), Error> {
        let within = |field: &str, value: f64, lo: f64, hi: f64| {
            if value.is_finite() && (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(Error::range(field, format!("{value} must be in [{lo}, {hi}]")))
            }
        };
        within("target.buffer_scale", self.buffer_scale, 1.0, 4.0)?;
        within("target.backstop_below_mm", self.backstop_below_mm, 0.0, 1.0)?;
        within("step.position_portion_max", self.position_portion_max, 1e-6, 1.0)?;
        within("step.notional_min_usd", self.notional_min_usd, 0.0, 1e12)?;
        within("step.account_notional_max_usd", self.account_notional_max_usd, 0.0, 1e15)?;
        within("step.close_factor", self.close_factor, 1e-6, 1.0)?;
        within("step.full_close_health", self.full_close_health, 0.0, 1.0)?;
        within("step.full_close_below_usd", self.full_close_below_usd, 0.0, 1e12)?;
        within("step.leftover_min_usd", self.leftover_min_usd, 0.0, 1e12)?;
        within("step.round_secs", self.round_secs, 1e-3, 86_400.0)?;
        if let Execution::DutchAuction { start_discount, fast_discount, fast_secs, slow_secs } =
            self.execution
        {
            within("execution.start_discount", start_discount, 0.0, 1.0)?;
            within("execution.fast_discount", fast_discount, start_discount, 1.0)?;
            within("execution.fast_secs", fast_secs, 1.0, 86_400.0)?;
            within("execution.slow_secs", slow_secs, 1.0, 30.0 * 86_400.0)?;
        }
        within("penalty.fund_fee_delta_one", self.fund_fee_delta_one, 0.0, 0.2)?;
        within("penalty.fund_fee_option", self.fund_fee_option, 0.0, 0.2)?;
        within("penalty.liquidator_fee", self.liquidator_fee, 0.0, 0.2)?;
        within("penalty.fund_fee_of_equity", self.fund_fee_of_equity, 0.0, 1.0)?;
        if self.bankruptcy_adjustment != 0.0 {
            within("penalty.bankruptcy_adjustment", self.bankruptcy_adjustment, 1.0, 100.0)?;
        }
        within("penalty.spread_to_mm", self.spread_to_mm, 0.0, 10.0)?;
        Ok(())
    }

    /// Every rule in a fixed order, numbers in their shortest round-trip form: two files that
    /// mean the same profile give the same text.
    #[must_use]
    pub fn canonical_text(&self) -> String {
        let mut out = String::new();
        let (model, auction) = match self.execution {
            Execution::Market => ("market", None),
            Execution::DutchAuction { start_discount, fast_discount, fast_secs, slow_secs } => {
                ("dutch-auction", Some([start_discount, fast_discount, fast_secs, slow_secs]))
            }
        };
        let _ = writeln!(out, "name={}\nversion={}", self.name, self.version);
        let numbers = [
            ("target.buffer_scale", self.buffer_scale),
            ("target.backstop_below_mm", self.backstop_below_mm),
            ("step.position_portion_max", self.position_portion_max),
            ("step.notional_min_usd", self.notional_min_usd),
            ("step.account_notional_max_usd", self.account_notional_max_usd),
            ("step.close_factor", self.close_factor),
            ("step.full_close_health", self.full_close_health),
            ("step.full_close_below_usd", self.full_close_below_usd),
            ("step.leftover_min_usd", self.leftover_min_usd),
            ("step.round_secs", self.round_secs),
            ("penalty.fund_fee_delta_one", self.fund_fee_delta_one),
            ("penalty.fund_fee_option", self.fund_fee_option),
            ("penalty.liquidator_fee", self.liquidator_fee),
            ("penalty.fund_fee_of_equity", self.fund_fee_of_equity),
            ("penalty.bankruptcy_adjustment", self.bankruptcy_adjustment),
            ("penalty.spread_to_mm", self.spread_to_mm),
        ];
        for (key, v) in numbers {
            let _ = writeln!(out, "{key}={v:?}");
        }
        let _ = writeln!(out, "step.selection={}\nexecution.model={model}", self.selection.name());
        if let Some(a) = auction {
            let _ = writeln!(out, "execution.auction={:?},{:?},{:?},{:?}", a[0], a[1], a[2], a[3]);
        }
        let _ = writeln!(
            out,
            "waterfall.adl={}\nwaterfall.socialise={}",
            self.adl.name(),
            self.socialise
        );
        out
    }

    /// keccak-256 of [`Profile::canonical_text`].
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        self.hash
    }

    /// The same rules under another selection (a report's side-by-side), rehashed.
    #[must_use]
    pub fn with_selection(&self, selection: Selection) -> Profile {
        let mut p = self.clone();
        p.selection = selection;
        p.hash = Keccak256::digest(p.canonical_text().as_bytes()).into();
        p
    }

    /// The auction's discount `secs` after it started (Derive's schedule), or `None` for a sale
    /// to the market.
    #[must_use]
    pub fn discount_at(&self, secs: f64) -> Option<f64> {
        match self.execution {
            Execution::Market => None,
            Execution::DutchAuction { start_discount, fast_discount, fast_secs, slow_secs } => {
                Some(crate::peers::derive::discount(
                    secs,
                    start_discount,
                    fast_discount,
                    fast_secs,
                    slow_secs,
                ))
            }
        }
    }
}

fn syntax(field: &str, expected: &str) -> Error {
    Error::new(field, ErrorKind::Syntax(expected.to_owned()))
}

fn unknown(field: &str, known: &[&str]) -> Error {
    Error::new(field, ErrorKind::UnknownName(known.join(", ")))
}

fn pick<T: Copy>(
    field: &str,
    word: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<T, Error> {
    all.iter().copied().find(|t| name(*t) == word).ok_or_else(|| {
        let known: Vec<&str> = all.iter().map(|t| name(*t)).collect();
        unknown(field, &known)
    })
}

/// Every key of the table is one of [`KEYS`], and every section is a table.
fn check_keys(table: &toml::Table) -> Result<(), Error> {
    for (key, v) in table {
        let is_section = KEYS.iter().any(|k| k.split_once('.').is_some_and(|(s, _)| s == key));
        if !is_section {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::new("profile", ErrorKind::UnknownKey(key.clone())));
            }
            continue;
        }
        let toml::Value::Table(inner) = v else {
            return Err(syntax("profile", &format!("[{key}] to be a table")));
        };
        if let Some(extra) = inner.keys().find(|k| !KEYS.contains(&format!("{key}.{k}").as_str())) {
            return Err(Error::new("profile", ErrorKind::UnknownKey(format!("{key}.{extra}"))));
        }
    }
    Ok(())
}

fn value<'t>(table: &'t toml::Table, path: &'static str) -> Result<&'t toml::Value, Error> {
    let found = match path.split_once('.') {
        None => table.get(path),
        Some((section, key)) => table.get(section).and_then(|v| v.as_table()?.get(key)),
    };
    found.ok_or_else(|| Error::new(path, ErrorKind::Missing))
}

fn float(v: &toml::Value, field: &str) -> Result<f64, Error> {
    match v {
        toml::Value::Float(x) => Ok(*x),
        toml::Value::Integer(n) => Ok(*n as f64),
        _ => Err(syntax(field, "a number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_profile_reads_and_hashes_apart() {
        let mut hashes = Vec::new();
        for (name, _) in BUNDLED {
            let p = Profile::bundled(name).unwrap();
            assert_eq!(p.name, name);
            hashes.push(p.hash());
        }
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), BUNDLED.len());
    }

    #[test]
    fn comments_and_number_spelling_do_not_change_the_hash() {
        let text = BUNDLED[2].1;
        let respelled =
            format!("# a comment\n{}", text.replace("round_secs = 900.0", "round_secs = 900"));
        assert_ne!(respelled, text);
        assert_eq!(
            Profile::from_toml(&respelled).unwrap().hash(),
            Profile::from_toml(text).unwrap().hash()
        );
    }

    #[test]
    fn bad_profiles_are_named_by_key() {
        let text = BUNDLED[0].1;
        let e = Profile::bundled("bitmex").unwrap_err();
        assert!(matches!(e.kind, ErrorKind::UnknownName(ref k) if k.contains("dydx-v4")));
        let e = Profile::from_toml(&text.replace("buffer_scale = 1.2", "buffer_scale = 0.5"))
            .unwrap_err();
        assert_eq!(e.field, "target.buffer_scale");
        let e = Profile::from_toml(&text.replace("[target]", "[target]\nbufer = 1")).unwrap_err();
        assert_eq!(e.kind, ErrorKind::UnknownKey("target.bufer".into()));
        let e =
            Profile::from_toml(&text.replace("adl = \"ranked\"", "adl = \"queue\"")).unwrap_err();
        assert_eq!(e.field, "waterfall.adl");
        let e = Profile::from_toml(&text.replace("round_secs = 60.0\n", "")).unwrap_err();
        assert_eq!((e.field.as_str(), e.kind), ("step.round_secs", ErrorKind::Missing));
    }
}

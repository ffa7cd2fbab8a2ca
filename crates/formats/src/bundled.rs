//! The methodology profiles and the sample market that ship with Ballast, embedded in the
//! binary.

use market::MarketSnapshot;

use crate::Error;
use crate::market::MarketDocument;
use crate::methodology::Profile;

/// The bundled sample market's JSON text (`examples/market.json`): BTC and ETH with SVI
/// surfaces over five expiries, quotes and volumes. The service starts on it, and the CLI uses
/// it when no market is given.
pub const SAMPLE_MARKET_JSON: &str = include_str!("../../../examples/market.json");

/// The bundled replay surface model's TOML text (`examples/replay/surface.toml`): how
/// `ballast backtest`, `ballast calibrate` and the service's backtests turn price history into
/// implied-vol surfaces.
pub const REPLAY_SURFACE_TOML: &str = include_str!("../../../examples/replay/surface.toml");

/// The bundled sample market.
///
/// # Errors
/// Never for the file as shipped (a test asserts it); as [`MarketDocument::to_snapshot`].
pub fn sample_market() -> Result<MarketSnapshot, Error> {
    MarketDocument::from_json(SAMPLE_MARKET_JSON)?.to_snapshot()
}

/// The standard risk vector's methodology text (`netting/standard-v1.toml`): the scenario set
/// every venue expresses its accounts' P&L on for cross-venue netting.
pub const STANDARD_RISK_VECTOR_TOML: &str = include_str!("../../../netting/standard-v1.toml");

/// The bundled standard risk vector, with micro-dollar cells.
///
/// # Errors
/// Never for the file as shipped (a test nets with it); as [`Profile::from_toml`].
pub fn standard_set() -> Result<netting::StandardSet, Error> {
    let profile = Profile::from_toml(STANDARD_RISK_VECTOR_TOML)?;
    let hash = profile.hash();
    let (name, version) = (profile.name().to_owned(), profile.version().to_owned());
    let Profile::Portfolio(methodology) = profile else {
        return Err(Error::invalid("standard", "the standard set is a portfolio methodology"));
    };
    let engine =
        margin::Engine::new(*methodology).map_err(|e| Error::invalid("standard", e.to_string()))?;
    netting::StandardSet::new(engine, &name, &version, hash, netting::QUANTUM_DEFAULT_USD)
        .map_err(|e| Error::invalid("standard", e.to_string()))
}

/// (name, TOML text) of every bundled profile.
pub const BUNDLED: [(&str, &str); 7] = [
    ("ballast-pm", include_str!("../../../methodologies/ballast-pm.toml")),
    ("deribit-standard", include_str!("../../../methodologies/deribit-standard.toml")),
    ("derive-pmrm2", include_str!("../../../methodologies/derive-pmrm2.toml")),
    ("span", include_str!("../../../methodologies/span.toml")),
    ("deribit-pm", include_str!("../../../methodologies/deribit-pm.toml")),
    ("deribit-pm-segregated", include_str!("../../../methodologies/deribit-pm-segregated.toml")),
    ("tims", include_str!("../../../methodologies/tims.toml")),
];

/// The TOML text of the bundled profile `name`.
#[must_use]
pub fn bundled_text(name: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, text)| *text)
}

/// The bundled profile `name`, parsed.
///
/// # Errors
/// `Missing` for an unknown name (listing the known ones); parse errors would be a bug, and the
/// tests parse every bundled file.
pub fn bundled(name: &str) -> Result<Profile, Error> {
    let text = bundled_text(name).ok_or_else(|| {
        let known: Vec<&str> = BUNDLED.iter().map(|(n, _)| *n).collect();
        Error::missing(
            "methodology",
            format!("a bundled methodology named {name:?} (known: {})", known.join(", ")),
        )
    })?;
    Profile::from_toml(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::methodology::hash_hex;

    #[test]
    fn every_bundled_profile_parses_and_hashes() {
        for (name, text) in BUNDLED {
            let profile = Profile::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(profile.name(), name);
            assert_eq!(hash_hex(&profile.hash()).len(), 66);
        }
        assert!(bundled("nope").is_err());
    }

    #[test]
    fn hash_ignores_comments_order_and_written_defaults() {
        let text = bundled_text("ballast-pm").unwrap();
        let original = Profile::from_toml(text).unwrap();
        // Comments removed and two keys left at their defaults dropped: the same methodology.
        let stripped: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter(|l| l.trim() != "gain_fraction = 1.0" && l.trim() != "min_vol_up = 0.0")
            .collect();
        assert!(stripped.len() + 2 < text.lines().count());
        assert_eq!(Profile::from_toml(&stripped.join("\n")).unwrap().hash(), original.hash());
        // Any real change changes the hash.
        let changed = text.replacen("up = 0.5", "up = 0.55", 1);
        assert_ne!(Profile::from_toml(&changed).unwrap().hash(), original.hash());
    }

    #[test]
    fn rejects_misspelt_and_misplaced_keys() {
        let text = bundled_text("ballast-pm").unwrap();
        let typo = text.replacen("impact_coefficient", "impact_coeficient", 1);
        assert!(Profile::from_toml(&typo).is_err());
        let misplaced = text.replacen("rate = 0.05", "rate = 0.05\nfraction = 0.1", 1);
        let err = Profile::from_toml(&misplaced).unwrap_err();
        assert_eq!(err.location, "add_ons[1].fraction", "{err}");
        let bad_value = text.replacen("mm_loss_factor = 0.8", "mm_loss_factor = -0.8", 1);
        assert_eq!(
            Profile::from_toml(&bad_value).unwrap_err().location,
            "requirement.mm_loss_factor"
        );
    }
}

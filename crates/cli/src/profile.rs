//! Loading methodologies and markets: a bundled name or a file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use formats::market::MarketDocument;
use formats::methodology::Profile;
use margin::standard::StandardMargin;
use market::MarketSnapshot;
use methodology::Methodology;

use crate::input::read_text;

/// A bundled profile by name, or a TOML file by path.
pub fn load_profile(name_or_path: &str) -> Result<Profile> {
    let path = Path::new(name_or_path);
    if path.is_file() {
        let text = read_text(Some(path))?;
        return Profile::from_toml(&text).with_context(|| format!("in {}", path.display()));
    }
    Ok(formats::bundled::bundled(name_or_path)?)
}

/// A portfolio methodology by name or path.
pub fn load_methodology(name_or_path: &str) -> Result<Methodology> {
    match load_profile(name_or_path)? {
        Profile::Portfolio(m) => Ok(*m),
        Profile::PerPosition(s) => {
            Err(anyhow!("{} is a per-position methodology; use it as --baseline", s.name))
        }
    }
}

/// A per-position baseline by name or path.
pub fn load_baseline(name_or_path: &str) -> Result<StandardMargin> {
    match load_profile(name_or_path)? {
        Profile::PerPosition(s) => Ok(s),
        Profile::Portfolio(m) => {
            Err(anyhow!("{} is a portfolio methodology, not a per-position baseline", m.name))
        }
    }
}

/// The market in `path`, or the bundled sample market.
pub fn load_market(path: Option<&PathBuf>) -> Result<Arc<MarketSnapshot>> {
    let Some(path) = path else { return Ok(Arc::new(formats::bundled::sample_market()?)) };
    let text = read_text(Some(path))?;
    let document =
        MarketDocument::from_json(&text).with_context(|| format!("in {}", path.display()))?;
    let snapshot = document.to_snapshot().with_context(|| format!("in {}", path.display()))?;
    Ok(Arc::new(snapshot))
}

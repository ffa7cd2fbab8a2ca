//! What an empty database starts with, so that the first `ballast serve` shows a working
//! system: every bundled portfolio methodology (Ballast PM, the default, and the peers' profiles,
//! so any account can be moved to one), the bundled sample market and a few accounts.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dto::{AmountInput, CreateAccount, PositionInput};
use crate::error::Error;
use crate::model::MethodologyEntry;
use crate::state::Service;
use crate::writes::{
    DEFAULT_METHODOLOGY, market_plan, methodology_plan, parse_market, plan_create,
};

/// The sample accounts: (id, positions, balances).
type Sample =
    (&'static str, &'static [(&'static str, f64)], &'static [(&'static str, &'static str)]);

const SAMPLES: [Sample; 4] = [
    (
        "hedged-book",
        &[
            ("BTC-25DEC26-100000-C", -25.0),
            ("BTC-25DEC26-90000-P", -20.0),
            ("BTC-25DEC26-80000-P", 20.0),
            ("BTC-29JAN27-110000-C", 10.0),
            ("BTC-PERPETUAL", 600_000.0),
            ("ETH-26MAR27-3000-P", -150.0),
            ("ETH-PERPETUAL", -120_000.0),
        ],
        &[("BTC", "12.5"), ("USDC", "1500000")],
    ),
    (
        "short-strangle",
        &[("BTC-25DEC26-120000-C", -40.0), ("BTC-25DEC26-75000-P", -40.0)],
        &[("BTC", "6")],
    ),
    ("eth-puts", &[("ETH-26MAR27-3000-P", 200.0)], &[("USDC", "60000")]),
    ("perp-trader", &[("BTC-PERPETUAL", 2_000_000.0)], &[("USDC", "300000")]),
];

/// Seeds what is missing: the bundled portfolio methodologies (each one not stored under its
/// name) and the market always, the accounts when asked and the database has none.
///
/// # Errors
/// As the writes.
pub async fn seed(service: &Arc<Service>, sample_accounts: bool) -> Result<(), Error> {
    let (has_market, has_accounts) = {
        let model = service.model();
        (model.market.is_some(), !model.accounts.is_empty())
    };
    for (name, text) in formats::bundled::BUNDLED {
        let stored = service.model().methodologies.values().any(|m| m.name == name);
        let portfolio = matches!(
            formats::methodology::Profile::from_toml(text),
            Ok(formats::methodology::Profile::Portfolio(_))
        );
        if stored || !portfolio {
            continue;
        }
        let entry = Arc::new(MethodologyEntry::parse(text)?);
        service.write(None, |model| Ok(methodology_plan(model, &entry))).await?;
    }
    debug_assert!(
        service.model().methodologies.values().any(|m| m.name == DEFAULT_METHODOLOGY),
        "Invariant: the default methodology is bundled"
    );
    if !has_market {
        let parsed = parse_market(formats::bundled::SAMPLE_MARKET_JSON)?;
        service.write(None, |model| Ok(market_plan(model, &parsed))).await?;
    }
    if sample_accounts && !has_accounts {
        for (id, positions, balances) in SAMPLES {
            let request = CreateAccount {
                id: id.to_owned(),
                methodology: None,
                positions: positions
                    .iter()
                    .map(|(i, s)| PositionInput {
                        instrument: (*i).to_owned(),
                        size: *s,
                        entry: None,
                        funding: None,
                    })
                    .collect(),
                balances: balances
                    .iter()
                    .map(|(c, a)| ((*c).to_owned(), AmountInput::Text((*a).to_owned())))
                    .collect::<BTreeMap<_, _>>(),
            };
            service.write(None, |model| plan_create(model, &request)).await?;
        }
    }
    Ok(())
}

//! Keccak-256 digests of every figure of a refresh, bit for bit: two builds, machines or thread
//! counts that print the same digest computed the same margins. The golden tests pin them.

use margin::{PricedMarket, Refresh, Worst};

/// The digest of `refresh` on `priced`: per line the account index, the currency, the eight
/// figures' bits and the worst scenario (a competing contingency as the index one past its
/// underlying's scenarios, as the leaf numbers it); then each refused account's index and
/// error kind. A refresh without refusals digests exactly as `ballast bench` has since its
/// digest was introduced.
#[must_use]
pub fn refresh(priced: &PricedMarket, refresh: &Refresh) -> String {
    let mut bytes = Vec::with_capacity(refresh.lines().len() * 96);
    for line in refresh.lines() {
        let f = &line.figures;
        bytes.extend_from_slice(&(line.account as u64).to_le_bytes());
        bytes.extend_from_slice(f.currency.as_str().as_bytes());
        let values = [
            f.equity,
            f.scan_loss,
            f.add_ons_im,
            f.add_ons_mm,
            f.haircut_im,
            f.haircut_mm,
            f.initial_margin,
            f.maintenance_margin,
        ];
        for v in values {
            bytes.extend_from_slice(&v.to_bits().to_le_bytes());
        }
        if let Some(worst) = f.worst {
            let underlying = worst.underlying();
            let index = match worst {
                Worst::Scenario { index, .. } => index,
                Worst::Contingency { .. } => {
                    let Some(set) = priced.arrays().scenarios(underlying) else {
                        panic!("Invariant: a contingency's underlying has a scenario set")
                    };
                    set.len()
                }
            };
            bytes.extend_from_slice(underlying.as_str().as_bytes());
            bytes.extend_from_slice(&(index as u64).to_le_bytes());
        }
    }
    for (account, error) in refresh.failures() {
        bytes.extend_from_slice(&(*account as u64).to_le_bytes());
        bytes.extend_from_slice(error.kind.to_string().as_bytes());
    }
    oracle::keccak256(&bytes).to_string()
}

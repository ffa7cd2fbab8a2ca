//! Account health and breach status, decided on the same rounded money the oracle attests:
//! requirements rounded up, equity rounded down ([`Quantised`]). A float comparison could call an
//! account healthy whose attested equity is a unit below its attested MM; this cannot.

use std::cmp::Ordering;

use crate::Error;
use crate::figures::CurrencyFigures;
use crate::report::Quantised;

/// Margin state of an account, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    /// Equity covers IM.
    Healthy,
    /// Equity below IM: no new risk.
    ImBreach,
    /// Equity below MM: liquidation.
    MmBreach,
    /// The engine could not value the account.
    Unpriced,
}

impl Status {
    /// The stable wire name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Status::Healthy => "healthy",
            Status::ImBreach => "im-breach",
            Status::MmBreach => "mm-breach",
            Status::Unpriced => "unpriced",
        }
    }
}

/// An account's health: the smallest equity / MM over its currencies, and its status.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Health {
    /// Smallest equity / MM over the currencies, on the rounded amounts: infinite without any
    /// MM and non-negative equity, 0 for negative equity without MM, NaN when unpriced.
    pub ratio: f64,
    /// The worst status over the currencies.
    pub status: Status,
}

impl Health {
    /// The health of an account the engine could not value.
    pub const UNPRICED: Health = Health { ratio: f64::NAN, status: Status::Unpriced };

    /// The health of an account with `figures` (one per currency).
    ///
    /// # Errors
    /// As [`Quantised::of`]: a figure beyond the range of money.
    pub fn of<'a>(figures: impl IntoIterator<Item = &'a CurrencyFigures>) -> Result<Health, Error> {
        let mut health = Health::CLEAR;
        for f in figures {
            health.add(&Quantised::of(f)?);
        }
        Ok(health)
    }

    /// The health of an account whose figures are already rounded as attested.
    #[must_use]
    pub fn of_quantised(quantised: &[Quantised]) -> Health {
        let mut health = Health::CLEAR;
        for q in quantised {
            health.add(q);
        }
        health
    }

    /// No currency seen yet: unbounded health.
    const CLEAR: Health = Health { ratio: f64::INFINITY, status: Status::Healthy };

    /// Takes one more currency's rounded figures into account.
    fn add(&mut self, q: &Quantised) {
        let (equity, mm, im) = (q.equity.raw(), q.maintenance_margin.raw(), q.initial_margin.raw());
        if mm > 0 {
            self.ratio = self.ratio.min(equity as f64 / mm as f64);
        } else if equity < 0 {
            self.ratio = self.ratio.min(0.0);
        }
        let now = match (equity.cmp(&mm), equity.cmp(&im)) {
            (Ordering::Less, _) => Status::MmBreach,
            (_, Ordering::Less) => Status::ImBreach,
            _ => Status::Healthy,
        };
        self.status = self.status.max(now);
    }
}

#[cfg(test)]
mod tests {
    use basics::Currency;

    use super::{Health, Status};
    use crate::figures::CurrencyFigures;

    fn figures(equity: f64, im: f64, mm: f64) -> CurrencyFigures {
        CurrencyFigures {
            equity,
            initial_margin: im,
            maintenance_margin: mm,
            ..CurrencyFigures::empty(Currency::USD)
        }
    }

    /// Equity one float step above MM still breaches once both are rounded as attested (MM up,
    /// equity down, to 1e-18): 0.001 is 0.001000000000000000020817 as a float, so MM rounds up
    /// to 0.001000000000000001 while the next float, 0.001 + 2.2e-19, rounds down to 0.001.
    #[test]
    fn status_is_decided_on_rounded_money() {
        let mm = 0.001_f64;
        let equity = f64::from_bits(mm.to_bits() + 1);
        assert!(equity > mm);
        let health = Health::of(&[figures(equity, 0.002, mm)]).unwrap();
        assert_eq!(health.status, Status::MmBreach);
        let clear = Health::of(&[figures(2_000.0, 1_500.0, 1_000.0)]).unwrap();
        assert_eq!(clear, Health { ratio: 2.0, status: Status::Healthy });
        let im = Health::of(&[figures(1_200.0, 1_500.0, 1_000.0)]).unwrap();
        assert_eq!(im.status, Status::ImBreach);
        let mm = Health::of(&[figures(900.0, 1_500.0, 1_000.0)]).unwrap();
        assert_eq!(mm, Health { ratio: 0.9, status: Status::MmBreach });
        // From figures already rounded (a report's), the same health.
        let lines = [figures(900.0, 1_500.0, 1_000.0), figures(equity, 0.002, 0.001)];
        let rounded: Vec<_> =
            lines.iter().map(|f| crate::report::Quantised::of(f).unwrap()).collect();
        assert_eq!(Health::of_quantised(&rounded), Health::of(&lines).unwrap());
    }

    /// No requirement: infinite health, unless equity is negative (then 0 and a breach).
    #[test]
    fn no_requirement_means_infinite_health_unless_in_debt() {
        let free = Health::of(&[figures(10.0, 0.0, 0.0)]).unwrap();
        assert_eq!(free, Health { ratio: f64::INFINITY, status: Status::Healthy });
        let debt = Health::of(&[figures(-10.0, 0.0, 0.0)]).unwrap();
        assert_eq!(debt, Health { ratio: 0.0, status: Status::MmBreach });
        assert!(Health::of(&[figures(f64::MAX, 0.0, 0.0)]).is_err());
    }
}

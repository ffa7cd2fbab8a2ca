//! The independent auditor: after every simulated step it checks the exchange from its raw
//! state and the step's event log, by its own path through the engine (each account margined
//! alone, not the simulator's bulk refresh), and fails the run on the first violation:
//!
//! - **money**: every cash balance plus the fund equals the total at the start, exactly;
//! - **lots**: every contract's lots sum to zero over the accounts;
//! - **flags**: no account is below MM without being in liquidation;
//! - **fills**: a liquidation's market sale is no better for the account than the mark and
//!   within its order's limit, an auction, backstop or deleveraging fill is at the mark, and an
//!   auction's discount is the profile's schedule at the bid's time, the payment no more than
//!   that discount of its base (rounded up);
//! - **transfers**: every amount moved is positive.

use std::fmt;

use basics::Currency;
use margin::health::{Health, Status};
use margin::{AccountBook, PricedMarket, ResolvedAccount};
use rayon::prelude::*;

use crate::cash;
use crate::profile::Profile;
use crate::sim::{Event, Exchange};

/// A broken rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Violation {
    /// The rule (`money`, `lots`, `flags`, `fills`, `transfers`).
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.rule, self.detail)
    }
}

/// The auditor of one run.
#[derive(Debug, Clone)]
pub struct Auditor {
    profile: Profile,
}

fn broken(rule: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { rule, detail })
}

impl Auditor {
    /// An auditor holding the run's profile (for the auction schedule).
    #[must_use]
    pub fn new(profile: &Profile) -> Auditor {
        Auditor { profile: profile.clone() }
    }

    /// Checks `exchange` after a step on `priced` whose events are `events`.
    ///
    /// # Errors
    /// The first violation found.
    pub fn check(
        &self,
        exchange: &Exchange,
        priced: &PricedMarket,
        events: &[Event],
    ) -> Result<(), Violation> {
        if exchange.money() != exchange.total {
            return broken(
                "money",
                format!("{} != {} (1e-18 USD)", exchange.money(), exchange.total),
            );
        }
        for i in 0..exchange.universe.len() {
            let sum: i64 = exchange
                .accounts
                .iter()
                .map(|a| a.lots.iter().filter(|l| l.0 == i).map(|l| l.1).sum::<i64>())
                .sum();
            if sum != 0 {
                return broken("lots", format!("{} sums to {sum} lots", exchange.universe[i]));
            }
        }
        for event in events {
            self.event(event)?;
        }
        Auditor::flags(exchange, priced)
    }

    fn event(&self, event: &Event) -> Result<(), Violation> {
        match *event {
            Event::Fill {
                seller,
                buyer,
                ticks,
                kind,
                liquidated: Some(l),
                limit_ticks,
                mark_ticks,
                ..
            } => {
                let sells = seller == l;
                if kind == 'm' {
                    let worse_than_mark =
                        if sells { ticks > mark_ticks } else { ticks < mark_ticks };
                    let outside = limit_ticks
                        .is_some_and(|lim| if sells { ticks < lim } else { ticks > lim });
                    if worse_than_mark || outside {
                        return broken(
                            "fills",
                            format!(
                                "market fill at {ticks} (mark {mark_ticks}, limit {limit_ticks:?}) \
                                 for account {l}"
                            ),
                        );
                    }
                } else if ticks != mark_ticks {
                    return broken(
                        "fills",
                        format!("{kind} fill at {ticks}, mark {mark_ticks}, account {l}"),
                    );
                }
                if buyer == seller {
                    return broken("fills", format!("account {l} traded with itself"));
                }
            }
            Event::Auction { account, secs, discount, base, paid, .. } => {
                let expected = self.profile.discount_at(secs);
                if expected != Some(discount) {
                    return broken(
                        "fills",
                        format!(
                            "auction of {account}: discount {discount} at {secs} s, \
                             schedule {expected:?}"
                        ),
                    );
                }
                let most = cash::scale(base, discount.clamp(0.0, 1.0), basics::Rounding::Up);
                if paid < 0 || paid > most {
                    return broken(
                        "fills",
                        format!("auction of {account} paid {paid}, at most {most}"),
                    );
                }
            }
            Event::Transfer { amount, why, .. } if amount <= 0 => {
                return broken("transfers", format!("{why} of {amount}"));
            }
            _ => {}
        }
        Ok(())
    }

    /// Every account margined afresh from its raw lots and cash, in one bulk refresh of a book
    /// the auditor resolves itself (not the simulator's).
    fn flags(exchange: &Exchange, priced: &PricedMarket) -> Result<(), Violation> {
        let mut book = AccountBook::default();
        let mut resolved = ResolvedAccount::default();
        for (a, account) in exchange.accounts.iter().enumerate() {
            let balances = [(Currency::USDC, cash::to_f64(account.cash))];
            if let Err(e) = priced.resolve_into(exchange.positions(a), balances, &mut resolved) {
                return broken("flags", format!("account {a} cannot be resolved: {e}"));
            }
            book.push(&resolved);
        }
        let refresh = priced.refresh(&book);
        let unflagged = (0..exchange.accounts.len()).into_par_iter().find_first(|&a| {
            let status = refresh.account(a).ok().and_then(|lines| {
                let figures: Vec<_> = lines.iter().map(|l| l.figures).collect();
                Health::of(&figures).ok()
            });
            let breached =
                status.is_none_or(|h| matches!(h.status, Status::MmBreach | Status::Unpriced));
            breached && !exchange.accounts[a].in_liquidation
        });
        match unflagged {
            Some(a) => broken(
                "flags",
                format!("account {a} is below MM (or unpriced) and not in liquidation"),
            ),
            None => Ok(()),
        }
    }
}

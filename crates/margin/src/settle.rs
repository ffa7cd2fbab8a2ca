//! Settlement: futures' variation margin into balances at the engine's mark, and expired
//! contracts into balances at their settlement price.
//!
//! A future's P&L counts in equity from its entry price whether or not it has been settled
//! ([`crate::PricedMarket::account_into`] accrues it as cash of its settlement currency), so
//! settling at the mark changes no figure: it moves the P&L from the position into the balance
//! and resets the entry to the mark, as a venue's periodic settlement does. An expired option
//! pays its intrinsic value at the settlement price the market carries for its expiry, an
//! expired future its P&L from its entry to that price; both leave the portfolio. Every cash
//! amount is the decimal its float prints as, rounded down to 1e-18 (towards −∞).
//!
//! Under a methodology that accepts no debt, variation margin never takes a balance below zero:
//! the balance pays what it holds and the rest of the loss stays in the position (its entry
//! moves so that its P&L is exactly the unpaid part), so equity and every figure are the same
//! as before the settlement. An expired contract cannot keep a loss; its cash is settled whole.
//!
//! A perpetual held with a funding index pays the funding accrued since (`product::funding_due`
//! at the market's index) in the same settlement, as its own flow, and is then paid up to the
//! market's index; like variation margin it already counted in equity, so no figure changes,
//! and under a methodology without debt the part the balance cannot pay stays accrued.

use basics::{Money, Rounding};
use product::{Instrument, InstrumentKind, OptionRight, Portfolio, Position, Settlement};

use crate::priced::PricedMarket;
use crate::{Error, ErrorKind};

/// Why cash moved in a settlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowKind {
    /// A future's P&L from its entry to the mark (the position stays, entered at the mark).
    Variation,
    /// A perpetual's funding since it was last paid (the position stays, paid up to the
    /// market's funding index).
    Funding,
    /// An expired contract settled at its settlement price (the position is closed).
    Expiry,
}

impl FlowKind {
    /// The kind's name in reports and the API: `variation`, `funding` or `expiry`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            FlowKind::Variation => "variation",
            FlowKind::Funding => "funding",
            FlowKind::Expiry => "expiry",
        }
    }
}

/// One cash movement of a settlement.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flow {
    /// The contract settled.
    pub instrument: Instrument,
    /// Variation margin or expiry.
    pub kind: FlowKind,
    /// The size settled.
    pub size: f64,
    /// The price settled at: the mark, or the expiry's settlement price (USD per coin); for
    /// funding, the funding index paid up to.
    pub price: f64,
    /// Cash credited (or debited, negative) in the settlement currency.
    pub amount: Money,
}

/// A portfolio after settlement, and what moved.
#[derive(Debug, Clone, PartialEq)]
pub struct Settled {
    /// Positions and balances after settlement.
    pub portfolio: Portfolio,
    /// The cash flows, in the portfolio's position order.
    pub flows: Vec<Flow>,
}

impl PricedMarket {
    /// The row of `instrument` in the universe priced, or `UnknownInstrument` naming it.
    fn row_of(&self, instrument: &Instrument) -> Result<usize, Error> {
        (self.arrays.position(instrument))
            .ok_or_else(|| Error::new(instrument.to_string(), ErrorKind::UnknownInstrument))
    }

    /// The price this market values one unit of `instrument` at ([`crate::InstrumentInfo::mark`]).
    ///
    /// # Errors
    /// `UnknownInstrument` when the instrument is not in the universe priced.
    pub fn mark(&self, instrument: &Instrument) -> Result<f64, Error> {
        let row = self.row_of(instrument)?;
        Ok(self.arrays.info(row).mark)
    }

    /// The price a trade of `size` of `instrument` pays crossing half the bid/ask spread from the
    /// mark: above it for a buy, below it (never below zero) for a sale. The half-spread is the
    /// methodology's liquidation-friction one, the quoted bid/ask where the market has them and
    /// its default otherwise (none without a friction add-on, so the mark); a delta-one
    /// contract's moves the price by the same fraction of the mark as of its notional.
    ///
    /// # Errors
    /// `UnknownInstrument` outside the universe priced; `MissingMarketData` for an option whose
    /// settlement currency has no USD price.
    pub fn crossing_price(&self, instrument: &Instrument, size: f64) -> Result<f64, Error> {
        let row = self.row_of(instrument)?;
        let (info, half_usd) = (self.arrays.info(row), self.facts[row].half_spread_usd);
        let half = if info.strike.is_some() {
            let currency = instrument.settlement_currency();
            let usd = self.market.usd_price(currency).map_err(|e| {
                Error::new(instrument.to_string(), ErrorKind::MissingMarketData(e.to_string()))
            })?;
            half_usd / usd
        } else if info.notional_usd > 0.0 {
            info.mark * half_usd / info.notional_usd
        } else {
            0.0
        };
        let price = if size >= 0.0 { info.mark + half } else { info.mark - half };
        Ok(price.max(f64::MIN_POSITIVE))
    }

    /// The cumulative funding index this market quotes for `instrument` (a perpetual), if any.
    ///
    /// # Errors
    /// `UnknownInstrument` when the instrument is not in the universe priced.
    pub fn funding_index(&self, instrument: &Instrument) -> Result<Option<f64>, Error> {
        let row = self.row_of(instrument)?;
        Ok(self.arrays.info(row).funding_index)
    }

    /// `portfolio` with every future and perpetual held without an entry price entered at this
    /// market's mark, and every perpetual without a funding index paid up to this market's (when
    /// it quotes one):
    /// the same figures here, and a basis its P&L and funding count from once the market moves
    /// (a what-if, a liquidation price, a trade).
    ///
    /// # Errors
    /// `UnknownInstrument` for such a future outside the universe priced.
    pub fn entered(&self, portfolio: &Portfolio) -> Result<Portfolio, Error> {
        let mut positions = portfolio.positions().to_vec();
        for p in positions.iter_mut().filter(|p| !p.instrument.is_option()) {
            if p.entry.is_none() {
                p.entry = Some(self.mark(&p.instrument)?);
            }
            if p.funding.is_none() && p.instrument.is_perpetual() {
                p.funding = self.funding_index(&p.instrument)?;
            }
        }
        let balances: Vec<Money> = portfolio.balances().values().copied().collect();
        Ok(Portfolio::new(positions, &balances)?)
    }

    /// Settles `portfolio` on this market: each future's variation margin at the mark, each
    /// contract expired at the valuation time at its expiry's settlement price.
    ///
    /// # Errors
    /// `Expired` naming `positions.<instrument>` when the market carries no settlement price
    /// for an expired contract; `Portfolio` naming `positions.<instrument>.entry` for an
    /// expired future without an entry price (its P&L since the last settlement is unknown);
    /// `UnknownInstrument` for a live future outside the universe priced; `OutOfRange` for cash
    /// beyond the range of money.
    pub fn settle(&self, portfolio: &Portfolio) -> Result<Settled, Error> {
        let valuation = self.market.valuation();
        let mut balances = portfolio.balances().clone();
        let mut positions = Vec::with_capacity(portfolio.positions().len());
        let mut flows = Vec::new();
        for p in portfolio.positions() {
            let mut p = *p;
            if p.instrument.is_perpetual() {
                let keeps_unpaid = !self.methodology().requirement.allow_debt;
                self.pay_funding(&mut p, keeps_unpaid, &mut balances, &mut flows)?;
            }
            let p = &p;
            let currency = p.instrument.settlement_currency();
            let field = || format!("positions.{}", p.instrument);
            let held = balances.get(&currency).copied().unwrap_or(Money::zero(currency));
            let expired = p.instrument.expiry().is_some_and(|expiry| expiry <= valuation);
            let (kind, price, amount) = if expired {
                let (price, cash) = self.at_expiry(p)?;
                (FlowKind::Expiry, price, money(cash, currency, &field)?)
            } else if p.instrument.is_option() {
                positions.push(*p);
                continue;
            } else {
                let mark = self.mark(&p.instrument)?;
                let Some(entry) = p.entry else {
                    positions.push(Position { entry: Some(mark), ..*p });
                    continue;
                };
                let pnl = product::delta_one_pnl(&p.instrument, p.size, entry, mark);
                let mut amount = money(pnl, currency, &field)?;
                let mut entered = mark;
                let short =
                    payable(held, amount).filter(|_| !self.methodology().requirement.allow_debt);
                if let Some(paid) = short {
                    // Pays what the balance holds; the unpaid loss stays in the position.
                    amount = paid;
                    let unpaid = pnl - amount.to_f64();
                    entered = entry_for(&p.instrument, p.size, mark, unpaid);
                }
                positions.push(Position { entry: Some(entered), ..*p });
                (FlowKind::Variation, mark, amount)
            };
            let after = held
                .checked_add(amount)
                .map_err(|e| Error::new(field(), ErrorKind::OutOfRange(e.to_string())))?;
            balances.insert(currency, after);
            flows.push(Flow { instrument: p.instrument, kind, size: p.size, price, amount });
        }
        let balances: Vec<Money> = balances.into_values().collect();
        Ok(Settled { portfolio: Portfolio::new(positions, &balances)?, flows })
    }

    /// Pays perpetual `p`'s funding accrued since its index into `balances` (with `keeps_unpaid`,
    /// what the balance holds of a loss, the rest staying accrued) and moves its index up to
    /// what was paid.
    fn pay_funding(
        &self,
        p: &mut Position,
        keeps_unpaid: bool,
        balances: &mut std::collections::BTreeMap<basics::Currency, Money>,
        flows: &mut Vec<Flow>,
    ) -> Result<(), Error> {
        let quoted = self.funding_index(&p.instrument)?;
        let (Some(paid), Some(index)) = (p.funding, quoted) else {
            // Not paid up to any index yet: from now on, when the market quotes one. (Paid up to
            // one the market no longer quotes: the account could not be valued either.)
            p.funding = p.funding.or(quoted);
            return Ok(());
        };
        let due = product::funding_due(p.size, paid, index);
        if due == 0.0 {
            return Ok(());
        }
        let currency = p.instrument.settlement_currency();
        let field = || format!("positions.{}.funding", p.instrument);
        let held = balances.get(&currency).copied().unwrap_or(Money::zero(currency));
        let mut amount = money(due, currency, &field)?;
        let mut paid_to = index;
        if let Some(paid) = payable(held, amount).filter(|_| keeps_unpaid) {
            amount = paid;
            // What stays accrued: -size × (index − paid_to) = the unpaid part.
            paid_to = index + (due - amount.to_f64()) / p.size;
        }
        let after = held
            .checked_add(amount)
            .map_err(|e| Error::new(field(), ErrorKind::OutOfRange(e.to_string())))?;
        balances.insert(currency, after);
        p.funding = Some(paid_to);
        let (instrument, size, kind) = (p.instrument, p.size, FlowKind::Funding);
        flows.push(Flow { instrument, kind, size, price: paid_to, amount });
        Ok(())
    }

    /// `portfolio` with the funding of each perpetual of `traded` paid whole into its balances
    /// and its index moved to the market's: what a venue does before a trade changes the size,
    /// so that contracts bought now never pay the funding of before. A balance this leaves
    /// negative is for the methodology's debt rule to judge, as a realised loss is.
    ///
    /// # Errors
    /// `UnknownInstrument` for such a perpetual outside the universe priced; `OutOfRange` for
    /// cash beyond the range of money.
    pub fn funded(
        &self,
        portfolio: &Portfolio,
        traded: &std::collections::BTreeSet<Instrument>,
    ) -> Result<Portfolio, Error> {
        let mut balances = portfolio.balances().clone();
        let mut positions = portfolio.positions().to_vec();
        let mut flows = Vec::new();
        for p in positions.iter_mut().filter(|p| traded.contains(&p.instrument)) {
            if p.instrument.is_perpetual() {
                self.pay_funding(p, false, &mut balances, &mut flows)?;
            }
        }
        let balances: Vec<Money> = balances.into_values().collect();
        Ok(Portfolio::new(positions, &balances)?)
    }

    /// An expired position's settlement price and its cash in the settlement currency.
    fn at_expiry(&self, p: &Position) -> Result<(f64, f64), Error> {
        let field = format!("positions.{}", p.instrument);
        let Some(expiry) = p.instrument.expiry() else {
            panic!("Invariant: only a dated contract expires");
        };
        let price = (self.market.underlying(p.instrument.underlying()).ok())
            .and_then(|u| u.settlement_price(expiry))
            .ok_or_else(|| Error::new(field.clone(), ErrorKind::Expired))?;
        let cash = match p.instrument.kind() {
            InstrumentKind::Option { strike, right, .. } => {
                let intrinsic = match right {
                    OptionRight::Call => (price - strike).max(0.0),
                    OptionRight::Put => (strike - price).max(0.0),
                };
                let per_unit = match p.instrument.settlement() {
                    Settlement::Linear => intrinsic,
                    Settlement::Inverse => intrinsic / price,
                };
                p.size * per_unit
            }
            InstrumentKind::Future { .. } | InstrumentKind::Perpetual => {
                let Some(entry) = p.entry else {
                    let why = "an expired future settles from its entry price, and none is known";
                    return Err(Error::new(
                        format!("{field}.entry"),
                        ErrorKind::Portfolio(why.into()),
                    ));
                };
                product::delta_one_pnl(&p.instrument, p.size, entry, price)
            }
        };
        Ok((price, cash))
    }
}

/// What balance `held` can pay of a loss `amount` it cannot pay whole (all it holds), or `None`
/// when it can pay it (or `amount` is a gain).
fn payable(held: Money, amount: Money) -> Option<Money> {
    (amount.is_negative() && held.raw() + amount.raw() < 0)
        .then(|| Money::from_raw(-held.raw().max(0), amount.currency()))
}

/// `cash` as money, rounded down.
fn money(
    cash: f64,
    currency: basics::Currency,
    field: &dyn Fn() -> String,
) -> Result<Money, Error> {
    Money::from_f64_decimal(cash, currency, Rounding::Down)
        .map_err(|e| Error::new(field(), ErrorKind::OutOfRange(e.to_string())))
}

/// The entry price from which `size` of `instrument` has P&L `pnl` at `mark`: what keeps an
/// unpaid loss in the position.
fn entry_for(instrument: &Instrument, size: f64, mark: f64, pnl: f64) -> f64 {
    match instrument.settlement() {
        Settlement::Linear => mark - pnl / size,
        Settlement::Inverse => 1.0 / (pnl / size + 1.0 / mark),
    }
}

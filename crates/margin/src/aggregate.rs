//! Account margin: the sparse aggregation of risk-array rows, then collateral, offsets, add-ons.
//!
//! One function, [`PricedMarket::account_into`], computes an account's figures; the report, the
//! bulk refresh and every what-if call it, so they cannot disagree. It allocates nothing when
//! given warm [`Scratch`] space, which is what lets the bulk refresh run at memory speed.
//!
//! A *risk unit* is one underlying in one currency: the scenarios of BTC, in USD (cross margin)
//! or in BTC (segregated margin). Positions are sorted by instrument, so each unit's positions are
//! contiguous.

use basics::Currency;
use methodology::{AddOnKind, Methodology, Numeraire, Offsets};

use crate::addons::{RollGroup, UnitSums, UnitView, add_on_value_with};
use crate::book::AccountSlices;
use crate::feeds::confidence_charge;
use crate::figures::{AccountDetail, AddOnLine, CurrencyFigures, UNITS_MAX, UnitDetail, Worst};
use crate::grouped::grouped_pnl;
use crate::kernels::{accumulate, weigh_and_find_worst};
use crate::priced::{PricedMarket, Tender, UnderlyingSlot};
use crate::scratch::{Collateral, Scratch, UnitSummary};
use crate::{Error, ErrorKind};

impl PricedMarket {
    /// Computes one account: its positions are (row in `self.arrays`, size) sorted by row, its
    /// balances (currency, amount) sorted by currency, its entries (row, entry price) sorted by
    /// row. Figures per currency are appended to `out`; details are recorded when `detail` is
    /// given.
    ///
    /// # Errors
    /// `CollateralNotAccepted`, `NegativeCollateral`, `MissingMarketData` for a collateral
    /// currency without a price, `TooMany` past [`UNITS_MAX`] units.
    pub fn account_into(
        &self,
        account: AccountSlices<'_>,
        scratch: &mut Scratch,
        mut detail: Option<&mut AccountDetail>,
        out: &mut Vec<CurrencyFigures>,
    ) -> Result<(), Error> {
        let positions = account.positions;
        self.resolve_balances(account.balances, scratch)?;
        if !account.entries.is_empty() || !account.fundings.is_empty() {
            self.accrue_entries(positions, account.entries, account.fundings, scratch)?;
        }
        self.collect_units(positions, scratch)?;
        for u in 0..scratch.units.len() {
            self.unit_pnl(positions, scratch, u, detail.as_deref_mut())?;
        }
        let first = out.len();
        if self.methodology().numeraire == Numeraire::Usd {
            out.push(CurrencyFigures::empty(Currency::USD));
        } else {
            let currencies = scratch
                .units
                .iter()
                .map(|u| u.currency)
                .chain(scratch.balances.iter().map(|b| b.currency));
            for currency in currencies {
                if !out[first..].iter().any(|f| f.currency == currency) {
                    out.push(CurrencyFigures::empty(currency));
                }
            }
            out[first..].sort_by_key(|f| f.currency);
        }
        for figures in &mut out[first..] {
            self.finish_currency(positions, scratch, figures, detail.as_deref_mut())?;
        }
        Ok(())
    }

    pub(crate) fn resolve_balances(
        &self,
        balances: &[(Currency, f64)],
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        let methodology = self.methodology();
        scratch.balances.clear();
        for &(currency, amount) in balances {
            if amount == 0.0 {
                continue;
            }
            let field = || format!("balances.{currency}");
            let collateral = self.collateral(currency, amount, &field)?;
            if amount < 0.0 && !methodology.requirement.allow_debt {
                return Err(Error::new(field(), ErrorKind::NegativeCollateral));
            }
            scratch.balances.push(collateral);
        }
        Ok(())
    }

    /// `amount` of `currency` as collateral: its haircuts and USD price (cross margin), and the
    /// slot whose scenarios move it.
    ///
    /// # Errors
    /// `CollateralNotAccepted`, or `MissingMarketData` without a USD price, naming `field`.
    #[inline]
    fn collateral(
        &self,
        currency: Currency,
        amount: f64,
        field: &dyn Fn() -> String,
    ) -> Result<Collateral, Error> {
        // Read in place: a copy made here and read back at once stalls on store forwarding.
        let unknown;
        let tender = match self.tender(currency) {
            Some(known) => known,
            None => {
                unknown = Tender::new(self.methodology(), &self.market, &self.slots, currency);
                &unknown
            }
        };
        let (mm_haircut, im_haircut) =
            tender.haircuts.ok_or_else(|| Error::new(field(), ErrorKind::CollateralNotAccepted))?;
        let price = if self.methodology().numeraire == Numeraire::Usd {
            tender.price.ok_or_else(|| {
                let why = format!("a USD price for {currency}");
                Error::new(field(), ErrorKind::MissingMarketData(why))
            })?
        } else {
            1.0
        };
        let shocked_slot = tender.shocked_slot;
        Ok(Collateral { currency, amount, price, mm_haircut, im_haircut, shocked_slot })
    }

    /// Adds the P&L of each future held with an entry price, from its entry to the engine's mark,
    /// to the balance of its settlement currency: P&L not yet settled is cash owed to or by the
    /// account, and counts and moves as that cash would once settled (so a settlement at the
    /// mark changes no figure). A loss may take the balance below zero: the debt rule is about
    /// deposits, and a loss is not a deposit. The funding each perpetual held with a funding
    /// index has accrued since, at the market's index, is cash owed in the same way.
    pub(crate) fn accrue_entries(
        &self,
        positions: &[(usize, f64)],
        entries: &[(usize, f64)],
        fundings: &[(usize, f64)],
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        let size = |row: usize| {
            let Ok(i) = positions.binary_search_by_key(&row, |p| p.0) else {
                panic!("Invariant: an entry price or a funding index belongs to a position held")
            };
            positions[i].1
        };
        for &(row, entry) in entries {
            let instrument = &self.arrays.instruments()[row];
            let mark = self.arrays.info(row).mark;
            let pnl = product::delta_one_pnl(instrument, size(row), entry, mark);
            self.accrue(row, pnl, "entry", scratch)?;
        }
        for &(row, paid) in fundings {
            // A position paid up to an index counts its funding from it: a market without one
            // cannot value the account (its figures would lose what it owes).
            let Some(index) = self.arrays.info(row).funding_index else {
                let instrument = &self.arrays.instruments()[row];
                let why = format!("a funding index for {instrument}");
                let field = format!("positions.{instrument}.funding");
                return Err(Error::new(field, ErrorKind::MissingMarketData(why)));
            };
            self.accrue(row, product::funding_due(size(row), paid, index), "funding", scratch)?;
        }
        Ok(())
    }

    /// Adds `cash` to the balance of row `row`'s settlement currency (`key` names the position's
    /// field an unaccepted currency is reported at).
    fn accrue(&self, row: usize, cash: f64, key: &str, scratch: &mut Scratch) -> Result<(), Error> {
        let instrument = &self.arrays.instruments()[row];
        let currency = instrument.settlement_currency();
        let at = scratch.balances.partition_point(|b| b.currency < currency);
        if let Some(held) = scratch.balances.get_mut(at).filter(|b| b.currency == currency) {
            held.amount += cash;
            return Ok(());
        }
        let field = || format!("positions.{instrument}.{key}");
        let collateral = self.collateral(currency, cash, &field)?;
        scratch.balances.insert(at, collateral);
        Ok(())
    }

    /// Finds the contiguous runs of positions per unit (plus units for risk-cancelling coin
    /// collateral without positions) and lays out their P&L space. This is the one walk over the
    /// positions: units, row starts, add-on sums and option values.
    pub(crate) fn collect_units(
        &self,
        positions: &[(usize, f64)],
        scratch: &mut Scratch,
    ) -> Result<(), Error> {
        scratch.units.clear();
        scratch.starts.clear();
        let mut pnl_len = 0;
        let mut i = 0;
        while let Some(&(first, _)) = positions.get(i) {
            let key = self.unit_keys[first];
            let start = i;
            let mut sums = UnitSums::default();
            let mut roll = RollGroup::default();
            let mut value = 0.0;
            while let Some(&(row, size)) = positions.get(i) {
                if self.unit_keys[row] != key {
                    break;
                }
                let f = &self.facts[row];
                sums.add(f, size, &mut roll);
                value += size * f.base;
                scratch.starts.push(f.start as usize);
                i += 1;
            }
            if scratch.units.len() >= UNITS_MAX {
                return Err(Error::new("positions", ErrorKind::TooMany { limit: UNITS_MAX }));
            }
            let slot = (key >> 16) as usize;
            sums.finish(&roll, self.slots[slot].index);
            scratch.units.push(UnitSummary {
                slot,
                currency: self.unit_currencies[(key & 0xffff) as usize],
                start,
                end: i,
                pnl_start: pnl_len,
                loss: 0.0,
                worst: 0,
                direction: 0.0,
                sums,
                value,
            });
            pnl_len += self.slots[slot].cells;
        }
        self.collateral_units(positions.len(), scratch, &mut pnl_len)?;
        // Every cell is written before it is read (accumulated or zeroed per unit), so the
        // buffer only grows; it is not cleared per account.
        if scratch.pnl.len() < pnl_len {
            scratch.pnl.resize(pnl_len, 0.0);
        }
        Ok(())
    }

    /// Units for risk-cancelling coin collateral whose underlying has no positions: the coins
    /// still move with their underlying (cross margin only).
    fn collateral_units(
        &self,
        end: usize,
        scratch: &mut Scratch,
        pnl_len: &mut usize,
    ) -> Result<(), Error> {
        for b in 0..scratch.balances.len() {
            let Some(slot) = scratch.balances[b].shocked_slot else { continue };
            if scratch.units.iter().any(|u| u.slot == slot) {
                continue;
            }
            if scratch.units.len() >= UNITS_MAX {
                return Err(Error::new("positions", ErrorKind::TooMany { limit: UNITS_MAX }));
            }
            let sums = UnitSums::default();
            let unit = UnitSummary {
                slot,
                currency: Currency::USD,
                start: end,
                end,
                pnl_start: *pnl_len,
                loss: 0.0,
                worst: 0,
                direction: 0.0,
                sums,
                value: 0.0,
            };
            scratch.units.push(unit);
            *pnl_len += self.slots[slot].cells;
        }
        Ok(())
    }

    fn unit_pnl(
        &self,
        positions: &[(usize, f64)],
        scratch: &mut Scratch,
        u: usize,
        detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let Scratch { pnl, starts, units, balances } = scratch;
        let unit = &mut units[u];
        let slot = &self.slots[unit.slot];
        let held = &positions[unit.start..unit.end];
        let cells = &mut pnl[unit.pnl_start..unit.pnl_start + slot.cells];
        let len = slot.set.len();
        if self.engine.grouped() {
            cells.fill(0.0);
            grouped_pnl(
                &self.arrays,
                self.methodology().aggregation,
                held,
                &slot.set,
                &mut cells[..len],
            );
        } else {
            accumulate(cells, held, self.arrays.all_rows(), &starts[unit.start..unit.end]);
        }
        let collateral: f64 = balances
            .iter()
            .filter(|b| b.shocked_slot == Some(unit.slot))
            .map(|b| b.amount * b.price)
            .sum();
        let (worst_pnl, worst) = if slot.extended.is_none()
            && slot.gain_fraction == 1.0
            && slot.all_candidates
        {
            weigh_and_find_worst(cells, len, (&slot.moves, &slot.weights), collateral)
        } else {
            self.weigh_and_find_worst_generally(slot, unit.currency, &mut cells[..len], collateral)
        };
        if !worst_pnl.is_finite() {
            return Err(Error::new(
                slot.currency.to_string(),
                ErrorKind::NotFinite("scenario P&L".into()),
            ));
        }
        let loss = (-worst_pnl).max(0.0);
        unit.loss = loss;
        unit.worst = worst;
        unit.direction = slot.moves[worst].signum();
        if let Some(detail) = detail {
            let record =
                WorstRecord { slot: unit.slot, currency: unit.currency, worst, loss, collateral };
            record_unit(self, held, &cells[..len], &record, detail);
        }
        Ok(())
    }

    /// [`weigh_and_find_worst`] for everything else: the extended table's treatment of extreme
    /// cells, a kept fraction of gains, scenarios that are not candidates for the worst.
    fn weigh_and_find_worst_generally(
        &self,
        slot: &UnderlyingSlot,
        currency: Currency,
        pnl: &mut [f64],
        collateral: f64,
    ) -> (f64, usize) {
        for ((cell, m), w) in pnl.iter_mut().zip(&slot.moves).zip(&slot.weights) {
            *cell = (*cell + collateral * m) * w;
        }
        if let Some(extended) = &slot.extended {
            let coin = (currency == slot.currency).then_some(slot.index);
            let unit_usd = self.usd_price_or_one(currency);
            extended.apply(pnl, currency, coin, unit_usd);
        }
        let gain_fraction = slot.gain_fraction;
        if gain_fraction != 1.0 {
            for cell in pnl.iter_mut() {
                *cell *= if *cell > 0.0 { gain_fraction } else { 1.0 };
            }
        }
        let worst_pnl = pnl
            .iter()
            .zip(&slot.candidate)
            .filter(|(_, c)| **c)
            .map(|(p, _)| *p)
            .fold(f64::INFINITY, f64::min);
        let worst = (0..pnl.len()).find(|&s| slot.candidate[s] && pnl[s] == worst_pnl).unwrap_or(0);
        (worst_pnl, worst)
    }

    fn finish_currency(
        &self,
        positions: &[(usize, f64)],
        scratch: &Scratch,
        figures: &mut CurrencyFigures,
        mut detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let methodology = self.methodology();
        let currency = figures.currency;
        let units = || scratch.units.iter().filter(move |u| u.currency == currency);
        let scan = self.combined_loss_in(&scratch.units, currency);
        let worst = units()
            .max_by(|a, b| a.loss.total_cmp(&b.loss).then(b.slot.cmp(&a.slot)))
            .map(|u| Worst::Scenario { underlying: self.slots[u.slot].currency, index: u.worst });
        let unit_usd =
            if currency == Currency::USD { 1.0 } else { self.usd_price_or_one(currency) };
        let mut add_ons = AddOnTotals { im: 0.0, mm: 0.0, scan, worst };
        for unit in units() {
            self.unit_add_ons(positions, unit, unit_usd, &mut add_ons, detail.as_deref_mut())?;
        }
        self.collateral_confidence(scratch, currency, &mut add_ons);
        let AddOnTotals { im: add_im, mm: add_mm, scan, worst } = add_ons;
        let (equity, haircut_im, haircut_mm) = equity(scratch, currency, methodology.numeraire);
        let requirement = methodology.requirement;
        *figures = CurrencyFigures {
            currency,
            equity,
            scan_loss: scan,
            add_ons_im: add_im,
            add_ons_mm: add_mm,
            haircut_im,
            haircut_mm,
            initial_margin: requirement.im_loss_factor * scan + add_im + haircut_im,
            maintenance_margin: requirement.mm_loss_factor * scan + add_mm + haircut_mm,
            worst,
        };
        if !(figures.initial_margin.is_finite()
            && figures.maintenance_margin.is_finite()
            && equity.is_finite())
        {
            return Err(Error::new(
                currency.to_string(),
                ErrorKind::NotFinite("margin totals".into()),
            ));
        }
        Ok(())
    }
}
/// Add-on `index` of `slot`'s units came out NaN or infinite; the field names the list it is in.
#[cold]
fn not_finite_add_on(slot: &UnderlyingSlot, index: usize) -> Error {
    let list = if slot.own_add_ons {
        format!("by_underlying.{}.add_ons", slot.currency)
    } else {
        "add_ons".to_owned()
    };
    Error::new(format!("{list}[{index}]"), ErrorKind::NotFinite(slot.currency.to_string()))
}

/// Refuses a unit whose friction add-on has no impact volatility to scale by (the underlying has
/// neither a surface nor a reference volatility in the market).
#[cold]
fn check_impact_vol(slot: &UnderlyingSlot, add_ons: &[methodology::AddOn]) -> Result<(), Error> {
    if add_ons.iter().any(|a| matches!(a.kind, AddOnKind::LiquidationFriction { .. })) {
        let what = format!(
            "a volatility for the friction add-on's market impact on {}: the market has no \
             surface and no reference_vol for it",
            slot.currency
        );
        return Err(Error::new(slot.currency.to_string(), ErrorKind::MissingMarketData(what)));
    }
    Ok(())
}

/// The add-ons `underlying` has of its own.
#[cold]
#[inline(never)]
fn own_add_ons(methodology: &Methodology, underlying: Currency) -> &[methodology::AddOn] {
    methodology.add_ons_for(underlying)
}

/// Add-ons of one currency, and the scan loss a competing contingency may raise.
struct AddOnTotals {
    im: f64,
    mm: f64,
    scan: f64,
    worst: Option<Worst>,
}

impl PricedMarket {
    /// Adds one unit's add-ons to `totals`. The add-ons are read from the methodology directly
    /// unless the underlying has its own, which are looked up out of line (the lookup inlined
    /// here cost 3 % of a refresh). A competing contingency raises the loss the other add-ons
    /// see (Derive's peg loss multiplies the loss including its forward contingency); without
    /// one this is the unit's loss. IM and MM are summed in registers, in the same order as
    /// into `totals` directly.
    fn unit_add_ons(
        &self,
        positions: &[(usize, f64)],
        unit: &UnitSummary,
        unit_usd: f64,
        totals: &mut AddOnTotals,
        mut detail: Option<&mut AccountDetail>,
    ) -> Result<(), Error> {
        let slot = &self.slots[unit.slot];
        let view = UnitView {
            held: &positions[unit.start..unit.end],
            arrays: &self.arrays,
            scenarios: &slot.set,
            liquidity: &slot.liquidity,
            index: slot.index,
            sigma_daily: slot.sigma_daily,
            unit_usd,
            underlying: slot.currency,
            feeds: self.market.feeds(),
        };
        let price_of = |c: Currency| self.usd_price_or_one(c);
        let methodology = self.methodology();
        let add_ons = if slot.own_add_ons {
            own_add_ons(methodology, slot.currency)
        } else {
            &methodology.add_ons
        };
        let competing = if self.engine.competing() {
            add_ons
                .iter()
                .filter(|a| {
                    matches!(a.kind, AddOnKind::BasisContingency { competes_with_scan: true, .. })
                })
                .map(|a| add_on_value_with(&a.kind, &unit.sums, &view, unit.loss, price_of))
                .fold(unit.loss, f64::max)
        } else {
            unit.loss
        };
        if slot.impact_vol_missing {
            check_impact_vol(slot, add_ons)?;
        }
        let (mut im, mut mm) = (totals.im, totals.mm);
        for (index, add_on) in add_ons.iter().enumerate() {
            let value = add_on_value_with(&add_on.kind, &unit.sums, &view, competing, price_of);
            if !value.is_finite() {
                return Err(not_finite_add_on(slot, index));
            }
            if let AddOnKind::BasisContingency { competes_with_scan: true, .. } = add_on.kind {
                if value > totals.scan {
                    totals.scan = value;
                    totals.worst = Some(Worst::Contingency { underlying: slot.currency });
                }
            } else {
                im += add_on.im_weight * value;
                mm += add_on.mm_weight * value;
            }
            if let Some(d) = detail.as_deref_mut() {
                d.add_ons.push(AddOnLine {
                    index,
                    underlying: slot.currency,
                    currency: unit.currency,
                    value,
                });
            }
        }
        (totals.im, totals.mm) = (im, mm);
        Ok(())
    }
}

impl PricedMarket {
    /// The oracle-confidence add-ons' charge on collateral of `currency`'s figures: every
    /// positive balance whose price feed is below the threshold (accounts without units too).
    fn collateral_confidence(
        &self,
        scratch: &Scratch,
        currency: Currency,
        totals: &mut AddOnTotals,
    ) {
        if !self.engine.confidence() {
            return;
        }
        let numeraire = self.methodology().numeraire;
        for add_on in &self.methodology().add_ons {
            let AddOnKind::OracleConfidence { threshold, factor } = add_on.kind else { continue };
            let charge: f64 = scratch
                .balances
                .iter()
                .filter(|b| numeraire == Numeraire::Usd || b.currency == currency)
                .filter_map(|b| {
                    Some((self.market.feeds().collateral(b.currency)?, b.amount * b.price))
                })
                .filter(|(_, value)| *value > 0.0)
                .map(|(confidence, value)| confidence_charge(confidence, value, threshold, factor))
                .sum();
            totals.im += add_on.im_weight * charge;
            totals.mm += add_on.mm_weight * charge;
        }
    }
}

/// What [`record_unit`] needs about a unit's worst scenario.
struct WorstRecord {
    slot: usize,
    currency: Currency,
    worst: usize,
    loss: f64,
    collateral: f64,
}

/// Keeps a unit's scenario P&L and its attribution at the worst scenario.
fn record_unit(
    ctx: &PricedMarket,
    held: &[(usize, f64)],
    pnl: &[f64],
    r: &WorstRecord,
    detail: &mut AccountDetail,
) {
    let slot = &ctx.slots[r.slot];
    let weight = slot.weights[r.worst];
    let attribution = held
        .iter()
        .map(|&(row, size)| (row, size * ctx.arrays.row(row)[r.worst] * weight))
        .collect();
    detail.units.push(UnitDetail {
        underlying: slot.currency,
        currency: r.currency,
        pnl: pnl.to_vec(),
        worst: r.worst,
        loss: r.loss,
        attribution,
        collateral_at_worst: r.collateral * slot.moves[r.worst] * weight,
    });
}

/// Equity and haircuts in `currency`: collateral (converted in cross margin, its own currency
/// only in segregated margin) plus the value of options held.
fn equity(scratch: &Scratch, currency: Currency, numeraire: Numeraire) -> (f64, f64, f64) {
    let (mut equity, mut haircut_im, mut haircut_mm) = (0.0, 0.0, 0.0);
    for b in &scratch.balances {
        if numeraire == Numeraire::Settlement && b.currency != currency {
            continue;
        }
        let value = b.amount * b.price;
        equity += value;
        if value > 0.0 {
            haircut_mm += value * b.mm_haircut;
            haircut_im += value * (b.mm_haircut + b.im_haircut);
        }
    }
    equity += scratch.units.iter().filter(|u| u.currency == currency).map(|u| u.value).sum::<f64>();
    (equity, haircut_im, haircut_mm)
}

impl PricedMarket {
    /// Combines the losses of `currency`'s units according to the offsets rule, with the
    /// correlations precomputed per pair of slots.
    pub(crate) fn combined_loss_in(&self, units: &[UnitSummary], currency: Currency) -> f64 {
        // From −0, like `Iterator::sum`: no units sum to −0 and one unit's loss passes unchanged.
        let mut sum = -0.0;
        for u in units.iter().filter(|u| u.currency == currency) {
            sum += u.loss;
        }
        let Offsets::Correlation { credit_cap, .. } = &self.methodology().offsets else {
            return sum;
        };
        let mut variance = 0.0;
        for a in units.iter().filter(|u| u.currency == currency) {
            for b in units.iter().filter(|u| u.currency == currency) {
                variance += self.credit_sign(a, b) * a.loss * b.loss;
            }
        }
        variance.max(0.0).sqrt().max((1.0 - credit_cap) * sum)
    }

    /// The signed correlation two units' losses combine with: `ρ · s_a · s_b` in the directions
    /// of their worst price moves, `|ρ|` where either has none (a volatility or skew scenario
    /// gets no credit).
    pub(crate) fn credit_sign(&self, a: &UnitSummary, b: &UnitSummary) -> f64 {
        let rho = self.correlations[a.slot * self.slots.len() + b.slot];
        if a.direction == 0.0 || b.direction == 0.0 {
            rho.abs()
        } else {
            rho * a.direction * b.direction
        }
    }
}

//! Portfolio SPAN margin from a file's published risk arrays and rules.
//!
//! Per combined commodity, following SPAN's published procedure:
//! 1. **Scan risk**: the position-weighted sum of the risk arrays (already carrying the extremes'
//!    covered fractions); the largest loss, never below zero.
//! 2. **Intra-commodity spread charge**: composite delta × size × delta scale, netted per period;
//!    each `dSpread` pairs deltas of opposite sign (one leg side A, the other side B) and charges
//!    its flat rate per spread formed. Legs in one tier pair the tier's long periods with its
//!    short periods (a calendar spread); legs in different tiers pair the tiers' net deltas.
//! 3. **Spot charge**: Takasbank's file defines no spot-month rates, so it is zero; a commodity
//!    with `spotRate` elements is refused (`Unsupported`) rather than under-margined.
//! 4. **Inter-commodity credit**: `interSpreads` pair the remaining net deltas of different
//!    commodities; each leg earns `rate × spreads × ratio × WFPR`, where the weighted futures
//!    price risk `WFPR` is the commodity's price risk per unit of net delta. Price risk is scan
//!    risk less time risk (the mean of the two unmoved scenarios) less volatility risk (half the
//!    gap between the worst scenario and its paired vol scenario).
//! 5. **Short option minimum**: the rate per short option contract (`somMeth` `GROSS`: short
//!    calls plus short puts) of the tier the option falls in; other methods are refused.
//! 6. **Risk requirement** = max(scan + intra + spot − inter credit, short option minimum).
//!
//! The total per currency is the sum of risk requirements less the net option value (long
//! option premiums reduce it, short ones add), never below zero: long options worth more than
//! the risk they carry need no margin, but their value is not paid out.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind};
use crate::file::{
    ChargeMethod, CombinedCommodity, DeltaSpread, LegSide, ProductKind, RiskArray, SCENARIO_COUNT,
    SpanFile, Tier,
};
use crate::portfolio::{ContractKind, SpanPortfolio, SpanPosition};

/// One combined commodity's SPAN requirement and how it was formed; money in `currency`.
#[derive(Debug, Clone, PartialEq)]
pub struct CommodityMargin {
    /// Combined commodity code.
    pub code: String,
    /// Currency of every amount below.
    pub currency: String,
    /// Portfolio loss at each scan point (gains negative).
    pub scenario_losses: [f64; SCENARIO_COUNT],
    /// Largest scenario loss, at least zero.
    pub scan_risk: f64,
    /// The scan point (0-based) of the largest loss.
    pub worst_scenario: usize,
    /// Mean loss of the two unmoved scenarios.
    pub time_risk: f64,
    /// Half the gap between the worst scenario and its paired vol scenario.
    pub volatility_risk: f64,
    /// Scan risk less time and volatility risk, within [0, scan risk].
    pub price_risk: f64,
    /// Net delta before any spread, in underlying units.
    pub net_delta: f64,
    /// Intra-commodity spread charge.
    pub intra_spread_charge: f64,
    /// Spot (delivery month) charge.
    pub spot_charge: f64,
    /// Inter-commodity spread credit.
    pub inter_credit: f64,
    /// Short option contracts counted by the short option minimum.
    pub short_option_contracts: f64,
    /// Short option minimum charge.
    pub short_option_minimum: f64,
    /// max(scan + intra + spot − inter credit, short option minimum).
    pub risk_requirement: f64,
    /// Net option value: Σ size × premium × contract value factor.
    pub net_option_value: f64,
}

/// A portfolio's SPAN margin.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanMargin {
    /// Per combined commodity, in the file's order.
    pub commodities: Vec<CommodityMargin>,
    /// Per currency: max(0, Σ risk requirement − Σ net option value).
    pub totals: BTreeMap<String, f64>,
}

/// A position resolved to its contract and combined commodity.
struct Resolved {
    commodity: usize,
    risk: RiskArray,
    delta_scale: f64,
    period: String,
    /// Premium × contract value factor, for options.
    option_value: Option<f64>,
    quantity: f64,
}

/// The positions of one combined commodity, summed.
#[derive(Default)]
struct Book {
    losses: [f64; SCENARIO_COUNT],
    delta_by_period: BTreeMap<String, f64>,
    short_options_by_period: BTreeMap<String, f64>,
    net_option_value: f64,
}

/// Remaining long and short delta of one tier.
#[derive(Debug, Clone, Copy, Default)]
struct Pools {
    long: f64,
    short: f64,
}

/// Computes the SPAN margin of `portfolio` under `file`.
///
/// # Errors
/// `Unresolved` naming the position whose contract or combined commodity the file lacks;
/// `Unsupported` for spread kinds this implementation does not compute.
pub fn margin(file: &SpanFile, portfolio: &SpanPortfolio) -> Result<SpanMargin, Error> {
    let mut books: BTreeMap<usize, Book> = BTreeMap::new();
    for (i, position) in portfolio.positions().iter().enumerate() {
        let r =
            resolve(file, position).map_err(|e| Error::new(format!("positions[{i}]"), e.kind))?;
        let book = books.entry(r.commodity).or_default();
        for (sum, loss) in book.losses.iter_mut().zip(r.risk.losses) {
            *sum += r.quantity * loss;
        }
        let delta = r.quantity * r.risk.composite_delta * r.delta_scale;
        *book.delta_by_period.entry(r.period.clone()).or_default() += delta;
        if let Some(value) = r.option_value {
            book.net_option_value += r.quantity * value;
            if r.quantity < 0.0 {
                *book.short_options_by_period.entry(r.period).or_default() -= r.quantity;
            }
        }
    }
    let mut commodities = Vec::new();
    let mut pools = PoolMap::new();
    for (&index, book) in &books {
        commodities.push((index, commodity_before_credits(file, index, book, &mut pools)?));
    }
    inter_credits(file, &mut commodities, &mut pools)?;
    let mut totals = BTreeMap::new();
    let mut out = Vec::with_capacity(commodities.len());
    for (_, mut m) in commodities {
        let charges = m.scan_risk + m.intra_spread_charge + m.spot_charge - m.inter_credit;
        m.risk_requirement = charges.max(m.short_option_minimum);
        *totals.entry(m.currency.clone()).or_insert(0.0) += m.risk_requirement - m.net_option_value;
        out.push(m);
    }
    for total in totals.values_mut() {
        *total = total.max(0.0);
    }
    Ok(SpanMargin { commodities: out, totals })
}

fn resolve(file: &SpanFile, p: &SpanPosition) -> Result<Resolved, Error> {
    let missing = |what: String| Error::new("position", ErrorKind::Unresolved(what));
    let exchange = file
        .exchanges
        .iter()
        .find(|e| e.code == p.exchange)
        .ok_or_else(|| missing(format!("exchange {}", p.exchange)))?;
    let (product_id, kind, risk, delta_scale, option_value) = match p.kind {
        ContractKind::Physical | ContractKind::Future => {
            let (products, kind) = if p.kind == ContractKind::Physical {
                (&exchange.physicals, ProductKind::Physical)
            } else {
                (&exchange.futures, ProductKind::Future)
            };
            let (product, contract) = products
                .iter()
                .filter(|pf| pf.code == p.product)
                .find_map(|pf| pf.contracts.iter().find(|c| c.period == p.period).map(|c| (pf, c)))
                .ok_or_else(|| missing(format!("{} {} {}", p.exchange, p.product, p.period)))?;
            (product.id, kind, contract.risk, contract.delta_scale, None)
        }
        ContractKind::Option { right, strike } => {
            let same_strike = |k: f64| (k - strike).abs() <= 1e-9 * k.abs().max(1.0);
            let found = exchange
                .options
                .iter()
                .filter(|pf| pf.code == p.product)
                .flat_map(|pf| pf.series.iter().map(move |s| (pf, s)))
                .filter(|(_, s)| s.period == p.period)
                .find_map(|(pf, s)| {
                    let o = s.options.iter().find(|o| o.right == right && same_strike(o.strike))?;
                    Some((pf, s, o))
                });
            let (product, series, option) = found.ok_or_else(|| {
                missing(format!("{} {} {} {right:?} {strike}", p.exchange, p.product, p.period))
            })?;
            let value = option.price * series.value_factor;
            (
                product.id,
                ProductKind::OptionOnPhysical,
                option.risk,
                series.delta_scale,
                Some(value),
            )
        }
    };
    let commodity = file
        .combined
        .iter()
        .position(|cc| {
            cc.links.iter().any(|(e, id, k)| *e == p.exchange && *id == product_id && *k == kind)
        })
        .ok_or_else(|| missing(format!("a combined commodity holding product {product_id}")))?;
    Ok(Resolved {
        commodity,
        risk,
        delta_scale,
        period: p.period.clone(),
        option_value,
        quantity: p.quantity,
    })
}

/// The tiers a commodity's deltas fall in; an unbounded tier 0 when the file defines none.
fn effective_tiers(cc: &CombinedCommodity) -> Vec<Tier> {
    if cc.intra_tiers.is_empty() {
        vec![Tier { number: 0, start: None, end: None }]
    } else {
        cc.intra_tiers.clone()
    }
}

/// Remaining deltas by (combined commodity index, tier number).
type PoolMap = BTreeMap<(usize, u32), Pools>;

fn commodity_before_credits(
    file: &SpanFile,
    index: usize,
    book: &Book,
    pools: &mut PoolMap,
) -> Result<CommodityMargin, Error> {
    let cc = &file.combined[index];
    let unsupported = |why: &str| {
        Err(Error::new(format!("ccDef[{}]", cc.code), ErrorKind::Unsupported(why.into())))
    };
    if cc.has_spot_rates {
        return unsupported("spot-month charges (spotRate)");
    }
    if cc.short_option_method != "GROSS" && !book.short_options_by_period.is_empty() {
        return unsupported("short option minimums other than GROSS (short calls plus puts)");
    }
    let losses = book.losses;
    let mut worst_scenario = 0;
    for (i, loss) in losses.iter().enumerate() {
        if *loss > losses[worst_scenario] {
            worst_scenario = i;
        }
    }
    let scan_risk = losses[worst_scenario].max(0.0);
    let time_risk = f64::midpoint(losses[0], losses[1]);
    // The paired point is the same price move with the opposite vol move; extremes pair with
    // themselves and carry no volatility risk.
    let paired = file.scan_points[worst_scenario].paired;
    let volatility_risk = (losses[worst_scenario] - losses[paired]).abs() / 2.0;
    let price_risk = (scan_risk - time_risk - volatility_risk).clamp(0.0, scan_risk);
    let tiers = effective_tiers(cc);
    for (period, delta) in &book.delta_by_period {
        if let Some(t) = tiers.iter().find(|t| t.contains(period)) {
            let p = pools.entry((index, t.number)).or_default();
            p.long += delta.max(0.0);
            p.short += (-delta).max(0.0);
        }
    }
    let mut intra_spread_charge = 0.0;
    for spread in &cc.intra_spreads {
        if spread.method != ChargeMethod::Flat {
            let why = "intra-commodity spreads charged by weighted price risk".to_string();
            let at = format!("ccDef[{}]/dSpread[{}]", cc.code, spread.number);
            return Err(Error::new(at, ErrorKind::Unsupported(why)));
        }
        let keys: Vec<_> = spread.legs.iter().map(|l| Some((index, l.tier))).collect();
        intra_spread_charge += form_spreads(spread, &keys, pools) * spread.rate;
    }
    let (short_option_contracts, short_option_minimum) = short_option_minimum(cc, book);
    Ok(CommodityMargin {
        code: cc.code.clone(),
        currency: cc.currency.clone(),
        scenario_losses: losses,
        scan_risk,
        worst_scenario,
        time_risk,
        volatility_risk,
        price_risk,
        net_delta: book.delta_by_period.values().sum(),
        intra_spread_charge,
        spot_charge: 0.0,
        inter_credit: 0.0,
        short_option_contracts,
        short_option_minimum,
        risk_requirement: 0.0,
        net_option_value: book.net_option_value,
    })
}

/// Forms as many spreads as the deltas allow, in both directions (side A long and B short, then
/// the reverse), consuming the deltas; returns the number formed. Legs that share one tier pair
/// its long periods with its short ones; otherwise each leg uses its tier's net delta.
fn form_spreads(spread: &DeltaSpread, keys: &[Option<(usize, u32)>], pools: &mut PoolMap) -> f64 {
    let same_tier = keys.windows(2).all(|w| w[0] == w[1]);
    let mut formed = 0.0;
    for a_long in [true, false] {
        let mut n = f64::INFINITY;
        for (leg, key) in spread.legs.iter().zip(keys) {
            let long = (leg.side == LegSide::A) == a_long;
            let p = key.and_then(|k| pools.get(&k).copied()).unwrap_or_default();
            let available = match (same_tier, long) {
                (true, true) => p.long,
                (true, false) => p.short,
                (false, true) => (p.long - p.short).max(0.0),
                (false, false) => (p.short - p.long).max(0.0),
            };
            n = n.min(available / leg.ratio);
        }
        if !(n > 0.0 && n.is_finite()) {
            continue;
        }
        for (leg, key) in spread.legs.iter().zip(keys) {
            let long = (leg.side == LegSide::A) == a_long;
            if let Some(p) = key.and_then(|k| pools.get_mut(&k)) {
                let used = n * leg.ratio;
                if long { p.long -= used } else { p.short -= used }
            }
        }
        formed += n;
    }
    formed
}

/// Short option contracts (gross) and their minimum charge, by the tier each period falls in.
fn short_option_minimum(cc: &CombinedCommodity, book: &Book) -> (f64, f64) {
    let mut contracts = 0.0;
    let mut charge = 0.0;
    for (period, shorts) in &book.short_options_by_period {
        contracts += shorts;
        if let Some((_, rate)) = cc.short_option_minimum.iter().find(|(t, _)| t.contains(period)) {
            charge += shorts * rate;
        }
    }
    (contracts, charge)
}

/// Applies the inter-commodity spreads in the file's order, crediting each leg's commodity.
fn inter_credits(
    file: &SpanFile,
    commodities: &mut [(usize, CommodityMargin)],
    pools: &mut PoolMap,
) -> Result<(), Error> {
    // Weighted futures price risk per commodity: price risk per unit of net delta.
    let wfpr: BTreeMap<usize, f64> = commodities
        .iter()
        .map(|(i, m)| {
            let w = if m.net_delta == 0.0 { 0.0 } else { m.price_risk / m.net_delta.abs() };
            (*i, w)
        })
        .collect();
    for spread in &file.inter_spreads {
        let keys: Vec<Option<(usize, u32)>> = spread
            .legs
            .iter()
            .map(|l| {
                let cc = file.combined.iter().position(|c| c.code == l.commodity)?;
                Some((cc, l.tier))
            })
            .collect();
        if keys.iter().all(|k| k.is_none_or(|(cc, _)| !wfpr.contains_key(&cc))) {
            continue;
        }
        if spread.method != ChargeMethod::Weighted {
            let why = "inter-commodity spreads with a flat charge".to_string();
            let at = format!("interSpreads/dSpread[{}]", spread.number);
            return Err(Error::new(at, ErrorKind::Unsupported(why)));
        }
        let formed = form_spreads(spread, &keys, pools);
        if formed <= 0.0 {
            continue;
        }
        for (leg, key) in spread.legs.iter().zip(&keys) {
            let Some((cc, _)) = key else { continue };
            if let Some((_, m)) = commodities.iter_mut().find(|(i, _)| i == cc) {
                m.inter_credit +=
                    spread.rate * formed * leg.ratio * wfpr.get(cc).copied().unwrap_or(0.0);
            }
        }
    }
    Ok(())
}

//! An account's liquidation plan on the full engine: which positions, and how much of each, a
//! profile sells round by round to bring the account back to its target (`equity ≥ k · MM`),
//! each candidate valued by a what-if on the same priced market as the account's own margin.
//!
//! The shortfall is `Σ max(0, (k · MM − equity) · USD price)` over the account's currencies,
//! with the liquidation's fees taken from the numeraire line (USD, else the first). A step is
//! taken only when it lowers the shortfall, so a plan never leaves an account further from its
//! target than before a step, and a hedged book is never sold leg by leg into a worse state:
//! when no step helps the plan stops and says so (`reached: false`).
//!
//! - [`Selection::Smallest`]: greedy on the full engine, each step the chunk of one position
//!   with the most shortfall relief per dollar of expected cost (depth cost plus fees), the
//!   last one cut by bisection to the least size that reaches the target; the pro-rata plan is
//!   computed too and kept when cheaper, so Ballast's plan never costs more than Derive's.
//! - [`Selection::ProRata`]: the least fraction of every position that reaches the target
//!   (bisection), within the round's caps.
//! - [`Selection::LargestContributor`]: greedy on the maintenance margin each position's chunk
//!   removes (Deribit), the last one cut by bisection.
//!
//! A round's caps are the profile's: a share and a floor per position, a notional per account,
//! the close factor, and the leftover rule.

use basics::Currency;
use margin::health::{Health, Status};
use margin::whatif::{Trade, what_if};
use margin::{CurrencyFigures, Engine, PricedMarket, Scratch};
use product::{Instrument, Portfolio};

use crate::depth::execute;
use crate::error::Error;
use crate::limits::{
    PLAN_BISECTION_STEPS, PLAN_CHUNK_HALVINGS, PLAN_EVALUATIONS_MAX, PLAN_ROUNDS_MAX,
};
use crate::profile::{Profile, Selection};

/// Where an account stands against its target, in USD.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Standing {
    /// Equity after fees.
    pub equity_usd: f64,
    /// Maintenance margin.
    pub maintenance_usd: f64,
    /// Initial margin.
    pub initial_usd: f64,
    /// How far below the target the account is (0 at or above it).
    pub shortfall_usd: f64,
    /// Health on the rounded money, fees taken.
    pub status: Status,
}

/// One planned sale or purchase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlannedTrade {
    /// The round it belongs to (0-based).
    pub round: usize,
    /// The contract.
    pub instrument: Instrument,
    /// Signed size traded (the opposite sign of the position).
    pub size: f64,
    /// Expected price per unit (the depth model's, or the mark for a backstop).
    pub price: f64,
    /// The engine's mark.
    pub mark: f64,
    /// Expected cost against the mark, USD.
    pub cost_usd: f64,
    /// USD notional traded.
    pub notional_usd: f64,
    /// dYdX's fillable price: the worst price the order may fill at; `None` for profiles
    /// without one.
    pub limit_price: Option<f64>,
    /// The shortfall once this trade's step is done: a greedy step is one trade, a pro-rata
    /// slice is one step of every position (atomic, as Derive's bid buys every asset at once).
    pub shortfall_after_usd: f64,
}

/// A liquidation plan.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The selection that made it.
    pub selection: Selection,
    /// The target scale `k`.
    pub buffer_scale: f64,
    /// Before any trade.
    pub before: Standing,
    /// After the whole plan.
    pub after: Standing,
    /// The trades, in order.
    pub trades: Vec<PlannedTrade>,
    /// Rounds used.
    pub rounds: usize,
    /// Expected cost (depth cost of every trade), USD.
    pub expected_cost_usd: f64,
    /// Fees charged (to the fund and the liquidator), USD.
    pub fees_usd: f64,
    /// Whether the target is reached.
    pub reached: bool,
    /// Whether the account goes whole to the backstop (below the profile's threshold).
    pub backstop: bool,
    /// Engine evaluations the search used.
    pub evaluations: usize,
    /// The portfolio the plan leaves (fees not deducted: they are cash flows of the venue).
    pub portfolio: Portfolio,
}

impl Plan {
    /// Whether the account is in liquidation at all (below MM on the rounded money).
    #[must_use]
    pub fn breached(&self) -> bool {
        self.before.status == Status::MmBreach
    }
}

/// A search in progress: the current portfolio and standing, the fees so far.
struct Search<'a> {
    priced: &'a PricedMarket,
    profile: &'a Profile,
    scratch: Scratch,
    evaluations: usize,
    fees_usd: f64,
    equity_start_usd: f64,
    notional_start_usd: f64,
}

/// A candidate: the portfolio after one more trade and where it stands.
#[derive(Clone)]
struct Candidate {
    portfolio: Portfolio,
    standing: Standing,
    trade: PlannedTrade,
    fee_usd: f64,
}

impl Search<'_> {
    fn standing(&self, figures: &[CurrencyFigures], fees_usd: f64) -> Result<Standing, Error> {
        let market = self.priced.market();
        // A fee never makes an account bankrupt: it is capped by the equity left before it.
        let gross: f64 = (figures.iter())
            .map(|f| market.usd_price(f.currency).map_or(0.0, |usd| f.equity * usd))
            .sum();
        let fees_usd = fees_usd.min(gross.max(0.0));
        let k = self.profile.buffer_scale;
        let numeraire = figures.iter().position(|f| f.currency == Currency::USD).unwrap_or(0);
        let mut adjusted = figures.to_vec();
        let (mut equity, mut mm, mut im, mut shortfall) = (0.0, 0.0, 0.0, 0.0);
        for (i, f) in adjusted.iter_mut().enumerate() {
            let usd = market.usd_price(f.currency).map_err(|e| {
                Error::range(format!("figures.{}", f.currency), format!("no USD price: {e}"))
            })?;
            if i == numeraire && usd > 0.0 {
                f.equity -= fees_usd / usd;
            }
            equity += f.equity * usd;
            mm += f.maintenance_margin * usd;
            im += f.initial_margin * usd;
            shortfall += ((k * f.maintenance_margin - f.equity) * usd).max(0.0);
        }
        if adjusted.is_empty() && fees_usd > 0.0 {
            equity -= fees_usd;
            shortfall += fees_usd;
        }
        let status = Health::of(&adjusted).map_err(|e| Error::margin("figures", e))?.status;
        Ok(Standing {
            equity_usd: equity,
            maintenance_usd: mm,
            initial_usd: im,
            shortfall_usd: shortfall,
            status,
        })
    }

    /// `portfolio` with `size` of `instrument` traded against the depth, valued.
    fn candidate(
        &mut self,
        portfolio: &Portfolio,
        instrument: Instrument,
        size: f64,
        round: usize,
    ) -> Result<Option<Candidate>, Error> {
        if self.evaluations >= PLAN_EVALUATIONS_MAX {
            return Err(Error::limit("plan", "PLAN_EVALUATIONS_MAX", PLAN_EVALUATIONS_MAX));
        }
        self.evaluations += 1;
        let field = format!("positions.{instrument}");
        let ex = execute(self.priced, &instrument, size, &field)?;
        let trade = Trade { instrument, size, price: Some(ex.price) };
        // A trade the engine cannot margin after (a balance a methodology without debt
        // refuses) is no candidate.
        let Ok(after) = what_if(self.priced, portfolio, &[trade], &mut self.scratch) else {
            return Ok(None);
        };
        let fee_usd = self.fee_usd(&instrument, ex.notional_usd);
        let standing = self.standing(&after.after, self.fees_usd + fee_usd)?;
        let trade = PlannedTrade {
            round,
            instrument,
            size,
            price: ex.price,
            mark: ex.mark,
            cost_usd: ex.cost_usd,
            notional_usd: ex.notional_usd,
            limit_price: None,
            shortfall_after_usd: standing.shortfall_usd,
        };
        Ok(Some(Candidate { portfolio: after.portfolio, standing, trade, fee_usd }))
    }

    /// The fees of selling `notional_usd` of `instrument`: the fund's and the liquidator's
    /// shares of the notional, and the fund's share of the equity sold (as the share of the
    /// starting notional), all capped by the equity left so that a fee never makes an account
    /// bankrupt (the drift-labs proposal the research cites; dYdX caps its fee the same way).
    fn fee_usd(&self, instrument: &Instrument, notional_usd: f64) -> f64 {
        let p = self.profile;
        let rate = if instrument.is_option() { p.fund_fee_option } else { p.fund_fee_delta_one };
        let of_equity = if self.notional_start_usd > 0.0 {
            p.fund_fee_of_equity * self.equity_start_usd.max(0.0) * notional_usd
                / self.notional_start_usd
        } else {
            0.0
        };
        (rate + p.liquidator_fee) * notional_usd + of_equity
    }
}

/// Per position of `portfolio` still held: its instrument, size and USD notional per unit.
fn held(priced: &PricedMarket, portfolio: &Portfolio) -> Vec<(Instrument, f64, f64)> {
    (portfolio.positions().iter())
        .filter(|p| p.size != 0.0)
        .filter_map(|p| {
            let row = priced.arrays().position(&p.instrument)?;
            Some((p.instrument, p.size, priced.arrays().info(row).notional_usd))
        })
        .collect()
}

/// The most of each position one round may sell (units), and the round's notional budget.
fn round_caps(profile: &Profile, held: &[(Instrument, f64, f64)], health: f64) -> (Vec<f64>, f64) {
    let total: f64 = held.iter().map(|(_, s, n)| s.abs() * n).sum();
    let caps = held
        .iter()
        .map(|(_, size, n)| {
            let whole = size.abs();
            if whole * n <= profile.notional_min_usd || *n <= 0.0 {
                whole
            } else {
                (profile.position_portion_max * whole).max(profile.notional_min_usd / n).min(whole)
            }
        })
        .collect();
    let full = health <= profile.full_close_health || total < profile.full_close_below_usd;
    let factor = if full { 1.0 } else { profile.close_factor };
    let mut budget = factor * total;
    if profile.account_notional_max_usd > 0.0 {
        budget = budget.min(profile.account_notional_max_usd);
    }
    (caps, budget)
}

/// The liquidation plan of `portfolio` under `profile`, on `priced`.
///
/// Selling at a loss realises it into the settlement currency's balance before the venue nets
/// that against the rest of the collateral, so a coin balance may go below zero on the way:
/// under a methodology that refuses debt the plan is priced with debt allowed (the figures of
/// an account without a negative balance are the same), not refused step by step.
///
/// # Errors
/// As the engine (`Margin`, naming the position or figures), and `Limit` when the search needs
/// more than [`PLAN_EVALUATIONS_MAX`] evaluations.
pub fn plan(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    profile: &Profile,
) -> Result<Plan, Error> {
    if priced.methodology().requirement.allow_debt {
        return plan_on(priced, portfolio, profile);
    }
    let mut methodology = priced.methodology().clone();
    methodology.requirement.allow_debt = true;
    let engine = Engine::new(methodology).map_err(|e| Error::margin("methodology", e))?;
    let debt = (engine.price(priced.market(), priced.arrays().instruments()))
        .map_err(|e| Error::margin("portfolio", e))?;
    plan_on(&debt, portfolio, profile)
}

fn plan_on(priced: &PricedMarket, portfolio: &Portfolio, profile: &Profile) -> Result<Plan, Error> {
    let chosen = plan_with(priced, portfolio, profile, profile.selection)?;
    if profile.selection != Selection::Smallest || !chosen.breached() || chosen.backstop {
        return Ok(chosen);
    }
    let pro_rata = plan_with(priced, portfolio, profile, Selection::ProRata)?;
    let better = |a: &Plan, b: &Plan| match (a.reached, b.reached) {
        (true, false) => true,
        (false, true) => false,
        (true, true) => a.expected_cost_usd + a.fees_usd <= b.expected_cost_usd + b.fees_usd,
        (false, false) => a.after.shortfall_usd <= b.after.shortfall_usd,
    };
    let evaluations = chosen.evaluations + pro_rata.evaluations;
    let mut best = if better(&chosen, &pro_rata) { chosen } else { pro_rata };
    best.selection = Selection::Smallest;
    best.evaluations = evaluations;
    Ok(best)
}

/// The plans of every selection under `profile`'s other rules, in [`Selection::ALL`] order.
///
/// # Errors
/// As [`plan`].
pub fn compare(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    profile: &Profile,
) -> Result<Vec<Plan>, Error> {
    Selection::ALL.iter().map(|s| plan(priced, portfolio, &profile.with_selection(*s))).collect()
}

fn plan_with(
    priced: &PricedMarket,
    portfolio: &Portfolio,
    profile: &Profile,
    selection: Selection,
) -> Result<Plan, Error> {
    let entered = priced.entered(portfolio).map_err(|e| Error::margin("portfolio", e))?;
    let figures = priced.margin(&entered).map_err(|e| Error::margin("portfolio", e))?;
    let held_now = held(priced, &entered);
    let mut search = Search {
        priced,
        profile,
        scratch: Scratch::default(),
        evaluations: 1,
        fees_usd: 0.0,
        equity_start_usd: 0.0,
        notional_start_usd: held_now.iter().map(|(_, s, n)| s.abs() * n).sum(),
    };
    let before = search.standing(&figures, 0.0)?;
    search.equity_start_usd = before.equity_usd;
    let mut plan = Plan {
        selection,
        buffer_scale: profile.buffer_scale,
        before,
        after: before,
        trades: Vec::new(),
        rounds: 0,
        expected_cost_usd: 0.0,
        fees_usd: 0.0,
        reached: before.shortfall_usd <= 0.0,
        backstop: false,
        evaluations: 0,
        portfolio: entered,
    };
    if before.status != Status::MmBreach {
        plan.evaluations = search.evaluations;
        return Ok(plan);
    }
    if profile.backstop_below_mm > 0.0
        && before.equity_usd < profile.backstop_below_mm * before.maintenance_usd
    {
        backstop(&mut search, &mut plan, &held_now)?;
        plan.evaluations = search.evaluations;
        return Ok(plan);
    }
    plan.reached = false;
    while !plan.reached && plan.rounds < PLAN_ROUNDS_MAX {
        let held_now = held(priced, &plan.portfolio);
        if held_now.is_empty() {
            break;
        }
        let health = ratio(&plan.after);
        let (caps, budget) = round_caps(profile, &held_now, health);
        let progressed = match selection {
            Selection::ProRata => pro_rata_round(&mut search, &mut plan, &held_now, &caps, budget)?,
            Selection::Smallest | Selection::LargestContributor => {
                greedy_round(&mut search, &mut plan, &held_now, &caps, budget, selection)?
            }
        };
        plan.rounds += 1;
        if !progressed {
            break;
        }
    }
    limit_prices(priced, profile, &mut plan);
    plan.evaluations = search.evaluations;
    Ok(plan)
}

fn ratio(s: &Standing) -> f64 {
    if s.maintenance_usd > 0.0 { s.equity_usd / s.maintenance_usd } else { f64::INFINITY }
}

/// Takes `candidate` into the plan.
fn take(search: &mut Search<'_>, plan: &mut Plan, candidate: Candidate) {
    search.fees_usd += candidate.fee_usd;
    plan.fees_usd = search.fees_usd;
    plan.expected_cost_usd += candidate.trade.cost_usd;
    plan.after = candidate.standing;
    plan.reached = candidate.standing.shortfall_usd <= 0.0;
    plan.portfolio = candidate.portfolio;
    plan.trades.push(candidate.trade);
}

/// Every position to the backstop at the mark: the account keeps nothing of its margin.
fn backstop(
    search: &mut Search<'_>,
    plan: &mut Plan,
    held: &[(Instrument, f64, f64)],
) -> Result<(), Error> {
    plan.backstop = true;
    for (instrument, size, notional) in held {
        let mark = search.priced.mark(instrument).map_err(|e| Error::margin("positions", e))?;
        plan.trades.push(PlannedTrade {
            round: 0,
            instrument: *instrument,
            size: -size,
            price: mark,
            mark,
            cost_usd: 0.0,
            notional_usd: size.abs() * notional,
            limit_price: None,
            shortfall_after_usd: 0.0,
        });
    }
    let mut closed = plan.portfolio.clone();
    let trades: Vec<Trade> = plan
        .trades
        .iter()
        .map(|t| Trade { instrument: t.instrument, size: t.size, price: Some(t.price) })
        .collect();
    if let Ok(after) = what_if(search.priced, &closed, &trades, &mut search.scratch) {
        closed = after.portfolio;
    }
    plan.portfolio = closed;
    plan.after = Standing {
        equity_usd: 0.0,
        maintenance_usd: 0.0,
        initial_usd: 0.0,
        shortfall_usd: 0.0,
        status: Status::Healthy,
    };
    plan.reached = true;
    plan.rounds = 1;
    Ok(())
}

/// A multi-trade candidate: the fraction `f` of every position's cap, applied in order.
fn slice(
    search: &mut Search<'_>,
    plan: &Plan,
    held: &[(Instrument, f64, f64)],
    sizes: &[f64],
    round: usize,
) -> Result<Option<Vec<Candidate>>, Error> {
    let mut out: Vec<Candidate> = Vec::with_capacity(held.len());
    // Each trade of the slice is valued with the fees of those before it; the search's own
    // total moves only when the slice is taken.
    let saved = search.fees_usd;
    for ((instrument, size, _), amount) in held.iter().zip(sizes) {
        if *amount <= 0.0 {
            continue;
        }
        let base = out.last().map_or(&plan.portfolio, |c| &c.portfolio).clone();
        let found = search.candidate(&base, *instrument, -size.signum() * amount, round);
        let Ok(Some(c)) = found else {
            search.fees_usd = saved;
            return found.map(|_| None);
        };
        search.fees_usd += c.fee_usd;
        out.push(c);
    }
    search.fees_usd = saved;
    Ok(Some(out))
}

fn pro_rata_round(
    search: &mut Search<'_>,
    plan: &mut Plan,
    held: &[(Instrument, f64, f64)],
    caps: &[f64],
    budget: f64,
) -> Result<bool, Error> {
    let round = plan.rounds;
    // The largest uniform fraction of every position the caps allow.
    let total: f64 = held.iter().map(|(_, s, n)| s.abs() * n).sum();
    let mut top = held.iter().zip(caps).map(|((_, s, _), c)| c / s.abs()).fold(1.0_f64, f64::min);
    if total > 0.0 {
        top = top.min(budget / total);
    }
    top = leftover_rule(search.profile, total, top);
    let sizes = |f: f64| -> Vec<f64> { held.iter().map(|(_, s, _)| s.abs() * f).collect() };
    let Some(full) = slice(search, plan, held, &sizes(top), round)? else { return Ok(false) };
    let Some(last) = full.last() else { return Ok(false) };
    if last.standing.shortfall_usd >= plan.after.shortfall_usd {
        return Ok(false);
    }
    let mut chosen = full;
    if chosen.last().is_some_and(|c| c.standing.shortfall_usd <= 0.0) {
        let (mut lo, mut hi) = (0.0, top);
        for _ in 0..PLAN_BISECTION_STEPS {
            let mid = 0.5 * (lo + hi);
            match slice(search, plan, held, &sizes(mid), round)? {
                Some(c) if c.last().is_some_and(|l| l.standing.shortfall_usd <= 0.0) => {
                    hi = mid;
                    chosen = c;
                }
                _ => lo = mid,
            }
        }
    }
    let step = chosen.last().map_or(0.0, |c| c.standing.shortfall_usd);
    for mut c in chosen {
        c.trade.shortfall_after_usd = step;
        take(search, plan, c);
    }
    Ok(true)
}

/// Aave's leftover rule on a uniform fraction `f` of a book of `total` notional: a partial sale
/// leaves at least the minimum, or sells everything.
fn leftover_rule(profile: &Profile, total: f64, f: f64) -> f64 {
    let left = total * (1.0 - f);
    if profile.leftover_min_usd <= 0.0 || left <= 0.0 || left >= profile.leftover_min_usd {
        return f;
    }
    if total <= profile.leftover_min_usd { 1.0 } else { 1.0 - profile.leftover_min_usd / total }
}

fn greedy_round(
    search: &mut Search<'_>,
    plan: &mut Plan,
    held: &[(Instrument, f64, f64)],
    caps: &[f64],
    mut budget: f64,
    selection: Selection,
) -> Result<bool, Error> {
    let round = plan.rounds;
    let mut left: Vec<f64> = caps.to_vec();
    let mut progressed = false;
    while !plan.reached {
        let mut best: Option<(f64, usize, Candidate)> = None;
        for (i, (instrument, size, n)) in held.iter().enumerate() {
            let chunk = if *n > 0.0 { left[i].min(budget / n) } else { left[i] };
            if chunk <= 0.0 {
                continue;
            }
            let sale = (*instrument, -size.signum() * chunk);
            let Some(c) = relieving(search, plan, sale, round)? else { continue };
            let relief = plan.after.shortfall_usd - c.standing.shortfall_usd;
            let score = match selection {
                Selection::LargestContributor => {
                    plan.after.maintenance_usd - c.standing.maintenance_usd
                }
                _ => relief / (c.trade.cost_usd + c.fee_usd).max(1e-9),
            };
            if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
                best = Some((score, i, c));
            }
        }
        let Some((_, i, mut c)) = best else { break };
        if c.standing.shortfall_usd <= 0.0 {
            c = least_reaching(search, plan, &held[i], c, round)?;
        }
        left[i] -= c.trade.size.abs();
        budget -= c.trade.notional_usd;
        take(search, plan, c);
        progressed = true;
    }
    // No sale of one position helps (a hedge whose legs only reduce risk together): the round
    // sells a slice of every position instead, as Deribit falls back to its delta hedge.
    // (Not for the smallest step's first round: `plan` prices the pro-rata plan beside it
    // anyway and keeps the cheaper.)
    let compared = selection == Selection::Smallest && round == 0;
    if !progressed && !plan.reached && !compared {
        return pro_rata_round(search, plan, held, caps, budget);
    }
    Ok(progressed)
}

/// The sale `(instrument, size)`, or the largest of its halvings (down to a quarter) that lowers
/// the shortfall: selling all of one leg may raise the risk of what is left where a part
/// lowers it.
fn relieving(
    search: &mut Search<'_>,
    plan: &Plan,
    (instrument, size): (Instrument, f64),
    round: usize,
) -> Result<Option<Candidate>, Error> {
    let mut size = size;
    for _ in 0..=PLAN_CHUNK_HALVINGS {
        if let Some(c) = search.candidate(&plan.portfolio, instrument, size, round)?
            && c.standing.shortfall_usd < plan.after.shortfall_usd
        {
            return Ok(Some(c));
        }
        size *= 0.5;
    }
    Ok(None)
}

/// The least size of one position's sale that still reaches the target (bisection), `reaching`
/// being a sale of it that does.
fn least_reaching(
    search: &mut Search<'_>,
    plan: &Plan,
    held: &(Instrument, f64, f64),
    reaching: Candidate,
    round: usize,
) -> Result<Candidate, Error> {
    let (instrument, size, _) = *held;
    let (mut lo, mut hi) = (0.0, reaching.trade.size.abs());
    let mut best = reaching;
    for _ in 0..PLAN_BISECTION_STEPS {
        let mid = 0.5 * (lo + hi);
        match search.candidate(&plan.portfolio, instrument, -size.signum() * mid, round)? {
            Some(c) if c.standing.shortfall_usd <= 0.0 => {
                hi = mid;
                best = c;
            }
            _ => lo = mid,
        }
    }
    Ok(best)
}

/// dYdX's fillable price on every trade of a profile with a bankruptcy adjustment: the
/// position's share of MM (by notional) as its PMMR, the account's equity and MM before the
/// plan as TNC and TMMR.
fn limit_prices(priced: &PricedMarket, profile: &Profile, plan: &mut Plan) {
    if profile.bankruptcy_adjustment <= 0.0 {
        return;
    }
    let notional: f64 = plan.trades.iter().map(|t| t.notional_usd).sum();
    let (tnc, tmmr) = (plan.before.equity_usd, plan.before.maintenance_usd);
    for t in &mut plan.trades {
        let Some(row) = priced.arrays().position(&t.instrument) else { continue };
        if t.instrument.is_option() {
            continue;
        }
        let per_unit = priced.arrays().info(row).notional_usd;
        if notional <= 0.0 || per_unit <= 0.0 || t.mark <= 0.0 {
            continue;
        }
        let pmmr = tmmr * t.notional_usd / notional;
        let ps = -t.size;
        let pnnv = ps * t.mark;
        // PMMR in the price unit, so that the fillable price comes out per unit of price.
        let pmmr_price = pmmr * t.mark / per_unit;
        let (ba, smmr) = (profile.bankruptcy_adjustment, profile.spread_to_mm);
        let fillable =
            crate::peers::dydx::fillable_price(pnnv, ps, pmmr_price, tnc, tmmr, ba, smmr);
        t.limit_price = Some(fillable);
    }
}

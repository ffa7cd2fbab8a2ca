//! How the simulator carries out a plan: fills between two accounts in fixed point, auctions
//! won by the cheapest liquidator with capacity, fees capped by the equity left, and the
//! waterfall of a bankrupt account (the fund, auto-deleveraging, socialised loss).

use basics::Rounding;
use margin::PricedMarket;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::cash::{self, Cash, lots_of, split, ticks_of, value};
use crate::depth::execute;
use crate::error::Error;
use crate::plan::Plan;
use crate::profile::{Adl, Execution, Profile};
use crate::sim::{Event, Exchange, StepFigures};

/// The cash account `a` pays when its lots of contract `i` change by `lots` at `ticks`: a
/// perpetual's variation margin from the last settlement, an option's premium.
fn flow(ex: &Exchange, i: usize, lots: i64, ticks: i64) -> Cash {
    if ex.universe[i].is_option() { value(lots, ticks) } else { value(lots, ticks - ex.settled[i]) }
}

/// The USD notional of `lots` of contract `i` on `priced`.
fn notional_usd(ex: &Exchange, priced: &PricedMarket, i: usize, lots: i64) -> Result<f64, Error> {
    let row = (priced.arrays().position(&ex.universe[i]))
        .ok_or_else(|| Error::range("universe", format!("{} is not priced", ex.universe[i])))?;
    Ok(cash::size_of(lots).abs() * priced.arrays().info(row).notional_usd)
}

fn mark_ticks(ex: &Exchange, priced: &PricedMarket, i: usize) -> Result<i64, Error> {
    let mark = priced.mark(&ex.universe[i]).map_err(|e| Error::margin("universe", e))?;
    ticks_of(mark, Rounding::Down, "mark")
}

/// Equity at the marks in fixed point: cash plus what closing every position at its mark
/// would bring.
pub(crate) fn equity_at_mark(
    ex: &Exchange,
    priced: &PricedMarket,
    a: usize,
) -> Result<Cash, Error> {
    let mut equity = ex.accounts[a].cash;
    for &(i, l) in &ex.accounts[a].lots {
        equity -= flow(ex, i, -l, mark_ticks(ex, priced, i)?);
    }
    Ok(equity)
}

/// Account `a` trades `lots` (signed, its own side) of contract `i` with `c` at `ticks`.
#[allow(clippy::too_many_arguments)]
fn fill(
    ex: &mut Exchange,
    events: &mut Vec<Event>,
    (a, c): (usize, usize),
    i: usize,
    lots: i64,
    ticks: i64,
    kind: char,
    liquidated: Option<usize>,
    (limit_ticks, mark_ticks): (Option<i64>, i64),
) {
    if lots == 0 {
        return;
    }
    let paid = flow(ex, i, lots, ticks);
    ex.accounts[a].cash -= paid;
    ex.accounts[c].cash += paid;
    ex.accounts[a].add_lots(i, lots);
    ex.accounts[c].add_lots(i, -lots);
    let (buyer, seller) = if lots > 0 { (a, c) } else { (c, a) };
    events.push(Event::Fill {
        instrument: i,
        buyer,
        seller,
        lots: lots.abs(),
        ticks,
        kind,
        liquidated,
        limit_ticks,
        mark_ticks,
    });
}

fn transfer(
    ex: &mut Exchange,
    events: &mut Vec<Event>,
    from: Option<usize>,
    to: Option<usize>,
    amount: Cash,
    why: &'static str,
) {
    if amount <= 0 {
        return;
    }
    match from {
        Some(a) => ex.accounts[a].cash -= amount,
        None => ex.fund -= amount,
    }
    match to {
        Some(a) => ex.accounts[a].cash += amount,
        None => ex.fund += amount,
    }
    events.push(Event::Transfer { from, to, amount, why });
}

/// Carries out `plan` for account `a`; the realised cost against the mark, USD, when the
/// account was liquidated.
#[allow(clippy::too_many_arguments)]
pub(crate) fn execute_plan(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    a: usize,
    plan: &Plan,
    state: &mut StepState,
    events: &mut Vec<Event>,
    figures: &mut StepFigures,
) -> Result<Option<f64>, Error> {
    // An account with nothing left to sell and a negative balance is bad debt already counted
    // when its positions went: it stays in liquidation, and nothing more happens to it.
    if !plan.breached() || ex.accounts[a].lots.is_empty() {
        return Ok(None);
    }
    let before = equity_at_mark(ex, priced, a)?;
    if before < 0 {
        figures.bankruptcies += 1;
        bankrupt(ex, priced, profile, a, state, events, figures)?;
    } else if plan.backstop {
        figures.backstops += 1;
        let maker = ex.maker();
        for (i, l) in ex.accounts[a].lots.clone() {
            let mark = mark_ticks(ex, priced, i)?;
            fill(ex, events, (a, maker), i, -l, mark, 'b', Some(a), (None, mark));
        }
        let left = ex.accounts[a].cash;
        transfer(ex, events, Some(a), Some(maker), left, "backstop");
    } else {
        let done = match profile.execution {
            Execution::Market => market_sale(ex, priced, profile, a, plan, events, figures)?,
            Execution::DutchAuction { .. } => {
                auction(ex, priced, profile, a, plan, &mut state.capacity, events, figures)?
            }
        };
        if !done {
            return Ok(None);
        }
    }
    figures.liquidations += 1;
    let after = equity_at_mark(ex, priced, a)?;
    Ok(Some(cash::to_f64(before.max(0) - after.max(0)).max(0.0)))
}

/// The plan's trades as lots of `a`'s contracts, each clamped to what `a` still holds.
fn planned_lots(
    ex: &Exchange,
    plan: &Plan,
    a: usize,
) -> Result<Vec<(usize, i64, Option<f64>)>, Error> {
    let mut out = Vec::with_capacity(plan.trades.len());
    for t in &plan.trades {
        let Some(i) = ex.universe.iter().position(|u| *u == t.instrument) else {
            return Err(Error::range("plan", format!("{} is not listed", t.instrument)));
        };
        let held = ex.accounts[a].lots_of(i);
        let lots = lots_of(t.size, "plan.trades.size")?;
        let lots = if held > 0 { lots.clamp(-held, 0) } else { lots.clamp(0, -held) };
        out.push((i, lots, t.limit_price));
    }
    Ok(out)
}

/// Fees of a liquidation: the fund's and the liquidator's shares of the notional sold, and the
/// fund's share of the equity sold, capped by the equity left.
fn charge_fees(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    (a, counterparty): (usize, usize),
    sold: &[(usize, i64)],
    equity_base: Cash,
    events: &mut Vec<Event>,
) -> Result<(), Error> {
    let (mut fund_fee, mut liquidator_fee) = (0.0, 0.0);
    for &(i, lots) in sold {
        let notional = notional_usd(ex, priced, i, lots)?;
        let rate = if ex.universe[i].is_option() {
            profile.fund_fee_option
        } else {
            profile.fund_fee_delta_one
        };
        fund_fee += rate * notional;
        liquidator_fee += profile.liquidator_fee * notional;
    }
    let mut room = equity_at_mark(ex, priced, a)?.max(0);
    let of_equity = cash::scale(equity_base, profile.fund_fee_of_equity, Rounding::Up).min(room);
    room -= of_equity;
    let fund_fee = cash::cash_of(fund_fee, Rounding::Up, "fee")?.min(room);
    room -= fund_fee;
    let liquidator_fee = cash::cash_of(liquidator_fee, Rounding::Up, "fee")?.min(room);
    transfer(ex, events, Some(a), None, of_equity + fund_fee, "fund-fee");
    transfer(ex, events, Some(a), Some(counterparty), liquidator_fee, "liquidator-fee");
    Ok(())
}

fn market_sale(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    a: usize,
    plan: &Plan,
    events: &mut Vec<Event>,
    figures: &mut StepFigures,
) -> Result<bool, Error> {
    let maker = ex.maker();
    let mut sold = Vec::new();
    for (i, lots, limit) in planned_lots(ex, plan, a)? {
        if lots == 0 {
            continue;
        }
        let ex_price = execute(priced, &ex.universe[i], cash::size_of(lots), "plan")?;
        // What the account gets rounds down, what it pays rounds up.
        let rounding = if lots < 0 { Rounding::Down } else { Rounding::Up };
        let ticks = ticks_of(ex_price.price, rounding, "price")?;
        let limit_ticks = limit
            .map(|l| {
                ticks_of(l.max(0.0), if lots < 0 { Rounding::Up } else { Rounding::Down }, "limit")
            })
            .transpose()?;
        let outside = limit_ticks.is_some_and(|l| if lots < 0 { ticks < l } else { ticks > l });
        if outside {
            figures.unfilled += 1;
            continue;
        }
        let mark = mark_ticks(ex, priced, i)?;
        fill(ex, events, (a, maker), i, lots, ticks, 'm', Some(a), (limit_ticks, mark));
        sold.push((i, lots));
    }
    if sold.is_empty() {
        return Ok(false);
    }
    charge_fees(ex, priced, profile, (a, maker), &sold, 0, events)?;
    Ok(true)
}

/// The time after the start when the schedule first reaches `discount`.
fn time_of(profile: &Profile, discount: f64) -> f64 {
    let Execution::DutchAuction { start_discount, fast_discount, fast_secs, slow_secs } =
        profile.execution
    else {
        return 0.0;
    };
    if discount <= start_discount {
        0.0
    } else if discount <= fast_discount && fast_discount > start_discount {
        (discount - start_discount) / (fast_discount - start_discount) * fast_secs
    } else {
        fast_secs + (discount - fast_discount) / (1.0 - fast_discount).max(1e-12) * slow_secs
    }
}

#[allow(clippy::too_many_arguments)]
fn auction(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    a: usize,
    plan: &Plan,
    capacity: &mut [f64],
    events: &mut Vec<Event>,
    figures: &mut StepFigures,
) -> Result<bool, Error> {
    let lots = planned_lots(ex, plan, a)?;
    let (mut sold_notional, mut total_notional, mut unwind_cost) = (0.0, 0.0, 0.0);
    for &(i, l) in &ex.accounts[a].lots {
        total_notional += notional_usd(ex, priced, i, l)?;
    }
    for &(i, l, _) in &lots {
        if l != 0 {
            let e = execute(priced, &ex.universe[i], cash::size_of(l), "plan")?;
            sold_notional += e.notional_usd;
            unwind_cost += e.cost_usd;
        }
    }
    if sold_notional <= 0.0 {
        return Ok(false);
    }
    let share = (sold_notional / total_notional.max(1e-12)).min(1.0);
    let base = cash::scale(equity_at_mark(ex, priced, a)?.max(0), share, Rounding::Down);
    let base_usd = cash::to_f64(base).max(1e-12);
    // The cheapest liquidator with room bids when the discount first covers its unwind cost
    // times its markup.
    let mut best: Option<(f64, usize, usize)> = None;
    let first = ex.liquidators().start;
    for j in ex.liquidators() {
        let k = j - first;
        if capacity[k] + sold_notional > ex.capacity_usd {
            continue;
        }
        let needed = (unwind_cost * (1.0 + ex.markups[k]) / base_usd).max(0.0);
        if needed <= 1.0 && best.is_none_or(|(d, _, _)| needed < d) {
            best = Some((needed, j, k));
        }
    }
    let Some((needed, j, k)) = best else {
        figures.unfilled += 1;
        return Ok(false);
    };
    capacity[k] += sold_notional;
    let secs = time_of(profile, needed);
    let discount = profile.discount_at(secs).unwrap_or(1.0);
    let paid = cash::scale(base, discount.clamp(0.0, 1.0), Rounding::Up)
        .min(equity_at_mark(ex, priced, a)?.max(0));
    let mut sold = Vec::new();
    for (i, l, _) in lots {
        let mark = mark_ticks(ex, priced, i)?;
        fill(ex, events, (a, j), i, l, mark, 'a', Some(a), (None, mark));
        sold.push((i, l));
    }
    transfer(ex, events, Some(a), Some(j), paid, "auction");
    events.push(Event::Auction { account: a, liquidator: j, secs, discount, base, paid });
    charge_fees(ex, priced, profile, (a, j), &sold, base, events)?;
    Ok(true)
}

/// Liquidators sell what they bought to the maker at the depth, at the end of the step.
pub(crate) fn unwind_liquidators(
    ex: &mut Exchange,
    priced: &PricedMarket,
    events: &mut Vec<Event>,
) -> Result<(), Error> {
    let maker = ex.maker();
    for j in ex.liquidators() {
        for (i, l) in ex.accounts[j].lots.clone() {
            let e = execute(priced, &ex.universe[i], -cash::size_of(l), "unwind")?;
            let rounding = if l > 0 { Rounding::Down } else { Rounding::Up };
            let mark = mark_ticks(ex, priced, i)?;
            fill(
                ex,
                events,
                (j, maker),
                i,
                -l,
                ticks_of(e.price, rounding, "price")?,
                'u',
                None,
                (None, mark),
            );
        }
    }
    Ok(())
}

/// An account whose equity at the marks is negative: sold to the market when the fund can pay
/// what that leaves; otherwise the fund pays what it has, the positions go to opposite-side
/// holders at the marks (the bankruptcy price once their share of the loss is counted) and they
/// take the rest of the loss, capped by their cash; what is left waits for the step's end to be
/// socialised, or stays as bad debt.
fn bankrupt(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    a: usize,
    state: &mut StepState,
    events: &mut Vec<Event>,
    figures: &mut StepFigures,
) -> Result<(), Error> {
    let maker = ex.maker();
    let mut depth_equity = ex.accounts[a].cash;
    let mut sales = Vec::new();
    for &(i, l) in &ex.accounts[a].lots {
        let e = execute(priced, &ex.universe[i], -cash::size_of(l), "bankrupt")?;
        let ticks = ticks_of(e.price, if l > 0 { Rounding::Down } else { Rounding::Up }, "price")?;
        depth_equity -= flow(ex, i, -l, ticks);
        sales.push((i, -l, ticks));
    }
    if ex.fund >= -depth_equity {
        for (i, l, ticks) in sales {
            let mark = mark_ticks(ex, priced, i)?;
            fill(ex, events, (a, maker), i, l, ticks, 'm', Some(a), (None, mark));
        }
        let owed = -ex.accounts[a].cash;
        figures.fund_paid_usd += cash::to_f64(owed.max(0));
        transfer(ex, events, None, Some(a), owed, "fund-payout");
        return Ok(());
    }
    let owed = -equity_at_mark(ex, priced, a)?;
    let from_fund = owed.min(ex.fund.max(0));
    figures.fund_paid_usd += cash::to_f64(from_fund);
    transfer(ex, events, None, Some(a), from_fund, "fund-payout");
    let takers = deleverage(ex, priced, profile, a, state, events)?;
    let mut left = -ex.accounts[a].cash;
    if left > 0 && !takers.is_empty() {
        let weights: Vec<u128> = takers.iter().map(|(_, w)| *w).collect();
        for ((c, _), share) in takers.iter().zip(split(left, &weights)) {
            let take = share.min(ex.accounts[*c].cash.max(0));
            if take > 0 {
                figures.adl_events += 1;
                figures.adl_usd += cash::to_f64(take);
                transfer(ex, events, Some(*c), Some(a), take, "adl");
                left -= take;
            }
        }
    }
    if left > 0 {
        if profile.socialise {
            state.pending.push((a, left));
        } else {
            figures.unresolved_usd += cash::to_f64(left);
        }
    }
    Ok(())
}

/// The step's socialised loss: every deficit left after the fund and ADL, spread over the
/// positive balances at the end of the step in proportion to them (Deribit's "socialised
/// among the winning traders for that day"), then paid to the bankrupt accounts in proportion
/// to their deficits; what the balances cannot cover stays as bad debt.
pub(crate) fn socialise(
    ex: &mut Exchange,
    state: &mut StepState,
    events: &mut Vec<Event>,
    figures: &mut StepFigures,
) {
    let owed: Cash = state.pending.iter().map(|(_, d)| *d).sum();
    if owed <= 0 {
        return;
    }
    let mut bankrupt = vec![false; ex.accounts.len()];
    for (a, _) in &state.pending {
        bankrupt[*a] = true;
    }
    let payers: Vec<usize> =
        (0..ex.accounts.len()).filter(|c| ex.accounts[*c].cash > 0 && !bankrupt[*c]).collect();
    let weights: Vec<u128> = payers.iter().map(|c| ex.accounts[*c].cash as u128).collect();
    let mut collected: Cash = 0;
    let shares = split(owed, &weights);
    // Collected into the maker's hands for the instant between the two splits, then paid out:
    // every transfer is between two holders.
    let maker = ex.maker();
    for (c, share) in payers.into_iter().zip(shares) {
        let take = share.min(ex.accounts[c].cash.max(0));
        if c != maker {
            transfer(ex, events, Some(c), Some(maker), take, "socialised");
        }
        collected += take;
    }
    let deficits: Vec<u128> = state.pending.iter().map(|(_, d)| *d as u128).collect();
    for ((a, _), part) in state.pending.iter().zip(split(collected, &deficits)) {
        transfer(ex, events, Some(maker), Some(*a), part, "socialised");
    }
    figures.socialised_usd += cash::to_f64(collected);
    figures.unresolved_usd += cash::to_f64(owed - collected);
    state.pending.clear();
}

/// What a step keeps between its liquidations: liquidators' capacity used, the ADL queues
/// (built once at the start of the step, as venues refresh their ADL ranking periodically) and
/// the deficits waiting to be socialised.
#[derive(Debug, Default)]
pub(crate) struct StepState {
    /// Notional each liquidator took this step.
    pub(crate) capacity: Vec<f64>,
    /// Per contract, the holders of long and of short lots in ADL order.
    queues: Vec<[Vec<usize>; 2]>,
    /// Per contract and side, the first entry of the queue not yet exhausted.
    cursors: Vec<[usize; 2]>,
    /// Deficits left after the fund and ADL.
    pending: Vec<(usize, Cash)>,
}

/// The step's state: ADL queues in the profile's order.
pub(crate) fn step_state(
    ex: &Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    rng: &mut ChaCha8Rng,
) -> Result<StepState, Error> {
    let scores = if profile.adl == Adl::Ranked { adl_scores(ex, priced)? } else { Vec::new() };
    let mut queues = Vec::with_capacity(ex.universe.len());
    for i in 0..ex.universe.len() {
        let mut sides: [Vec<usize>; 2] = [Vec::new(), Vec::new()];
        for (c, account) in ex.accounts.iter().enumerate() {
            let lots = account.lots_of(i);
            if lots != 0 {
                sides[usize::from(lots < 0)].push(c);
            }
        }
        for side in &mut sides {
            match profile.adl {
                Adl::Ranked => {
                    side.sort_by(|x, y| scores[*y].total_cmp(&scores[*x]).then(x.cmp(y)));
                }
                Adl::RandomStart if !side.is_empty() => {
                    let start = rng.random_range(0..side.len());
                    side.rotate_left(start);
                }
                _ => {}
            }
        }
        queues.push(sides);
    }
    let cursors = vec![[0, 0]; ex.universe.len()];
    Ok(StepState { capacity: vec![0.0; ex.markups.len()], queues, cursors, pending: Vec::new() })
}

/// Moves every position of `a` to opposite-side holders at the marks in queue order (all of
/// them in proportion to their lots under pro-rata; the maker takes what nobody holds, or
/// everything without ADL); the holders who took lots, with their weight in the loss (the
/// notional they took).
fn deleverage(
    ex: &mut Exchange,
    priced: &PricedMarket,
    profile: &Profile,
    a: usize,
    state: &mut StepState,
    events: &mut Vec<Event>,
) -> Result<Vec<(usize, u128)>, Error> {
    let maker = ex.maker();
    let mut takers: Vec<(usize, u128)> = Vec::new();
    for (i, held) in ex.accounts[a].lots.clone() {
        let mark = mark_ticks(ex, priced, i)?;
        let mut left = held.abs();
        // Holders of the opposite side: shorts against a long.
        let side = usize::from(held > 0);
        let opposite = |ex: &Exchange, c: usize| {
            let l = ex.accounts[c].lots_of(i);
            if c != a && l.signum() == -held.signum() { l.abs() } else { 0 }
        };
        let mut takes: Vec<(usize, i64)> = Vec::new();
        if profile.adl == Adl::ProRata {
            let holders: Vec<(usize, i64)> = state.queues[i][side]
                .iter()
                .map(|&c| (c, opposite(ex, c)))
                .filter(|(_, l)| *l > 0)
                .collect();
            let weights: Vec<u128> = holders.iter().map(|(_, l)| *l as u128).collect();
            let total: i64 = holders.iter().map(|(_, l)| l).sum();
            let parts = split(i128::from(left.min(total)), &weights);
            takes.extend(holders.iter().zip(parts).map(|((c, _), p)| (*c, p as i64)));
        } else if profile.adl != Adl::None {
            takes = queue_takes(ex, state, (i, side), left, opposite);
        }
        for (c, take) in takes {
            if take == 0 {
                continue;
            }
            fill(ex, events, (a, c), i, -held.signum() * take, mark, 'd', Some(a), (None, mark));
            left -= take;
            let weight = (take as u128) * (mark.max(1) as u128);
            match takers.iter_mut().find(|(t, _)| *t == c) {
                Some(t) => t.1 += weight,
                None => takers.push((c, weight)),
            }
        }
        if left > 0 {
            fill(
                ex,
                events,
                (a, maker),
                i,
                -held.signum() * left,
                mark,
                'd',
                Some(a),
                (None, mark),
            );
        }
    }
    Ok(takers)
}

/// Walks contract `i`'s queue on `side` from its cursor, taking up to `left` lots from each
/// holder's `room`, and moves the cursor past the holders exhausted.
fn queue_takes(
    ex: &Exchange,
    state: &mut StepState,
    (i, side): (usize, usize),
    mut left: i64,
    room_of: impl Fn(&Exchange, usize) -> i64,
) -> Vec<(usize, i64)> {
    let queue = &state.queues[i][side];
    let mut at = state.cursors[i][side];
    let mut takes = Vec::new();
    while left > 0 && at < queue.len() {
        let c = queue[at];
        let room = room_of(ex, c);
        let take = left.min(room);
        if take > 0 {
            takes.push((c, take));
            left -= take;
        }
        if take == room {
            at += 1;
        }
    }
    state.cursors[i][side] = at;
    takes
}

/// Each account's ADL score, profit × leverage (Binance's `PnL% × margin ratio` family):
/// `max(0, equity − deposit) / deposit × notional / equity`, 0 without positive equity.
fn adl_scores(ex: &Exchange, priced: &PricedMarket) -> Result<Vec<f64>, Error> {
    let mut scores = Vec::with_capacity(ex.accounts.len());
    for c in 0..ex.accounts.len() {
        let equity = cash::to_f64(equity_at_mark(ex, priced, c)?);
        let deposit = cash::to_f64(ex.accounts[c].deposit).max(1.0);
        let mut notional = 0.0;
        for &(i, l) in &ex.accounts[c].lots {
            notional += notional_usd(ex, priced, i, l)?;
        }
        let leverage = if equity > 0.0 { notional / equity } else { 0.0 };
        scores.push((equity - deposit).max(0.0) / deposit * leverage);
    }
    Ok(scores)
}

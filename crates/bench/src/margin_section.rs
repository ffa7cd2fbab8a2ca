//! `ballast bench --only margin`: the engine on a synthetic exchange: pricing the market (risk
//! arrays and tables), a full refresh, the floor under it, one what-if, memory and the digest.

use std::sync::Arc;

use margin::whatif::Trade;
use margin::{AccountBook, Engine, PricedMarket, Refresh, RiskArrays};
use product::Instrument;
use rayon::prelude::*;

use crate::{Error, Host, Options, best_of, digest, ensure, synthetic};

/// The margin section.
///
/// # Errors
/// The engine refusing the synthetic market or any of its accounts.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let (instruments_wanted, accounts, repetitions) = if args.quick {
        (400, 20_000, 2)
    } else {
        (args.instruments.clamp(10, 1_000_000), args.accounts.max(1), 5)
    };
    let positions = args.positions.clamp(1, 1_000);
    let engine = Engine::new(args.methodology.clone())?;
    let (market, instruments) = synthetic::exchange(instruments_wanted);
    let market = Arc::new(market);
    let scenarios = engine.methodology().scenario_set(basics::Currency::BTC)?.len();
    host.print(&format!(
        "margin: {}, {} instruments, {scenarios} scenarios per underlying, best of {repetitions}",
        args.methodology_name,
        instruments.len()
    ));
    let mut priced = Err(Error::new("no repetition ran"));
    let seconds = best_of(host, repetitions, || {
        priced = engine.price(&market, &instruments).map_err(Error::from);
    });
    let priced = priced?;
    let cells = priced.arrays().cells();
    host.print(&format!(
        "  priced market (risk arrays and tables)       {:>10.2} ms ({cells} cells, {:.1} MiB)",
        seconds * 1e3,
        cells as f64 * 8.0 / 1_048_576.0
    ));
    let futures: Vec<usize> =
        (0..instruments.len()).filter(|&i| !instruments[i].is_option()).collect();
    let book = synthetic::book(args.seed, accounts, positions, instruments.len(), &futures);
    let (positions_held, balances_held) = book.entries();
    let book_mib =
        (positions_held * 16 + balances_held * 24 + 2 * 8 * accounts) as f64 / 1_048_576.0;
    // The output is kept between refreshes, as a service does.
    let mut refresh = Refresh::default();
    let seconds = best_of(host, repetitions, || priced.refresh_into(&book, &mut refresh));
    ensure(refresh.failures().is_empty(), || {
        let (a, e) = refresh
            .failures()
            .iter()
            .next()
            .map_or((0, String::new()), |(a, e)| (*a, e.to_string()));
        format!("{} accounts refused, the first ({a}): {e}", refresh.failures().len())
    })?;
    host.print(&format!(
        "  full refresh: {accounts} accounts x {positions} positions  {:>10.2} ms \
         ({:.0} ns per account, {} threads; book {book_mib:.0} MiB)",
        seconds * 1e3,
        seconds * 1e9 / accounts as f64,
        rayon::current_num_threads()
    ));
    let mut least = 0.0;
    let seconds = best_of(host, repetitions, || least = sparse_sum_alone(priced.arrays(), &book));
    std::hint::black_box(least);
    host.print(&format!(
        "  floor: the same book's sparse sum alone      {:>10.2} ms (each unit's sum of \
         size x row and its worst cell, nothing else)",
        seconds * 1e3
    ));
    what_if(host, args, &priced, &book, &instruments[futures[0]], repetitions)?;
    let memory = host.peak_rss_mib().map_or_else(|| "unknown".to_owned(), |m| format!("{m:.0}"));
    host.print(&format!("  peak resident memory                         {memory:>10} MiB"));
    // After the memory figure: the digest's buffer is the benchmark's, not the engine's.
    let digest = digest::refresh(&priced, &refresh);
    host.print(&format!("  digest of every account's figures            {digest}"));
    Ok(())
}

/// The least work a full refresh of `book` does as designed, on the same threads and chunks: per
/// account and unit (underlying), the engine's own sparse sum `Σ size · row` over the padded
/// `f64` rows ([`margin::kernels::accumulate`]) and the smallest scenario cell. No collateral,
/// add-ons, offsets or output. It times how fast this machine streams the rows the accounts
/// hold, the floor under the refresh; the sum of the worst cells is returned so that none of it
/// can be optimised away.
pub fn sparse_sum_alone(arrays: &RiskArrays, book: &AccountBook) -> f64 {
    let underlyings: Vec<basics::Currency> =
        arrays.instruments().iter().map(Instrument::underlying).collect();
    // A small number per underlying, cheaper to compare than the currency code.
    let slots: Vec<usize> =
        underlyings.iter().map(|u| underlyings.partition_point(|v| v < u)).collect();
    let starts: Vec<usize> = (0..underlyings.len()).map(|r| arrays.row_start(r)).collect();
    let cells: Vec<usize> = (0..underlyings.len()).map(|r| arrays.row(r).len()).collect();
    let padded = (0..underlyings.len()).map(|r| arrays.padded_row(r).len()).max().unwrap_or(0);
    // Chunks of the book's own size; the scratch is per thread, so nothing allocates per account.
    let chunk = margin::BOOK_CHUNK_ACCOUNTS;
    (0..book.len().div_ceil(chunk))
        .into_par_iter()
        .map_init(
            || (vec![0.0; padded], Vec::with_capacity(64)),
            |(pnl, unit_starts), c| {
                let mut total = 0.0;
                for a in c * chunk..((c + 1) * chunk).min(book.len()) {
                    let held = book.account(a).positions;
                    for unit in held.chunk_by(|x, y| slots[x.0] == slots[y.0]) {
                        let row = unit[0].0;
                        unit_starts.clear();
                        unit_starts.extend(unit.iter().map(|(r, _)| starts[*r]));
                        let width = arrays.padded_row(row).len();
                        margin::kernels::accumulate(
                            &mut pnl[..width],
                            unit,
                            arrays.all_rows(),
                            unit_starts,
                        );
                        total += pnl[..cells[row]].iter().fold(f64::INFINITY, |w, p| w.min(*p));
                    }
                }
                total
            },
        )
        .sum()
}

/// One account's what-if (before and after one trade), timed over many rounds.
fn what_if(
    host: &dyn Host,
    args: &Options,
    priced: &PricedMarket,
    book: &AccountBook,
    traded: &Instrument,
    repetitions: usize,
) -> Result<(), Error> {
    let account = synthetic::portfolio(book, 0, priced.arrays().instruments())?;
    let trade = [Trade { instrument: *traded, size: 10_000.0, price: None }];
    let mut scratch = margin::Scratch::default();
    let rounds = if args.quick { 200 } else { 5_000 };
    let mut outcome = Ok(());
    let seconds = best_of(host, repetitions, || {
        for _ in 0..rounds {
            let what_if = margin::whatif::what_if(priced, &account, &trade, &mut scratch);
            outcome = what_if.map(|w| _ = std::hint::black_box(w));
        }
    });
    outcome?;
    host.print(&format!(
        "  what-if of one account (before and after)    {:>10.2} us",
        seconds * 1e6 / f64::from(rounds)
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use margin::Engine;

    use super::sparse_sum_alone;
    use crate::synthetic;

    /// The floor against the plain definition: per account and underlying, the smallest of the
    /// first `len` cells of `Σ size · row`, summed over the book (bit for bit: the same order of
    /// additions per cell).
    #[test]
    fn the_floor_sums_each_units_worst_cell() {
        let engine = Engine::new(testkit::ballast_pm()).unwrap();
        let (market, instruments) = synthetic::exchange(200);
        let priced = engine.price(&Arc::new(market), &instruments).unwrap();
        let arrays = priced.arrays();
        let book = synthetic::book(3, 300, 6, instruments.len(), &[]);
        let mut plain = 0.0;
        for a in 0..book.len() {
            let held = book.account(a).positions;
            for unit in
                held.chunk_by(|x, y| instruments[x.0].underlying() == instruments[y.0].underlying())
            {
                let len = arrays.row(unit[0].0).len();
                let worst = (0..len)
                    .map(|s| unit.iter().fold(0.0, |sum, &(r, q)| sum + q * arrays.row(r)[s]))
                    .fold(f64::INFINITY, f64::min);
                plain += worst;
            }
        }
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        assert_eq!(pool.install(|| sparse_sum_alone(arrays, &book)), plain);
    }
}

//! `ballast bench --only netting`: capital released by cross-venue netting on seeded books of
//! cross-venue hedges (each venue alone, netted, and one venue holding the whole book), and the
//! netting of 1,000,000 accounts over 3 venues: standalone margin at each venue, the committed
//! vectors on the standard set, the netted requirement and its allocation.

use std::sync::Arc;

use margin::Engine;
use market::MarketSnapshot;
use netting::seeded::{self, Strategy};
use netting::{CrossBook, NettedAccount, Netter, Policy};

use crate::{Error, Host, Options, ensure};

fn text_error(e: impl std::fmt::Display) -> Error {
    Error::new(e.to_string())
}

fn engine(name: &str) -> Result<Engine, Error> {
    match formats::bundled::bundled(name).map_err(text_error)? {
        formats::methodology::Profile::Portfolio(m) => Ok(Engine::new(*m)?),
        formats::methodology::Profile::PerPosition(_) => {
            Err(Error::new(format!("{name} is per position")))
        }
    }
}

/// The seeded venues: options at Ballast PM, perpetuals and futures at Deribit PM, coins at
/// Ballast PM.
fn venues(market: &MarketSnapshot) -> Result<Vec<netting::Venue>, Error> {
    let at = u64::try_from(market.valuation().secs()).map_err(text_error)?;
    seeded::venues(engine("ballast-pm")?, engine("deribit-pm")?, engine("ballast-pm")?, at)
        .map_err(text_error)
}

fn netted(
    market: &Arc<MarketSnapshot>,
    accounts: Vec<netting::AccountInput>,
) -> Result<(Vec<NettedAccount>, f64, f64), Error> {
    let book = CrossBook::new(venues(market)?, accounts).map_err(text_error)?;
    let standard = formats::bundled::standard_set().map_err(text_error)?;
    let at = u64::try_from(market.valuation().secs()).map_err(text_error)?;
    let policy = Policy::new(600, 3_600).map_err(text_error)?;
    let netter = Netter::new(&book, market, &standard, policy, at).map_err(text_error)?;
    let results = netter.run(&book);
    let out: Result<Vec<NettedAccount>, _> = results.into_iter().collect();
    let out = out.map_err(text_error)?;
    Ok((out, 0.0, 0.0))
}

/// The netting section.
///
/// # Errors
/// The bundled inputs refused, or a netted account above its standalone requirement.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let market = Arc::new(formats::bundled::sample_market().map_err(text_error)?);
    let index = 95_000.0;
    host.print("capital released by netting (seeded books, 1,000 accounts each; IM in USD)");
    host.print(&format!(
        "  {:<38} {:>16} {:>16} {:>16} {:>9}",
        "strategy", "venues alone", "netted", "one venue", "released"
    ));
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let accounts =
            seeded::accounts(strategy, 1_000, index, args.seed + i as u64).map_err(text_error)?;
        let (out, _, _) = netted(&market, accounts)?;
        let alone: f64 = out.iter().map(|n| n.standalone.im.to_f64()).sum();
        let net: f64 = out.iter().map(|n| n.netted.im.to_f64()).sum();
        let whole: f64 = out
            .iter()
            .map(|n| n.whole_book.iter().map(|w| w.1).fold(f64::INFINITY, f64::min))
            .sum();
        ensure(out.iter().all(|n| n.netted.im <= n.standalone.im), || {
            "netting raised a requirement".into()
        })?;
        host.print(&format!(
            "  {:<38} {alone:>16.0} {net:>16.0} {whole:>16.0} {:>8.1} %",
            strategy.name(),
            100.0 * (alone - net) / alone
        ));
    }
    let accounts = if args.quick { 30_000 } else { 1_000_000 };
    let per = accounts / 3;
    let mut book = Vec::with_capacity(accounts);
    for (i, strategy) in Strategy::ALL.into_iter().enumerate() {
        let count = if i == 2 { accounts - 2 * per } else { per };
        book.extend(
            seeded::accounts(strategy, count, index, args.seed + 10 + i as u64)
                .map_err(text_error)?,
        );
    }
    let start = host.seconds();
    let (out, _, _) = netted(&market, book)?;
    let seconds = host.seconds() - start;
    let released: f64 = out.iter().map(|n| n.released_im().to_f64()).sum();
    host.print(&format!(
        "netting: {accounts} accounts over 3 venues, {} threads",
        rayon::current_num_threads()
    ));
    host.print(&format!(
        "  pricing, standalone, vectors, netting, allocation {seconds:>8.2} s ({:.2} µs per \
         account; {released:.0} USD released)",
        seconds * 1e6 / accounts as f64
    ));
    Ok(())
}

//! `ballast bench --only netting`: capital released by cross-venue netting on seeded books of
//! cross-venue hedges (each venue alone, netted, and one venue holding the whole book), and the
//! netting of 1,000,000 accounts over 3 venues: standalone margin at each venue, the committed
//! vectors on the standard set, the netted requirement and its allocation.

use std::sync::Arc;

use margin::Engine;
use market::MarketSnapshot;
use netting::seeded::{self, Strategy};
use netting::{CrossBook, NettedAccount, Netter, Policy, RiskVector};

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

/// Nets `accounts` on `market`; the book comes back with the results, so that a caller timing
/// the netting frees its input after the clock stops.
fn netted(
    market: &Arc<MarketSnapshot>,
    accounts: Vec<netting::AccountInput>,
) -> Result<(Vec<NettedAccount>, CrossBook), Error> {
    let book = CrossBook::new(venues(market)?, accounts).map_err(text_error)?;
    let standard = formats::bundled::standard_set().map_err(text_error)?;
    let at = u64::try_from(market.valuation().secs()).map_err(text_error)?;
    let policy = Policy::new(600, 3_600).map_err(text_error)?;
    let netter = Netter::new(&book, market, &standard, policy, at).map_err(text_error)?;
    let results = netter.run(&book);
    let out: Result<Vec<NettedAccount>, _> = results.into_iter().collect();
    Ok((out.map_err(text_error)?, book))
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
        let (out, _) = netted(&market, accounts)?;
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
    let (out, book) = netted(&market, book)?;
    let seconds = host.seconds() - start;
    drop(book);
    let released: f64 = out.iter().map(|n| n.released_im().to_f64()).sum();
    host.print(&format!(
        "netting: {accounts} accounts over 3 venues, {} threads",
        rayon::current_num_threads()
    ));
    host.print(&format!(
        "  checks, pricing, standalone, vectors, netting, allocation {seconds:>8.2} s ({:.2} µs \
         per account; {released:.0} USD released)",
        seconds * 1e6 / accounts as f64
    ));
    hashing(host, if args.quick { 20_000 } else { 200_000 })
}

/// Committed vectors hashed one at a time (`RiskVector::hash`, RustCrypto's keccak) and four at
/// a time (`basics::keccak`), on one thread; the digests must agree.
fn hashing(host: &dyn Host, count: usize) -> Result<(), Error> {
    let standard = formats::bundled::standard_set().map_err(text_error)?;
    let market = formats::bundled::sample_market().map_err(text_error)?;
    let layout =
        margin::VectorLayout { units: market.underlyings().keys().map(|u| (*u, 54)).collect() };
    let cells = layout.len();
    let vectors: Vec<RiskVector> = (0..count)
        .map(|i| RiskVector {
            cells: (0..cells)
                .map(|c| ((i * 7_919 + c * 104_729) as i64 - 5_000_000) * 997)
                .collect(),
        })
        .collect();
    let start = host.seconds();
    let one: Vec<[u8; 32]> = vectors.iter().map(|v| v.hash(&standard.hash, &layout)).collect();
    let single = host.seconds() - start;
    let start = host.seconds();
    let mut bytes = Vec::new();
    let mut ends = Vec::with_capacity(count);
    for v in &vectors {
        v.encode_into(&standard.hash, &layout, &mut bytes);
        ends.push(bytes.len());
    }
    let four = basics::keccak::keccak256_concatenated(&bytes, &ends);
    let batched = host.seconds() - start;
    ensure(one == four, || "the four-lane keccak disagrees with sha3".into())?;
    host.print(&format!(
        "  vector hashes ({} bytes each, 1 thread, per vector): one at a time {:.0} ns, four at \
         a time {:.0} ns",
        ends[0],
        single * 1e9 / count as f64,
        batched * 1e9 / count as f64
    ));
    Ok(())
}

//! `ballast bench --only epoch`: one oracle epoch for a synthetic exchange, step by step.
//!
//! The steps are the ones a node runs for every epoch (pricing the market, the bulk refresh,
//! quantisation, the Merkle tree, the signatures). Portfolio hashes change only when a portfolio
//! changes, so a node keeps them with the accounts; hashing them all is timed on its own.

use std::sync::Arc;

use basics::Currency;
use epoch::AccountKey;
use oracle::{EpochTree, Signer, SignerSet, Verifier};
use rayon::prelude::*;

use crate::{Error, Host, Options, best_of, synthetic};

/// Signers of the benchmark federation, of which [`THRESHOLD`] sign.
const SIGNERS: u8 = 3;
const THRESHOLD: u8 = 2;

/// The epoch section.
///
/// # Errors
/// The engine, the tree or the signatures failing on the synthetic book.
pub fn run(host: &dyn Host, args: &Options) -> Result<(), Error> {
    let (instruments_wanted, accounts, repetitions) = if args.quick {
        (400, 20_000, 2)
    } else {
        (args.instruments.clamp(10, 1_000_000), args.accounts.max(1), 3)
    };
    let positions = args.positions.clamp(1, 1_000);
    let engine = margin::Engine::new(args.methodology.clone())?;
    let (market, instruments) = synthetic::exchange(instruments_wanted);
    let market = Arc::new(market);
    let futures: Vec<usize> =
        (0..instruments.len()).filter(|&i| !instruments[i].is_option()).collect();
    let book = synthetic::book(args.seed, accounts, positions, instruments.len(), &futures);
    host.print(&format!(
        "epoch: {}, {} instruments, {accounts} accounts x {positions} positions, best of \
         {repetitions}, {} threads",
        args.methodology_name,
        instruments.len(),
        rayon::current_num_threads()
    ));
    let mut keys = Ok(Vec::new());
    let seconds = best_of(host, 1, || keys = account_keys(&book, &instruments));
    let keys = keys?;
    line(host, "portfolio hashes (when portfolios change)", seconds);

    let mut priced = Err(Error::new("no repetition ran"));
    let t_arrays = best_of(host, repetitions, || {
        priced = engine.price(&market, &instruments).map_err(Error::from);
    });
    let priced = priced?;
    line(host, "priced market (risk arrays and tables)", t_arrays);
    let mut refresh = margin::Refresh::default();
    let t_refresh = best_of(host, repetitions, || priced.refresh_into(&book, &mut refresh));
    line(host, "margin of every account", t_refresh);
    let mut results = Ok(Vec::new());
    let t_quantise = best_of(host, repetitions, || {
        results = epoch::quantise(&priced, &refresh, &keys);
    });
    let results = results?;
    line(host, "quantisation (IM, MM up; equity down)", t_quantise);

    let as_of_secs = epoch::as_of_secs(&market)?;
    let header = oracle::EpochHeader {
        epoch: 1,
        as_of_secs,
        valid_until_secs: as_of_secs + 3_600,
        market_data_hash: formats::market::market_hash(&market).into(),
        methodology_hash: oracle::B256::ZERO,
        currency: Currency::USD,
    };
    let mut tree = Err(Error::new("no repetition ran"));
    let t_tree = best_of(host, repetitions, || {
        tree = EpochTree::build(&header, &results).map_err(Error::from);
    });
    let tree = tree?;
    line(host, "Merkle tree (leaves, sort, nodes)", t_tree);
    let (verifier, signers) = federation(args.seed)?;
    let mut signed = Err(Error::new("no repetition ran"));
    let t_sign = best_of(host, repetitions, || {
        signed = oracle::attest(&tree, &verifier, &signers).map_err(Error::from);
    });
    signed?;
    line(host, "EIP-712 report, 2 of 3 signatures", t_sign);
    let total = t_arrays + t_refresh + t_quantise + t_tree + t_sign;
    line(host, "epoch total (arrays to signatures)", total);
    host.print(&format!("  root {}", tree.root()));
    Ok(())
}

fn line(host: &dyn Host, label: &str, seconds: f64) {
    host.print(&format!("  {label:<44} {:>10.2} ms", seconds * 1e3));
}

/// Keys of every synthetic account: id `account-<i>`, and the hash of its portfolio.
fn account_keys(
    book: &margin::AccountBook,
    instruments: &[product::Instrument],
) -> Result<Vec<AccountKey>, Error> {
    (0..book.len())
        .into_par_iter()
        .map(|a| {
            let portfolio = synthetic::portfolio(book, a, instruments)?;
            Ok(AccountKey::new(&format!("account-{a}"), &portfolio))
        })
        .collect()
}

/// A 2-of-3 federation with keys derived from the seed.
fn federation(seed: u64) -> Result<(Verifier, Vec<Signer>), Error> {
    let signers: Vec<Signer> = (0..SIGNERS)
        .map(|i| Signer::from_bytes(&oracle::keccak256(format!("bench {seed} {i}")).0))
        .collect::<Result<_, _>>()?;
    let mut addresses: Vec<_> = signers.iter().map(Signer::address).collect();
    addresses.sort_unstable();
    let signer_set = SignerSet::new(addresses, THRESHOLD, 1)?;
    let domain =
        oracle::Domain { chain_id: 31_337, verifying_contract: oracle::Address::repeat_byte(0xba) };
    let quorum = signers.into_iter().take(usize::from(THRESHOLD)).collect();
    let bounds = oracle::Bounds { epoch_jump_max: 1, validity_secs_max: 3_600 };
    Ok((Verifier { domain, signer_set, bounds }, quorum))
}

//! `ballast bench --only epoch`: one oracle epoch for a synthetic exchange, step by step.
//!
//! The steps are the ones a node runs for every epoch (risk arrays, the bulk refresh,
//! quantisation, the Merkle tree, the signatures). Portfolio hashes change only when a portfolio
//! changes, so a node keeps them with the accounts; hashing them all is timed on its own.

use anyhow::{Result, anyhow, ensure};
use basics::{Currency, Money, Rounding};
use oracle::{EpochTree, Signer, SignerSet, Verifier};
use product::{Portfolio, Position};
use rayon::prelude::*;

use crate::bench::{BenchArgs, best_of};
use crate::epoch::{AccountKey, quantise, refresh};

/// Signers of the benchmark federation, of which [`THRESHOLD`] sign.
const SIGNERS: u8 = 3;
const THRESHOLD: u8 = 2;

/// Runs the section.
pub fn run(args: &BenchArgs) -> Result<()> {
    let (instruments_wanted, accounts, repetitions) = if args.quick {
        (400, 20_000, 2)
    } else {
        (args.instruments.clamp(10, 1_000_000), args.accounts.max(1), 3)
    };
    let positions = args.positions.clamp(1, 1_000);
    let engine = margin::Engine::new(crate::profile::load_methodology(&args.methodology)?)?;
    let (market, instruments) = testkit::synthetic_exchange(instruments_wanted);
    let futures: Vec<usize> =
        (0..instruments.len()).filter(|&i| !instruments[i].is_option()).collect();
    let book = testkit::synthetic_book(args.seed, accounts, positions, instruments.len(), &futures);
    println!(
        "epoch: {}, {} instruments, {accounts} accounts x {positions} positions, best of \
         {repetitions}, {} threads",
        args.methodology,
        instruments.len(),
        rayon::current_num_threads()
    );
    let mut keys = Vec::new();
    let seconds = best_of(1, || keys = account_keys(&book, &instruments).unwrap_or_default());
    ensure!(keys.len() == accounts, "hashing {} portfolios gave {} keys", accounts, keys.len());
    line("portfolio hashes (when portfolios change)", seconds);

    let mut arrays = None;
    let t_arrays = best_of(repetitions, || arrays = engine.risk_arrays(&market, &instruments).ok());
    let arrays = arrays.ok_or_else(|| anyhow!("risk arrays failed"))?;
    line("instrument risk arrays", t_arrays);
    let mut lines = Vec::new();
    let t_refresh = best_of(repetitions, || {
        lines = refresh(&engine, &arrays, &market, &book).unwrap_or_default();
    });
    ensure!(lines.len() == accounts, "refresh gave {} lines", lines.len());
    line("margin of every account", t_refresh);
    let mut results = Vec::new();
    let t_quantise = best_of(repetitions, || {
        results = quantise(&arrays, &lines, &keys).unwrap_or_default();
    });
    ensure!(results.len() == accounts, "quantisation gave {} results", results.len());
    line("quantisation (IM, MM up; equity down)", t_quantise);

    let as_of_secs = crate::epoch::as_of_secs(&market)?;
    let header = oracle::EpochHeader {
        epoch: 1,
        as_of_secs,
        valid_until_secs: as_of_secs + 3_600,
        market_data_hash: formats::market::market_hash(&market).into(),
        methodology_hash: oracle::B256::ZERO,
        currency: Currency::USD,
    };
    let mut tree = None;
    let t_tree = best_of(repetitions, || tree = EpochTree::build(&header, &results).ok());
    let tree = tree.ok_or_else(|| anyhow!("tree failed"))?;
    line("Merkle tree (leaves, sort, nodes)", t_tree);
    let (verifier, signers) = federation(args.seed)?;
    let mut signed = None;
    let t_sign = best_of(repetitions, || signed = oracle::attest(&tree, &verifier, &signers).ok());
    ensure!(signed.is_some(), "signing failed");
    line("EIP-712 report, 2 of 3 signatures", t_sign);
    let total = t_arrays + t_refresh + t_quantise + t_tree + t_sign;
    line("epoch total (arrays to signatures)", total);
    println!("  root {}", tree.root());
    Ok(())
}

fn line(label: &str, seconds: f64) {
    println!("  {label:<44} {:>10.2} ms", seconds * 1e3);
}

/// Keys of every synthetic account: id `account-<i>`, and the hash of its portfolio.
fn account_keys(
    book: &margin::AccountBook,
    instruments: &[product::Instrument],
) -> Result<Vec<AccountKey>> {
    (0..book.len())
        .into_par_iter()
        .map(|a| {
            let (positions, balances) = book.account(a);
            let positions = positions
                .iter()
                .map(|(row, size)| Position { instrument: instruments[*row], size: *size })
                .collect();
            let balances = balances
                .iter()
                .map(|(c, amount)| Money::from_f64(*amount, *c, Rounding::Down))
                .collect::<Result<Vec<_>, _>>()?;
            let portfolio = Portfolio::new(positions, &balances)?;
            Ok(AccountKey::new(&format!("account-{a}"), &portfolio))
        })
        .collect()
}

/// A 2-of-3 federation with keys derived from the seed.
fn federation(seed: u64) -> Result<(Verifier, Vec<Signer>)> {
    let signers: Vec<Signer> = (0..SIGNERS)
        .map(|i| Signer::from_bytes(&oracle::keccak256(format!("bench {seed} {i}")).0))
        .collect::<Result<_, _>>()?;
    let mut addresses: Vec<_> = signers.iter().map(Signer::address).collect();
    addresses.sort_unstable();
    let signer_set = SignerSet::new(addresses, THRESHOLD, 1)?;
    let domain =
        oracle::Domain { chain_id: 31_337, verifying_contract: oracle::Address::repeat_byte(0xba) };
    let quorum = signers.into_iter().take(usize::from(THRESHOLD)).collect();
    Ok((Verifier { domain, signer_set }, quorum))
}

//! `ballast net`: a cross-venue book netted per account (standalone per venue, netted,
//! allocation, capital released).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use basics::Money;
use clap::Args;
use formats::venues::{NettingDocument, VenueBookDocument};
use margin::Engine;
use market::MarketSnapshot;
use netting::{Bound, CrossBook, Fallback, NettedAccount, Netter, Policy, Status};

use crate::input::read_text;
use crate::profile::{load_market, load_methodology};

#[derive(Debug, Args)]
pub struct NetArgs {
    /// Cross-venue book JSON (venues and accounts with one leg per venue).
    #[arg(long)]
    pub book: PathBuf,
    /// Market JSON (the bundled sample market when absent).
    #[arg(long)]
    pub market: Option<PathBuf>,
    /// Netting time, RFC 3339 (the market's valuation time when absent).
    #[arg(long)]
    pub at: Option<String>,
    /// A venue whose feed is older than this is stale and its accounts' netting withdrawn.
    #[arg(long, default_value_t = 600)]
    pub stale_after_secs: u64,
    /// Grace period after a venue fails before its accounts may be liquidated for the
    /// fallback to standalone margin.
    #[arg(long, default_value_t = 3_600)]
    pub grace_secs: u64,
    /// Print the netting document (`formats::venues::NettingDocument`, the service's
    /// `POST /api/netting` answer) instead of the table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &NetArgs) -> Result<()> {
    let market = load_market(args.market.as_ref())?;
    let now_secs = match &args.at {
        Some(text) => u64::try_from(formats::parse_rfc3339(text, "--at")?.secs())
            .map_err(|_| anyhow!("--at: before 1970"))?,
        None => valuation_secs(&market)?,
    };
    let policy = Policy::new(args.stale_after_secs, args.grace_secs)?;
    let Netted { book, netter, standard, results } =
        net_file(&args.book, &market, now_secs, policy)?;
    if args.json {
        let ids: Vec<&str> = book.accounts().iter().map(|a| a.id.as_str()).collect();
        let document = NettingDocument::of(&standard, now_secs, &ids, &results);
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let out = render_book(&book, &netter, &standard, &results);
    print!("{out}");
    Ok(())
}

/// A cross-venue book netted: the book, its netter, the standard set and one result per account.
pub struct Netted {
    pub book: CrossBook,
    pub netter: Netter,
    pub standard: netting::StandardSet,
    pub results: Vec<Result<NettedAccount, netting::Error>>,
}

/// The market's valuation time in Unix seconds: the default netting time.
pub fn valuation_secs(market: &MarketSnapshot) -> Result<u64> {
    u64::try_from(market.valuation().secs()).map_err(|_| anyhow!("market before 1970"))
}

/// Reads the cross-venue book at `path` (venue methodologies bundled names or TOML files,
/// liquidation profiles bundled) and nets it on `market` at `now_secs` under `policy`.
pub fn net_file(
    path: &Path,
    market: &Arc<MarketSnapshot>,
    now_secs: u64,
    policy: Policy,
) -> Result<Netted> {
    let text = read_text(Some(path))?;
    let in_book = || format!("in {}", path.display());
    let document = VenueBookDocument::from_json(&text).with_context(in_book)?;
    let (venues, accounts) = document
        .to_parts(|name| {
            let methodology = load_methodology(name).map_err(|e| format!("{e:#}"))?;
            Engine::new(methodology).map_err(|e| e.to_string())
        })
        .with_context(in_book)?;
    for venue in &venues {
        liquidation::Profile::bundled(&venue.liquidation)
            .with_context(|| format!("venue {}: liquidation profile", venue.id))?;
    }
    let book = CrossBook::new(venues, accounts).with_context(in_book)?;
    let standard = formats::bundled::standard_set()?;
    let netter = Netter::new(&book, market, &standard, policy, now_secs)?;
    let results = netter.run(&book);
    Ok(Netted { book, netter, standard, results })
}

fn render_book(
    book: &CrossBook,
    netter: &Netter,
    standard: &netting::StandardSet,
    results: &[Result<NettedAccount, netting::Error>],
) -> String {
    let mut out = String::new();
    let layout: Vec<String> =
        netter.layout().units.iter().map(|(u, n)| format!("{u} {n}")).collect();
    let _ = writeln!(
        out,
        "standard set {} v{} ({}), scenarios: {}",
        standard.name,
        standard.version,
        formats::methodology::hash_hex(&standard.hash),
        layout.join(", ")
    );
    let (mut standalone, mut netted, mut refused) = (0_i128, 0_i128, 0);
    for (account, result) in book.accounts().iter().zip(results) {
        match result {
            Ok(n) => {
                standalone += n.standalone.im.raw();
                netted += n.netted.im.raw();
                render(&mut out, n);
            }
            Err(e) => {
                refused += 1;
                let _ = writeln!(out, "\naccount {}: refused: {e}", account.id);
            }
        }
    }
    let usd = |raw: i128| Money::from_raw(raw, basics::Currency::USD);
    let _ = writeln!(
        out,
        "\nbook: {} accounts ({refused} refused), standalone IM {:.2} USD, netted IM {:.2} USD, \
         released {:.2} USD",
        results.len(),
        usd(standalone).to_f64(),
        usd(netted).to_f64(),
        usd(standalone - netted).to_f64()
    );
    out
}

fn status_text(status: &Status) -> String {
    let reason = |f: &Fallback| match f {
        Fallback::OneVenue => "one venue".to_owned(),
        Fallback::NoController => "no controller (netting advisory)".to_owned(),
        Fallback::Halted(v) => format!("{v} halted"),
        Fallback::Stale(v) => format!("{v} stale"),
    };
    match status {
        Status::Netted => "netted".into(),
        Status::Standalone(f) => format!("standalone: {}", reason(f)),
        Status::Grace { reason: f, until_secs } => {
            format!("standalone in grace until {until_secs}: {}", reason(f))
        }
    }
}

fn render(out: &mut String, n: &NettedAccount) {
    let bound = match n.bound {
        Bound::Combined => "combined scan + add-ons",
        Bound::Floor => "whole-book floor",
        Bound::Cap => "standalone cap",
    };
    let _ = if n.status == Status::Netted {
        writeln!(out, "\naccount {}: netted (bound: {bound})", n.id)
    } else {
        writeln!(out, "\naccount {}: {}", n.id, status_text(&n.status))
    };
    let _ = writeln!(
        out,
        "  {:<12} {:>4} {:>18} {:>18} {:>18} {:>18} {:>14}",
        "venue", "ctl", "standalone IM", "credited IM", "credited MM", "collateral", "contribution"
    );
    for leg in &n.legs {
        let _ = writeln!(
            out,
            "  {:<12} {:>4} {:>18.2} {:>18.2} {:>18.2} {:>18.2} {:>14.2}",
            leg.venue.as_str(),
            if leg.controller { "*" } else { "" },
            leg.standalone.im.to_f64(),
            leg.credited.im.to_f64(),
            leg.credited.mm.to_f64(),
            leg.credited_collateral().to_f64(),
            leg.contribution
        );
    }
    for (venue, im, _) in &n.whole_book {
        let _ = writeln!(out, "  whole book at {venue}: IM {im:.2}");
    }
    let released = n.released_im().to_f64();
    let share =
        if n.standalone.im.raw() > 0 { 100.0 * released / n.standalone.im.to_f64() } else { 0.0 };
    let _ = writeln!(
        out,
        "  standalone IM {:.2}, netted IM {:.2} (MM {:.2}), combined {:.2}, released {:.2} \
         ({share:.1} %)",
        n.standalone.im.to_f64(),
        n.netted.im.to_f64(),
        n.netted.mm.to_f64(),
        n.combined.0,
        released
    );
}

//! `ballast price` and `ballast iv`.

use std::path::PathBuf;

use anyhow::{Result, anyhow};
use clap::Args;
use formats::price_request::{Contract, PriceResult, Purpose, parse_contracts};
use pricing::binomial::leisen_reimer_greeks;
use pricing::{Exercise, european, implied_vol};

use crate::input::read_text;

/// Arguments of `ballast price`.
#[derive(Debug, Args)]
pub struct PriceArgs {
    /// JSON file with an array of contracts; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `ballast iv`.
#[derive(Debug, Args)]
pub struct IvArgs {
    /// JSON file with an array of contracts carrying `price`; stdin when absent or `-`.
    pub file: Option<PathBuf>,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

fn price_one(contract: &Contract) -> Result<PriceResult, pricing::Error> {
    let forward = contract.inputs.forward();
    match contract.exercise {
        Exercise::European => {
            let g = european(&contract.inputs);
            Ok(PriceResult {
                price: g.price,
                delta: g.delta,
                gamma: g.gamma,
                vega: g.vega,
                theta: g.theta,
                rho: g.rho,
                vanna: Some(g.vanna),
                volga: Some(g.volga),
                forward,
                steps: None,
            })
        }
        Exercise::American => {
            let g = leisen_reimer_greeks(&contract.inputs, Exercise::American, contract.steps)?;
            Ok(PriceResult {
                price: g.tree.price,
                delta: g.tree.delta,
                gamma: g.tree.gamma,
                vega: g.vega,
                theta: g.theta,
                rho: g.rho,
                vanna: None,
                volga: None,
                forward,
                steps: Some(g.tree.steps),
            })
        }
    }
}

/// Runs `ballast price`.
pub fn run_price(args: &PriceArgs) -> Result<()> {
    let text = read_text(args.file.as_deref())?;
    let documents = parse_contracts(&text)?;
    let mut results = Vec::with_capacity(documents.len());
    for (i, document) in documents.iter().enumerate() {
        let contract = document.validate(i, Purpose::Price)?;
        let result =
            price_one(&contract).map_err(|e| anyhow!("contracts[{i}].{}: {}", e.field, e.kind))?;
        results.push(result);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
        return Ok(());
    }
    println!(
        "{:>4} {:>16} {:>12} {:>12} {:>12} {:>13} {:>12} {:>12} {:>12}",
        "#", "price", "delta", "gamma", "vega", "theta/yr", "rho", "vanna", "volga"
    );
    for (i, r) in results.iter().enumerate() {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.6}"));
        println!(
            "{i:>4} {:>16.10} {:>12.6} {:>12.8} {:>12.6} {:>13.6} {:>12.6} {:>12} {:>12}",
            r.price,
            r.delta,
            r.gamma,
            r.vega,
            r.theta,
            r.rho,
            opt(r.vanna),
            opt(r.volga)
        );
    }
    Ok(())
}

/// Runs `ballast iv`.
pub fn run_iv(args: &IvArgs) -> Result<()> {
    let text = read_text(args.file.as_deref())?;
    let documents = parse_contracts(&text)?;
    let mut vols = Vec::with_capacity(documents.len());
    for (i, document) in documents.iter().enumerate() {
        let contract = document.validate(i, Purpose::ImpliedVol)?;
        if contract.exercise == Exercise::American {
            return Err(anyhow!(
                "contracts[{i}].exercise: implied vol is computed for European options only"
            ));
        }
        let price = document.price.unwrap_or_default();
        let vol = implied_vol(price, &contract.inputs)
            .map_err(|e| anyhow!("contracts[{i}].{}: {}", e.field, e.kind))?;
        vols.push(vol);
    }
    if args.json {
        let rows: Vec<_> = vols.iter().map(|v| serde_json::json!({ "implied_vol": v })).collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{:>4} {:>20}", "#", "implied vol");
        for (i, v) in vols.iter().enumerate() {
            println!("{i:>4} {v:>20.15}");
        }
    }
    Ok(())
}

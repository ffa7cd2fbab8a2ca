//! Hostile input for every parser of this crate, on the stable toolchain: proptest mutates real
//! documents (the bundled market and methodologies, the example portfolio and book, Deribit's
//! payloads, a Derive case) byte by byte and token by token, and runs each mutant through the
//! whole conversion a user's file goes through. The only acceptable outcomes are a value or a
//! typed error: a panic fails the case and proptest shrinks it to the smallest input.
//!
//! CI runs 256 mutants per parser; a long run is
//! `PROPTEST_CASES=20000 cargo test --release -p formats --test fuzz` (figures in
//! `docs/formats.md`). Every crash found becomes a regression case in `REGRESSIONS` below.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use std::path::PathBuf;

use formats::deribit::{BookSummaryEntry, IndexPrice, PositionEntry, parse_result};
use formats::derive::CaseDocument;
use formats::market::MarketDocument;
use formats::methodology::Profile;
use formats::portfolio::{BookDocument, PortfolioDocument};
use proptest::prelude::*;

fn repo(path: &str) -> String {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

/// Tokens that break parsers written for well-behaved input: extremes, non-numbers, types in
/// the wrong place, unbalanced brackets, control and multi-byte characters.
const TOKENS: &[&str] = &[
    "1e308",
    "-1e308",
    "1e-320",
    "-0",
    "0",
    "NaN",
    "Infinity",
    "null",
    "true",
    "[]",
    "{}",
    "\"\"",
    "\"x\"",
    "18446744073709551616",
    "-9223372036854775809",
    "\u{0}",
    "\u{10FFFF}",
    "é",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "\"",
    "\\",
    "\n",
    "=",
    "'''",
    "#",
    "27DEC24",
    "BTC",
    "2026-13-45T25:61:61Z",
    "-PERPETUAL",
    "-C",
    "1e9999",
];

#[derive(Debug, Clone)]
enum Edit {
    /// Replace the byte at a position with another.
    Byte(usize, u8),
    /// Insert a token at a position.
    Token(usize, usize),
    /// Delete a span.
    Delete(usize, usize),
    /// Copy a span to another position.
    Copy(usize, usize, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Edit::Byte(at, b)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, t)| Edit::Token(at, t)),
        (any::<usize>(), 1_usize..64).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<usize>(), 1_usize..64, any::<usize>()).prop_map(|(a, n, b)| Edit::Copy(a, n, b)),
    ];
    prop::collection::vec(edit, 1..6)
}

/// `seed` with `edits` applied, as text (invalid UTF-8 replaced, as a reader of bytes would).
fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut bytes = seed.as_bytes().to_vec();
    for edit in edits {
        let len = bytes.len().max(1);
        match *edit {
            Edit::Byte(at, b) => {
                if !bytes.is_empty() {
                    bytes[at % len] = b;
                }
            }
            Edit::Token(at, t) => {
                let at = (at % len).min(bytes.len());
                bytes.splice(at..at, TOKENS[t].bytes());
            }
            Edit::Delete(at, n) => {
                let at = (at % len).min(bytes.len());
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            Edit::Copy(from, n, to) => {
                let from = (from % len).min(bytes.len());
                let end = (from + n).min(bytes.len());
                let piece: Vec<u8> = bytes[from..end].to_vec();
                let to = (to % len).min(bytes.len());
                bytes.splice(to..to, piece);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Every parser with its whole conversion; `Ok` for a value or a typed error.
fn parse(parser: &str, text: &str) {
    match parser {
        "market" => {
            if let Ok(document) = MarketDocument::from_json(text) {
                let _ = document.to_snapshot();
            }
        }
        "portfolio" => {
            if let Ok(document) = PortfolioDocument::from_json(text) {
                let _ = document.to_portfolio();
            }
        }
        "book" => {
            if let Ok(document) = BookDocument::from_json(text) {
                let _ = document.to_accounts();
            }
        }
        "methodology" => {
            let _ = Profile::from_toml(text);
        }
        "deribit-book" => {
            if let Ok(entries) = parse_result::<Vec<BookSummaryEntry>>(text) {
                let _ = formats::deribit::snapshot_from_book(&entries, None, None);
            }
        }
        "deribit-positions" => {
            if let Ok(entries) = parse_result::<Vec<PositionEntry>>(text) {
                let _ = formats::deribit::positions_to_portfolio(&entries);
            }
        }
        "deribit-index" => {
            let _ = parse_result::<IndexPrice>(text);
        }
        "derive" => {
            if let Ok(case) = CaseDocument::from_json(text) {
                let base = formats::bundled::bundled("derive-pmrm2").unwrap();
                let Profile::Portfolio(base) = base else { panic!("derive-pmrm2 is a portfolio") };
                let _ = case.to_case(&base);
            }
        }
        "price-request" => {
            if let Ok(contracts) = formats::price_request::parse_contracts(text) {
                for (i, c) in contracts.iter().enumerate() {
                    let _ = c.validate(i, formats::price_request::Purpose::Price);
                }
            }
        }
        other => panic!("no parser {other}"),
    }
}

fn seed(parser: &str) -> String {
    match parser {
        "market" => formats::bundled::SAMPLE_MARKET_JSON.to_owned(),
        "portfolio" => repo("examples/portfolios/hedged-book.json"),
        "book" => repo("examples/oracle/book.json"),
        "methodology" => repo("methodologies/ballast-pm.toml"),
        "deribit-book" => repo("examples/deribit/book_summary_btc.json"),
        "deribit-positions" => repo("examples/deribit/positions.json"),
        "deribit-index" => repo("examples/deribit/index_btc_usd.json"),
        "derive" => repo(&format!("../shared/conformance/derive-pmrm2/{DERIVE_CASE}")),
        "price-request" => PRICE_REQUEST.to_owned(),
        other => panic!("no seed {other}"),
    }
}

/// One of Derive's published PMRM_2 cases, the seed of the Derive parser's mutants.
const DERIVE_CASE: &str = "test_100_BasisContingencyParameters_FWD_CONT_SHOCK_UP_min.json";

const PRICE_REQUEST: &str = r#"[
  { "model": "black76", "kind": "call", "forward": 95000, "strike": 100000, "years": 0.1,
    "vol": 0.55, "rate": 0.0, "inverse": true, "exercise": "european" },
  { "model": "bsm", "kind": "put", "spot": 3500, "strike": 3000, "years": 0.5, "vol": 0.7,
    "rate": 0.04, "dividend": 0.0, "inverse": false, "exercise": "american", "steps": 200 }
]"#;

/// Inputs that once crashed a parser, kept as regression cases: (parser, input).
const REGRESSIONS: &[(&str, &str)] = &[];

const PARSERS: [&str; 9] = [
    "market",
    "portfolio",
    "book",
    "methodology",
    "deribit-book",
    "deribit-positions",
    "deribit-index",
    "derive",
    "price-request",
];

/// Each seed is itself valid: the mutants start from documents the parsers accept.
#[test]
fn the_seeds_parse() {
    assert!(MarketDocument::from_json(&seed("market")).unwrap().to_snapshot().is_ok());
    assert!(PortfolioDocument::from_json(&seed("portfolio")).unwrap().to_portfolio().is_ok());
    assert!(Profile::from_toml(&seed("methodology")).is_ok());
    assert!(formats::price_request::parse_contracts(PRICE_REQUEST).is_ok());
    for (parser, input) in REGRESSIONS {
        parse(parser, input);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutants_give_a_value_or_a_typed_error(parser in 0..PARSERS.len(), edits in edits()) {
        let parser = PARSERS[parser];
        parse(parser, &mutate(&seed(parser), &edits));
    }

    #[test]
    fn arbitrary_text_gives_a_value_or_a_typed_error(
        parser in 0..PARSERS.len(),
        text in ".{0,512}",
    ) {
        parse(PARSERS[parser], &text);
    }
}

//! Hostile input for the history reader on the stable toolchain: proptest mutates the head of
//! the real BTC daily file (bytes replaced, lines deleted or repeated, hostile tokens inserted)
//! and feeds arbitrary text, under every policy. A history or a typed error are the only
//! acceptable outcomes; a panic fails the case. CI runs 256 inputs per test; a long run is
//! `PROPTEST_CASES=20000 cargo test -p backtest --test fuzz` (figures in docs/formats.md).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use backtest::history::{Gaps, Interval, Policy, ReadConfig, read_csv};
use proptest::prelude::*;

fn head() -> &'static str {
    static HEAD: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HEAD.get_or_init(|| {
        let path =
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/history/btc-usd-daily.csv");
        let text = std::fs::read_to_string(path).unwrap();
        text.lines().take(400).collect::<Vec<_>>().join("\n")
    })
}

const TOKENS: &[&str] = &[
    ",",
    "\n",
    "\r\n",
    "-1",
    "0",
    "1e308",
    "NaN",
    "inf",
    "",
    "2013-02-30",
    "2013-04-23",
    "2013-04-23T25",
    "9999-12-31",
    "\u{feff}",
    "é",
    "date,open,high,low,close,volume",
];

fn configs() -> [ReadConfig; 4] {
    let config = |rows, gaps| ReadConfig { interval: Interval::Day, rows, gaps };
    [
        config(Policy::Refuse, Gaps::Refuse),
        config(Policy::Refuse, Gaps::Report),
        config(Policy::Skip, Gaps::Report),
        ReadConfig { interval: Interval::Hour, rows: Policy::Skip, gaps: Gaps::Report },
    ]
}

fn mutate(seed: &str, edits: &[(usize, usize, usize)]) -> String {
    let mut text = seed.to_owned();
    for &(kind, at, n) in edits {
        let at = floor_boundary(&text, at % text.len().max(1));
        match kind % 3 {
            0 => {
                let end = floor_boundary(&text, (at + n % 64).min(text.len()));
                text.replace_range(at..end, "");
            }
            1 => text.insert_str(at, TOKENS[n % TOKENS.len()]),
            _ => {
                let end = floor_boundary(&text, (at + n % 64).min(text.len()));
                let piece = text[at..end].to_owned();
                text.insert_str(at, &piece);
            }
        }
    }
    text
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_history_gives_bars_or_a_typed_error(
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 1..6),
    ) {
        let text = mutate(head(), &edits);
        for config in configs() {
            let _ = read_csv(&text, config);
        }
    }

    #[test]
    fn arbitrary_text_gives_bars_or_a_typed_error(text in ".{0,1024}") {
        for config in configs() {
            let _ = read_csv(&text, config);
        }
    }
}

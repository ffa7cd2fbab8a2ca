//! Hostile input for the SPAN parsers on the stable toolchain: proptest mutates the real
//! Takasbank risk-parameter file (bytes replaced, spans deleted or copied, markup tokens
//! inserted) and feeds arbitrary bytes; each mutant is parsed and, when it parses, regenerated
//! from its own inputs. A value or a typed error are the only acceptable outcomes: a panic fails
//! the case. CI runs 64 mutants of the 1.4 MB file and 256 arbitrary inputs; a long run is
//! `PROPTEST_CASES=5000 cargo test --release -p span --test fuzz` (figures in docs/formats.md).

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

use proptest::prelude::*;
use span::SpanFile;

fn takas() -> &'static [u8] {
    static FILE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    FILE.get_or_init(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/conformance/span-takasbank/takas.spn"
        );
        std::fs::read(path).unwrap()
    })
}

const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&amp;",
    b"&#0;",
    b"&bogus;",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"1e308",
    b"-1",
    b"NaN",
    b"",
    b"\xff\xfe",
    b"<ccDef>",
    b"</ccDef>",
    b"<phy>",
    b"<ra>",
];

fn mutate(seed: &[u8], edits: &[(usize, usize, usize)]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for &(kind, at, n) in edits {
        let at = at % bytes.len().max(1);
        match kind % 3 {
            0 => {
                let end = (at + n % 256).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                bytes.splice(at..at, TOKENS[n % TOKENS.len()].iter().copied());
            }
            _ => {
                let end = (at + n % 256).min(bytes.len());
                let piece = bytes[at..end].to_vec();
                let to = (at + n) % bytes.len().max(1);
                bytes.splice(to..to, piece);
            }
        }
    }
    bytes
}

fn parse(bytes: &[u8]) {
    if let Ok(file) = SpanFile::from_bytes(bytes) {
        let _ = span::regenerate(&file);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_risk_parameter_files_give_a_value_or_a_typed_error(
        edits in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 1..6),
    ) {
        parse(&mutate(takas(), &edits));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_give_a_value_or_a_typed_error(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        parse(&bytes);
        let _ = span::SpanPortfolio::from_json(&String::from_utf8_lossy(&bytes));
    }
}

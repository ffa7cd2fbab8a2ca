//! Fixtures shared by the oracle's integration tests.
//!
//! Synthetic results are derived from keccak of an index, not from a random generator, so every
//! run and every machine sees the same accounts.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]
#![allow(dead_code, reason = "each test binary uses a different part of the fixtures")]

pub mod chain;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use basics::{Currency, Money};
use oracle::{AccountResult, B256, Bounds, Domain, EpochHeader, Signer, SignerSet, Verifier};

/// Well-known development keys (Hardhat/Anvil accounts 0-4); their addresses are published.
pub const DEV_KEYS: [&str; 5] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];

pub fn hash_of(parts: &[&[u8]]) -> B256 {
    alloy_primitives::keccak256(parts.concat())
}

/// `count` synthetic account results for `epoch`: amounts spread over many magnitudes, some
/// negative equity, zero requirements now and then, every scenario index used.
pub fn synthetic_results(count: usize, salt: u64) -> Vec<AccountResult> {
    (0..count as u64)
        .map(|i| {
            let seed = hash_of(&[b"account", &salt.to_be_bytes(), &i.to_be_bytes()]);
            let word = u128::from_be_bytes(seed.0[..16].try_into().unwrap());
            let magnitude = 10u128.pow((i % 30) as u32);
            let im = if i % 17 == 0 { 0 } else { (word % magnitude.max(1)) as i128 + 1 };
            let mm = im / 2;
            let mtm = (word >> 64) as i128 % (magnitude as i128 + 1) - (magnitude as i128) / 3;
            AccountResult {
                account: seed,
                initial_margin: usdc(im),
                maintenance_margin: usdc(mm),
                mark_to_market: usdc(mtm),
                worst_scenario: (i % 400) as u16,
                portfolio_hash: hash_of(&[b"portfolio", &seed.0]),
            }
        })
        .collect()
}

pub fn usdc(raw: i128) -> Money {
    Money::from_raw(raw, Currency::USDC)
}

pub fn header(epoch: u64) -> EpochHeader {
    EpochHeader {
        epoch,
        as_of_secs: 1_700_000_000 + epoch * 60,
        valid_until_secs: 1_700_000_000 + epoch * 60 + 600,
        market_data_hash: hash_of(&[b"market", &epoch.to_be_bytes()]),
        methodology_hash: hash_of(&[b"methodology v1"]),
        currency: Currency::USDC,
    }
}

pub fn dev_signers(count: usize) -> Vec<Signer> {
    DEV_KEYS[..count].iter().map(|key| Signer::from_hex(key).unwrap()).collect()
}

pub fn signer_set_of(signers: &[Signer], threshold: u8) -> SignerSet {
    let mut addresses: Vec<_> = signers.iter().map(Signer::address).collect();
    addresses.sort();
    SignerSet::new(addresses, threshold, 7).unwrap()
}

/// The bounds the tests deploy with: sixteen epochs of slack, a day of validity.
pub const BOUNDS: Bounds = Bounds { epoch_jump_max: 16, validity_secs_max: 86_400 };

pub fn verifier(signers: &[Signer], threshold: u8, domain: Domain) -> Verifier {
    Verifier { domain, signer_set: signer_set_of(signers, threshold), bounds: BOUNDS }
}

/// The repository's `contracts/` folder.
pub fn contracts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts")
}

/// Runs a Node script from `contracts/` with `stdin`, returning stdout. Fails with the command
/// to run when the npm packages are not installed.
pub fn run_node(args: &[&str], stdin: &str) -> String {
    let dir = contracts_dir();
    assert!(
        dir.join("node_modules/@openzeppelin/merkle-tree").is_dir()
            && dir.join("node_modules/solc").is_dir(),
        "contracts/node_modules is missing: run `npm ci --prefix contracts` (Node 20+) first"
    );
    let mut child = Command::new("node")
        .args(args)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`node` must be on PATH (Node 20+) for the cross-checks against npm packages");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node {args:?} failed:\n{stderr}");
    String::from_utf8(output.stdout).unwrap()
}

//! An in-process EVM (revm, Cancun rules) running the real `BallastVerifier` bytecode, compiled
//! by `contracts/compile.mjs` with the pinned solc-js.

use std::path::PathBuf;
use std::sync::OnceLock;

use alloy_primitives::{Address, B256, Bytes, I256, U256};
use alloy_sol_types::{SolCall, SolError, SolType, sol, sol_data};
use oracle::{Bounds, Report, SignerSet};
use revm::context::TxEnv;
use revm::context_interface::result::{ExecutionResult, Output};
use revm::database::{CacheDB, EmptyDB};
use revm::handler::{MainnetContext, MainnetEvm};
use revm::primitives::TxKind;
use revm::primitives::hardfork::SpecId;
use revm::{Context, ExecuteCommitEvm, ExecuteEvm, MainBuilder, MainContext};

use super::{contracts_dir, run_node};

sol! {
    struct MarginRoot {
        bytes32 root;
        uint64 epoch;
        uint64 asOf;
        uint64 validUntil;
        uint32 leafCount;
        bytes32 marketDataHash;
        bytes32 methodologyHash;
        bytes32 signerSetDigest;
    }
    struct AccountLeaf {
        bytes32 account;
        uint256 initialMargin;
        uint256 maintenanceMargin;
        int256 markToMarket;
        uint16 worstScenario;
        bytes32 portfolioHash;
    }
    function submitRoot(MarginRoot report, bytes[] signatures);
    function verifyAccount(uint64 epoch, bytes32 account, uint256 initialMargin,
        uint256 maintenanceMargin, int256 markToMarket, uint16 worstScenario,
        bytes32 portfolioHash, bytes32[] proof) returns (bool);
    function verifyAccounts(uint64 epoch, AccountLeaf[] leaves, bytes32[] proof,
        bool[] proofFlags) returns (bool);
    function digestOf(MarginRoot report) returns (bytes32);
    function domainSeparator() returns (bytes32);
    function signerSetDigest() returns (bytes32);
    function lastEpoch() returns (uint64);
    function rootOf(uint64 epoch) returns (bytes32);
    error Rejected(uint8 code);

    struct VenueLeaf {
        bytes32 account;
        bytes32 venue;
        uint64 chainId;
        uint256 initialMargin;
        uint256 maintenanceMargin;
        int256 equity;
        uint256 lienIn;
        uint256 lienOut;
        uint8 status;
        uint64 graceUntil;
        bool controller;
        bytes32 vectorHash;
    }
    #[derive(Debug)]
    struct Credit {
        uint256 initialMargin;
        uint256 maintenanceMargin;
        int256 collateral;
        bool liquidatable;
        bool controller;
    }
    function creditOf(uint64 epoch, VenueLeaf leaf, bytes32[] proof) returns (Credit credit);
    function venueLeafHash(uint64 epoch, VenueLeaf leaf) returns (bytes32);
}

/// Chain id of the test chain (Anvil's default).
pub const CHAIN_ID: u64 = 31_337;

/// Runs `contracts/compile.mjs` once per test process, into a folder of its own so concurrent
/// test binaries never read each other's half-written output, and returns the folder.
fn artifacts() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out: PathBuf = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ballast-contracts-{}", std::process::id()));
        let script = contracts_dir().join("compile.mjs");
        run_node(&[script.to_str().unwrap(), out.to_str().unwrap()], "");
        out
    })
}

/// The creation bytecode of contract `name` (`BallastVerifier`, `BallastVenue`).
pub fn bytecode(name: &str) -> Bytes {
    let text = std::fs::read_to_string(artifacts().join(format!("{name}.json"))).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    json["bytecode"].as_str().unwrap().parse().unwrap()
}

/// The verifier's creation bytecode.
pub fn verifier_bytecode() -> Bytes {
    bytecode("BallastVerifier")
}

/// What one transaction did.
#[derive(Debug)]
pub struct Outcome {
    pub success: bool,
    pub output: Bytes,
    pub gas_used: u64,
}

impl Outcome {
    /// The code of a `Rejected(code)` revert, or `None` for success or any other revert.
    pub fn rejection(&self) -> Option<u8> {
        if self.success {
            return None;
        }
        Rejected::abi_decode(&self.output).ok().map(|error| error.code)
    }
}

pub struct Chain {
    evm: MainnetEvm<MainnetContext<CacheDB<EmptyDB>>>,
    pub sender: Address,
    pub id: u64,
}

impl Chain {
    pub fn new(timestamp_secs: u64) -> Chain {
        Chain::with_id(CHAIN_ID, timestamp_secs)
    }

    /// A chain with EIP-155 id `chain_id`.
    pub fn with_id(chain_id: u64, timestamp_secs: u64) -> Chain {
        let ctx = Context::mainnet()
            .with_db(CacheDB::<EmptyDB>::default())
            .modify_cfg_chained(|cfg| {
                cfg.chain_id = chain_id;
                cfg.set_spec_and_mainnet_gas_params(SpecId::CANCUN);
                // The sender's nonce is not what these tests are about.
                cfg.disable_nonce_check = true;
            })
            .modify_block_chained(|block| {
                block.timestamp = U256::from(timestamp_secs);
                block.gas_limit = 30_000_000;
            });
        Chain { evm: ctx.build_mainnet(), sender: Address::repeat_byte(0x5e), id: chain_id }
    }

    pub fn set_time(&mut self, timestamp_secs: u64) {
        self.evm.ctx.block.timestamp = U256::from(timestamp_secs);
    }

    fn tx(&self, kind: TxKind, data: Bytes) -> TxEnv {
        TxEnv::builder()
            .caller(self.sender)
            .kind(kind)
            .data(data)
            .gas_limit(10_000_000)
            .gas_price(0)
            .chain_id(Some(self.id))
            .build()
            .unwrap()
    }

    /// Deploys `BallastVerifier(signers, threshold, configVersion, maxEpochJump, maxValidity)`.
    pub fn deploy(&mut self, set: &SignerSet, bounds: Bounds) -> Result<Address, Outcome> {
        let (signers, threshold) = (set.signers().to_vec(), set.threshold());
        self.deploy_raw(signers, threshold, set.config_version(), bounds)
    }

    pub fn deploy_raw(
        &mut self,
        signers: Vec<Address>,
        threshold: u8,
        version: u64,
        bounds: Bounds,
    ) -> Result<Address, Outcome> {
        type Args = (
            sol_data::Array<sol_data::Address>,
            sol_data::Uint<8>,
            sol_data::Uint<64>,
            sol_data::Uint<64>,
            sol_data::Uint<64>,
        );
        let mut code = verifier_bytecode().to_vec();
        let (jump, validity) = (bounds.epoch_jump_max, bounds.validity_secs_max);
        code.extend(Args::abi_encode_params(&(signers, threshold, version, jump, validity)));
        self.create(code)
    }

    /// Deploys `BallastVenue(verifier, venue)`.
    pub fn deploy_venue(&mut self, verifier: Address, venue: B256) -> Result<Address, Outcome> {
        type Args = (sol_data::Address, sol_data::FixedBytes<32>);
        let mut code = bytecode("BallastVenue").to_vec();
        code.extend(Args::abi_encode_params(&(verifier, venue)));
        self.create(code)
    }

    fn create(&mut self, code: Vec<u8>) -> Result<Address, Outcome> {
        let tx = self.tx(TxKind::Create, code.into());
        let result = self.evm.transact_commit(tx).unwrap();
        match result {
            ExecutionResult::Success { output: Output::Create(_, Some(address)), .. } => {
                Ok(address)
            }
            other => Err(outcome(other)),
        }
    }

    /// A committed transaction.
    pub fn send(&mut self, to: Address, data: Vec<u8>) -> Outcome {
        let tx = self.tx(TxKind::Call(to), data.into());
        outcome(self.evm.transact_commit(tx).unwrap())
    }

    /// A call whose state changes are dropped, like `eth_call`.
    pub fn call(&mut self, to: Address, data: Vec<u8>) -> Outcome {
        let tx = self.tx(TxKind::Call(to), data.into());
        outcome(self.evm.transact(tx).unwrap().result)
    }

    pub fn view<C: SolCall>(&mut self, to: Address, call: &C) -> C::Return {
        let outcome = self.call(to, call.abi_encode());
        assert!(outcome.success, "view call reverted: {outcome:?}");
        C::abi_decode_returns(&outcome.output).unwrap()
    }
}

fn outcome(result: ExecutionResult) -> Outcome {
    let gas_used = result.tx_gas_used();
    let success = result.is_success();
    let output = result.into_output().unwrap_or_default();
    Outcome { success, output, gas_used }
}

pub fn margin_root(report: &Report) -> MarginRoot {
    MarginRoot {
        root: report.root,
        epoch: report.epoch,
        asOf: report.as_of_secs,
        validUntil: report.valid_until_secs,
        leafCount: report.leaf_count,
        marketDataHash: report.market_data_hash,
        methodologyHash: report.methodology_hash,
        signerSetDigest: report.signer_set_digest,
    }
}

pub fn submit_call(report: &Report, signatures: &[Bytes]) -> Vec<u8> {
    submitRootCall { report: margin_root(report), signatures: signatures.to_vec() }.abi_encode()
}

pub fn verify_call(leaf: &oracle::Leaf, proof: &[alloy_primitives::B256]) -> Vec<u8> {
    let result = leaf.result(basics::Currency::USDC);
    verifyAccountCall {
        epoch: leaf.epoch(),
        account: result.account,
        initialMargin: U256::from(result.initial_margin.raw() as u128),
        maintenanceMargin: U256::from(result.maintenance_margin.raw() as u128),
        markToMarket: alloy_primitives::I256::try_from(result.mark_to_market.raw()).unwrap(),
        worstScenario: result.worst_scenario,
        portfolioHash: result.portfolio_hash,
        proof: proof.to_vec(),
    }
    .abi_encode()
}

pub fn account_leaf(leaf: &oracle::Leaf) -> AccountLeaf {
    let result = leaf.result(basics::Currency::USDC);
    AccountLeaf {
        account: result.account,
        initialMargin: U256::from(result.initial_margin.raw() as u128),
        maintenanceMargin: U256::from(result.maintenance_margin.raw() as u128),
        markToMarket: alloy_primitives::I256::try_from(result.mark_to_market.raw()).unwrap(),
        worstScenario: result.worst_scenario,
        portfolioHash: result.portfolio_hash,
    }
}

/// Intrinsic gas of a plain call.
const TX_BASE_GAS: u64 = 21_000;

/// Calldata gas under Cancun rules: 4 per zero byte, 16 per other byte.
pub fn calldata_gas(data: &[u8]) -> u64 {
    data.iter().map(|&b| if b == 0 { 4 } else { 16 }).sum()
}

/// "tx gas = 21,000 base + calldata + execution", for the printed gas figures.
pub fn describe_gas(tx_gas: u64, data: &[u8]) -> String {
    let calldata = calldata_gas(data);
    let execution = tx_gas - TX_BASE_GAS - calldata;
    format!("{tx_gas} (21000 base + {calldata} calldata + {execution} execution)")
}

/// The contract's form of a venue leaf.
pub fn venue_leaf(leaf: &oracle::VenueLeaf) -> VenueLeaf {
    let r = leaf.result();
    let uint = |amount: basics::Money| U256::from(u128::try_from(amount.raw()).unwrap());
    VenueLeaf {
        account: r.account,
        venue: r.venue,
        chainId: r.chain_id,
        initialMargin: uint(r.initial_margin),
        maintenanceMargin: uint(r.maintenance_margin),
        equity: I256::try_from(r.equity.raw()).unwrap(),
        lienIn: uint(r.lien_in),
        lienOut: uint(r.lien_out),
        status: r.status.code(),
        graceUntil: r.status.grace_until_secs(),
        controller: r.controller,
        vectorHash: r.vector_hash,
    }
}

/// The calldata of `creditOf(epoch, leaf, proof)`.
pub fn credit_call(leaf: &oracle::VenueLeaf, proof: &[B256]) -> Vec<u8> {
    creditOfCall { epoch: leaf.epoch(), leaf: venue_leaf(leaf), proof: proof.to_vec() }.abi_encode()
}

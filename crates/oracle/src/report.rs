//! The signed report: an EIP-712 `MarginRoot` under the "Ballast Risk Oracle" domain, and the
//! signer set whose digest it carries.

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_sol_types::{Eip712Domain, SolStruct, SolType, sol_data};

use crate::limits::SIGNERS_MAX;
use crate::{Error, ErrorKind};

/// The EIP-712 domain name; the contract passes the same string to OpenZeppelin's `EIP712`.
pub const DOMAIN_NAME: &str = "Ballast Risk Oracle";
/// The EIP-712 domain version; bump it with any change to the signed struct.
pub const DOMAIN_VERSION: &str = "1";

mod abi {
    #![allow(missing_docs)]
    alloy_sol_types::sol! {
        /// The EIP-712 struct that oracle nodes sign, field for field as the contract hashes it.
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
    }
}

/// Where a report is valid: one chain and one verifier contract.
///
/// Binding both into the signed hash means a report signed for one deployment cannot be replayed
/// against another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Domain {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Address of the `BallastVerifier` contract.
    pub verifying_contract: Address,
}

impl Domain {
    /// The full EIP-712 domain, with the fixed name and version.
    #[must_use]
    pub fn eip712(&self) -> Eip712Domain {
        Eip712Domain::new(
            Some(DOMAIN_NAME.into()),
            Some(DOMAIN_VERSION.into()),
            Some(U256::from(self.chain_id)),
            Some(self.verifying_contract),
            None,
        )
    }

    /// The domain separator, as OpenZeppelin's `_domainSeparatorV4()` computes it.
    #[must_use]
    pub fn separator(&self) -> B256 {
        self.eip712().separator()
    }
}

/// The signed root report of one epoch. Fields mirror `MarginRoot`.
///
/// Plain data without invariants: a verifier must be able to hold, hash and reject any report,
/// including nonsense, so nothing is checked on construction. Its JSON form (snake_case field
/// names, hashes as 0x hex) is the one in the report file and in the federation's answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// Merkle root over the epoch's leaves.
    pub root: B256,
    /// Epoch number; accepted only above the last accepted epoch.
    pub epoch: u64,
    /// Valuation time, Unix seconds; the report is not valid before it.
    pub as_of_secs: u64,
    /// Expiry, Unix seconds; the report is not valid after it.
    pub valid_until_secs: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u32,
    /// Hash of the market snapshot.
    pub market_data_hash: B256,
    /// Hash of the methodology and parameters.
    pub methodology_hash: B256,
    /// [`SignerSet::digest`] of the set that signs it, so a rotated set voids old reports.
    pub signer_set_digest: B256,
}

impl Report {
    /// The EIP-712 struct hash, `hashStruct(MarginRoot)`.
    #[must_use]
    pub fn struct_hash(&self) -> B256 {
        self.to_abi().eip712_hash_struct()
    }

    /// The digest that signers sign and `ecrecover` checks:
    /// `keccak256("\x19\x01" ‖ domainSeparator ‖ hashStruct(report))`.
    #[must_use]
    pub fn signing_hash(&self, domain: &Domain) -> B256 {
        self.to_abi().eip712_signing_hash(&domain.eip712())
    }

    /// The `MarginRoot` type string, for documentation and the contract cross-check.
    #[must_use]
    pub fn type_string() -> String {
        abi::MarginRoot::eip712_encode_type().into_owned()
    }

    fn to_abi(self) -> abi::MarginRoot {
        abi::MarginRoot {
            root: self.root,
            epoch: self.epoch,
            asOf: self.as_of_secs,
            validUntil: self.valid_until_secs,
            leafCount: self.leaf_count,
            marketDataHash: self.market_data_hash,
            methodologyHash: self.methodology_hash,
            signerSetDigest: self.signer_set_digest,
        }
    }
}

/// A report with its signatures and the configuration it claims to be signed under.
///
/// The domain and signer set in the file are claims: a verifier checks the report against the
/// configuration it trusts, never against these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedReport {
    /// The deployment the report is signed for.
    pub domain: Domain,
    /// The signer set the report names.
    pub signer_set: SignerSet,
    /// The report.
    pub report: Report,
    /// Signatures as submitted to `submitRoot`, in signer order. Raw bytes, because a verifier
    /// must be able to read and reject a malformed one.
    pub signatures: Vec<Bytes>,
}

/// The oracle's signers, the number of signatures a report needs, and the config version.
///
/// Validated once: addresses strictly ascending (so a quorum check is a single pass and
/// duplicates are impossible), none zero (`ecrecover`'s failure value), `1 <= threshold <= n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerSet {
    signers: Vec<Address>,
    threshold: u8,
    config_version: u64,
}

impl SignerSet {
    /// Validates a signer set.
    ///
    /// # Errors
    /// `OutOfRange` for an empty or oversized set, a zero address or a threshold outside
    /// `1..=n`; `NotAscending` when addresses are not strictly ascending.
    pub fn new(
        signers: Vec<Address>,
        threshold: u8,
        config_version: u64,
    ) -> Result<SignerSet, Error> {
        if signers.is_empty() || signers.len() > SIGNERS_MAX {
            let rule = format!("1..={SIGNERS_MAX} signers, got {}", signers.len());
            return Err(Error::range("signers", rule));
        }
        if signers.contains(&Address::ZERO) {
            return Err(Error::range("signers", "the zero address cannot sign"));
        }
        if let Some([_, second]) = signers.windows(2).find(|pair| pair[0] >= pair[1]) {
            return Err(Error::new("signers", ErrorKind::NotAscending(second.to_string())));
        }
        if threshold == 0 || usize::from(threshold) > signers.len() {
            let rule = format!("1..={} signatures, got {threshold}", signers.len());
            return Err(Error::range("threshold", rule));
        }
        Ok(SignerSet { signers, threshold, config_version })
    }

    /// The signer addresses, strictly ascending.
    #[must_use]
    pub fn signers(&self) -> &[Address] {
        &self.signers
    }

    /// Signatures needed for a report to be accepted.
    #[must_use]
    pub fn threshold(&self) -> u8 {
        self.threshold
    }

    /// The configuration counter; bumping it voids every report signed under the old one.
    #[must_use]
    pub fn config_version(&self) -> u64 {
        self.config_version
    }

    /// Whether `address` is one of the signers.
    #[must_use]
    pub fn contains(&self, address: &Address) -> bool {
        self.signers.binary_search(address).is_ok()
    }

    /// `keccak256(abi.encode(address[] signers, uint8 threshold, uint64 configVersion))`.
    #[must_use]
    pub fn digest(&self) -> B256 {
        type Encoding = (sol_data::Array<sol_data::Address>, sol_data::Uint<8>, sol_data::Uint<64>);
        let values = (self.signers.clone(), self.threshold, self.config_version);
        keccak256(Encoding::abi_encode_params(&values))
    }
}

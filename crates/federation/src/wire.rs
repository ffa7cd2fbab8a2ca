//! What travels between the aggregator and the nodes, as JSON over HTTP.

use oracle::{Address, B256, Bytes, RejectionCode, Report};
use serde::{Deserialize, Serialize};

/// Path of the signing endpoint: `POST` an [`EpochRequest`], get a [`NodeAnswer`].
pub const EPOCHS_PATH: &str = "/v1/epochs";
/// Path of the identity endpoint: `GET` a [`NodeIdentity`].
pub const IDENTITY_PATH: &str = "/v1/identity";
/// Header of the aggregator's tag on an [`EpochRequest`]: HMAC-SHA256 of the exact body bytes
/// under the secret the aggregator and the nodes share, as 64 hex digits. A node signs nothing
/// without it, so a plain HTTP request from anyone else is refused before any work.
pub const AUTH_HEADER: &str = "x-ballast-auth";

type Tagger = hmac::Hmac<sha2::Sha256>;

/// The tag of `body` under `secret`, for [`AUTH_HEADER`].
#[must_use]
pub fn tag(secret: &[u8], body: &[u8]) -> String {
    use hmac::{KeyInit as _, Mac as _};
    let Ok(mut mac) = Tagger::new_from_slice(secret) else {
        panic!("Invariant: HMAC takes a key of any length");
    };
    mac.update(body);
    alloy_primitives::hex::encode(mac.finalize().into_bytes())
}

/// Whether `tag_hex` is the tag of `body` under `secret` (compared in constant time).
#[must_use]
pub fn is_authentic(secret: &[u8], body: &[u8], tag_hex: &str) -> bool {
    use hmac::{KeyInit as _, Mac as _};
    let (Ok(tag), Ok(mut mac)) =
        (alloy_primitives::hex::decode(tag_hex), Tagger::new_from_slice(secret))
    else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// The aggregator's question: compute and sign epoch `epoch` valued at `as_of_secs`, valid until
/// `valid_until_secs`. Market data and methodology are the node's own; if its inputs differ from
/// its peers', its report differs too and cannot join their quorum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EpochRequest {
    /// Epoch number, at least 1.
    pub epoch: u64,
    /// Valuation time, Unix seconds.
    pub as_of_secs: u64,
    /// Expiry of the report, Unix seconds.
    pub valid_until_secs: u64,
}

/// A node's signed answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeAnswer {
    /// The node's address; the aggregator checks that the signature recovers to it.
    pub signer: Address,
    /// The report the node computed.
    pub report: Report,
    /// The EIP-712 digest of the report, for logs; the aggregator recomputes it.
    pub digest: B256,
    /// The node's 65-byte signature over the digest.
    pub signature: Bytes,
}

/// A node's refusal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeRefusal {
    /// The stable code, when the refusal is a business rejection (a stale epoch).
    pub code: Option<RejectionCode>,
    /// A human-readable reason.
    pub message: String,
}

/// Who a node is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeIdentity {
    /// The node's signing address.
    pub signer: Address,
    /// The highest epoch the node has signed; 0 before the first.
    pub last_signed_epoch: u64,
}

/// The path of an epoch's leaves file.
#[must_use]
pub fn leaves_path(epoch: u64) -> String {
    format!("{EPOCHS_PATH}/{epoch}/leaves")
}

/// The path of one account's proof file.
#[must_use]
pub fn account_path(epoch: u64, account: &B256) -> String {
    format!("{EPOCHS_PATH}/{epoch}/accounts/{account}")
}

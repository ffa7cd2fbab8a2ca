//! secp256k1 keys, Ethereum-style 65-byte signatures, and recovery with the contract's rules.

use std::fmt;

use alloy_primitives::{Address, B256, U256, keccak256, uint};
use k256::ecdsa::{RecoveryId, SigningKey, VerifyingKey};

use crate::report::{Domain, Report};
use crate::verify::RejectionCode;
use crate::{Error, ErrorKind};

/// Bytes of a signature: `r ‖ s ‖ v`.
pub const SIGNATURE_BYTES: usize = 65;

/// Half the secp256k1 group order: OpenZeppelin's `ECDSA` rejects any `s` above it, so each
/// signature has exactly one accepted form (no malleability).
const SECP256K1_HALF_ORDER: U256 =
    uint!(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF5D576E7357A4501DDFE92F46681B20A0_U256);

/// A 65-byte `r ‖ s ‖ v` signature with low `s` and `v` in {27, 28}, as this crate produces.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; SIGNATURE_BYTES]);

impl Signature {
    /// The 65 bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SIGNATURE_BYTES] {
        &self.0
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", alloy_primitives::hex::encode(self.0))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An oracle node's secp256k1 key and the Ethereum address derived from it.
///
/// Signing is RFC 6979 deterministic, so the same key and digest always give the same bytes:
/// honest nodes that agree on a report produce reproducible signatures.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    address: Address,
}

impl fmt::Debug for Signer {
    /// Shows the address only; the secret never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer from its 32-byte secret.
    ///
    /// # Errors
    /// `InvalidKey` for zero or a value not below the group order.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Signer, Error> {
        let key =
            SigningKey::from_slice(secret).map_err(|_| Error::new("key", ErrorKind::InvalidKey))?;
        let address = address_of(key.verifying_key());
        Ok(Signer { key, address })
    }

    /// A signer from 64 hex digits, with or without `0x`, surrounding whitespace ignored.
    ///
    /// # Errors
    /// `Syntax` when the text is not 32 bytes of hex; `InvalidKey` as for [`Signer::from_bytes`].
    pub fn from_hex(text: &str) -> Result<Signer, Error> {
        let secret: B256 = text
            .trim()
            .parse()
            .map_err(|_| Error::syntax("key", "64 hex digits (a 32-byte secp256k1 secret)"))?;
        Signer::from_bytes(&secret.0)
    }

    /// The Ethereum address of the key.
    #[must_use]
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest. The result is recovered and checked before it is returned.
    #[must_use]
    pub fn sign_digest(&self, digest: &B256) -> Signature {
        // k256 normalises to low s and flips the recovery id to match.
        let (signature, recovery_id) = self.key.sign_prehash_recoverable(digest.as_slice());
        let mut bytes = [0u8; SIGNATURE_BYTES];
        bytes[..64].copy_from_slice(&signature.to_bytes());
        bytes[64] = 27 + recovery_id.to_byte();
        assert!(
            recover_signer(digest, &bytes) == Ok(self.address),
            "Invariant: a fresh signature recovers to its signer under the contract's rules"
        );
        Signature(bytes)
    }

    /// Signs `report` for `domain`: the EIP-712 signing hash of its `MarginRoot`.
    #[must_use]
    pub fn sign_report(&self, report: &Report, domain: &Domain) -> Signature {
        self.sign_digest(&report.signing_hash(domain))
    }
}

/// The Ethereum address of a public key: the last 20 bytes of `keccak256(x ‖ y)`.
#[must_use]
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_sec1_point(false);
    let uncompressed = point.as_bytes();
    assert!(uncompressed.len() == 65, "Invariant: an uncompressed point is 0x04 ‖ x ‖ y");
    Address::from_slice(&keccak256(&uncompressed[1..])[12..])
}

/// The signer of `digest`, under exactly the rules of OpenZeppelin's `ECDSA.tryRecover` and the
/// `ecrecover` precompile, so the Rust verifier and the contract reject the same signatures.
///
/// # Errors
/// `MalformedSignature` for a length other than 65, `v` outside {27, 28}, `r` or `s` zero or not
/// below the group order, or no point with x = `r`; `HighS` for `s` above half the order
/// (checked first, as OpenZeppelin does).
pub fn recover_signer(digest: &B256, signature: &[u8]) -> Result<Address, RejectionCode> {
    if signature.len() != SIGNATURE_BYTES {
        return Err(RejectionCode::MalformedSignature);
    }
    let s = U256::from_be_slice(&signature[32..64]);
    if s > SECP256K1_HALF_ORDER {
        return Err(RejectionCode::HighS);
    }
    let v = signature[64];
    if v != 27 && v != 28 {
        return Err(RejectionCode::MalformedSignature);
    }
    let parsed = k256::ecdsa::Signature::from_slice(&signature[..64])
        .map_err(|_| RejectionCode::MalformedSignature)?;
    let recovery_id = RecoveryId::new(v == 28, false);
    let key = VerifyingKey::recover_from_prehash(digest.as_slice(), &parsed, recovery_id)
        .map_err(|_| RejectionCode::MalformedSignature)?;
    Ok(address_of(&key))
}

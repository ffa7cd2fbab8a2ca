//! Keys, EIP-712 hashing and signatures against published vectors, and the recovery rules.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test helpers fail loudly")]

mod common;

use alloy_primitives::{Address, B256, U256, address, b256, keccak256};
use alloy_sol_types::{SolStruct, eip712_domain, sol};
use common::{DEV_KEYS, dev_signers, header, signer_set_of, synthetic_results};
use oracle::report::{DOMAIN_NAME, DOMAIN_VERSION};
use oracle::signer::recover_signer;
use oracle::{Domain, EpochTree, RejectionCode, Signer};

/// secp256k1 group order.
const ORDER: U256 = alloy_primitives::uint!(
    0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141_U256
);

#[test]
fn keys_give_their_published_addresses() {
    // Hardhat/Anvil default accounts, and the address of private key 1.
    let expected = [
        address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"),
        address!("70997970C51812dc3A010C7d01b50e0d17dc79C8"),
        address!("3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"),
        address!("90F79bf6EB2c4f870365E785982E1f101E93b906"),
        address!("15d34AAf54267DB7D7c367839AAf71A00a2C6A65"),
    ];
    for (key, address) in DEV_KEYS.iter().zip(expected) {
        assert_eq!(Signer::from_hex(key).unwrap().address(), address);
    }
    let one = Signer::from_bytes(&B256::with_last_byte(1).0).unwrap();
    assert_eq!(one.address(), address!("7E5F4552091A69125d5DfCb7b8C2659029395Bdf"));
    assert!(Signer::from_bytes(&[0u8; 32]).is_err(), "zero is not a key");
    assert!(Signer::from_bytes(&ORDER.to_be_bytes::<32>()).is_err(), "n is not a key");
    assert!(Signer::from_hex("0x1234").is_err());
    assert!(!format!("{one:?}").contains("0000000000000001"), "Debug must not show the key");
}

sol! {
    struct Person { string name; address wallet; }
    struct Mail { Person from; Person to; string contents; }
}

#[test]
fn signs_the_eip712_specification_example() {
    // EIP-712 "Example" (eips.ethereum.org/EIPS/eip-712, assets Example.js): the key is
    // keccak256("cow"), and the spec lists the digest and v, r, s.
    let domain = eip712_domain! {
        name: "Ether Mail",
        version: "1",
        chain_id: 1,
        verifying_contract: address!("CcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
    };
    let mail = Mail {
        from: Person {
            name: "Cow".into(),
            wallet: address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"),
        },
        to: Person {
            name: "Bob".into(),
            wallet: address!("bBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"),
        },
        contents: "Hello, Bob!".into(),
    };
    let digest = mail.eip712_signing_hash(&domain);
    assert_eq!(digest, b256!("be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"));
    let cow = Signer::from_bytes(&keccak256("cow").0).unwrap();
    assert_eq!(cow.address(), address!("CD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"));
    let signature = cow.sign_digest(&digest);
    let bytes = signature.as_bytes();
    assert_eq!(
        B256::from_slice(&bytes[..32]),
        b256!("4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d")
    );
    assert_eq!(
        B256::from_slice(&bytes[32..64]),
        b256!("07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562")
    );
    assert_eq!(bytes[64], 28);
}

#[test]
fn domain_and_type_hashes_follow_the_standard() {
    let domain_type =
        "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)";
    assert_eq!(
        keccak256(domain_type),
        b256!("8b73c3c69bb8fe3d512ecc4cf759cc79239f7b179b0ffacaa9a75d522b39400f")
    );
    let domain = Domain { chain_id: 31_337, verifying_contract: Address::repeat_byte(0x42) };
    // Recompute the separator by hand, the way OpenZeppelin's EIP712 does.
    let mut encoded = Vec::new();
    encoded.extend_from_slice(keccak256(domain_type).as_slice());
    encoded.extend_from_slice(keccak256(DOMAIN_NAME).as_slice());
    encoded.extend_from_slice(keccak256(DOMAIN_VERSION).as_slice());
    encoded.extend_from_slice(&U256::from(31_337u64).to_be_bytes::<32>());
    encoded.extend_from_slice(
        B256::left_padding_from(domain.verifying_contract.as_slice()).as_slice(),
    );
    assert_eq!(domain.separator(), keccak256(&encoded));
    assert_eq!(
        oracle::Report::type_string(),
        "MarginRoot(bytes32 root,uint64 epoch,uint64 asOf,uint64 validUntil,uint32 leafCount,\
         bytes32 marketDataHash,bytes32 methodologyHash,bytes32 signerSetDigest)"
    );
}

fn sample_digest() -> (Signer, B256) {
    let signers = dev_signers(3);
    let epoch = EpochTree::build(&header(4), &synthetic_results(20, 6)).unwrap();
    let report = epoch.report(&signer_set_of(&signers, 2));
    let domain = Domain { chain_id: 1, verifying_contract: Address::repeat_byte(7) };
    (signers[0].clone(), report.signing_hash(&domain))
}

#[test]
fn signatures_are_deterministic_low_s_and_recoverable() {
    let (signer, digest) = sample_digest();
    let first = signer.sign_digest(&digest);
    assert_eq!(first, signer.sign_digest(&digest), "RFC 6979 signing is deterministic");
    let s = U256::from_be_slice(&first.as_bytes()[32..64]);
    assert!(s <= ORDER >> 1, "low s");
    assert!(matches!(first.as_bytes()[64], 27 | 28));
    assert_eq!(recover_signer(&digest, first.as_bytes()), Ok(signer.address()));
    let other = B256::repeat_byte(9);
    assert_ne!(recover_signer(&other, first.as_bytes()), Ok(signer.address()));
}

/// Signature bytes with one part replaced.
fn with_part(signature: &[u8], at: usize, part: &[u8]) -> Vec<u8> {
    let mut bytes = signature.to_vec();
    bytes[at..at + part.len()].copy_from_slice(part);
    bytes
}

#[test]
fn recovery_rejects_what_openzeppelin_rejects() {
    let (signer, digest) = sample_digest();
    let good = *signer.sign_digest(&digest).as_bytes();
    let s = U256::from_be_slice(&good[32..64]);
    // The malleable twin (n - s, other parity) is a valid ECDSA signature that OZ refuses.
    let twin_v = if good[64] == 27 { 28 } else { 27 };
    let twin = with_part(&with_part(&good, 32, &(ORDER - s).to_be_bytes::<32>()), 64, &[twin_v]);
    let cases: [(&str, Vec<u8>, RejectionCode); 8] = [
        ("high s twin", twin, RejectionCode::HighS),
        ("s = n", with_part(&good, 32, &ORDER.to_be_bytes::<32>()), RejectionCode::HighS),
        ("v = 0", with_part(&good, 64, &[0]), RejectionCode::MalformedSignature),
        ("v = 29", with_part(&good, 64, &[29]), RejectionCode::MalformedSignature),
        ("64 bytes", good[..64].to_vec(), RejectionCode::MalformedSignature),
        ("r = 0", with_part(&good, 0, &[0; 32]), RejectionCode::MalformedSignature),
        ("s = 0", with_part(&good, 32, &[0; 32]), RejectionCode::MalformedSignature),
        (
            "r = n",
            with_part(&good, 0, &ORDER.to_be_bytes::<32>()),
            RejectionCode::MalformedSignature,
        ),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(recover_signer(&digest, &bytes), Err(expected), "{name}");
    }
}

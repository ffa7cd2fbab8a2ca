//! The four-lane Keccak-256 against the RustCrypto reference, lane by lane, on messages of
//! every length around the block boundaries and of random lengths and contents.
#![allow(clippy::unwrap_used)]

use basics::keccak::{keccak256_concatenated, keccak256_many, keccak256_x4};
use proptest::prelude::*;
use sha3::{Digest, Keccak256};

fn reference(message: &[u8]) -> [u8; 32] {
    Keccak256::digest(message).into()
}

fn message(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn every_length_up_to_three_blocks_in_every_lane() {
    for len in 0..=3 * 136 + 1 {
        let lanes = [message(len, 1), message(len / 2, 2), message(len + 135, 3), message(1, 4)];
        let four = keccak256_x4([&lanes[0], &lanes[1], &lanes[2], &lanes[3]]);
        for (lane, digest) in lanes.iter().zip(four) {
            assert_eq!(digest, reference(lane), "length {}", lane.len());
        }
    }
}

#[test]
fn many_messages_in_groups_of_four_with_a_short_last_group() {
    let messages: Vec<Vec<u8>> = (0..11).map(|i| message(100 * i + 7, i as u8)).collect();
    let slices: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let mut out = vec![[0u8; 32]; slices.len()];
    keccak256_many(&slices, &mut out);
    for (m, digest) in messages.iter().zip(&out) {
        assert_eq!(*digest, reference(m));
    }
    let ends: Vec<usize> = messages
        .iter()
        .scan(0, |at, m| {
            *at += m.len();
            Some(*at)
        })
        .collect();
    assert_eq!(keccak256_concatenated(&messages.concat(), &ends), out, "laid end to end");
}

proptest! {
    #[test]
    fn random_messages(
        lanes in proptest::array::uniform4(proptest::collection::vec(any::<u8>(), 0..1200)),
    ) {
        let four = keccak256_x4([&lanes[0], &lanes[1], &lanes[2], &lanes[3]]);
        for (lane, digest) in lanes.iter().zip(four) {
            prop_assert_eq!(digest, reference(lane));
        }
    }
}

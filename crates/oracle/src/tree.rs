//! Merkle trees in the exact layout of OpenZeppelin's `StandardMerkleTree`.
//!
//! The layout is not ours to choose: an on-chain `MerkleProof.verify` and the npm
//! `@openzeppelin/merkle-tree` package must accept our roots and proofs byte for byte. So:
//!
//! - a leaf is `keccak256(keccak256(abi.encode(values...)))`; the double hash keeps a leaf from
//!   ever being read as a 64-byte internal node (second-preimage attack);
//! - leaves are sorted ascending by hash, then stored at the tail of one array in reverse order
//!   (the smallest hash last), which is how `makeMerkleTree` lays them out;
//! - node `i` has children `2i + 1` and `2i + 2`, and its hash is `keccak256` of the pair sorted
//!   ascending, so a proof needs no left/right flags.
//!
//! Every node is a pure function of its children, so building a level in parallel gives the same
//! bytes as building it on one thread.

use std::collections::VecDeque;

use alloy_primitives::{B256, keccak256};
use basics::keccak::keccak256_many;
use rayon::prelude::*;

use crate::limits::{LEAVES_MAX, MULTIPROOF_LEAVES_MAX, PROOF_DEPTH_MAX};
use crate::{Error, ErrorKind};

/// Nodes of one level hashed per rayon task; smaller levels are not worth splitting.
const NODES_PER_TASK_MIN: usize = 4_096;

/// The hash of an internal node: `keccak256` of its two children, smaller first.
#[must_use]
pub fn node_hash(a: &B256, b: &B256) -> B256 {
    keccak256(sorted_pair(a, b))
}

/// Two hashes, smaller first: what a node hashes.
fn sorted_pair(a: &B256, b: &B256) -> [u8; 64] {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    let mut pair = [0u8; 64];
    pair[..32].copy_from_slice(low.as_slice());
    pair[32..].copy_from_slice(high.as_slice());
    pair
}

/// The OpenZeppelin standard leaf hash of ABI-encoded values: `keccak256(keccak256(encoded))`.
#[must_use]
pub fn standard_leaf_hash(abi_encoded: &[u8]) -> B256 {
    keccak256(keccak256(abi_encoded))
}

/// [`standard_leaf_hash`] of each of `encoded`, in order, four messages at a time
/// (`basics::keccak`): the same digests, for the bulk of an epoch's leaves.
#[must_use]
pub fn standard_leaf_hashes(encoded: &[&[u8]]) -> Vec<B256> {
    let mut inner = vec![[0u8; 32]; encoded.len()];
    keccak256_many(encoded, &mut inner);
    let messages: Vec<&[u8]> = inner.iter().map(<[u8; 32]>::as_slice).collect();
    let mut outer = vec![[0u8; 32]; encoded.len()];
    keccak256_many(&messages, &mut outer);
    outer.into_iter().map(B256::from).collect()
}

/// Folds a leaf up a proof, as `MerkleProof.processProof` does on chain.
///
/// Proofs longer than [`PROOF_DEPTH_MAX`] are not folded (`None`): no tree this crate builds is
/// that deep, so such a proof cannot be valid.
#[must_use]
pub fn process_proof(leaf: &B256, proof: &[B256]) -> Option<B256> {
    if proof.len() > PROOF_DEPTH_MAX {
        return None;
    }
    Some(proof.iter().fold(*leaf, |node, sibling| node_hash(&node, sibling)))
}

/// An OpenZeppelin multiproof: several leaves proved together with shared siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultiProof {
    /// Leaf hashes in the order the proof consumes them (deepest and rightmost first).
    pub leaves: Vec<B256>,
    /// Sibling hashes that the leaves alone cannot produce.
    pub proof: Vec<B256>,
    /// For each step: `true` to pair two queued nodes, `false` to pair one with the next sibling.
    pub proof_flags: Vec<bool>,
}

/// Rebuilds the root of a multiproof exactly as `MerkleProof.processMultiProof` does on chain.
///
/// # Errors
/// `OutOfRange` when the lengths are inconsistent or a queue runs dry, which on chain is a revert.
pub fn process_multiproof(multi: &MultiProof) -> Result<B256, Error> {
    let invalid = |rule: &str| Error::range("multiproof", rule.to_owned());
    let steps = multi.proof_flags.len();
    if multi.leaves.len() > MULTIPROOF_LEAVES_MAX {
        return Err(invalid("at most MULTIPROOF_LEAVES_MAX leaves"));
    }
    // Each leaf's path has at most PROOF_DEPTH_MAX siblings, so no valid proof is longer; this
    // also bounds the loop below.
    if multi.proof.len() > MULTIPROOF_LEAVES_MAX * PROOF_DEPTH_MAX {
        return Err(invalid("at most MULTIPROOF_LEAVES_MAX * PROOF_DEPTH_MAX siblings"));
    }
    if multi.leaves.len() + multi.proof.len() != steps + 1 {
        return Err(invalid("leaves + proof must equal flags + 1"));
    }
    if steps == 0 {
        return multi
            .leaves
            .first()
            .or(multi.proof.first())
            .copied()
            .ok_or_else(|| invalid("empty"));
    }
    let mut hashes: Vec<B256> = Vec::with_capacity(steps);
    let (mut leaf_pos, mut hash_pos, mut proof_pos) = (0usize, 0usize, 0usize);
    let mut next_queued = |hashes: &Vec<B256>| -> Option<B256> {
        if leaf_pos < multi.leaves.len() {
            leaf_pos += 1;
            return Some(multi.leaves[leaf_pos - 1]);
        }
        hash_pos += 1;
        hashes.get(hash_pos - 1).copied()
    };
    for &flag in &multi.proof_flags {
        let a = next_queued(&hashes).ok_or_else(|| invalid("queue ran dry"))?;
        let b = if flag {
            next_queued(&hashes).ok_or_else(|| invalid("queue ran dry"))?
        } else {
            proof_pos += 1;
            *multi.proof.get(proof_pos - 1).ok_or_else(|| invalid("proof ran dry"))?
        };
        hashes.push(node_hash(&a, &b));
    }
    if proof_pos != multi.proof.len() {
        return Err(invalid("every proof element must be used"));
    }
    Ok(hashes[steps - 1])
}

/// A complete binary Merkle tree over distinct leaf hashes, in OpenZeppelin's array layout.
///
/// Immutable once built; the root is `nodes[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    nodes: Vec<B256>,
}

impl MerkleTree {
    /// Builds the tree over `leaves`, in any order: they are sorted by hash first.
    ///
    /// # Errors
    /// `OutOfRange` for zero or more than [`LEAVES_MAX`] leaves; `Duplicate` when two leaves have
    /// the same hash (OpenZeppelin would accept them, but a proof could then not name its leaf).
    pub fn from_leaf_hashes(mut leaves: Vec<B256>) -> Result<MerkleTree, Error> {
        if leaves.is_empty() || leaves.len() > LEAVES_MAX {
            let rule = format!("1..={LEAVES_MAX} leaves, got {}", leaves.len());
            return Err(Error::range("leaves", rule));
        }
        // Sorting distinct keys has one answer, so the unstable parallel sort is deterministic.
        leaves.par_sort_unstable();
        if let Some([first, _]) = leaves.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(Error::new("leaves", ErrorKind::Duplicate(format!("leaf {first}"))));
        }
        let count = leaves.len();
        let mut nodes = vec![B256::ZERO; 2 * count - 1];
        // makeMerkleTree stores sorted leaf i at index len - 1 - i.
        for (slot, leaf) in nodes[count - 1..].iter_mut().rev().zip(&leaves) {
            *slot = *leaf;
        }
        hash_internal_nodes(&mut nodes, count);
        let tree = MerkleTree { nodes };
        assert!(tree.leaf_count() == count, "Invariant: a tree of n leaves has 2n - 1 nodes");
        Ok(tree)
    }

    /// The root hash.
    #[must_use]
    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// The number of leaves.
    #[must_use]
    pub fn leaf_count(&self) -> usize {
        self.nodes.len().div_ceil(2)
    }

    /// The leaf hashes in array order (descending by hash), as OpenZeppelin stores them.
    #[must_use]
    pub fn leaves(&self) -> &[B256] {
        &self.nodes[self.leaf_count() - 1..]
    }

    /// The array index of `leaf`, found by binary search over the descending leaf tail.
    #[must_use]
    pub fn leaf_index(&self, leaf: &B256) -> Option<usize> {
        let offset = self.leaf_count() - 1;
        let found = self.leaves().binary_search_by(|probe| leaf.cmp(probe));
        found.ok().map(|position| offset + position)
    }

    /// The proof of `leaf`: its siblings from the bottom up, as `getProof` returns them.
    ///
    /// # Errors
    /// `NotFound` when `leaf` is not a leaf of this tree.
    pub fn proof(&self, leaf: &B256) -> Result<Vec<B256>, Error> {
        let mut index = self.index_of(leaf)?;
        let mut proof = Vec::with_capacity(PROOF_DEPTH_MAX);
        for _ in 0..=PROOF_DEPTH_MAX {
            if index == 0 {
                break;
            }
            proof.push(self.nodes[sibling(index)]);
            index = (index - 1) / 2;
        }
        assert!(index == 0, "Invariant: every leaf is at most PROOF_DEPTH_MAX below the root");
        debug_assert_eq!(process_proof(leaf, &proof), Some(self.root()));
        Ok(proof)
    }

    /// A multiproof of `leaves`, built exactly as `getMultiProof` of the npm package builds it.
    ///
    /// # Errors
    /// `NotFound` for a leaf not in the tree, `Duplicate` for a leaf named twice, `OutOfRange`
    /// for more than [`MULTIPROOF_LEAVES_MAX`] leaves.
    pub fn multiproof(&self, leaves: &[B256]) -> Result<MultiProof, Error> {
        if leaves.len() > MULTIPROOF_LEAVES_MAX {
            let rule = format!("at most {MULTIPROOF_LEAVES_MAX} leaves, got {}", leaves.len());
            return Err(Error::range("leaves", rule));
        }
        let mut indices =
            leaves.iter().map(|leaf| self.index_of(leaf)).collect::<Result<Vec<_>, _>>()?;
        indices.sort_unstable_by(|a, b| b.cmp(a));
        if let Some([first, _]) = indices.windows(2).find(|pair| pair[0] == pair[1]) {
            let leaf = self.nodes[*first];
            return Err(Error::new("leaves", ErrorKind::Duplicate(format!("leaf {leaf}"))));
        }
        let mut stack: VecDeque<usize> = indices.iter().copied().collect();
        let (mut proof, mut proof_flags) = (Vec::new(), Vec::new());
        // Each step retires one queued node, and there are fewer queued nodes than tree nodes.
        for _ in 0..self.nodes.len() {
            let Some(&j) = stack.front().filter(|&&j| j > 0) else { break };
            stack.pop_front();
            let s = sibling(j);
            if stack.front() == Some(&s) {
                proof_flags.push(true);
                stack.pop_front();
            } else {
                proof_flags.push(false);
                proof.push(self.nodes[s]);
            }
            stack.push_back((j - 1) / 2);
        }
        if indices.is_empty() {
            proof.push(self.root());
        }
        let multi = MultiProof {
            leaves: indices.iter().map(|&i| self.nodes[i]).collect(),
            proof,
            proof_flags,
        };
        assert!(
            process_multiproof(&multi).ok() == Some(self.root()),
            "Invariant: a multiproof built from the tree rebuilds its root"
        );
        Ok(multi)
    }

    fn index_of(&self, leaf: &B256) -> Result<usize, Error> {
        self.leaf_index(leaf)
            .ok_or_else(|| Error::new("leaf", ErrorKind::NotFound(format!("leaf {leaf}"))))
    }
}

fn sibling(index: usize) -> usize {
    if index % 2 == 1 { index + 1 } else { index - 1 }
}

/// Fills the `count - 1` internal nodes of `nodes`, deepest level first.
///
/// Level `d` holds indices `2^d - 1 ..= 2^(d+1) - 2`; its children all have larger indices, so
/// splitting the array just after the level gives the level mutably and its children shared.
fn hash_internal_nodes(nodes: &mut [B256], count: usize) {
    if count < 2 {
        return;
    }
    let last_internal = count - 2;
    let depth_deepest = (last_internal + 1).ilog2();
    for depth in (0..=depth_deepest).rev() {
        let first = (1usize << depth) - 1;
        let last = ((1usize << (depth + 1)) - 2).min(last_internal);
        let (head, children) = nodes.split_at_mut(last + 1);
        let base = last + 1;
        // A level's nodes in tasks of NODES_PER_TASK_MIN, each hashing its sorted pairs four
        // at a time; node `first + k` has children `2 (first + k) + 1` and the next.
        let tasks = head[first..].par_chunks_mut(NODES_PER_TASK_MIN).enumerate();
        tasks.for_each(|(task, parents)| {
            let start = first + task * NODES_PER_TASK_MIN;
            let pairs: Vec<[u8; 64]> = (0..parents.len())
                .map(|k| {
                    let left = 2 * (start + k) + 1 - base;
                    sorted_pair(&children[left], &children[left + 1])
                })
                .collect();
            let messages: Vec<&[u8]> = pairs.iter().map(<[u8; 64]>::as_slice).collect();
            let mut digests = vec![[0u8; 32]; parents.len()];
            keccak256_many(&messages, &mut digests);
            for (node, digest) in parents.iter_mut().zip(digests) {
                *node = B256::from(digest);
            }
        });
    }
}

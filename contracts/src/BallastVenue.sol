// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @notice The part of BallastVerifier a venue reads: the root accepted for an epoch.
interface IBallastRoots {
    function rootOf(uint64 epoch) external view returns (bytes32);
}

/// @title BallastVenue
/// @notice One venue's view of accounts netted across venues: it proves an account's venue leaf
/// against the root that this chain's BallastVerifier accepted, and answers with the requirement
/// credited to this venue, the collateral it counts (equity less liens out plus liens in) and
/// whether it may liquidate now.
/// @dev A venue leaf names its chain and its venue. A leaf for another chain is refused with
/// WRONG_CHAIN and one for another venue with WRONG_VENUE before the proof is looked at, so the
/// same root posted to several chains proves each venue's leaves on its own chain only. Codes and
/// order are those of the Rust twin, oracle::verify_venue.
contract BallastVenue {
    /// @notice One account's figures at one venue: the values hashed into its leaf.
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

    /// @notice What the venue concludes from a proved leaf.
    struct Credit {
        uint256 initialMargin;
        uint256 maintenanceMargin;
        int256 collateral;
        bool liquidatable;
        bool controller;
    }

    /// @notice First word of every venue leaf; versions the layout.
    bytes32 public constant VENUE_LEAF_TAG = keccak256("ballast.venue-leaf.v1");
    /// @notice Siblings in one proof. Same as oracle::limits.
    uint256 private constant PROOF_DEPTH_MAX = 24;
    /// @notice The leaf's status while a grace period runs (0 netted, 1 standalone).
    uint8 public constant STATUS_GRACE = 2;

    // Rejection codes shared with BallastVerifier and oracle::RejectionCode.
    uint8 private constant UNKNOWN_EPOCH = 12;
    uint8 private constant PROOF_INVALID = 13;
    uint8 public constant WRONG_CHAIN = 16;
    uint8 public constant WRONG_VENUE = 17;

    /// @notice A leaf or proof was rejected; `code` says why.
    error Rejected(uint8 code);

    /// @notice The verifier whose accepted roots this venue trusts.
    IBallastRoots public immutable verifier;
    /// @notice keccak256 of this venue's id.
    bytes32 public immutable venue;

    constructor(IBallastRoots verifier_, bytes32 venue_) {
        verifier = verifier_;
        venue = venue_;
    }

    /// @notice The OpenZeppelin standard leaf of one venue leaf at `epoch`.
    function venueLeafHash(uint64 epoch, VenueLeaf calldata leaf) public pure returns (bytes32) {
        bytes memory encoded = abi.encode(
            VENUE_LEAF_TAG,
            epoch,
            leaf.account,
            leaf.venue,
            leaf.chainId,
            leaf.initialMargin,
            leaf.maintenanceMargin,
            leaf.equity,
            leaf.lienIn,
            leaf.lienOut,
            leaf.status,
            leaf.graceUntil,
            leaf.controller,
            leaf.vectorHash
        );
        return keccak256(bytes.concat(keccak256(encoded)));
    }

    /// @notice The credit of `leaf` at `epoch` if it is in that epoch's root; reverts with
    /// `Rejected(code)` otherwise.
    function creditOf(uint64 epoch, VenueLeaf calldata leaf, bytes32[] calldata proof)
        external
        view
        returns (Credit memory credit)
    {
        if (leaf.chainId != block.chainid) revert Rejected(WRONG_CHAIN);
        if (leaf.venue != venue) revert Rejected(WRONG_VENUE);
        bytes32 root = verifier.rootOf(epoch);
        if (root == bytes32(0)) revert Rejected(UNKNOWN_EPOCH);
        if (proof.length > PROOF_DEPTH_MAX) revert Rejected(PROOF_INVALID);
        if (!MerkleProof.verifyCalldata(proof, root, venueLeafHash(epoch, leaf))) {
            revert Rejected(PROOF_INVALID);
        }
        // Attested amounts are below 2^127, so the sum cannot overflow an int256.
        int256 collateral = leaf.equity - int256(leaf.lienOut) + int256(leaf.lienIn);
        bool inGrace = leaf.status == STATUS_GRACE && block.timestamp < leaf.graceUntil;
        credit = Credit({
            initialMargin: leaf.initialMargin,
            maintenanceMargin: leaf.maintenanceMargin,
            collateral: collateral,
            liquidatable: collateral < int256(leaf.maintenanceMargin) && !inGrace,
            controller: leaf.controller
        });
    }
}

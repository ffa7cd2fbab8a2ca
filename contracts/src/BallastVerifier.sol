// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";

/// @title BallastVerifier
/// @notice Accepts Ballast's signed margin roots and proves single accounts against them.
/// @dev A root is accepted when at least `threshold` distinct signers of the configured set signed
/// its EIP-712 `MarginRoot`, with signatures ordered by strictly ascending signer address (so a
/// repeat is caught by comparing neighbours), inside the report's validity window, and for an
/// epoch above every accepted one (so replays and old reports fail). Two bounds fixed at
/// deployment keep even a captured quorum from locking the contract: an epoch at most
/// `maxEpochJump` above the last accepted one, a window `validUntil - asOf` at most
/// `maxValidity` seconds. Every rejection reverts with `Rejected(code)`. The codes and the order of the checks are the same as in the Rust
/// verifier (crates/oracle/src/verify.rs); the Rust tests run both on the same cases.
contract BallastVerifier is EIP712 {
    /// @notice The signed report. Field order and types are part of the EIP-712 type string.
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

    /// @notice One account's attested result: the values hashed into its leaf.
    struct AccountLeaf {
        bytes32 account;
        uint256 initialMargin;
        uint256 maintenanceMargin;
        int256 markToMarket;
        uint16 worstScenario;
        bytes32 portfolioHash;
    }

    bytes32 public constant MARGIN_ROOT_TYPEHASH = keccak256(
        "MarginRoot(bytes32 root,uint64 epoch,uint64 asOf,uint64 validUntil,uint32 leafCount,"
        "bytes32 marketDataHash,bytes32 methodologyHash,bytes32 signerSetDigest)"
    );

    /// @notice Signers in one set; bounds the signature loop. Same as oracle::limits.
    uint256 public constant SIGNERS_MAX = 32;
    /// @notice Siblings in one proof. Same as oracle::limits.
    uint256 public constant PROOF_DEPTH_MAX = 24;
    /// @notice Leaves in one multiproof. Same as oracle::limits.
    uint256 public constant MULTIPROOF_LEAVES_MAX = 4096;

    // Rejection codes: stable numbers shared with oracle::RejectionCode. Never reuse one.
    uint8 public constant SIGNER_SET_MISMATCH = 1;
    uint8 public constant STALE_EPOCH = 2;
    uint8 public constant NOT_YET_VALID = 3;
    uint8 public constant EXPIRED = 4;
    uint8 public constant TOO_FEW_SIGNATURES = 5;
    uint8 public constant TOO_MANY_SIGNATURES = 6;
    uint8 public constant MALFORMED_SIGNATURE = 7;
    uint8 public constant HIGH_S = 8;
    uint8 public constant UNKNOWN_SIGNER = 9;
    uint8 public constant DUPLICATE_SIGNER = 10;
    uint8 public constant SIGNERS_NOT_ASCENDING = 11;
    uint8 public constant UNKNOWN_EPOCH = 12;
    uint8 public constant PROOF_INVALID = 13;
    uint8 public constant EPOCH_JUMP = 14;
    uint8 public constant VALIDITY_TOO_LONG = 15;

    /// @notice A report, signature or proof was rejected; `code` says why.
    error Rejected(uint8 code);
    /// @notice The constructor's signer set is empty, too large, not strictly ascending, holds
    /// the zero address, or the threshold is outside 1..n.
    error InvalidSignerSet();
    /// @notice A constructor bound is zero: no report could ever be accepted.
    error InvalidBounds();

    /// @notice A root was accepted.
    event RootAccepted(uint64 indexed epoch, bytes32 root, uint64 validUntil, uint32 leafCount);

    address[] private _signers;
    /// @notice Whether an address belongs to the signer set.
    mapping(address => bool) public isSigner;
    /// @notice Signatures a report needs.
    uint8 public immutable threshold;
    /// @notice Configuration counter; part of the signer-set digest.
    uint64 public immutable configVersion;
    /// @notice keccak256(abi.encode(signers, threshold, configVersion)); reports must name it.
    bytes32 public immutable signerSetDigest;
    /// @notice Largest step from the last accepted epoch to a new one.
    uint64 public immutable maxEpochJump;
    /// @notice Longest validity window of a report, seconds.
    uint64 public immutable maxValidity;
    /// @notice The highest accepted epoch; 0 before the first.
    uint64 public lastEpoch;
    /// @notice Accepted roots by epoch; zero when none.
    mapping(uint64 => bytes32) public rootOf;

    constructor(
        address[] memory signers_,
        uint8 threshold_,
        uint64 configVersion_,
        uint64 maxEpochJump_,
        uint64 maxValidity_
    ) EIP712("Ballast Risk Oracle", "1") {
        if (maxEpochJump_ == 0 || maxValidity_ == 0) revert InvalidBounds();
        uint256 count = signers_.length;
        if (count == 0 || count > SIGNERS_MAX || threshold_ == 0 || threshold_ > count) {
            revert InvalidSignerSet();
        }
        // Starting from the zero address also rejects it as a signer.
        address previous = address(0);
        for (uint256 i = 0; i < count; ++i) {
            address signer = signers_[i];
            if (signer <= previous) revert InvalidSignerSet();
            isSigner[signer] = true;
            _signers.push(signer);
            previous = signer;
        }
        threshold = threshold_;
        configVersion = configVersion_;
        signerSetDigest = keccak256(abi.encode(signers_, threshold_, configVersion_));
        maxEpochJump = maxEpochJump_;
        maxValidity = maxValidity_;
    }

    /// @notice The signer set, ascending.
    function signers() external view returns (address[] memory) {
        return _signers;
    }

    /// @notice The EIP-712 domain separator of this deployment.
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparatorV4();
    }

    /// @notice The EIP-712 digest that signers sign for `report`.
    function digestOf(MarginRoot calldata report) public view returns (bytes32) {
        // All fields are static, so abi.encode lays them out as EIP-712's encodeData does.
        return _hashTypedDataV4(keccak256(abi.encode(MARGIN_ROOT_TYPEHASH, report)));
    }

    /// @notice Accepts `report` if a quorum signed it; reverts with `Rejected(code)` otherwise.
    /// @param signatures 65-byte r||s||v signatures, ordered by strictly ascending signer.
    function submitRoot(MarginRoot calldata report, bytes[] calldata signatures) external {
        if (report.signerSetDigest != signerSetDigest) revert Rejected(SIGNER_SET_MISMATCH);
        if (report.epoch <= lastEpoch) revert Rejected(STALE_EPOCH);
        if (report.epoch - lastEpoch > maxEpochJump) revert Rejected(EPOCH_JUMP);
        if (block.timestamp < report.asOf) revert Rejected(NOT_YET_VALID);
        if (block.timestamp > report.validUntil) revert Rejected(EXPIRED);
        // asOf <= block.timestamp <= validUntil here, so the window is not negative.
        if (report.validUntil - report.asOf > maxValidity) revert Rejected(VALIDITY_TOO_LONG);
        if (signatures.length < threshold) revert Rejected(TOO_FEW_SIGNATURES);
        if (signatures.length > _signers.length) revert Rejected(TOO_MANY_SIGNATURES);
        bytes32 digest = digestOf(report);
        address previous = address(0);
        for (uint256 i = 0; i < signatures.length; ++i) {
            (address signer, ECDSA.RecoverError error_,) =
                ECDSA.tryRecoverCalldata(digest, signatures[i]);
            if (error_ == ECDSA.RecoverError.InvalidSignatureS) revert Rejected(HIGH_S);
            if (error_ != ECDSA.RecoverError.NoError) revert Rejected(MALFORMED_SIGNATURE);
            if (!isSigner[signer]) revert Rejected(UNKNOWN_SIGNER);
            if (signer == previous) revert Rejected(DUPLICATE_SIGNER);
            if (signer < previous) revert Rejected(SIGNERS_NOT_ASCENDING);
            previous = signer;
        }
        lastEpoch = report.epoch;
        rootOf[report.epoch] = report.root;
        emit RootAccepted(report.epoch, report.root, report.validUntil, report.leafCount);
    }

    /// @notice The OpenZeppelin standard leaf of one account at `epoch`:
    /// keccak256(bytes.concat(keccak256(abi.encode(account, epoch, im, mm, mtm, worst, hash)))).
    function leafHash(uint64 epoch, AccountLeaf memory leaf) public pure returns (bytes32) {
        bytes memory encoded = abi.encode(
            leaf.account,
            epoch,
            leaf.initialMargin,
            leaf.maintenanceMargin,
            leaf.markToMarket,
            leaf.worstScenario,
            leaf.portfolioHash
        );
        return keccak256(bytes.concat(keccak256(encoded)));
    }

    /// @notice Returns true when the account's values are in the root accepted for `epoch`;
    /// reverts with `Rejected(UNKNOWN_EPOCH)` or `Rejected(PROOF_INVALID)` otherwise.
    function verifyAccount(
        uint64 epoch,
        bytes32 account,
        uint256 initialMargin,
        uint256 maintenanceMargin,
        int256 markToMarket,
        uint16 worstScenario,
        bytes32 portfolioHash,
        bytes32[] calldata proof
    ) external view returns (bool) {
        bytes32 leaf = leafHash(
            epoch,
            AccountLeaf(
                account, initialMargin, maintenanceMargin, markToMarket, worstScenario, portfolioHash
            )
        );
        _checkProof(epoch, leaf, proof);
        return true;
    }

    function _checkProof(uint64 epoch, bytes32 leaf, bytes32[] calldata proof) private view {
        bytes32 root = rootOf[epoch];
        if (root == bytes32(0)) revert Rejected(UNKNOWN_EPOCH);
        if (proof.length > PROOF_DEPTH_MAX) revert Rejected(PROOF_INVALID);
        if (!MerkleProof.verifyCalldata(proof, root, leaf)) revert Rejected(PROOF_INVALID);
    }

    /// @notice Checks several accounts at once with an OpenZeppelin multiproof; `leaves` must be
    /// in the multiproof's order. Same answers as `verifyAccount`.
    function verifyAccounts(
        uint64 epoch,
        AccountLeaf[] calldata leaves,
        bytes32[] calldata proof,
        bool[] calldata proofFlags
    ) external view returns (bool) {
        bytes32 root = rootOf[epoch];
        if (root == bytes32(0)) revert Rejected(UNKNOWN_EPOCH);
        // An empty leaf list would "prove" the root itself; it proves nothing about an account.
        if (leaves.length == 0 || leaves.length > MULTIPROOF_LEAVES_MAX) {
            revert Rejected(PROOF_INVALID);
        }
        bytes32[] memory hashes = new bytes32[](leaves.length);
        for (uint256 i = 0; i < leaves.length; ++i) {
            hashes[i] = leafHash(epoch, leaves[i]);
        }
        // With these two counts right, processMultiProof cannot run out of proof elements or
        // leave any unused, so it cannot revert: a bad proof yields a wrong root instead.
        uint256 siblings = 0;
        for (uint256 i = 0; i < proofFlags.length; ++i) {
            if (!proofFlags[i]) ++siblings;
        }
        if (leaves.length + proof.length != proofFlags.length + 1 || siblings != proof.length) {
            revert Rejected(PROOF_INVALID);
        }
        if (MerkleProof.processMultiProofCalldata(proof, proofFlags, hashes) != root) {
            revert Rejected(PROOF_INVALID);
        }
        return true;
    }
}

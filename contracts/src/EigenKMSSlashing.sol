// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {
    IAllocationManager, IKeyRegistrar, IStrategy, OperatorSet, G1Point, G2Point
} from "./interfaces/IEigenLayer.sol";
import {EigenKMSCommitmentRegistry} from "./EigenKMSCommitmentRegistry.sol";
import {BN254} from "./libraries/BN254.sol";
import {BLS12381} from "./libraries/BLS12381.sol";
import {KmsMessages} from "./libraries/KmsMessages.sol";
import {SessionDescriptorV2, BaseProof} from "./libraries/KmsMessagesV2.sol";
import {EigenKMSEvidenceV2} from "./EigenKMSEvidenceV2.sol";

/// @title EigenKMSSlashing
/// @notice Verifies fraud proofs against EigenKMS dealers on-chain and slashes through
/// EigenLayer's AllocationManager. A proof is the dealer's own signed protocol messages
/// (`kind ‖ abi.encode(struct)`, signed as keccak256 of those bytes with the key the
/// dealer registered in the KeyRegistrar, BN254 or ECDSA); the checks are those of
/// `kms_protocol::FraudEvidence::verify`, so a proof a node accepts is accepted here
/// and a proof a node refuses is refused here (Pedersen invalid-share proofs excepted:
/// their base `H2` comes from an off-chain coin flip the contract cannot check).
///
/// Thresholds: an invalid share is punished after 3 complaints by distinct members
/// (any valid invalid-share proof of the dealer in that session, their own share or one
/// forwarded to them); equivocation, commitment inconsistency and an invalid
/// commitment point after 1 proof;
/// a dealer punished in 3 sessions loses its whole allocation and is ejected. Each
/// fraud kind is punished at most once per dealer and session, each proof counts once.
///
/// Protocol v2 proofs (`proveInvalidShareV2`, `proveEquivocationV2`,
/// `proveWrongReshareConstantV2`; checks of `kms_protocol::dkg::Evidence::verify`)
/// share this bookkeeping, keyed by the session timestamp as well, and carry the
/// session's `SessionDescriptorV2`, whose deployment must be this contract's
/// (`deploymentHash`): evidence from another chain, contract, AVS or operator set
/// never slashes here.
contract EigenKMSSlashing {
    /// @notice What a proof shows.
    enum FraudKind {
        None,
        InvalidShare,
        Equivocation,
        CommitmentInconsistency,
        InvalidCommitmentPoint,
        WrongReshareConstant
    }

    /// @notice A signed protocol message: the payload and the signer's signature over
    /// keccak256(payload) (64 bytes BN254 `X ‖ Y`, or 65 bytes ECDSA `r ‖ s ‖ v`, or a
    /// certified protocol-key signature: see `_checkCertified`).
    struct SignedPayload {
        bytes payload;
        bytes signature;
    }

    /// @notice `kms_protocol::session::SessionDescriptor`: its ABI hash is the session
    /// hash every message carries, so it tells the contract the session's VSS mode.
    struct SessionDescriptor {
        uint64 timestamp;
        uint8 kind;
        uint8 mode;
        address[] dealers;
        uint256 dealerThreshold;
        address[] players;
        uint256 playerThreshold;
        bytes32 previousCommitmentHash;
    }

    /// @notice Complaints by distinct members that make an invalid share punishable.
    uint256 public constant INVALID_SHARE_COMPLAINTS = 3;
    /// @notice Sessions with punished fraud after which a dealer is fully slashed and ejected.
    uint256 public constant EJECTION_FRAUD_SESSIONS = 3;
    /// @notice The whole allocation, in EigenLayer's wad units.
    uint256 public constant FULL_SLASH_WAD = 1e18;

    uint8 private constant MODE_FELDMAN = 0;
    uint8 private constant MODE_PEDERSEN = 1;
    uint256 private constant SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141;
    uint256 private constant SECP256K1_HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0;
    /// @dev Certified protocol-key signatures (`kms_crypto::signer::certified`).
    bytes private constant CERTIFICATE_DOMAIN = "EIGENKMS-PROTOCOL-KEY-V1";
    uint256 private constant CERTIFICATE_LEN = 69;
    uint256 private constant SCHNORR_LEN = 96;

    // Domain tags of proof identifiers (see `proofAccepted`).
    bytes32 private constant TAG_INVALID_SHARE = keccak256("EIGENKMS-V1-PROOF-INVALID-SHARE");
    bytes32 private constant TAG_EQUIVOCATION = keccak256("EIGENKMS-V1-PROOF-EQUIVOCATION");
    bytes32 private constant TAG_INCONSISTENCY = keccak256("EIGENKMS-V1-PROOF-COMMITMENT-INCONSISTENCY");
    bytes32 private constant TAG_REGISTRY = keccak256("EIGENKMS-V1-PROOF-REGISTRY-INCONSISTENCY");
    bytes32 private constant TAG_INVALID_POINT = keccak256("EIGENKMS-V1-PROOF-INVALID-COMMITMENT-POINT");
    bytes32 private constant TAG_INVALID_SHARE_V2 = keccak256("EIGENKMS-V2-PROOF-INVALID-SHARE");
    bytes32 private constant TAG_EQUIVOCATION_V2 = keccak256("EIGENKMS-V2-PROOF-EQUIVOCATION");
    bytes32 private constant TAG_RESHARE_V2 = keccak256("EIGENKMS-V2-PROOF-WRONG-RESHARE-CONSTANT");

    IAllocationManager public immutable allocationManager;
    IKeyRegistrar public immutable keyRegistrar;
    EigenKMSCommitmentRegistry public immutable commitmentRegistry;
    /// @notice The stateless checks of v2 evidence (deployed by the constructor).
    EigenKMSEvidenceV2 public immutable evidenceV2;
    address public immutable avs;
    uint32 public immutable operatorSetId;
    /// @notice Wads slashed for a punished invalid share.
    uint256 public immutable invalidShareWad;
    /// @notice Wads slashed for an equivocation.
    uint256 public immutable equivocationWad;
    /// @notice Wads slashed for a commitment inconsistency.
    uint256 public immutable inconsistencyWad;

    /// @notice Proofs already counted, by identifier: keccak256(abi.encode(tag, hashes
    /// of the signed payloads)), plus the complainer for invalid shares; a replay of an
    /// accepted proof reverts.
    mapping(bytes32 proofId => bool) public proofAccepted;
    /// @notice Whether `complainer` already complained about `dealer`'s shares in `session`.
    mapping(address dealer => mapping(uint64 session => mapping(address complainer => bool))) public hasComplained;
    /// @notice Invalid-share complaints counted against `dealer` in `session`.
    mapping(address dealer => mapping(uint64 session => uint256)) public complaintCount;
    /// @notice Sessions in which `dealer` was punished.
    mapping(address dealer => uint256) public fraudSessions;
    /// @notice Dealers fully slashed and ejected; no further proofs are taken.
    mapping(address dealer => bool) public ejected;
    mapping(address dealer => mapping(uint64 session => uint256 kinds)) private _punished;

    event FraudProven(
        address indexed dealer, uint64 indexed sessionTimestamp, FraudKind kind, address complainer, bytes32 proofId
    );
    event OperatorPunished(
        address indexed dealer, uint64 indexed sessionTimestamp, FraudKind kind, uint256 wad, uint256 fraudSessions
    );
    event OperatorEjected(address indexed dealer);

    error InvalidWad();
    error NotMember(address complainer);
    error SelfComplaint();
    error DealerEjected(address dealer);
    error ProofAlreadyAccepted(bytes32 proofId);
    error AlreadyPunished(address dealer, uint64 sessionTimestamp, FraudKind kind);
    error AlreadyComplained(address dealer, uint64 sessionTimestamp, address complainer);
    error DealerMismatch();
    error SessionMismatch();
    error WrongPhase();
    error SameMessage();
    error UnknownDealerKey(address dealer);
    error BadSignature();
    /// @notice A certified signature whose certificate's window does not cover the session.
    error CertificateDoesNotCover(uint64 sessionTimestamp);
    error PedersenUnsupported();
    error UnknownMode(uint8 mode);
    error NoEvaluationPoint();
    error NonCanonicalShare();
    error ShareIsValid();
    error CommitmentMatches();
    error NoRegistrySubmission();
    error PointIsValid();
    /// @dev A dealer's registered key.
    struct DealerKey {
        IKeyRegistrar.CurveType curve;
        G2Point bn254;
        address ecdsa;
    }

    constructor(
        IAllocationManager allocationManager_,
        IKeyRegistrar keyRegistrar_,
        EigenKMSCommitmentRegistry commitmentRegistry_,
        address avs_,
        uint32 operatorSetId_,
        uint256 invalidShareWad_,
        uint256 equivocationWad_,
        uint256 inconsistencyWad_
    ) {
        if (
            invalidShareWad_ == 0 || invalidShareWad_ > FULL_SLASH_WAD || equivocationWad_ == 0
                || equivocationWad_ > FULL_SLASH_WAD || inconsistencyWad_ == 0 || inconsistencyWad_ > FULL_SLASH_WAD
        ) revert InvalidWad();
        allocationManager = allocationManager_;
        keyRegistrar = keyRegistrar_;
        commitmentRegistry = commitmentRegistry_;
        avs = avs_;
        operatorSetId = operatorSetId_;
        invalidShareWad = invalidShareWad_;
        equivocationWad = equivocationWad_;
        inconsistencyWad = inconsistencyWad_;
        evidenceV2 = new EigenKMSEvidenceV2();
    }

    // ---------------------------------------------------------------- proofs

    /// @notice A dealer's signed share that does not lie on its signed phase-1
    /// commitment (`FraudEvidence::InvalidShare`), in a Feldman session. `session` is
    /// the descriptor whose hash both messages carry.
    function proveInvalidShare(
        SignedPayload calldata commitment,
        SignedPayload calldata share,
        SessionDescriptor calldata session
    ) external {
        KmsMessages.Commitment memory c = KmsMessages.decodeCommitment(commitment.payload);
        KmsMessages.Share memory s = KmsMessages.decodeShare(share.payload);
        _samePair(c, s);
        // Per complainer: each member that checked the (public) share complains once;
        // three of them make the punishment.
        bytes32 proofId = keccak256(abi.encode(TAG_INVALID_SHARE, keccak256(share.payload), msg.sender));
        _admit(c.dealer, c.sessionTimestamp, FraudKind.InvalidShare, proofId);
        if (hasComplained[c.dealer][c.sessionTimestamp][msg.sender]) {
            revert AlreadyComplained(c.dealer, c.sessionTimestamp, msg.sender);
        }
        if (session.timestamp != c.sessionTimestamp || keccak256(abi.encode(session)) != c.sessionHash) {
            revert SessionMismatch();
        }
        if (session.mode == MODE_PEDERSEN) revert PedersenUnsupported();
        if (session.mode != MODE_FELDMAN) revert UnknownMode(session.mode);
        DealerKey memory key = _dealerKey(c.dealer);
        _checkSignature(key, c.dealer, c.sessionTimestamp, commitment);
        _checkSignature(key, c.dealer, c.sessionTimestamp, share);
        uint256 x = uint256(keccak256(abi.encodePacked(s.player))) % BLS12381.R;
        if (x == 0) revert NoEvaluationPoint();
        if (s.share >= BLS12381.R || s.blinding >= BLS12381.R) revert NonCanonicalShare();
        // Feldman: the blinding is not part of the check (as in `feldman::verify_share`).
        if (BLS12381.feldmanShareIsValid(c.points, x, s.share)) revert ShareIsValid();
        _accept(c.dealer, c.sessionTimestamp, FraudKind.InvalidShare, proofId);
    }

    /// @notice Two different signed commitments of one dealer for the same session and
    /// phase (`FraudEvidence::Equivocation`).
    function proveEquivocation(SignedPayload calldata first, SignedPayload calldata second) external {
        KmsMessages.Commitment memory a = KmsMessages.decodeCommitment(first.payload);
        KmsMessages.Commitment memory b = KmsMessages.decodeCommitment(second.payload);
        if (a.dealer != b.dealer) revert DealerMismatch();
        if (a.sessionTimestamp != b.sessionTimestamp || a.sessionHash != b.sessionHash) revert SessionMismatch();
        if (a.phase != b.phase) revert WrongPhase();
        bytes32 ha = keccak256(first.payload);
        bytes32 hb = keccak256(second.payload);
        if (ha == hb) revert SameMessage();
        // Order-independent: (A, B) and (B, A) are one proof.
        bytes32 proofId = ha < hb
            ? keccak256(abi.encode(TAG_EQUIVOCATION, ha, hb))
            : keccak256(abi.encode(TAG_EQUIVOCATION, hb, ha));
        _admit(a.dealer, a.sessionTimestamp, FraudKind.Equivocation, proofId);
        DealerKey memory key = _dealerKey(a.dealer);
        _checkSignature(key, a.dealer, a.sessionTimestamp, first);
        _checkSignature(key, a.dealer, a.sessionTimestamp, second);
        BLS12381.validatePoints(bytes.concat(a.points, b.points));
        _accept(a.dealer, a.sessionTimestamp, FraudKind.Equivocation, proofId);
    }

    /// @notice A signed share naming a commitment hash other than the hash of the
    /// dealer's signed phase-1 commitment (`FraudEvidence::CommitmentInconsistency`).
    function proveCommitmentInconsistency(SignedPayload calldata commitment, SignedPayload calldata share) external {
        KmsMessages.Commitment memory c = KmsMessages.decodeCommitment(commitment.payload);
        KmsMessages.Share memory s = KmsMessages.decodeShare(share.payload);
        _samePair(c, s);
        bytes32 proofId = keccak256(abi.encode(TAG_INCONSISTENCY, keccak256(commitment.payload), keccak256(share.payload)));
        _admit(c.dealer, c.sessionTimestamp, FraudKind.CommitmentInconsistency, proofId);
        DealerKey memory key = _dealerKey(c.dealer);
        _checkSignature(key, c.dealer, c.sessionTimestamp, commitment);
        _checkSignature(key, c.dealer, c.sessionTimestamp, share);
        BLS12381.validatePoints(c.points);
        if (s.commitmentHash == KmsMessages.commitmentHash(c)) revert CommitmentMatches();
        _accept(c.dealer, c.sessionTimestamp, FraudKind.CommitmentInconsistency, proofId);
    }

    /// @notice A signed phase-1 commitment whose hash differs from the one the dealer
    /// recorded in the commitment registry for that session (epoch = session timestamp):
    /// the dealer showed some players another commitment than the one it stands by.
    function proveRegistryInconsistency(SignedPayload calldata commitment) external {
        KmsMessages.Commitment memory c = KmsMessages.decodeCommitment(commitment.payload);
        if (c.phase != 1) revert WrongPhase();
        bytes32 proofId = keccak256(abi.encode(TAG_REGISTRY, keccak256(commitment.payload)));
        _admit(c.dealer, c.sessionTimestamp, FraudKind.CommitmentInconsistency, proofId);
        (bytes32 recorded,, uint64 recordedAt) = commitmentRegistry.getCommitment(c.sessionTimestamp, c.dealer);
        if (recordedAt == 0) revert NoRegistrySubmission();
        _checkSignature(_dealerKey(c.dealer), c.dealer, c.sessionTimestamp, commitment);
        BLS12381.validatePoints(c.points);
        if (KmsMessages.commitmentHash(c) == recorded) revert CommitmentMatches();
        _accept(c.dealer, c.sessionTimestamp, FraudKind.CommitmentInconsistency, proofId);
    }

    /// @notice A signed commitment (either phase) with a point at `index` that the G2MSM
    /// precompile refuses — outside the prime-order subgroup, off the curve, or not a
    /// reduced encoding (`FraudEvidence::InvalidCommitmentPoint`). Nodes decode
    /// commitment points without the subgroup check and check the aggregate instead;
    /// this is how a dealer that hid a torsion component in its commitment is proven,
    /// and it is what keeps such a dealer from escaping the other proofs (which refuse
    /// its points). Slashed like a commitment inconsistency.
    function proveInvalidCommitmentPoint(SignedPayload calldata commitment, uint256 index) external {
        KmsMessages.Commitment memory c = KmsMessages.decodeCommitment(commitment.payload);
        bytes32 proofId = keccak256(abi.encode(TAG_INVALID_POINT, keccak256(commitment.payload)));
        _admit(c.dealer, c.sessionTimestamp, FraudKind.InvalidCommitmentPoint, proofId);
        _checkSignature(_dealerKey(c.dealer), c.dealer, c.sessionTimestamp, commitment);
        if (BLS12381.pointIsValid(c.points, index)) revert PointIsValid();
        _accept(c.dealer, c.sessionTimestamp, FraudKind.InvalidCommitmentPoint, proofId);
    }

    // ---------------------------------------------------------------- v2 proofs

    /// @notice A v2 dealer's share for a player does not verify
    /// (`dkg::Evidence::InvalidShare`): the signed dealing, the player's signed
    /// complaint (the revealed key `K` with its DLEQ proof), the player's key
    /// announcement payload (`wire::KeyAnnouncement`, whose hash the dealing names as
    /// the player's recipient: the dealer signed which key it encrypted to), the
    /// session descriptor, and in a Pedersen session the proof of its agreed base `H2`
    /// (`BaseProof`; empty for Feldman). Checked by
    /// `EigenKMSEvidenceV2.checkInvalidShare`, then the signatures (dealer,
    /// complainer, the base's precommits) against the registered keys; counted per
    /// submitting member like `proveInvalidShare`.
    function proveInvalidShareV2(
        SignedPayload calldata dealing,
        SignedPayload calldata complaint,
        bytes calldata key,
        SessionDescriptorV2 calldata session,
        BaseProof calldata base
    ) external {
        EigenKMSEvidenceV2.InvalidShareFacts memory f =
            evidenceV2.checkInvalidShare(dealing.payload, complaint.payload, key, session, base, deploymentHash());
        (address dealer, uint64 ts) = (f.dealer, f.sessionTimestamp);
        bytes32 proofId =
            keccak256(abi.encode(TAG_INVALID_SHARE_V2, keccak256(dealing.payload), f.player, msg.sender));
        _admit(dealer, ts, FraudKind.InvalidShare, proofId);
        if (hasComplained[dealer][ts][msg.sender]) revert AlreadyComplained(dealer, ts, msg.sender);
        _checkSignature(_dealerKey(dealer), dealer, ts, dealing);
        _checkSignature(_dealerKey(f.player), f.player, ts, complaint);
        _checkBase(f.voters, ts, base);
        _accept(dealer, ts, FraudKind.InvalidShare, proofId);
    }

    /// @notice Two different signed v2 messages of one author in one slot
    /// (`dkg::Evidence::Equivocation`): two dealings, two proposals of one agreement
    /// instance and round, or two votes of one instance, round and step
    /// (`EigenKMSEvidenceV2.checkEquivocation`), both signed by the author.
    function proveEquivocationV2(
        SignedPayload calldata first,
        SignedPayload calldata second,
        SessionDescriptorV2 calldata session
    ) external {
        (address author, uint64 ts) =
            evidenceV2.checkEquivocation(first.payload, second.payload, session, deploymentHash());
        bytes32 ha = keccak256(first.payload);
        bytes32 hb = keccak256(second.payload);
        // Order-independent: (A, B) and (B, A) are one proof.
        bytes32 proofId = ha < hb
            ? keccak256(abi.encode(TAG_EQUIVOCATION_V2, ha, hb))
            : keccak256(abi.encode(TAG_EQUIVOCATION_V2, hb, ha));
        _admit(author, ts, FraudKind.Equivocation, proofId);
        DealerKey memory key = _dealerKey(author);
        _checkSignature(key, author, ts, first);
        _checkSignature(key, author, ts, second);
        _accept(author, ts, FraudKind.Equivocation, proofId);
    }

    /// @notice A signed reshare dealing whose constant is not the dealer's weighted
    /// public share of the current key (`dkg::Evidence::WrongReshareConstant`,
    /// `EigenKMSEvidenceV2.checkWrongReshareConstant`; Pedersen: `C_0 − b_0·H2`, with
    /// `base` proving `H2`, empty for Feldman): the dealer tried to change the master
    /// secret. `previousCommitment` is the current key's public polynomial (the points
    /// whose hash the session names). Slashed like a commitment inconsistency.
    function proveWrongReshareConstantV2(
        SignedPayload calldata dealing,
        SessionDescriptorV2 calldata session,
        bytes calldata previousCommitment,
        BaseProof calldata base
    ) external {
        (address dealer, uint64 ts, address[] memory voters) = evidenceV2.checkWrongReshareConstant(
            dealing.payload, session, previousCommitment, base, deploymentHash()
        );
        bytes32 proofId = keccak256(abi.encode(TAG_RESHARE_V2, keccak256(dealing.payload)));
        _admit(dealer, ts, FraudKind.WrongReshareConstant, proofId);
        _checkSignature(_dealerKey(dealer), dealer, ts, dealing);
        _checkBase(voters, ts, base);
        _accept(dealer, ts, FraudKind.WrongReshareConstant, proofId);
    }

    /// @dev The signatures of a base proof's precommits by their voters.
    function _checkBase(address[] memory voters, uint64 ts, BaseProof calldata base) private view {
        for (uint256 i = 0; i < voters.length; i++) {
            _checkSignatureOf(_dealerKey(voters[i]), voters[i], ts, keccak256(base.precommits[i]), base.signatures[i]);
        }
    }

    // ---------------------------------------------------------------- views

    /// @notice `keccak256(abi.encode(block.chainid, address(this), avs, operatorSetId))`:
    /// the `deployment` every v2 session descriptor and encryption-key certificate
    /// must name (`kms_protocol::dkg::Deployment` with `registry` = this contract).
    function deploymentHash() public view returns (bytes32) {
        return keccak256(abi.encode(block.chainid, address(this), avs, operatorSetId));
    }

    /// @notice Whether `dealer` was already punished for `kind` in `sessionTimestamp`.
    function isPunished(address dealer, uint64 sessionTimestamp, FraudKind kind) public view returns (bool) {
        return _punished[dealer][sessionTimestamp] & (uint256(1) << uint8(kind)) != 0;
    }

    // ---------------------------------------------------------------- internals

    /// @dev A commitment and a share of the same dealer and session; a phase-1 commitment.
    function _samePair(KmsMessages.Commitment memory c, KmsMessages.Share memory s) private pure {
        if (c.dealer != s.dealer) revert DealerMismatch();
        if (c.sessionTimestamp != s.sessionTimestamp || c.sessionHash != s.sessionHash) revert SessionMismatch();
        if (c.phase != 1) revert WrongPhase();
    }

    /// @dev Cheap checks before any cryptography: who complains, and whether this proof
    /// can still change anything.
    function _admit(address dealer, uint64 session, FraudKind kind, bytes32 proofId) private view {
        // Non-members cannot complain: otherwise anyone could spam proofs, and the
        // complaint threshold would not count independent operators.
        if (!allocationManager.isMemberOfOperatorSet(msg.sender, OperatorSet(avs, operatorSetId))) {
            revert NotMember(msg.sender);
        }
        if (msg.sender == dealer) revert SelfComplaint();
        if (ejected[dealer]) revert DealerEjected(dealer);
        if (proofAccepted[proofId]) revert ProofAlreadyAccepted(proofId);
        if (isPunished(dealer, session, kind)) revert AlreadyPunished(dealer, session, kind);
    }

    function _dealerKey(address dealer) private view returns (DealerKey memory key) {
        OperatorSet memory os = OperatorSet(avs, operatorSetId);
        key.curve = keyRegistrar.getOperatorSetCurveType(os);
        if (key.curve == IKeyRegistrar.CurveType.BN254) {
            (, G2Point memory g2) = keyRegistrar.getBN254Key(os, dealer);
            if (g2.X[0] | g2.X[1] | g2.Y[0] | g2.Y[1] == 0) revert UnknownDealerKey(dealer);
            key.bn254 = g2;
        } else if (key.curve == IKeyRegistrar.CurveType.ECDSA) {
            key.ecdsa = keyRegistrar.getECDSAAddress(os, dealer);
            if (key.ecdsa == address(0)) revert UnknownDealerKey(dealer);
        } else {
            revert UnknownDealerKey(dealer);
        }
    }

    /// @dev The signature over keccak256(payload) by `dealer` in the session at
    /// `session`: either made with the dealer's registered key, or a certified
    /// protocol-key signature (`kms_crypto::signer::certified`), told apart by length,
    /// with the same strictness as `OperatorSignature::from_bytes` + `verify`.
    function _checkSignature(DealerKey memory key, address dealer, uint64 session, SignedPayload calldata m)
        private
        view
    {
        _checkSignatureOf(key, dealer, session, keccak256(m.payload), m.signature);
    }

    /// @dev `_checkSignature` of a digest `h` (v2 certificates sign digests, not payloads).
    function _checkSignatureOf(DealerKey memory key, address dealer, uint64 session, bytes32 h, bytes calldata sig)
        private
        view
    {
        uint256 operatorSigLen = key.curve == IKeyRegistrar.CurveType.BN254 ? 64 : 65;
        if (sig.length == CERTIFICATE_LEN + operatorSigLen + SCHNORR_LEN) {
            _checkCertified(key, dealer, session, h, sig, operatorSigLen);
        } else {
            _checkOperatorSignature(key, h, sig);
        }
    }

    /// @dev A signature by the registered key itself.
    function _checkOperatorSignature(DealerKey memory key, bytes32 h, bytes calldata sig) private view {
        if (key.curve == IKeyRegistrar.CurveType.BN254) {
            if (sig.length != 64) revert BadSignature();
            (uint256 sx, uint256 sy) = abi.decode(sig, (uint256, uint256));
            if (!BN254.verify(h, sx, sy, key.bn254)) revert BadSignature();
        } else {
            if (sig.length != 65) revert BadSignature();
            (uint256 r, uint256 s) = abi.decode(sig[:64], (uint256, uint256));
            uint8 v = uint8(sig[64]);
            // Refuse what k256 refuses: r, s outside [1, n), high s (malleable twin), v ∉ {27, 28}.
            if (r == 0 || r >= SECP256K1_N || s == 0 || s > SECP256K1_HALF_N || (v != 27 && v != 28)) {
                revert BadSignature();
            }
            address recovered = ecrecover(h, v, bytes32(r), bytes32(s));
            if (recovered == address(0) || recovered != key.ecdsa) revert BadSignature();
        }
    }

    /// @dev `operator (20) ‖ P (33, compressed) ‖ notBefore (8) ‖ notAfter (8) ‖
    /// operator signature ‖ R.x ‖ R.y ‖ s`. The certificate must name the dealer, cover
    /// the session and carry the registered key's signature over
    /// `keccak256(domain ‖ operator ‖ P ‖ notBefore ‖ notAfter)`; then the Schnorr
    /// signature `s·G − e·P = R`, `e = keccak256(P ‖ h ‖ address(R)) mod n`, is checked
    /// with one `ecrecover`: with `r = P.x`, `v` from P's parity, hash `−s·P.x` and
    /// `s' = −e·P.x`, ecrecover returns the address of `P.x⁻¹(s'·P − hash·G) = s·G − e·P`.
    /// `R` is not checked to be on the curve: only its address is used, and a pair that
    /// is not a point has no address ecrecover can return.
    function _checkCertified(
        DealerKey memory key,
        address dealer,
        uint64 session,
        bytes32 h,
        bytes calldata sig,
        uint256 operatorSigLen
    ) private view {
        if (address(bytes20(sig[:20])) != dealer) revert BadSignature();
        uint8 prefix = uint8(sig[20]);
        uint256 px = uint256(bytes32(sig[21:53]));
        if ((prefix != 2 && prefix != 3) || px == 0 || px >= SECP256K1_N) revert BadSignature();
        if (session < uint64(bytes8(sig[53:61])) || session > uint64(bytes8(sig[61:69]))) {
            revert CertificateDoesNotCover(session);
        }
        bytes32 certificate = keccak256(abi.encodePacked(CERTIFICATE_DOMAIN, sig[:69]));
        _checkOperatorSignature(key, certificate, sig[69:69 + operatorSigLen]);
        bytes calldata schnorr = sig[69 + operatorSigLen:];
        uint256 s = uint256(bytes32(schnorr[64:96]));
        if (s == 0 || s >= SECP256K1_N) revert BadSignature();
        address nonce = address(uint160(uint256(keccak256(schnorr[:64]))));
        uint256 e = uint256(keccak256(abi.encodePacked(sig[20:53], h, nonce))) % SECP256K1_N;
        if (e == 0) revert BadSignature();
        address recovered = ecrecover(
            bytes32(SECP256K1_N - mulmod(s, px, SECP256K1_N)),
            prefix == 2 ? 27 : 28,
            bytes32(px),
            bytes32(SECP256K1_N - mulmod(e, px, SECP256K1_N))
        );
        if (recovered == address(0) || recovered != nonce) revert BadSignature();
    }

    /// @dev Counts a verified proof and punishes when its threshold is reached.
    function _accept(address dealer, uint64 session, FraudKind kind, bytes32 proofId) private {
        proofAccepted[proofId] = true;
        emit FraudProven(dealer, session, kind, msg.sender, proofId);
        if (kind == FraudKind.InvalidShare) {
            hasComplained[dealer][session][msg.sender] = true;
            if (++complaintCount[dealer][session] < INVALID_SHARE_COMPLAINTS) return;
        }
        _punished[dealer][session] |= uint256(1) << uint8(kind);
        uint256 sessions = fraudSessions[dealer];
        if (_punished[dealer][session] == uint256(1) << uint8(kind)) {
            // First punishment in this session.
            sessions += 1;
            fraudSessions[dealer] = sessions;
        }
        if (sessions >= EJECTION_FRAUD_SESSIONS) {
            ejected[dealer] = true;
            _slash(dealer, FULL_SLASH_WAD, "EigenKMS: fraud in 3 sessions, full slash and ejection");
            emit OperatorPunished(dealer, session, kind, FULL_SLASH_WAD, sessions);
            _eject(dealer);
            return;
        }
        uint256 wad;
        string memory why;
        if (kind == FraudKind.InvalidShare) {
            (wad, why) = (invalidShareWad, "EigenKMS: invalid shares");
        } else if (kind == FraudKind.Equivocation) {
            (wad, why) = (equivocationWad, "EigenKMS: equivocation");
        } else if (kind == FraudKind.InvalidCommitmentPoint) {
            (wad, why) = (inconsistencyWad, "EigenKMS: invalid commitment point");
        } else if (kind == FraudKind.WrongReshareConstant) {
            (wad, why) = (inconsistencyWad, "EigenKMS: wrong reshare constant");
        } else {
            (wad, why) = (inconsistencyWad, "EigenKMS: commitment inconsistency");
        }
        _slash(dealer, wad, why);
        emit OperatorPunished(dealer, session, kind, wad, sessions);
    }

    function _slash(address dealer, uint256 wad, string memory description) private {
        IStrategy[] memory strategies =
            allocationManager.getStrategiesInOperatorSet(OperatorSet(avs, operatorSetId));
        uint256[] memory wads = new uint256[](strategies.length);
        for (uint256 i = 0; i < wads.length; i++) {
            wads[i] = wad;
        }
        allocationManager.slashOperator(
            avs,
            IAllocationManager.SlashingParams({
                operator: dealer,
                operatorSetId: operatorSetId,
                strategies: strategies,
                wadsToSlash: wads,
                description: description
            })
        );
    }

    function _eject(address dealer) private {
        uint32[] memory ids = new uint32[](1);
        ids[0] = operatorSetId;
        // The dealer may have left the set already; the full slash stands either way.
        try allocationManager.deregisterFromOperatorSets(
            IAllocationManager.DeregisterParams({operator: dealer, avs: avs, operatorSetIds: ids})
        ) {} catch {}
        emit OperatorEjected(dealer);
    }
}

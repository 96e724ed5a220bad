// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {BLS12381} from "./libraries/BLS12381.sol";
import {KmsMessagesV2, SessionDescriptorV2, BaseProof} from "./libraries/KmsMessagesV2.sol";
import {ShareEncryption} from "./libraries/ShareEncryption.sol";
import {HashToG2} from "./libraries/HashToG2.sol";

/// @title EigenKMSEvidenceV2
/// @notice The stateless checks of protocol v2 fraud evidence
/// (`kms_protocol::dkg::Evidence::verify`) for `EigenKMSSlashing`, which deploys one
/// and calls it before the checks that need state: the authors' registered keys
/// (signatures) and the punishment bookkeeping. A separate contract because both do
/// not fit in one under EIP-170. Every function reverts unless the evidence shows the
/// fault, and returns who is accused and what `EigenKMSSlashing` must still check.
contract EigenKMSEvidenceV2 {
    uint256 private constant R = ShareEncryption.R;
    uint8 private constant MODE_FELDMAN = 0;
    uint8 private constant MODE_PEDERSEN = 1;
    uint256 private constant G2_POINT = 256;
    uint256 private constant NOT_FOUND = type(uint256).max;
    bytes private constant VALUE_DOMAIN = "EIGENKMS-V2-VALUE";
    bytes private constant SEED_DOMAIN = "EIGENKMS-V1-COIN-SEED";
    bytes private constant BASE_DST = "EIGENKMS-V1-PEDERSEN-H_BLS12381G2_XMD:SHA-256_SSWU_RO_";
    uint8 private constant INSTANCE_COIN = 0;
    uint8 private constant STEP_PRECOMMIT = 2;

    /// @notice What an invalid-share proof shows, and what `EigenKMSSlashing` must
    /// still check: the signatures of the dealer, of the complainer and, in Pedersen
    /// mode, of each `voters[i]` over `precommits[i]`.
    struct InvalidShareFacts {
        address dealer;
        address player;
        uint64 sessionTimestamp;
        address[] voters;
    }

    /// @notice The descriptor is not the messages' session, or the messages are of
    /// different sessions.
    error SessionMismatch();
    /// @notice A v2 session or certificate of another deployment (chain, contract, AVS
    /// or operator set).
    error WrongDeployment();
    /// @notice The base proof does not show an agreed base: fewer precommits than the
    /// quorum, voters not ascending, a precommit of another instance, step, round or
    /// value, reveals out of order or of one author twice.
    error BaseNotAgreed();
    /// @notice A base proof in a Feldman session (which has no base).
    error UnexpectedBaseProof();
    error UnknownMode(uint8 mode);
    /// @notice The complaint accuses another dealing or dealer.
    error OtherDealing();
    /// @notice An author without the session role that sends the message.
    error WrongRole();
    /// @notice A dealing of the wrong shape for its session (as `decode_dealing` refuses).
    error WrongShape();
    /// @notice A ciphertext word or `b_0` that is not reduced (`≥ r`).
    error NonCanonicalShare();
    /// @notice The key announcement is not the one the dealing names as the
    /// complainer's recipient (another hash, player or session, or no share).
    error KeyNotNamed();
    /// @notice The complaint's DLEQ proof does not verify.
    error InvalidProof();
    /// @notice The opened share lies on the commitment: a false complaint.
    error ShareIsValid();
    error NoEvaluationPoint();
    /// @notice Two messages that do not conflict (kind, author or slot differ).
    error NoConflict();
    error SameMessage();
    /// @notice The session is not a reshare.
    error NotAReshare();
    /// @notice The previous commitment is not the one the session names.
    error PreviousCommitmentMismatch();
    /// @notice The reshare dealing's constant is the dealer's weighted public share.
    error ConstantIsRight();

    /// @notice Everything of an invalid-share proof but signatures: both messages
    /// decode canonically and belong to the descriptor's session of `deployment`; the
    /// dealing has its session's shape; `key` is the complainer's announcement of this
    /// session whose hash the dealing names as the complainer's recipient (the dealer
    /// signed it, so the announcement's own signature is not needed); the DLEQ proof
    /// shows the revealed key is that key's; the share it opens is off the commitment —
    /// `s·G2 ≠ Σ x^k·C_k` (Feldman), or `s·G2 + s'·H2 ≠ Σ x^k·C_k` (Pedersen, with the
    /// blinding share `s'` and the base `H2` that `base` proves agreed).
    function checkInvalidShare(
        bytes calldata dealing,
        bytes calldata complaint,
        bytes calldata key,
        SessionDescriptorV2 calldata session,
        BaseProof calldata base,
        bytes32 deployment
    ) external view returns (InvalidShareFacts memory f) {
        KmsMessagesV2.Dealing memory d = KmsMessagesV2.decodeDealing(dealing);
        KmsMessagesV2.Complaint memory c = KmsMessagesV2.decodeComplaint(complaint);
        if (c.dealer != d.dealer || c.dealing != keccak256(dealing)) revert OtherDealing();
        if (c.sessionTimestamp != d.sessionTimestamp || c.sessionHash != d.sessionHash) revert SessionMismatch();
        _checkSession(session, d.sessionTimestamp, d.sessionHash, deployment);
        _checkDealingShape(d, session);
        bytes memory pk = _recipientKey(d, c, session, key);
        bytes memory h2;
        (h2, f.voters) = _base(base, session, d.sessionHash);
        _checkOpening(d, c, pk, session, h2);
        (f.dealer, f.player, f.sessionTimestamp) = (d.dealer, c.player, d.sessionTimestamp);
    }

    /// @notice Everything of an equivocation proof but signatures: two different
    /// canonical messages of one author in one slot (two dealings, two proposals of
    /// one instance and round, two votes of one instance, round and step), of the
    /// descriptor's session of `deployment`, by an author with that role.
    /// @return author The equivocating author.
    /// @return sessionTimestamp The session.
    function checkEquivocation(
        bytes calldata first,
        bytes calldata second,
        SessionDescriptorV2 calldata session,
        bytes32 deployment
    ) external pure returns (address author, uint64 sessionTimestamp) {
        KmsMessagesV2.Slot memory a = KmsMessagesV2.slotOf(first);
        KmsMessagesV2.Slot memory b = KmsMessagesV2.slotOf(second);
        if (
            a.kind != b.kind || a.author != b.author || a.instance != b.instance || a.round != b.round
                || a.step != b.step
        ) revert NoConflict();
        if (a.sessionTimestamp != b.sessionTimestamp || a.sessionHash != b.sessionHash) revert SessionMismatch();
        if (keccak256(first) == keccak256(second)) revert SameMessage();
        _checkSession(session, a.sessionTimestamp, a.sessionHash, deployment);
        address[] calldata role = a.kind == KmsMessagesV2.KIND_DEALING ? session.dealers : session.players;
        if (_indexOf(role, a.author) == NOT_FOUND) revert WrongRole();
        return (a.author, a.sessionTimestamp);
    }

    /// @notice Everything of a wrong-reshare-constant proof but signatures: a
    /// canonical dealing of the descriptor's reshare session of `deployment`, of its
    /// shape, whose constant (`C_0`, or `C_0 − b_0·H2` in Pedersen mode with the base
    /// `H2` that `base` proves agreed) is not `λ_D·P(x_D)` with `P` the previous public
    /// polynomial (`previous`, the points whose hash the session names) and `λ_D` the
    /// dealer's Lagrange weight at 0 over the session's dealers.
    /// @return dealer The accused dealer.
    /// @return sessionTimestamp The session.
    /// @return voters Pedersen: the signers of `base.precommits`, in order.
    function checkWrongReshareConstant(
        bytes calldata dealing,
        SessionDescriptorV2 calldata session,
        bytes calldata previous,
        BaseProof calldata base,
        bytes32 deployment
    ) external view returns (address dealer, uint64 sessionTimestamp, address[] memory voters) {
        KmsMessagesV2.Dealing memory d = KmsMessagesV2.decodeDealing(dealing);
        _checkSession(session, d.sessionTimestamp, d.sessionHash, deployment);
        if (session.previousCommitmentHash == bytes32(0)) revert NotAReshare();
        if (previous.length == 0 || previous.length % G2_POINT != 0 || keccak256(previous) != session.previousCommitmentHash)
        {
            revert PreviousCommitmentMismatch();
        }
        _checkDealingShape(d, session);
        ShareEncryption.checkKey(d.ephemeralKey);
        bytes memory h2;
        (h2, voters) = _base(base, session, d.sessionHash);
        uint256[] memory scalars = _reshareScalars(d, session.dealers, previous.length / G2_POINT, h2.length != 0);
        if (BLS12381.combinationIsIdentity(bytes.concat(_points(d.commitment), previous, h2), scalars)) {
            revert ConstantIsRight();
        }
        return (d.dealer, d.sessionTimestamp, voters);
    }

    /// @dev The scalars of one MSM over `C ‖ P ‖ (H2)` that is the identity iff the
    /// constant is right: `1·C_0 + 0·C_k` (validated too) `− Σ λ·x^k·P_k` (`− b_0·H2`).
    function _reshareScalars(KmsMessagesV2.Dealing memory d, address[] calldata dealers, uint256 m, bool pedersen)
        private
        view
        returns (uint256[] memory scalars)
    {
        uint256 t = d.commitment.length;
        scalars = new uint256[](t + m + (pedersen ? 1 : 0));
        scalars[0] = 1;
        uint256 x = _evaluationPoint(d.dealer);
        uint256 term = _lagrangeAtZero(dealers, d.dealer);
        for (uint256 k = 0; k < m; k++) {
            scalars[t + k] = (R - term) % R;
            term = mulmod(term, x, R);
        }
        if (pedersen) scalars[t + m] = (R - uint256(d.constantBlinding)) % R;
    }

    // ---------------------------------------------------------------- internals

    /// @dev The descriptor is the preimage of the messages' session hash, of this
    /// deployment (review finding F7: a session elsewhere never slashes here).
    function _checkSession(SessionDescriptorV2 calldata s, uint64 ts, bytes32 sessionHash, bytes32 deployment)
        private
        pure
    {
        if (s.version != 2 || s.timestamp != ts || keccak256(abi.encode(s)) != sessionHash) {
            revert SessionMismatch();
        }
        if (s.deployment != deployment) revert WrongDeployment();
    }

    function _indexOf(address[] calldata set, address a) private pure returns (uint256) {
        for (uint256 i = 0; i < set.length; i++) {
            if (set[i] == a) return i;
        }
        return NOT_FOUND;
    }

    /// @dev What `decode_dealing` checks besides points: the dealer deals in this
    /// session, one point per coefficient, one recipient and one canonical word per
    /// player (a blinding word each in Pedersen mode; zero words for a player with no
    /// recipient), and `b_0` only in a Pedersen reshare.
    function _checkDealingShape(KmsMessagesV2.Dealing memory d, SessionDescriptorV2 calldata s) private pure {
        if (_indexOf(s.dealers, d.dealer) == NOT_FOUND) revert WrongRole();
        bool pedersen = s.mode == MODE_PEDERSEN;
        uint256 n = s.players.length;
        if (
            d.commitment.length != s.playerThreshold || d.recipients.length != n || d.shareValues.length != n
                || d.shareBlindings.length != (pedersen ? n : 0)
        ) revert WrongShape();
        for (uint256 i = 0; i < n; i++) {
            if (uint256(d.shareValues[i]) >= R) revert NonCanonicalShare();
            // A player outside the roster has no share: its words are zero.
            if (d.recipients[i] == bytes32(0) && (d.shareValues[i] != 0 || (pedersen && d.shareBlindings[i] != 0))) {
                revert WrongShape();
            }
        }
        for (uint256 i = 0; i < d.shareBlindings.length; i++) {
            if (uint256(d.shareBlindings[i]) >= R) revert NonCanonicalShare();
        }
        if (uint256(d.constantBlinding) >= R) revert NonCanonicalShare();
        if (!(pedersen && s.previousCommitmentHash != bytes32(0)) && d.constantBlinding != bytes32(0)) {
            revert WrongShape();
        }
    }

    /// @dev The complainer's key from its announcement `key`, which must be of the
    /// dealing's session, by the complainer, and the one whose hash the dealing names
    /// as the complainer's recipient.
    function _recipientKey(
        KmsMessagesV2.Dealing memory d,
        KmsMessagesV2.Complaint memory c,
        SessionDescriptorV2 calldata s,
        bytes calldata key
    ) private pure returns (bytes memory) {
        uint256 index = _indexOf(s.players, c.player);
        if (index == NOT_FOUND) revert WrongRole();
        bytes32 h = keccak256(key);
        if (h != d.recipients[index] || h == bytes32(0)) revert KeyNotNamed();
        KmsMessagesV2.KeyAnnouncement memory k = KmsMessagesV2.decodeKeyAnnouncement(key);
        if (k.player != c.player || k.sessionTimestamp != d.sessionTimestamp || k.sessionHash != d.sessionHash) {
            revert KeyNotNamed();
        }
        return k.key;
    }

    /// @dev The complaint's key is proven to be `sk·E` for the player's `pk`, and the
    /// share it opens (`word − pad_0 mod r`, the word `< r` by `_checkDealingShape`) is
    /// off the commitment.
    function _checkOpening(
        KmsMessagesV2.Dealing memory d,
        KmsMessagesV2.Complaint memory c,
        bytes memory pk,
        SessionDescriptorV2 calldata session,
        bytes memory h2
    ) private view {
        uint256 index = _indexOf(session.players, c.player);
        if (index == NOT_FOUND) revert WrongRole();
        ShareEncryption.Statement memory st =
            ShareEncryption.Statement(pk, d.ephemeralKey, c.sharedKey, d.sessionHash, d.dealer, c.player);
        if (!ShareEncryption.dleqHolds(st, c.challenge, c.response)) revert InvalidProof();
        uint256 share = addmod(uint256(d.shareValues[index]), R - ShareEncryption.pad(st, 0), R);
        uint256 x = _evaluationPoint(c.player);
        bool valid;
        if (h2.length == 0) {
            valid = BLS12381.feldmanShareIsValid(_points(d.commitment), x, share);
        } else {
            uint256 blinding = addmod(uint256(d.shareBlindings[index]), R - ShareEncryption.pad(st, 1), R);
            valid = BLS12381.pedersenShareIsValid(_points(d.commitment), x, share, blinding, h2);
        }
        if (valid) revert ShareIsValid();
    }

    /// @dev The session's base `H2` (empty in Feldman mode, where `b` must be empty)
    /// and the voters whose signatures over `b.precommits` the caller must check: the
    /// precommits are a quorum of distinct players (ascending) for one round of the
    /// coin instance and the value `keccak256("EIGENKMS-V2-VALUE" ‖ session ‖ 0 ‖
    /// keccak256(reveal)…)` (`dkg::instance::value_id`); the seed is
    /// `keccak256("EIGENKMS-V1-COIN-SEED" ‖ u64(32) ‖ session ‖ (operator ‖ value)…)`
    /// over the reveals by author (`vss::coin::combine`).
    function _base(BaseProof calldata b, SessionDescriptorV2 calldata s, bytes32 sessionHash)
        private
        view
        returns (bytes memory h2, address[] memory voters)
    {
        if (s.mode == MODE_FELDMAN) {
            if (b.precommits.length != 0 || b.signatures.length != 0 || b.reveals.length != 0) {
                revert UnexpectedBaseProof();
            }
            return (h2, voters);
        }
        if (s.mode != MODE_PEDERSEN) revert UnknownMode(s.mode);
        bytes32 value = _revealsValue(b.reveals, s.timestamp, sessionHash);
        uint256 n = b.precommits.length;
        if (n != b.signatures.length || n < _quorum(s.players.length, s.playerThreshold)) revert BaseNotAgreed();
        voters = new address[](n);
        uint32 round;
        for (uint256 i = 0; i < n; i++) {
            KmsMessagesV2.Vote memory v = KmsMessagesV2.decodeVote(b.precommits[i]);
            if (v.sessionTimestamp != s.timestamp || v.sessionHash != sessionHash) revert SessionMismatch();
            if (i == 0) round = v.round;
            if (
                v.instance != INSTANCE_COIN || v.step != STEP_PRECOMMIT || v.round != round || v.value != value
                    || (i > 0 && v.voter <= voters[i - 1])
            ) revert BaseNotAgreed();
            if (_indexOf(s.players, v.voter) == NOT_FOUND) revert WrongRole();
            voters[i] = v.voter;
        }
        h2 = HashToG2.hash(abi.encodePacked(_seed(b.reveals, sessionHash)), BASE_DST);
    }

    /// @dev The value id the reveals (in ascending hash order, of this session) make.
    function _revealsValue(bytes[] calldata reveals, uint64 ts, bytes32 sessionHash) private pure returns (bytes32) {
        uint256 m = reveals.length;
        if (m == 0) revert BaseNotAgreed();
        bytes32[] memory hashes = new bytes32[](m);
        for (uint256 i = 0; i < m; i++) {
            hashes[i] = keccak256(reveals[i]);
            if (i > 0 && hashes[i] <= hashes[i - 1]) revert BaseNotAgreed();
            KmsMessagesV2.CoinReveal memory r = KmsMessagesV2.decodeCoinReveal(reveals[i]);
            if (r.sessionTimestamp != ts || r.sessionHash != sessionHash) revert SessionMismatch();
        }
        return keccak256(abi.encodePacked(VALUE_DOMAIN, sessionHash, INSTANCE_COIN, hashes));
    }

    /// @dev `coin::combine(session, reveals)`: the reveals sorted by author, no author twice.
    function _seed(bytes[] calldata reveals, bytes32 sessionHash) private pure returns (bytes32) {
        uint256 m = reveals.length;
        address[] memory authors = new address[](m);
        bytes32[] memory values = new bytes32[](m);
        for (uint256 i = 0; i < m; i++) {
            KmsMessagesV2.CoinReveal memory r = KmsMessagesV2.decodeCoinReveal(reveals[i]);
            // Insertion sort by author (a quorum of reveals: small).
            uint256 j = i;
            while (j > 0 && authors[j - 1] > r.operator) {
                (authors[j], values[j]) = (authors[j - 1], values[j - 1]);
                j--;
            }
            (authors[j], values[j]) = (r.operator, r.value);
        }
        bytes memory pairs = new bytes(m * 52);
        for (uint256 i = 0; i < m; i++) {
            if (i > 0 && authors[i] == authors[i - 1]) revert BaseNotAgreed();
            bytes20 a = bytes20(authors[i]);
            bytes32 v = values[i];
            assembly ("memory-safe") {
                let q := add(add(pairs, 0x20), mul(i, 52))
                mstore(q, a)
                mstore(add(q, 20), v)
            }
        }
        return keccak256(abi.encodePacked(SEED_DOMAIN, uint64(32), sessionHash, pairs));
    }

    /// @dev `agreement::quorum(n, t) = n − ⌊(t − 1)/2⌋`.
    function _quorum(uint256 n, uint256 t) private pure returns (uint256) {
        if (n == 0 || t == 0 || t > n) revert WrongShape();
        return n - (t - 1) / 2;
    }

    /// @dev `evaluation_point`: keccak256(address) mod r, never zero.
    function _evaluationPoint(address a) private pure returns (uint256 x) {
        x = uint256(keccak256(abi.encodePacked(a))) % R;
        if (x == 0) revert NoEvaluationPoint();
    }

    /// @dev The commitment's points end to end (each 256 bytes).
    function _points(bytes[] memory words) private pure returns (bytes memory out) {
        out = new bytes(words.length * G2_POINT);
        for (uint256 i = 0; i < words.length; i++) {
            bytes memory w = words[i];
            if (w.length != G2_POINT) revert WrongShape();
            assembly ("memory-safe") {
                mcopy(add(add(out, 0x20), mul(i, G2_POINT)), add(w, 0x20), G2_POINT)
            }
        }
    }

    /// @dev `λ_D = Π_{j≠D} x_j / (x_j − x_D)` over the dealers (`lagrange_at_zero`).
    function _lagrangeAtZero(address[] calldata dealers, address dealer) private view returns (uint256) {
        uint256 xd = _evaluationPoint(dealer);
        uint256 num = 1;
        uint256 den = 1;
        for (uint256 i = 0; i < dealers.length; i++) {
            if (dealers[i] == dealer) continue;
            uint256 xj = _evaluationPoint(dealers[i]);
            num = mulmod(num, xj, R);
            den = mulmod(den, addmod(xj, R - xd, R), R);
        }
        return mulmod(num, _inverse(den), R);
    }

    /// @dev `a^(r−2) mod r` through the modexp precompile (EIP-198); `a ≠ 0` (the
    /// dealers' points are distinct).
    function _inverse(uint256 a) private view returns (uint256 result) {
        bool ok;
        uint256 r = R;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x20)
            mstore(add(m, 0x20), 0x20)
            mstore(add(m, 0x40), 0x20)
            mstore(add(m, 0x60), a)
            mstore(add(m, 0x80), sub(r, 2))
            mstore(add(m, 0xa0), r)
            ok := staticcall(gas(), 0x05, m, 0xc0, m, 0x20)
            result := mload(m)
        }
        if (!ok || result == 0) revert WrongRole();
    }
}

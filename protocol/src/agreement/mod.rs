//! Single-shot Byzantine agreement on one [`ValueId`] per session, with a
//! [`Certificate`] (a quorum of precommits for the same round and value) as proof.
//!
//! The algorithm is Tendermint's (Buchman, Kwon, Milosevic 2018, "The latest gossip
//! on BFT consensus", Algorithm 1) for a single height, with a general quorum in place
//! of `2f + 1`. [`Agreement`] is an I/O-free, deterministic state machine: the host
//! feeds it messages, validity verdicts and the clock, signs and sends what it outputs,
//! and delivers its own signed proposals and votes back to it like any peer's
//! (Tendermint's broadcast includes the sender). Values are opaque hashes; the host
//! says whether each is valid.
//!
//! # Quorum
//!
//! With `n` voters and threshold `t`, [`quorum`] is the smallest `q` with
//! `2q − n ≥ n − t + 1`, that is `q = n − ⌊(t − 1)/2⌋`:
//!
//! | n | t = ⌈2n/3⌉ | q | safe with ≤ n − t Byzantine | live with ≤ n − q faulty |
//! |---|---|---|---|---|
//! | 3 | 2 | 3 | 1 | 0 |
//! | 4 | 3 | 3 | 1 | 1 |
//! | 5 | 4 | 4 | 1 | 1 |
//! | 6 | 4 | 5 | 2 | 1 |
//! | 7 | 5 | 5 | 2 | 2 |
//! | 8 | 6 | 6 | 2 | 2 |
//! | 9 | 6 | 7 | 3 | 2 |
//! | 10 | 7 | 7 | 3 | 3 |
//! | 100 | 67 | 67 | 33 | 33 |
//!
//! When `n ≡ 0 (mod 3)` the quorum is larger than `t` (n = 6, t = 4: q = 5): two sets
//! of `t` voters would share only `2t − n = 2 = n − t` voters, all of whom may be
//! Byzantine.
//!
//! # Safety
//!
//! **(Q) Intersection.** Two sets of `q` voters share at least `2q − n ≥ n − t + 1`
//! voters; with at most `n − t` Byzantine voters, they share an honest one.
//!
//! **(V) One vote per kind.** An honest voter casts at most one prevote and one
//! precommit per round: it votes only when its step moves forward, and steps never move
//! back within a round. Byzantine voters may sign any number of votes; the argument
//! below lets them sign for every value, so it holds however receivers count them
//! (they count each voter's first vote of a kind per round, which bounds memory and
//! keeps an equivocator to one vote per tally).
//!
//! **(P) Precommit needs a polka.** A *polka* for `v` in `r` is prevotes for `v` in
//! `r` signed by `q` distinct voters. An honest voter precommits `v` in `r` only after
//! seeing one, and then locks on `(r, v)`; it prevotes a re-proposal of `v` with
//! `valid_round = vr` only after seeing one in `vr`.
//!
//! **Lemma.** If `q` precommits for `v` in round `r` exist (from any voters, so a
//! certificate can be formed), no polka for any `w ≠ v` exists in any round `r' ≥ r`.
//! Let `L` be the honest voters among those precommitters. By induction on `r'`:
//! - `r' = r`: the polka for `w` and the polka for `v` that made a member of `L`
//!   precommit share an honest voter (Q), who would have prevoted twice in `r` (V).
//! - `r' > r`: each `p ∈ L` locked on `v` in `r`, and by induction re-locked, if at all,
//!   only on `v` in rounds in `[r, r')`. So `p` prevotes `w` in `r'` neither for a fresh
//!   proposal (its lock is on `v`) nor for a proposal carrying `valid_round = vr`: that
//!   needs `locked_round ≤ vr` (hence `vr ≥ r`) and a polka for `w` in `vr ∈ [r, r')`,
//!   which the induction excludes. A polka for `w` in `r'` would share an honest voter
//!   with the precommitters (Q), that voter is in `L`, and it did not prevote `w`.
//!
//! **Agreement.** Certificates for `(r, v)` and `(r', w)` with `r ≤ r'` and `v ≠ w`
//! cannot both exist: the second needs an honest precommitter of `w` in `r'` (Q), hence
//! a polka for `w` in `r' ≥ r` (P), which the lemma excludes. So at most one value has a
//! certificate, whatever the network does, and every honest node and observer that
//! decides (by counting precommits or from a received certificate) decides that value.
//! Safety never depends on timeouts, validity verdicts, the proposer, or round skips.
//!
//! **Deviation: deciding without the proposal.** Tendermint decides on `q` precommits
//! for `(r, v)` only with the proposal of `v` in hand and `valid(v)`, because it must
//! hold the value to apply it. Here the value is a hash and the host fetches the
//! content, so a node decides on the precommits alone. The lemma and agreement above
//! use only the precommits, so this is as safe; and since a quorum has at least
//! `q − (n − t) ≥ 1` honest members, some honest voter saw the proposal and judged `v`
//! valid before precommitting, and holds the content for the host to fetch.
//!
//! **Deviation: a re-proposal carries its polka.** Algorithm 1 assumes gossip: every
//! message a correct process receives reaches all correct processes. Here hosts only
//! broadcast their own messages, and an equivocator can send its prevote for `v` to
//! one honest voter and another prevote to the rest; the polka it completes is then
//! seen by that voter alone, which locks on `v` while nobody else can ever accept a
//! re-proposal of `v` (observed in the simulator as honest voters giving up with
//! n = 4). So a proposer sends the signed prevotes of its polka with the proposal
//! ([`Output::SendProposal`]), and a receiver counts their signers towards line 28's
//! polka even where they conflict with the prevote it counted. That is a polka in the
//! sense of (P), so safety is untouched.
//!
//! # Liveness
//!
//! Progress needs `q` honest, connected voters (at most `n − q` faulty), messages that
//! are eventually delivered, delays that eventually stay below the timeouts (they grow
//! by `increment_ms` per round), and verdicts that honest hosts agree on. A node skips
//! to a later round once `n − q + 1` voters sent messages for it: with at most `n − q`
//! faulty, that includes an honest voter, so Byzantine voters cannot drag honest ones
//! ahead of every honest voter. A node that decides stops voting, so the host must pass
//! its certificate on: lagging nodes decide from it.
//!
//! Steps move as soon as the messages they need are in; timeouts run only while they
//! are missing. Beyond Algorithm 1, two moves are taken early. A voter precommits nil
//! once no value (nor nil) can still reach `q` prevotes in its tally: the prevote
//! timeout could only have ended the same way. And it leaves a round on `q` nil
//! precommits: no certificate for that round can exist anywhere (Q, V), so waiting for
//! one is pointless. Both moves are safe because nil votes and round changes are.
//!
//! # Bounded memory
//!
//! Messages for rounds at or beyond `max_rounds` are rejected, and per round at most one
//! proposal (with one flag per voter for its justification) and one vote of each kind
//! per voter is kept: `O(n · max_rounds)` whatever Byzantine voters send. Any round
//! below `max_rounds` is accepted, however far ahead of the current one, so that a node
//! that fell behind can skip forward on messages it has already received.
//!
//! # Host contract
//!
//! The host signs and broadcasts what the agreement outputs and delivers each of its
//! own messages back to it at once; checks signatures before any input (the evidence
//! `E` it attaches is what certificates and equivocation reports carry); answers
//! [`Output::NeedProposal`] and [`Output::NeedValidity`]; calls
//! [`tick`](Agreement::tick) at [`next_deadline`](Agreement::next_deadline); and, on
//! [`Output::Decided`], passes the certificate to the other nodes.

mod error;
mod machine;
mod rules;
mod types;
mod votes;

#[cfg(test)]
mod tests;

pub use error::{CertificateError, ConfigError, Rejection};
pub use machine::Agreement;
pub use types::{
    Certificate, Config, Output, Proposal, Round, Timeouts, Validity, ValueId, Vote, VoteKind,
    check_certificate_shape,
};

/// The smallest quorum `q` such that any two sets of `q` among `n` voters share more
/// than `n − t` voters: `q = n − ⌊(t − 1)/2⌋`. Safe with up to `n − t` Byzantine voters;
/// live while `q` honest voters are connected.
pub fn quorum(n: usize, t: usize) -> Result<usize, ConfigError> {
    if n == 0 {
        return Err(ConfigError::NoVoters);
    }
    if t == 0 || t > n {
        return Err(ConfigError::ThresholdOutOfRange {
            threshold: t,
            voters: n,
        });
    }
    Ok(n - (t - 1) / 2)
}

#[cfg(test)]
mod quorum_tests {
    use super::*;

    fn two_thirds(n: usize) -> usize {
        (2 * n).div_ceil(3)
    }

    #[test]
    fn quorum_table_matches_the_module_doc() {
        let table = [
            (3, 2, 3),
            (4, 3, 3),
            (5, 4, 4),
            (6, 4, 5),
            (7, 5, 5),
            (8, 6, 6),
            (9, 6, 7),
            (10, 7, 7),
            (100, 67, 67),
        ];
        for (n, t, q) in table {
            assert_eq!(two_thirds(n), t, "t for n = {n}");
            assert_eq!(quorum(n, t), Ok(q), "q for n = {n}");
        }
    }

    #[test]
    fn quorum_is_the_smallest_with_an_honest_intersection() {
        for n in 1..=40 {
            for t in 1..=n {
                let q = quorum(n, t).unwrap();
                assert!(q <= n);
                // Two q-sets share at least 2q − n voters; that must exceed n − t.
                let shared = |q: usize| 2 * q - n;
                assert!(shared(q) > n - t, "n = {n}, t = {t}: q = {q} too small");
                assert!(
                    q == 1 || 2 * (q - 1) <= n || shared(q - 1) <= n - t,
                    "n = {n}, t = {t}: q = {q} not the smallest"
                );
            }
        }
    }

    #[test]
    fn quorum_rejects_thresholds_outside_one_to_n() {
        assert_eq!(quorum(0, 0), Err(ConfigError::NoVoters));
        assert_eq!(
            quorum(4, 0),
            Err(ConfigError::ThresholdOutOfRange {
                threshold: 0,
                voters: 4
            })
        );
        assert!(quorum(4, 5).is_err());
    }
}

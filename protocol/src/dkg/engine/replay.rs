//! Catching up on a session this node missed (it was cut off, or its host delayed
//! it past the session's end): a fresh engine of the same setup reads a peer's
//! transcript — the signed messages that peer holds, all public — and reaches the
//! session's outcome exactly as if it had received them in time: every signature,
//! dealing, share and vote is checked as usual, and it decides only on a quorum's
//! signed precommits for a value it judges valid (its own shares included). A peer
//! can withhold or reorder, never forge, so a replay yields the agreed outcome or
//! nothing. The engine sends nothing of its own while replaying.

use super::*;

/// Steps of virtual time a replay takes at most, each a tenth of a phase: well
/// within the first agreement rounds, far from the session deadline.
const REPLAY_STEPS: u64 = 64;

impl Engine {
    /// Every authentic message this engine holds: dealings (ciphertexts only), acks,
    /// complaints, coin messages, proposals, votes and public shares. What a node
    /// that missed the session needs to catch up ([`Engine::replay`]).
    pub fn transcript(&self) -> Vec<SignedMessage> {
        self.messages.values().cloned().collect()
    }

    /// Replays `messages` into this fresh engine (built with [`Engine::new`] for the
    /// session this node missed, with the encryption key it had then) on a virtual
    /// clock from the session's start: the outcome, or `None` if the messages hold no
    /// decision this node can use.
    pub fn replay(
        mut self,
        messages: &[SignedMessage],
    ) -> Option<Result<SessionOutcome, SessionFailure>> {
        self.replaying = true;
        // Its dealing, if it dealt, is in the transcript: a new one (its signature
        // aside) would be a second dealing of this node.
        self.secret = None;
        let schedule = self.setup.params.schedule;
        let step = schedule.phase_ms / 10 + 1;
        let mut now = schedule.start_ms;
        self.start(now);
        for _ in 0..REPLAY_STEPS {
            for m in messages {
                let _ = self.handle(now, m.clone());
            }
            if let Some(done) = self.take_outcome() {
                return Some(done);
            }
            now += step;
            self.tick(now);
            if let Some(done) = self.take_outcome() {
                return Some(done);
            }
        }
        None
    }

    fn take_outcome(&mut self) -> Option<Result<SessionOutcome, SessionFailure>> {
        self.drain().into_iter().find_map(|a| match a {
            Action::Done(r) => Some(r),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::sim::{Net, Scenario, SimMember};
    use super::*;
    use crate::session::{Schedule, SessionParams, SessionTimestamp};
    use std::collections::BTreeMap;

    fn params(members: &[SimMember], mode: VssMode) -> SessionParams {
        SessionParams::dkg(
            SessionTimestamp(600),
            mode,
            members.iter().map(SimMember::participant).collect(),
            Schedule {
                start_ms: 0,
                phase_ms: 1_000,
            },
        )
        .unwrap()
    }

    /// A node cut off for the whole session catches up from any one peer's
    /// transcript to the version the others activated; a transcript without the
    /// decision, or with a vote tampered with, gives nothing.
    #[test]
    fn a_node_that_missed_the_session_reaches_the_agreed_version_from_a_transcript() {
        for mode in [VssMode::Feldman, VssMode::Pedersen] {
            let members = SimMember::generate(4, 31);
            let late = members[3].clone();
            let params = params(&members, mode);
            let run = Scenario {
                params: params.clone(),
                members: members.clone(),
                shares: BTreeMap::new(),
                net: Net {
                    seed: 5,
                    record: true,
                    ..Net::default()
                },
                byzantine: Vec::new(),
                until_ms: 60_000,
            }
            .run();
            let Some(Ok(SessionOutcome::NewVersion(agreed))) =
                run.network.outcome(&members[0].address())
            else {
                panic!("{mode:?}: the session completes")
            };
            // What one peer holds: what it sent and what it received.
            let peer = members[0].address();
            let mut seen = std::collections::BTreeSet::new();
            let transcript: Vec<SignedMessage> = run
                .network
                .transcript()
                .iter()
                .filter(|(from, to, _)| *from == peer || *to == peer)
                .filter(|(_, _, m)| seen.insert(m.hash))
                .map(|(_, _, m)| m.clone())
                .collect();
            let engine = |seed: u8| {
                Engine::new(
                    run.setup.clone(),
                    late.address(),
                    late.operator.signer.clone(),
                    late.encryption.clone(),
                    None,
                    [seed; 32],
                )
                .unwrap()
            };
            let replayed = engine(1).replay(&transcript);
            let Some(Ok(SessionOutcome::NewVersion(caught))) = replayed else {
                panic!("{mode:?}: the replay reaches the outcome, not {replayed:?}")
            };
            assert_eq!(caught.commitment, agreed.commitment, "{mode:?}");
            assert_eq!(caught.qualified_dealers, agreed.qualified_dealers);
            // Its share lies on the agreed polynomial.
            let x = kms_crypto::evaluation_point(&late.address()).unwrap();
            assert!(kms_crypto::vss::feldman::verify_share(
                &x,
                &caught.share,
                &caught.commitment
            ));
            // Without the precommits, nothing.
            let no_votes: Vec<SignedMessage> = transcript
                .iter()
                .filter(|m| !matches!(Body::decode(&m.payload), Ok(Body::Vote(_))))
                .cloned()
                .collect();
            assert!(engine(2).replay(&no_votes).is_none(), "{mode:?}");
        }
    }
}

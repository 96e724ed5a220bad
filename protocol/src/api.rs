//! JSON shapes of the node's HTTP API, shared by the node and the client so both sides
//! agree on one definition. Points travel as `0x`-hex of their compressed form;
//! field names follow the protocol specification (camelCase).

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::{Commitment, G1Point, G2Point, OperatorAddress};
use serde::{Deserialize, Serialize};

use crate::session::VssMode;

/// `GET /pubkey`: this operator's view of the active key version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PubkeyResponse {
    /// The operator answering.
    pub operator_address: OperatorAddress,
    /// The public polynomial of the version: `commitments[0]` is the master public key.
    pub commitments: Vec<G2Point>,
    /// The version: the timestamp of the session that produced it.
    pub version: u64,
    /// Whether this is the node's active version.
    pub is_active: bool,
    /// Shares needed to reconstruct (the number of commitments).
    pub threshold: usize,
    /// The players of the session that produced it (a player the session's roster
    /// left out holds no share).
    pub operators: Vec<OperatorAddress>,
    /// The VSS mode of the session that produced it.
    pub mode: VssMode,
}

/// `POST /app/sign` request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The application identity.
    #[serde(rename = "appID")]
    pub app_id: String,
    /// Unix seconds: sign with the version active then (default: now). An attested
    /// request uses its `attestTime` instead and must not set this.
    #[serde(
        rename = "attestationTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub attestation_time: Option<u64>,
    /// Why the caller may have the app's key material (required unless the node runs
    /// the insecure unauthenticated development mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<crate::release::Authorization>,
}

/// `POST /app/sign` response to an authorized request: this operator's partial of
/// the app key, sealed to the request's one-time key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedSignResponse {
    /// The operator answering.
    pub operator_address: OperatorAddress,
    /// The key version used.
    pub version: u64,
    /// `0x`-hex of HPKE(one-time key, info `EIGENKMS-V1-APP-SIGN-PARTIAL`, aad
    /// [`crate::release::partial_aad`], compressed `s_i·H1(appID)`): 96 bytes.
    pub encrypted_partial_signature: String,
}

/// A partial signature in clear: what the insecure unauthenticated development mode
/// of `/app/sign` answers (in the insecure-dev domain, never the app key), and the
/// shape a client works with once it has opened a sealed answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignResponse {
    /// The operator answering.
    pub operator_address: OperatorAddress,
    /// `s_i·H1(appID)`.
    pub partial_signature: G1Point,
    /// The key version used.
    pub version: u64,
}

/// Longest application identity accepted (bytes of UTF-8).
pub const MAX_APP_ID_BYTES: usize = 256;

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResponse {
    /// `"ok"` when the node serves requests.
    pub status: String,
    /// The operator.
    pub operator_address: OperatorAddress,
    /// A key version is active and `/app/sign` can answer.
    pub ready: bool,
    /// The active key version, if any.
    pub active_version: Option<u64>,
    /// The session in progress, if any.
    pub session_in_progress: Option<SessionStatus>,
    /// Insecure development modes that are on (empty in production).
    pub insecure_modes: Vec<String>,
}

/// A session in progress, as `/health` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// The session timestamp.
    pub timestamp: u64,
    /// `dkg` or `reshare`.
    pub kind: crate::session::SessionKind,
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable reason (never secret material).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable code, e.g. `bad_request`, `not_found`, `rate_limited`.
    pub code: String,
    /// Why.
    pub message: String,
}

/// One key version as a group of operators reports it.
#[derive(Clone, Debug)]
pub struct VersionVote {
    /// The version.
    pub version: u64,
    /// Its public polynomial.
    pub commitment: Commitment,
    /// The operators holding shares of it (as reported).
    pub operators: Vec<OperatorAddress>,
    /// The operators of the version that reported exactly this version.
    pub holders: BTreeSet<OperatorAddress>,
}

impl VersionVote {
    /// Whether at least the version's threshold of its own operators report it, so
    /// that fewer than `t` liars cannot make it up.
    pub fn is_agreed(&self) -> bool {
        self.holders.len() >= self.commitment.threshold()
    }
}

/// Groups `/pubkey` answers by (version, public polynomial). An answer counts once per
/// operator and only if the operator belongs to the version it reports. Oldest first.
pub fn tally(answers: &[PubkeyResponse]) -> Vec<VersionVote> {
    let mut groups: BTreeMap<(u64, [u8; 32]), VersionVote> = BTreeMap::new();
    for a in answers {
        let Ok(c) = Commitment::new(a.commitments.clone()) else {
            continue;
        };
        if c.threshold() != a.threshold {
            continue;
        }
        let vote = groups
            .entry((a.version, c.hash()))
            .or_insert_with(|| VersionVote {
                version: a.version,
                commitment: c,
                operators: a.operators.clone(),
                holders: BTreeSet::new(),
            });
        if vote.operators == a.operators && vote.operators.contains(&a.operator_address) {
            vote.holders.insert(a.operator_address);
        }
    }
    groups.into_values().collect()
}

/// The newest version reported by its threshold of operators.
pub fn agreed_version(answers: &[PubkeyResponse]) -> Option<VersionVote> {
    tally(answers)
        .into_iter()
        .rev()
        .find(VersionVote::is_agreed)
}

/// What the operators run at a session boundary, decided by each node from every
/// operator's list of held versions (`GET /versions`).
#[derive(Clone, Debug)]
pub enum BoundaryPlan {
    /// Nobody holds a key: the first DKG.
    Dkg,
    /// Every version anyone reported is provably dead — even counting every operator
    /// that did not answer as a holder, fewer than its threshold hold it — so no
    /// threshold can ever sign or decrypt with it (a DKG whose nodes finished with
    /// different qualified sets): a new DKG loses nothing.
    RestartDkg,
    /// Reshare from the newest version its threshold of operators report.
    Reshare(VersionVote),
    /// Keys exist, none is reported by its threshold, and operators that did not
    /// answer might hold one: wait for them rather than risk replacing a live key.
    Wait,
}

/// Decides a boundary from `answers` (every version each answering operator holds,
/// this node's own included) and `answered` (the operators that answered at all, an
/// empty list being an answer).
pub fn plan_boundary(
    answers: &[PubkeyResponse],
    answered: &BTreeSet<OperatorAddress>,
) -> BoundaryPlan {
    if answers.is_empty() {
        return BoundaryPlan::Dkg;
    }
    let votes = tally(answers);
    if let Some(v) = votes.iter().rev().find(|v| v.is_agreed()) {
        return BoundaryPlan::Reshare(v.clone());
    }
    let could_live = |v: &VersionVote| {
        let silent = v
            .operators
            .iter()
            .filter(|o| !answered.contains(o) && !v.holders.contains(o))
            .count();
        v.holders.len() + silent >= v.commitment.threshold()
    };
    if votes.iter().any(could_live) {
        BoundaryPlan::Wait
    } else {
        BoundaryPlan::RestartDkg
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_request_uses_spec_field_names_and_rejects_unknown_fields() {
        let r: SignRequest = serde_json::from_str(r#"{"appID":"a","attestationTime":5}"#).unwrap();
        assert_eq!(r.app_id, "a");
        assert_eq!(r.attestation_time, Some(5));
        let r: SignRequest = serde_json::from_str(r#"{"appID":"a"}"#).unwrap();
        assert_eq!(r.attestation_time, None);
        assert!(serde_json::from_str::<SignRequest>(r#"{"appID":"a","x":1}"#).is_err());
        assert!(serde_json::from_str::<SignRequest>(r#"{"appID":7}"#).is_err());
    }

    #[test]
    fn a_version_needs_its_threshold_of_its_own_operators() {
        let ops: Vec<OperatorAddress> = (1..=4u8)
            .map(|i| OperatorAddress::from_bytes([i; 20]))
            .collect();
        let g = G2Point::generator();
        let c = vec![g, g.add(&g), g.add(&g).add(&g)];
        let answer = |who: usize, version: u64, commitments: Vec<G2Point>| PubkeyResponse {
            operator_address: ops[who],
            threshold: commitments.len(),
            commitments,
            version,
            is_active: true,
            operators: ops.clone(),
            mode: VssMode::Feldman,
        };
        let mut answers = vec![answer(0, 10, c.clone()), answer(1, 10, c.clone())];
        assert!(agreed_version(&answers).is_none(), "2 of t = 3");
        // A duplicate answer does not count twice.
        answers.push(answer(1, 10, c.clone()));
        assert!(agreed_version(&answers).is_none());
        // A liar with a newer version does not win.
        answers.push(answer(3, 20, vec![g, g, g]));
        answers.push(answer(2, 10, c.clone()));
        let v = agreed_version(&answers).unwrap();
        assert_eq!(v.version, 10);
        assert_eq!(v.holders.len(), 3);
        // A stranger cannot vote.
        let mut stranger = answer(0, 30, c.clone());
        stranger.operator_address = OperatorAddress::from_bytes([9; 20]);
        assert!(tally(&[stranger]).iter().all(|v| v.holders.is_empty()));
    }

    #[test]
    fn a_boundary_restarts_dkg_only_when_every_version_is_provably_dead() {
        let ops: Vec<OperatorAddress> = (1..=4u8)
            .map(|i| OperatorAddress::from_bytes([i; 20]))
            .collect();
        let g = G2Point::generator();
        // Two different DKG outcomes of one session, t = 3 of 4.
        let a = vec![g, g.add(&g), g];
        let b = vec![g.add(&g), g, g];
        let answer = |who: usize, version: u64, commitments: &Vec<G2Point>| PubkeyResponse {
            operator_address: ops[who],
            threshold: commitments.len(),
            commitments: commitments.clone(),
            version,
            is_active: true,
            operators: ops.clone(),
            mode: VssMode::Feldman,
        };
        let everyone: BTreeSet<OperatorAddress> = ops.iter().copied().collect();
        assert!(matches!(plan_boundary(&[], &everyone), BoundaryPlan::Dkg));
        let split = vec![
            answer(0, 10, &a),
            answer(1, 10, &a),
            answer(2, 10, &b),
            answer(3, 10, &b),
        ];
        // All four answered, 2 + 2 < 3: both versions are dead.
        assert!(matches!(
            plan_boundary(&split, &everyone),
            BoundaryPlan::RestartDkg
        ));
        // Operator 3 silent: it might hold `a` (2 + 1 = 3), so wait.
        let three: BTreeSet<OperatorAddress> = ops[..3].iter().copied().collect();
        assert!(matches!(
            plan_boundary(&split[..3], &three),
            BoundaryPlan::Wait
        ));
        // Operator 3 answered with nothing: `a` has 2 holders, `b` 1, both dead.
        assert!(matches!(
            plan_boundary(&split[..3], &everyone),
            BoundaryPlan::RestartDkg
        ));
        // A reshare (version 20) split, version 10 still held by all: reshare from 10.
        let mut history = vec![
            answer(0, 20, &a),
            answer(1, 20, &a),
            answer(2, 20, &b),
            answer(3, 20, &b),
        ];
        history.extend((0..4).map(|i| answer(i, 10, &b)));
        match plan_boundary(&history, &everyone) {
            BoundaryPlan::Reshare(v) => {
                assert_eq!(v.version, 10);
                assert_eq!(v.holders.len(), 4);
            }
            other => panic!("expected a reshare from version 10, got {other:?}"),
        }
    }
}

//! Agreement on the master key: which `/pubkey` answers to believe.
//!
//! A node can claim anything, so no single answer is trusted. Answers are grouped by
//! (version, public polynomial, operator set); a group counts only the operators of
//! its own set, each once, and is believed only when at least its threshold `t` of
//! them report it. Fewer than `t` colluding operators therefore cannot make a client
//! encrypt to a key they invented, nor roll it back to an old version while `t` honest
//! operators report a newer one.

use std::collections::BTreeMap;

use kms_crypto::{Commitment, G2Point, OperatorAddress};
use kms_protocol::api::{PubkeyResponse, VersionVote, tally};
use url::Url;

use crate::error::{ClientError, NodeError, NodeFailure};

/// The master key as at least `threshold` of its operators report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKey {
    /// The key version: the timestamp of the session that produced it.
    pub version: u64,
    /// The public polynomial; its constant term is the master public key and its value
    /// at an operator's evaluation point that operator's public share.
    pub commitments: Commitment,
    /// The operators holding shares of this version.
    pub operators: Vec<OperatorAddress>,
    /// Shares needed to act (the number of commitments).
    pub threshold: usize,
    /// Operators that reported exactly this version.
    pub agreeing: Vec<OperatorAddress>,
    /// Answers that were well-formed but not this version (lagging, or lying).
    pub dissenting: Vec<Dissent>,
    /// Nodes that did not answer usefully.
    pub failures: Vec<NodeFailure>,
    /// The operator each answering node named as itself (not verified: a request
    /// signed for one operator is good at that operator's node only).
    pub node_operators: BTreeMap<Url, OperatorAddress>,
}

impl MasterKey {
    /// The master public key `C_0`.
    pub fn public_key(&self) -> G2Point {
        *self.commitments.constant()
    }
}

/// A node whose `/pubkey` answer disagrees with the agreed version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dissent {
    /// The node's base URL.
    pub node: Url,
    /// The operator it claims to be.
    pub operator: OperatorAddress,
    /// The version it reported.
    pub version: u64,
}

/// Picks the newest version held by its threshold of operators from every node's
/// answer (or failure), in node order.
pub(crate) fn agree(
    answers: Vec<(Url, Result<PubkeyResponse, NodeError>)>,
) -> Result<MasterKey, ClientError> {
    let nodes = answers.len();
    let mut failures = Vec::new();
    let mut answered = Vec::new();
    for (node, a) in answers {
        match a {
            Ok(r) => answered.push((node, r)),
            Err(error) => failures.push(NodeFailure { node, error }),
        }
    }
    let responses: Vec<PubkeyResponse> = answered.iter().map(|(_, r)| r.clone()).collect();
    let node_operators = answered
        .iter()
        .map(|(node, r)| (node.clone(), r.operator_address))
        .collect();
    let votes = tally(&responses);
    let Some(best) = votes.iter().rev().find(|v| v.is_agreed()) else {
        let (agreeing, needed) = votes
            .iter()
            .map(|v| (v.holders.len(), v.commitment.threshold()))
            .max()
            .unwrap_or((0, 0));
        return Err(ClientError::NoAgreement {
            nodes,
            answered: answered.len(),
            agreeing,
            needed,
            failures,
        });
    };
    let dissenting = answered
        .iter()
        .filter(|(_, r)| !supports(best, r))
        .map(|(node, r)| Dissent {
            node: node.clone(),
            operator: r.operator_address,
            version: r.version,
        })
        .collect();
    Ok(MasterKey {
        version: best.version,
        commitments: best.commitment.clone(),
        operators: best.operators.clone(),
        threshold: best.commitment.threshold(),
        agreeing: best.holders.iter().copied().collect(),
        dissenting,
        failures,
        node_operators,
    })
}

/// Whether an answer is exactly the agreed version, from one of its operators.
fn supports(vote: &VersionVote, r: &PubkeyResponse) -> bool {
    r.version == vote.version
        && r.commitments == vote.commitment.coefficients()
        && r.threshold == vote.commitment.threshold()
        && r.operators == vote.operators
        && vote.operators.contains(&r.operator_address)
}

#[cfg(test)]
mod tests {
    use kms_crypto::Scalar;
    use kms_protocol::session::VssMode;

    use super::*;

    fn ops(n: u8) -> Vec<OperatorAddress> {
        (1..=n)
            .map(|i| OperatorAddress::from_bytes([i; 20]))
            .collect()
    }

    fn answer(
        op: OperatorAddress,
        version: u64,
        c: &[G2Point],
        all: &[OperatorAddress],
    ) -> PubkeyResponse {
        PubkeyResponse {
            operator_address: op,
            commitments: c.to_vec(),
            version,
            is_active: true,
            threshold: c.len(),
            operators: all.to_vec(),
            mode: VssMode::Feldman,
        }
    }

    fn url(i: usize) -> Url {
        format!("http://node{i}.invalid").parse().unwrap()
    }

    fn poly(seed: u64) -> Vec<G2Point> {
        (0..3)
            .map(|k| G2Point::generator().mul(&Scalar::from_u64(seed * 10 + k + 1)))
            .collect()
    }

    #[test]
    fn newest_agreed_version_wins_and_dissent_is_reported() {
        let all = ops(4);
        let (old, new) = (poly(1), poly(2));
        let answers = vec![
            (url(0), Ok(answer(all[0], 20, &new, &all))),
            (url(1), Ok(answer(all[1], 20, &new, &all))),
            (url(2), Ok(answer(all[2], 20, &new, &all))),
            // Lagging behind.
            (url(3), Ok(answer(all[3], 10, &old, &all))),
        ];
        let mk = agree(answers).unwrap();
        assert_eq!(mk.version, 20);
        assert_eq!(mk.public_key(), new[0]);
        assert_eq!(mk.agreeing, all[..3].to_vec());
        assert_eq!(
            mk.dissenting,
            vec![Dissent {
                node: url(3),
                operator: all[3],
                version: 10
            }]
        );
    }

    #[test]
    fn a_newer_version_from_fewer_than_t_does_not_win() {
        let all = ops(4);
        let (real, fake) = (poly(1), poly(2));
        let mut answers: Vec<_> = (0..3)
            .map(|i| (url(i), Ok(answer(all[i], 10, &real, &all))))
            .collect();
        answers.push((url(3), Ok(answer(all[3], 99, &fake, &all))));
        // Impersonating an honest operator with the same lie adds nothing.
        answers.push((url(4), Ok(answer(all[0], 99, &fake, &all))));
        let mk = agree(answers).unwrap();
        assert_eq!((mk.version, mk.public_key()), (10, real[0]));
        assert_eq!(mk.dissenting.len(), 2);
    }

    #[test]
    fn no_agreement_names_the_counts_and_the_failures() {
        let all = ops(4);
        let c = poly(1);
        let answers = vec![
            (url(0), Ok(answer(all[0], 10, &c, &all))),
            (url(1), Ok(answer(all[1], 10, &c, &all))),
            (url(2), Err(NodeError::Timeout)),
            (url(3), Ok(answer(all[3], 11, &poly(2), &all))),
        ];
        let e = agree(answers).unwrap_err();
        let ClientError::NoAgreement {
            nodes,
            answered,
            agreeing,
            needed,
            ref failures,
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!((nodes, answered, agreeing, needed), (4, 3, 2, 3));
        assert_eq!(failures.len(), 1);
        let msg = e.to_string();
        assert!(msg.contains("3 of 4 nodes answered"), "{msg}");
        assert!(msg.contains("2 of 3 needed"), "{msg}");
        assert!(msg.contains("http://node2.invalid/: timed out"), "{msg}");
    }
}

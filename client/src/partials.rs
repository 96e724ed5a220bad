//! Assembling an app key from the nodes' `/app/sign` answers: which answers to keep,
//! and which `t` of them to combine. I/O-free: the client feeds it answers.
//!
//! Checks and what they prevent:
//! - the answer's version must be the agreed one: partials of two versions are shares
//!   of different polynomials and would interpolate to garbage;
//! - the operator must belong to that version: a stranger has no public share to be
//!   checked against;
//! - every partial is verified against the operator's public share `Σ x^k·C_k` (in
//!   one batch, then singly if the batch fails): one bad partial would otherwise
//!   yield a wrong key;
//! - answers that claim the same operator are each verified and the first valid one
//!   kept, so a node impersonating an honest operator cannot crowd out its partial;
//! - the combined key is checked with `e(sk, G2) = e(H1(appID), MPK)`.

use std::collections::BTreeMap;

use kms_crypto::tbls::{self, AppPrivateKey, PartialSignature};
use kms_crypto::{G1Point, OperatorAddress, Scalar, evaluation_point};
use kms_protocol::api::SignResponse;
use rand_core::{CryptoRng, RngCore};
use url::Url;

use crate::error::{ClientError, NodeError, NodeFailure};
use crate::master_key::MasterKey;

struct Candidate {
    node: Url,
    operator: OperatorAddress,
    evaluation_point: Scalar,
    signature: G1Point,
}

/// The answers gathered so far for one app ID against one agreed master key.
pub(crate) struct PartialCollector<'a> {
    key: &'a MasterKey,
    candidates: Vec<Candidate>,
    failures: Vec<NodeFailure>,
    other_version: Vec<(Url, u64)>,
}

impl<'a> PartialCollector<'a> {
    pub(crate) fn new(key: &'a MasterKey) -> Self {
        Self {
            key,
            candidates: Vec::new(),
            failures: Vec::new(),
            other_version: Vec::new(),
        }
    }

    /// Records one node's answer. With `may_ask_again`, an answer of another version
    /// is set aside (see [`Self::take_other_version`]) instead of being a failure.
    pub(crate) fn add(
        &mut self,
        node: Url,
        answer: Result<SignResponse, NodeError>,
        may_ask_again: bool,
    ) {
        let r = match answer {
            Ok(r) => r,
            Err(error) => return self.failures.push(NodeFailure { node, error }),
        };
        let error = if r.version != self.key.version {
            if may_ask_again {
                return self.other_version.push((node, r.version));
            }
            NodeError::WrongVersion {
                got: r.version,
                expected: self.key.version,
            }
        } else if !self.key.operators.contains(&r.operator_address) {
            NodeError::NotAnOperator(r.operator_address)
        } else {
            match evaluation_point(&r.operator_address) {
                Ok(x) => {
                    return self.candidates.push(Candidate {
                        node,
                        operator: r.operator_address,
                        evaluation_point: x,
                        signature: r.partial_signature,
                    });
                }
                // keccak256(address) ≡ 0 mod r: no operator can have such an address.
                Err(_) => NodeError::NotAnOperator(r.operator_address),
            }
        };
        self.failures.push(NodeFailure { node, error });
    }

    /// Distinct operators with an answer for the agreed version so far.
    pub(crate) fn operators_answered(&self) -> usize {
        let mut ops: Vec<_> = self.candidates.iter().map(|c| c.operator).collect();
        ops.sort_unstable();
        ops.dedup();
        ops.len()
    }

    /// Nodes that signed with another version (typically a reshare that completed
    /// between `/pubkey` and `/app/sign`); they can be asked for the agreed version by
    /// name.
    pub(crate) fn take_other_version(&mut self) -> Vec<Url> {
        std::mem::take(&mut self.other_version)
            .into_iter()
            .map(|(node, _)| node)
            .collect()
    }

    /// Verifies the partials and combines `t` valid ones into the app key.
    pub(crate) fn finish<R: RngCore + CryptoRng + ?Sized>(
        mut self,
        app_id: &str,
        rng: &mut R,
    ) -> Result<AppPrivateKey, ClientError> {
        let app_id = app_id.as_bytes();
        let t = self.key.threshold;
        // Set aside but not asked again.
        for (node, got) in std::mem::take(&mut self.other_version) {
            self.failures.push(NodeFailure {
                node,
                error: NodeError::WrongVersion {
                    got,
                    expected: self.key.version,
                },
            });
        }
        let unique = self.one_per_operator(app_id);
        if unique.len() < t {
            // Too few to combine; still verify them, so the error counts valid ones.
            let valid = unique
                .into_iter()
                .filter(|c| self.verify_one(app_id, c))
                .count();
            return Err(self.not_enough(valid));
        }
        let partials: Vec<PartialSignature> = unique
            .iter()
            .map(|c| PartialSignature {
                evaluation_point: c.evaluation_point.clone(),
                signature: c.signature,
            })
            .collect();
        match tbls::combine_partials(&self.key.commitments, app_id, &partials, rng) {
            Ok(combined) => {
                if !tbls::verify_app_key(&self.key.public_key(), app_id, &combined.key) {
                    return Err(ClientError::KeyMismatch);
                }
                Ok(combined.key)
            }
            Err(e) => {
                for i in e.invalid {
                    if let Some(c) = unique.get(i) {
                        self.failures.push(NodeFailure {
                            node: c.node.clone(),
                            error: NodeError::InvalidPartial(c.operator),
                        });
                    }
                }
                Err(self.not_enough(e.valid))
            }
        }
    }

    /// One candidate per operator. Where several nodes claim the same operator, each is
    /// verified and the first valid one kept; the others are reported.
    fn one_per_operator(&mut self, app_id: &[u8]) -> Vec<Candidate> {
        let mut by_operator: BTreeMap<OperatorAddress, Vec<Candidate>> = BTreeMap::new();
        for c in std::mem::take(&mut self.candidates) {
            by_operator.entry(c.operator).or_default().push(c);
        }
        let mut unique = Vec::with_capacity(by_operator.len());
        for (_, mut claims) in by_operator {
            if claims.len() == 1 {
                unique.extend(claims.pop());
                continue;
            }
            let mut kept = false;
            for c in claims {
                if kept {
                    self.failures.push(NodeFailure {
                        node: c.node,
                        error: NodeError::DuplicateOperator(c.operator),
                    });
                } else if self.verify_one(app_id, &c) {
                    kept = true;
                    unique.push(c);
                }
            }
        }
        unique
    }

    /// Checks one partial against the operator's public share; records a failure if not.
    fn verify_one(&mut self, app_id: &[u8], c: &Candidate) -> bool {
        let share = self.key.commitments.evaluate(&c.evaluation_point);
        let ok = tbls::verify_partial(&share, &tbls::hash_app_id(app_id), &c.signature);
        if !ok {
            self.failures.push(NodeFailure {
                node: c.node.clone(),
                error: NodeError::InvalidPartial(c.operator),
            });
        }
        ok
    }

    fn not_enough(self, valid: usize) -> ClientError {
        ClientError::NotEnoughPartials {
            version: self.key.version,
            valid,
            needed: self.key.threshold,
            failures: self.failures,
        }
    }
}

#[cfg(test)]
mod tests {
    use kms_crypto::vss::feldman::FeldmanDealing;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use super::*;

    struct Setup {
        key: MasterKey,
        shares: Vec<Scalar>,
        secret: Scalar,
    }

    fn setup() -> Setup {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let operators: Vec<OperatorAddress> = (1..=4u8)
            .map(|i| OperatorAddress::from_bytes([i; 20]))
            .collect();
        let secret = Scalar::random(&mut rng);
        let dealing = FeldmanDealing::new(secret.clone(), 3, &mut rng).unwrap();
        let shares = operators
            .iter()
            .map(|a| dealing.share(&evaluation_point(a).unwrap()))
            .collect();
        Setup {
            key: MasterKey {
                version: 10,
                commitments: dealing.commitment().clone(),
                threshold: 3,
                agreeing: operators.clone(),
                operators,
                dissenting: Vec::new(),
                failures: Vec::new(),
                node_operators: Default::default(),
            },
            shares,
            secret,
        }
    }

    fn url(i: usize) -> Url {
        format!("http://node{i}.invalid").parse().unwrap()
    }

    fn answer(s: &Setup, op: usize, app: &str) -> SignResponse {
        SignResponse {
            operator_address: s.key.operators[op],
            partial_signature: tbls::sign_partial(&s.shares[op], app.as_bytes()),
            version: s.key.version,
        }
    }

    #[test]
    fn an_impersonator_cannot_crowd_out_the_honest_operator() {
        let s = setup();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut c = PartialCollector::new(&s.key);
        // Listed first, claims operator 0 with a partial for another app.
        let mut lie = answer(&s, 0, "other");
        lie.operator_address = s.key.operators[0];
        c.add(url(9), Ok(lie), true);
        c.add(url(0), Ok(answer(&s, 0, "app")), true);
        c.add(url(1), Ok(answer(&s, 1, "app")), true);
        c.add(url(2), Err(NodeError::Timeout), true);
        c.add(url(3), Ok(answer(&s, 3, "app")), true);
        assert_eq!(c.operators_answered(), 3);
        let key = c.finish("app", &mut rng).unwrap();
        assert_eq!(
            key.point(),
            &tbls::hash_app_id(b"app").mul(&s.secret),
            "the key is s·H1(appID)"
        );
    }

    #[test]
    fn too_few_valid_partials_are_counted_and_each_failure_named() {
        let s = setup();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut c = PartialCollector::new(&s.key);
        c.add(url(0), Ok(answer(&s, 0, "app")), true);
        let mut old = answer(&s, 1, "app");
        old.version = 5;
        c.add(url(1), Ok(old), true);
        assert_eq!(c.operators_answered(), 1);
        c.add(url(2), Ok(answer(&s, 2, "other")), true);
        let mut stranger = answer(&s, 3, "app");
        stranger.operator_address = OperatorAddress::from_bytes([9; 20]);
        c.add(url(3), Ok(stranger), true);
        let e = c.finish("app", &mut rng).unwrap_err();
        let ClientError::NotEnoughPartials {
            version,
            valid,
            needed,
            ref failures,
        } = e
        else {
            panic!("{e}")
        };
        assert_eq!((version, valid, needed), (10, 1, 3));
        let errors: Vec<&NodeError> = failures.iter().map(|f| &f.error).collect();
        assert!(errors.contains(&&NodeError::WrongVersion {
            got: 5,
            expected: 10
        }));
        assert!(errors.contains(&&NodeError::InvalidPartial(s.key.operators[2])));
        assert!(
            errors.contains(&&NodeError::NotAnOperator(OperatorAddress::from_bytes(
                [9; 20]
            )))
        );
        let msg = e.to_string();
        assert!(
            msg.starts_with("only 1 valid partial signatures for version 10, 3 needed"),
            "{msg}"
        );
    }

    #[test]
    fn an_invalid_partial_among_enough_is_skipped() {
        let s = setup();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut c = PartialCollector::new(&s.key);
        for op in 0..3 {
            c.add(url(op), Ok(answer(&s, op, "app")), true);
        }
        c.add(url(3), Ok(answer(&s, 3, "other")), true);
        let key = c.finish("app", &mut rng).unwrap();
        assert!(tbls::verify_app_key(&s.key.public_key(), b"app", &key));
    }
}

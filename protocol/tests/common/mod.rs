//! Shared helpers for the protocol tests: run a session in the simulated network and
//! check what every honest node ended with.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::poly::interpolate_at_zero;
use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use kms_protocol::sim::{Behaviour, NetConfig, Network, SimOperator};
use kms_protocol::{
    KeyShareVersion, Participant, Schedule, SessionKind, SessionOutcome, SessionParams,
    SessionTimestamp, VssMode,
};

pub const PHASE_MS: u64 = 1_000;

pub fn schedule(start: u64) -> Schedule {
    Schedule {
        start_ms: start,
        phase_ms: PHASE_MS,
    }
}

pub fn participants(ops: &[SimOperator]) -> Vec<Participant> {
    ops.iter().map(SimOperator::participant).collect()
}

/// The result of one session, from the honest nodes' point of view.
pub struct Finished {
    pub versions: BTreeMap<OperatorAddress, KeyShareVersion>,
    pub net: Network,
}

pub fn run(
    params: SessionParams,
    ops: &[SimOperator],
    shares: BTreeMap<OperatorAddress, Scalar>,
    byzantine: Vec<(OperatorAddress, Box<dyn Behaviour>)>,
    config: NetConfig,
) -> Finished {
    let honest: BTreeSet<OperatorAddress> = ops
        .iter()
        .map(|o| o.address)
        .filter(|a| !byzantine.iter().any(|(b, _)| b == a))
        .collect();
    let end = params.schedule.phase_end(10);
    let players: Vec<OperatorAddress> = params.players.addresses().copied().collect();
    let mut net = Network::new(&params, ops, shares, config).expect("network");
    for (a, b) in byzantine {
        net.set_behaviour(a, b);
    }
    net.run(end);
    let mut versions = BTreeMap::new();
    for a in &players {
        if !honest.contains(a) {
            continue;
        }
        match net.outcome(a) {
            Some(Ok(SessionOutcome::NewVersion(v))) => {
                versions.insert(*a, (**v).clone());
            }
            other => panic!("honest player {a} ended with {other:?}"),
        }
    }
    Finished { versions, net }
}

/// All honest players agree on QUAL and the public polynomial, and any `t` of their
/// shares reconstruct the secret behind the master public key. Returns the
/// (commitment, shares by address) for chaining.
pub fn check_agreement(f: &Finished) -> (Commitment, BTreeMap<OperatorAddress, Scalar>) {
    let first = f.versions.values().next().expect("some honest player");
    for v in f.versions.values() {
        assert_eq!(
            v.commitment, first.commitment,
            "honest nodes disagree on the public polynomial"
        );
        assert_eq!(
            v.qualified_dealers, first.qualified_dealers,
            "honest nodes disagree on QUAL"
        );
        assert_eq!(v.threshold, first.threshold);
    }
    let t = first.threshold;
    let points: Vec<(Scalar, Scalar)> = f
        .versions
        .iter()
        .map(|(a, v)| (kms_crypto::evaluation_point(a).unwrap(), v.share.clone()))
        .collect();
    assert!(points.len() >= t, "fewer honest players than the threshold");
    // Two different subsets of size t give the same secret, which matches the MPK.
    let s1 = interpolate_at_zero(&points[..t]).unwrap();
    let s2 = interpolate_at_zero(&points[points.len() - t..]).unwrap();
    assert_eq!(s1, s2, "shares are not on one polynomial of degree t-1");
    assert_eq!(
        G2Point::generator().mul(&s1),
        *first.commitment.constant(),
        "shares do not match the MPK"
    );
    if t > 1 {
        let fewer = interpolate_at_zero(&points[..t - 1]).unwrap();
        assert_ne!(fewer, s1, "t-1 shares must not reconstruct the secret");
    }
    let shares = f
        .versions
        .iter()
        .map(|(a, v)| (*a, v.share.clone()))
        .collect();
    (first.commitment.clone(), shares)
}

/// DKG: the MPK is the sum of the qualified dealers' own contributions.
pub fn check_mpk_is_sum_of_qual(f: &Finished) {
    let first = f.versions.values().next().unwrap();
    let contributions: Vec<G2Point> = first
        .qualified_dealers
        .iter()
        .map(|d| {
            f.net
                .engine(d)
                .and_then(|e| e.own_contribution())
                .expect("qualified dealer dealt")
        })
        .collect();
    assert_eq!(
        G2Point::sum(contributions.iter()),
        *first.commitment.constant()
    );
}

pub fn dkg(n: usize, mode: VssMode, seed: u64) -> (Vec<SimOperator>, SessionParams) {
    let ops = SimOperator::generate(n, seed);
    let params = SessionParams::dkg(
        SessionTimestamp(1_700_000_000 + seed),
        mode,
        participants(&ops),
        schedule(0),
    )
    .expect("params");
    assert_eq!(params.kind, SessionKind::Dkg);
    (ops, params)
}

pub mod byzantine {
    use std::sync::Arc;

    use kms_crypto::signer::OperatorSigner;
    use kms_crypto::vss::feldman::FeldmanDealing;
    use kms_crypto::{OperatorAddress, Scalar};
    use kms_protocol::messages::{Payload, SignedMessage, encode_commitment};
    use kms_protocol::sim::Behaviour;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn resign(p: &Payload, me: OperatorAddress, signer: &Arc<dyn OperatorSigner>) -> SignedMessage {
        SignedMessage::sign(p, me, signer.as_ref())
    }

    #[allow(unused_imports)] // not every test binary uses them
    pub use kms_protocol::sim::byzantine::{Equivocator, InvalidShares, TorsionCommitment};

    /// Sends nothing at all.
    pub struct Silent;

    impl Behaviour for Silent {
        fn outgoing(
            &mut self,
            _: OperatorAddress,
            _: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            vec![]
        }
    }

    /// Delays everything it sends.
    pub struct Late(pub u64);

    impl Behaviour for Late {
        fn outgoing(
            &mut self,
            to: OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            vec![(to, m, self.0)]
        }
    }

    /// Takes part in Pedersen phase 1, then withholds its phase-2 commitment.
    pub struct AbortsPhase2;

    impl Behaviour for AbortsPhase2 {
        fn outgoing(
            &mut self,
            to: OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            match m.peek() {
                Ok(Payload::Commitment(c)) if c.phase == 2 => vec![],
                _ => vec![(to, m, 0)],
            }
        }
    }

    /// Pedersen phase 2: publishes a Feldman commitment of another polynomial.
    pub struct BadPhase2 {
        pub me: OperatorAddress,
        pub signer: Arc<dyn OperatorSigner>,
    }

    /// `m` as it is, unless it is `me`'s phase-2 commitment: then with its points
    /// rewritten by `rewrite` and signed again.
    fn rewrite_own_phase2(
        me: OperatorAddress,
        signer: &Arc<dyn OperatorSigner>,
        to: OperatorAddress,
        m: SignedMessage,
        rewrite: impl FnOnce(&mut Vec<alloy_primitives::Bytes>),
    ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
        match m.peek() {
            Ok(Payload::Commitment(mut c)) if c.phase == 2 && m.signer == me => {
                rewrite(&mut c.commitment);
                vec![(to, resign(&Payload::Commitment(c), me, signer), 0)]
            }
            _ => vec![(to, m, 0)],
        }
    }

    impl Behaviour for BadPhase2 {
        fn outgoing(
            &mut self,
            to: OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            rewrite_own_phase2(self.me, &self.signer, to, m, |words| {
                let mut rng = ChaCha20Rng::seed_from_u64(5);
                let other =
                    FeldmanDealing::new(Scalar::random(&mut rng), words.len(), &mut rng).unwrap();
                *words = encode_commitment(other.commitment());
            })
        }
    }

    /// Publishes a phase-2 commitment to `f + Π_{j∈fooled}(X − x_j)` instead of `f`:
    /// it agrees with the phase-1 shares of the players in `fooled` and with no one
    /// else's, so only the others can complain, and the fooled rely on the forwarded
    /// proof arriving before the reconstruction round.
    pub struct SelectivePhase2 {
        pub me: OperatorAddress,
        pub signer: Arc<dyn OperatorSigner>,
        pub fooled: Vec<OperatorAddress>,
    }

    impl Behaviour for SelectivePhase2 {
        fn outgoing(
            &mut self,
            to: OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            let fooled = &self.fooled;
            rewrite_own_phase2(self.me, &self.signer, to, m, |words| {
                // Coefficients of Π (X − x_j), lowest degree first.
                let mut pi = vec![Scalar::one()];
                for a in fooled {
                    let x = kms_crypto::evaluation_point(a).unwrap();
                    let mut next = vec![Scalar::zero(); pi.len() + 1];
                    for (k, p) in pi.iter().enumerate() {
                        next[k + 1] = &next[k + 1] + p;
                        next[k] = &next[k] - &(p * &x);
                    }
                    pi = next;
                }
                assert!(pi.len() <= words.len(), "too many fooled players");
                for (k, p) in pi.iter().enumerate() {
                    let ck = kms_crypto::G2Point::from_eip2537(&words[k]).unwrap();
                    let shifted = ck.add(&kms_crypto::G2Point::generator().mul(p));
                    words[k] = shifted.to_eip2537().to_vec().into();
                }
            })
        }
    }
}

/// Runs a reshare of `previous` from `dealers` (with their shares) to `players`.
pub fn reshare(
    ts: u64,
    mode: VssMode,
    dealers: &[SimOperator],
    players: &[SimOperator],
    previous: &Commitment,
    shares: &BTreeMap<OperatorAddress, Scalar>,
    byzantine: Vec<(OperatorAddress, Box<dyn Behaviour>)>,
) -> Finished {
    let params = SessionParams::reshare(
        SessionTimestamp(ts),
        mode,
        participants(dealers),
        previous.clone(),
        participants(players),
        schedule(ts * 100_000),
    )
    .expect("reshare params");
    let mut all: Vec<SimOperator> = dealers.to_vec();
    for p in players {
        if !all.iter().any(|o| o.address == p.address) {
            all.push(p.clone());
        }
    }
    let dealer_shares = dealers
        .iter()
        .filter_map(|d| shares.get(&d.address).map(|s| (d.address, s.clone())))
        .collect();
    run(
        params,
        &all,
        dealer_shares,
        byzantine,
        NetConfig {
            seed: ts,
            ..NetConfig::default()
        },
    )
}

pub mod wrong_constant {
    use std::sync::Arc;

    use kms_crypto::signer::OperatorSigner;
    use kms_crypto::vss::feldman::FeldmanDealing;
    use kms_crypto::{OperatorAddress, evaluation_point};
    use kms_protocol::messages::{Payload, SignedMessage, encode_commitment};
    use kms_protocol::sim::Behaviour;

    /// A reshare dealer that deals a consistent sharing of some *other* secret.
    pub struct WrongConstant {
        pub me: OperatorAddress,
        pub signer: Arc<dyn OperatorSigner>,
        pub dealing: FeldmanDealing,
    }

    impl Behaviour for WrongConstant {
        fn outgoing(
            &mut self,
            to: OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(OperatorAddress, SignedMessage, u64)> {
            if m.signer != self.me {
                return vec![(to, m, 0)];
            }
            let p = match m.peek() {
                Ok(Payload::Commitment(mut c)) => {
                    c.commitment = encode_commitment(self.dealing.commitment());
                    Payload::Commitment(c)
                }
                Ok(Payload::Share(mut s)) => {
                    let x = evaluation_point(&OperatorAddress::from_bytes(s.player.0.0)).unwrap();
                    s.share = self.dealing.share(&x).to_bytes_be().into();
                    s.commitmentHash = self.dealing.commitment().hash().into();
                    Payload::Share(s)
                }
                _ => return vec![(to, m, 0)],
            };
            vec![(
                to,
                SignedMessage::sign(&p, self.me, self.signer.as_ref()),
                0,
            )]
        }
    }
}

/// An all-honest DKG of `n` operators: everyone finishes, agrees, every dealer
/// qualifies, nothing is rejected and no evidence is produced.
pub fn honest_dkg(n: usize, mode: VssMode, seed: u64) {
    let (ops, params) = dkg(n, mode, seed);
    let config = kms_protocol::sim::NetConfig {
        seed,
        ..Default::default()
    };
    let f = run(params, &ops, BTreeMap::new(), vec![], config);
    assert_eq!(f.versions.len(), n);
    check_agreement(&f);
    check_mpk_is_sum_of_qual(&f);
    let qual = &f.versions.values().next().unwrap().qualified_dealers;
    assert_eq!(qual.len(), n, "every honest dealer qualifies");
    for o in &ops {
        assert!(f.net.evidence(&o.address).is_empty());
        // What the dealer records on-chain: its commitment hash (the one every player
        // saw) and one signed ack bundle per player that acknowledged it.
        let (hash, acks) = f.net.engine(&o.address).unwrap().dealer_record().unwrap();
        let other = ops.iter().find(|p| p.address != o.address).unwrap();
        assert_eq!(
            f.net
                .engine(&other.address)
                .unwrap()
                .dealer_record()
                .map(|r| r.0 != hash),
            Some(true),
            "dealers' commitments differ"
        );
        assert!(acks.len() >= n - 1, "{} acks of {n}", acks.len());
        let rejected = &f.net.stats(&o.address).unwrap().rejected;
        assert!(
            rejected.is_empty(),
            "honest run rejected messages: {rejected:?}"
        );
    }
}

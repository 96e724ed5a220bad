//! A reshare in trouble on real nodes (HTTPS on 127.0.0.1, real stores): one operator
//! killed in the middle of the session (after its dealing, while the others vote) and
//! one honest operator whose host delays all its traffic, both ways, by more than a
//! phase (so the roster leaves it out: it activates nothing, never something else).
//! The others activate one version, the same at every node that activates; the
//! killed operator keeps its previous version; no message anyone sent carries a share
//! of an honest player in any word.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Cluster, FiredBoundaries, unix_secs};
use kms_crypto::OperatorAddress;
use kms_crypto::vss::encryption::{EphemeralKey, ShareCiphertext, ShareContext, decrypt_share};
use kms_node::schedule::BoundarySource;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::sim::{Deliveries, Outgoing};
use kms_protocol::dkg::wire::{Body, Kind, from_sol};
use tokio::sync::{Notify, watch};

const N: usize = 7;
/// Only validated: the test fires the boundaries.
const INTERVAL: u64 = 20;
const PHASE_MS: u64 = 500;
/// Past a phase, both ways.
const SLOW_MS: u64 = PHASE_MS + 200;
const KILLED: usize = 2;
const SLOW: usize = 4;
/// Bound on each session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(40);

/// Every protocol message any node sent: (from, to, message).
type Wire = Arc<Mutex<Vec<(OperatorAddress, OperatorAddress, SignedMessage)>>>;

/// When to kill: the first vote this node sends in the session `armed` names.
struct KillSwitch {
    armed: Arc<AtomicU64>,
    voted: Arc<Notify>,
}

/// An honest node's sending, recorded, after `delay_ms`; with a kill switch, nothing
/// at all from its first vote of the armed session on (it is dead from then on, a
/// moment before the test stops it).
fn honest(
    wire: Wire,
    delay_ms: u64,
    kill: Option<KillSwitch>,
) -> impl FnMut(&Outgoing<'_>) -> Deliveries + Send + 'static {
    let mut dead = false;
    move |o: &Outgoing<'_>| -> Deliveries {
        if let Some(k) = &kill {
            let session = Body::decode(&o.message.payload).map(|b| b.session().0.0);
            if !dead && o.kind == Kind::Vote && session == Ok(k.armed.load(Ordering::SeqCst)) {
                dead = true;
                k.voted.notify_one();
            }
        }
        if dead {
            return Vec::new();
        }
        wire.lock().unwrap().push((o.from, o.to, o.message.clone()));
        vec![(o.message.clone(), delay_ms)]
    }
}

/// Fires the boundary `ts`.
fn fire_at(tx: &watch::Sender<u64>, ts: u64) {
    tx.send(ts).unwrap();
}

/// Every share word an honest player holds or was dealt that the test can read: its
/// shares of every version it holds, and every share of a recorded dealing that
/// decrypts under its current encryption key (checked against the dealing's Feldman
/// commitment, so that a wrong player order cannot leave the set quietly empty).
async fn honest_share_words(c: &Cluster, wire: &Wire, honest: &[usize]) -> BTreeSet<[u8; 32]> {
    let mut words = BTreeSet::new();
    for &i in honest {
        let Some(node) = c.members[i].node.as_ref() else {
            continue;
        };
        for v in node.shared().versions() {
            words.insert(v.share.to_bytes_be());
        }
    }
    let dealings: Vec<(OperatorAddress, kms_protocol::dkg::wire::Dealing)> = wire
        .lock()
        .unwrap()
        .iter()
        .filter_map(|(from, _, m)| match Body::decode(&m.payload) {
            Ok(Body::Dealing(d)) if m.signer == *from => Some((*from, d)),
            _ => None,
        })
        .collect();
    let mut opened = 0;
    for &i in honest {
        let Some(node) = c.members[i].node.as_ref() else {
            continue;
        };
        let shared = node.shared();
        let deployment = shared.deployment().await.hash().0;
        let key = shared
            .encryption_keys
            .for_session(unix_secs(), unix_secs(), &deployment);
        let me = c.members[i].address;
        for (dealer, d) in &dealings {
            // The session's players in their ciphertext order (sorted addresses): the
            // whole cluster, in every session of this test.
            let mut players: Vec<OperatorAddress> = c.members.iter().map(|m| m.address).collect();
            players.sort();
            let Some(index) = players.iter().position(|p| *p == me) else {
                continue;
            };
            let (Ok(eph), Some(value)) = (
                EphemeralKey::from_eip2537(&d.ephemeralKey),
                d.shareValues.get(index),
            ) else {
                continue;
            };
            let ct = ShareCiphertext {
                value: value.0,
                blinding: d.shareBlindings.get(index).map_or([0; 32], |w| w.0),
            };
            let ctx = ShareContext {
                session_hash: d.sessionHash.0,
                dealer: from_sol(&d.dealer),
                player: me,
            };
            assert_eq!(from_sol(&d.dealer), *dealer);
            let Ok(s) = decrypt_share(&key.secret, &eph, &ctx, &ct) else {
                continue;
            };
            let commitment = kms_crypto::Commitment::new(
                d.commitment
                    .iter()
                    .map(|w| kms_crypto::G2Point::from_eip2537(w).unwrap())
                    .collect(),
            )
            .unwrap();
            let x = kms_crypto::operator::evaluation_point(&me).unwrap();
            if kms_crypto::vss::feldman::verify_share(&x, &s.value, &commitment) {
                words.insert(s.value.to_bytes_be());
                opened += 1;
            }
        }
    }
    assert!(opened > 0, "the test reads the shares it looks for");
    words
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reshare_with_a_killed_and_a_slow_operator_agrees_and_publishes_no_share() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let (tx, rx) = watch::channel(0u64);
    let boundaries: Arc<dyn BoundarySource> = Arc::new(FiredBoundaries(rx));
    let mut c = Cluster::start_with_boundaries(0, INTERVAL, PHASE_MS, boundaries).await;
    let wire = Wire::default();
    let armed = Arc::new(AtomicU64::new(u64::MAX));
    let voted = Arc::new(Notify::new());
    for i in 0..N {
        let delay = if i == SLOW { SLOW_MS } else { 0 };
        let kill = (i == KILLED).then(|| KillSwitch {
            armed: armed.clone(),
            voted: voted.clone(),
        });
        let wire = wire.clone();
        c.add_faulty_member(
            PHASE_MS,
            move |_, _| Box::new(honest(wire, delay, kill)),
            (i == SLOW).then_some(Duration::from_millis(SLOW_MS)),
        )
        .await;
    }
    let all: Vec<usize> = (0..N).collect();
    c.set_operators(&all);

    // A DKG the others complete. The slow node's key announcement reaches them past
    // the roster's timeout, so the roster leaves it out (a player connected outside
    // the timeouts gets no share of this version): it ends without a version, never
    // with another one.
    let t1 = unix_secs() + 1;
    fire_at(&tx, t1);
    let fast: Vec<usize> = all.iter().copied().filter(|i| *i != SLOW).collect();
    let v1 = c.wait_for_version(&fast, 0, SESSION_TIMEOUT).await;
    assert_eq!(v1, t1);
    let dkg_outcome = |c: &Cluster, i: usize| {
        c.members[i]
            .node
            .as_ref()
            .unwrap()
            .shared()
            .active_version()
            .map(|v| (v.commitment.hash(), v.qualified_dealers.clone()))
    };
    let agreed = dkg_outcome(&c, 0).unwrap();
    for &i in &fast {
        assert_eq!(dkg_outcome(&c, i).as_ref(), Some(&agreed), "node {i}");
    }
    assert!(
        dkg_outcome(&c, SLOW).is_none_or(|o| o == agreed),
        "the slow node activated another version"
    );
    let mpk = c.pubkey(0).await.unwrap().commitments[0];

    // The reshare: node KILLED dies at its first vote.
    let t2 = unix_secs() + 1;
    armed.store(t2, Ordering::SeqCst);
    fire_at(&tx, t2);
    tokio::time::timeout(SESSION_TIMEOUT, voted.notified())
        .await
        .expect("the doomed node votes");
    c.stop(KILLED).await;
    let rest: Vec<usize> = fast.iter().copied().filter(|i| *i != KILLED).collect();
    let v2 = c.wait_for_version(&rest, v1, SESSION_TIMEOUT).await;
    assert_eq!(v2, t2);

    // Agreement: one public polynomial and one qualified set at every node that
    // activates (the slow one, left out of the roster again, activates nothing new);
    // the master key kept.
    let mut outcomes = BTreeSet::new();
    if let Some(v) = c.members[SLOW]
        .node
        .as_ref()
        .unwrap()
        .shared()
        .active_version()
        && v.session_timestamp.0 == t2
    {
        outcomes.insert((v.commitment.hash(), v.qualified_dealers.clone()));
    }
    for &i in &rest {
        let v = c.members[i]
            .node
            .as_ref()
            .unwrap()
            .shared()
            .active_version()
            .unwrap();
        assert_eq!(v.session_timestamp.0, t2, "node {i}");
        outcomes.insert((v.commitment.hash(), v.qualified_dealers.clone()));
        assert_eq!(c.pubkey(i).await.unwrap().commitments[0], mpk);
    }
    assert_eq!(outcomes.len(), 1, "honest nodes disagree: {outcomes:?}");

    // The killed node comes back with its previous version (or the agreed one, never
    // another).
    c.restart(KILLED).await;
    let back = c.members[KILLED]
        .node
        .as_ref()
        .unwrap()
        .shared()
        .active_version()
        .expect("the killed node keeps a version");
    match back.session_timestamp.0 {
        t if t == t1 => {}
        t if t == t2 => {
            assert!(outcomes.contains(&(back.commitment.hash(), back.qualified_dealers.clone())))
        }
        t => panic!("the killed node activated session {t}"),
    }
    assert_eq!(c.pubkey(KILLED).await.unwrap().commitments[0], mpk);

    // Confidentiality: no word of any message is an honest share (every node is
    // honest here; the killed one's shares came back with its store).
    let words = honest_share_words(&c, &wire, &all).await;
    let recorded = wire.lock().unwrap().clone();
    assert!(recorded.len() > N * N, "the wire was recorded");
    for (from, to, m) in &recorded {
        for w in m.payload.get(1..).unwrap_or_default().chunks_exact(32) {
            let w: [u8; 32] = w.try_into().unwrap();
            assert!(!words.contains(&w), "a share went from {from} to {to}");
        }
    }
    c.shutdown().await;
}

/// A DKG in which the host of one honest node drops everything sent to it (its own
/// messages still go out): its session ends without an outcome, it fetches a peer's
/// transcript and activates the version everyone else did.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_cut_off_for_a_whole_session_catches_up_from_a_peer() {
    // The session gives up a phase before the next boundary (3 s): soon.
    const SHORT_INTERVAL: u64 = 3;
    let (tx, rx) = watch::channel(0u64);
    let boundaries: Arc<dyn BoundarySource> = Arc::new(FiredBoundaries(rx));
    let mut c = Cluster::start_with_boundaries(0, SHORT_INTERVAL, PHASE_MS, boundaries).await;
    let wire = Wire::default();
    let cut_off = c
        .add_faulty_member(
            PHASE_MS,
            {
                let wire = wire.clone();
                move |_, _| Box::new(honest(wire, 0, None))
            },
            None,
        )
        .await;
    let victim = c.members[cut_off].address;
    for _ in 1..4 {
        c.add_faulty_member(
            PHASE_MS,
            move |_, _| {
                Box::new(move |o: &Outgoing<'_>| -> Deliveries {
                    if o.to == victim {
                        Vec::new()
                    } else {
                        vec![(o.message.clone(), 0)]
                    }
                })
            },
            None,
        )
        .await;
    }
    let all: Vec<usize> = (0..4).collect();
    c.set_operators(&all);
    let t1 = unix_secs() + 1;
    fire_at(&tx, t1);
    let others: Vec<usize> = (1..4).collect();
    assert_eq!(c.wait_for_version(&others, 0, SESSION_TIMEOUT).await, t1);
    // It heard nothing of the session, yet ends on its version.
    assert_eq!(c.wait_for_version(&[cut_off], 0, SESSION_TIMEOUT).await, t1);
    let version = |i: usize| {
        let v = c.members[i]
            .node
            .as_ref()
            .unwrap()
            .shared()
            .active_version()
            .unwrap();
        (v.commitment.hash(), v.qualified_dealers.clone())
    };
    assert_eq!(version(cut_off), version(1));
    // It heard nothing, so it never learned the roster and never dealt; its key
    // announcement went out, so it is a player of the version and holds its share.
    assert!(
        !version(1).1.contains(&victim),
        "a node that never learned the roster dealt"
    );
    // Its share lies on the agreed polynomial.
    let v = c.members[cut_off]
        .node
        .as_ref()
        .unwrap()
        .shared()
        .active_version()
        .unwrap();
    let x = kms_crypto::operator::evaluation_point(&victim).unwrap();
    assert!(kms_crypto::vss::feldman::verify_share(
        &x,
        &v.share,
        &v.commitment
    ));
    drop(v);
    c.shutdown().await;
}

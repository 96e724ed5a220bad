//! The proactive-security horizon (`store.share_horizon_secs`): a real node on
//! 127.0.0.1 with a real redb store and an injected clock forgets the key versions
//! superseded longer ago than the horizon, on disk and in memory, at start and at
//! boundaries where no session runs, and never the active one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kms_crypto::signer::SignatureScheme;
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{OperatorAddress, Scalar};
use kms_node::attest::NodeAttestation;
use kms_node::config::AttestationMode;
use kms_node::peering::{BoxFuture, LocalPeeringDataFetcher, Peer};
use kms_node::schedule::{Boundary, BoundarySource};
use kms_node::store::{KeyStore, SealingKey};
use kms_node::{Clock, Node, NodeConfig, OperatorKeys, StartOptions};
use kms_protocol::{KeyShareVersion, SessionTimestamp, VssMode};
use rand_core::OsRng;

/// Bound on every wait.
const DEADLINE: Duration = Duration::from_secs(30);
/// The first version's timestamp.
const T0: u64 = 1_700_000_000;

struct TestClock(AtomicU64);

impl Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Boundaries the test fires, one at a time.
struct FiredBoundaries(tokio::sync::watch::Receiver<u64>);

impl BoundarySource for FiredBoundaries {
    fn next_boundary(&self, after: u64) -> BoxFuture<'_, Option<Boundary>> {
        let mut rx = self.0.clone();
        Box::pin(async move {
            let ts = *rx.wait_for(|ts| *ts > after).await.ok()?;
            Some(Boundary {
                session_timestamp: ts,
                block: None,
            })
        })
    }
}

fn version(ts: u64, operators: &[OperatorAddress]) -> KeyShareVersion {
    let dealing = FeldmanDealing::new(Scalar::random(&mut OsRng), 2, &mut OsRng).unwrap();
    KeyShareVersion {
        session_timestamp: SessionTimestamp(ts),
        share: dealing.share(&Scalar::from_u64(1)),
        commitment: dealing.commitment().clone(),
        operator_set: operators.to_vec(),
        threshold: 2,
        qualified_dealers: operators.to_vec(),
        mode: VssMode::Feldman,
    }
}

/// The store's key as the node derives it (operator secret and simulated identity).
fn sealing_key(cfg: &NodeConfig, keys: &OperatorKeys) -> SealingKey {
    let attestation = NodeAttestation::from_config(cfg, &keys.public_key(), b"", T0).unwrap();
    SealingKey::derive_measured(keys.sealing_secret(), &attestation.sealing_identity())
}

fn held(node: &Node) -> Vec<u64> {
    node.shared()
        .versions()
        .iter()
        .map(|v| v.session_timestamp.0)
        .collect()
}

/// Waits until the node holds exactly `want`.
async fn wait_for_versions(node: &Node, want: &[u64]) {
    let started = Instant::now();
    while held(node) != want {
        assert!(
            started.elapsed() < DEADLINE,
            "the node holds {:?}, not {want:?}",
            held(node)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_node_forgets_shares_superseded_longer_than_its_horizon_but_never_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let keys = OperatorKeys::generate(SignatureScheme::Bn254);
    let key_file = dir.path().join("operator.key");
    keys.write(&key_file, None).unwrap();
    // The operator set is someone else: boundaries reach this node, no session runs.
    let other = OperatorKeys::generate(SignatureScheme::Bn254);
    let peers = dir.path().join("peers.toml");
    LocalPeeringDataFetcher::write(
        &peers,
        &[Peer {
            address: other.address(),
            public_key: other.public_key(),
            url: "http://127.0.0.1:9/".parse().unwrap(),
        }],
    )
    .unwrap();
    let mut cfg = NodeConfig::default();
    cfg.operator.key_file = key_file.clone();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.peering.file = peers;
    cfg.store.path = dir.path().join("keys.redb");
    cfg.insecure.plain_http = true;
    cfg.insecure.plaintext_keys = true;
    cfg.attestation.mode = AttestationMode::InsecureDev;
    cfg.validate().unwrap();
    let horizon = cfg.store.share_horizon_secs;
    let interval = cfg.schedule.interval_secs;
    let (t1, t2, t3) = (T0, T0 + interval, T0 + 2 * interval);

    // Three versions on disk, each superseded by the next at its successor's timestamp.
    {
        let store = KeyStore::open(&cfg.store.path, sealing_key(&cfg, &keys)).unwrap();
        let ops = [keys.address(), other.address()];
        for ts in [t1, t2, t3] {
            store.store(&version(ts, &ops)).unwrap();
        }
    }

    // Started when t1 has been superseded (at t2) for longer than the horizon and t2
    // (at t3) for less: t1 is forgotten at once.
    let clock = Arc::new(TestClock(AtomicU64::new((t2 + horizon + 1) * 1000)));
    let (fire, boundaries) = tokio::sync::watch::channel(0u64);
    let options = StartOptions {
        clock: Some(clock.clone()),
        boundaries: Some(Arc::new(FiredBoundaries(boundaries))),
        ..Default::default()
    };
    let node = Node::start_with(
        cfg.clone(),
        OperatorKeys::read(&key_file, None, true).unwrap(),
        options,
    )
    .await
    .unwrap();
    assert_eq!(held(&node), vec![t2, t3]);
    assert!(node.shared().version_at(t1 + 1).is_none());
    assert_eq!(
        node.shared()
            .version_at(t2 + 1)
            .unwrap()
            .session_timestamp
            .0,
        t2
    );

    // Time passes with no session: at the next boundary t2 is gone as well.
    clock.0.store((t3 + horizon + 1) * 1000, Ordering::SeqCst);
    fire.send(t3 + horizon + 1).unwrap();
    wait_for_versions(&node, &[t3]).await;

    // The active version stays, and is served.
    let pubkey: serde_json::Value = reqwest::get(node.url().join("/pubkey").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(pubkey["version"], t3, "{pubkey}");
    node.shutdown().await;

    // And on disk.
    let started = Instant::now();
    let store = loop {
        match KeyStore::open(&cfg.store.path, sealing_key(&cfg, &keys)) {
            Ok(s) => break s,
            Err(e) if started.elapsed() < DEADLINE => {
                eprintln!("store still open ({e}), retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("store does not reopen: {e}"),
        }
    };
    assert_eq!(store.list_versions().unwrap(), vec![t3]);
}

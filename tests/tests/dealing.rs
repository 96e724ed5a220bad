//! Slashing protection, with real nodes on 127.0.0.1 and real key stores: a second
//! process started on a copy of an operator's disk and key gives no equivocation to
//! prove, and a node whose store records another dealing for a session does not deal
//! in it.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Cluster, FiredBoundaries, fire, unix_secs};
use kms_crypto::OperatorAddress;
use kms_node::attest::NodeAttestation;
use kms_node::schedule::BoundarySource;
use kms_node::store::{DealingRecord, KeyStore, SealingKey};
use kms_node::{Node, NodeConfig, OperatorKeys, StartOptions};
use tokio::sync::watch;

/// Only validated (sessions must fit in it): the test fires the boundaries.
const INTERVAL: u64 = 10;
const PHASE_MS: u64 = 1_000;
/// Bound on each session.
const SESSION_TIMEOUT: Duration = Duration::from_secs(40);

fn keys(path: &std::path::Path) -> OperatorKeys {
    OperatorKeys::read(path, None, true).unwrap()
}

/// Opens a stopped node's store as the node does (retrying while the node's last
/// tasks still hold it).
async fn open_store(cfg: &NodeConfig, keys: &OperatorKeys) -> KeyStore {
    let attestation = NodeAttestation::from_config(cfg, &keys.public_key(), b"", 0).unwrap();
    let identity = attestation.sealing_identity();
    let started = std::time::Instant::now();
    loop {
        let sealing = SealingKey::derive_measured(keys.sealing_secret(), &identity);
        match KeyStore::open(&cfg.store.path, sealing) {
            Ok(s) => return s,
            Err(e) if started.elapsed() < Duration::from_secs(10) => {
                eprintln!("{} still open ({e}), retrying", cfg.store.path.display());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{} does not open: {e}", cfg.store.path.display()),
        }
    }
}

/// Fraud evidence any running member (and `extra`) holds against `dealer`.
fn evidence_against(c: &Cluster, extra: &[&Node], dealer: OperatorAddress) -> Vec<String> {
    c.members
        .iter()
        .filter_map(|m| m.node.as_ref())
        .chain(extra.iter().copied())
        .flat_map(|n| {
            n.shared()
                .evidence
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, e)| e.accused() == dealer)
                .map(|(ts, e)| format!("{ts}: {}", e.kind()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn qualified(c: &Cluster, i: usize) -> Vec<OperatorAddress> {
    c.members[i]
        .node
        .as_ref()
        .unwrap()
        .shared()
        .active_version()
        .unwrap()
        .qualified_dealers
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_process_on_a_copied_disk_deals_identically_and_a_node_never_deals_twice() {
    // The nodes' logs go with the test's output (shown when it fails).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_test_writer()
        .try_init();
    let (tx, rx) = watch::channel(0u64);
    let boundaries: Arc<dyn BoundarySource> = Arc::new(FiredBoundaries(rx));
    let mut c = Cluster::start_with_boundaries(4, INTERVAL, PHASE_MS, boundaries.clone()).await;
    let all: Vec<usize> = (0..4).collect();
    let operator = c.members[0].address;

    // DKG.
    let t1 = fire(&tx);
    let v1 = c.wait_for_version(&all, 0, SESSION_TIMEOUT).await;
    assert_eq!(v1, t1);

    // Node 0's disk copied between sessions, and a second process started on it with
    // the same operator key, beside node 0 (the peers still reach node 0 only).
    let mut copy_cfg = c.members[0].cfg.clone();
    let copy_dir = c.dir.path().join("node0-copy");
    std::fs::create_dir_all(&copy_dir).unwrap();
    copy_cfg.store.path = copy_dir.join("keys.redb");
    std::fs::copy(&c.members[0].cfg.store.path, &copy_cfg.store.path).unwrap();
    copy_cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    let copy = Node::start_with(
        copy_cfg.clone(),
        keys(&c.members[0].key_file),
        StartOptions {
            boundaries: Some(boundaries.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        copy.shared().active_version().unwrap().session_timestamp.0,
        v1
    );

    // Both deal in the reshare: the peers see one dealing of node 0, which qualifies.
    let t2 = fire(&tx);
    let v2 = c.wait_for_version(&all, v1, SESSION_TIMEOUT).await;
    assert_eq!(v2, t2);
    assert_eq!(
        evidence_against(&c, &[&copy], operator),
        Vec::<String>::new()
    );
    for i in 1..4 {
        assert!(qualified(&c, i).contains(&operator), "node {i}");
    }
    copy.shutdown().await;

    // Node 0 restarted with a record of another dealing for the next session (what a
    // node that already dealt it otherwise holds): it deals nothing there, and is
    // still given its share of the new version.
    c.stop(0).await;
    // A few seconds ahead: the restart must not make the nodes late for it.
    let t3 = (unix_secs() + 4).max(t2 + 1);
    let other = DealingRecord {
        session_timestamp: t3,
        session_hash: [0xaa; 32],
        commitment_message: [0xbb; 32],
    };
    {
        let store = open_store(&c.members[0].cfg, &keys(&c.members[0].key_file)).await;
        store.record_dealing(&other).unwrap();
    }
    // Fired before the restart, so that the restarted node's first boundary is this
    // one and not the last session's again.
    tx.send(t3).unwrap();
    c.restart(0).await;
    let v3 = c.wait_for_version(&all, v2, SESSION_TIMEOUT).await;
    assert_eq!(v3, t3);
    for i in 1..4 {
        let q = qualified(&c, i);
        assert!(!q.contains(&operator), "node {i}: {q:?}");
        assert_eq!(q.len(), 3, "node {i}: {q:?}");
    }
    assert_eq!(evidence_against(&c, &[], operator), Vec::<String>::new());

    // On disk: the two processes recorded one and the same dealing for the reshare,
    // and the record of the session node 0 stayed out of is the one it found.
    let member_cfg = c.members[0].cfg.clone();
    let key_file = c.members[0].key_file.clone();
    for i in all {
        c.stop(i).await;
    }
    let store = open_store(&member_cfg, &keys(&key_file)).await;
    let dealt = store
        .dealing(t2)
        .unwrap()
        .expect("node 0 recorded its dealing");
    assert_eq!(store.dealing(t3).unwrap(), Some(other));
    drop(store);
    // The copy may have sat the session out (it starts late); if it dealt, then the
    // same dealing when it computed the peers' session hash. It does not today: the
    // v2 session hash binds every player's encryption key and the copy made its own,
    // so what it signed names a session nobody else runs (the peers refuse it, and no
    // evidence against the operator can come of it: asserted above).
    let copied = open_store(&copy_cfg, &keys(&key_file))
        .await
        .dealing(t2)
        .unwrap();
    if let Some(copied) = copied {
        assert_eq!(copied.session_timestamp, dealt.session_timestamp);
        if copied.session_hash == dealt.session_hash {
            assert_eq!(copied, dealt);
        }
    }
    c.shutdown().await;
}

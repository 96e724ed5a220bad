//! `kill -9` during a key write loop: the store reopens consistent. The test runs
//! itself as the writer (`child_write_loop`, which does nothing unless the
//! environment variable below names a store) and kills that process with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use kms_node::store::{KeyStore, SealingKey};
use kms_protocol::{KeyShareVersion, SessionTimestamp, VssMode};

const CHILD_ENV: &str = "KMS_STORE_CRASH_CHILD";

fn key() -> SealingKey {
    SealingKey::derive(b"crash test operator secret", b"ctx")
}

fn version(ts: u64) -> KeyShareVersion {
    let g = G2Point::generator();
    KeyShareVersion {
        session_timestamp: SessionTimestamp(ts),
        share: Scalar::from_u64(ts * 7 + 1),
        commitment: Commitment::new(vec![g.mul(&Scalar::from_u64(ts)), g]).unwrap(),
        operator_set: vec![OperatorAddress::from_bytes([3; 20])],
        threshold: 2,
        qualified_dealers: vec![OperatorAddress::from_bytes([3; 20])],
        mode: VssMode::Feldman,
    }
}

/// The writer: stores versions 1, 2, 3, … and prints each committed one.
#[test]
fn child_write_loop() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = KeyStore::open(Path::new(&path), key()).unwrap();
    let start = Instant::now();
    for ts in 1..=100_000u64 {
        if start.elapsed() > Duration::from_secs(20) {
            break;
        }
        store.store(&version(ts)).unwrap();
        println!("committed {ts}");
    }
}

#[test]
fn a_store_killed_mid_write_reopens_consistent() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for (round, wait_for) in [5u64, 20, 60].into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.redb");
        let mut child = Command::new(&exe)
            .args([
                "child_write_loop",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let started = Instant::now();
        let mut committed = 0u64;
        while committed < wait_for {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "writer too slow"
            );
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(ts) = l.strip_prefix("committed ") {
                        committed = ts.trim().parse().unwrap();
                    }
                }
                _ => panic!("writer exited early"),
            }
        }
        // SIGKILL, mid-write most likely.
        child.kill().unwrap();
        child.wait().unwrap();

        let store = KeyStore::open(&path, key()).expect("reopens after SIGKILL");
        let listed = store.list_versions().unwrap();
        let n = listed.len() as u64;
        assert!(
            n >= committed,
            "round {round}: {committed} committed, {n} listed"
        );
        assert_eq!(listed, (1..=n).collect::<Vec<_>>(), "a contiguous prefix");
        for ts in listed {
            let v = store.load_at_time(ts).unwrap().unwrap();
            assert_eq!(v.session_timestamp.0, ts);
            assert_eq!(v.share, Scalar::from_u64(ts * 7 + 1), "record {ts} intact");
        }
        // And it is writable again.
        store.store(&version(n + 1)).unwrap();
    }
}

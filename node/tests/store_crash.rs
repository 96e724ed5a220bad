//! `kill -9` during a key write loop: the store reopens consistent. The test runs
//! its own binary as the writer (`child_write_loop`, which does nothing unless the
//! environment variable below names a store) and kills that process with SIGKILL.
//! A version the writer reported as committed must survive; the one being written
//! at the kill may or may not, but nothing in between may be lost or half-written.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use kms_node::store::{KeyStore, SealingKey};
use kms_protocol::{KeyShareVersion, SessionTimestamp, VssMode};

/// Names the store the child writes to; absent in a normal test run.
const CHILD_ENV: &str = "KMS_STORE_CRASH_CHILD";
/// Bounds on the writer: it stops by itself even if nobody kills it.
const CHILD_MAX_VERSIONS: u64 = 100_000;
const CHILD_BUDGET: Duration = Duration::from_secs(20);
/// Versions the writer must have reported before the kill is scheduled.
const MIN_REPORTED: usize = 20;
/// Bound on every wait of the parent.
const PARENT_TIMEOUT: Duration = Duration::from_secs(30);
const COMMITTED: &str = "committed ";

fn key() -> SealingKey {
    SealingKey::derive(b"crash test operator secret", b"ctx")
}

fn share(ts: u64) -> Scalar {
    Scalar::from_u64(ts * 7 + 1)
}

fn version(ts: u64) -> KeyShareVersion {
    let g = G2Point::generator();
    KeyShareVersion {
        session_timestamp: SessionTimestamp(ts),
        share: share(ts),
        commitment: Commitment::new(vec![g.mul(&Scalar::from_u64(ts)), g]).unwrap(),
        operator_set: vec![OperatorAddress::from_bytes([3; 20])],
        threshold: 2,
        qualified_dealers: vec![OperatorAddress::from_bytes([3; 20])],
        mode: VssMode::Feldman,
    }
}

/// The writer: stores versions 1, 2, 3, … and prints each one after its commit
/// returned. Returns at once unless run by the crash test.
#[test]
fn child_write_loop() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = KeyStore::open(Path::new(&path), key()).unwrap();
    let start = Instant::now();
    let mut out = std::io::stdout().lock();
    for ts in 1..=CHILD_MAX_VERSIONS {
        if start.elapsed() > CHILD_BUDGET {
            break;
        }
        store.store(&version(ts)).unwrap();
        writeln!(out, "{COMMITTED}{ts}").unwrap();
        out.flush().unwrap();
    }
}

/// Kills the writer when a round fails half-way, so no process outlives the test.
struct Writer(Child);

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the writer on `path`; its reported timestamps arrive on the channel, which
/// closes when the writer's stdout does.
fn spawn_writer(path: &Path) -> (Writer, mpsc::Receiver<u64>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["child_write_loop", "--exact", "--nocapture"])
        .env(CHILD_ENV, path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the writer");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest's own lines ("running 1 test", …) are not reports.
            if let Some(ts) = line.strip_prefix(COMMITTED) {
                let ts = ts.trim().parse().expect("a timestamp");
                if tx.send(ts).is_err() {
                    break;
                }
            }
        }
    });
    (Writer(child), rx)
}

/// Receives one report, or `None` once the writer's stdout closed; panics when
/// `deadline` passes first.
fn next_report(rx: &mpsc::Receiver<u64>, deadline: Instant, what: &str) -> Option<u64> {
    let left = deadline.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(ts) => Some(ts),
        Err(RecvTimeoutError::Disconnected) => None,
        Err(RecvTimeoutError::Timeout) => panic!("timed out {what}"),
    }
}

fn crash_round(round: usize, kill_delay: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.redb");
    let (mut writer, rx) = spawn_writer(&path);
    let deadline = Instant::now() + PARENT_TIMEOUT;

    let mut reported = Vec::new();
    while reported.len() < MIN_REPORTED {
        match next_report(&rx, deadline, "waiting for the writer") {
            Some(ts) => reported.push(ts),
            None => panic!("round {round}: writer exited after {reported:?}"),
        }
    }
    thread::sleep(kill_delay);
    writer.0.kill().expect("SIGKILL the writer");
    writer.0.wait().expect("reap the writer");
    // Whatever the writer printed before dying was committed too.
    while let Some(ts) = next_report(&rx, deadline, "draining the writer's output") {
        reported.push(ts);
    }
    let last_reported = *reported.last().unwrap();
    assert_eq!(
        reported,
        (1..=last_reported).collect::<Vec<_>>(),
        "round {round}: the writer reports in order"
    );

    let store = KeyStore::open(&path, key()).expect("reopens after SIGKILL");
    let listed = store.list_versions().unwrap();
    let n = listed.len() as u64;
    eprintln!(
        "round {round}: killed {kill_delay:?} after the {MIN_REPORTED}th report; {last_reported} reported, {n} on disk"
    );
    assert_eq!(
        listed,
        (1..=n).collect::<Vec<_>>(),
        "round {round}: a contiguous prefix of what was written"
    );
    // Every reported commit survived; at most the one write in flight at the kill
    // (committed but not yet printed) is beyond the reports.
    assert!(
        (last_reported..=last_reported + 1).contains(&n),
        "round {round}: {last_reported} reported, {n} listed"
    );
    for ts in listed {
        let v = store
            .load_at_time(ts)
            .unwrap_or_else(|e| panic!("round {round}: record {ts}: {e}"))
            .expect("listed version loads");
        assert_eq!(v.session_timestamp.0, ts);
        assert_eq!(v.share, share(ts), "round {round}: record {ts} intact");
    }
    assert_eq!(store.load_active().unwrap().unwrap().session_timestamp.0, n);
    // And it is writable again.
    store.store(&version(n + 1)).unwrap();
    assert_eq!(
        store.load_active().unwrap().unwrap().session_timestamp.0,
        n + 1
    );
}

#[test]
fn a_store_killed_mid_write_reopens_consistent() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    for (round, delay_ms) in [0u64, 17, 113].into_iter().enumerate() {
        crash_round(round, Duration::from_millis(delay_ms));
    }
}

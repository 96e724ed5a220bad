//! The audit log of key releases: one JSON line per decision on a request for a
//! registered app's key material (`/app/sign`, `/secrets`) — every release, and every
//! refusal of its authorization — appended to `audit.file` (by default `audit.jsonl`
//! beside the key store). Requests refused before that (malformed, rate limited, an
//! unknown app, no authorization at all) are counted in the metrics only.
//!
//! A line records when, which endpoint, app and key version, the authorization method,
//! who proved it (the owner's address, or the attested measurements and TCB status),
//! the caller's socket address and the result (`released` or the refusal's error code).
//! It never holds key material, nonces' secrets or evidence bodies.
//!
//! A release is written to the log before its answer leaves the node; if the line
//! cannot be written, nothing is released (503 `audit_unavailable`). Each line also
//! carries `prev`, the SHA-256 of the previous line, so that a line removed or edited
//! in the middle of the file shows; the host, which holds the disk, can still truncate
//! the end (ship the log off the node to keep it). Lines reach the kernel at once
//! (a crash of the process loses none); the file is synced at most every
//! [`SYNC_EVERY`], so a power loss can lose the last fraction of a second.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kms_attestation::TdMeasurements;
use kms_crypto::OperatorAddress;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How often the log is synced to the disk at most.
pub const SYNC_EVERY: Duration = Duration::from_millis(200);
/// How much of the end of an existing log is read at start to find the last line.
const TAIL_BYTES: u64 = 64 * 1024;

/// Who proved it may have the key material.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Principal {
    /// Nobody yet (refused before authorization completed).
    None,
    /// The app owner's registered Ethereum key.
    Owner {
        /// Its address.
        address: OperatorAddress,
    },
    /// A TD that attested these measurements.
    Attested {
        /// MRTD and RTMR0..3.
        measurements: Box<TdMeasurements>,
        /// Its TCB status.
        tcb_status: String,
    },
}

/// One decision, as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct AuditEntry {
    /// `app_sign` or `secrets`.
    pub endpoint: &'static str,
    /// The app.
    pub app_id: String,
    /// The key version released (or that would have been).
    pub version: Option<u64>,
    /// `owner`, `attestation` or `none`.
    pub method: &'static str,
    /// Who proved it.
    pub principal: Principal,
    /// The caller's socket address, when known.
    pub caller: Option<String>,
    /// `released` or the refusal's error code.
    pub result: &'static str,
}

#[derive(Serialize)]
struct Line<'a> {
    time: u64,
    #[serde(flatten)]
    entry: &'a AuditEntry,
    prev: String,
}

struct Writer {
    file: File,
    prev: [u8; 32],
    synced: Instant,
}

/// The append-only audit log.
pub struct AuditLog {
    path: PathBuf,
    writer: Mutex<Writer>,
}

/// The audit log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    path: String,
    source: std::io::Error,
}

impl AuditLog {
    /// Opens (or creates) the log at `path`, continuing the hash chain of its last line.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let err = |source| AuditError {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(err)?;
        let prev = last_line_hash(&mut file).map_err(err)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: Mutex::new(Writer {
                file,
                prev,
                synced: Instant::now(),
            }),
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line for `entry` at `unix_secs`.
    pub fn record(&self, unix_secs: u64, entry: &AuditEntry) -> Result<(), AuditError> {
        let err = |source| AuditError {
            path: self.path.display().to_string(),
            source,
        };
        let mut w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let line = serde_json::to_vec(&Line {
            time: unix_secs,
            entry,
            prev: hex::encode(w.prev),
        })
        .map_err(|e| err(std::io::Error::other(e)))?;
        let mut buf = line.clone();
        buf.push(b'\n');
        // One write of the whole line on an O_APPEND file: lines never interleave.
        w.file.write_all(&buf).map_err(err)?;
        w.prev = Sha256::digest(&line).into();
        if w.synced.elapsed() >= SYNC_EVERY {
            w.file.sync_data().map_err(err)?;
            w.synced = Instant::now();
        }
        Ok(())
    }
}

/// SHA-256 of the last complete line of `file`, or zeros for an empty file.
fn last_line_hash(file: &mut File) -> std::io::Result<[u8; 32]> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok([0; 32]);
    }
    let start = len.saturating_sub(TAIL_BYTES);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
    let last = body.rsplit(|b| *b == b'\n').next().unwrap_or(body);
    Ok(Sha256::digest(last).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(result: &'static str) -> AuditEntry {
        AuditEntry {
            endpoint: "app_sign",
            app_id: "app".into(),
            version: Some(7),
            method: "owner",
            principal: Principal::Owner {
                address: OperatorAddress::from_bytes([3; 20]),
            },
            caller: Some("127.0.0.1:5000".into()),
            result,
        }
    }

    #[test]
    fn lines_are_appended_and_chained_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        log.record(10, &entry("released")).unwrap();
        log.record(11, &entry("bad_signature")).unwrap();
        drop(log);
        let log = AuditLog::open(&path).unwrap();
        log.record(12, &entry("released")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let parsed: Vec<serde_json::Value> = lines
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(parsed[0]["prev"], hex::encode([0u8; 32]));
        for i in 1..3 {
            let h: [u8; 32] = Sha256::digest(lines[i - 1].as_bytes()).into();
            assert_eq!(parsed[i]["prev"], hex::encode(h), "line {i}");
        }
        assert_eq!(parsed[1]["result"], "bad_signature");
        assert_eq!(parsed[2]["time"], 12);
        assert_eq!(
            parsed[0]["principal"]["owner"]["address"],
            format!("{}", OperatorAddress::from_bytes([3; 20]))
        );
        assert_eq!(parsed[0]["app_id"], "app");
        assert_eq!(parsed[0]["version"], 7);
        assert_eq!(parsed[0]["caller"], "127.0.0.1:5000");
    }
}

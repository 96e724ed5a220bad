//! The key store: one sealed record per key version in `redb`, keyed by session
//! timestamp, so that "the version active at time T" is one range lookup. Each write
//! is one durable redb transaction: a crash leaves either the old or the new state.
//!
//! Records are `0x01 ‖ nonce (12) ‖ AES-256-GCM(json(version))` with AAD
//! `"EIGENKMS-V1-KEYSTORE" ‖ timestamp (8, big-endian)`, so a record cannot be moved
//! to another key. The sealing key comes from HKDF-SHA256 over the operator secret
//! (the TEE work adds the measured identity to its context). A metadata table holds
//! the format version and a key-check value, so that a store opened under another
//! sealing key is refused at [`KeyStore::open`] instead of failing record by record.
//!
//! A third table records, per session, the dealing this node sent ([`DealingRecord`]),
//! written before the dealing leaves the node, so that it never sends another one
//! for that session (see `crate::dealing`). Those records are public (hashes of
//! signed messages every peer received) and are not sealed.

use std::fmt;
use std::io;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use kms_protocol::KeyShareVersion;
use rand_core::{OsRng, RngCore};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("key_versions");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// Session timestamp → [`DealingRecord::to_bytes`].
const DEALINGS: TableDefinition<u64, &[u8]> = TableDefinition::new("dealings");
/// Metadata key of the on-disk format version (one byte).
const META_FORMAT: &str = "format";
/// Metadata key of the sealed [`CHECK_LABEL`].
const META_CHECK: &str = "check";
/// HKDF salt and AAD prefix of every record.
const DOMAIN: &[u8] = b"EIGENKMS-V1-KEYSTORE";
/// Format of the store and first byte of every record.
const FORMAT: u8 = 1;
/// Sealed under its own AAD (26 bytes, while record AADs are 28) so the check value
/// can never pass for a record or the other way round.
const CHECK_LABEL: &[u8] = b"EIGENKMS-V1-KEYSTORE-CHECK";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// Default retention of versions that are no longer active.
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// Why the store failed. Never carries secret material: only timestamps, format
/// numbers and the database's own errors.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("key store database: {0}")]
    Db(#[from] redb::Error),
    /// The sealing key does not match the one this store was created with.
    #[error(
        "key store: the sealing key does not match the one this store was sealed with: \
         another operator key, or another measured identity (image, firmware) than the \
         one that wrote it. Move key shares to a new image by resharing, not by copying \
         the store"
    )]
    WrongKey,
    /// The store was written in a format this build does not read.
    #[error("key store: unsupported format version {found} (this build reads {FORMAT})")]
    UnsupportedFormat {
        /// The format version found on disk.
        found: u8,
    },
    /// The metadata table is damaged (missing key check next to records, bad format field).
    #[error("key store: metadata is damaged: {0}")]
    Metadata(&'static str),
    /// A record does not decrypt or decode.
    #[error("key store: record for version {timestamp} is corrupt")]
    Corrupt {
        /// The version.
        timestamp: u64,
    },
    /// Different content is already stored for this version.
    #[error("key store: version {timestamp} already holds a different key share version")]
    Conflict {
        /// The version.
        timestamp: u64,
    },
    /// A version could not be serialized.
    #[error("key store: version {timestamp} could not be encoded")]
    Encode {
        /// The version.
        timestamp: u64,
    },
    /// This node already dealt in the session, something else than what is recorded
    /// now: sending it would be provable equivocation.
    #[error(
        "key store: this operator already dealt in session {timestamp}, another dealing \
         (another process on this operator key, or a restart that dealt differently)"
    )]
    AlreadyDealt {
        /// The session.
        timestamp: u64,
    },
    /// A dealing record does not decode.
    #[error("key store: dealing record of session {timestamp} is corrupt")]
    CorruptDealing {
        /// The session.
        timestamp: u64,
    },
}

/// The dealing this node sent in one session: the session descriptor's hash and the
/// `keccak256` of its signed phase-1 commitment payload (which fixes the polynomial,
/// hence every share and later commitment of the dealing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DealingRecord {
    /// The session.
    pub session_timestamp: u64,
    /// `SessionParams::session_hash` of the session.
    pub session_hash: [u8; 32],
    /// `SignedMessage::hash` of this node's phase-1 commitment.
    pub commitment_message: [u8; 32],
}

impl DealingRecord {
    fn to_bytes(self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.session_hash);
        out[32..].copy_from_slice(&self.commitment_message);
        out
    }

    fn from_bytes(session_timestamp: u64, b: &[u8]) -> Result<Self, StoreError> {
        let corrupt = StoreError::CorruptDealing {
            timestamp: session_timestamp,
        };
        let b: &[u8; 64] = b.try_into().map_err(|_| corrupt)?;
        Ok(Self {
            session_timestamp,
            session_hash: b[..32].try_into().expect("32 bytes"),
            commitment_message: b[32..].try_into().expect("32 bytes"),
        })
    }
}

/// Funnels redb's per-operation error types into [`StoreError::Db`].
fn db_err<E: Into<redb::Error>>(e: E) -> StoreError {
    StoreError::Db(e.into())
}

/// The AES-256 key records are sealed with. Zeroized on drop, redacted in `Debug`.
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// `HKDF-SHA256(ikm = operator secret, salt = "EIGENKMS-V1-KEYSTORE", info = context)`.
    pub fn derive(operator_secret: &[u8], context: &[u8]) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(DOMAIN), operator_secret)
            .expand(context, k.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self(k)
    }
}

impl SealingKey {
    /// The key of a store sealed to a measured identity:
    /// `HKDF-SHA256(ikm = operator secret ‖ MRTD ‖ RTMR0..3, salt =
    /// "EIGENKMS-V1-KEYSTORE", info = "kms-keyshare-encryption")`. A node whose TD
    /// measures differently (another image, another firmware) derives another key and
    /// cannot open the store: move shares to a new image by resharing, never by
    /// copying the store.
    pub fn derive_measured(operator_secret: &[u8], measured_identity: &[u8]) -> Self {
        let mut ikm = Zeroizing::new(Vec::with_capacity(
            operator_secret.len() + measured_identity.len(),
        ));
        ikm.extend_from_slice(operator_secret);
        ikm.extend_from_slice(measured_identity);
        Self::derive(&ikm, b"kms-keyshare-encryption")
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(<redacted>)")
    }
}

/// The operator's key versions on disk, sealed under a [`SealingKey`].
pub struct KeyStore {
    db: Database,
    cipher: Aes256Gcm,
}

fn record_aad(ts: u64) -> [u8; DOMAIN.len() + 8] {
    let mut aad = [0u8; DOMAIN.len() + 8];
    aad[..DOMAIN.len()].copy_from_slice(DOMAIN);
    aad[DOMAIN.len()..].copy_from_slice(&ts.to_be_bytes());
    aad
}

/// `serde_json` of a version into a buffer allocated once at its final size: a
/// growing `Vec` would leave copies of the share in freed memory on reallocation.
fn encode(v: &KeyShareVersion) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let err = |_| StoreError::Encode {
        timestamp: v.session_timestamp.0,
    };
    let mut count = Count(0);
    serde_json::to_writer(&mut count, v).map_err(err)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(count.0));
    serde_json::to_writer(&mut *buf, v).map_err(err)?;
    debug_assert_eq!(buf.len(), count.0, "serialization is deterministic");
    Ok(buf)
}

/// Whether two versions under the same name are the same version. The share is
/// compared in constant time (`Scalar`'s `PartialEq`).
fn same_version(a: &KeyShareVersion, b: &KeyShareVersion) -> bool {
    a.session_timestamp == b.session_timestamp
        && a.share == b.share
        && a.commitment == b.commitment
        && a.operator_set == b.operator_set
        && a.threshold == b.threshold
        && a.qualified_dealers == b.qualified_dealers
        && a.mode == b.mode
}

impl KeyStore {
    /// Opens (or creates, with its tables) the store at `path`; the parent directory
    /// must exist. Fails with [`StoreError::WrongKey`] if the store was created under
    /// another sealing key.
    pub fn open(path: &Path, key: SealingKey) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        let cipher = Aes256Gcm::new((&*key.0).into());
        let store = Self { db, cipher };
        // One write transaction, so that a crash while creating a store cannot leave
        // records without a key check. Returning early drops (aborts) it.
        let txn = store.db.begin_write().map_err(db_err)?;
        {
            let versions = txn.open_table(VERSIONS).map_err(db_err)?;
            txn.open_table(DEALINGS).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let format = meta
                .get(META_FORMAT)
                .map_err(db_err)?
                .map(|g| g.value().to_vec());
            match format.as_deref() {
                Some([FORMAT]) | None => {}
                Some([found]) => return Err(StoreError::UnsupportedFormat { found: *found }),
                Some(_) => return Err(StoreError::Metadata("format field is not one byte")),
            }
            let check = meta
                .get(META_CHECK)
                .map_err(db_err)?
                .map(|g| g.value().to_vec());
            match check {
                Some(check) => {
                    if store.unseal_raw(&check, CHECK_LABEL).is_none() {
                        return Err(StoreError::WrongKey);
                    }
                }
                None => {
                    if !versions.is_empty().map_err(db_err)? {
                        return Err(StoreError::Metadata("records present but no key check"));
                    }
                    let check = store.seal_raw(CHECK_LABEL, CHECK_LABEL);
                    meta.insert(META_CHECK, check.as_slice()).map_err(db_err)?;
                }
            }
            // Stores from before the format field was written are format 1.
            if format.is_none() {
                meta.insert(META_FORMAT, [FORMAT].as_slice())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(store)
    }

    /// `FORMAT ‖ nonce ‖ ciphertext ‖ tag`. Nonces are random: 96 bits leave the
    /// collision probability negligible for far more versions than a node will ever
    /// store under one key.
    fn seal_raw(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&nonce);
        out.extend(ct);
        out
    }

    fn unseal_raw(&self, record: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if record.len() < 1 + NONCE_LEN + TAG_LEN || record[0] != FORMAT {
            return None;
        }
        let (nonce, msg) = record[1..].split_at(NONCE_LEN);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
            .ok()
            .map(Zeroizing::new)
    }

    fn unseal(&self, ts: u64, record: &[u8]) -> Result<KeyShareVersion, StoreError> {
        let corrupt = StoreError::Corrupt { timestamp: ts };
        let plain = self.unseal_raw(record, &record_aad(ts)).ok_or(corrupt)?;
        let v: KeyShareVersion =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt { timestamp: ts })?;
        // The AAD already binds the record to its key; this catches a writer bug.
        if v.session_timestamp.0 != ts {
            return Err(StoreError::Corrupt { timestamp: ts });
        }
        Ok(v)
    }

    /// Stores a version in one durable transaction. Storing the same version again is
    /// a no-op; a version with a different share (or other content) under the same
    /// timestamp is refused with [`StoreError::Conflict`]: a version is immutable.
    pub fn store(&self, v: &KeyShareVersion) -> Result<(), StoreError> {
        let ts = v.session_timestamp.0;
        let record = {
            let plain = encode(v)?;
            self.seal_raw(&plain, &record_aad(ts))
        };
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(VERSIONS).map_err(db_err)?;
            let existing = t.get(ts).map_err(db_err)?.map(|g| g.value().to_vec());
            if let Some(old) = existing {
                let old = self.unseal(ts, &old)?;
                return if same_version(&old, v) {
                    Ok(())
                } else {
                    Err(StoreError::Conflict { timestamp: ts })
                };
            }
            t.insert(ts, record.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// The newest version (the active one), if any.
    pub fn load_active(&self) -> Result<Option<KeyShareVersion>, StoreError> {
        self.load_at_time(u64::MAX)
    }

    /// The version active at `unix_secs`: the one with the greatest timestamp at or
    /// before it, found with one range lookup.
    pub fn load_at_time(&self, unix_secs: u64) -> Result<Option<KeyShareVersion>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(VERSIONS).map_err(db_err)?;
        let mut range = t.range(..=unix_secs).map_err(db_err)?;
        match range.next_back() {
            Some(entry) => {
                let (k, v) = entry.map_err(db_err)?;
                self.unseal(k.value(), v.value()).map(Some)
            }
            None => Ok(None),
        }
    }

    /// The timestamps of every stored version, oldest first.
    pub fn list_versions(&self) -> Result<Vec<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(VERSIONS).map_err(db_err)?;
        t.iter()
            .map_err(db_err)?
            .map(|entry| entry.map(|(k, _)| k.value()).map_err(db_err))
            .collect()
    }

    /// Removes the versions whose active period (from their timestamp to their
    /// successor's) ended before `now_unix_secs − horizon_secs`, and the dealing
    /// records of sessions before that time, in one transaction; returns how many
    /// versions. The newest version has no successor and is never removed.
    ///
    /// A dealing record is needed only while its session can still be joined, which
    /// ends with the session's first phase, well within one interval: the horizon is
    /// at least two.
    pub fn prune(&self, now_unix_secs: u64, horizon_secs: u64) -> Result<usize, StoreError> {
        let cutoff = now_unix_secs.saturating_sub(horizon_secs);
        let txn = self.db.begin_write().map_err(db_err)?;
        let (removed, dealings) = {
            let mut t = txn.open_table(VERSIONS).map_err(db_err)?;
            // The newest version that started before the cutoff was still active at
            // the cutoff (its successor, if any, starts at or after it), so it stays;
            // every older one was succeeded before the cutoff.
            let keep_from = t
                .range(..cutoff)
                .map_err(db_err)?
                .next_back()
                .transpose()
                .map_err(db_err)?
                .map(|(k, _)| k.value());
            let mut removed = 0usize;
            if let Some(keep_from) = keep_from {
                t.retain_in(..keep_from, |_, _| {
                    removed += 1;
                    false
                })
                .map_err(db_err)?;
            }
            let mut d = txn.open_table(DEALINGS).map_err(db_err)?;
            let mut dealings = 0usize;
            d.retain_in(..cutoff, |_, _| {
                dealings += 1;
                false
            })
            .map_err(db_err)?;
            (removed, dealings)
        };
        if removed + dealings > 0 {
            txn.commit().map_err(db_err)?;
        }
        Ok(removed)
    }

    /// Records the dealing `r` in one durable transaction, before it is sent. Recording
    /// the same dealing again is a no-op (a restarted node re-sending what it sent);
    /// any other dealing for a session that has a record is refused with
    /// [`StoreError::AlreadyDealt`].
    pub fn record_dealing(&self, r: &DealingRecord) -> Result<(), StoreError> {
        let ts = r.session_timestamp;
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(DEALINGS).map_err(db_err)?;
            let existing = t.get(ts).map_err(db_err)?.map(|g| g.value().to_vec());
            if let Some(old) = existing {
                return if DealingRecord::from_bytes(ts, &old)? == *r {
                    Ok(())
                } else {
                    Err(StoreError::AlreadyDealt { timestamp: ts })
                };
            }
            t.insert(ts, r.to_bytes().as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// The dealing recorded for session `ts`, if any.
    pub fn dealing(&self, ts: u64) -> Result<Option<DealingRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(DEALINGS).map_err(db_err)?;
        t.get(ts)
            .map_err(db_err)?
            .map(|g| DealingRecord::from_bytes(ts, g.value()))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::vss::feldman::FeldmanDealing;
    use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
    use kms_protocol::{SessionTimestamp, VssMode};
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn version(ts: u64, secret: u64) -> KeyShareVersion {
        let g = G2Point::generator();
        KeyShareVersion {
            session_timestamp: SessionTimestamp(ts),
            share: Scalar::from_u64(secret),
            commitment: Commitment::new(vec![g.mul(&Scalar::from_u64(7)), g]).unwrap(),
            operator_set: vec![OperatorAddress::from_bytes([1; 20])],
            threshold: 2,
            qualified_dealers: vec![OperatorAddress::from_bytes([1; 20])],
            mode: VssMode::Feldman,
        }
    }

    /// A version whose share and commitment come from a real dealing.
    fn dealt_version(ts: u64) -> KeyShareVersion {
        let dealing = FeldmanDealing::new(Scalar::random(&mut OsRng), 3, &mut OsRng).unwrap();
        let ops: Vec<_> = (1..=4u8)
            .map(|i| OperatorAddress::from_bytes([i; 20]))
            .collect();
        KeyShareVersion {
            session_timestamp: SessionTimestamp(ts),
            share: dealing.share(&Scalar::from_u64(2)),
            commitment: dealing.commitment().clone(),
            operator_set: ops.clone(),
            threshold: 3,
            qualified_dealers: ops[..3].to_vec(),
            mode: VssMode::Feldman,
        }
    }

    fn key() -> SealingKey {
        SealingKey::derive(b"operator secret", b"ctx")
    }

    fn open(dir: &tempfile::TempDir) -> KeyStore {
        KeyStore::open(&dir.path().join("k.redb"), key()).unwrap()
    }

    /// Rewrites one raw table entry through redb itself (the store must be closed).
    fn poke<K, V>(path: &Path, table: TableDefinition<K, V>, f: impl FnOnce(&mut redb::Table<K, V>))
    where
        K: redb::Key + 'static,
        V: redb::Value + 'static,
    {
        let db = Database::create(path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(table).unwrap();
            f(&mut t);
        }
        txn.commit().unwrap();
    }

    #[test]
    fn a_dealt_version_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        assert!(s.load_active().unwrap().is_none());
        let v = dealt_version(1_700_000_000);
        s.store(&v).unwrap();
        let got = s.load_active().unwrap().unwrap();
        assert!(same_version(&got, &v));
        assert_eq!(got.share, v.share);
        assert_eq!(got.commitment, v.commitment);
        assert_eq!(got.qualified_dealers, v.qualified_dealers);
    }

    #[test]
    fn storing_again_is_idempotent_and_a_different_version_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        s.store(&version(200, 201)).unwrap();
        s.store(&version(200, 201)).unwrap();
        assert!(matches!(
            s.store(&version(200, 5)),
            Err(StoreError::Conflict { timestamp: 200 })
        ));
        let mut other_set = version(200, 201);
        other_set.threshold = 3;
        assert!(matches!(
            s.store(&other_set),
            Err(StoreError::Conflict { timestamp: 200 })
        ));
        assert_eq!(s.list_versions().unwrap(), vec![200]);
        assert_eq!(
            s.load_active().unwrap().unwrap().share,
            Scalar::from_u64(201)
        );
    }

    #[test]
    fn time_lookups_pick_the_active_version() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        // Stored out of order: the table orders them.
        for ts in [300, 100, 200] {
            s.store(&version(ts, ts + 1)).unwrap();
        }
        let at = |t| s.load_at_time(t).unwrap().map(|v| v.session_timestamp.0);
        assert_eq!(at(0), None);
        assert_eq!(at(99), None);
        assert_eq!(at(100), Some(100));
        assert_eq!(at(199), Some(100));
        assert_eq!(at(200), Some(200));
        assert_eq!(at(250), Some(200));
        assert_eq!(at(300), Some(300));
        assert_eq!(at(u64::MAX), Some(300));
        let a = s.load_active().unwrap().unwrap();
        assert_eq!(a.session_timestamp.0, 300);
        assert_eq!(a.share, Scalar::from_u64(301));
        assert_eq!(s.list_versions().unwrap(), vec![100, 200, 300]);
    }

    #[test]
    fn prune_removes_only_expired_versions_and_never_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = open(&dir);
        assert_eq!(s.prune(u64::MAX, 0).unwrap(), 0, "empty store");
        for ts in [100, 200, 300] {
            s.store(&version(ts, 1)).unwrap();
        }
        // Retention longer than the clock: nothing is old enough.
        assert_eq!(s.prune(1000, DEFAULT_RETENTION_SECS).unwrap(), 0);
        // Cutoff 200: 100 ended at 200, which is not before the cutoff.
        assert_eq!(s.prune(1200, 1000).unwrap(), 0);
        // Cutoff 250: 100 (ended at 200) goes, 200 (ended at 300) stays.
        assert_eq!(s.prune(1250, 1000).unwrap(), 1);
        assert_eq!(s.list_versions().unwrap(), vec![200, 300]);
        // Far in the future: everything but the active one.
        assert_eq!(s.prune(u64::MAX, 1).unwrap(), 1);
        assert_eq!(s.list_versions().unwrap(), vec![300]);
        assert_eq!(s.prune(u64::MAX, 0).unwrap(), 0);
        assert_eq!(s.load_active().unwrap().unwrap().session_timestamp.0, 300);
    }

    #[test]
    fn a_session_has_one_dealing_which_survives_reopening_until_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        let dealt = DealingRecord {
            session_timestamp: 1_000,
            session_hash: [1; 32],
            commitment_message: [2; 32],
        };
        {
            let s = KeyStore::open(&p, key()).unwrap();
            assert_eq!(s.dealing(1_000).unwrap(), None);
            s.record_dealing(&dealt).unwrap();
            s.record_dealing(&dealt).unwrap();
        }
        let s = KeyStore::open(&p, key()).unwrap();
        assert_eq!(s.dealing(1_000).unwrap(), Some(dealt));
        for other in [
            DealingRecord {
                commitment_message: [3; 32],
                ..dealt
            },
            DealingRecord {
                session_hash: [3; 32],
                ..dealt
            },
        ] {
            assert!(matches!(
                s.record_dealing(&other),
                Err(StoreError::AlreadyDealt { timestamp: 1_000 })
            ));
        }
        assert_eq!(s.dealing(1_000).unwrap(), Some(dealt));
        // Another session is another record.
        let next = DealingRecord {
            session_timestamp: 1_600,
            ..dealt
        };
        s.record_dealing(&next).unwrap();
        // Records of sessions before the horizon go (no version is stored at all).
        assert_eq!(s.prune(1_600 + 500, 1_000).unwrap(), 0);
        assert_eq!(s.dealing(1_000).unwrap(), None);
        assert_eq!(s.dealing(1_600).unwrap(), Some(next));
    }

    #[test]
    fn a_wrong_key_is_refused_at_open_and_data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&version(42, 9)).unwrap();
            s.store(&version(43, 10)).unwrap();
        }
        for wrong in [
            SealingKey::derive(b"other", b"ctx"),
            SealingKey::derive(b"operator secret", b"other ctx"),
        ] {
            let err = KeyStore::open(&p, wrong).err().expect("wrong key refused");
            assert!(matches!(err, StoreError::WrongKey));
            assert!(err.to_string().contains("sealing key does not match"));
        }
        let s = KeyStore::open(&p, key()).unwrap();
        assert_eq!(s.list_versions().unwrap(), vec![42, 43]);
        assert_eq!(
            s.load_at_time(42).unwrap().unwrap().share,
            Scalar::from_u64(9)
        );
        assert_eq!(
            s.load_active().unwrap().unwrap().share,
            Scalar::from_u64(10)
        );
    }

    #[test]
    fn an_unknown_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        drop(KeyStore::open(&p, key()).unwrap());
        poke(&p, META, |t| {
            t.insert(META_FORMAT, [2u8].as_slice()).unwrap();
        });
        assert!(matches!(
            KeyStore::open(&p, key()),
            Err(StoreError::UnsupportedFormat { found: 2 })
        ));
    }

    #[test]
    fn shares_never_reach_the_disk_in_the_clear() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        let v = dealt_version(42);
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&v).unwrap();
            s.prune(u64::MAX, 0).unwrap();
        }
        let raw = std::fs::read(&p).unwrap();
        let be = v.share.to_bytes_be();
        assert!(!raw.windows(32).any(|w| w == be), "share in binary");
        let hex_share = hex::encode(be);
        assert!(
            !raw.windows(hex_share.len())
                .any(|w| w.eq_ignore_ascii_case(hex_share.as_bytes())),
            "share in hex"
        );
    }

    #[test]
    fn a_tampered_record_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&version(42, 9)).unwrap();
        }
        poke(&p, VERSIONS, |t| {
            let mut rec = t.get(42).unwrap().unwrap().value().to_vec();
            rec[1 + NONCE_LEN + 3] ^= 1;
            t.insert(42, rec.as_slice()).unwrap();
        });
        let s = KeyStore::open(&p, key()).unwrap();
        let err = s.load_active().expect_err("tampering detected");
        assert!(matches!(err, StoreError::Corrupt { timestamp: 42 }));
        assert_eq!(
            err.to_string(),
            "key store: record for version 42 is corrupt"
        );
    }

    #[test]
    fn a_record_moved_to_another_timestamp_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&version(100, 1)).unwrap();
            s.store(&version(200, 2)).unwrap();
        }
        // Roll back to the old share under the new name: the AAD binds the timestamp.
        poke(&p, VERSIONS, |t| {
            let old = t.get(100).unwrap().unwrap().value().to_vec();
            t.insert(200, old.as_slice()).unwrap();
        });
        let s = KeyStore::open(&p, key()).unwrap();
        assert_eq!(
            s.load_at_time(150).unwrap().unwrap().share,
            Scalar::from_u64(1)
        );
        assert!(matches!(
            s.load_active(),
            Err(StoreError::Corrupt { timestamp: 200 })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]

        /// `load_at_time` (a range lookup) agrees with a scan, and pruning changes no
        /// lookup at or after the cutoff.
        #[test]
        fn lookups_match_a_scan_before_and_after_pruning(
            ts in proptest::collection::btree_set(1u64..1000, 1..12),
            probes in proptest::collection::vec(0u64..1100, 10),
            cutoff in 0u64..1100,
        ) {
            let dir = tempfile::tempdir().unwrap();
            let s = open(&dir);
            for t in &ts {
                s.store(&version(*t, *t)).unwrap();
            }
            let scan = |set: &BTreeSet<u64>, p: u64| set.iter().filter(|t| **t <= p).max().copied();
            let at = |p| s.load_at_time(p).unwrap().map(|v| v.session_timestamp.0);
            for p in &probes {
                prop_assert_eq!(at(*p), scan(&ts, *p));
            }
            prop_assert_eq!(s.list_versions().unwrap(), ts.iter().copied().collect::<Vec<_>>());

            let sorted: Vec<u64> = ts.iter().copied().collect();
            let expired = sorted.windows(2).filter(|w| w[1] < cutoff).count();
            prop_assert_eq!(s.prune(cutoff + 10, 10).unwrap(), expired);
            let kept: BTreeSet<u64> = s.list_versions().unwrap().into_iter().collect();
            prop_assert_eq!(kept.len(), ts.len() - expired);
            prop_assert!(kept.contains(sorted.last().unwrap()));
            for p in probes.iter().copied().chain([cutoff]).filter(|p| *p >= cutoff) {
                prop_assert_eq!(at(p), scan(&ts, p));
            }
        }
    }
}

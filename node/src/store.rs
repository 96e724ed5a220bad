//! The key store: one sealed record per key version in `redb`, keyed by session
//! timestamp, so that "the version active at time T" is one range lookup. Each write
//! is one redb transaction: a crash leaves either the old or the new state.
//!
//! Records are `0x01 ‖ nonce (12) ‖ AES-256-GCM(json(version))` with AAD
//! `"EIGENKMS-V1-KEYSTORE" ‖ timestamp (8, big-endian)`, so a record cannot be moved
//! to another key. The sealing key comes from HKDF-SHA256 over the operator secret
//! (the TEE work adds the measured identity to its context).

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use kms_protocol::KeyShareVersion;
use rand_core::{OsRng, RngCore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

const VERSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("key_versions");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const AAD_PREFIX: &[u8] = b"EIGENKMS-V1-KEYSTORE";
const RECORD_FORMAT: u8 = 1;
const CHECK_LABEL: &[u8] = b"EIGENKMS-V1-KEYSTORE-CHECK";

/// Default retention of versions that are no longer active.
pub const DEFAULT_RETENTION_SECS: u64 = 30 * 24 * 3600;

/// Why the store failed. Never carries secret material.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database could not be opened, read or written.
    #[error("key store: {0}")]
    Db(String),
    /// The sealing key does not match the one this store was created with.
    #[error(
        "key store: the sealing key does not match this store (another operator key or image?)"
    )]
    WrongKey,
    /// A record does not decrypt or decode.
    #[error("key store: record for version {timestamp} is corrupt")]
    Corrupt {
        /// The version.
        timestamp: u64,
    },
    /// A different share is already stored for this version.
    #[error("key store: version {0} already holds a different share")]
    Conflict(u64),
}

fn db_err<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Db(e.to_string())
}

/// The AES-256 key records are sealed with.
pub struct SealingKey(Zeroizing<[u8; 32]>);

impl SealingKey {
    /// `HKDF-SHA256(ikm = operator secret, salt = "EIGENKMS-V1-KEYSTORE", info = context)`.
    pub fn derive(operator_secret: &[u8], context: &[u8]) -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(AAD_PREFIX), operator_secret)
            .expand(context, k.as_mut())
            .expect("32 bytes is a valid HKDF length");
        Self(k)
    }
}

/// The operator's key versions on disk.
pub struct KeyStore {
    db: Database,
    cipher: Aes256Gcm,
}

fn aad(ts: u64) -> Vec<u8> {
    [AAD_PREFIX, &ts.to_be_bytes()].concat()
}

impl KeyStore {
    /// Opens (or creates) the store at `path`. Fails with [`StoreError::WrongKey`] if
    /// it was created under another sealing key.
    pub fn open(path: &Path, key: SealingKey) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(db_err)?;
        let cipher = Aes256Gcm::new_from_slice(key.0.as_ref()).expect("32-byte key");
        let store = Self { db, cipher };
        let txn = store.db.begin_write().map_err(db_err)?;
        {
            let _ = txn.open_table(VERSIONS).map_err(db_err)?;
            let mut meta = txn.open_table(META).map_err(db_err)?;
            let existing = meta
                .get("check")
                .map_err(db_err)?
                .map(|v| v.value().to_vec());
            match existing {
                Some(check) => {
                    if store.unseal_raw(&check, CHECK_LABEL).is_none() {
                        return Err(StoreError::WrongKey);
                    }
                }
                None => {
                    let check = store.seal_raw(CHECK_LABEL, CHECK_LABEL);
                    meta.insert("check", check.as_slice()).map_err(db_err)?;
                }
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(store)
    }

    fn seal_raw(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("in-memory encryption cannot fail");
        let mut out = Vec::with_capacity(13 + ct.len());
        out.push(RECORD_FORMAT);
        out.extend_from_slice(&nonce);
        out.extend(ct);
        out
    }

    fn unseal_raw(&self, record: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if record.len() < 13 + 16 || record[0] != RECORD_FORMAT {
            return None;
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&record[1..13]),
                Payload {
                    msg: &record[13..],
                    aad,
                },
            )
            .ok()
            .map(Zeroizing::new)
    }

    fn unseal(&self, ts: u64, record: &[u8]) -> Result<KeyShareVersion, StoreError> {
        let plain = self
            .unseal_raw(record, &aad(ts))
            .ok_or(StoreError::Corrupt { timestamp: ts })?;
        let v: KeyShareVersion =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt { timestamp: ts })?;
        if v.session_timestamp.0 != ts {
            return Err(StoreError::Corrupt { timestamp: ts });
        }
        Ok(v)
    }

    /// Stores a version in one transaction. Storing the same version again is a no-op;
    /// another share under the same timestamp is refused.
    pub fn store(&self, v: &KeyShareVersion) -> Result<(), StoreError> {
        let ts = v.session_timestamp.0;
        let plain = Zeroizing::new(serde_json::to_vec(v).map_err(db_err)?);
        let record = self.seal_raw(&plain, &aad(ts));
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(VERSIONS).map_err(db_err)?;
            let existing = t.get(ts).map_err(db_err)?.map(|r| r.value().to_vec());
            if let Some(old) = existing {
                let old = self.unseal(ts, &old)?;
                if old.share == v.share && old.commitment == v.commitment {
                    return Ok(());
                }
                return Err(StoreError::Conflict(ts));
            }
            t.insert(ts, record.as_slice()).map_err(db_err)?;
        }
        txn.commit().map_err(db_err)
    }

    /// The newest version.
    pub fn load_active(&self) -> Result<Option<KeyShareVersion>, StoreError> {
        self.load_at_time(u64::MAX)
    }

    /// The version active at `unix_secs`: the newest that started at or before it.
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

    /// Every stored version, oldest first.
    pub fn list_versions(&self) -> Result<Vec<u64>, StoreError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let t = txn.open_table(VERSIONS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(db_err)? {
            out.push(entry.map_err(db_err)?.0.value());
        }
        Ok(out)
    }

    /// Removes versions that stopped being active (their successor started) more than
    /// `retention_secs` before `now_unix_secs`. The newest version is never removed.
    pub fn prune(&self, now_unix_secs: u64, retention_secs: u64) -> Result<usize, StoreError> {
        let cutoff = now_unix_secs.saturating_sub(retention_secs);
        let versions = self.list_versions()?;
        let doomed: Vec<u64> = versions
            .windows(2)
            .filter(|w| w[1] < cutoff)
            .map(|w| w[0])
            .collect();
        if doomed.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut t = txn.open_table(VERSIONS).map_err(db_err)?;
            for ts in &doomed {
                t.remove(*ts).map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok(doomed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
    use kms_protocol::{SessionTimestamp, VssMode};
    use proptest::prelude::*;

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

    fn key() -> SealingKey {
        SealingKey::derive(b"operator secret", b"ctx")
    }

    #[test]
    fn versions_round_trip_and_time_lookups_pick_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = KeyStore::open(&dir.path().join("k.redb"), key()).unwrap();
        assert!(s.load_active().unwrap().is_none());
        for ts in [100, 200, 300] {
            s.store(&version(ts, ts + 1)).unwrap();
        }
        // Idempotent; a different share under the same name is refused.
        s.store(&version(200, 201)).unwrap();
        assert!(matches!(
            s.store(&version(200, 5)),
            Err(StoreError::Conflict(200))
        ));
        let a = s.load_active().unwrap().unwrap();
        assert_eq!(a.session_timestamp.0, 300);
        assert_eq!(a.share, Scalar::from_u64(301));
        assert_eq!(a.commitment, version(300, 0).commitment);
        assert!(s.load_at_time(99).unwrap().is_none());
        assert_eq!(
            s.load_at_time(100).unwrap().unwrap().session_timestamp.0,
            100
        );
        assert_eq!(
            s.load_at_time(250).unwrap().unwrap().session_timestamp.0,
            200
        );
        assert_eq!(
            s.load_at_time(10_000).unwrap().unwrap().session_timestamp.0,
            300
        );
        assert_eq!(s.list_versions().unwrap(), vec![100, 200, 300]);
    }

    #[test]
    fn prune_removes_only_expired_versions_and_never_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = KeyStore::open(&dir.path().join("k.redb"), key()).unwrap();
        for ts in [100, 200, 300] {
            s.store(&version(ts, 1)).unwrap();
        }
        // 100 ended at 200, 200 at 300: with cutoff 250 only 100 goes.
        assert_eq!(s.prune(1250, 1000).unwrap(), 1);
        assert_eq!(s.list_versions().unwrap(), vec![200, 300]);
        // Far in the future: everything but the active one.
        assert_eq!(s.prune(u64::MAX, 1).unwrap(), 1);
        assert_eq!(s.list_versions().unwrap(), vec![300]);
        assert_eq!(s.prune(u64::MAX, 0).unwrap(), 0);
    }

    #[test]
    fn a_wrong_key_is_refused_at_open_and_data_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&version(42, 9)).unwrap();
        }
        assert!(matches!(
            KeyStore::open(&p, SealingKey::derive(b"other", b"ctx")),
            Err(StoreError::WrongKey)
        ));
        let s = KeyStore::open(&p, key()).unwrap();
        assert_eq!(s.load_active().unwrap().unwrap().share, Scalar::from_u64(9));
    }

    #[test]
    fn shares_never_reach_the_disk_in_the_clear_and_tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.redb");
        let secret = Scalar::from_bytes_wide(&[0xab; 64]);
        let mut v = version(42, 0);
        v.share = secret.clone();
        {
            let s = KeyStore::open(&p, key()).unwrap();
            s.store(&v).unwrap();
        }
        let raw = std::fs::read(&p).unwrap();
        let be = secret.to_bytes_be();
        assert!(!raw.windows(32).any(|w| w == be), "share in the clear");
        let hex_share = hex::encode(be);
        assert!(
            !raw.windows(hex_share.len())
                .any(|w| w == hex_share.as_bytes())
        );
        // Flip a ciphertext byte through redb itself.
        {
            let db = Database::create(&p).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut t = txn.open_table(VERSIONS).unwrap();
                let mut rec = t.get(42).unwrap().unwrap().value().to_vec();
                rec[20] ^= 1;
                t.insert(42, rec.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let s = KeyStore::open(&p, key()).unwrap();
        assert!(matches!(
            s.load_active(),
            Err(StoreError::Corrupt { timestamp: 42 })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        #[test]
        fn load_at_time_matches_a_scan(ts in proptest::collection::btree_set(1u64..1000, 1..12), probes in proptest::collection::vec(0u64..1100, 10)) {
            let dir = tempfile::tempdir().unwrap();
            let s = KeyStore::open(&dir.path().join("k.redb"), key()).unwrap();
            for t in &ts {
                s.store(&version(*t, *t)).unwrap();
            }
            for p in probes {
                let want = ts.iter().filter(|t| **t <= p).max().copied();
                let got = s.load_at_time(p).unwrap().map(|v| v.session_timestamp.0);
                prop_assert_eq!(got, want);
            }
        }
    }
}

//! Protocol-key certificates a node has checked, remembered across sessions.
//!
//! A peer's protocol key is certified once by its operator key (BN254 or ECDSA,
//! `kms_crypto::signer::certified`); checking that certificate costs as much as one of
//! the operator signatures it replaces, so a node checks each certificate once and
//! then only the cheap Schnorr signatures of the messages. An entry names the
//! registered key it was checked against, so a certificate checked under an operator's
//! old key does not count under a new one.
//!
//! It also keeps the certified protocol keys' tables for batch checks
//! ([`PreparedProtocolKey`]), built the first time a key's signature is batched.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use kms_crypto::signer::certified::{PreparedProtocolKey, ProtocolPublicKey};
use kms_crypto::signer::{OperatorPublicKey, ProtocolKeyCertificate};
use sha3::{Digest, Keccak256};

/// Entries kept at most; the set is cleared when full (only certificates that
/// verified under a participant's registered key are ever added, so this is reached
/// only by many restarts of many peers).
const MAX_ENTRIES: usize = 16_384;

/// Prepared protocol keys kept at most (about 11 KiB each); cleared when full, as
/// above.
const MAX_PREPARED: usize = 1_024;

/// Certificates checked against their operator's registered key.
#[derive(Debug, Default)]
pub struct CertificateCache {
    checked: Mutex<HashSet<[u8; 32]>>,
    prepared: Mutex<HashMap<[u8; 33], PreparedProtocolKey>>,
}

impl CertificateCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn entry(key: &OperatorPublicKey, c: &ProtocolKeyCertificate) -> [u8; 32] {
        let mut h = Keccak256::new();
        match key {
            OperatorPublicKey::Bn254(pk) => h.update(pk.to_bytes()),
            OperatorPublicKey::Ecdsa(a) => h.update(a.as_bytes()),
        }
        h.update(ProtocolKeyCertificate::digest(
            &c.operator,
            &c.key,
            c.not_before,
            c.not_after,
        ));
        h.update(c.signature.to_bytes());
        h.finalize().into()
    }

    /// Whether `c` was checked against `key`.
    pub fn contains(&self, key: &OperatorPublicKey, c: &ProtocolKeyCertificate) -> bool {
        let e = Self::entry(key, c);
        self.checked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&e)
    }

    /// Records that `c` verified against `key`.
    pub fn insert(&self, key: &OperatorPublicKey, c: &ProtocolKeyCertificate) {
        let e = Self::entry(key, c);
        let mut set = self.checked.lock().unwrap_or_else(|p| p.into_inner());
        if set.len() >= MAX_ENTRIES {
            set.clear();
        }
        set.insert(e);
    }

    /// Checks `c` against `key` unless it was checked before.
    pub fn check(&self, key: &OperatorPublicKey, c: &ProtocolKeyCertificate) -> bool {
        if self.contains(key, c) {
            return true;
        }
        let ok = c.verify(key).is_ok();
        if ok {
            self.insert(key, c);
        }
        ok
    }

    /// `key` with its tables for batch checks, built on first use. The caller passes
    /// only keys from certificates that were checked (so the cache holds peers' keys,
    /// not whatever a message claims).
    pub fn prepared(&self, key: &ProtocolPublicKey) -> PreparedProtocolKey {
        let mut map = self.prepared.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&key.to_bytes()) {
            return k.clone();
        }
        if map.len() >= MAX_PREPARED {
            map.clear();
        }
        let k = PreparedProtocolKey::new(key);
        map.insert(key.to_bytes(), k.clone());
        k
    }

    /// Number of certificates remembered.
    pub fn len(&self) -> usize {
        self.checked.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

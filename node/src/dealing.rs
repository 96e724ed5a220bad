//! Slashing protection: an operator never sends two different dealings for one
//! session. Two signed dealings of one dealer for one session with different
//! payloads are provable equivocation. Two processes on one operator key (a
//! failover pair, a copied disk, a node restarted into the session it was dealing
//! in) must therefore send the same dealing or none.
//!
//! Two mechanisms, each covering what the other cannot:
//!
//! - **Deterministic dealing** ([`EngineSeeds`]). The engine's seed is
//!   `HKDF-SHA256(ikm = operator secret, salt = "EIGENKMS-V1-ENGINE-SEED", info =
//!   session hash)`, and the engine deals from a stream of that seed that nothing
//!   else draws from. What it deals (the coin contribution, the DKG secret, the
//!   polynomials) is then a function of the operator key, the session descriptor,
//!   the share it reshares and, in Pedersen mode, the coin's outcome. Two instances
//!   that share nothing but the key, a disk copied before the session included, send
//!   byte-identical commitment payloads, which prove nothing. The seed stays
//!   unpredictable to everyone else: it is keyed by a secret only the operator holds,
//!   and each session descriptor (timestamp, participants, previous key, schedule)
//!   gets its own. Re-using it for one descriptor re-deals the same polynomial for
//!   the same secret: a reshare dealer's secret is fixed by the previous key and its
//!   evaluation point, which the descriptor fixes.
//! - **The record** ([`DealingGuard`]). Before the first message of its dealing
//!   leaves the node, the guard records in the key store, in one durable transaction,
//!   the session hash and the hash of the signed phase-1 commitment; any dealing
//!   that does not match the record is never sent, and a node that cannot write the
//!   record does not deal. This covers what determinism cannot promise: a Pedersen
//!   dealing over another coin outcome, or a build that deals differently, on a node
//!   that already dealt from this disk.
//!
//! Neither makes a hot standby safe. Two live instances on separate disks can still
//! deal differently in Pedersen mode when they saw different coin outcomes, and as
//! players they acknowledge and complain from their own views, which splits how the
//! others see this operator. Run one node per operator key; fail over by stopping
//! the old one first.

use std::sync::{Arc, Mutex};

use hkdf::Hkdf;
use kms_crypto::OperatorAddress;
use kms_protocol::dkg::Action;
use kms_protocol::dkg::wire::Body;
use kms_protocol::messages::SignedMessage;
use sha2::Sha256;
use tracing::{error, info};
use zeroize::Zeroizing;

use crate::store::{DealingRecord, KeyStore, StoreError};

/// HKDF salt of engine seeds.
const SEED_DOMAIN: &[u8] = b"EIGENKMS-V1-ENGINE-SEED";

/// The key engine seeds are derived from (the HKDF pseudorandom key). Zeroized on
/// drop, redacted in `Debug`.
pub struct EngineSeeds(Zeroizing<[u8; 32]>);

impl EngineSeeds {
    /// From the operator's secret (the same key material the store's sealing key
    /// comes from; the two derivations are domain-separated by their salts).
    pub fn derive(operator_secret: &[u8]) -> Self {
        let (prk, _) = Hkdf::<Sha256>::extract(Some(SEED_DOMAIN), operator_secret);
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&prk);
        Self(key)
    }

    /// The engine seed of the session whose descriptor hashes to `session_hash`.
    pub fn for_session(&self, session_hash: &[u8; 32]) -> Zeroizing<[u8; 32]> {
        let mut seed = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::from_prk(self.0.as_ref())
            .expect("a 32-byte PRK")
            .expand(session_hash, seed.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        seed
    }
}

impl std::fmt::Debug for EngineSeeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineSeeds(<redacted>)")
    }
}

/// Whether this node's dealing in the session may leave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DealingState {
    /// Nothing dealt yet.
    NotDealt,
    /// The dealing is recorded: its messages go out.
    Recorded,
    /// The dealing differs from the recorded one, or could not be recorded: none of
    /// its messages go out.
    Refused,
}

/// Screens one session's outgoing messages: this node's dealer messages go out only
/// once the dealing is recorded, and never when it differs from the record.
pub struct DealingGuard {
    store: Arc<KeyStore>,
    me: OperatorAddress,
    session_timestamp: u64,
    session_hash: [u8; 32],
    state: Mutex<DealingState>,
    /// Held while the record is written, so that no dealer message overtakes it.
    recording: tokio::sync::Mutex<()>,
}

/// What a message is to the guard.
enum Outgoing {
    /// Not this node's dealing.
    Other,
    /// This node's dealing (v2: one message carries all of it).
    Commitment,
}

impl DealingGuard {
    /// The guard of `me`'s dealing in the session at `session_timestamp` whose
    /// descriptor hashes to `session_hash` (`SessionParams::session_hash`), recorded
    /// in `store`.
    pub fn new(
        store: Arc<KeyStore>,
        me: OperatorAddress,
        session_timestamp: u64,
        session_hash: [u8; 32],
    ) -> Self {
        Self {
            store,
            me,
            session_timestamp,
            session_hash,
            state: Mutex::new(DealingState::NotDealt),
            recording: tokio::sync::Mutex::new(()),
        }
    }

    /// Where the dealing stands.
    pub fn state(&self) -> DealingState {
        *self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn classify(&self, m: &SignedMessage) -> Outgoing {
        match Body::decode(&m.payload) {
            // The one dealing of protocol v2 carries everything the dealer deals.
            Ok(Body::Dealing(d)) if kms_protocol::dkg::wire::from_sol(&d.dealer) == self.me => {
                Outgoing::Commitment
            }
            _ => Outgoing::Other,
        }
    }

    /// The actions that may be carried out: before any message of this node's
    /// dealing goes out its phase-1 commitment is recorded (durably) or found
    /// recorded; dealer messages are dropped while it is not, or when it differs.
    pub async fn screen(&self, actions: Vec<Action>) -> Vec<Action> {
        let kinds: Vec<Outgoing> = actions
            .iter()
            .map(|a| match a {
                Action::Send { message, .. } => self.classify(message),
                _ => Outgoing::Other,
            })
            .collect();
        if kinds.iter().all(|k| matches!(k, Outgoing::Other)) {
            return actions;
        }
        let _recording = self.recording.lock().await;
        let commitment = actions.iter().zip(&kinds).find_map(|(a, k)| match (a, k) {
            (Action::Send { message, .. }, Outgoing::Commitment) => Some(message.hash),
            _ => None,
        });
        if let Some(hash) = commitment
            && self.state() == DealingState::NotDealt
        {
            let next = self.record(hash).await;
            *self.state.lock().unwrap_or_else(|p| p.into_inner()) = next;
        }
        let send = self.state() == DealingState::Recorded;
        actions
            .into_iter()
            .zip(kinds)
            .filter(|(_, k)| send || matches!(k, Outgoing::Other))
            .map(|(a, _)| a)
            .collect()
    }

    async fn record(&self, commitment_message: [u8; 32]) -> DealingState {
        let record = DealingRecord {
            session_timestamp: self.session_timestamp,
            session_hash: self.session_hash,
            commitment_message,
        };
        let store = self.store.clone();
        let written = tokio::task::spawn_blocking(move || store.record_dealing(&record)).await;
        let session = self.session_timestamp;
        match written {
            Ok(Ok(())) => {
                info!(session, commitment = %hex::encode(commitment_message), "dealing recorded");
                DealingState::Recorded
            }
            Ok(Err(e @ StoreError::AlreadyDealt { .. })) => {
                error!(
                    session,
                    error = %e,
                    "NOT DEALING: this operator already dealt otherwise in this session; is another node running on this operator key?"
                );
                DealingState::Refused
            }
            Ok(Err(e)) => {
                error!(session, error = %e, "not dealing: the dealing could not be recorded");
                DealingState::Refused
            }
            Err(_) => {
                error!(session, "not dealing: the dealing could not be recorded");
                DealingState::Refused
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::OperatorKeys;
    use crate::store::SealingKey;
    use alloy_primitives::{Address, B256, Bytes};
    use kms_crypto::signer::SignatureScheme;
    use kms_protocol::dkg::wire::{CoinCommit, Dealing};

    const TS: u64 = 1_000;
    const SESSION: [u8; 32] = [7; 32];

    struct Operator {
        keys: OperatorKeys,
    }

    impl Operator {
        fn sign(&self, b: Body) -> Action {
            Action::Send {
                to: kms_protocol::dkg::Recipient::All,
                message: b.sign(self.keys.signer().as_ref()),
            }
        }

        fn dealing(&self, word: u8) -> Action {
            self.sign(Body::Dealing(Dealing {
                sessionTimestamp: TS,
                sessionHash: B256::from(SESSION),
                dealer: Address::from(*self.keys.address().as_bytes()),
                commitment: vec![Bytes::from(vec![word; 8])],
                constantBlinding: B256::ZERO,
                ephemeralKey: Bytes::from(vec![1u8; 8]),
                recipients: vec![B256::from([4u8; 32])],
                shareValues: vec![B256::from([2u8; 32])],
                shareBlindings: vec![],
            }))
        }

        fn coin(&self) -> Action {
            self.sign(Body::CoinCommit(CoinCommit {
                sessionTimestamp: TS,
                sessionHash: B256::from(SESSION),
                operator: Address::from(*self.keys.address().as_bytes()),
                commitment: B256::from([3u8; 32]),
            }))
        }
    }

    fn hashes(actions: &[Action]) -> Vec<[u8; 32]> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send { message, .. } => Some(message.hash),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_dealing_leaves_only_once_recorded_and_a_different_one_never_does() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            KeyStore::open(
                &dir.path().join("k.redb"),
                SealingKey::derive(b"op", b"ctx"),
            )
            .unwrap(),
        );
        let op = Operator {
            keys: OperatorKeys::generate(SignatureScheme::Bn254),
        };
        let me = op.keys.address();
        let guard = || DealingGuard::new(store.clone(), me, TS, SESSION);

        // Messages that are not the dealing go; the dealing is recorded, then goes.
        let first = guard();
        let out = first.screen(vec![op.coin()]).await;
        assert_eq!(hashes(&out), hashes(&[op.coin()]));
        assert_eq!(first.state(), DealingState::NotDealt);
        let dealing = vec![op.dealing(1)];
        let out = first.screen(dealing.clone()).await;
        assert_eq!(hashes(&out), hashes(&dealing));
        assert_eq!(first.state(), DealingState::Recorded);
        let recorded = store.dealing(TS).unwrap().expect("recorded");
        assert_eq!(recorded.commitment_message, hashes(&dealing)[0]);
        assert_eq!(recorded.session_hash, SESSION);
        // The same dealing again (a fetch answered, a retry) goes too.
        assert_eq!(
            hashes(&first.screen(dealing.clone()).await),
            hashes(&dealing)
        );

        // A restarted node dealing the same again sends it again.
        let again = guard();
        assert_eq!(
            hashes(&again.screen(dealing.clone()).await),
            hashes(&dealing)
        );
        assert_eq!(again.state(), DealingState::Recorded);

        // One dealing anything else sends none of it, now or later, and the record
        // stays.
        let other = guard();
        let out = other.screen(vec![op.dealing(2), op.coin()]).await;
        assert_eq!(hashes(&out), hashes(&[op.coin()]));
        assert_eq!(other.state(), DealingState::Refused);
        assert!(other.screen(dealing.clone()).await.is_empty());
        assert_eq!(store.dealing(TS).unwrap(), Some(recorded));
    }

    #[test]
    fn seeds_depend_on_the_operator_and_the_session() {
        let a = EngineSeeds::derive(b"operator a");
        assert_eq!(*a.for_session(&[1; 32]), *a.for_session(&[1; 32]));
        assert_eq!(
            *a.for_session(&[1; 32]),
            *EngineSeeds::derive(b"operator a").for_session(&[1; 32])
        );
        assert_ne!(*a.for_session(&[1; 32]), *a.for_session(&[2; 32]));
        assert_ne!(
            *a.for_session(&[1; 32]),
            *EngineSeeds::derive(b"operator b").for_session(&[1; 32])
        );
        assert_eq!(format!("{a:?}"), "EngineSeeds(<redacted>)");
    }
}

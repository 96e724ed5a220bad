//! Checking the signatures of v2 messages cheaply without checking less.
//!
//! A certified signature (`kms_crypto::signer::certified`) is a protocol key's Schnorr
//! signature with the operator key's certificate of that key. The certificate is what
//! is expensive (a BN254 pairing check) and the same in every message of a peer: it is
//! checked once against the peer's registered key and remembered in the node's
//! [`CertificateCache`]; after that only the Schnorr signature is checked, with the
//! key's precomputed tables.
//!
//! The Schnorr signatures themselves are checked in batches ([`verify_all`]): the
//! messages a node expects from every member at about the same time — a [`Wave`] —
//! are held in an [`Inbox`] and checked together, one multi-scalar multiplication
//! for all of them. A held message changes nothing until its batch verified.

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::OperatorAddress;
use kms_crypto::signer::certified::verify_batch;
use kms_crypto::signer::{OperatorSignature, OperatorVerifier};
use rand_core::{CryptoRng, RngCore};

use super::ids::MessageHash;
use super::wire::Body;

use crate::certificates::CertificateCache;
use crate::messages::SignedMessage;
use crate::session::{OperatorSet, SessionTimestamp};

/// Whether `m` is signed by its signer's registered key in `members`. A certified
/// signature's certificate must name the signer and cover the session (a key
/// certified for other sessions signs nothing here) and verify under the registered
/// key (looked up in, or added to, `certificates`).
pub fn verify_one(
    certificates: &CertificateCache,
    m: &SignedMessage,
    members: &[&OperatorSet],
    timestamp: SessionTimestamp,
) -> bool {
    let Some(participant) = members.iter().find_map(|s| s.participant(&m.signer)) else {
        return false;
    };
    match &m.signature {
        OperatorSignature::Certified(c) => {
            m.certificate_fits(&c.certificate, timestamp)
                && certificates.check(&participant.public_key, &c.certificate)
                && c.signature
                    .verify_prepared(&certificates.prepared(&c.certificate.key), &m.hash)
                    .is_ok()
        }
        _ => participant.public_key.verify(&m.hash, &m.signature).is_ok(),
    }
}

/// For each of `ms`, whether [`verify_one`] holds, with the Schnorr signatures of the
/// certified ones (certificate fits, checked) as one batch: one multi-scalar
/// multiplication over secp256k1 with random weights for all of them. If the batch
/// fails, each of its signatures is checked alone, so that a forged message is
/// dropped and the genuine ones beside it are kept.
pub fn verify_all<R: RngCore + CryptoRng + ?Sized>(
    certificates: &CertificateCache,
    ms: &[&SignedMessage],
    members: &[&OperatorSet],
    timestamp: SessionTimestamp,
    rng: &mut R,
) -> Vec<bool> {
    let mut valid = vec![false; ms.len()];
    // `(index, prepared key)` of the signatures that go into the batch.
    let mut batch = Vec::new();
    for (i, m) in ms.iter().enumerate() {
        let Some(participant) = members.iter().find_map(|s| s.participant(&m.signer)) else {
            continue;
        };
        match &m.signature {
            OperatorSignature::Certified(c) => {
                if m.certificate_fits(&c.certificate, timestamp)
                    && certificates.check(&participant.public_key, &c.certificate)
                {
                    batch.push((i, certificates.prepared(&c.certificate.key)));
                }
            }
            _ => valid[i] = participant.public_key.verify(&m.hash, &m.signature).is_ok(),
        }
    }
    let items: Vec<_> = batch
        .iter()
        .filter_map(|(i, k)| match &ms[*i].signature {
            OperatorSignature::Certified(c) => Some((k, &ms[*i].hash, &c.signature)),
            _ => None,
        })
        .collect();
    let batch_ok = verify_batch(&items, rng);
    for ((i, _), (k, hash, signature)) in batch.iter().zip(&items) {
        valid[*i] = batch_ok || signature.verify_prepared(k, hash).is_ok();
    }
    valid
}

/// Messages a node expects one of from every member of a set, at about the same
/// time: their signatures are checked together once all are in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wave {
    /// Every dealer's dealing.
    Dealings,
    /// Every player's acks.
    Acks,
    /// Every player's coin commitment.
    CoinCommits,
    /// Every player's coin reveal.
    CoinReveals,
    /// Every player's Pedersen public share.
    PublicShares,
    /// Every player's key announcement.
    Keys,
    /// Every player's list of keys held.
    KeysSeen,
    /// Every voter's vote of one step of one round of one instance.
    Votes {
        /// Agreement instance.
        instance: u8,
        /// Round.
        round: u32,
        /// Step (prevote, precommit).
        step: u8,
    },
}

impl Wave {
    /// The wave of a message; `None` for the kinds checked on arrival (proposals,
    /// complaints, fetches: a few per session, and others wait for them).
    pub fn of(body: &Body) -> Option<Self> {
        Some(match body {
            Body::Dealing(_) => Self::Dealings,
            Body::Acks(_) => Self::Acks,
            Body::CoinCommit(_) => Self::CoinCommits,
            Body::CoinReveal(_) => Self::CoinReveals,
            Body::PublicShare(_) => Self::PublicShares,
            Body::Key(_) => Self::Keys,
            Body::KeysSeen(_) => Self::KeysSeen,
            Body::Vote(v) => Self::Votes {
                instance: v.instance,
                round: v.round,
                step: v.step,
            },
            Body::Proposal(_) | Body::Complaint(_) | Body::Fetch(_) | Body::Recovery(_) => {
                return None;
            }
        })
    }

    /// Whether the dealers (not the players) send it.
    pub fn from_dealers(self) -> bool {
        self == Self::Dealings
    }
}

/// A message held for its wave's signature check; everything else about it was
/// checked on arrival.
pub struct Held {
    /// The message.
    pub message: SignedMessage,
    /// Its decoded payload.
    pub body: Body,
    /// Its author.
    pub author: OperatorAddress,
    /// Its hash.
    pub hash: MessageHash,
    /// Its wave.
    pub wave: Wave,
}

/// Messages held until their signatures are checked as one batch: when a wave is
/// complete (every member's message of it heard or held), when the oldest has waited
/// [`Inbox::deadline`], when the inbox is full, or when the engine needs one of
/// them. Nothing held influences the engine's state before its batch verified.
pub struct Inbox {
    held: Vec<Held>,
    /// Authors of the authentic messages of each wave.
    heard: BTreeMap<Wave, BTreeSet<OperatorAddress>>,
    oldest_ms: Option<u64>,
    window_ms: u64,
    cap: usize,
}

impl Inbox {
    /// An inbox holding at most `cap` messages, none longer than `window_ms`.
    pub fn new(cap: usize, window_ms: u64) -> Self {
        Self {
            held: Vec::new(),
            heard: BTreeMap::new(),
            oldest_ms: None,
            window_ms,
            cap: cap.max(1),
        }
    }

    /// Whether this very message (same hash and same signature) is held. A copy with
    /// another signature is held beside it: if one is forged, it cannot keep the
    /// genuine one out.
    pub fn holds(&self, m: &SignedMessage) -> bool {
        self.held
            .iter()
            .any(|h| h.message.hash == m.hash && h.message.signature == m.signature)
    }

    /// Whether a message with this hash is held (under any signature).
    pub fn holds_hash(&self, hash: &MessageHash) -> bool {
        self.held.iter().any(|h| h.hash == *hash)
    }

    /// Holds `h`; returns whether the inbox should be checked now: its wave is
    /// complete (`members` senders expected) or the inbox is full.
    pub fn hold(&mut self, h: Held, members: usize, now_ms: u64) -> bool {
        let wave = h.wave;
        self.oldest_ms.get_or_insert(now_ms);
        self.held.push(h);
        let mut authors: BTreeSet<OperatorAddress> =
            self.heard.get(&wave).cloned().unwrap_or_default();
        authors.extend(
            self.held
                .iter()
                .filter(|x| x.wave == wave)
                .map(|x| x.author),
        );
        authors.len() >= members || self.held.len() >= self.cap
    }

    /// Records an authentic message of `wave` by `author` (own messages too).
    pub fn heard(&mut self, wave: Wave, author: OperatorAddress) {
        self.heard.entry(wave).or_default().insert(author);
    }

    /// When the oldest held message must be checked.
    pub fn deadline(&self) -> Option<u64> {
        self.oldest_ms.map(|t| t + self.window_ms)
    }

    /// Whether anything is held.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Messages held for a batch.
    pub fn len(&self) -> usize {
        self.held.len()
    }

    /// Everything held, in order of arrival.
    pub fn take(&mut self) -> Vec<Held> {
        self.oldest_ms = None;
        std::mem::take(&mut self.held)
    }
}

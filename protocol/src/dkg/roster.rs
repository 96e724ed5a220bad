//! The roster: the encryption key each player's shares are encrypted to, *agreed*
//! (agreement instance 2) before anyone deals, so that what a session is does not
//! depend on which peers one node could reach or attest.
//!
//! Round 1: every player announces its key ([`KeyAnnouncement`], signed like every
//! message). Round 2: every player lists the announcements it holds from players it
//! admits ([`KeysSeen`]), once it holds every player's or at the key deadline. The
//! agreed value is a set of at least `q` lists of distinct players; the roster is the
//! union of the announcements they name, a player with two different announcements in
//! it being left out. Validity is objective (the lists and the announcements they
//! name exist and decode), so any honest proposer's value is valid at every honest
//! voter. An honest player connected within the key deadline is in every honest list,
//! and at least `q − (n − t) ≥ 1` of the agreed lists are honest: it is in the roster,
//! whatever a proposer leaves out. A Byzantine player can only keep itself out.

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::OperatorAddress;
use kms_crypto::vss::encryption::EncryptionPublicKey;

use super::ids::MessageHash;
use super::rejection::Rejection;
use super::wire::{KeyAnnouncement, KeysSeen, from_sol};

/// What a proposal's roster entries need that this node does not have yet.
#[derive(Debug, PartialEq, Eq)]
pub enum RosterCheck {
    /// Every list and every announcement it names is held and decodes: valid.
    Valid,
    /// Something is wrong whatever arrives later.
    Invalid,
    /// These messages are missing (fetch them).
    Missing(Vec<MessageHash>),
}

/// The agreed roster: per player in it, its announcement and key.
pub type Keys = BTreeMap<OperatorAddress, (MessageHash, EncryptionPublicKey)>;

/// One node's view of the roster.
#[derive(Default)]
pub struct Roster {
    /// Announcements held: `Some((player, key))`, or `None` for one whose key does
    /// not decode (a list naming it is invalid).
    keys: BTreeMap<MessageHash, Option<(OperatorAddress, EncryptionPublicKey)>>,
    /// First valid announcement per player.
    key_of: BTreeMap<OperatorAddress, MessageHash>,
    /// Lists held: hash → (player, announcements named).
    seen: BTreeMap<MessageHash, (OperatorAddress, Vec<MessageHash>)>,
    /// First list per player.
    seen_of: BTreeMap<OperatorAddress, MessageHash>,
    /// The agreed roster.
    decided: Option<Keys>,
}

impl Roster {
    /// Records an authenticated announcement.
    pub fn on_key(&mut self, hash: MessageHash, m: &KeyAnnouncement) -> Result<(), Rejection> {
        let player = from_sol(&m.player);
        match EncryptionPublicKey::from_eip2537(&m.key) {
            Ok(key) => {
                self.keys.insert(hash, Some((player, key)));
                match self.key_of.get(&player) {
                    None => {
                        self.key_of.insert(player, hash);
                        Ok(())
                    }
                    Some(h) if *h == hash => Ok(()),
                    // Kept for lists that name it; this node lists the first only.
                    Some(_) => Err(Rejection::Equivocation),
                }
            }
            Err(_) => {
                self.keys.insert(hash, None);
                Err(Rejection::InvalidPoint)
            }
        }
    }

    /// Records an authenticated list (at most one entry per player, sorted).
    pub fn on_seen(
        &mut self,
        hash: MessageHash,
        m: &KeysSeen,
        players: usize,
    ) -> Result<(), Rejection> {
        let entries: Vec<MessageHash> = m.keys.iter().map(|w| MessageHash(w.0)).collect();
        if entries.len() > players || entries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Rejection::WrongShape);
        }
        let player = from_sol(&m.player);
        self.seen.insert(hash, (player, entries));
        match self.seen_of.get(&player) {
            None => {
                self.seen_of.insert(player, hash);
                Ok(())
            }
            Some(h) if *h == hash => Ok(()),
            Some(_) => Err(Rejection::Equivocation),
        }
    }

    /// The announcements list `h` names that this node does not hold.
    pub fn missing_keys(&self, h: &MessageHash) -> Vec<MessageHash> {
        self.seen.get(h).map_or_else(Vec::new, |(_, named)| {
            named
                .iter()
                .filter(|k| !self.keys.contains_key(*k))
                .copied()
                .collect()
        })
    }

    /// Players with a valid announcement held.
    pub fn key_count(&self) -> usize {
        self.key_of.len()
    }

    /// Players whose list is held.
    pub fn seen_count(&self) -> usize {
        self.seen_of.len()
    }

    /// What this node lists, sorted: each player's first announcement or, with
    /// `admitted` (the keys its host's attestation of the peers bound), the first
    /// announcement of an admitted player whose key is the attested one.
    pub fn listing(
        &self,
        admitted: Option<&BTreeMap<OperatorAddress, EncryptionPublicKey>>,
    ) -> Vec<MessageHash> {
        let mut v: Vec<MessageHash> = match admitted {
            None => self.key_of.values().copied().collect(),
            Some(admitted) => {
                let mut chosen: BTreeMap<OperatorAddress, MessageHash> = BTreeMap::new();
                for (h, k) in &self.keys {
                    if let Some((p, key)) = k
                        && admitted.get(p) == Some(key)
                    {
                        chosen.entry(*p).or_insert(*h);
                    }
                }
                chosen.into_values().collect()
            }
        };
        v.sort();
        v
    }

    /// This node's proposal: the first list of each player whose announcements are
    /// all held, sorted.
    pub fn candidate(&self) -> Vec<MessageHash> {
        let mut v: Vec<MessageHash> = self
            .seen_of
            .values()
            .filter(|h| {
                self.seen[*h]
                    .1
                    .iter()
                    .all(|k| matches!(self.keys.get(k), Some(Some(_))))
            })
            .copied()
            .collect();
        v.sort();
        v
    }

    /// Checks a proposal's entries: at least `quorum` lists of distinct players,
    /// each naming only announcements that decode.
    pub fn check(&self, entries: &[MessageHash], quorum: usize) -> RosterCheck {
        if entries.len() < quorum || entries.windows(2).any(|w| w[0] >= w[1]) {
            return RosterCheck::Invalid;
        }
        let mut missing = Vec::new();
        let mut authors = BTreeSet::new();
        for h in entries {
            let Some((author, named)) = self.seen.get(h) else {
                missing.push(*h);
                continue;
            };
            if !authors.insert(*author) {
                return RosterCheck::Invalid;
            }
            for k in named {
                match self.keys.get(k) {
                    None => missing.push(*k),
                    Some(None) => return RosterCheck::Invalid,
                    Some(Some(_)) => {}
                }
            }
        }
        if missing.is_empty() {
            RosterCheck::Valid
        } else {
            missing.sort();
            missing.dedup();
            RosterCheck::Missing(missing)
        }
    }

    /// Fixes the roster from agreed entries (all held and valid: see
    /// [`Roster::check`]): the union of the announcements they name, without the
    /// players named with two different ones.
    pub fn decide(&mut self, entries: &[MessageHash]) -> Option<&Keys> {
        if self.decided.is_none() {
            let mut by_player: BTreeMap<OperatorAddress, BTreeSet<MessageHash>> = BTreeMap::new();
            for h in entries {
                for k in &self.seen.get(h)?.1 {
                    let (player, _) = self.keys.get(k)?.as_ref()?;
                    by_player.entry(*player).or_default().insert(*k);
                }
            }
            let keys: Keys = by_player
                .into_iter()
                .filter(|(_, hs)| hs.len() == 1)
                .filter_map(|(p, hs)| {
                    let h = *hs.first()?;
                    let (_, key) = self.keys.get(&h)?.as_ref()?;
                    Some((p, (h, *key)))
                })
                .collect();
            self.decided = Some(keys);
        }
        self.decided.as_ref()
    }

    /// The agreed roster, once decided.
    pub fn decided(&self) -> Option<&Keys> {
        self.decided.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkg::wire::{to_sol, word};
    use kms_crypto::vss::encryption::EncryptionSecretKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn op(i: u8) -> OperatorAddress {
        OperatorAddress::from_bytes([i; 20])
    }

    fn key(player: u8, rng: &mut ChaCha20Rng) -> KeyAnnouncement {
        KeyAnnouncement {
            sessionTimestamp: 1,
            sessionHash: word([0; 32]),
            player: to_sol(&op(player)),
            key: EncryptionSecretKey::generate(rng)
                .public_key()
                .to_eip2537()
                .to_vec()
                .into(),
        }
    }

    fn seen(player: u8, keys: &[MessageHash]) -> KeysSeen {
        let mut keys = keys.to_vec();
        keys.sort();
        KeysSeen {
            sessionTimestamp: 1,
            sessionHash: word([0; 32]),
            player: to_sol(&op(player)),
            keys: keys.iter().map(|h| word(h.0)).collect(),
        }
    }

    #[test]
    fn the_roster_is_the_union_of_the_agreed_lists_without_equivocators() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut r = Roster::default();
        let hs: Vec<MessageHash> = (1..=4u8).map(|i| MessageHash([i; 32])).collect();
        for (i, h) in hs.iter().enumerate() {
            r.on_key(*h, &key(i as u8 + 1, &mut rng)).unwrap();
        }
        // Player 4 announces a second key to someone.
        let second = MessageHash([9; 32]);
        assert_eq!(
            r.on_key(second, &key(4, &mut rng)),
            Err(Rejection::Equivocation)
        );
        // Lists: 1 and 2 saw 1..3 (player 3 only reached them late), 3 saw 1..4.
        let l1 = MessageHash([0x11; 32]);
        let l2 = MessageHash([0x12; 32]);
        let l3 = MessageHash([0x13; 32]);
        r.on_seen(l1, &seen(1, &hs[..3]), 4).unwrap();
        r.on_seen(l2, &seen(2, &[hs[0], hs[1], hs[2], second]), 4)
            .unwrap();
        r.on_seen(l3, &seen(3, &hs), 4).unwrap();
        let mut entries = vec![l1, l2, l3];
        entries.sort();
        assert_eq!(r.check(&entries, 3), RosterCheck::Valid);
        assert_eq!(r.check(&entries[..2], 3), RosterCheck::Invalid, "short");
        let keys = r.decide(&entries).unwrap();
        let players: Vec<_> = keys.keys().copied().collect();
        assert_eq!(players, vec![op(1), op(2), op(3)], "4 named with two keys");
        // Without the list naming the second key, player 4 is in.
        let mut r2 = Roster::default();
        for (i, h) in hs.iter().enumerate() {
            r2.on_key(*h, &key(i as u8 + 1, &mut rng)).unwrap();
        }
        r2.on_seen(l1, &seen(1, &hs[..3]), 4).unwrap();
        r2.on_seen(l3, &seen(3, &hs), 4).unwrap();
        let mut e2 = vec![l1, l3];
        e2.sort();
        assert_eq!(r2.decide(&e2).unwrap().len(), 4);
    }

    #[test]
    fn lists_naming_unknown_or_undecodable_keys_are_missing_or_invalid() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut r = Roster::default();
        let good = MessageHash([1; 32]);
        r.on_key(good, &key(1, &mut rng)).unwrap();
        let mut bad = key(2, &mut rng);
        bad.key = vec![0u8; 128].into();
        let bad_hash = MessageHash([2; 32]);
        assert_eq!(r.on_key(bad_hash, &bad), Err(Rejection::InvalidPoint));
        let unknown = MessageHash([3; 32]);
        let l1 = MessageHash([0x11; 32]);
        let l2 = MessageHash([0x12; 32]);
        r.on_seen(l1, &seen(1, &[good, unknown]), 4).unwrap();
        r.on_seen(l2, &seen(2, &[good, bad_hash]), 4).unwrap();
        assert_eq!(r.check(&[l1], 1), RosterCheck::Missing(vec![unknown]));
        assert_eq!(r.check(&[l2], 1), RosterCheck::Invalid);
        assert_eq!(
            r.check(&[l1, MessageHash([0x20; 32])], 1),
            RosterCheck::Missing(vec![unknown, MessageHash([0x20; 32])])
        );
        // A proposal names complete lists only.
        assert!(r.candidate().is_empty());
        // Unsorted or oversized lists are refused.
        let mut unsorted = seen(3, &[good]);
        unsorted.keys = vec![word([5; 32]), word([4; 32])];
        assert_eq!(
            r.on_seen(MessageHash([0x13; 32]), &unsorted, 4),
            Err(Rejection::WrongShape)
        );
    }
}

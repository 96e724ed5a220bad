//! The Pedersen base `H2`: a commit–reveal coin flip among the players whose result
//! is *agreed* (agreement instance 0) before anyone deals. The agreed value is the
//! set of reveals that count, so a reveal withheld, late or shown to only some nodes
//! changes at most whether its author's contribution is in the set — never which
//! base two honest nodes use. The seed may be biased by whoever proposes the set (it
//! chooses among subsets); that is harmless: `H2 = hash_to_G2(seed)` has an unknown
//! discrete logarithm whatever the seed, which is all Pedersen's binding needs.

use std::collections::BTreeMap;

use kms_crypto::OperatorAddress;
use kms_crypto::vss::coin::{self, CoinContribution};
use kms_crypto::vss::pedersen::PedersenBase;

use super::ids::{MessageHash, SessionHash};
use super::wire::{CoinCommit, CoinReveal};

/// What a proposal's coin entries need that this node does not have yet.
#[derive(Debug, PartialEq, Eq)]
pub enum CoinCheck {
    /// Every entry opens its commitment: valid.
    Valid,
    /// Something is wrong whatever arrives later.
    Invalid,
    /// These messages are missing (fetch them).
    Missing(Vec<MessageHash>),
}

/// One node's view of the coin flip.
pub struct CoinFlip {
    context: SessionHash,
    mine: CoinContribution,
    /// Commit messages: hash → (author, commitment).
    commits: BTreeMap<MessageHash, (OperatorAddress, [u8; 32])>,
    /// First commit per author.
    commit_of: BTreeMap<OperatorAddress, MessageHash>,
    /// Reveal messages: hash → (author, commit message, value).
    reveals: BTreeMap<MessageHash, (OperatorAddress, MessageHash, [u8; 32])>,
    /// First valid reveal per author.
    reveal_of: BTreeMap<OperatorAddress, MessageHash>,
}

impl CoinFlip {
    /// A coin flip with this node's fresh contribution.
    pub fn new(context: SessionHash, mine: CoinContribution) -> Self {
        Self {
            context,
            mine,
            commits: BTreeMap::new(),
            commit_of: BTreeMap::new(),
            reveals: BTreeMap::new(),
            reveal_of: BTreeMap::new(),
        }
    }

    /// This node's commitment.
    pub fn my_commitment(&self, me: &OperatorAddress) -> [u8; 32] {
        self.mine.commitment(&self.context.0, me)
    }

    /// This node's contribution (revealed in round 2).
    pub fn my_value(&self) -> [u8; 32] {
        self.mine.reveal()
    }

    /// Records an authenticated commit. Returns `false` for a second, different
    /// commit of the same author (kept for fetches, never counted).
    pub fn on_commit(&mut self, hash: MessageHash, m: &CoinCommit) -> bool {
        let author = super::wire::from_sol(&m.operator);
        self.commits.insert(hash, (author, m.commitment.0));
        match self.commit_of.get(&author) {
            None => {
                self.commit_of.insert(author, hash);
                true
            }
            Some(h) => *h == hash,
        }
    }

    /// Records an authenticated reveal (checked against its commit when the commit
    /// is known, here or at validation).
    pub fn on_reveal(&mut self, hash: MessageHash, m: &CoinReveal) {
        let author = super::wire::from_sol(&m.operator);
        let commit = MessageHash(m.commitMessage.0);
        self.reveals.insert(hash, (author, commit, m.value.0));
        if self.opens(&hash) == Some(true) {
            self.reveal_of.entry(author).or_insert(hash);
        }
    }

    /// Re-examines reveals that were waiting for their commit.
    pub fn settle(&mut self) {
        let hashes: Vec<_> = self.reveals.keys().copied().collect();
        for h in hashes {
            if self.opens(&h) == Some(true) {
                let author = self.reveals[&h].0;
                self.reveal_of.entry(author).or_insert(h);
            }
        }
    }

    /// Number of distinct commit authors.
    pub fn commit_count(&self) -> usize {
        self.commit_of.len()
    }

    /// Number of distinct authors with a valid reveal.
    pub fn reveal_count(&self) -> usize {
        self.reveal_of.len()
    }

    /// `Some(true)` if reveal `h` opens the commit it names (same author), `None` if
    /// either message is missing.
    fn opens(&self, h: &MessageHash) -> Option<bool> {
        let (author, commit, value) = self.reveals.get(h)?;
        let (c_author, commitment) = self.commits.get(commit)?;
        Some(c_author == author && coin::verify_reveal(commitment, &self.context.0, author, value))
    }

    /// This node's proposal: one valid reveal per author, sorted.
    pub fn candidate(&self) -> Vec<MessageHash> {
        let mut v: Vec<_> = self.reveal_of.values().copied().collect();
        v.sort();
        v
    }

    /// Checks a proposal's entries: at least `quorum` reveals of distinct authors,
    /// each opening its author's commit.
    pub fn check(&self, entries: &[MessageHash], quorum: usize) -> CoinCheck {
        if entries.len() < quorum || entries.windows(2).any(|w| w[0] >= w[1]) {
            return CoinCheck::Invalid;
        }
        let mut missing = Vec::new();
        let mut authors = std::collections::BTreeSet::new();
        for h in entries {
            match self.reveals.get(h) {
                None => missing.push(*h),
                Some((author, commit, _)) => {
                    if !authors.insert(*author) {
                        return CoinCheck::Invalid;
                    }
                    match self.opens(h) {
                        None => missing.push(*commit),
                        Some(false) => return CoinCheck::Invalid,
                        Some(true) => {}
                    }
                }
            }
        }
        if missing.is_empty() {
            CoinCheck::Valid
        } else {
            CoinCheck::Missing(missing)
        }
    }

    /// The base from agreed entries (all held and valid: see [`CoinFlip::check`]).
    pub fn base(&self, entries: &[MessageHash]) -> Option<PedersenBase> {
        let reveals: Vec<(OperatorAddress, [u8; 32])> = entries
            .iter()
            .map(|h| self.reveals.get(h).map(|(a, _, v)| (*a, *v)))
            .collect::<Option<_>>()?;
        let seed = coin::combine(&self.context.0, &reveals).ok()?;
        Some(PedersenBase::from_seed(&seed))
    }
}

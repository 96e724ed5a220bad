//! Where a v2 session stands at one node. Each phase names what the node waits for;
//! deadlines only bound the wait: a phase ends as soon as what it waits for is in.

/// The phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Players announce their encryption keys, say which they hold, and agree on the
    /// roster of keys that every dealer encrypts to (agreement instance 2); in
    /// Pedersen mode, at the same time, they commit to and reveal coin contributions
    /// and agree on the set of reveals that fixes `H2` (agreement instance 0).
    Setup,
    /// Dealers broadcast their dealings; players decrypt and check their shares and
    /// broadcast acks (or proven complaints).
    Deal,
    /// The players agree on the qualified dealings (agreement instance 1).
    Agree,
    /// Pedersen: players publish their public shares, from which any `t` give the
    /// public polynomial.
    PublicShares,
    /// The session ended at this node.
    Done,
}

impl Phase {
    /// Stable label (metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            Self::Setup => "setup",
            Self::Deal => "deal",
            Self::Agree => "agree",
            Self::PublicShares => "public_shares",
            Self::Done => "done",
        }
    }
}

/// The agreement instances of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum InstanceId {
    /// The coin-flip reveals (Pedersen).
    Coin = 0,
    /// The qualified dealings.
    Qual = 1,
    /// The roster: the key announcements dealers encrypt to.
    Roster = 2,
}

impl InstanceId {
    /// From the wire byte.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Coin),
            1 => Some(Self::Qual),
            2 => Some(Self::Roster),
            _ => None,
        }
    }
}

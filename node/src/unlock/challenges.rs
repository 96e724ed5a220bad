//! The locked node's outstanding unlock challenges, and who may ask for one.
//!
//! `GET /unlock` is unauthenticated. If a new challenge replaced the last one, anyone
//! who can reach the port could keep a node locked by asking again while its operator
//! answers. So each challenge stays answerable until it expires or is answered,
//! whatever else is asked for, and the asking is rate-limited per source:
//!
//! - [`Challenges`]: at most [`MAX_OUTSTANDING`] key pairs, each answerable once,
//!   for [`CHALLENGE_TTL_MS`]. A full set refuses new challenges; it never evicts
//!   one that can still be answered.
//! - [`ChallengeAdmission`]: [`CHALLENGE_BURST`] challenges per source, then one per
//!   [`CHALLENGE_REPLENISH`]. One source can thus hold at most
//!   `CHALLENGE_BURST + CHALLENGE_TTL_MS / CHALLENGE_REPLENISH` (fewer than
//!   [`MAX_OUTSTANDING`]) challenges at once: a script from one address can neither
//!   spend an operator's challenge nor fill the set. Each challenge costs a quote, so
//!   the limit also bounds that work.
//!
//! Sources are IPv4 addresses and IPv6 /64 prefixes (one host gets a whole /64).
//! Whoever relays every connection (the host) shares one source with everyone it
//! relays and can delay an unlock; it can also simply drop the traffic.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ring::agreement::EphemeralPrivateKey;

/// How long a challenge can be answered after it was issued.
pub const CHALLENGE_TTL_MS: u64 = 180_000;
/// Challenges outstanding at once, over all sources.
pub const MAX_OUTSTANDING: usize = 64;
/// Challenges one source may ask for at once.
pub const CHALLENGE_BURST: u32 = 8;
/// Time after which a source may ask for one more.
pub const CHALLENGE_REPLENISH: Duration = Duration::from_secs(30);
/// Sources whose rate state is kept; past this, sources idle long enough to be back
/// at a full burst are forgotten, and new ones are refused while none is.
const MAX_TRACKED_SOURCES: usize = 4096;

const _: () = assert!(
    (CHALLENGE_BURST as u64) + CHALLENGE_TTL_MS / (CHALLENGE_REPLENISH.as_secs() * 1000)
        < MAX_OUTSTANDING as u64,
    "one source must not be able to fill the outstanding challenges"
);

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unanswerable {
    /// Never issued, or already answered.
    Unknown,
    /// Issued, but longer ago than [`CHALLENGE_TTL_MS`].
    Expired,
}

/// Why no challenge is issued now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// This source asked too often.
    SourceRateLimited,
    /// [`MAX_OUTSTANDING`] challenges can still be answered.
    Full,
}

struct Outstanding {
    private: EphemeralPrivateKey,
    expires_ms: u64,
}

/// The challenges that can be answered, by node public key.
#[derive(Default)]
pub struct Challenges {
    open: HashMap<[u8; 32], Outstanding>,
}

impl Challenges {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the key pair `public` issued at `now_ms`, or refuses when the set is full
    /// of challenges that have not expired.
    pub fn issue(
        &mut self,
        public: [u8; 32],
        private: EphemeralPrivateKey,
        now_ms: u64,
    ) -> Result<(), Refused> {
        self.open.retain(|_, c| c.expires_ms > now_ms);
        if self.open.len() >= MAX_OUTSTANDING {
            return Err(Refused::Full);
        }
        self.open.insert(
            public,
            Outstanding {
                private,
                expires_ms: now_ms.saturating_add(CHALLENGE_TTL_MS),
            },
        );
        Ok(())
    }

    /// Removes a challenge that was issued but not handed out (its quote failed).
    pub fn withdraw(&mut self, public: &[u8; 32]) {
        self.open.remove(public);
    }

    /// The private key of challenge `public`, which is spent by this call whatever
    /// the outcome of the exchange.
    pub fn answer(
        &mut self,
        public: &[u8; 32],
        now_ms: u64,
    ) -> Result<EphemeralPrivateKey, Unanswerable> {
        let c = self.open.remove(public).ok_or(Unanswerable::Unknown)?;
        if c.expires_ms <= now_ms {
            return Err(Unanswerable::Expired);
        }
        Ok(c.private)
    }

    /// Challenges held (expired ones included until the next [`Challenges::issue`]).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

/// The per-source rate limit of `GET /unlock`.
pub struct ChallengeAdmission {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for ChallengeAdmission {
    fn default() -> Self {
        Self::new()
    }
}

impl ChallengeAdmission {
    /// [`CHALLENGE_BURST`] per source, one more per [`CHALLENGE_REPLENISH`].
    pub fn new() -> Self {
        let quota = Quota::with_period(CHALLENGE_REPLENISH)
            .expect("a positive period")
            .allow_burst(NonZeroU32::new(CHALLENGE_BURST).expect("a positive burst"));
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Whether `source` may have one more challenge now.
    pub fn admit(&self, source: IpAddr) -> Result<(), Refused> {
        let source = source_of(source);
        if self.limiter.len() >= MAX_TRACKED_SOURCES {
            self.limiter.retain_recent();
            if self.limiter.len() >= MAX_TRACKED_SOURCES {
                return Err(Refused::SourceRateLimited);
            }
        }
        self.limiter
            .check_key(&source)
            .map_err(|_| Refused::SourceRateLimited)
    }
}

/// The rate-limited unit an address belongs to: itself (IPv4, IPv4-mapped IPv6) or
/// its /64 prefix (IPv6, where one host is routinely given a whole /64).
fn source_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::agreement::X25519;

    fn key(n: u8) -> ([u8; 32], EphemeralPrivateKey) {
        let private = EphemeralPrivateKey::generate(&X25519, &ring::rand::SystemRandom::new())
            .expect("key generation");
        ([n; 32], private)
    }

    #[test]
    fn a_challenge_is_answerable_once_until_it_expires_whatever_is_issued_after_it() {
        let mut c = Challenges::new();
        let (first, k) = key(1);
        c.issue(first, k, 1_000).unwrap();
        for n in 2..(MAX_OUTSTANDING as u8) {
            let (p, k) = key(n);
            c.issue(p, k, 2_000).unwrap();
        }
        assert!(c.answer(&first, 1_000 + CHALLENGE_TTL_MS - 1).is_ok());
        assert_eq!(
            c.answer(&first, 1_000).err(),
            Some(Unanswerable::Unknown),
            "used"
        );
        let (late, k) = key(200);
        c.issue(late, k, 5_000).unwrap();
        assert_eq!(
            c.answer(&late, 5_000 + CHALLENGE_TTL_MS).err(),
            Some(Unanswerable::Expired)
        );
        assert_eq!(c.answer(&[0; 32], 5_000).err(), Some(Unanswerable::Unknown));
    }

    #[test]
    fn a_full_set_refuses_new_challenges_and_makes_room_as_they_expire() {
        let mut c = Challenges::new();
        for n in 0..MAX_OUTSTANDING as u8 {
            let (p, k) = key(n);
            c.issue(p, k, 0).unwrap();
        }
        let (extra, k) = key(250);
        assert_eq!(c.issue(extra, k, CHALLENGE_TTL_MS - 1), Err(Refused::Full));
        // Every outstanding one is still answerable: nothing was evicted.
        assert!(c.answer(&[0; 32], CHALLENGE_TTL_MS - 1).is_ok());
        let (extra, k) = key(250);
        c.issue(extra, k, CHALLENGE_TTL_MS).unwrap();
        assert_eq!(c.len(), 1, "the expired ones are gone");
        c.withdraw(&extra);
        assert!(c.is_empty());
    }

    #[test]
    fn a_source_gets_its_burst_then_waits_and_others_are_not_affected() {
        let a = ChallengeAdmission::new();
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..CHALLENGE_BURST {
            a.admit(one).unwrap();
        }
        assert_eq!(a.admit(one), Err(Refused::SourceRateLimited));
        assert_eq!(
            a.admit("::ffff:192.0.2.1".parse().unwrap()),
            Err(Refused::SourceRateLimited),
            "the same host over IPv6-mapped addressing"
        );
        a.admit("192.0.2.2".parse().unwrap()).unwrap();
        let v6: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        for _ in 0..CHALLENGE_BURST {
            a.admit(v6).unwrap();
        }
        assert_eq!(
            a.admit("2001:db8:1:2:ffff::9".parse().unwrap()),
            Err(Refused::SourceRateLimited),
            "another address of the same /64"
        );
        a.admit("2001:db8:1:3::1".parse().unwrap()).unwrap();
    }
}

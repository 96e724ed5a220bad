//! Nonces seen by the key-release endpoints, each remembered until the request that
//! carried it would be refused anyway (its attestation is stale, its owner signature
//! expired). Per node, in memory, bounded: a restart forgets them, but a replay after
//! a restart still needs a request that is fresh, and what it obtains is sealed to
//! the one-time key of whoever made the request.

use std::collections::HashMap;

/// Which endpoint a nonce was used at: a nonce used at one does not block the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NonceScope {
    /// `POST /secrets`.
    Secrets,
    /// `POST /app/sign` with an attestation.
    AttestedSign,
    /// `POST /app/sign` signed by the app owner.
    OwnerSign,
}

/// Why a nonce is not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceRefusal {
    /// Seen before and not yet expired.
    Reused,
    /// The store is full of unexpired nonces.
    Full,
}

/// Nonces seen, each with the unix second after which it may be forgotten.
pub struct Nonces {
    seen: HashMap<(NonceScope, Vec<u8>), u64>,
    max: usize,
}

impl Nonces {
    /// At most `max` unexpired nonces at once.
    pub fn new(max: usize) -> Self {
        Self {
            seen: HashMap::new(),
            max: max.max(1),
        }
    }

    /// Accepts `nonce` once in `scope` until `expires`.
    pub fn insert(
        &mut self,
        scope: NonceScope,
        nonce: &[u8],
        expires: u64,
        now: u64,
    ) -> Result<(), NonceRefusal> {
        let key = (scope, nonce.to_vec());
        if self.seen.get(&key).is_some_and(|&e| e >= now) {
            return Err(NonceRefusal::Reused);
        }
        if self.seen.len() >= self.max {
            self.seen.retain(|_, e| *e >= now);
        }
        if self.seen.len() >= self.max {
            return Err(NonceRefusal::Full);
        }
        self.seen.insert(key, expires);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_per_scope_until_it_expires() {
        let mut n = Nonces::new(3);
        let s = NonceScope::Secrets;
        n.insert(s, &[1], 100, 50).unwrap();
        assert_eq!(n.insert(s, &[1], 100, 60), Err(NonceRefusal::Reused));
        // Another endpoint's nonce space.
        n.insert(NonceScope::OwnerSign, &[1], 100, 60).unwrap();
        n.insert(s, &[2], 100, 60).unwrap();
        assert_eq!(n.insert(s, &[3], 100, 60), Err(NonceRefusal::Full));
        // Expired entries make room, and an expired nonce may be used again (its
        // request would be refused as stale before it gets here).
        n.insert(s, &[3], 300, 200).unwrap();
        n.insert(s, &[1], 300, 200).unwrap();
    }
}

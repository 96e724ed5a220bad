//! Where the verifier gets collateral, and how long it is kept.
//!
//! A [`CollateralSource`] hands the verifier the parsed [`Collateral`] for a
//! quote's platform. [`CachingCollateralSource`] keeps each FMSPC/CA's
//! collateral until it expires, so a request never pays for fetching or
//! parsing collateral that has not changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use super::collateral::{Collateral, CollateralKey, PckCa};
use crate::error::Error;

/// Gives the verifier the collateral for a platform at a verification time.
/// Implementations cache: this is called for every quote.
pub trait CollateralSource: Send + Sync {
    /// The collateral for `key`, current at `now` if the source can tell.
    fn collateral(&self, key: &CollateralKey, now: u64) -> Result<Arc<Collateral>, Error>;
}

impl<T: CollateralSource + ?Sized> CollateralSource for Arc<T> {
    fn collateral(&self, key: &CollateralKey, now: u64) -> Result<Arc<Collateral>, Error> {
        (**self).collateral(key, now)
    }
}

/// One collateral for every quote (the `attest verify --collateral FILE` case).
/// A quote from another platform family is refused by the verifier as a mismatch.
#[derive(Debug, Clone)]
pub struct StaticCollateral(Arc<Collateral>);

impl StaticCollateral {
    /// Serves `collateral` for every key.
    pub fn new(collateral: Collateral) -> Self {
        StaticCollateral(Arc::new(collateral))
    }
}

impl CollateralSource for StaticCollateral {
    fn collateral(&self, _key: &CollateralKey, _now: u64) -> Result<Arc<Collateral>, Error> {
        Ok(self.0.clone())
    }
}

/// A fixed set of collateral, filed by FMSPC and CA (offline operation).
#[derive(Debug, Clone, Default)]
pub struct CollateralSet {
    entries: HashMap<CollateralKey, Arc<Collateral>>,
}

impl CollateralSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Files `collateral` under its FMSPC and its CRL's CA (`processor` when the
    /// CA cannot be recognised). Replaces collateral for the same key.
    pub fn insert(&mut self, collateral: Collateral) {
        let key = CollateralKey {
            fmspc: collateral.fmspc(),
            ca: collateral.pck_ca().unwrap_or(PckCa::Processor),
        };
        self.entries.insert(key, Arc::new(collateral));
    }
}

impl CollateralSource for CollateralSet {
    fn collateral(&self, key: &CollateralKey, _now: u64) -> Result<Arc<Collateral>, Error> {
        self.entries
            .get(key)
            .cloned()
            .ok_or_else(|| Error::CollateralUnavailable {
                key: key.to_string(),
                detail: "not in the configured collateral set".into(),
            })
    }
}

/// Obtains fresh collateral for a platform (from PCCS, from a directory...).
pub trait CollateralFetcher: Send + Sync {
    /// Fetches and parses the current collateral for `key`.
    fn fetch(&self, key: &CollateralKey) -> Result<Collateral, Error>;
}

/// Reads collateral from `DIR/<FMSPC>-<ca>.json` (for example
/// `B0C06F000000-processor.json`), falling back to `DIR/<FMSPC>.json`. An
/// operator (or a cron job) refreshes the files; with [`CachingCollateralSource`]
/// they are re-read once the cached copy passes its `nextUpdate`.
#[derive(Debug, Clone)]
pub struct CollateralDir {
    dir: PathBuf,
}

impl CollateralDir {
    /// Collateral files in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CollateralDir { dir: dir.into() }
    }
}

impl CollateralFetcher for CollateralDir {
    fn fetch(&self, key: &CollateralKey) -> Result<Collateral, Error> {
        let fmspc = hex::encode_upper(key.fmspc);
        let candidates = [
            self.dir.join(format!("{fmspc}-{}.json", key.ca.as_str())),
            self.dir.join(format!("{fmspc}.json")),
        ];
        let path = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
            Error::CollateralUnavailable {
                key: key.to_string(),
                detail: format!("no collateral file in {}", self.dir.display()),
            }
        })?;
        Collateral::from_file(path)
    }
}

/// Caches fetched collateral per FMSPC/CA until it expires (the earliest
/// `nextUpdate` of TCB info, QE identity and CRLs), then fetches again. Concurrent misses for the same source fetch once.
pub struct CachingCollateralSource<F> {
    fetcher: F,
    entries: RwLock<HashMap<CollateralKey, Arc<Collateral>>>,
    fetching: Mutex<()>,
}

impl<F: CollateralFetcher> CachingCollateralSource<F> {
    /// A cache in front of `fetcher`.
    pub fn new(fetcher: F) -> Self {
        CachingCollateralSource {
            fetcher,
            entries: RwLock::new(HashMap::new()),
            fetching: Mutex::new(()),
        }
    }

    fn cached(&self, key: &CollateralKey, now: u64) -> Option<Arc<Collateral>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|c| now <= c.valid_until()).cloned()
    }
}

impl<F: CollateralFetcher> CollateralSource for CachingCollateralSource<F> {
    fn collateral(&self, key: &CollateralKey, now: u64) -> Result<Arc<Collateral>, Error> {
        if let Some(hit) = self.cached(key, now) {
            return Ok(hit);
        }
        let _guard = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        // Another caller may have fetched while this one waited.
        if let Some(hit) = self.cached(key, now) {
            return Ok(hit);
        }
        let fresh = Arc::new(self.fetcher.fetch(key)?);
        self.entries
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(*key, fresh.clone());
        Ok(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const COLLATERAL: &[u8] = include_bytes!("../../tests/data/tdx_quote_collateral.json");

    struct CountingFetcher {
        calls: AtomicUsize,
        collateral: Collateral,
    }

    impl CollateralFetcher for CountingFetcher {
        fn fetch(&self, _key: &CollateralKey) -> Result<Collateral, Error> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            Ok(self.collateral.clone())
        }
    }

    #[test]
    fn cache_keeps_collateral_until_next_update() {
        let collateral = Collateral::from_json(COLLATERAL).unwrap();
        let next_update = collateral.valid_until();
        let source = CachingCollateralSource::new(CountingFetcher {
            calls: AtomicUsize::new(0),
            collateral,
        });
        let key = CollateralKey {
            fmspc: [0xb0, 0xc0, 0x6f, 0, 0, 0],
            ca: PckCa::Processor,
        };
        let a = source.collateral(&key, next_update - 10).unwrap();
        let b = source.collateral(&key, next_update).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(source.fetcher.calls.load(Ordering::SeqCst), 1);
        source.collateral(&key, next_update + 1).unwrap();
        assert_eq!(source.fetcher.calls.load(Ordering::SeqCst), 2);
        let other = CollateralKey {
            ca: PckCa::Platform,
            ..key
        };
        source.collateral(&other, next_update - 10).unwrap();
        assert_eq!(source.fetcher.calls.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn collateral_dir_and_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("B0C06F000000.json"), COLLATERAL).unwrap();
        let collateral = Collateral::from_json(COLLATERAL).unwrap();
        let key = CollateralKey {
            fmspc: collateral.fmspc(),
            ca: collateral.pck_ca().unwrap(),
        };
        let fetched = CollateralDir::new(dir.path()).fetch(&key).unwrap();
        assert_eq!(fetched.id(), collateral.id());
        let missing = CollateralKey {
            fmspc: [0; 6],
            ..key
        };
        assert_eq!(
            CollateralDir::new(dir.path())
                .fetch(&missing)
                .unwrap_err()
                .kind(),
            "collateral_unavailable"
        );
        let mut set = CollateralSet::new();
        set.insert(collateral);
        assert!(set.collateral(&key, 0).is_ok());
        assert_eq!(
            set.collateral(&missing, 0).unwrap_err().kind(),
            "collateral_unavailable"
        );
    }
}

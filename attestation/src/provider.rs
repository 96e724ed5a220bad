//! The node's own evidence: a quote over `report_data` of the node's choosing.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Error;
use crate::simulated::encode_simulated_quote;
use crate::verified::{REPORT_DATA_LEN, TdMeasurements};
use crate::verifier::Evidence;

/// Where Linux exposes configfs-tsm quote generation.
pub const CONFIGFS_TSM_REPORT: &str = "/sys/kernel/config/tsm/report";

/// Produces evidence that this TD (or, in insecure-dev, a simulation of it)
/// bound `report_data`.
pub trait QuoteProvider: Send + Sync {
    /// Evidence over `report_data`.
    fn quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Evidence, Error>;

    /// Whether the evidence is simulated (insecure-dev): callers announce it in
    /// logs and health output.
    fn is_simulated(&self) -> bool;
}

/// Generates real TDX quotes through the kernel's configfs-tsm interface: create
/// a report entry, write `inblob`, read `outblob`, remove the entry. Each call
/// uses its own entry, so concurrent callers do not see each other's data; the
/// entry's `generation` counter is checked to detect any other writer.
#[derive(Debug)]
pub struct ConfigfsTsmProvider {
    root: PathBuf,
    next_entry: AtomicU64,
}

impl Default for ConfigfsTsmProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl ConfigfsTsmProvider {
    /// A provider using [`CONFIGFS_TSM_REPORT`].
    pub fn new() -> Self {
        Self::with_root(CONFIGFS_TSM_REPORT)
    }

    /// A provider using another configfs-tsm report directory (tests, chroots).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        ConfigfsTsmProvider {
            root: root.into(),
            next_entry: AtomicU64::new(0),
        }
    }

    /// Whether the report directory exists (configfs mounted, TSM driver loaded).
    pub fn is_available(&self) -> bool {
        self.root.is_dir()
    }

    fn generate(
        &self,
        entry: &Path,
        report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<Vec<u8>, Error> {
        let fail = |what: &str, path: &Path, e: std::io::Error| Error::QuoteGeneration {
            detail: format!("{what} {}: {e}", path.display()),
        };
        // A report entry served by another TSM provider (SEV-SNP, ...) would
        // produce evidence this crate cannot verify.
        let provider = entry.join("provider");
        if let Ok(name) = fs::read_to_string(&provider)
            && name.trim() != "tdx_guest"
        {
            return Err(Error::QuoteGeneration {
                detail: format!("{} is {:?}, not tdx_guest", provider.display(), name.trim()),
            });
        }
        let inblob = entry.join("inblob");
        fs::write(&inblob, report_data).map_err(|e| fail("cannot write", &inblob, e))?;
        let generation = read_generation(entry);
        let outblob = entry.join("outblob");
        let quote = fs::read(&outblob).map_err(|e| fail("cannot read", &outblob, e))?;
        if read_generation(entry) != generation {
            return Err(Error::QuoteGeneration {
                detail: format!("{} was written concurrently", entry.display()),
            });
        }
        if quote.is_empty() {
            return Err(Error::QuoteGeneration {
                detail: format!("{} is empty", outblob.display()),
            });
        }
        Ok(quote)
    }
}

fn read_generation(entry: &Path) -> Option<u64> {
    fs::read_to_string(entry.join("generation"))
        .ok()
        .and_then(|g| g.trim().parse().ok())
}

impl QuoteProvider for ConfigfsTsmProvider {
    fn quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Evidence, Error> {
        let name = format!(
            "eigenkms-{}-{}",
            std::process::id(),
            self.next_entry.fetch_add(1, Ordering::Relaxed)
        );
        let entry = self.root.join(name);
        fs::create_dir(&entry).map_err(|e| Error::QuoteGeneration {
            detail: format!(
                "cannot create {} ({e}); is this a TDX guest with configfs-tsm mounted?",
                entry.display()
            ),
        })?;
        let result = self.generate(&entry, report_data);
        // configfs removes the entry's attribute files with the directory. A
        // failure here leaks one kernel object and does not affect the quote.
        let _ = fs::remove_dir(&entry);
        result.map(Evidence::Dcap)
    }

    fn is_simulated(&self) -> bool {
        false
    }
}

/// Produces simulated quotes for insecure-dev deployments (see
/// [`crate::simulated`]). Anyone can produce the same bytes: never use it where
/// secrets matter.
#[derive(Debug, Clone)]
pub struct SimulatedProvider {
    measurements: TdMeasurements,
}

impl SimulatedProvider {
    /// A provider that claims `measurements` (for example the development
    /// image's expected values, so the allow-list logic is exercised).
    pub fn new(measurements: TdMeasurements) -> Self {
        SimulatedProvider { measurements }
    }
}

impl QuoteProvider for SimulatedProvider {
    fn quote(&self, report_data: &[u8; REPORT_DATA_LEN]) -> Result<Evidence, Error> {
        Ok(Evidence::Simulated(encode_simulated_quote(
            &self.measurements,
            report_data,
        )))
    }

    fn is_simulated(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configfs_missing_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let provider = ConfigfsTsmProvider::with_root(dir.path().join("no-tsm"));
        assert!(!provider.is_available());
        let err = provider.quote(&[0; 64]).unwrap_err();
        assert_eq!(err.kind(), "quote_generation");
        assert!(err.to_string().contains("configfs-tsm"), "{err}");
    }

    #[test]
    fn configfs_protocol_writes_inblob_then_reads_outblob() {
        // A plain directory stands in for configfs: the entry is created and
        // inblob written, but no kernel produces outblob.
        let dir = tempfile::tempdir().unwrap();
        let provider = ConfigfsTsmProvider::with_root(dir.path());
        assert!(provider.is_available());
        let err = provider.quote(&[7; 64]).unwrap_err();
        assert_eq!(err.kind(), "quote_generation");
        assert!(err.to_string().contains("outblob"), "{err}");
        let entry = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(
            std::fs::read(entry.path().join("inblob")).unwrap(),
            vec![7; 64]
        );
    }

    #[test]
    fn configfs_refuses_other_tsm_providers() {
        let dir = tempfile::tempdir().unwrap();
        let provider = ConfigfsTsmProvider::with_root(dir.path());
        let entry = dir.path().join("pre");
        std::fs::create_dir(&entry).unwrap();
        std::fs::write(entry.join("provider"), "sev_guest\n").unwrap();
        let err = provider.generate(&entry, &[0; 64]).unwrap_err();
        assert!(err.to_string().contains("not tdx_guest"), "{err}");
    }

    #[test]
    fn simulated_provider_marks_its_quotes() {
        let provider = SimulatedProvider::new(TdMeasurements {
            mrtd: [1; 48],
            rtmr: [[2; 48]; 4],
        });
        assert!(provider.is_simulated());
        let Evidence::Simulated(quote) = provider.quote(&[3; 64]).unwrap() else {
            panic!("not simulated");
        };
        assert!(crate::simulated::is_simulated(&quote));
    }
}

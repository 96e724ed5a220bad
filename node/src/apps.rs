//! The app registry behind `/secrets` and `/app/sign`: which applications exist, what
//! they receive (a public environment in clear and an environment IBE-encrypted to the
//! app ID, returned as registered), and who may receive the app's key material. An
//! app's registration names its authorization methods:
//! - **attestation**: the builds (MRTD, RTMR0–3) listed here or for the app in the
//!   attestation policy file; a TD running one of them gets `/secrets` and, sealed to
//!   its attested one-time key, `/app/sign`;
//! - **owner**: an Ethereum address whose EIP-712 signature authorizes `/app/sign`
//!   (`owner = "0x…"`). Leave it out for an app whose key only its TEE may hold.
//!
//! An app with neither gets nothing.
//!
//! File format (TOML, `[secrets] apps_file`):
//!
//! ```toml
//! [[apps]]
//! app_id = "my-app"
//! public_env = "LOG_LEVEL=info"
//! encrypted_env = "454b4d5301…"   # hex of `kms-client encrypt --app-id my-app`
//! owner = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"   # optional
//! [[apps.builds]]
//! mrtd = "<96 hex>"
//! rtmr = ["<96 hex>", "<96 hex>", "<96 hex>", "<96 hex>"]
//! ```
//!
//! Builds listed for the app in the attestation policy file (`apps`) are allowed too.
//!
//! Reloading: the file is read at start and re-read, when a request arrives, at most
//! every `secrets.reload_secs`. A file that does not exist counts as empty (no apps:
//! nothing is released). A file that exists but does not parse is logged and the
//! previous registry stays in force (at start: empty).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kms_attestation::TdMeasurements;
use kms_crypto::{OperatorAddress, ibe};
use kms_protocol::api::MAX_APP_ID_BYTES;
use serde::Deserialize;

/// Largest registry file read (bytes).
pub const MAX_APPS_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One registered application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// Returned in clear.
    pub public_env: String,
    /// Hex of an IBE ciphertext to the app ID (lower case, no `0x`); empty = none.
    pub encrypted_env: String,
    /// Builds allowed to receive the environment and the partial signature.
    pub builds: Vec<TdMeasurements>,
    /// The owner's Ethereum address, if owner-signed `/app/sign` requests are allowed.
    pub owner: Option<OperatorAddress>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppsFile {
    #[serde(default)]
    apps: Vec<AppEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AppEntry {
    app_id: String,
    #[serde(default)]
    public_env: String,
    #[serde(default)]
    encrypted_env: String,
    #[serde(default)]
    builds: Vec<TdMeasurements>,
    #[serde(default)]
    owner: Option<OperatorAddress>,
}

/// Parses and checks a registry: app IDs 1–256 bytes and unique, `encrypted_env`
/// hex of something shaped like an IBE ciphertext.
pub fn parse_apps(text: &str) -> Result<BTreeMap<String, App>, String> {
    let file: AppsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for e in file.apps {
        if e.app_id.is_empty() || e.app_id.len() > MAX_APP_ID_BYTES {
            return Err(format!(
                "app_id must be 1 to {MAX_APP_ID_BYTES} bytes (app {:?})",
                e.app_id
            ));
        }
        let hex_text = e
            .encrypted_env
            .strip_prefix("0x")
            .unwrap_or(&e.encrypted_env);
        let ct = hex::decode(hex_text)
            .map_err(|_| format!("app {}: encrypted_env is not hex", e.app_id))?;
        if !ct.is_empty()
            && (ct.len() < ibe::OVERHEAD || &ct[..4] != ibe::MAGIC || ct[4] != ibe::VERSION)
        {
            return Err(format!(
                "app {}: encrypted_env is not an EigenKMS IBE ciphertext",
                e.app_id
            ));
        }
        let app = App {
            public_env: e.public_env,
            encrypted_env: hex::encode(&ct),
            builds: e.builds,
            owner: e.owner,
        };
        if app.owner.is_some_and(|o| o.is_zero()) {
            return Err(format!("app {}: owner is the zero address", e.app_id));
        }
        if out.insert(e.app_id.clone(), app).is_some() {
            return Err(format!("app {} is listed twice", e.app_id));
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Result<BTreeMap<String, App>, String> {
    if path.as_os_str().is_empty() {
        return Ok(BTreeMap::new());
    }
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.to_string()),
        Ok(m) if m.len() > MAX_APPS_FILE_BYTES => {
            return Err(format!("larger than {MAX_APPS_FILE_BYTES} bytes"));
        }
        Ok(_) => {}
    }
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    parse_apps(&text)
}

struct Loaded {
    at: Instant,
    apps: Arc<BTreeMap<String, App>>,
}

/// The registry, re-read at most every `reload` interval.
pub struct AppRegistry {
    path: PathBuf,
    reload: Duration,
    loaded: RwLock<Loaded>,
}

impl AppRegistry {
    /// Reads `path` now (empty path: no apps). A file that does not parse is logged and
    /// the registry starts empty; it is tried again after `reload`.
    pub fn new(path: PathBuf, reload: Duration) -> Self {
        let apps = match read(&path) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(file = %path.display(), "secrets.apps_file: {e}; no apps until it is fixed");
                BTreeMap::new()
            }
        };
        if !path.as_os_str().is_empty() && !path.exists() {
            tracing::warn!(file = %path.display(), "secrets.apps_file does not exist (yet): no apps");
        }
        Self {
            path,
            reload,
            loaded: RwLock::new(Loaded {
                at: Instant::now(),
                apps: Arc::new(apps),
            }),
        }
    }

    /// The current registry, re-reading the file if the last read is older than the
    /// reload interval.
    pub fn current(&self) -> Arc<BTreeMap<String, App>> {
        {
            let l = self.loaded.read().unwrap_or_else(|p| p.into_inner());
            if l.at.elapsed() < self.reload || self.path.as_os_str().is_empty() {
                return l.apps.clone();
            }
        }
        let mut l = self.loaded.write().unwrap_or_else(|p| p.into_inner());
        if l.at.elapsed() >= self.reload {
            match read(&self.path) {
                Ok(apps) => l.apps = Arc::new(apps),
                Err(e) => tracing::error!(
                    file = %self.path.display(),
                    "secrets.apps_file: {e}; keeping the previous registry"
                ),
            }
            l.at = Instant::now();
        }
        l.apps.clone()
    }

    /// One app, if registered.
    pub fn get(&self, app_id: &str) -> Option<App> {
        self.current().get(app_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(b: u8) -> String {
        hex::encode([b; 48])
    }

    #[test]
    fn parses_and_checks() {
        let ct = [&ibe::MAGIC[..], &[ibe::VERSION], &[0u8; ibe::OVERHEAD]].concat();
        let text = format!(
            "[[apps]]\napp_id = \"a\"\npublic_env = \"X=1\"\nencrypted_env = \"0x{}\"\n\
             [[apps.builds]]\nmrtd = \"{}\"\nrtmr = [\"{}\", \"{}\", \"{}\", \"{}\"]\n\
             [[apps]]\napp_id = \"b\"\n",
            hex::encode(&ct),
            m(1),
            m(2),
            m(3),
            m(4),
            m(5)
        );
        let apps = parse_apps(&text).unwrap();
        assert_eq!(apps["a"].builds[0].mrtd, [1; 48]);
        assert_eq!(apps["a"].encrypted_env, hex::encode(&ct));
        assert_eq!(apps["b"].encrypted_env, "");
        assert!(parse_apps("[[apps]]\napp_id = \"\"\n").is_err());
        assert!(parse_apps("[[apps]]\napp_id = \"a\"\nencrypted_env = \"zz\"\n").is_err());
        assert!(parse_apps("[[apps]]\napp_id = \"a\"\nencrypted_env = \"0011\"\n").is_err());
        assert!(parse_apps("[[apps]]\napp_id = \"a\"\n[[apps]]\napp_id = \"a\"\n").is_err());
        assert!(parse_apps("[[apps]]\napp_id = \"a\"\nextra = 1\n").is_err());
        let owned = parse_apps(&format!(
            "[[apps]]\napp_id = \"o\"\nowner = \"0x{}\"\n",
            "ab".repeat(20)
        ))
        .unwrap();
        assert_eq!(
            owned["o"].owner,
            Some(OperatorAddress::from_bytes([0xab; 20]))
        );
        assert_eq!(apps["a"].owner, None);
        assert!(
            parse_apps(&format!(
                "[[apps]]\napp_id = \"o\"\nowner = \"0x{}\"\n",
                "00".repeat(20)
            ))
            .is_err()
        );
        assert!(parse_apps("[[apps]]\napp_id = \"o\"\nowner = \"0x12\"\n").is_err());
        assert!(parse_apps("").unwrap().is_empty());
    }

    #[test]
    fn reloads_and_keeps_the_previous_registry_on_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("apps.toml");
        let r = AppRegistry::new(p.clone(), Duration::from_millis(1));
        assert!(r.get("a").is_none());
        std::fs::write(&p, "[[apps]]\napp_id = \"a\"\n").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.get("a").is_some());
        std::fs::write(&p, "not toml [").unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert!(r.get("a").is_some());
    }
}

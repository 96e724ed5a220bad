//! Who the operators are: address, registered message key, socket URL. The local
//! fetcher reads a file; the on-chain fetcher (EigenLayer operator sets) implements the
//! same trait.

use std::collections::BTreeSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use kms_crypto::OperatorAddress;
use kms_crypto::signer::OperatorPublicKey;
use kms_protocol::Participant;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

/// One operator as the peering source lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    /// The operator's address.
    pub address: OperatorAddress,
    /// The key its protocol messages are signed with.
    pub public_key: OperatorPublicKey,
    /// Its HTTP base URL.
    pub url: Url,
}

impl Peer {
    /// As a session participant.
    pub fn participant(&self) -> Participant {
        Participant {
            address: self.address,
            public_key: self.public_key.clone(),
        }
    }
}

/// Why the operator set could not be read.
#[derive(Debug, Error)]
pub enum PeeringError {
    /// The source could not be read.
    #[error("peering source {source_name}: {reason}")]
    Unavailable {
        /// Which source.
        source_name: String,
        /// Why.
        reason: String,
    },
    /// The listing is inconsistent.
    #[error("peering source {source_name}: {reason}")]
    Invalid {
        /// Which source.
        source_name: String,
        /// Why.
        reason: String,
    },
}

/// A boxed future, so that fetchers can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Reads the current operator set.
pub trait PeeringDataFetcher: Send + Sync {
    /// The operators now, sorted by address.
    fn operators(&self) -> BoxFuture<'_, Result<Vec<Peer>, PeeringError>>;

    /// The operators of the session at `boundary`: a chain source reads the set at the
    /// boundary's block, so that every node sees the same one. By default, the
    /// current set.
    fn operators_at<'a>(
        &'a self,
        boundary: &'a crate::schedule::Boundary,
    ) -> BoxFuture<'a, Result<Vec<Peer>, PeeringError>> {
        let _ = boundary;
        self.operators()
    }
}

/// The file format: `[[operators]]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeeringFile {
    /// The operators.
    #[serde(default)]
    pub operators: Vec<Peer>,
}

impl PeeringFile {
    /// Checks the listing: unique addresses and URLs, ECDSA keys equal to the address.
    pub fn validate(mut self, source_name: &str) -> Result<Vec<Peer>, PeeringError> {
        let invalid = |reason: String| PeeringError::Invalid {
            source_name: source_name.to_string(),
            reason,
        };
        let mut addrs = BTreeSet::new();
        let mut urls = BTreeSet::new();
        for p in &self.operators {
            if p.address.is_zero() {
                return Err(invalid("the zero address is not an operator".into()));
            }
            if !addrs.insert(p.address) {
                return Err(invalid(format!("operator {} listed twice", p.address)));
            }
            if !urls.insert(p.url.as_str().to_string()) {
                return Err(invalid(format!("URL {} listed twice", p.url)));
            }
            if !matches!(p.url.scheme(), "http" | "https") {
                return Err(invalid(format!("URL {} is not http(s)", p.url)));
            }
            if let OperatorPublicKey::Ecdsa(a) = &p.public_key
                && *a != p.address
            {
                return Err(invalid(format!(
                    "operator {}: an ECDSA key must be the operator's own address",
                    p.address
                )));
            }
        }
        self.operators.sort_by_key(|p| p.address);
        Ok(std::mem::take(&mut self.operators))
    }
}

/// Reads the operator set from a TOML file at every call, so that editing the file
/// changes the set at the next session boundary.
pub struct LocalPeeringDataFetcher {
    path: PathBuf,
}

impl LocalPeeringDataFetcher {
    /// A fetcher for `path`.
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Writes a peering file atomically (write to a temporary file, then rename).
    pub fn write(path: &std::path::Path, peers: &[Peer]) -> std::io::Result<()> {
        let file = PeeringFile {
            operators: peers.to_vec(),
        };
        let text = toml::to_string_pretty(&file).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(tmp, path)
    }
}

impl PeeringDataFetcher for LocalPeeringDataFetcher {
    fn operators(&self) -> BoxFuture<'_, Result<Vec<Peer>, PeeringError>> {
        Box::pin(async move {
            let name = self.path.display().to_string();
            let text = tokio::fs::read_to_string(&self.path).await.map_err(|e| {
                PeeringError::Unavailable {
                    source_name: name.clone(),
                    reason: e.to_string(),
                }
            })?;
            let file: PeeringFile = toml::from_str(&text).map_err(|e| PeeringError::Invalid {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
            file.validate(&name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::OperatorKeys;
    use kms_crypto::signer::SignatureScheme;

    fn peer(i: u16, scheme: SignatureScheme) -> Peer {
        let k = OperatorKeys::generate(scheme);
        Peer {
            address: k.address(),
            public_key: k.public_key(),
            url: format!("http://127.0.0.1:{}", 9000 + i).parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn a_written_file_reads_back_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.toml");
        let peers = vec![
            peer(1, SignatureScheme::Bn254),
            peer(2, SignatureScheme::Ecdsa),
            peer(3, SignatureScheme::Bn254),
        ];
        LocalPeeringDataFetcher::write(&path, &peers).unwrap();
        let got = LocalPeeringDataFetcher::new(path)
            .operators()
            .await
            .unwrap();
        let mut want = peers.clone();
        want.sort_by_key(|p| p.address);
        assert_eq!(got, want);
    }

    #[test]
    fn duplicates_and_foreign_ecdsa_keys_are_refused() {
        let a = peer(1, SignatureScheme::Bn254);
        let dup = PeeringFile {
            operators: vec![
                a.clone(),
                Peer {
                    url: "http://127.0.0.1:1".parse().unwrap(),
                    ..a.clone()
                },
            ],
        };
        assert!(dup.validate("t").unwrap_err().to_string().contains("twice"));
        let mut b = peer(2, SignatureScheme::Ecdsa);
        b.address = a.address;
        let bad = PeeringFile { operators: vec![b] };
        assert!(bad.validate("t").unwrap_err().to_string().contains("ECDSA"));
    }
}

//! EigenKMS client: what an application uses against a set of operator nodes.
//!
//! - [`KmsClient::master_public_key`]: the public polynomial that at least `t`
//!   operators report for the newest version (so fewer than `t` liars cannot fool it).
//! - [`KmsClient::app_key`]: partial signatures from every node, released only to an
//!   [`Authority`] the app's registration names (its owner's key, or an attestation of
//!   a registered build) and sealed to a one-time key, each verified against the
//!   public share derived from that polynomial, `t` valid ones combined, and the
//!   result checked with `e(sk, G2) = e(H1(appID), MPK)`.
//! - [`KmsClient::encrypt`] / [`KmsClient::decrypt`]: Boneh–Franklin IBE to an app ID
//!   (format in `docs/wire-format.md`).
//!
//! Up to `n − t` nodes may be down, slow (each request is bounded by the client's
//! timeout) or lying (wrong keys, wrong versions, invalid partials).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kms_client::ClientError> {
//! let client = kms_client::KmsClient::new(vec![
//!     "https://127.0.0.1:18000".parse().unwrap(),
//!     "https://127.0.0.1:18001".parse().unwrap(),
//!     "https://127.0.0.1:18002".parse().unwrap(),
//!     "https://127.0.0.1:18003".parse().unwrap(),
//! ])?;
//! let ct = client.encrypt("my-app", b"secret").await?;
//! // The app's owner key, registered as `owner` for "my-app" at the nodes.
//! let owner = kms_client::Authority::owner_key_file("owner.key".as_ref())?;
//! let pt = client.decrypt("my-app", &ct, &owner).await?;
//! assert_eq!(&pt[..], b"secret");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod authority;
pub mod cli;
mod error;
mod master_key;
mod partials;
pub mod secrets;
mod transport;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use kms_crypto::tbls::AppPrivateKey;
use kms_crypto::{CryptoError, G1Point, G2Point, ibe, sealed};
use kms_protocol::api::{MAX_APP_ID_BYTES, SealedSignResponse, SignRequest, SignResponse};
use kms_protocol::release::partial_aad;
use rand_core::OsRng;
use url::Url;
use zeroize::Zeroizing;

pub use authority::{Authority, OWNER_REQUEST_LIFETIME_SECS};
pub use error::{ClientError, NodeError, NodeFailure};
pub use master_key::{Dissent, MasterKey};
pub use secrets::{AppEvidence, Secrets, SecretsRequest};
pub use transport::MAX_RESPONSE_BYTES;

use authority::SignAttempt;
use partials::PartialCollector;
use transport::Transport;

/// Per-request timeout of [`KmsClient::new`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a [`KmsClient`] talks to the nodes.
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Per-request timeout, connect to last byte.
    pub timeout: Duration,
    /// Trust only these roots (a PEM bundle) for the nodes' certificates, e.g. a local
    /// cluster's CA. `None`: the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            ca_pem: None,
        }
    }
}

/// A client of one set of operator nodes.
#[derive(Clone, Debug)]
pub struct KmsClient {
    nodes: Vec<Url>,
    transport: Transport,
}

impl KmsClient {
    /// A client of `nodes` (their base URLs) with the [`DEFAULT_TIMEOUT`].
    pub fn new(nodes: Vec<Url>) -> Result<Self, ClientError> {
        Self::with_timeout(nodes, DEFAULT_TIMEOUT)
    }

    /// A client of `nodes` with the given per-request timeout (connect to last byte).
    pub fn with_timeout(nodes: Vec<Url>, timeout: Duration) -> Result<Self, ClientError> {
        Self::with_options(
            nodes,
            ClientOptions {
                timeout,
                ..ClientOptions::default()
            },
        )
    }

    /// A client of `nodes` with the given options.
    pub fn with_options(nodes: Vec<Url>, options: ClientOptions) -> Result<Self, ClientError> {
        let timeout = options.timeout;
        if nodes.is_empty() {
            return Err(ClientError::NoNodes);
        }
        let mut seen = BTreeSet::new();
        for u in &nodes {
            let refuse = |reason| {
                Err(ClientError::InvalidNodeUrl {
                    url: redacted(u),
                    reason,
                })
            };
            if !matches!(u.scheme(), "http" | "https") {
                return refuse("not an http(s) URL");
            }
            if u.host().is_none() {
                return refuse("no host");
            }
            // URLs appear in error messages; credentials must not.
            if !u.username().is_empty() || u.password().is_some() {
                return refuse("credentials in the URL are not supported");
            }
            if !seen.insert(transport::endpoint(u, "")) {
                return refuse("listed twice");
            }
        }
        if timeout.is_zero() {
            return Err(ClientError::HttpClient(
                "the timeout must be positive".into(),
            ));
        }
        Ok(Self {
            nodes,
            transport: Transport::new(timeout, options.ca_pem.as_deref())?,
        })
    }

    /// The nodes' base URLs.
    pub fn nodes(&self) -> &[Url] {
        &self.nodes
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.transport.timeout()
    }

    /// The newest key version reported by at least its threshold of its own operators,
    /// from every node at once. Nodes that fail or disagree are listed in the result.
    pub async fn master_public_key(&self) -> Result<MasterKey, ClientError> {
        let answers = join_all(self.nodes.iter().map(|n| self.transport.pubkey(n))).await;
        master_key::agree(self.nodes.iter().cloned().zip(answers).collect())
    }

    /// Key version `version` as at least its threshold of its own operators report it
    /// among the versions they hold (`/versions`), as [`KmsClient::master_public_key`]
    /// does for the newest.
    pub async fn master_public_key_at(&self, version: u64) -> Result<MasterKey, ClientError> {
        let answers = join_all(self.nodes.iter().map(|n| self.transport.versions(n))).await;
        master_key::agree(
            self.nodes
                .iter()
                .cloned()
                .zip(answers)
                .map(|(node, a)| {
                    (
                        node,
                        a.map(|all| all.into_iter().find(|r| r.version == version)),
                    )
                })
                .map(|(node, a)| match a {
                    Ok(Some(r)) => (node, Ok(r)),
                    Ok(None) => (node, Err(NodeError::VersionNotHeld(version))),
                    Err(e) => (node, Err(e)),
                })
                .collect(),
        )
    }

    /// The app's private key `s·H1(appID)`, from `t` verified partial signatures that
    /// the nodes release to `authority` (the app owner's key, or the TD this runs in).
    pub async fn app_key(
        &self,
        app_id: &str,
        authority: &Authority,
    ) -> Result<AppPrivateKey, ClientError> {
        validate_app_id(app_id)?;
        let key = self.master_public_key().await?;
        match self.app_key_for(&key, app_id, authority).await {
            // An attested request selects the version by its attestation time, so a
            // reshare completing between `/pubkey` and `/app/sign` cannot be bridged by
            // asking for the older version by name: ask again, once, from the start.
            Err(ClientError::NotEnoughPartials { .. })
                if matches!(authority, Authority::Attested(_)) =>
            {
                let key = self.master_public_key().await?;
                self.app_key_for(&key, app_id, authority).await
            }
            other => other,
        }
    }

    /// As [`KmsClient::app_key`], against a master key obtained before.
    pub async fn app_key_for(
        &self,
        key: &MasterKey,
        app_id: &str,
        authority: &Authority,
    ) -> Result<AppPrivateKey, ClientError> {
        validate_app_id(app_id)?;
        let attempt = SignAttempt::new(authority, app_id)?;
        let mut collector = PartialCollector::new(key);
        // Nodes sign with their active version.
        let asked: Vec<Url> = self.askable(key, &mut collector);
        let answers = join_all(
            asked
                .iter()
                .map(|n| self.sign(key, &attempt, n, app_id, None)),
        )
        .await;
        for (node, answer) in asked.into_iter().zip(answers) {
            collector.add(node, answer, !attempt.is_attested());
        }
        // A reshare completing between `/pubkey` and `/app/sign` moves some nodes to
        // the next version; if that leaves fewer than t, ask those for the agreed
        // version by name (the version active at its own timestamp).
        if collector.operators_answered() < key.threshold && !attempt.is_attested() {
            let others = collector.take_other_version();
            let answers = join_all(
                others
                    .iter()
                    .map(|n| self.sign(key, &attempt, n, app_id, Some(key.version))),
            )
            .await;
            for (node, answer) in others.into_iter().zip(answers) {
                collector.add(node, answer, false);
            }
        }
        collector.finish(app_id, &mut OsRng)
    }

    /// The nodes a request can be addressed to: those whose operator is known from
    /// their `/pubkey` answer (an owner signs for one named node); the others are
    /// recorded as failures.
    fn askable(&self, key: &MasterKey, collector: &mut PartialCollector<'_>) -> Vec<Url> {
        let mut asked = Vec::new();
        for n in &self.nodes {
            if key.node_operators.contains_key(n) {
                asked.push(n.clone());
            } else {
                // Why its `/pubkey` failed is why it cannot be asked.
                let error = key
                    .failures
                    .iter()
                    .find(|f| &f.node == n)
                    .map(|f| f.error.clone())
                    .unwrap_or_else(|| {
                        NodeError::Malformed("no /pubkey answer: its operator is unknown".into())
                    });
                collector.add(n.clone(), Err(error), false);
            }
        }
        asked
    }

    /// One node's sealed partial, opened with the attempt's one-time key.
    async fn sign(
        &self,
        key: &MasterKey,
        attempt: &SignAttempt,
        node: &Url,
        app_id: &str,
        attestation_time: Option<u64>,
    ) -> Result<SignResponse, NodeError> {
        let operator = key.node_operators[node];
        let req = SignRequest {
            app_id: app_id.to_string(),
            attestation_time,
            auth: Some(attempt.authorization(app_id, attestation_time, operator)),
        };
        let r: SealedSignResponse = self.transport.post_json(node, "app/sign", &req).await?;
        let bad = || NodeError::Malformed("encryptedPartialSignature does not open".into());
        let sealed_bytes = hex::decode(
            r.encrypted_partial_signature
                .strip_prefix("0x")
                .unwrap_or(&r.encrypted_partial_signature),
        )
        .map_err(|_| bad())?;
        let opened = attempt
            .key
            .open(
                &sealed_bytes,
                sealed::APP_SIGN_INFO,
                &partial_aad(app_id, r.version, &r.operator_address),
            )
            .map_err(|_| bad())?;
        let bytes: &[u8; 48] = opened.as_slice().try_into().map_err(|_| bad())?;
        let partial = G1Point::from_compressed(bytes)
            .map_err(|_| NodeError::Malformed("partial signature is not a G1 point".into()))?;
        Ok(SignResponse {
            operator_address: r.operator_address,
            partial_signature: partial,
            version: r.version,
        })
    }

    /// Encrypts `plaintext` to `app_id` under the agreed master public key. Needs no
    /// secret from the operators.
    pub async fn encrypt(&self, app_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, ClientError> {
        validate_app_id(app_id)?;
        let key = self.master_public_key().await?;
        encrypt_to(&key.public_key(), app_id, plaintext)
    }

    /// Decrypts a ciphertext for `app_id`, fetching the app key from the operators
    /// with `authority`.
    pub async fn decrypt(
        &self,
        app_id: &str,
        ciphertext: &[u8],
        authority: &Authority,
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        validate_app_id(app_id)?;
        // Refuse what cannot be a ciphertext before asking the operators for the key.
        check_ciphertext_header(ciphertext)?;
        let key = self.app_key(app_id, authority).await?;
        Ok(ibe::decrypt(&key, app_id.as_bytes(), ciphertext)?)
    }
}

/// Encrypts to `app_id` under a known master public key (offline).
pub fn encrypt_to(
    master_public_key: &G2Point,
    app_id: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, ClientError> {
    validate_app_id(app_id)?;
    Ok(ibe::encrypt(
        master_public_key,
        app_id.as_bytes(),
        plaintext,
        &mut OsRng,
    )?)
}

/// Checks an app ID as the nodes do: 1 to [`MAX_APP_ID_BYTES`] bytes of UTF-8.
pub fn validate_app_id(app_id: &str) -> Result<(), ClientError> {
    if app_id.is_empty() || app_id.len() > MAX_APP_ID_BYTES {
        return Err(ClientError::InvalidAppId { len: app_id.len() });
    }
    Ok(())
}

/// The format checks of [`ibe::decrypt`] that need no key.
fn check_ciphertext_header(ct: &[u8]) -> Result<(), CryptoError> {
    if ct.len() < ibe::OVERHEAD {
        return Err(CryptoError::InvalidLength {
            expected: ibe::OVERHEAD,
            got: ct.len(),
        });
    }
    if &ct[..4] != ibe::MAGIC || ct[4] != ibe::VERSION {
        return Err(CryptoError::InvalidEncoding(
            "not an EigenKMS version 1 ciphertext",
        ));
    }
    Ok(())
}

fn redacted(u: &Url) -> String {
    let mut u = u.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(s: &[&str]) -> Vec<Url> {
        s.iter().map(|u| u.parse().unwrap()).collect()
    }

    #[test]
    fn node_lists_are_checked() {
        assert!(matches!(KmsClient::new(vec![]), Err(ClientError::NoNodes)));
        let e = KmsClient::new(urls(&["ftp://h"])).unwrap_err();
        assert!(e.to_string().contains("not an http(s) URL"), "{e}");
        let e = KmsClient::new(urls(&["http://user:hunter2@h"])).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = KmsClient::new(urls(&["http://h:1", "http://h:1/"])).unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let c = KmsClient::new(urls(&["http://h:1", "http://h:2/kms"])).unwrap();
        assert_eq!(c.timeout(), DEFAULT_TIMEOUT);
        assert!(KmsClient::with_timeout(urls(&["http://h"]), Duration::ZERO).is_err());
    }

    #[test]
    fn app_ids_are_bounded() {
        assert!(validate_app_id("").is_err());
        assert!(validate_app_id("a").is_ok());
        assert!(validate_app_id(&"a".repeat(MAX_APP_ID_BYTES)).is_ok());
        let e = validate_app_id(&"a".repeat(MAX_APP_ID_BYTES + 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("app ID must be 1 to {MAX_APP_ID_BYTES} bytes, got 257")
        );
    }

    #[tokio::test]
    async fn garbage_is_refused_before_any_node_is_asked() {
        // Port 9 (discard) on a reserved address: never contacted.
        let c = KmsClient::new(urls(&["http://192.0.2.1:9"])).unwrap();
        let owner = Authority::Owner(std::sync::Arc::new(
            kms_crypto::signer::ecdsa::EcdsaSigner::random(&mut OsRng),
        ));
        let e = c.decrypt("app", b"short", &owner).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Crypto(CryptoError::InvalidLength { .. })),
            "{e}"
        );
        let e = c.decrypt("app", &[0u8; 200], &owner).await.unwrap_err();
        assert!(
            matches!(e, ClientError::Crypto(CryptoError::InvalidEncoding(_))),
            "{e}"
        );
        let e = c.decrypt("", &[0u8; 200], &owner).await.unwrap_err();
        assert!(matches!(e, ClientError::InvalidAppId { len: 0 }), "{e}");
    }
}

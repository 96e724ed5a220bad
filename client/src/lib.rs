//! EigenKMS client: what an application uses against a set of operator nodes.
//!
//! - [`KmsClient::master_public_key`]: the public polynomial that at least `t`
//!   operators report for the newest version (so fewer than `t` liars cannot fool it).
//! - [`KmsClient::app_key`]: partial signatures from every node, each verified against
//!   the public share derived from that polynomial, any `t` valid ones combined, and
//!   the result checked with `e(sk, G2) = e(H1(appID), MPK)`.
//! - [`KmsClient::encrypt`] / [`KmsClient::decrypt`]: Boneh–Franklin IBE to an app ID
//!   (format in `docs/wire-format.md`).
//!
//! Up to `n − t` nodes may be down, slow or lying.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kms_client::ClientError> {
//! let client = kms_client::KmsClient::new(vec![
//!     "http://127.0.0.1:18000".parse().unwrap(),
//!     "http://127.0.0.1:18001".parse().unwrap(),
//! ])?;
//! let ct = client.encrypt("my-app", b"secret").await?;
//! let pt = client.decrypt("my-app", &ct).await?;
//! assert_eq!(&pt[..], b"secret");
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod cli;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::join_all;
use kms_crypto::tbls::{self, AppPrivateKey, PartialSignature};
use kms_crypto::{Commitment, G2Point, OperatorAddress, evaluation_point, ibe};
use kms_protocol::api::{
    ErrorResponse, MAX_APP_ID_BYTES, PubkeyResponse, SignRequest, SignResponse,
};
use rand_core::OsRng;
use serde::de::DeserializeOwned;
use thiserror::Error;
use url::Url;
use zeroize::Zeroizing;

/// Largest response body read from a node.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// What went wrong. Never carries secret material.
#[derive(Debug, Error)]
pub enum ClientError {
    /// No node URLs, or an invalid one.
    #[error("configuration: {0}")]
    Config(String),
    /// The app ID is empty or too long.
    #[error("app ID must be 1 to {MAX_APP_ID_BYTES} bytes")]
    InvalidAppId,
    /// No version is reported by enough operators.
    #[error(
        "no key version is reported by its threshold of operators ({answered} of {nodes} nodes answered; best agreement {agreeing} of {needed} needed)"
    )]
    NoAgreement {
        /// Nodes queried.
        nodes: usize,
        /// Nodes that answered.
        answered: usize,
        /// Largest group agreeing on one version.
        agreeing: usize,
        /// The threshold of that version.
        needed: usize,
    },
    /// Too few valid partial signatures.
    #[error(
        "only {valid} valid partial signatures of {needed} needed ({invalid} invalid, {failed} nodes failed)"
    )]
    NotEnoughPartials {
        /// Valid partials.
        valid: usize,
        /// Threshold.
        needed: usize,
        /// Partials that did not verify.
        invalid: usize,
        /// Nodes that did not answer usefully.
        failed: usize,
    },
    /// The combined key does not verify against the master public key (cannot happen
    /// with verified partials; reported rather than trusted).
    #[error("the combined app key does not verify against the master public key")]
    KeyMismatch,
    /// Encryption or decryption failed (wrong app, modified ciphertext, …).
    #[error("{0}")]
    Crypto(#[from] kms_crypto::CryptoError),
    /// One node's answer, when only one node was asked.
    #[error("{node}: {reason}")]
    Node {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
}

/// The master key as the operators agree on it.
#[derive(Clone, Debug)]
pub struct MasterKey {
    /// The version (session timestamp).
    pub version: u64,
    /// The public polynomial.
    pub commitments: Commitment,
    /// The operators holding shares of it.
    pub operators: Vec<OperatorAddress>,
    /// Shares needed.
    pub threshold: usize,
    /// Operators that reported this version.
    pub agreeing: Vec<OperatorAddress>,
    /// Operators that answered with something else.
    pub dissenting: Vec<OperatorAddress>,
}

impl MasterKey {
    /// The master public key (the polynomial's constant term).
    pub fn public_key(&self) -> G2Point {
        *self.commitments.constant()
    }
}

/// A client of a set of nodes.
#[derive(Clone)]
pub struct KmsClient {
    nodes: Vec<Url>,
    http: reqwest::Client,
}

impl KmsClient {
    /// A client with a 5 s request timeout.
    pub fn new(nodes: Vec<Url>) -> Result<Self, ClientError> {
        Self::with_timeout(nodes, Duration::from_secs(5))
    }

    /// A client with the given per-request timeout.
    pub fn with_timeout(nodes: Vec<Url>, timeout: Duration) -> Result<Self, ClientError> {
        if nodes.is_empty() {
            return Err(ClientError::Config("no node URLs".into()));
        }
        for u in &nodes {
            if !matches!(u.scheme(), "http" | "https") {
                return Err(ClientError::Config(format!("{u}: not an http(s) URL")));
            }
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        Ok(Self { nodes, http })
    }

    /// The nodes.
    pub fn nodes(&self) -> &[Url] {
        &self.nodes
    }

    async fn call<T: DeserializeOwned>(
        &self,
        node: &Url,
        path: &str,
        body: Option<&SignRequest>,
    ) -> Result<T, String> {
        let url = node.join(path).map_err(|e| e.to_string())?;
        let req = match body {
            Some(b) => self.http.post(url).json(b),
            None => self.http.get(url),
        };
        let mut resp = req.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_RESPONSE_BYTES)
        {
            return Err("response too large".into());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err("response too large".into());
            }
            bytes.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorResponse>(&bytes) {
                Ok(e) => format!("{status} {}: {}", e.error.code, e.error.message),
                Err(_) => format!("{status}"),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| format!("invalid answer: {e}"))
    }

    /// The newest key version reported by at least its threshold of its own operators.
    pub async fn master_public_key(&self) -> Result<MasterKey, ClientError> {
        let answers = join_all(
            self.nodes
                .iter()
                .map(|n| self.call::<PubkeyResponse>(n, "/pubkey", None)),
        )
        .await;
        let answered: Vec<PubkeyResponse> = answers.into_iter().filter_map(Result::ok).collect();
        let votes = kms_protocol::api::tally(&answered);
        let Some(best) = votes.iter().rev().find(|v| v.is_agreed()) else {
            let (agreeing, needed) = votes
                .iter()
                .map(|v| (v.holders.len(), v.commitment.threshold()))
                .max()
                .unwrap_or((0, 0));
            return Err(ClientError::NoAgreement {
                nodes: self.nodes.len(),
                answered: answered.len(),
                agreeing,
                needed,
            });
        };
        let who = &best.holders;
        let dissenting = answered
            .iter()
            .map(|a| a.operator_address)
            .filter(|a| !who.contains(a))
            .collect();
        Ok(MasterKey {
            version: best.version,
            threshold: best.commitment.threshold(),
            commitments: best.commitment.clone(),
            operators: best.operators.clone(),
            agreeing: who.iter().copied().collect(),
            dissenting,
        })
    }

    /// The app's private key `s·H1(appID)`, from any `t` valid partial signatures.
    pub async fn app_key(&self, app_id: &str) -> Result<AppPrivateKey, ClientError> {
        check_app_id(app_id)?;
        let mk = self.master_public_key().await?;
        self.app_key_for(&mk, app_id).await
    }

    /// As [`KmsClient::app_key`] against an already agreed master key.
    pub async fn app_key_for(
        &self,
        mk: &MasterKey,
        app_id: &str,
    ) -> Result<AppPrivateKey, ClientError> {
        check_app_id(app_id)?;
        // Ask for the agreed version by name (the version active at its own start), so
        // that a reshare finishing meanwhile does not split the answers.
        let req = SignRequest {
            app_id: app_id.to_string(),
            attestation_time: Some(mk.version),
        };
        let answers = join_all(
            self.nodes
                .iter()
                .map(|n| self.call::<SignResponse>(n, "/app/sign", Some(&req))),
        )
        .await;
        let members: BTreeSet<OperatorAddress> = mk.operators.iter().copied().collect();
        let mut seen = BTreeSet::new();
        let mut partials = Vec::new();
        let mut failed = 0;
        for a in answers {
            match a {
                Ok(r)
                    if r.version == mk.version
                        && members.contains(&r.operator_address)
                        && seen.insert(r.operator_address) =>
                {
                    match evaluation_point(&r.operator_address) {
                        Ok(x) => partials.push(PartialSignature {
                            evaluation_point: x,
                            signature: r.partial_signature,
                        }),
                        Err(_) => failed += 1,
                    }
                }
                _ => failed += 1,
            }
        }
        let combined =
            tbls::combine_partials(&mk.commitments, app_id.as_bytes(), &partials, &mut OsRng)
                .map_err(|e| ClientError::NotEnoughPartials {
                    valid: e.valid,
                    needed: e.needed,
                    invalid: e.invalid.len(),
                    failed,
                })?;
        if !tbls::verify_app_key(&mk.public_key(), app_id.as_bytes(), &combined.key) {
            return Err(ClientError::KeyMismatch);
        }
        Ok(combined.key)
    }

    /// Encrypts to `app_id` under the agreed master public key.
    pub async fn encrypt(&self, app_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, ClientError> {
        check_app_id(app_id)?;
        let mk = self.master_public_key().await?;
        Ok(ibe::encrypt(
            &mk.public_key(),
            app_id.as_bytes(),
            plaintext,
            &mut OsRng,
        )?)
    }

    /// Decrypts a ciphertext for `app_id` (gets the app key from the operators).
    pub async fn decrypt(
        &self,
        app_id: &str,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let key = self.app_key(app_id).await?;
        Ok(ibe::decrypt(&key, app_id.as_bytes(), ciphertext)?)
    }
}

fn check_app_id(app_id: &str) -> Result<(), ClientError> {
    if app_id.is_empty() || app_id.len() > MAX_APP_ID_BYTES {
        return Err(ClientError::InvalidAppId);
    }
    Ok(())
}

//! `/secrets` from inside the application's TD, in two steps:
//!
//! 1. [`SecretsRequest::new`] makes a one-time RSA-2048 key and a 32-byte nonce;
//!    [`SecretsRequest::report_data`] is what the TD must put in its quote's
//!    `report_data` (or its Trust Authority token's runtime data):
//!    `SHA-512(len ‖ rsa_pubkey_pem ‖ len ‖ nonce ‖ len ‖ app_id ‖ len ‖ attest_time)`,
//!    lengths 4-byte big-endian, the time 8 bytes big-endian
//!    ([`kms_attestation::secrets_report_data`]). Set the time before taking the
//!    report data: it is bound.
//! 2. The caller obtains the evidence and calls [`crate::KmsClient::retrieve_secrets`]:
//!    the request goes to every node; each answer's partial signature is decrypted
//!    with the one-time key and verified against the agreed master key's public
//!    shares, `t` valid ones are combined into the app key (as for
//!    [`crate::KmsClient::app_key`]), and the environment that at least `t` nodes
//!    return is IBE-decrypted with it.
//!
//! Nodes sign with the version active at `attest_time`. The client combines partials
//! of the newest agreed version; when a reshare completed after `attest_time`, the
//! nodes answer with the version before it, and the client combines against that
//! version as its own operators report it (`/versions`), provided its master public
//! key is the newest one's (a reshare keeps the secret).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures::future::join_all;
use kms_crypto::{G1Point, OperatorAddress, ibe};
use kms_protocol::api::SignResponse;
use rand_core::{OsRng, RngCore};
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::{Oaep, RsaPrivateKey};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use url::Url;
use zeroize::Zeroizing;

use crate::error::{ClientError, NodeError, NodeFailure};
use crate::master_key::MasterKey;
use crate::partials::PartialCollector;
use crate::{KmsClient, validate_app_id};

/// Size of the one-time RSA key.
pub const RSA_BITS: usize = 2048;
/// Size of the nonce.
pub const NONCE_BYTES: usize = 32;

/// The evidence the application's TD produced over [`SecretsRequest::report_data`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppEvidence {
    /// A raw TDX quote (DCAP).
    Dcap(Vec<u8>),
    /// An Intel Trust Authority token (JWT).
    Ita(String),
    /// A simulated quote (nodes in insecure-dev mode only).
    Simulated(Vec<u8>),
}

impl AppEvidence {
    pub(crate) fn wire(&self) -> (&'static str, String) {
        match self {
            AppEvidence::Dcap(q) => ("dcap", B64.encode(q)),
            AppEvidence::Ita(t) => ("ita", t.clone()),
            AppEvidence::Simulated(q) => ("simulated", B64.encode(q)),
        }
    }
}

/// The `report_data` binding of a `/secrets` request (see the module documentation).
pub use kms_attestation::secrets_report_data;

/// One `/secrets` attempt: a one-time RSA key (zeroized on drop), a nonce and the
/// attestation time. Each node accepts a nonce once: make a new request per attempt.
pub struct SecretsRequest {
    app_id: String,
    key: RsaPrivateKey,
    pem: String,
    nonce: [u8; NONCE_BYTES],
    attest_time: u64,
}

impl fmt::Debug for SecretsRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsRequest")
            .field("app_id", &self.app_id)
            .field("nonce", &hex::encode(self.nonce))
            .field("attest_time", &self.attest_time)
            .finish_non_exhaustive()
    }
}

/// The `/secrets` request body.
#[derive(Serialize)]
struct WireRequest<'a> {
    app_id: &'a str,
    attestation_method: &'a str,
    attestation: &'a str,
    rsa_pubkey_tmp: &'a str,
    attest_time: u64,
    nonce: &'a str,
}

/// The `/secrets` answer.
#[derive(Deserialize)]
struct WireResponse {
    encrypted_env: String,
    public_env: String,
    encrypted_partial_sig: String,
    #[serde(rename = "operatorAddress")]
    operator_address: OperatorAddress,
    version: u64,
}

impl SecretsRequest {
    /// A request for `app_id` attested now.
    pub fn new(app_id: &str) -> Result<Self, ClientError> {
        validate_app_id(app_id)?;
        let key = RsaPrivateKey::new(&mut OsRng, RSA_BITS)
            .map_err(|e| ClientError::Rsa(e.to_string()))?;
        let pem = key
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(|e| ClientError::Rsa(e.to_string()))?;
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let attest_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Ok(Self {
            app_id: app_id.to_string(),
            key,
            pem,
            nonce,
            attest_time,
        })
    }

    /// Sets the attestation time (unix seconds); nodes refuse it if older than their
    /// window or more than a minute in the future.
    pub fn with_attest_time(mut self, unix_secs: u64) -> Self {
        self.attest_time = unix_secs;
        self
    }

    /// What the TD must put in `report_data`.
    pub fn report_data(&self) -> [u8; 64] {
        secrets_report_data(
            self.pem.as_bytes(),
            &self.nonce,
            &self.app_id,
            self.attest_time,
        )
    }

    /// The app ID.
    pub fn app_id(&self) -> &str {
        &self.app_id
    }

    /// The one-time public key as sent (PEM SubjectPublicKeyInfo).
    pub fn rsa_pubkey_pem(&self) -> &str {
        &self.pem
    }

    /// The nonce.
    pub fn nonce(&self) -> &[u8; NONCE_BYTES] {
        &self.nonce
    }

    /// The attestation time.
    pub fn attest_time(&self) -> u64 {
        self.attest_time
    }

    /// The JSON body sent to the nodes (nonce as hex).
    pub fn body(&self, evidence: &AppEvidence) -> serde_json::Value {
        let (method, attestation) = evidence.wire();
        serde_json::to_value(WireRequest {
            app_id: &self.app_id,
            attestation_method: method,
            attestation: &attestation,
            rsa_pubkey_tmp: &self.pem,
            attest_time: self.attest_time,
            nonce: &hex::encode(self.nonce),
        })
        .expect("serializable")
    }

    /// Decrypts one node's encrypted partial signature (48 bytes, compressed G1).
    fn decrypt_partial(&self, b64: &str) -> Result<G1Point, NodeError> {
        let bad = || NodeError::Malformed("encrypted_partial_sig does not decrypt".into());
        let ct = B64.decode(b64).map_err(|_| bad())?;
        let pt = Zeroizing::new(
            self.key
                .decrypt(Oaep::new::<Sha256>(), &ct)
                .map_err(|_| bad())?,
        );
        let bytes: &[u8; 48] = pt.as_slice().try_into().map_err(|_| bad())?;
        G1Point::from_compressed(bytes)
            .map_err(|_| NodeError::Malformed("partial signature is not a G1 point".into()))
    }
}

/// What `/secrets` released.
pub struct Secrets {
    /// The decrypted environment (empty if the app has none registered).
    pub env: Zeroizing<Vec<u8>>,
    /// The public environment.
    pub public_env: String,
    /// The key version whose app key decrypted it.
    pub version: u64,
}

impl fmt::Debug for Secrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Secrets")
            .field("env", &format_args!("<{} bytes>", self.env.len()))
            .field("public_env", &self.public_env)
            .field("version", &self.version)
            .finish()
    }
}

impl KmsClient {
    /// The whole `/secrets` retrieval from inside a TD: a fresh request, its evidence
    /// from `authority`'s quote provider, then [`KmsClient::retrieve_secrets`].
    pub async fn secrets(
        &self,
        app_id: &str,
        authority: &crate::Authority,
    ) -> Result<Secrets, ClientError> {
        let crate::Authority::Attested(provider) = authority else {
            return Err(ClientError::Attestation(
                "/secrets releases only to an attested TD, not to an owner key".into(),
            ));
        };
        let req = SecretsRequest::new(app_id)?;
        let evidence = provider
            .quote(&req.report_data())
            .map_err(|e| ClientError::Attestation(e.to_string()))?;
        self.retrieve_secrets(&req, &crate::authority::app_evidence(evidence))
            .await
    }

    /// Posts `req` with `evidence` to every node, combines `t` verified partial
    /// signatures into the app key and decrypts the environment that at least `t`
    /// nodes return. See [`crate::secrets`].
    pub async fn retrieve_secrets(
        &self,
        req: &SecretsRequest,
        evidence: &AppEvidence,
    ) -> Result<Secrets, ClientError> {
        validate_app_id(&req.app_id)?;
        let key = self.master_public_key().await?;
        let body = req.body(evidence);
        let answers = join_all(self.nodes.iter().map(|n| {
            self.transport
                .post_json::<_, WireResponse>(n, "secrets", &body)
        }))
        .await;
        let answers: Vec<Answer> = self
            .nodes
            .iter()
            .zip(answers)
            .map(|(node, a)| {
                let a = a.and_then(|r| Ok((req.decrypt_partial(&r.encrypted_partial_sig)?, r)));
                (node.clone(), a)
            })
            .collect();
        match combine(req, &key, &answers) {
            // Nodes sign with the version active at the request's attestation time: a
            // reshare that completed since then leaves them answering with the one
            // before it, which holds the same master secret. Combine against that
            // version (as its own operators report it) rather than ask the TD for a
            // new quote.
            Err(ClientError::NotEnoughPartials { .. }) => {
                let Some(older) = answered_version(&answers, &key) else {
                    return combine(req, &key, &answers);
                };
                let older_key = self.master_public_key_at(older).await?;
                if older_key.public_key() != key.public_key() {
                    return combine(req, &key, &answers);
                }
                combine(req, &older_key, &answers)
            }
            other => other,
        }
    }
}

/// One node's `/secrets` answer with its decrypted partial signature.
type Answer = (Url, Result<(G1Point, WireResponse), NodeError>);

/// The other version that at least the key's threshold of answers were signed with.
fn answered_version(answers: &[Answer], key: &MasterKey) -> Option<u64> {
    let mut counts: BTreeMap<u64, BTreeSet<OperatorAddress>> = BTreeMap::new();
    for (_, a) in answers {
        if let Ok((_, r)) = a {
            counts
                .entry(r.version)
                .or_default()
                .insert(r.operator_address);
        }
    }
    counts
        .into_iter()
        .filter(|(v, ops)| *v != key.version && ops.len() >= key.threshold)
        .max_by_key(|(_, ops)| ops.len())
        .map(|(v, _)| v)
}

/// The app key from `t` answers' partials verified against `key`, and the environment
/// at least `t` of `key`'s operators returned, decrypted with it.
fn combine(
    req: &SecretsRequest,
    key: &MasterKey,
    answers: &[Answer],
) -> Result<Secrets, ClientError> {
    let mut collector = PartialCollector::new(key);
    let mut failures = Vec::new();
    // Environments returned, with the nodes (and operators they claim) returning each.
    let mut envs: BTreeMap<(String, String), (BTreeSet<Url>, BTreeSet<OperatorAddress>)> =
        BTreeMap::new();
    for (node, answer) in answers {
        let (partial, r) = match answer {
            Ok(a) => a,
            Err(error) => {
                failures.push(NodeFailure {
                    node: node.clone(),
                    error: error.clone(),
                });
                collector.add(node.clone(), Err(error.clone()), false);
                continue;
            }
        };
        if r.version == key.version && key.operators.contains(&r.operator_address) {
            let e = envs
                .entry((r.encrypted_env.clone(), r.public_env.clone()))
                .or_default();
            e.0.insert(node.clone());
            e.1.insert(r.operator_address);
        }
        collector.add(
            node.clone(),
            Ok(SignResponse {
                operator_address: r.operator_address,
                partial_signature: *partial,
                version: r.version,
            }),
            false,
        );
    }
    let app_key = collector.finish(&req.app_id, &mut OsRng)?;
    let agreeing =
        |(nodes, ops): &(BTreeSet<Url>, BTreeSet<OperatorAddress>)| nodes.len().min(ops.len());
    let best = envs.iter().max_by_key(|(_, v)| agreeing(v));
    let Some(((encrypted_env, public_env), _)) = best.filter(|(_, v)| agreeing(v) >= key.threshold)
    else {
        return Err(ClientError::EnvDisagreement {
            agreeing: best.map(|(_, v)| agreeing(v)).unwrap_or(0),
            needed: key.threshold,
            failures,
        });
    };
    let env = if encrypted_env.is_empty() {
        Zeroizing::new(Vec::new())
    } else {
        let ct = hex::decode(encrypted_env).map_err(|_| ClientError::EnvDisagreement {
            agreeing: 0,
            needed: key.threshold,
            failures: failures.clone(),
        })?;
        ibe::decrypt(&app_key, req.app_id.as_bytes(), &ct)?
    };
    Ok(Secrets {
        env,
        public_env: public_env.clone(),
        version: key.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binding_is_the_nodes() {
        let req = SecretsRequest::new("app-1").unwrap();
        assert_eq!(
            req.report_data(),
            kms_attestation::secrets_report_data(
                req.rsa_pubkey_pem().as_bytes(),
                req.nonce(),
                "app-1",
                req.attest_time()
            )
        );
        assert!(
            req.rsa_pubkey_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----")
        );
        let body = req.body(&AppEvidence::Simulated(vec![1, 2, 3]));
        assert_eq!(body["attestation_method"], "simulated");
        assert_eq!(body["attestation"], "AQID");
        assert_eq!(body["nonce"].as_str().unwrap().len(), 2 * NONCE_BYTES);
        assert!(!format!("{req:?}").contains("PRIVATE"));
    }

    #[test]
    fn partials_decrypt_only_with_the_one_time_key() {
        let req = SecretsRequest::new("app-1").unwrap();
        let p = kms_crypto::tbls::sign_partial(&kms_crypto::Scalar::from_u64(7), b"app-1");
        let ct = req
            .key
            .to_public_key()
            .encrypt(&mut OsRng, Oaep::new::<Sha256>(), &p.to_compressed())
            .unwrap();
        assert_eq!(req.decrypt_partial(&B64.encode(&ct)).unwrap(), p);
        let other = SecretsRequest::new("app-1").unwrap();
        assert!(other.decrypt_partial(&B64.encode(&ct)).is_err());
        assert!(req.decrypt_partial("%%").is_err());
    }
}

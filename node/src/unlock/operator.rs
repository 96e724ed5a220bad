//! The operator's side of remote unlock (`kms-node unlock`): verify the locked
//! node's quote, then send the passphrase encrypted to the key it binds.

use std::time::Duration;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use kms_attestation::{Policy, Subject, VerifiedTd, Verifier, unlock_report_data};
use kms_crypto::OperatorAddress;
use rand_core::{OsRng, RngCore};
use ring::agreement::{UnparsedPublicKey, X25519, agree_ephemeral};
use zeroize::Zeroizing;

use super::{
    MAX_PASSPHRASE_BYTES, UNLOCK_PATH, UnlockChallenge, UnlockRequest, UnlockResponse,
    ephemeral_key, exchange_aad, exchange_key,
};

/// What `kms-node unlock` checks before it sends the passphrase.
pub struct UnlockPolicy {
    /// Verifies the node's evidence.
    pub verifier: Verifier,
    /// Which node images and platforms are acceptable.
    pub policy: Policy,
    /// The operator the key file must belong to, when known.
    pub expect_address: Option<OperatorAddress>,
}

/// Why `kms-node unlock` failed.
#[derive(Debug, thiserror::Error)]
pub enum UnlockClientError {
    /// The node could not be reached or answered something unreadable.
    #[error("{0}")]
    Transport(String),
    /// The node refused (status, code, message).
    #[error("the node answered {status} {code}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
        /// The node's explanation.
        message: String,
    },
    /// The node's evidence did not pass: nothing was sent.
    #[error("the node's attestation was refused ({kind}): {detail}; the passphrase was not sent")]
    Attestation {
        /// The error kind.
        kind: &'static str,
        /// Details.
        detail: String,
    },
    /// The key file belongs to another operator: nothing was sent.
    #[error("the node holds the key file of {found}, not {expected}; the passphrase was not sent")]
    WrongOperator {
        /// The expected operator.
        expected: OperatorAddress,
        /// The one the node named.
        found: OperatorAddress,
    },
}

async fn refused(resp: reqwest::Response) -> UnlockClientError {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    UnlockClientError::Refused {
        status,
        code: body["error"]["code"].as_str().unwrap_or("").to_string(),
        message: body["error"]["message"].as_str().unwrap_or("").to_string(),
    }
}

/// The operator's side: fetches a challenge from the locked node at `base`,
/// verifies its evidence at time `now` against `policy`, and sends `passphrase`
/// encrypted to the attested key. Returns the opened operator and the verified TD.
pub async fn unlock_remote(
    base: &url::Url,
    passphrase: &str,
    policy: &UnlockPolicy,
    now: u64,
) -> Result<(OperatorAddress, VerifiedTd), UnlockClientError> {
    check_passphrase(passphrase)?;
    let challenge = VerifiedChallenge::fetch(base, policy, now).await?;
    let td = challenge.td().clone();
    let opened = challenge.answer(passphrase).await?;
    Ok((opened, td))
}

fn check_passphrase(passphrase: &str) -> Result<(), UnlockClientError> {
    if passphrase.is_empty() || passphrase.len() > MAX_PASSPHRASE_BYTES {
        return Err(UnlockClientError::Transport(format!(
            "the passphrase must have 1 to {MAX_PASSPHRASE_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The operator's side in two steps: a challenge fetched from a locked node whose
/// evidence passed, which [`VerifiedChallenge::answer`] then sends the passphrase to.
#[derive(Clone)]
pub struct VerifiedChallenge {
    http: reqwest::Client,
    endpoint: url::Url,
    operator_address: OperatorAddress,
    node_public: [u8; 32],
    td: VerifiedTd,
}

impl VerifiedChallenge {
    /// Fetches a challenge from the locked node at `base` and verifies its evidence
    /// at time `now` against `policy`. Nothing secret is sent.
    pub async fn fetch(
        base: &url::Url,
        policy: &UnlockPolicy,
        now: u64,
    ) -> Result<Self, UnlockClientError> {
        crate::install_crypto_provider();
        let transport = |e: reqwest::Error| UnlockClientError::Transport(e.to_string());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(transport)?;
        let endpoint = base
            .join(UNLOCK_PATH.trim_start_matches('/'))
            .map_err(|e| UnlockClientError::Transport(format!("{base}: {e}")))?;
        let resp = http.get(endpoint.clone()).send().await.map_err(transport)?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let challenge: UnlockChallenge = resp.json().await.map_err(transport)?;
        let node_public: [u8; 32] = hex::decode(&challenge.public_key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                UnlockClientError::Transport("public_key: not 32 bytes of hex".into())
            })?;
        let td = policy
            .verifier
            .verify(&challenge.evidence, now)
            .map_err(|e| UnlockClientError::Attestation {
                kind: e.kind(),
                detail: e.to_string(),
            })?;
        let expected = unlock_report_data(challenge.operator_address.as_bytes(), &node_public);
        policy
            .policy
            .appraise(&td, Subject::NodeImage, &expected)
            .map_err(|e| UnlockClientError::Attestation {
                kind: e.kind(),
                detail: e.to_string(),
            })?;
        if let Some(expected) = policy.expect_address
            && expected != challenge.operator_address
        {
            return Err(UnlockClientError::WrongOperator {
                expected,
                found: challenge.operator_address,
            });
        }
        Ok(Self {
            http,
            endpoint,
            operator_address: challenge.operator_address,
            node_public,
            td,
        })
    }

    /// The node's verified TD.
    pub fn td(&self) -> &VerifiedTd {
        &self.td
    }

    /// The node's one-use public key (hex), which names this challenge.
    pub fn node_public_key(&self) -> String {
        hex::encode(self.node_public)
    }

    /// Sends `passphrase` encrypted to this challenge's key. Returns the operator
    /// whose key file the node opened.
    pub async fn answer(&self, passphrase: &str) -> Result<OperatorAddress, UnlockClientError> {
        check_passphrase(passphrase)?;
        let node_public = self.node_public;
        let failed = || UnlockClientError::Transport("X25519 key exchange failed".into());
        let (private, operator_public) = ephemeral_key().ok_or_else(failed)?;
        let key = Zeroizing::new(
            agree_ephemeral(
                private,
                &UnparsedPublicKey::new(&X25519, node_public),
                |shared| exchange_key(shared, &node_public, &operator_public),
            )
            .map_err(|_| failed())?,
        );
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ciphertext = Aes256Gcm::new_from_slice(key.as_ref())
            .expect("32-byte key")
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: passphrase.as_bytes(),
                    aad: &exchange_aad(&self.operator_address, &node_public),
                },
            )
            .expect("in-memory encryption cannot fail");
        let request = UnlockRequest {
            node_public_key: self.node_public_key(),
            public_key: hex::encode(operator_public),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        let transport = |e: reqwest::Error| UnlockClientError::Transport(e.to_string());
        let resp = self
            .http
            .post(self.endpoint.clone())
            .json(&request)
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(refused(resp).await);
        }
        let ok: UnlockResponse = resp.json().await.map_err(transport)?;
        Ok(ok.operator_address)
    }
}

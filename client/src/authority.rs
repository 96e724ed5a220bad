//! How the client proves to the nodes that it may receive an app's key
//! (`POST /app/sign`, see `kms_protocol::release`):
//! - [`Authority::Owner`]: the app owner's registered Ethereum key signs one EIP-712
//!   request per node (naming that node, an expiry two minutes ahead, a fresh nonce
//!   and the one-time key);
//! - [`Authority::Attested`]: the TD the client runs in quotes a `report_data` that
//!   binds the one-time key, a nonce, the app and the time (configfs-tsm on TDX; a
//!   simulated quote against insecure-dev nodes).
//!
//! Either way every node seals its partial to one one-time X25519 key made for this
//! request, whose secret never leaves the client and is zeroized when done.

use std::fmt;
use std::sync::Arc;

use kms_attestation::{Evidence, QuoteProvider};
use kms_crypto::signer::ecdsa::EcdsaSigner;
use kms_crypto::{OperatorAddress, sealed};
use kms_protocol::release::{
    AttestedAuthorization, Authorization, Bytes32, OwnerAuthorization, owner_request_hash,
};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::error::ClientError;
use crate::secrets::AppEvidence;

/// How long an owner-signed request is valid (seconds); nodes accept at most
/// `kms_protocol::release::MAX_OWNER_REQUEST_LIFETIME_SECS`.
pub const OWNER_REQUEST_LIFETIME_SECS: u64 = 120;

/// Who the client is, to the nodes.
#[derive(Clone)]
pub enum Authority {
    /// The app owner's registered key (`owner` in the node's app registry).
    Owner(Arc<EcdsaSigner>),
    /// The TD this client runs in, through a quote provider.
    Attested(Arc<dyn QuoteProvider>),
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Authority::Owner(s) => write!(f, "Owner({})", s.address()),
            Authority::Attested(p) => write!(
                f,
                "Attested({})",
                if p.is_simulated() { "simulated" } else { "tdx" }
            ),
        }
    }
}

impl Authority {
    /// The owner key in `path`: 32 bytes of secp256k1 secret as hex (`0x` optional,
    /// surrounding whitespace ignored), as `kms-client owner-keygen` writes it.
    pub fn owner_key_file(path: &std::path::Path) -> Result<Self, ClientError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| ClientError::OwnerKey(format!("{}: {e}", path.display())))?,
        );
        let t = text.trim();
        let body = t.strip_prefix("0x").unwrap_or(t);
        let mut secret = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(body, secret.as_mut()).map_err(|_| {
            ClientError::OwnerKey(format!(
                "{}: expected 32 bytes of hex (a secp256k1 secret key)",
                path.display()
            ))
        })?;
        let signer = EcdsaSigner::from_bytes(&secret)
            .map_err(|e| ClientError::OwnerKey(format!("{}: {e}", path.display())))?;
        Ok(Authority::Owner(Arc::new(signer)))
    }

    /// Quotes from the TD's configfs-tsm interface.
    pub fn tdx() -> Self {
        Authority::Attested(Arc::new(kms_attestation::ConfigfsTsmProvider::new()))
    }

    /// Simulated quotes claiming the measurements of the simulated build `build`
    /// (`kms_attestation::simulated::simulated_measurements`): only insecure-dev
    /// nodes accept them, and they prove nothing.
    pub fn simulated(build: &str) -> Self {
        Authority::Attested(Arc::new(kms_attestation::SimulatedProvider::new(
            kms_attestation::simulated::simulated_measurements(build),
        )))
    }
}

/// The unix time now.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The wire form of evidence.
pub(crate) fn app_evidence(e: Evidence) -> AppEvidence {
    match e {
        Evidence::Dcap(q) => AppEvidence::Dcap(q),
        Evidence::Ita(t) => AppEvidence::Ita(t),
        Evidence::Simulated(q) => AppEvidence::Simulated(q),
    }
}

/// One `/app/sign` attempt: the one-time key and what authorizes it.
pub(crate) struct SignAttempt {
    /// The one-time key every node seals to.
    pub(crate) key: sealed::OneTimeSecretKey,
    method: AttemptMethod,
}

enum AttemptMethod {
    /// Signs one request per node.
    Owner(Arc<EcdsaSigner>),
    /// One quoted authorization for every node.
    Attested(AttestedAuthorization),
}

impl SignAttempt {
    /// A fresh one-time key and, for an attested authority, its quote.
    pub(crate) fn new(authority: &Authority, app_id: &str) -> Result<Self, ClientError> {
        let key = sealed::OneTimeSecretKey::generate(&mut OsRng);
        let method = match authority {
            Authority::Owner(signer) => AttemptMethod::Owner(signer.clone()),
            Authority::Attested(provider) => {
                let mut nonce = [0u8; 32];
                OsRng.fill_bytes(&mut nonce);
                let attest_time = unix_now();
                let response_key = key.public_key().to_bytes();
                let rd = kms_attestation::app_sign_report_data(
                    &response_key,
                    &nonce,
                    app_id,
                    attest_time,
                );
                let evidence = provider
                    .quote(&rd)
                    .map_err(|e| ClientError::Attestation(e.to_string()))?;
                let (method, attestation) = app_evidence(evidence).wire();
                AttemptMethod::Attested(AttestedAuthorization {
                    attestation_method: method.to_string(),
                    attestation,
                    attest_time,
                    nonce: hex::encode(nonce),
                    response_key: Bytes32(response_key),
                })
            }
        };
        Ok(Self { key, method })
    }

    /// The authorization for the node of `operator` (`attestation_time`: the version's
    /// time for an owner-signed request; `None` = the node's now).
    pub(crate) fn authorization(
        &self,
        app_id: &str,
        attestation_time: Option<u64>,
        operator: OperatorAddress,
    ) -> Authorization {
        match &self.method {
            AttemptMethod::Attested(a) => Authorization::Attestation(a.clone()),
            AttemptMethod::Owner(signer) => {
                let mut nonce = [0u8; 32];
                OsRng.fill_bytes(&mut nonce);
                let mut auth = OwnerAuthorization {
                    node: operator,
                    expiry: unix_now() + OWNER_REQUEST_LIFETIME_SECS,
                    nonce: Bytes32(nonce),
                    response_key: Bytes32(self.key.public_key().to_bytes()),
                    // Replaced below by the signature over the finished request.
                    signature: signer.sign_hash(&[0; 32]),
                };
                auth.signature = signer.sign_hash(&owner_request_hash(
                    app_id,
                    attestation_time.unwrap_or(0),
                    &auth,
                ));
                Authorization::Owner(auth)
            }
        }
    }

    /// Whether the authorization selects the version by its own time (attested), so
    /// that a node cannot be asked for an older version by name.
    pub(crate) fn is_attested(&self) -> bool {
        matches!(self.method, AttemptMethod::Attested(_))
    }
}

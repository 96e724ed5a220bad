//! How a caller proves it may receive an app's key material at `POST /app/sign`, and
//! how the answer is sealed to it. Shared by the node (which checks) and the client
//! (which signs and opens). Formats in `docs/wire-format.md`.
//!
//! Two methods, each one an app's registration may name:
//! - **owner**: an EIP-712 signature by the app owner's registered Ethereum key over
//!   [`AppKeyRequest`] — the app, the node asked, the version time, an expiry, a
//!   nonce and the one-time key the partial is sealed to. A request signed for one
//!   node is refused by every other; a captured request is refused after its nonce
//!   was used or its expiry passed; an altered one-time key breaks the signature.
//! - **attestation**: a TDX quote (or Trust Authority token) whose `report_data`
//!   binds the one-time key, a nonce, the app and the attestation time
//!   (`kms_attestation::app_sign_report_data`), checked against the same
//!   measurement policy as `/secrets`.
//!
//! Either way the partial signature is sealed (HPKE, [`kms_crypto::sealed`]) to the
//! one-time key, with [`partial_aad`] binding the app, version and operator.

use alloy_primitives::{Address, B256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::ecdsa::EcdsaSignature;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// EIP-712 domain name of owner-signed requests.
pub const EIP712_NAME: &str = "EigenKMS";
/// EIP-712 domain version of owner-signed requests.
pub const EIP712_VERSION: &str = "1";
/// Longest an owner-signed request may be valid for (seconds from the node's now):
/// bounds how long a node must remember its nonce.
pub const MAX_OWNER_REQUEST_LIFETIME_SECS: u64 = 600;

sol! {
    /// The EIP-712 typed data an app owner signs to have one node release its
    /// partial of the app key, sealed to `responseKey`.
    struct AppKeyRequest {
        string appId;
        address node;
        uint64 attestationTime;
        uint64 expiry;
        bytes32 nonce;
        bytes32 responseKey;
    }
}

/// The EIP-712 domain: `{name: "EigenKMS", version: "1"}`.
pub fn eip712_domain() -> Eip712Domain {
    eip712_domain! {
        name: EIP712_NAME,
        version: EIP712_VERSION,
    }
}

/// 32 bytes as `0x`-hex (nonces, one-time keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bytes32(pub [u8; 32]);

impl std::fmt::Debug for Bytes32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "0x{}", hex::encode(self.0))
    }
}

impl Serialize for Bytes32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(self.0)))
    }
}

impl<'de> Deserialize<'de> for Bytes32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let body = s
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("expected 0x-prefixed hex"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(body, &mut out)
            .map_err(|_| serde::de::Error::custom("expected 32 bytes of hex"))?;
        Ok(Bytes32(out))
    }
}

/// What an owner-signed request carries besides the app ID and version time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OwnerAuthorization {
    /// The node asked (its operator address): a request is good at that node only.
    pub node: OperatorAddress,
    /// Unix seconds after which the node refuses the request.
    pub expiry: u64,
    /// Fresh per request; a node accepts a nonce once.
    pub nonce: Bytes32,
    /// The one-time X25519 public key the partial is sealed to.
    pub response_key: Bytes32,
    /// The owner's EIP-712 signature (`r ‖ s ‖ v`, low `s`).
    pub signature: EcdsaSignature,
}

/// What an attested request carries besides the app ID.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestedAuthorization {
    /// `dcap`, `ita` or `simulated` (insecure-dev nodes only).
    pub attestation_method: String,
    /// base64 of the quote (`dcap`, `simulated`) or the JWT (`ita`).
    pub attestation: String,
    /// When the TD attested (unix seconds): bound in `report_data`, and the key
    /// version used is the one active then.
    pub attest_time: u64,
    /// 16 to 64 bytes as hex (`0x` optional); a node accepts a nonce once.
    pub nonce: String,
    /// The one-time X25519 public key the partial is sealed to.
    pub response_key: Bytes32,
}

/// How a `/app/sign` caller proves it may receive the app's key material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Authorization {
    /// Signed by the app owner's registered key.
    Owner(OwnerAuthorization),
    /// A TDX attestation of a build registered for the app.
    Attestation(AttestedAuthorization),
}

impl Authorization {
    /// The method's name as in the wire format and the audit log.
    pub fn method(&self) -> &'static str {
        match self {
            Authorization::Owner(_) => "owner",
            Authorization::Attestation(_) => "attestation",
        }
    }

    /// The one-time key the answer is sealed to.
    pub fn response_key(&self) -> &Bytes32 {
        match self {
            Authorization::Owner(o) => &o.response_key,
            Authorization::Attestation(a) => &a.response_key,
        }
    }
}

/// The EIP-712 signing hash of an owner-signed request for `app_id` at `node`
/// (`attestation_time` 0 = the node's now).
pub fn owner_request_hash(
    app_id: &str,
    attestation_time: u64,
    auth: &OwnerAuthorization,
) -> [u8; 32] {
    let typed = AppKeyRequest {
        appId: app_id.to_string(),
        node: Address::from(*auth.node.as_bytes()),
        attestationTime: attestation_time,
        expiry: auth.expiry,
        nonce: B256::from(auth.nonce.0),
        responseKey: B256::from(auth.response_key.0),
    };
    typed.eip712_signing_hash(&eip712_domain()).0
}

/// Additional data of a sealed partial: `len(appID) (4, big-endian) ‖ appID ‖
/// version (8, big-endian) ‖ operator address (20)`. The client opens with the
/// values it expects, so an answer cannot be passed off as another app's, version's
/// or operator's.
pub fn partial_aad(app_id: &str, version: u64, operator: &OperatorAddress) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + app_id.len() + 8 + 20);
    out.extend_from_slice(&(app_id.len() as u32).to_be_bytes());
    out.extend_from_slice(app_id.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(operator.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::signer::ecdsa::EcdsaSigner;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn auth(signer: &EcdsaSigner, node: OperatorAddress) -> OwnerAuthorization {
        let mut a = OwnerAuthorization {
            node,
            expiry: 1_000,
            nonce: Bytes32([1; 32]),
            response_key: Bytes32([2; 32]),
            signature: signer.sign_hash(&[0; 32]),
        };
        a.signature = signer.sign_hash(&owner_request_hash("app", 0, &a));
        a
    }

    #[test]
    fn an_owner_signature_covers_every_field() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let owner = EcdsaSigner::random(&mut rng);
        let node = OperatorAddress::from_bytes([9; 20]);
        let a = auth(&owner, node);
        let h = owner_request_hash("app", 0, &a);
        a.signature.verify(&h, &owner.address()).unwrap();
        let changed = [
            owner_request_hash("app2", 0, &a),
            owner_request_hash("app", 1, &a),
            owner_request_hash(
                "app",
                0,
                &OwnerAuthorization {
                    node: OperatorAddress::from_bytes([8; 20]),
                    ..a.clone()
                },
            ),
            owner_request_hash(
                "app",
                0,
                &OwnerAuthorization {
                    expiry: 1_001,
                    ..a.clone()
                },
            ),
            owner_request_hash(
                "app",
                0,
                &OwnerAuthorization {
                    nonce: Bytes32([3; 32]),
                    ..a.clone()
                },
            ),
            owner_request_hash(
                "app",
                0,
                &OwnerAuthorization {
                    response_key: Bytes32([3; 32]),
                    ..a.clone()
                },
            ),
        ];
        for c in changed {
            assert_ne!(c, h);
            assert!(a.signature.verify(&c, &owner.address()).is_err());
        }
    }

    #[test]
    fn the_wire_form_names_the_method_and_refuses_unknown_fields() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let owner = EcdsaSigner::random(&mut rng);
        let a = Authorization::Owner(auth(&owner, OperatorAddress::from_bytes([9; 20])));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["method"], "owner");
        assert!(v["responseKey"].as_str().unwrap().starts_with("0x0202"));
        let back: Authorization = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(back, a);
        let mut extra = v.clone();
        extra["surprise"] = 1.into();
        assert!(serde_json::from_value::<Authorization>(extra).is_err());
        let mut short = v;
        short["nonce"] = "0x01".into();
        assert!(serde_json::from_value::<Authorization>(short).is_err());
    }

    #[test]
    fn the_aad_is_injective_in_its_fields() {
        let op = OperatorAddress::from_bytes([1; 20]);
        assert_ne!(partial_aad("ab", 1, &op), partial_aad("a", 1, &op));
        assert_ne!(partial_aad("a", 1, &op), partial_aad("a", 2, &op));
        assert_ne!(
            partial_aad("a", 1, &op),
            partial_aad("a", 1, &OperatorAddress::from_bytes([2; 20]))
        );
    }
}

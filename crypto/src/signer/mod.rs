//! Operator message signatures: BN254 (EigenLayer's BLS convention, verifiable by the
//! bn256 precompiles) and ECDSA secp256k1 (Ethereum style), behind one interface.
//! Operators always sign a 32-byte message hash, `keccak256(payload)`.

pub mod bn254;
pub mod certified;
pub mod ecdsa;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::address::OperatorAddress;
pub use bn254::{Bn254PublicKey, Bn254SecretKey, Bn254Signature, Bn254Signer, PreparedBn254Key};
pub use certified::{
    CertifiedSignature, CertifiedSigner, ProtocolKeyCertificate, ProtocolPublicKey,
    ProtocolSecretKey, SchnorrSignature,
};
pub use ecdsa::{EcdsaSignature, EcdsaSigner};

/// The signature scheme of an operator key (EigenLayer's KeyRegistrar curve types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureScheme {
    /// BLS on BN254.
    Bn254,
    /// ECDSA on secp256k1.
    Ecdsa,
}

/// Why a signature or key was refused. Never carries secret material.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignatureError {
    /// Wrong number of bytes.
    #[error("invalid length: expected {expected}, got {got}")]
    InvalidLength {
        /// Required length.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// Not a canonical encoding (coordinate ≥ modulus, bad recovery byte, …).
    #[error("invalid encoding: {0}")]
    InvalidEncoding(&'static str),
    /// A point off the curve or outside the prime-order subgroup, or the identity.
    #[error("invalid point: {0}")]
    InvalidPoint(&'static str),
    /// The signature's scheme differs from the key's.
    #[error("signature scheme does not match the key")]
    SchemeMismatch,
    /// A malleable ECDSA signature (high s).
    #[error("ECDSA signature has a high s value")]
    HighS,
    /// The signature does not verify.
    #[error("invalid signature")]
    Invalid,
    /// A certificate whose validity window does not cover the session, or that
    /// certifies another operator: replaying an old or foreign certificate.
    #[error("certificate does not cover this session")]
    NotCovered,
    /// A certificate issued for another deployment of the contracts.
    #[error("certificate is for another deployment")]
    WrongDeployment,
}

/// Something that signs protocol messages for an operator.
pub trait OperatorSigner: Send + Sync {
    /// The scheme of the key.
    fn scheme(&self) -> SignatureScheme;
    /// The public key others verify with.
    fn public_key(&self) -> OperatorPublicKey;
    /// Signs a 32-byte message hash.
    fn sign(&self, msg_hash: &[u8; 32]) -> OperatorSignature;
    /// The certificate of the protocol key it signs with, if it signs with one
    /// ([`CertifiedSigner`]); `None` for a signer that signs with the operator key.
    fn protocol_certificate(&self) -> Option<&ProtocolKeyCertificate> {
        None
    }
}

/// Something that checks operator signatures.
pub trait OperatorVerifier {
    /// Checks `sig` on `msg_hash`.
    fn verify(&self, msg_hash: &[u8; 32], sig: &OperatorSignature) -> Result<(), SignatureError>;
}

/// A registered operator key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scheme", content = "key", rename_all = "lowercase")]
pub enum OperatorPublicKey {
    /// BN254 key (G2 with its G1 twin).
    Bn254(Bn254PublicKey),
    /// ECDSA: the Ethereum address is the identity.
    Ecdsa(OperatorAddress),
}

impl OperatorVerifier for OperatorPublicKey {
    fn verify(&self, msg_hash: &[u8; 32], sig: &OperatorSignature) -> Result<(), SignatureError> {
        match (self, sig) {
            (Self::Bn254(pk), OperatorSignature::Bn254(s)) => pk.verify(msg_hash, s),
            (Self::Ecdsa(address), OperatorSignature::Ecdsa(s)) => s.verify(msg_hash, address),
            // The certificate and the Schnorr signature; its validity window is for the
            // caller to check against the message's session.
            (_, OperatorSignature::Certified(c)) => c.verify(self, msg_hash),
            _ => Err(SignatureError::SchemeMismatch),
        }
    }
}

/// A signature of either scheme.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorSignature {
    /// 64 bytes: `X ‖ Y` of a G1 point.
    Bn254(Bn254Signature),
    /// 65 bytes: `r ‖ s ‖ v`.
    Ecdsa(EcdsaSignature),
    /// A protocol key's Schnorr signature with the key's certificate by the operator
    /// key (229 bytes with a BN254 certificate, 230 with an ECDSA one).
    Certified(Box<CertifiedSignature>),
}

impl OperatorSignature {
    /// The canonical bytes (64 for BN254, 65 for ECDSA, see [`CertifiedSignature`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Self::Bn254(s) => s.to_bytes().to_vec(),
            Self::Ecdsa(s) => s.to_bytes().to_vec(),
            Self::Certified(c) => c.to_bytes(),
        }
    }

    /// Strict decoding for the operator key's scheme: a certified signature is told
    /// apart by its length (its certificate's scheme must be the operator key's).
    pub fn from_bytes(scheme: SignatureScheme, bytes: &[u8]) -> Result<Self, SignatureError> {
        let certified = match scheme {
            SignatureScheme::Bn254 => CertifiedSignature::LEN_BN254,
            SignatureScheme::Ecdsa => CertifiedSignature::LEN_ECDSA,
        };
        if bytes.len() == certified {
            return CertifiedSignature::from_slice(bytes).map(|c| Self::Certified(Box::new(c)));
        }
        match scheme {
            SignatureScheme::Bn254 => Bn254Signature::from_slice(bytes).map(Self::Bn254),
            SignatureScheme::Ecdsa => EcdsaSignature::from_slice(bytes).map(Self::Ecdsa),
        }
    }
}

pub(crate) mod hex65 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(b: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
        crate::hexser::serialize_bytes(b, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        crate::hexser::decode_array::<N>(&text).map_err(serde::de::Error::custom)
    }
}

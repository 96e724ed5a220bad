//! The operator's certificate of its encryption key, for one deployment and a window
//! of sessions (modelled on [`crate::signer::ProtocolKeyCertificate`]).
//!
//! The operator key signs
//! `keccak256("EIGENKMS-ENCRYPTION-KEY-V1" ‖ operator (20) ‖ pk (128, EIP-2537) ‖
//! deployment (32) ‖ not_before (8, BE) ‖ not_after (8, BE))`.
//! The deployment binds the key to one set of contracts, so that a certificate cannot
//! be replayed into another deployment (a testnet key, an abandoned instance); the
//! window bounds the sessions whose shares may be encrypted to the key, so that a key
//! lost after its window opens nothing dealt later.

use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use super::EncryptionPublicKey;
use crate::address::OperatorAddress;
use crate::signer::{
    OperatorPublicKey, OperatorSignature, OperatorSigner, OperatorVerifier, SignatureError,
};

/// Domain of the certificate digest.
pub const ENCRYPTION_KEY_DOMAIN: &[u8] = b"EIGENKMS-ENCRYPTION-KEY-V1";

/// The operator's statement that shares for it in sessions within
/// `[not_before, not_after]` (seconds) of `deployment` are encrypted to `key`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionKeyCertificate {
    /// The operator.
    pub operator: OperatorAddress,
    /// The certified encryption key.
    pub key: EncryptionPublicKey,
    /// The deployment (contracts) it is valid for.
    #[serde(with = "crate::signer::hex65")]
    pub deployment: [u8; 32],
    /// First session timestamp it covers.
    pub not_before: u64,
    /// Last session timestamp it covers.
    pub not_after: u64,
    /// The operator's signature over [`EncryptionKeyCertificate::digest`] (BN254,
    /// ECDSA, or a certified protocol key's).
    pub signature: OperatorSignature,
}

impl EncryptionKeyCertificate {
    /// What the operator signs (see the module docs for the layout).
    pub fn digest(
        operator: &OperatorAddress,
        key: &EncryptionPublicKey,
        deployment: &[u8; 32],
        not_before: u64,
        not_after: u64,
    ) -> [u8; 32] {
        let mut h = Keccak256::new();
        h.update(ENCRYPTION_KEY_DOMAIN);
        h.update(operator.as_bytes());
        h.update(key.to_eip2537());
        h.update(deployment);
        h.update(not_before.to_be_bytes());
        h.update(not_after.to_be_bytes());
        h.finalize().into()
    }

    /// Issues a certificate signed by `signer` (with whatever scheme it signs).
    pub fn issue(
        signer: &dyn OperatorSigner,
        operator: OperatorAddress,
        key: EncryptionPublicKey,
        deployment: [u8; 32],
        not_before: u64,
        not_after: u64,
    ) -> Self {
        let digest = Self::digest(&operator, &key, &deployment, not_before, not_after);
        Self {
            operator,
            key,
            deployment,
            not_before,
            not_after,
            signature: signer.sign(&digest),
        }
    }

    /// Whether its window covers a session at `timestamp`.
    pub fn covers(&self, timestamp: u64) -> bool {
        (self.not_before..=self.not_after).contains(&timestamp)
    }

    /// Checks that it may be used for the session at `session_timestamp` of
    /// `deployment`, with the operator's registered key. A signature by a certified
    /// protocol key counts only if that key's certificate is the same operator's and
    /// also covers the session: a protocol key outlives neither its own window nor the
    /// operator it speaks for.
    pub fn verify(
        &self,
        operator_key: &OperatorPublicKey,
        deployment: &[u8; 32],
        session_timestamp: u64,
    ) -> Result<(), SignatureError> {
        if self.not_before > self.not_after {
            return Err(SignatureError::InvalidEncoding("empty validity window"));
        }
        if !self.covers(session_timestamp) {
            return Err(SignatureError::NotCovered);
        }
        if self.deployment != *deployment {
            return Err(SignatureError::WrongDeployment);
        }
        if let OperatorSignature::Certified(c) = &self.signature
            && (c.certificate.operator != self.operator || !c.certificate.covers(session_timestamp))
        {
            return Err(SignatureError::NotCovered);
        }
        let digest = Self::digest(
            &self.operator,
            &self.key,
            &self.deployment,
            self.not_before,
            self.not_after,
        );
        operator_key.verify(&digest, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::{Bn254SecretKey, Bn254Signer, CertifiedSigner, EcdsaSigner};
    use crate::vss::encryption::EncryptionSecretKey;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    const DEPLOYMENT: [u8; 32] = [0xd5; 32];

    #[test]
    fn digest_layout_is_the_documented_one() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let key = EncryptionSecretKey::generate(&mut rng).public_key();
        let operator = OperatorAddress::from_bytes([7u8; 20]);
        let mut pre = b"EIGENKMS-ENCRYPTION-KEY-V1".to_vec();
        pre.extend_from_slice(&[7u8; 20]);
        pre.extend_from_slice(&key.to_eip2537());
        pre.extend_from_slice(&DEPLOYMENT);
        pre.extend_from_slice(&100u64.to_be_bytes());
        pre.extend_from_slice(&200u64.to_be_bytes());
        assert_eq!(pre.len(), 26 + 20 + 128 + 32 + 16);
        let expected: [u8; 32] = Keccak256::digest(&pre).into();
        assert_eq!(
            EncryptionKeyCertificate::digest(&operator, &key, &DEPLOYMENT, 100, 200),
            expected
        );
    }

    #[test]
    fn certificates_of_every_scheme_bind_key_deployment_and_window() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let bn = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
        let ec = EcdsaSigner::random(&mut rng);
        let bn_who = OperatorAddress::from_bytes([9u8; 20]);
        let certified = CertifiedSigner::generate(bn_who, &bn, 0, 1_000, &mut rng);
        let cases: [(OperatorAddress, &dyn OperatorSigner); 3] =
            [(bn_who, &bn), (ec.address(), &ec), (bn_who, &certified)];
        for (operator, signer) in cases {
            let key = EncryptionSecretKey::generate(&mut rng).public_key();
            let cert = EncryptionKeyCertificate::issue(signer, operator, key, DEPLOYMENT, 100, 200);
            let reg = signer.public_key();
            assert_eq!(cert.verify(&reg, &DEPLOYMENT, 100), Ok(()));
            assert_eq!(cert.verify(&reg, &DEPLOYMENT, 200), Ok(()));
            assert_eq!(
                cert.verify(&reg, &DEPLOYMENT, 99),
                Err(SignatureError::NotCovered)
            );
            assert_eq!(
                cert.verify(&reg, &DEPLOYMENT, 201),
                Err(SignatureError::NotCovered)
            );
            assert_eq!(
                cert.verify(&reg, &[0u8; 32], 150),
                Err(SignatureError::WrongDeployment)
            );
            // Any field changed breaks the signature.
            let mut c = cert.clone();
            c.key = EncryptionSecretKey::generate(&mut rng).public_key();
            assert!(c.verify(&reg, &DEPLOYMENT, 150).is_err());
            let mut c = cert.clone();
            c.not_after = 300;
            assert!(c.verify(&reg, &DEPLOYMENT, 150).is_err());
            let mut c = cert.clone();
            c.operator = OperatorAddress::from_bytes([1u8; 20]);
            assert!(c.verify(&reg, &DEPLOYMENT, 150).is_err());
            let mut c = cert.clone();
            c.deployment = [0u8; 32];
            assert!(c.verify(&reg, &[0u8; 32], 150).is_err());
            let mut c = cert.clone();
            (c.not_before, c.not_after) = (200, 100);
            assert!(c.verify(&reg, &DEPLOYMENT, 150).is_err());
            // Another operator's key does not check it.
            let stranger = Bn254Signer::new(Bn254SecretKey::random(&mut rng)).public_key();
            assert!(cert.verify(&stranger, &DEPLOYMENT, 150).is_err());
            // Serde round trip.
            let json = serde_json::to_string(&cert).unwrap();
            let back: EncryptionKeyCertificate = serde_json::from_str(&json).unwrap();
            assert_eq!(back, cert);
        }
    }

    #[test]
    fn a_protocol_key_certifies_only_within_its_own_window_and_operator() {
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let bn = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
        let who = OperatorAddress::from_bytes([9u8; 20]);
        let short = CertifiedSigner::generate(who, &bn, 100, 150, &mut rng);
        let key = EncryptionSecretKey::generate(&mut rng).public_key();
        let cert = EncryptionKeyCertificate::issue(&short, who, key, DEPLOYMENT, 100, 200);
        let reg = bn.public_key();
        assert_eq!(cert.verify(&reg, &DEPLOYMENT, 150), Ok(()));
        assert_eq!(
            cert.verify(&reg, &DEPLOYMENT, 151),
            Err(SignatureError::NotCovered)
        );
        // A protocol key of operator `who` signing for another operator.
        let other = OperatorAddress::from_bytes([8u8; 20]);
        let cert = EncryptionKeyCertificate::issue(&short, other, key, DEPLOYMENT, 100, 200);
        assert_eq!(
            cert.verify(&reg, &DEPLOYMENT, 120),
            Err(SignatureError::NotCovered)
        );
    }
}

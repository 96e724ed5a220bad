//! The operator key file: the operator's account key (its Ethereum address) and the
//! key its protocol messages are signed with (BN254, EigenLayer's BLS convention, or
//! the ECDSA account key itself).
//!
//! On disk the secrets are sealed with a passphrase: Argon2id (64 MiB, 3 passes)
//! derives an AES-256-GCM key. A plaintext key file exists only for development; it
//! is written by `keygen --insecure-plaintext` and loaded only when the node runs with
//! `insecure.plaintext_keys = true`, which the node announces in its log and `/health`.

use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{
    Bn254SecretKey, Bn254Signer, EcdsaSigner, OperatorPublicKey, OperatorSigner, SignatureScheme,
};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

const AAD: &[u8] = b"EIGENKMS-V1-OPERATOR-KEY";

/// Why a key file could not be written or read. Never carries secret material.
#[derive(Debug, Error)]
pub enum KeyFileError {
    /// Reading or writing the file.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not a key file of this format.
    #[error("key file {0} is malformed")]
    Malformed(String),
    /// Wrong passphrase or a modified file.
    #[error("key file {0} cannot be opened: wrong passphrase or modified file")]
    Unseal(String),
    /// A plaintext key file while plaintext keys are not allowed.
    #[error(
        "key file {0} is not encrypted; plaintext keys are a development mode: set insecure.plaintext_keys = true to accept them"
    )]
    PlaintextRefused(String),
    /// The file is sealed and no passphrase was given.
    #[error("key file {0} is encrypted and no passphrase was given (KMS_OPERATOR_KEY_PASSPHRASE)")]
    PassphraseMissing(String),
}

/// The secrets of one operator.
pub struct OperatorKeys {
    account: EcdsaSigner,
    account_secret: Zeroizing<[u8; 32]>,
    bn254: Option<Bn254SecretKey>,
    scheme: SignatureScheme,
}

#[derive(Serialize, Deserialize)]
struct Secrets {
    account: String,
    bn254: Option<String>,
}

impl Drop for Secrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.account.zeroize();
        self.bn254.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "format", rename_all = "kebab-case")]
enum KeyFile {
    /// Argon2id + AES-256-GCM.
    Sealed {
        address: OperatorAddress,
        scheme: SignatureScheme,
        salt: String,
        nonce: String,
        ciphertext: String,
    },
    /// Development only.
    InsecurePlaintext {
        address: OperatorAddress,
        scheme: SignatureScheme,
        account: String,
        bn254: Option<String>,
    },
}

impl OperatorKeys {
    /// Fresh keys for `scheme`.
    pub fn generate(scheme: SignatureScheme) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        let account = loop {
            OsRng.fill_bytes(secret.as_mut());
            if let Ok(s) = EcdsaSigner::from_bytes(&secret) {
                break s;
            }
        };
        let bn254 = (scheme == SignatureScheme::Bn254).then(|| Bn254SecretKey::random(&mut OsRng));
        Self {
            account,
            account_secret: secret,
            bn254,
            scheme,
        }
    }

    fn from_secrets(
        scheme: SignatureScheme,
        s: &Secrets,
        path: &str,
    ) -> Result<Self, KeyFileError> {
        let malformed = || KeyFileError::Malformed(path.to_string());
        let account_secret = Zeroizing::new(decode32(&s.account).ok_or_else(malformed)?);
        let account = EcdsaSigner::from_bytes(&account_secret).map_err(|_| malformed())?;
        let bn254 = match (&s.bn254, scheme) {
            (Some(b), SignatureScheme::Bn254) => {
                let bytes = Zeroizing::new(decode32(b).ok_or_else(malformed)?);
                Some(Bn254SecretKey::from_bytes_be(&bytes).map_err(|_| malformed())?)
            }
            (None, SignatureScheme::Ecdsa) => None,
            _ => return Err(malformed()),
        };
        Ok(Self {
            account,
            account_secret,
            bn254,
            scheme,
        })
    }

    fn secrets(&self) -> Secrets {
        Secrets {
            account: hex::encode(self.account_secret.as_ref()),
            bn254: self
                .bn254
                .as_ref()
                .map(|sk| hex::encode(sk.to_bytes_be().as_ref())),
        }
    }

    /// The operator's address (its account key's Ethereum address).
    pub fn address(&self) -> OperatorAddress {
        self.account.address()
    }

    /// The scheme protocol messages are signed with.
    pub fn scheme(&self) -> SignatureScheme {
        self.scheme
    }

    /// The key peers verify this operator's messages with.
    pub fn public_key(&self) -> OperatorPublicKey {
        self.signer().public_key()
    }

    /// The protocol message signer.
    pub fn signer(&self) -> Arc<dyn OperatorSigner> {
        match &self.bn254 {
            Some(sk) => Arc::new(Bn254Signer::new(
                Bn254SecretKey::from_bytes_be(&sk.to_bytes_be()).expect("own key"),
            )),
            None => Arc::new(EcdsaSigner::from_bytes(&self.account_secret).expect("own key")),
        }
    }

    /// Key material for deriving the key-store sealing key (the account secret).
    pub fn sealing_secret(&self) -> &[u8] {
        self.account_secret.as_ref()
    }

    /// Writes the key file, sealed under `passphrase`, or in plaintext when `None`
    /// (development only). Refuses to overwrite an existing file.
    pub fn write(&self, path: &Path, passphrase: Option<&str>) -> Result<(), KeyFileError> {
        let p = path.display().to_string();
        let secrets = self.secrets();
        let file = match passphrase {
            Some(pass) => {
                let mut salt = [0u8; 16];
                OsRng.fill_bytes(&mut salt);
                let mut nonce = [0u8; 12];
                OsRng.fill_bytes(&mut nonce);
                let key = derive(pass, &salt)?;
                let plain = Zeroizing::new(serde_json::to_vec(&secrets).expect("serializable"));
                let ct = Aes256Gcm::new_from_slice(key.as_ref())
                    .expect("32-byte key")
                    .encrypt(
                        Nonce::from_slice(&nonce),
                        Payload {
                            msg: &plain,
                            aad: AAD,
                        },
                    )
                    .expect("in-memory encryption cannot fail");
                KeyFile::Sealed {
                    address: self.address(),
                    scheme: self.scheme,
                    salt: hex::encode(salt),
                    nonce: hex::encode(nonce),
                    ciphertext: hex::encode(ct),
                }
            }
            None => KeyFile::InsecurePlaintext {
                address: self.address(),
                scheme: self.scheme,
                account: secrets.account.clone(),
                bn254: secrets.bn254.clone(),
            },
        };
        let text = Zeroizing::new(serde_json::to_string_pretty(&file).expect("serializable"));
        let io = |source| KeyFileError::Io {
            path: p.clone(),
            source,
        };
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        use std::io::Write;
        let mut f = opts.open(path).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)
    }

    /// Reads a key file. A plaintext file is accepted only with `allow_plaintext`.
    pub fn read(
        path: &Path,
        passphrase: Option<&str>,
        allow_plaintext: bool,
    ) -> Result<Self, KeyFileError> {
        let p = path.display().to_string();
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
                    path: p.clone(),
                    source,
                })?,
            );
        let file: KeyFile =
            serde_json::from_str(&text).map_err(|_| KeyFileError::Malformed(p.clone()))?;
        let keys = match file {
            KeyFile::InsecurePlaintext {
                address,
                scheme,
                account,
                bn254,
            } => {
                if !allow_plaintext {
                    return Err(KeyFileError::PlaintextRefused(p));
                }
                let s = Secrets { account, bn254 };
                let k = Self::from_secrets(scheme, &s, &p)?;
                (k, address)
            }
            KeyFile::Sealed {
                address,
                scheme,
                salt,
                nonce,
                ciphertext,
            } => {
                let pass = passphrase.ok_or_else(|| KeyFileError::PassphraseMissing(p.clone()))?;
                let malformed = || KeyFileError::Malformed(p.clone());
                let salt = hex::decode(salt).map_err(|_| malformed())?;
                let nonce: [u8; 12] = hex::decode(nonce)
                    .ok()
                    .and_then(|n| n.try_into().ok())
                    .ok_or_else(malformed)?;
                let ct = hex::decode(ciphertext).map_err(|_| malformed())?;
                let key = derive(pass, &salt)?;
                let plain = Zeroizing::new(
                    Aes256Gcm::new_from_slice(key.as_ref())
                        .expect("32-byte key")
                        .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad: AAD })
                        .map_err(|_| KeyFileError::Unseal(p.clone()))?,
                );
                let s: Secrets = serde_json::from_slice(&plain).map_err(|_| malformed())?;
                (Self::from_secrets(scheme, &s, &p)?, address)
            }
        };
        if keys.0.address() != keys.1 {
            return Err(KeyFileError::Malformed(p));
        }
        Ok(keys.0)
    }
}

fn derive(passphrase: &str, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyFileError> {
    let params = argon2::Params::new(64 * 1024, 3, 1, Some(32))
        .map_err(|_| KeyFileError::Malformed("argon2 parameters".into()))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|_| KeyFileError::Malformed("salt".into()))?;
    Ok(out)
}

fn decode32(s: &str) -> Option<[u8; 32]> {
    let v = Zeroizing::new(hex::decode(s.trim_start_matches("0x")).ok()?);
    v.as_slice().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_key_file_round_trips_and_refuses_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let keys = OperatorKeys::generate(SignatureScheme::Bn254);
        keys.write(&path, Some("correct horse")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(keys.account_secret.as_ref())));
        let back = OperatorKeys::read(&path, Some("correct horse"), false).unwrap();
        assert_eq!(back.address(), keys.address());
        assert_eq!(back.public_key(), keys.public_key());
        assert!(matches!(
            OperatorKeys::read(&path, Some("wrong"), false),
            Err(KeyFileError::Unseal(_))
        ));
        assert!(matches!(
            OperatorKeys::read(&path, None, false),
            Err(KeyFileError::PassphraseMissing(_))
        ));
        // Never overwritten.
        assert!(keys.write(&path, Some("x")).is_err());
    }

    #[test]
    fn plaintext_key_files_need_the_insecure_opt_in() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let keys = OperatorKeys::generate(SignatureScheme::Ecdsa);
        keys.write(&path, None).unwrap();
        assert!(matches!(
            OperatorKeys::read(&path, None, false),
            Err(KeyFileError::PlaintextRefused(_))
        ));
        let back = OperatorKeys::read(&path, None, true).unwrap();
        assert_eq!(back.public_key(), OperatorPublicKey::Ecdsa(keys.address()));
        let h = [7u8; 32];
        use kms_crypto::signer::OperatorVerifier;
        back.public_key()
            .verify(&h, &keys.signer().sign(&h))
            .unwrap();
    }

    #[test]
    fn a_key_file_whose_address_was_edited_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        OperatorKeys::generate(SignatureScheme::Ecdsa)
            .write(&path, None)
            .unwrap();
        let other = OperatorKeys::generate(SignatureScheme::Ecdsa).address();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["address"] = serde_json::to_value(other).unwrap();
        std::fs::write(&path, v.to_string()).unwrap();
        assert!(matches!(
            OperatorKeys::read(&path, None, true),
            Err(KeyFileError::Malformed(_))
        ));
    }
}

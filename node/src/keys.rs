//! The operator key file: the operator's account key (its Ethereum address) and its
//! registered key (BN254, EigenLayer's BLS convention, or the ECDSA account key
//! itself), which certifies the in-memory protocol keys ([`ProtocolKeys`]) that sign
//! its protocol messages.
//!
//! On disk the secrets are sealed with a passphrase: Argon2id (64 MiB, 3 passes)
//! derives an AES-256-GCM key. A plaintext key file exists only for development; it
//! is written by `keygen --insecure-plaintext` and loaded only when the node runs with
//! `insecure.plaintext_keys = true`, which the node announces in its log and `/health`.
//!
//! Other secret files the node reads (its TLS private key) are sealed the same way
//! under the same passphrase ([`seal_secret`], `kms-node seal`), each with its purpose
//! in the authenticated data, so that one sealed file cannot stand in for another.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{
    Bn254SecretKey, Bn254Signer, CertifiedSigner, EcdsaSigner, OperatorPublicKey, OperatorSigner,
    SignatureScheme,
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
    /// A sealed secret file made for another use.
    #[error("{path} is sealed for {found:?}, not {expected:?}")]
    WrongPurpose {
        /// The file.
        path: String,
        /// The use it was read for.
        expected: String,
        /// The use it was sealed for.
        found: String,
    },
    /// The file is sealed and no passphrase was given.
    #[error(
        "{0} is encrypted and no passphrase was given (KMS_OPERATOR_KEY_PASSPHRASE, or operator.unlock = \"remote\")"
    )]
    PassphraseMissing(String),
}

/// The public header of a key file ([`OperatorKeys::peek`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyFileInfo {
    /// The operator's address, as the file states it (checked when it is opened).
    pub address: OperatorAddress,
    /// The scheme of its message key.
    pub scheme: SignatureScheme,
    /// Whether it is sealed under a passphrase.
    pub sealed: bool,
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
        #[serde(flatten)]
        sealed: Sealed,
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
                let plain = Zeroizing::new(serde_json::to_vec(&secrets).expect("serializable"));
                KeyFile::Sealed {
                    address: self.address(),
                    scheme: self.scheme,
                    sealed: Sealed::seal(pass, AAD, &plain)?,
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
        write_new_private(path, text.as_bytes())
            .map_err(|source| KeyFileError::Io { path: p, source })
    }

    /// What a key file says about itself without being opened: the operator's
    /// address, its scheme and whether it is sealed.
    pub fn peek(path: &Path) -> Result<KeyFileInfo, KeyFileError> {
        let (_, file) = read_key_file(path)?;
        Ok(match file {
            KeyFile::Sealed {
                address, scheme, ..
            } => KeyFileInfo {
                address,
                scheme,
                sealed: true,
            },
            KeyFile::InsecurePlaintext {
                address,
                scheme,
                account,
                bn254,
            } => {
                // Zeroized on drop.
                drop(Secrets { account, bn254 });
                KeyFileInfo {
                    address,
                    scheme,
                    sealed: false,
                }
            }
        })
    }

    /// Reads a key file. A plaintext file is accepted only with `allow_plaintext`.
    pub fn read(
        path: &Path,
        passphrase: Option<&str>,
        allow_plaintext: bool,
    ) -> Result<Self, KeyFileError> {
        let (p, file) = read_key_file(path)?;
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
                sealed,
            } => {
                let pass = passphrase.ok_or_else(|| KeyFileError::PassphraseMissing(p.clone()))?;
                let malformed = || KeyFileError::Malformed(p.clone());
                let plain = sealed.open(pass, AAD, &p)?;
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

/// Reads and parses a key file; returns its name for errors, and its content.
fn read_key_file(path: &Path) -> Result<(String, KeyFile), KeyFileError> {
    let p = path.display().to_string();
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
                path: p.clone(),
                source,
            })?,
        );
    let file = serde_json::from_str(&text).map_err(|_| KeyFileError::Malformed(p.clone()))?;
    Ok((p, file))
}

/// Argon2id + AES-256-GCM under a passphrase: the fields of a sealed file, in hex.
#[derive(Serialize, Deserialize)]
struct Sealed {
    salt: String,
    nonce: String,
    ciphertext: String,
}

impl Sealed {
    fn seal(passphrase: &str, aad: &[u8], plain: &[u8]) -> Result<Self, KeyFileError> {
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let key = derive(passphrase, &salt)?;
        let ciphertext = Aes256Gcm::new_from_slice(key.as_ref())
            .expect("32-byte key")
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
            .expect("in-memory encryption cannot fail");
        Ok(Self {
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        })
    }

    /// The plaintext; `path` names the file in errors.
    fn open(
        &self,
        passphrase: &str,
        aad: &[u8],
        path: &str,
    ) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
        let malformed = || KeyFileError::Malformed(path.to_string());
        let salt = hex::decode(&self.salt).map_err(|_| malformed())?;
        let nonce: [u8; 12] = hex::decode(&self.nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(malformed)?;
        let ct = hex::decode(&self.ciphertext).map_err(|_| malformed())?;
        let key = derive(passphrase, &salt)?;
        Aes256Gcm::new_from_slice(key.as_ref())
            .expect("32-byte key")
            .decrypt(Nonce::from_slice(&nonce), Payload { msg: &ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| KeyFileError::Unseal(path.to_string()))
    }
}

/// The `format` of a sealed secret file.
const SECRET_FORMAT: &str = "eigenkms-sealed-secret/v1";

/// A secret other than the operator key, sealed under the operator's passphrase.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    format: String,
    /// What the secret is for (`tls-key`); bound as authenticated data.
    purpose: String,
    #[serde(flatten)]
    sealed: Sealed,
}

fn secret_aad(purpose: &str) -> Vec<u8> {
    [b"EIGENKMS-V1-SEALED-SECRET:".as_slice(), purpose.as_bytes()].concat()
}

/// Seals `plain` (for example a TLS private key in PEM) under `passphrase` for
/// `purpose`, as the JSON text of a sealed secret file.
pub fn seal_secret(plain: &[u8], purpose: &str, passphrase: &str) -> Result<String, KeyFileError> {
    let file = SecretFile {
        format: SECRET_FORMAT.to_string(),
        purpose: purpose.to_string(),
        sealed: Sealed::seal(passphrase, &secret_aad(purpose), plain)?,
    };
    Ok(serde_json::to_string_pretty(&file).expect("serializable"))
}

/// Whether `bytes` is a sealed secret file (whatever its purpose).
pub fn is_sealed_secret(bytes: &[u8]) -> bool {
    serde_json::from_slice::<SecretFile>(bytes).is_ok_and(|f| f.format == SECRET_FORMAT)
}

/// Opens a sealed secret file's `bytes` (read from `path`, named in errors) for
/// `purpose`: a file sealed for another purpose, a wrong passphrase and a modified
/// file are all refused.
pub fn unseal_secret(
    bytes: &[u8],
    purpose: &str,
    passphrase: Option<&str>,
    path: &str,
) -> Result<Zeroizing<Vec<u8>>, KeyFileError> {
    let file: SecretFile =
        serde_json::from_slice(bytes).map_err(|_| KeyFileError::Malformed(path.to_string()))?;
    if file.format != SECRET_FORMAT {
        return Err(KeyFileError::Malformed(path.to_string()));
    }
    if file.purpose != purpose {
        return Err(KeyFileError::WrongPurpose {
            path: path.to_string(),
            expected: purpose.to_string(),
            found: file.purpose,
        });
    }
    let pass = passphrase.ok_or_else(|| KeyFileError::PassphraseMissing(path.to_string()))?;
    file.sealed.open(pass, &secret_aad(purpose), path)
}

/// Writes `bytes` to a new file readable by its owner only; never overwrites.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
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

/// How long (seconds of session time) a protocol key's certificate lasts: a week.
pub const PROTOCOL_KEY_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// The node's protocol keys: what signs its protocol messages, certified by the
/// operator key (`kms_crypto::signer::certified`). A key is generated in memory for
/// the first session that needs one, certified for `lifetime` seconds of session time
/// from that session's timestamp, and replaced (the old one zeroized once no session
/// holds it) when a session falls outside its window. Never written anywhere; a
/// restart makes a new one.
pub struct ProtocolKeys {
    operator: OperatorAddress,
    operator_signer: Arc<dyn OperatorSigner>,
    lifetime: u64,
    current: std::sync::Mutex<Option<Arc<CertifiedSigner>>>,
}

impl ProtocolKeys {
    /// Keys certified by `operator_signer` for `operator`, each for `lifetime` seconds.
    pub fn new(
        operator: OperatorAddress,
        operator_signer: Arc<dyn OperatorSigner>,
        lifetime: u64,
    ) -> Self {
        Self {
            operator,
            operator_signer,
            lifetime,
            current: std::sync::Mutex::new(None),
        }
    }

    /// The key for the session at `ts` (seconds): the current one if its certificate
    /// covers `ts`, else a fresh one certified for `[ts, ts + lifetime]`.
    pub fn for_session(&self, ts: u64) -> Arc<CertifiedSigner> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = current.as_ref().filter(|k| k.certificate().covers(ts)) {
            return k.clone();
        }
        let key = Arc::new(CertifiedSigner::generate(
            self.operator,
            self.operator_signer.as_ref(),
            ts,
            ts.saturating_add(self.lifetime),
            &mut OsRng,
        ));
        tracing::info!(
            protocol_key = %hex::encode(key.certificate().key.to_bytes()),
            not_before = ts,
            not_after = key.certificate().not_after,
            "new protocol key, certified by the operator key"
        );
        *current = Some(key.clone());
        key
    }
}

/// How long an encryption key is certified for.
pub const ENCRYPTION_KEY_LIFETIME_SECS: u64 = 7 * 24 * 3600;

/// Slack before a new encryption key's creation that its certificate also covers: a
/// session's timestamp is its boundary, which a node reaches a little before it
/// serves `/attestation` for it.
const ENCRYPTION_KEY_SLACK_SECS: u64 = 3600;

/// The node's share-encryption keys (protocol v2): BLS12-381 G1 keys generated in
/// memory, one per epoch of `lifetime` seconds of session time and deployment,
/// certified by the operator key for that epoch (plus an hour of slack each side),
/// served in `GET /attestation` (over the TLS connection whose certificate the quote
/// binds, so peers receive it from the attested TD only). Never written anywhere; a
/// restart makes new ones.
///
/// The key of a session is a function of its timestamp, not of when it is asked for:
/// every peer that fetches this node's key for a session (`/attestation?session=ts`)
/// gets the same one, however their requests straddle an epoch's end, so a rotation
/// can never give peers different session hashes.
pub struct EncryptionKeys {
    operator: OperatorAddress,
    operator_signer: Arc<dyn OperatorSigner>,
    lifetime: u64,
    /// By (epoch, deployment); the last few epochs only.
    keys: std::sync::Mutex<BTreeMap<(u64, [u8; 32]), CertifiedEncryptionKey>>,
}

/// Epochs of keys kept (the current one and the two before it).
const ENCRYPTION_KEY_EPOCHS_KEPT: u64 = 3;

/// A secret encryption key with its certificate.
#[derive(Clone)]
pub struct CertifiedEncryptionKey {
    /// The secret key (zeroized when the last holder drops it).
    pub secret: Arc<kms_crypto::vss::encryption::EncryptionSecretKey>,
    /// Its certificate.
    pub certificate: kms_crypto::vss::encryption::EncryptionKeyCertificate,
}

impl EncryptionKeys {
    /// Keys certified by `operator_signer` for `operator`, one per `lifetime` seconds.
    pub fn new(
        operator: OperatorAddress,
        operator_signer: Arc<dyn OperatorSigner>,
        lifetime: u64,
    ) -> Self {
        Self {
            operator,
            operator_signer,
            lifetime: lifetime.max(1),
            keys: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// The key of the session at `ts` (seconds) for `deployment`, asked at `now`: the
    /// key of `ts`'s epoch, made and certified on first use. A `ts` more than an
    /// epoch away from `now` (a peer's request cannot choose the epochs kept) gets
    /// the key of `now`'s epoch.
    pub fn for_session(&self, ts: u64, now: u64, deployment: &[u8; 32]) -> CertifiedEncryptionKey {
        let ts = if ts.abs_diff(now) > self.lifetime {
            now
        } else {
            ts
        };
        let epoch = ts / self.lifetime;
        let oldest = (now / self.lifetime).saturating_sub(ENCRYPTION_KEY_EPOCHS_KEPT - 1);
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = keys.get(&(epoch, *deployment)) {
            return k.clone();
        }
        let secret = kms_crypto::vss::encryption::EncryptionSecretKey::generate(&mut OsRng);
        let not_before = (epoch * self.lifetime).saturating_sub(ENCRYPTION_KEY_SLACK_SECS);
        let not_after = ((epoch + 1) * self.lifetime).saturating_add(ENCRYPTION_KEY_SLACK_SECS);
        let certificate = kms_crypto::vss::encryption::EncryptionKeyCertificate::issue(
            self.operator_signer.as_ref(),
            self.operator,
            secret.public_key(),
            *deployment,
            not_before,
            not_after,
        );
        tracing::info!(
            encryption_key = %hex::encode(certificate.key.to_eip2537()),
            epoch,
            not_before,
            not_after,
            "new share-encryption key, certified by the operator key"
        );
        let k = CertifiedEncryptionKey {
            secret: Arc::new(secret),
            certificate,
        };
        keys.insert((epoch, *deployment), k.clone());
        keys.retain(|(e, _), _| *e >= oldest);
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_keys_last_their_window_and_are_certified_by_the_operator_key() {
        let op = OperatorKeys::generate(SignatureScheme::Bn254);
        let keys = ProtocolKeys::new(op.address(), op.signer(), 100);
        let a = keys.for_session(1_000);
        let c = a.certificate();
        assert_eq!(
            (c.operator, c.not_before, c.not_after),
            (op.address(), 1_000, 1_100)
        );
        assert_eq!(c.verify(&op.signer().public_key()), Ok(()));
        // The same key for every session in the window, a new one after it.
        assert!(Arc::ptr_eq(&a, &keys.for_session(1_050)));
        assert!(Arc::ptr_eq(&a, &keys.for_session(1_100)));
        let b = keys.for_session(1_101);
        assert!(!Arc::ptr_eq(&a, &b));
        assert_ne!(a.certificate().key, b.certificate().key);
        assert_eq!(b.certificate().not_before, 1_101);
        // A session before the current window (a late one) gets a key of its own.
        let late = keys.for_session(1_000);
        assert!(late.certificate().covers(1_000) && !Arc::ptr_eq(&late, &b));
        // Signatures by a protocol key check against the operator's registered key.
        use kms_crypto::signer::OperatorVerifier;
        let h = [9u8; 32];
        assert!(op.signer().public_key().verify(&h, &late.sign(&h)).is_ok());
    }

    #[test]
    fn encryption_keys_are_certified_per_epoch_and_deployment_whenever_asked() {
        let op = OperatorKeys::generate(SignatureScheme::Bn254);
        let keys = EncryptionKeys::new(op.address(), op.signer(), 10_000);
        let dep = [7u8; 32];
        let a = keys.for_session(100_000, 100_000, &dep);
        let c = &a.certificate;
        let pk = op.signer().public_key();
        // The epoch [100 000, 110 000) with an hour each side.
        assert!(c.verify(&pk, &dep, 100_000).is_ok());
        assert!(c.verify(&pk, &dep, 100_000 - 3_600).is_ok());
        assert!(c.verify(&pk, &dep, 110_000 + 3_600).is_ok());
        assert!(c.verify(&pk, &dep, 100_000 - 3_601).is_err());
        assert!(c.verify(&pk, &[8u8; 32], 100_000).is_err());
        assert_eq!(c.key, a.secret.public_key());
        // Every session of the epoch gets the same key, in any order of asking.
        assert_eq!(
            keys.for_session(109_999, 105_000, &dep).certificate,
            a.certificate
        );
        let b = keys.for_session(110_000, 105_000, &dep);
        assert_ne!(b.certificate.key, a.certificate.key);
        assert_eq!(
            keys.for_session(105_000, 110_500, &dep).certificate,
            a.certificate
        );
        // Another deployment never reuses the key.
        assert_ne!(
            keys.for_session(110_000, 110_000, &[9u8; 32])
                .certificate
                .key,
            b.certificate.key
        );
        // A request far from now cannot evict the epochs in use.
        let far = keys.for_session(10_000_000, 110_000, &dep);
        assert_eq!(far.certificate, b.certificate);
        assert_eq!(
            keys.for_session(105_000, 110_000, &dep).certificate,
            a.certificate
        );
    }

    #[test]
    fn sealed_key_file_round_trips_and_refuses_a_wrong_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let keys = OperatorKeys::generate(SignatureScheme::Bn254);
        keys.write(&path, Some("correct horse")).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&hex::encode(keys.account_secret.as_ref())));
        // The on-disk shape key files have always had.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        fields.sort();
        assert_eq!(
            fields,
            ["address", "ciphertext", "format", "nonce", "salt", "scheme"]
        );
        assert_eq!(v["format"], "sealed");
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

    #[test]
    fn sealed_secrets_open_only_for_their_purpose_and_passphrase() {
        let pem = b"-----BEGIN PRIVATE KEY-----\nhunter2material\n-----END PRIVATE KEY-----\n";
        let text = seal_secret(pem, "tls-key", "correct horse battery").unwrap();
        assert!(is_sealed_secret(text.as_bytes()));
        assert!(!is_sealed_secret(pem));
        assert!(!text.contains("hunter2material"));
        let back = unseal_secret(
            text.as_bytes(),
            "tls-key",
            Some("correct horse battery"),
            "f",
        )
        .unwrap();
        assert_eq!(back.as_slice(), pem);
        assert!(matches!(
            unseal_secret(text.as_bytes(), "tls-key", Some("wrong"), "f"),
            Err(KeyFileError::Unseal(_))
        ));
        assert!(matches!(
            unseal_secret(text.as_bytes(), "tls-key", None, "f"),
            Err(KeyFileError::PassphraseMissing(_))
        ));
        assert!(matches!(
            unseal_secret(text.as_bytes(), "other", Some("correct horse battery"), "f"),
            Err(KeyFileError::WrongPurpose { .. })
        ));
        // Relabelling the purpose does not help: it is authenticated.
        let relabelled = text.replace("\"tls-key\"", "\"other\"");
        assert!(matches!(
            unseal_secret(
                relabelled.as_bytes(),
                "other",
                Some("correct horse battery"),
                "f"
            ),
            Err(KeyFileError::Unseal(_))
        ));
    }

    #[test]
    fn peek_reads_the_header_without_the_passphrase() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = dir.path().join("sealed.key");
        let plain = dir.path().join("plain.key");
        let a = OperatorKeys::generate(SignatureScheme::Bn254);
        let b = OperatorKeys::generate(SignatureScheme::Ecdsa);
        a.write(&sealed, Some("correct horse")).unwrap();
        b.write(&plain, None).unwrap();
        let info = OperatorKeys::peek(&sealed).unwrap();
        assert_eq!(
            info,
            KeyFileInfo {
                address: a.address(),
                scheme: SignatureScheme::Bn254,
                sealed: true
            }
        );
        assert!(!OperatorKeys::peek(&plain).unwrap().sealed);
        assert!(matches!(
            OperatorKeys::peek(&dir.path().join("missing")),
            Err(KeyFileError::Io { .. })
        ));
    }
}

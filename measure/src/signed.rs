//! Release approvals: Ed25519 signatures over a `measurements/<release>.json` file.
//!
//! A node admits peers whose measurements it knows. Its own image cannot list a
//! later release (the measurements of the next image do not exist yet), so a node of
//! release R1 learns about R2 from a signed file: `R2.json` with `R2.json.sig`,
//! signed by release keys whose public halves are in R1's measured configuration
//! (`attestation.release_signers`), at least `release_signatures_required` of them.
//! Rolling out R2 then needs no change to R1 nodes beyond dropping the two files on
//! their data disks, and the host that holds those disks cannot forge an approval.
//!
//! Each signature is over `"EIGENKMS-RELEASE-V1" ‖ SHA-256(exact file bytes)`; the
//! signature file names the release and the file's SHA-256 for diagnosis, and the
//! verifier checks both against the file it has.

use std::collections::BTreeSet;

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::release::{ReleaseError, ReleaseMeasurements};

/// `format` of a signature file.
pub const SIGNATURES_FORMAT: &str = "eigenkms-release-signatures/v1";
/// Domain tag of the signed message.
pub const SIGNATURE_TAG: &[u8] = b"EIGENKMS-RELEASE-V1";
/// File name suffix of a release's signature file (`<release>.json.sig`).
pub const SIGNATURE_SUFFIX: &str = ".sig";

/// Why a signature file was refused or could not be made.
#[derive(Debug, Error)]
pub enum SignatureError {
    /// The measurements file itself is unreadable.
    #[error(transparent)]
    Release(#[from] ReleaseError),
    /// The signature file is not of this format.
    #[error("signature file: {0}")]
    Malformed(String),
    /// The signature file is for another file or release.
    #[error("signature file is for {what} {found}, the measurements file has {expected}")]
    Mismatch {
        /// `release` or `file_sha256`.
        what: &'static str,
        /// In the signature file.
        found: String,
        /// In (or of) the measurements file.
        expected: String,
    },
    /// Fewer valid signatures from listed signers than required.
    #[error(
        "release {release}: {valid} valid signature(s) from listed release signers, {required} required"
    )]
    NotEnough {
        /// The release.
        release: String,
        /// Distinct listed signers with a valid signature.
        valid: usize,
        /// The requirement.
        required: usize,
    },
    /// A signing key that is not an Ed25519 PKCS#8 document.
    #[error("signing key: not an Ed25519 PKCS#8 key")]
    BadKey,
}

/// One signer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSignature {
    /// The signer's Ed25519 public key (64 hex digits).
    pub signer: String,
    /// The signature (128 hex digits).
    pub signature: String,
}

/// `<release>.json.sig`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSignatures {
    /// Always [`SIGNATURES_FORMAT`].
    pub format: String,
    /// The release the signed file describes.
    pub release: String,
    /// SHA-256 of the signed file (hex).
    pub file_sha256: String,
    /// One entry per signer.
    pub signatures: Vec<ReleaseSignature>,
}

impl ReleaseSignatures {
    /// Parses a signature file.
    pub fn from_json(text: &str) -> Result<Self, SignatureError> {
        let s: Self =
            serde_json::from_str(text).map_err(|e| SignatureError::Malformed(e.to_string()))?;
        if s.format != SIGNATURES_FORMAT {
            return Err(SignatureError::Malformed(format!(
                "format {:?}, expected {SIGNATURES_FORMAT:?}",
                s.format
            )));
        }
        Ok(s)
    }

    /// Pretty JSON with a final newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }
}

fn signed_message(file: &[u8]) -> Vec<u8> {
    [SIGNATURE_TAG, Sha256::digest(file).as_slice()].concat()
}

/// A new Ed25519 release key: its PKCS#8 document (keep it offline) and public key.
pub fn generate_key() -> (Vec<u8>, [u8; 32]) {
    let rng = ring::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("a key ring just made");
    let public = pair
        .public_key()
        .as_ref()
        .try_into()
        .expect("Ed25519 public keys have 32 bytes");
    (pkcs8.as_ref().to_vec(), public)
}

/// Signs the measurements file `file` with the PKCS#8 key `pkcs8`, adding to
/// `existing` signatures of the same file (one entry per signer: re-signing
/// replaces that signer's entry).
pub fn sign(
    file: &[u8],
    pkcs8: &[u8],
    existing: Option<ReleaseSignatures>,
) -> Result<ReleaseSignatures, SignatureError> {
    let release = parse_release(file)?.release;
    let digest = hex::encode(Sha256::digest(file));
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|_| SignatureError::BadKey)?;
    let mut out = match existing {
        Some(e) => {
            check_names(&e, &release, &digest)?;
            e
        }
        None => ReleaseSignatures {
            format: SIGNATURES_FORMAT.to_string(),
            release,
            file_sha256: digest,
            signatures: Vec::new(),
        },
    };
    let signer = hex::encode(pair.public_key().as_ref());
    out.signatures.retain(|s| s.signer != signer);
    out.signatures.push(ReleaseSignature {
        signer,
        signature: hex::encode(pair.sign(&signed_message(file)).as_ref()),
    });
    Ok(out)
}

/// The measurements file `file` (its bytes, as signed).
fn parse_release(file: &[u8]) -> Result<ReleaseMeasurements, SignatureError> {
    let text = std::str::from_utf8(file)
        .map_err(|_| SignatureError::Malformed("measurements file is not UTF-8".into()))?;
    Ok(ReleaseMeasurements::from_json(text)?)
}

fn check_names(s: &ReleaseSignatures, release: &str, digest: &str) -> Result<(), SignatureError> {
    if s.release != release {
        return Err(SignatureError::Mismatch {
            what: "release",
            found: s.release.clone(),
            expected: release.to_string(),
        });
    }
    if !s.file_sha256.eq_ignore_ascii_case(digest) {
        return Err(SignatureError::Mismatch {
            what: "file_sha256",
            found: s.file_sha256.clone(),
            expected: digest.to_string(),
        });
    }
    Ok(())
}

/// Checks that at least `required` distinct signers of `signers` (Ed25519 public
/// keys) signed `file`, and returns the release it describes. Signatures of
/// unlisted keys, invalid signatures and repeats of a signer count for nothing.
pub fn verify(
    file: &[u8],
    signatures: &ReleaseSignatures,
    signers: &[[u8; 32]],
    required: usize,
) -> Result<ReleaseMeasurements, SignatureError> {
    let release = parse_release(file)?;
    check_names(
        signatures,
        &release.release,
        &hex::encode(Sha256::digest(file)),
    )?;
    let message = signed_message(file);
    let mut valid = BTreeSet::new();
    for s in &signatures.signatures {
        let Some(key) = hex::decode(&s.signer)
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
        else {
            continue;
        };
        if !signers.contains(&key) {
            continue;
        }
        let Ok(sig) = hex::decode(&s.signature) else {
            continue;
        };
        if UnparsedPublicKey::new(&ED25519, key)
            .verify(&message, &sig)
            .is_ok()
        {
            valid.insert(key);
        }
    }
    if required == 0 || valid.len() < required {
        return Err(SignatureError::NotEnough {
            release: release.release,
            valid: valid.len(),
            required,
        });
    }
    Ok(release)
}

/// Parses a release signer's public key (64 hex digits, optional `0x`).
pub fn parse_signer(hex_text: &str) -> Option<[u8; 32]> {
    hex::decode(hex_text.trim().trim_start_matches("0x"))
        .ok()
        .and_then(|k| k.try_into().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Vec<u8> {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../measurements/eigenkms-0.1.0-dev-3380044144b4.json"),
        )
        .unwrap()
    }

    #[test]
    fn a_threshold_of_listed_signers_approves_exactly_the_signed_file() {
        let file = committed();
        let (k1, p1) = generate_key();
        let (k2, p2) = generate_key();
        let (k3, p3) = generate_key();
        let one = sign(&file, &k1, None).unwrap();
        let two = sign(&file, &k2, Some(one.clone())).unwrap();
        // Re-signing replaces the signer's entry instead of counting twice.
        let two = sign(&file, &k2, Some(two)).unwrap();
        assert_eq!(two.signatures.len(), 2);
        let parsed = ReleaseSignatures::from_json(&two.to_json()).unwrap();
        assert_eq!(parsed, two);

        let signers = [p1, p2, p3];
        let release = verify(&file, &two, &signers, 2).unwrap();
        assert_eq!(release.release, "eigenkms-0.1.0-dev-3380044144b4");
        assert!(matches!(
            verify(&file, &two, &signers, 3),
            Err(SignatureError::NotEnough { valid: 2, .. })
        ));
        // Only listed signers count; zero required is a misconfiguration, not "open".
        assert!(matches!(
            verify(&file, &two, &[p3], 1),
            Err(SignatureError::NotEnough { valid: 0, .. })
        ));
        assert!(verify(&file, &two, &signers, 0).is_err());
        let _ = k3;

        // A duplicated entry of one signer counts once.
        let mut dup = one.clone();
        dup.signatures.push(one.signatures[0].clone());
        assert!(verify(&file, &dup, &signers, 2).is_err());

        // Another file (one byte changed: a different RTMR) is not approved.
        let mut other = String::from_utf8(file.clone()).unwrap();
        let at = other.find("\"rtmr1\"").unwrap();
        let value_at = at + other[at..].find("\"value\": \"").unwrap() + 10;
        let flipped = if &other[value_at..value_at + 1] == "0" {
            "1"
        } else {
            "0"
        };
        other.replace_range(value_at..value_at + 1, flipped);
        assert!(matches!(
            verify(other.as_bytes(), &two, &signers, 1),
            Err(SignatureError::Mismatch {
                what: "file_sha256",
                ..
            })
        ));
        // The names are checked, and a forged digest does not help: the signature is
        // over the file's own digest.
        let mut forged = two.clone();
        forged.file_sha256 = hex::encode(Sha256::digest(other.as_bytes()));
        assert!(matches!(
            verify(other.as_bytes(), &forged, &signers, 1),
            Err(SignatureError::NotEnough { valid: 0, .. })
        ));
        // A corrupted signature counts for nothing.
        let mut bad = one;
        let first = bad.signatures[0].signature.remove(0);
        bad.signatures[0]
            .signature
            .insert(0, if first == '0' { '1' } else { '0' });
        assert!(verify(&file, &bad, &signers, 1).is_err());
        assert_eq!(parse_signer(&format!("0x{}", hex::encode(p1))), Some(p1));
        assert_eq!(parse_signer("abcd"), None);
    }
}

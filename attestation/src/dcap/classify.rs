//! Turns `dcap-qvl`'s rejection reasons into this crate's error kinds.
//!
//! `dcap-qvl` reports failures as messages; the crate is pinned to an exact
//! version, and the tests in `tests/dcap.rs` derive each negative case and assert
//! its kind, so a change of wording upstream shows up as a failing test rather
//! than as a silently different kind. Whatever is not recognised stays a
//! rejection ([`Error::Dcap`]): classification can only change the name of a
//! refusal, never turn it into an acceptance.

use crate::error::Error;

/// Classifies a `dcap-qvl` verification failure (`{:#}` rendering of its error chain).
pub(crate) fn classify(message: &str, now: u64) -> Error {
    let has = |needle: &str| message.contains(needle);
    let detail = message.to_string();

    // Revocation first: a revoked certificate may also surface as a chain failure.
    if has("CertRevoked") || has("TCB status is invalid: Revoked") {
        return Error::Revoked { detail };
    }
    // Time: collateral documents, certificates and CRLs outside their validity.
    if has("TCBInfo expired") {
        return Error::Stale {
            what: "TCB info".into(),
            not_after: 0,
            now,
        };
    }
    if has("QE Identity expired") {
        return Error::Stale {
            what: "QE identity".into(),
            not_after: 0,
            now,
        };
    }
    if has("CertExpired") || has("CrlExpired") {
        let what = if has("CrlExpired") {
            "CRL"
        } else {
            "certificate"
        };
        return Error::Stale {
            what: what.into(),
            not_after: unix_time_after(message, "not_after: ")
                .or_else(|| unix_time_after(message, "next_update: "))
                .unwrap_or(0),
            now,
        };
    }
    if has("issue date is in the future") || has("CertNotValidYet") {
        let what = if has("TCBInfo") {
            "TCB info"
        } else if has("QE Identity") {
            "QE identity"
        } else {
            "certificate"
        };
        return Error::NotYetValid {
            what: what.into(),
            not_before: unix_time_after(message, "not_before: ").unwrap_or(0),
            now,
        };
    }
    // Signatures over the quote and over collateral documents.
    if has("ISV enclave report signature is invalid") {
        return Error::BadSignature { what: "quote body" };
    }
    if has("Signature is invalid for qe_report") {
        return Error::BadSignature { what: "QE report" };
    }
    if has("QE report hash mismatch") {
        return Error::BadSignature {
            what: "attestation key (QE report data)",
        };
    }
    if has("Signature is invalid for tcb_info") {
        return Error::BadSignature { what: "TCB info" };
    }
    if has("Signature is invalid for qe_identity") {
        return Error::BadSignature {
            what: "QE identity",
        };
    }
    // Collateral for another platform family or TEE.
    if has("Fmspc mismatch")
        || has("with non-TDX TCB info")
        || has("with non-SGX TCB info")
        || has("Unsupported QE Identity id/version")
    {
        return Error::CollateralMismatch { detail };
    }
    // A quoting enclave that is not Intel's (checked before TD attributes: a
    // debug QE is reported as "QE report validation failed: Debug mode...").
    if has("QE MRSIGNER")
        || has("QE ISVPRODID")
        || has("QE MISCSELECT")
        || has("QE ATTRIBUTES")
        || has("QE report validation failed")
    {
        return Error::QeIdentity { detail };
    }
    // TD attributes that void isolation.
    if has("Debug mode is enabled")
        || has("TD profiling is enabled")
        || has("TD migration is enabled")
        || has("SERVTD_EXT is enabled")
        || has("SEPT_VE_DISABLE is not enabled")
        || has("Reserved bits in TD attributes")
        || has("Invalid MR service TD")
    {
        return Error::TdAttributes { detail };
    }
    // TCB matching.
    if has("No matching TCB level")
        || has("TDX module")
        || has("below minimum")
        || has("Unrecognized TCB status")
        || has("QE ISVSVN")
        || has("No TCB levels found")
        || has("SEAMATTRIBUTES")
    {
        return Error::TcbUnknown { detail };
    }
    // Certificate chains to the pinned root (and CRL signatures).
    if has("Failed to verify certificate chain")
        || has("UnknownIssuer")
        || has("Failed to load root ca")
        || has("root CA CRL")
        || has("PCK CRL")
        || has("InvalidSignatureForPublicKey")
        || has("InvalidCrlSignatureForPublicKey")
        || has("signer must be issued directly by the root CA")
        || has("Certificate chain is too short")
        || has("Too many intermediate certificates")
        || has("UnknownRevocationStatus")
    {
        return Error::CertChain { detail };
    }
    // Structure of the quote.
    if has("Failed to decode")
        || has("Unsupported DCAP")
        || has("Unknown QE vendor ID")
        || has("Unsupported TEE type")
        || has("TEE quote must have version")
        || has("Invalid QE auth data length")
        || has("Failed to get")
        || has("Failed to extract")
        || has("Failed to parse")
    {
        return Error::Malformed {
            what: "quote",
            detail,
        };
    }
    Error::Dcap { detail }
}

/// Reads the seconds of a `UnixTime(..)` that follows `label` in webpki's
/// debug-formatted errors, for a more useful message.
fn unix_time_after(message: &str, label: &str) -> Option<u64> {
    let rest = &message[message.find(label)? + label.len()..];
    let rest = rest.strip_prefix("UnixTime(")?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_messages_stay_rejections() {
        assert_eq!(classify("something new", 5).kind(), "dcap_rejected");
    }

    #[test]
    fn reads_webpki_times() {
        let e = classify(
            "Failed to verify certificate chain: CertExpired { time: UnixTime(10), not_after: UnixTime(7) }",
            10,
        );
        assert_eq!(
            e,
            Error::Stale {
                what: "certificate".into(),
                not_after: 7,
                now: 10
            }
        );
    }
}

//! The Authenticode digest of a PE image, computed as EDK II's measured-boot code
//! computes it before extending `EV_EFI_BOOT_SERVICES_APPLICATION` events (PE/COFF
//! specification, appendix "Calculating the PE Image Hash"):
//!
//! 1. the headers up to `SizeOfHeaders`, skipping the `CheckSum` field and the
//!    certificate table's data directory entry;
//! 2. every section's raw data (`SizeOfRawData` bytes), in file-offset order;
//! 3. whatever follows the sections in the file, minus the certificate table.
//!
//! Unlike some signing tools, nothing is padded: an unsigned image is hashed over
//! exactly its bytes (signing tools pad the file to 8 bytes before appending a
//! signature, and then that padding is part of the file, hence of the hash).

use sha2::digest::Digest;
use sha2::{Sha256, Sha384};

use crate::digest::Sha384Digest;
use crate::pe::{PeError, PeImage};

/// Why an image's hash cannot be computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthenticodeError {
    /// The file is not a parseable PE image.
    #[error(transparent)]
    Pe(#[from] PeError),
    /// The certificate table is larger than what follows the sections (EDK II refuses
    /// to measure such an image).
    #[error(
        "certificate table ({cert:#x} bytes) larger than the data after the sections ({after:#x} bytes)"
    )]
    CertificateTableTooLarge {
        /// The directory's size.
        cert: u64,
        /// Bytes after the headers and sections.
        after: u64,
    },
}

/// The Authenticode digest of `pe` with hash function `D`.
pub fn authenticode<D: Digest>(pe: &PeImage<'_>) -> Result<Vec<u8>, AuthenticodeError> {
    let data = pe.bytes();
    let headers_end = pe.size_of_headers as usize;
    let mut h = D::new();
    h.update(&data[..pe.checksum_offset]);
    match pe.security_dir_offset {
        Some(dir) => {
            h.update(&data[pe.checksum_offset + 4..dir]);
            h.update(&data[dir + 8..headers_end]);
        }
        None => h.update(&data[pe.checksum_offset + 4..headers_end]),
    }
    let mut sections: Vec<_> = pe
        .sections
        .iter()
        .filter(|s| s.size_of_raw_data > 0)
        .collect();
    // A stable sort keeps the table order for equal offsets, like EDK II's insertion sort.
    sections.sort_by_key(|s| s.pointer_to_raw_data);
    let mut hashed = headers_end as u64;
    for s in sections {
        let start = s.pointer_to_raw_data as usize;
        h.update(&data[start..start + s.size_of_raw_data as usize]);
        hashed += s.size_of_raw_data as u64;
    }
    let file_len = data.len() as u64;
    if file_len > hashed {
        let cert = pe.certificate_table_size() as u64;
        let after = file_len - hashed;
        if cert > after {
            return Err(AuthenticodeError::CertificateTableTooLarge { cert, after });
        }
        h.update(&data[hashed as usize..(file_len - cert) as usize]);
    }
    Ok(h.finalize().to_vec())
}

/// The SHA-384 Authenticode digest (what TDVF extends into RTMR1).
pub fn authenticode_sha384(image: &[u8]) -> Result<Sha384Digest, AuthenticodeError> {
    let pe = PeImage::parse(image)?;
    let v = authenticode::<Sha384>(&pe)?;
    let mut out = [0u8; 48];
    out.copy_from_slice(&v);
    Ok(Sha384Digest(out))
}

/// The SHA-256 Authenticode digest (what signing tools and Secure Boot use).
pub fn authenticode_sha256(image: &[u8]) -> Result<[u8; 32], AuthenticodeError> {
    let pe = PeImage::parse(image)?;
    let v = authenticode::<Sha256>(&pe)?;
    let mut out = [0u8; 32];
    out.copy_from_slice(&v);
    Ok(out)
}

/// The SHA-256 message digest a signed image's Authenticode signature vouches for,
/// read from the `SpcIndirectDataContent` of its PKCS#7 certificate table. This lets
/// a test check our hash against the one the image's signer computed.
pub fn signed_sha256_digest(image: &[u8]) -> Result<Option<[u8; 32]>, AuthenticodeError> {
    let pe = PeImage::parse(image)?;
    let Some(dir) = pe.security_dir_offset else {
        return Ok(None);
    };
    let word = |at: usize| -> Option<usize> {
        image
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let (Some(offset), Some(size)) = (word(dir), word(dir + 4)) else {
        return Ok(None);
    };
    let Some(table) = image.get(offset..offset.saturating_add(size)) else {
        return Ok(None);
    };
    // DigestInfo { AlgorithmIdentifier { sha256, NULL }, OCTET STRING (32) }: the
    // first such sequence in the signature is the SpcIndirectDataContent's digest
    // (the signer-info digests are attribute values, tagged differently).
    const PATTERN: [u8; 15] = [
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20,
    ];
    Ok(table
        .windows(PATTERN.len())
        .position(|w| w == PATTERN)
        .and_then(|p| table.get(p + PATTERN.len()..p + PATTERN.len() + 32))
        .map(|d| {
            let mut out = [0u8; 32];
            out.copy_from_slice(d);
            out
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pe::tests::sample_pe;
    use sha2::Sha384;

    /// The rule written out by hand over the sample image's layout.
    fn by_hand(f: &[u8], cert_len: usize) -> Vec<u8> {
        let opt = 0x84 + 20;
        let checksum = opt + 64;
        let dir = opt + 112 + 32;
        let mut h = Sha384::new();
        h.update(&f[..checksum]);
        h.update(&f[checksum + 4..dir]);
        h.update(&f[dir + 8..0x200]);
        h.update(&f[0x200..0x600]);
        h.update(&f[0x600..f.len() - cert_len]);
        h.finalize().to_vec()
    }

    #[test]
    fn excludes_checksum_and_certificate_directory_and_hashes_trailing_data() {
        let f = sample_pe(b"trailing data");
        let pe = PeImage::parse(&f).unwrap();
        assert_eq!(authenticode::<Sha384>(&pe).unwrap(), by_hand(&f, 0));

        // Changing the checksum or the certificate directory does not change the hash.
        let mut g = f.clone();
        g[0x98 + 64] ^= 0xff;
        assert_eq!(
            authenticode_sha384(&g).unwrap(),
            authenticode_sha384(&f).unwrap()
        );
        // Changing a header byte, a section byte or trailing data does.
        for at in [0x10, 0x250, f.len() - 1] {
            let mut g = f.clone();
            g[at] ^= 1;
            assert_ne!(
                authenticode_sha384(&g).unwrap(),
                authenticode_sha384(&f).unwrap()
            );
        }
    }

    #[test]
    fn a_certificate_table_at_the_end_is_not_hashed() {
        let cert = b"pretend PKCS#7 blob";
        let mut f = sample_pe(b"");
        let dir = 0x98 + 112 + 32;
        let end = f.len() as u32;
        f[dir..dir + 4].copy_from_slice(&end.to_le_bytes());
        f[dir + 4..dir + 8].copy_from_slice(&(cert.len() as u32).to_le_bytes());
        let unsigned = authenticode_sha384(&f).unwrap();
        f.extend_from_slice(cert);
        let pe = PeImage::parse(&f).unwrap();
        assert_eq!(
            authenticode::<Sha384>(&pe).unwrap(),
            by_hand(&f, cert.len())
        );
        // The directory entry is excluded and the table is not hashed: signing an
        // image (whose length is already 8-aligned) does not change its hash.
        let mut stripped = f[..f.len() - cert.len()].to_vec();
        stripped[dir..dir + 8].fill(0);
        assert_eq!(authenticode_sha384(&stripped).unwrap(), unsigned);
    }

    #[test]
    fn a_certificate_table_larger_than_the_tail_is_refused() {
        let mut f = sample_pe(b"1234");
        let dir = 0x98 + 112 + 32;
        f[dir + 4..dir + 8].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            authenticode_sha384(&f),
            Err(AuthenticodeError::CertificateTableTooLarge { .. })
        ));
    }
}

//! The `EV_EFI_GPT_EVENT` that firmware extends into RTMR1 before starting an image
//! from a GPT disk: SHA-384 of `UEFI_GPT_DATA` = the primary GPT header (92 bytes),
//! the number of used partition entries (u64), then those entries in table order
//! (EDK II `Tcg2MeasureGptTable`). The header includes the disk size (backup header
//! location, last usable LBA), so the disk must be launched at exactly its built size.

use crate::digest::Sha384Digest;
use crate::rtmr::{EventType, MeasuredEvent};

/// Logical block size of the images we build (virtio-blk's default).
pub const SECTOR: usize = 512;
const HEADER_LEN: usize = 92;

/// Why a disk image's GPT cannot be measured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GptError {
    /// No "EFI PART" header at LBA 1.
    #[error("no GPT header at LBA 1")]
    NoHeader,
    /// The header's fields are out of range or the entries lie outside the image.
    #[error("malformed GPT: {0}")]
    Malformed(&'static str),
}

/// The GPT of a disk image, read from its primary header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gpt {
    /// The first 92 bytes of LBA 1.
    pub header: Vec<u8>,
    /// The used entries (non-zero type GUID), in table order, each `entry_size` bytes.
    pub used_entries: Vec<Vec<u8>>,
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([d[at], d[at + 1], d[at + 2], d[at + 3]])
}

impl Gpt {
    /// Reads the primary GPT of a raw disk image (512-byte sectors).
    pub fn read(disk: &[u8]) -> Result<Self, GptError> {
        let header = disk
            .get(SECTOR..SECTOR + HEADER_LEN)
            .ok_or(GptError::NoHeader)?;
        if &header[..8] != b"EFI PART" {
            return Err(GptError::NoHeader);
        }
        let entries_lba =
            u64::from_le_bytes(header[72..80].try_into().map_err(|_| GptError::NoHeader)?);
        let count = u32_at(header, 80) as usize;
        let entry_size = u32_at(header, 84) as usize;
        if !(128..=4096).contains(&entry_size) || count > 1024 {
            return Err(GptError::Malformed("entry size or count out of range"));
        }
        let start = usize::try_from(entries_lba)
            .ok()
            .and_then(|l| l.checked_mul(SECTOR))
            .ok_or(GptError::Malformed("entries LBA"))?;
        let table = disk
            .get(start..start + count * entry_size)
            .ok_or(GptError::Malformed(
                "partition entries lie outside the image",
            ))?;
        let used_entries = table
            .chunks_exact(entry_size)
            .filter(|e| e[..16].iter().any(|&b| b != 0))
            .map(<[u8]>::to_vec)
            .collect();
        Ok(Gpt {
            header: header.to_vec(),
            used_entries,
        })
    }

    /// The `UEFI_GPT_DATA` structure firmware hashes.
    pub fn event_data(&self) -> Vec<u8> {
        let mut out = self.header.clone();
        out.extend_from_slice(&(self.used_entries.len() as u64).to_le_bytes());
        for e in &self.used_entries {
            out.extend_from_slice(e);
        }
        out
    }

    /// The RTMR1 event.
    pub fn event(&self) -> MeasuredEvent {
        MeasuredEvent {
            event_type: EventType::EFI_GPT_EVENT,
            description: format!(
                "GPT of the boot disk ({} partitions)",
                self.used_entries.len()
            ),
            digest: Sha384Digest::of(&self.event_data()),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 1 MiB disk with a GPT of 128 entries, two used.
    pub(crate) fn sample_disk() -> Vec<u8> {
        let mut d = vec![0u8; 1 << 20];
        let h = &mut d[SECTOR..SECTOR + HEADER_LEN];
        h[..8].copy_from_slice(b"EFI PART");
        h[8..12].copy_from_slice(&0x0001_0000u32.to_le_bytes());
        h[12..16].copy_from_slice(&92u32.to_le_bytes());
        h[72..80].copy_from_slice(&2u64.to_le_bytes());
        h[80..84].copy_from_slice(&128u32.to_le_bytes());
        h[84..88].copy_from_slice(&128u32.to_le_bytes());
        for (i, fill) in [(0usize, 0xc1u8), (1, 0x4f)] {
            let e = 2 * SECTOR + i * 128;
            d[e..e + 16].fill(fill);
            d[e + 16..e + 32].fill(i as u8 + 1);
        }
        d
    }

    #[test]
    fn measures_header_count_and_used_entries_only() {
        let d = sample_disk();
        let g = Gpt::read(&d).unwrap();
        assert_eq!(g.used_entries.len(), 2);
        let data = g.event_data();
        assert_eq!(data.len(), 92 + 8 + 2 * 128);
        assert_eq!(&data[..92], &d[512..604]);
        assert_eq!(&data[92..100], &2u64.to_le_bytes());
        assert_eq!(&data[100..228], &d[1024..1152]);
        assert_eq!(g.event().digest, Sha384Digest::of(&data));
    }

    #[test]
    fn refuses_disks_without_gpt() {
        assert_eq!(Gpt::read(&[0u8; 4096]).unwrap_err(), GptError::NoHeader);
        assert_eq!(Gpt::read(&[0u8; 100]).unwrap_err(), GptError::NoHeader);
    }
}

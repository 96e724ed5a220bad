//! MRTD: the TDX module's measurement of the pages the host adds before the TD runs.
//!
//! TDVF (EDK II's OVMF built for TDX) describes those pages in its *TDX metadata*,
//! found through the OVMF GUID table at the end of the firmware image. For every
//! section the VMM calls `TDH.MEM.PAGE.ADD` per 4 KiB page, and for sections with the
//! `MR.EXTEND` attribute also `TDH.MR.EXTEND` per 256-byte chunk. The TDX module folds
//! each call into one running SHA-384 (TDX module ABI spec, "MRTD"):
//!
//! - `PAGE.ADD`: a 128-byte buffer, `"MEM.PAGE.ADD"` at 0, the page's GPA (u64 LE) at 16;
//! - `MR.EXTEND`: a 128-byte buffer, `"MR.EXTEND"` at 0, the chunk's GPA at 16, then the
//!   chunk's 256 bytes.
//!
//! MRTD is the digest of the whole sequence. Upstream KVM (Linux 6.16+, QEMU 10.1+)
//! adds and extends page by page; some earlier TDX host stacks added all pages of a
//! section before extending any, which gives a different MRTD: [`PageOrder`].

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha384};

use crate::digest::Sha384Digest;

const PAGE: u64 = 0x1000;
const CHUNK: usize = 0x100;
/// GUID of the OVMF GUID table's footer (`96b582de-1fb2-45f7-baea-a366c55a082d`).
const TABLE_FOOTER_GUID: [u8; 16] = guid_le(
    0x96b5_82de,
    0x1fb2,
    0x45f7,
    [0xba, 0xea, 0xa3, 0x66, 0xc5, 0x5a, 0x08, 0x2d],
);
/// GUID of the table entry holding the TDX metadata offset (`e47a6535-984a-4798-865e-4685a7bf8ec2`).
const TDX_METADATA_OFFSET_GUID: [u8; 16] = guid_le(
    0xe47a_6535,
    0x984a,
    0x4798,
    [0x86, 0x5e, 0x46, 0x85, 0xa7, 0xbf, 0x8e, 0xc2],
);
/// The footer ends this many bytes before the end of the image (the reset vector follows).
const FOOTER_END_FROM_END: usize = 0x20;
const ATTR_MR_EXTEND: u32 = 1 << 0;
const ATTR_PAGE_AUG: u32 = 1 << 1;

/// A GUID in its UEFI (mixed-endian) byte layout.
pub const fn guid_le(a: u32, b: u16, c: u16, d: [u8; 8]) -> [u8; 16] {
    let a = a.to_le_bytes();
    let b = b.to_le_bytes();
    let c = c.to_le_bytes();
    [
        a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5], d[6],
        d[7],
    ]
}

/// Why a firmware image has no usable TDX metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TdvfError {
    /// No OVMF GUID table at the end of the image.
    #[error("no OVMF GUID table at the end of the firmware (not an OVMF/TDVF image)")]
    NoGuidTable,
    /// The GUID table has no TDX metadata entry: a firmware built without TDX support.
    #[error("the firmware has no TDX metadata (not built with TDX support)")]
    NoTdxMetadata,
    /// The metadata is malformed.
    #[error("malformed TDX metadata: {0}")]
    Malformed(String),
}

fn malformed(s: impl Into<String>) -> TdvfError {
    TdvfError::Malformed(s.into())
}

/// What a TDVF section holds (TDVF design guide, "TDX metadata").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionType {
    /// Boot firmware volume: the code, measured into MRTD.
    Bfv,
    /// Configuration firmware volume: the UEFI variable store.
    Cfv,
    /// Where the VMM writes the TD HOB (memory map).
    TdHob,
    /// Temporary memory for early firmware.
    TempMem,
    /// Permanent memory (accepted by the firmware itself).
    PermMem,
    /// A payload (kernel) image, in TD-shim layouts.
    Payload,
    /// Payload parameters.
    PayloadParam,
    /// TD info (TD-shim).
    TdInfo,
    /// A type this tool does not know.
    Other(u32),
}

impl From<u32> for SectionType {
    fn from(v: u32) -> Self {
        match v {
            0 => Self::Bfv,
            1 => Self::Cfv,
            2 => Self::TdHob,
            3 => Self::TempMem,
            4 => Self::PermMem,
            5 => Self::Payload,
            6 => Self::PayloadParam,
            8 => Self::TdInfo,
            other => Self::Other(other),
        }
    }
}

/// One TDVF metadata section.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TdvfSection {
    /// Offset of the section's data in the firmware file.
    pub data_offset: u32,
    /// Bytes of data in the file.
    pub raw_data_size: u32,
    /// Guest physical address.
    pub memory_address: u64,
    /// Bytes of guest memory.
    pub memory_data_size: u64,
    /// What the section holds.
    pub section_type: SectionType,
    /// Attribute bits (`MR.EXTEND` = 1, `PAGE.AUG` = 2).
    pub attributes: u32,
}

impl TdvfSection {
    /// Whether the VMM adds (and so measures) its pages before the TD starts.
    pub fn page_added(&self) -> bool {
        self.attributes & ATTR_PAGE_AUG == 0
    }

    /// Whether its contents are extended into MRTD.
    pub fn extended(&self) -> bool {
        self.attributes & ATTR_MR_EXTEND != 0
    }
}

/// The order in which the host adds and extends a section's pages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PageOrder {
    /// `PAGE.ADD` then the page's `MR.EXTEND`s, page by page (upstream KVM and QEMU).
    #[default]
    PerPage,
    /// All `PAGE.ADD`s of a section, then all its `MR.EXTEND`s (earlier TDX stacks).
    AddAllThenExtend,
}

impl fmt::Display for PageOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PageOrder::PerPage => "per-page",
            PageOrder::AddAllThenExtend => "add-all-then-extend",
        })
    }
}

/// A TDVF firmware image and its parsed metadata.
#[derive(Clone, Debug)]
pub struct Tdvf<'a> {
    image: &'a [u8],
    /// The metadata sections, in metadata order (the order the VMM processes them).
    pub sections: Vec<TdvfSection>,
}

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// The data of the OVMF GUID table entry `guid`, if the image has that table and entry.
pub fn guid_table_entry<'a>(
    image: &'a [u8],
    guid: &[u8; 16],
) -> Result<Option<&'a [u8]>, TdvfError> {
    let footer_end = image
        .len()
        .checked_sub(FOOTER_END_FROM_END)
        .ok_or(TdvfError::NoGuidTable)?;
    if footer_end < 18 || image[footer_end - 16..footer_end] != TABLE_FOOTER_GUID {
        return Err(TdvfError::NoGuidTable);
    }
    // The table length counts every entry plus the footer (its length and GUID).
    let table_len = u16_at(image, footer_end - 18).ok_or(TdvfError::NoGuidTable)? as usize;
    let table_start = footer_end
        .checked_sub(table_len)
        .ok_or_else(|| malformed("GUID table longer than the image"))?;
    // Entries are laid out data ‖ u16 length ‖ GUID and are walked from the end.
    let mut cursor = footer_end - 18;
    while cursor >= table_start + 18 {
        let entry_guid = &image[cursor - 16..cursor];
        let len = u16_at(image, cursor - 18).unwrap_or(0) as usize;
        if len < 18 || len > cursor - table_start {
            return Err(malformed(format!(
                "GUID table entry length {len} at {cursor:#x}"
            )));
        }
        if entry_guid == guid {
            return Ok(Some(&image[cursor - len..cursor - 18]));
        }
        cursor -= len;
    }
    Ok(None)
}

impl<'a> Tdvf<'a> {
    /// Finds and parses the TDX metadata of a firmware image.
    pub fn parse(image: &'a [u8]) -> Result<Self, TdvfError> {
        let entry =
            guid_table_entry(image, &TDX_METADATA_OFFSET_GUID)?.ok_or(TdvfError::NoTdxMetadata)?;
        // The entry's last four bytes: the metadata's offset from the end of the image.
        let from_end = entry
            .len()
            .checked_sub(4)
            .and_then(|at| u32_at(entry, at))
            .ok_or_else(|| malformed("metadata offset entry too short"))?
            as usize;
        let meta = image
            .len()
            .checked_sub(from_end)
            .ok_or_else(|| malformed("metadata offset beyond the image"))?;
        if image.get(meta..meta + 4) != Some(b"TDVF".as_slice()) {
            return Err(malformed(format!("no TDVF signature at {meta:#x}")));
        }
        let version = u32_at(image, meta + 8).ok_or_else(|| malformed("descriptor truncated"))?;
        if version != 1 {
            return Err(malformed(format!(
                "descriptor version {version}, expected 1"
            )));
        }
        let count =
            u32_at(image, meta + 12).ok_or_else(|| malformed("descriptor truncated"))? as usize;
        if count > 64 {
            return Err(malformed(format!("{count} sections")));
        }
        let mut sections = Vec::with_capacity(count);
        for i in 0..count {
            let at = meta + 16 + 32 * i;
            let field =
                |r: Option<u64>| r.ok_or_else(|| malformed(format!("section {i} truncated")));
            let s = TdvfSection {
                data_offset: field(u32_at(image, at).map(u64::from))? as u32,
                raw_data_size: field(u32_at(image, at + 4).map(u64::from))? as u32,
                memory_address: field(u64_at(image, at + 8))?,
                memory_data_size: field(u64_at(image, at + 16))?,
                section_type: SectionType::from(
                    field(u32_at(image, at + 24).map(u64::from))? as u32
                ),
                attributes: field(u32_at(image, at + 28).map(u64::from))? as u32,
            };
            if !s.memory_address.is_multiple_of(PAGE) || !s.memory_data_size.is_multiple_of(PAGE) {
                return Err(malformed(format!("section {i} is not page-aligned")));
            }
            if (s.raw_data_size as u64) > s.memory_data_size {
                return Err(malformed(format!("section {i} has more data than memory")));
            }
            if s.data_offset as u64 + s.raw_data_size as u64 > image.len() as u64 {
                return Err(malformed(format!(
                    "section {i} data lies outside the image"
                )));
            }
            sections.push(s);
        }
        Ok(Tdvf { image, sections })
    }

    /// The section's bytes as loaded: file data, then zeroes up to its memory size.
    fn section_byte(&self, s: &TdvfSection, offset: u64) -> u8 {
        if offset < s.raw_data_size as u64 {
            self.image[s.data_offset as usize + offset as usize]
        } else {
            0
        }
    }

    /// MRTD as the TDX module computes it for this firmware and page order.
    pub fn mrtd(&self, order: PageOrder) -> Sha384Digest {
        let mut h = Sha384::new();
        let page_add = |h: &mut Sha384, gpa: u64| {
            let mut buf = [0u8; 128];
            buf[..12].copy_from_slice(b"MEM.PAGE.ADD");
            buf[16..24].copy_from_slice(&gpa.to_le_bytes());
            h.update(buf);
        };
        let extend_page = |h: &mut Sha384, s: &TdvfSection, page: u64| {
            for chunk in 0..(PAGE as usize / CHUNK) {
                let offset = page * PAGE + (chunk * CHUNK) as u64;
                let mut buf = [0u8; 128];
                buf[..9].copy_from_slice(b"MR.EXTEND");
                buf[16..24].copy_from_slice(&(s.memory_address + offset).to_le_bytes());
                h.update(buf);
                let data: Vec<u8> = (0..CHUNK as u64)
                    .map(|i| self.section_byte(s, offset + i))
                    .collect();
                h.update(&data);
            }
        };
        for s in &self.sections {
            let pages = s.memory_data_size / PAGE;
            match order {
                PageOrder::PerPage => {
                    for p in 0..pages {
                        if s.page_added() {
                            page_add(&mut h, s.memory_address + p * PAGE);
                        }
                        if s.extended() {
                            extend_page(&mut h, s, p);
                        }
                    }
                }
                PageOrder::AddAllThenExtend => {
                    if s.page_added() {
                        for p in 0..pages {
                            page_add(&mut h, s.memory_address + p * PAGE);
                        }
                    }
                    if s.extended() {
                        for p in 0..pages {
                            extend_page(&mut h, s, p);
                        }
                    }
                }
            }
        }
        Sha384Digest(h.finalize().into())
    }

    /// SHA-384 of the configuration firmware volume (the variable store) as shipped:
    /// TDVF extends this into RTMR0 as `EV_EFI_PLATFORM_FIRMWARE_BLOB2`, so it is the
    /// RTMR0 event a verifier can recompute from the firmware file alone.
    pub fn cfv_digest(&self) -> Option<Sha384Digest> {
        self.sections
            .iter()
            .find(|s| s.section_type == SectionType::Cfv)
            .map(|s| {
                let start = s.data_offset as usize;
                Sha384Digest::of(&self.image[start..start + s.raw_data_size as usize])
            })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A synthetic firmware: `body` bytes of code, a two-section TDX metadata
    /// (a 2-page BFV measured from the start of the file, a 1-page TD HOB) and the
    /// GUID table with its footer, laid out as OVMF lays them out.
    pub(crate) fn synthetic_firmware() -> Vec<u8> {
        let size = 0x4000usize;
        let mut fw: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
        let meta_at = 0x3000;
        let mut meta = Vec::new();
        meta.extend_from_slice(b"TDVF");
        meta.extend_from_slice(&(16u32 + 2 * 32).to_le_bytes());
        meta.extend_from_slice(&1u32.to_le_bytes());
        meta.extend_from_slice(&2u32.to_le_bytes());
        for (off, raw, addr, mem, ty, attr) in [
            (
                0u32,
                0x2000u32,
                0xffff_c000u64,
                0x2000u64,
                0u32,
                ATTR_MR_EXTEND,
            ),
            (0, 0, 0x80_9000, 0x1000, 2, 0),
        ] {
            meta.extend_from_slice(&off.to_le_bytes());
            meta.extend_from_slice(&raw.to_le_bytes());
            meta.extend_from_slice(&addr.to_le_bytes());
            meta.extend_from_slice(&mem.to_le_bytes());
            meta.extend_from_slice(&ty.to_le_bytes());
            meta.extend_from_slice(&attr.to_le_bytes());
        }
        fw[meta_at..meta_at + meta.len()].copy_from_slice(&meta);
        // GUID table: [other entry][tdx entry][footer], ending 0x20 before the end.
        let mut table = Vec::new();
        table.extend_from_slice(&[0xaa; 4]);
        table.extend_from_slice(&22u16.to_le_bytes());
        table.extend_from_slice(&[0x11; 16]);
        table.extend_from_slice(&((size - meta_at) as u32).to_le_bytes());
        table.extend_from_slice(&22u16.to_le_bytes());
        table.extend_from_slice(&TDX_METADATA_OFFSET_GUID);
        let len = (table.len() + 18) as u16;
        table.extend_from_slice(&len.to_le_bytes());
        table.extend_from_slice(&TABLE_FOOTER_GUID);
        let end = size - FOOTER_END_FROM_END;
        fw[end - table.len()..end].copy_from_slice(&table);
        fw
    }

    /// MRTD of the synthetic firmware, written out independently of `mrtd()`.
    fn mrtd_by_hand(fw: &[u8]) -> Sha384Digest {
        let mut stream = Vec::new();
        for page in 0..2u64 {
            let mut add = [0u8; 128];
            add[..12].copy_from_slice(b"MEM.PAGE.ADD");
            add[16..24].copy_from_slice(&(0xffff_c000 + page * 0x1000).to_le_bytes());
            stream.extend_from_slice(&add);
            for c in 0..16u64 {
                let mut ext = [0u8; 128];
                ext[..9].copy_from_slice(b"MR.EXTEND");
                let off = page * 0x1000 + c * 0x100;
                ext[16..24].copy_from_slice(&(0xffff_c000 + off).to_le_bytes());
                stream.extend_from_slice(&ext);
                stream.extend_from_slice(&fw[off as usize..off as usize + 0x100]);
            }
        }
        let mut add = [0u8; 128];
        add[..12].copy_from_slice(b"MEM.PAGE.ADD");
        add[16..24].copy_from_slice(&0x80_9000u64.to_le_bytes());
        stream.extend_from_slice(&add);
        Sha384Digest::of(&stream)
    }

    #[test]
    fn parses_metadata_through_the_guid_table() {
        let fw = synthetic_firmware();
        let t = Tdvf::parse(&fw).unwrap();
        assert_eq!(t.sections.len(), 2);
        assert_eq!(t.sections[0].section_type, SectionType::Bfv);
        assert!(t.sections[0].extended() && t.sections[0].page_added());
        assert_eq!(t.sections[1].section_type, SectionType::TdHob);
        assert!(!t.sections[1].extended());
        assert_eq!(t.cfv_digest(), None);
    }

    #[test]
    fn mrtd_follows_the_tdx_module_buffers() {
        let fw = synthetic_firmware();
        let t = Tdvf::parse(&fw).unwrap();
        assert_eq!(t.mrtd(PageOrder::PerPage), mrtd_by_hand(&fw));
        assert_ne!(
            t.mrtd(PageOrder::AddAllThenExtend),
            t.mrtd(PageOrder::PerPage)
        );
        // Any change to measured code changes MRTD; a change elsewhere does not.
        let mut g = fw.clone();
        g[0x1234] ^= 1;
        assert_ne!(
            Tdvf::parse(&g).unwrap().mrtd(PageOrder::PerPage),
            t.mrtd(PageOrder::PerPage)
        );
        let mut g = fw.clone();
        g[0x2100] ^= 1;
        assert_eq!(
            Tdvf::parse(&g).unwrap().mrtd(PageOrder::PerPage),
            t.mrtd(PageOrder::PerPage)
        );
    }

    #[test]
    fn firmware_without_tdx_metadata_is_named_as_such() {
        let mut fw = synthetic_firmware();
        // Replace the TDX entry's GUID: the table is still valid, the entry is gone.
        let end = fw.len() - FOOTER_END_FROM_END - 18;
        fw[end - 16..end].fill(0x22);
        assert_eq!(Tdvf::parse(&fw).unwrap_err(), TdvfError::NoTdxMetadata);
        assert_eq!(
            Tdvf::parse(&[0u8; 4096]).unwrap_err(),
            TdvfError::NoGuidTable
        );
    }
}

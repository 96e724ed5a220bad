//! Just enough PE/COFF parsing to hash images the way UEFI firmware does and to read
//! the sections of a unified kernel image. Every offset is bounds-checked: the input
//! is a file from outside, and an image that does not parse cleanly has no
//! predictable measurement.

use thiserror::Error;

/// Why a file is not a PE image we can measure.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PeError {
    /// A header or table runs past the end of the file.
    #[error("PE image truncated: {0} runs past the end of the file")]
    Truncated(&'static str),
    /// No `PE\0\0` signature where the DOS header points.
    #[error("not a PE image: no PE signature at offset {0:#x}")]
    NoSignature(usize),
    /// The optional header magic is neither PE32 nor PE32+.
    #[error("unknown optional header magic {0:#06x}")]
    UnknownMagic(u16),
    /// A section's raw data lies outside the file.
    #[error("section {name} (raw data {offset:#x}+{size:#x}) lies outside the file")]
    SectionOutsideFile {
        /// The section name.
        name: String,
        /// `PointerToRawData`.
        offset: u32,
        /// `SizeOfRawData`.
        size: u32,
    },
    /// `SizeOfHeaders` is smaller than the headers it must cover.
    #[error("SizeOfHeaders {0:#x} does not cover the PE headers")]
    BadSizeOfHeaders(u32),
}

/// `IMAGE_DIRECTORY_ENTRY_SECURITY`: the certificate table's data directory slot.
const DIRECTORY_ENTRY_SECURITY: usize = 4;
const MAGIC_PE32: u16 = 0x10b;
const MAGIC_PE32_PLUS: u16 = 0x20b;
const SECTION_HEADER_LEN: usize = 40;

/// One entry of the section table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The name (up to 8 bytes, trailing NULs removed).
    pub name: String,
    /// `VirtualSize`: bytes the section occupies in memory.
    pub virtual_size: u32,
    /// `VirtualAddress` (RVA).
    pub virtual_address: u32,
    /// `SizeOfRawData`: bytes in the file (aligned to `FileAlignment`).
    pub size_of_raw_data: u32,
    /// `PointerToRawData`: file offset.
    pub pointer_to_raw_data: u32,
}

/// A parsed PE image over its file bytes.
#[derive(Clone, Debug)]
pub struct PeImage<'a> {
    data: &'a [u8],
    /// File offset of the optional header's `CheckSum` field.
    pub(crate) checksum_offset: usize,
    /// File offset of the certificate table's data directory entry, if the optional
    /// header has one (`NumberOfRvaAndSizes > 4`).
    pub(crate) security_dir_offset: Option<usize>,
    /// `SizeOfHeaders`.
    pub size_of_headers: u32,
    /// The section table in file order.
    pub sections: Vec<Section>,
}

fn read_u16(data: &[u8], at: usize, what: &'static str) -> Result<u16, PeError> {
    data.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or(PeError::Truncated(what))
}

fn read_u32(data: &[u8], at: usize, what: &'static str) -> Result<u32, PeError> {
    data.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or(PeError::Truncated(what))
}

impl<'a> PeImage<'a> {
    /// Parses the headers and section table of `data`.
    pub fn parse(data: &'a [u8]) -> Result<Self, PeError> {
        // As in EDK II: a DOS stub is optional; without "MZ" the PE header is at 0.
        let pe_offset = if data.starts_with(b"MZ") {
            read_u32(data, 0x3c, "DOS header")? as usize
        } else {
            0
        };
        if data.get(pe_offset..pe_offset + 4) != Some(b"PE\0\0".as_slice()) {
            return Err(PeError::NoSignature(pe_offset));
        }
        let coff = pe_offset + 4;
        let number_of_sections = read_u16(data, coff + 2, "COFF header")? as usize;
        let size_of_optional_header = read_u16(data, coff + 16, "COFF header")? as usize;
        let opt = coff + 20;
        let magic = read_u16(data, opt, "optional header")?;
        // Offsets of NumberOfRvaAndSizes and of the data directories differ between
        // PE32 and PE32+; CheckSum and SizeOfHeaders do not.
        let (rva_count_offset, dirs_offset) = match magic {
            MAGIC_PE32 => (opt + 92, opt + 96),
            MAGIC_PE32_PLUS => (opt + 108, opt + 112),
            other => return Err(PeError::UnknownMagic(other)),
        };
        let checksum_offset = opt + 64;
        let size_of_headers = read_u32(data, opt + 60, "optional header")?;
        let number_of_rva_and_sizes = read_u32(data, rva_count_offset, "optional header")?;
        let security_dir_offset = (number_of_rva_and_sizes as usize > DIRECTORY_ENTRY_SECURITY)
            .then_some(dirs_offset + DIRECTORY_ENTRY_SECURITY * 8);
        if let Some(off) = security_dir_offset {
            read_u32(data, off + 4, "certificate table directory")?;
        }
        let table = opt + size_of_optional_header;
        let headers_end = table + number_of_sections * SECTION_HEADER_LEN;
        if data.len() < headers_end {
            return Err(PeError::Truncated("section table"));
        }
        if (size_of_headers as usize) < security_dir_offset.map_or(checksum_offset + 4, |o| o + 8)
            || size_of_headers as usize > data.len()
        {
            return Err(PeError::BadSizeOfHeaders(size_of_headers));
        }
        let mut sections = Vec::with_capacity(number_of_sections);
        for i in 0..number_of_sections {
            let h = table + i * SECTION_HEADER_LEN;
            let raw_name = &data[h..h + 8];
            let name_len = raw_name.iter().position(|&b| b == 0).unwrap_or(8);
            let section = Section {
                name: String::from_utf8_lossy(&raw_name[..name_len]).into_owned(),
                virtual_size: read_u32(data, h + 8, "section header")?,
                virtual_address: read_u32(data, h + 12, "section header")?,
                size_of_raw_data: read_u32(data, h + 16, "section header")?,
                pointer_to_raw_data: read_u32(data, h + 20, "section header")?,
            };
            let end = section.pointer_to_raw_data as u64 + section.size_of_raw_data as u64;
            if section.size_of_raw_data > 0 && end > data.len() as u64 {
                return Err(PeError::SectionOutsideFile {
                    name: section.name,
                    offset: section.pointer_to_raw_data,
                    size: section.size_of_raw_data,
                });
            }
            sections.push(section);
        }
        Ok(PeImage {
            data,
            checksum_offset,
            security_dir_offset,
            size_of_headers,
            sections,
        })
    }

    /// The file bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    /// The certificate table's size from its data directory (0 if there is none).
    pub fn certificate_table_size(&self) -> u32 {
        self.security_dir_offset
            .and_then(|o| read_u32(self.data, o + 4, "certificate table directory").ok())
            .unwrap_or(0)
    }

    /// The first section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// A section's contents as a loader maps them: `VirtualSize` bytes, the file's
    /// raw data first and zeroes after it when `VirtualSize > SizeOfRawData`.
    pub fn section_in_memory(&self, section: &Section) -> Vec<u8> {
        let file_len = section.size_of_raw_data.min(section.virtual_size) as usize;
        let start = section.pointer_to_raw_data as usize;
        // parse() checked that the raw data lies inside the file.
        let mut out = self.data[start..start + file_len].to_vec();
        out.resize(section.virtual_size as usize, 0);
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small, well-formed PE32+ image: DOS stub, headers of 0x200 bytes, two
    /// sections, `trailing` extra bytes after the last section.
    pub(crate) fn sample_pe(trailing: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 0x200];
        f[..2].copy_from_slice(b"MZ");
        f[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        f[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        f[coff..coff + 2].copy_from_slice(&0x8664u16.to_le_bytes());
        f[coff + 2..coff + 4].copy_from_slice(&2u16.to_le_bytes());
        f[coff + 16..coff + 18].copy_from_slice(&240u16.to_le_bytes());
        let opt = coff + 20;
        f[opt..opt + 2].copy_from_slice(&MAGIC_PE32_PLUS.to_le_bytes());
        f[opt + 60..opt + 64].copy_from_slice(&0x200u32.to_le_bytes());
        f[opt + 64..opt + 68].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        f[opt + 108..opt + 112].copy_from_slice(&16u32.to_le_bytes());
        let table = opt + 240;
        let sections: [(&[u8; 8], u32, u32, u32); 2] = [
            (b".text\0\0\0", 0x180, 0x200, 0x200),
            (b".data\0\0\0", 0x100, 0x400, 0x200),
        ];
        for (i, (name, vsize, ptr, raw)) in sections.iter().enumerate() {
            let h = table + i * 40;
            f[h..h + 8].copy_from_slice(*name);
            f[h + 8..h + 12].copy_from_slice(&vsize.to_le_bytes());
            f[h + 12..h + 16].copy_from_slice(&(0x1000 * (i as u32 + 1)).to_le_bytes());
            f[h + 16..h + 20].copy_from_slice(&raw.to_le_bytes());
            f[h + 20..h + 24].copy_from_slice(&ptr.to_le_bytes());
        }
        f.extend((0..0x400u32).map(|i| (i % 251) as u8));
        f.extend_from_slice(trailing);
        f
    }

    #[test]
    fn parses_sections_and_maps_them_like_a_loader() {
        let f = sample_pe(&[]);
        let pe = PeImage::parse(&f).unwrap();
        assert_eq!(pe.sections.len(), 2);
        let text = pe.section(".text").unwrap();
        assert_eq!(pe.section_in_memory(text), f[0x200..0x380].to_vec());
        assert!(pe.section(".linux").is_none());
        assert_eq!(pe.certificate_table_size(), 0);
    }

    #[test]
    fn refuses_truncated_and_foreign_files() {
        let f = sample_pe(&[]);
        assert!(matches!(
            PeImage::parse(&f[..0x100]),
            Err(PeError::Truncated(_))
        ));
        assert!(matches!(
            PeImage::parse(&f[..0x500]),
            Err(PeError::SectionOutsideFile { .. })
        ));
        assert!(matches!(
            PeImage::parse(b"\x7fELF"),
            Err(PeError::NoSignature(0))
        ));
        let mut g = f.clone();
        g[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(PeImage::parse(&g).is_err());
    }
}

//! RTMR1 and RTMR2 of a TD that boots a unified kernel image (UKI) from its disk,
//! with TDVF as firmware and systemd-stub (systemd 257) in the UKI.
//!
//! RTMR1 (TDVF maps PCRs 2-6 to it), in order:
//! 1. `EV_EFI_ACTION` "Calling EFI Application from Boot Option" (ReadyToBoot, first attempt);
//! 2. `EV_SEPARATOR` (four zero bytes);
//! 3. `EV_EFI_GPT_EVENT`: the boot disk's GPT ([`crate::gpt`]);
//! 4. `EV_EFI_BOOT_SERVICES_APPLICATION`: the UKI's Authenticode SHA-384;
//! 5. `EV_EFI_BOOT_SERVICES_APPLICATION`: the kernel's (`.linux`) Authenticode SHA-384 —
//!    systemd-stub starts the kernel with `LoadImage()`, which the firmware measures;
//!    with Secure Boot on, the stub bypasses the firmware's hook and this event is absent;
//! 6. `EV_EFI_ACTION` "Exit Boot Services Invocation";
//! 7. `EV_EFI_ACTION` "Exit Boot Services Returned with Success".
//!
//! RTMR2 (PCRs 8-15):
//! 1. systemd-stub, for each UKI section in its canonical order (`.linux`, `.osrel`,
//!    `.cmdline`, `.initrd`, `.ucode`, `.splash`, `.dtb`, `.uname`, `.sbat`, `.pcrpkey`,
//!    `.profile`, `.dtbauto`, `.hwids`; never `.pcrsig`): `EV_IPL` of the section name
//!    with its NUL, then `EV_IPL` of the section's `VirtualSize` bytes (PCR 11);
//! 2. the Linux EFI stub (Linux ≥ 6.9 measures into the CC protocol when there is no
//!    TPM): `EV_EVENT_TAG` "LOADED_IMAGE::LoadOptions" = the command line the stub
//!    passes, UTF-16LE with its NUL; then `EV_EVENT_TAG` "Linux initrd" = the initrd
//!    bytes (PCR 9).
//!
//! Conditions the prediction relies on, which the image and the launch must meet:
//! no load options from the boot entry (else the stub measures them into RTMR2 too),
//! no ESP credentials/addons/extensions, no `.osrel`/`.pcrpkey`/`.profile`/`.ucode`
//! sections (the stub would pass extra generated initrds), one boot attempt.

use serde::{Deserialize, Serialize};

use crate::authenticode::{AuthenticodeError, authenticode_sha384};
use crate::digest::utf16le;
use crate::gpt::Gpt;
use crate::pe::{PeError, PeImage};
use crate::rtmr::{EventType, MeasuredEvent};

/// systemd-stub's canonical section order (`unified_sections[]`, systemd 257).
pub const UNIFIED_SECTIONS: [&str; 14] = [
    ".linux", ".osrel", ".cmdline", ".initrd", ".ucode", ".splash", ".dtb", ".uname", ".sbat",
    ".pcrsig", ".pcrpkey", ".profile", ".dtbauto", ".hwids",
];

/// Sections that make systemd-stub hand the kernel an initrd other than `.initrd`
/// (it wraps them in generated cpio archives), or select among profiles.
const UNPREDICTED_SECTIONS: [&str; 4] = [".osrel", ".pcrpkey", ".profile", ".ucode"];

/// Why a UKI's boot measurements cannot be predicted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UkiError {
    /// Not a PE image.
    #[error(transparent)]
    Pe(#[from] PeError),
    /// The Authenticode digest could not be computed.
    #[error(transparent)]
    Authenticode(#[from] AuthenticodeError),
    /// No `.linux` section.
    #[error("not a UKI: no .linux section")]
    NoKernel,
    /// A section this model does not predict.
    #[error("UKI section {0} is not supported by the measurement model (build the UKI without it)")]
    UnsupportedSection(String),
    /// The embedded command line is not plain printable ASCII.
    #[error("the .cmdline section must be printable ASCII without control characters")]
    CmdlineNotAscii,
    /// The kernel version could not be read and was not given.
    #[error(
        "cannot tell whether the kernel's EFI stub measures into RTMR2: no .uname section; set kernel_stub_measures"
    )]
    UnknownKernelVersion,
}

/// What the boot chain does beyond the UKI's bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootModel {
    /// UEFI Secure Boot enabled in the firmware (not the case for our images).
    pub secure_boot: bool,
    /// Whether the kernel's EFI stub measures its load options and initrd into RTMR2;
    /// `None` = decide from the `.uname` section (Linux ≥ 6.9).
    pub kernel_stub_measures: Option<bool>,
}

/// A parsed unified kernel image.
#[derive(Clone, Debug)]
pub struct Uki<'a> {
    pe: PeImage<'a>,
}

impl<'a> Uki<'a> {
    /// Parses `bytes` and checks that the model covers its sections.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, UkiError> {
        let pe = PeImage::parse(bytes)?;
        if pe.section(".linux").is_none() {
            return Err(UkiError::NoKernel);
        }
        if let Some(s) = pe
            .sections
            .iter()
            .find(|s| UNPREDICTED_SECTIONS.contains(&s.name.as_str()))
        {
            return Err(UkiError::UnsupportedSection(s.name.clone()));
        }
        Ok(Uki { pe })
    }

    /// A section's bytes as systemd-stub sees them (`VirtualSize` bytes).
    pub fn section(&self, name: &str) -> Option<Vec<u8>> {
        self.pe.section(name).map(|s| self.pe.section_in_memory(s))
    }

    /// The kernel image (`.linux`).
    pub fn kernel(&self) -> Vec<u8> {
        self.section(".linux").unwrap_or_default()
    }

    /// The initrd (`.initrd`), if any.
    pub fn initrd(&self) -> Option<Vec<u8>> {
        self.section(".initrd")
    }

    /// The embedded command line as the kernel receives it: up to the first NUL,
    /// leading and trailing whitespace removed (systemd-stub's `mangle_stub_cmdline`).
    pub fn cmdline(&self) -> Result<Option<String>, UkiError> {
        let Some(raw) = self.section(".cmdline") else {
            return Ok(None);
        };
        let text = raw.split(|&b| b == 0).next().unwrap_or_default();
        let text = std::str::from_utf8(text).map_err(|_| UkiError::CmdlineNotAscii)?;
        let text = text.trim_matches(|c: char| c <= ' ');
        if text.chars().any(|c| !(' '..='~').contains(&c)) {
            return Err(UkiError::CmdlineNotAscii);
        }
        Ok((!text.is_empty()).then(|| text.to_string()))
    }

    /// The kernel release from `.uname`.
    pub fn uname(&self) -> Option<String> {
        self.section(".uname").map(|b| {
            String::from_utf8_lossy(b.split(|&c| c == 0).next().unwrap_or_default())
                .trim()
                .to_string()
        })
    }

    fn kernel_stub_measures(&self, model: &BootModel) -> Result<bool, UkiError> {
        if let Some(v) = model.kernel_stub_measures {
            return Ok(v);
        }
        let uname = self.uname().ok_or(UkiError::UnknownKernelVersion)?;
        let mut parts = uname
            .split(|c: char| !c.is_ascii_digit())
            .filter(|p| !p.is_empty());
        let major: u32 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(UkiError::UnknownKernelVersion)?;
        let minor: u32 = parts
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or(UkiError::UnknownKernelVersion)?;
        Ok((major, minor) >= (6, 9))
    }

    /// The RTMR1 events of booting this UKI from `disk`'s GPT.
    pub fn rtmr1_events(
        &self,
        gpt: &Gpt,
        model: &BootModel,
    ) -> Result<Vec<MeasuredEvent>, UkiError> {
        let mut events = vec![
            MeasuredEvent::efi_action("Calling EFI Application from Boot Option"),
            MeasuredEvent::separator(),
            gpt.event(),
            MeasuredEvent {
                event_type: EventType::EFI_BOOT_SERVICES_APPLICATION,
                description: "UKI (Authenticode)".into(),
                digest: authenticode_sha384(self.pe.bytes())?,
            },
        ];
        if !model.secure_boot {
            events.push(MeasuredEvent {
                event_type: EventType::EFI_BOOT_SERVICES_APPLICATION,
                description: "kernel from the UKI's .linux section (Authenticode)".into(),
                digest: authenticode_sha384(&self.kernel())?,
            });
        }
        events.push(MeasuredEvent::efi_action("Exit Boot Services Invocation"));
        events.push(MeasuredEvent::efi_action(
            "Exit Boot Services Returned with Success",
        ));
        Ok(events)
    }

    /// The RTMR2 events of booting this UKI.
    pub fn rtmr2_events(&self, model: &BootModel) -> Result<Vec<MeasuredEvent>, UkiError> {
        let mut events = Vec::new();
        for name in UNIFIED_SECTIONS {
            if name == ".pcrsig" {
                continue;
            }
            let Some(data) = self.section(name) else {
                continue;
            };
            let mut name_nul = name.as_bytes().to_vec();
            name_nul.push(0);
            events.push(MeasuredEvent::of_data(
                EventType::IPL,
                format!("UKI section name {name}"),
                &name_nul,
            ));
            events.push(MeasuredEvent::of_data(
                EventType::IPL,
                format!("UKI section {name}"),
                &data,
            ));
        }
        if self.kernel_stub_measures(model)? {
            if let Some(cmdline) = self.cmdline()? {
                let mut options = utf16le(&cmdline);
                options.extend_from_slice(&[0, 0]);
                events.push(MeasuredEvent::of_data(
                    EventType::EVENT_TAG,
                    "LOADED_IMAGE::LoadOptions (kernel command line)",
                    &options,
                ));
            }
            if let Some(initrd) = self.initrd().filter(|i| !i.is_empty()) {
                events.push(MeasuredEvent::of_data(
                    EventType::EVENT_TAG,
                    "Linux initrd",
                    &initrd,
                ));
            }
        }
        Ok(events)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::digest::Sha384Digest;
    use crate::gpt::tests::sample_disk;
    use crate::pe::tests::sample_pe;

    /// A minimal UKI: a PE with `.linux` (a small PE itself), `.cmdline`, `.initrd`,
    /// `.uname` sections, raw data 512-aligned, `VirtualSize` = the content length.
    pub(crate) fn sample_uki(cmdline: &[u8], uname: &[u8]) -> Vec<u8> {
        let kernel = sample_pe(b"kernel tail");
        let initrd = b"070701 pretend cpio".to_vec();
        let contents: [(&[u8; 8], Vec<u8>); 4] = [
            (b".cmdline", cmdline.to_vec()),
            (b".uname\0\0", uname.to_vec()),
            (b".linux\0\0", kernel),
            (b".initrd\0", initrd),
        ];
        let mut f = sample_pe(&[]);
        f.truncate(0x200);
        f.resize(0x400, 0);
        let opt = 0x84 + 20;
        f[opt + 60..opt + 64].copy_from_slice(&0x400u32.to_le_bytes());
        f[0x84 + 2..0x84 + 4].copy_from_slice(&(contents.len() as u16).to_le_bytes());
        let table = opt + 240;
        let mut ptr = 0x400u32;
        let mut body = Vec::new();
        for (i, (name, data)) in contents.iter().enumerate() {
            let raw = (data.len() as u32).div_ceil(512) * 512;
            let h = table + i * 40;
            f[h..h + 8].copy_from_slice(*name);
            f[h + 8..h + 12].copy_from_slice(&(data.len() as u32).to_le_bytes());
            f[h + 12..h + 16].copy_from_slice(&(0x10000 * (i as u32 + 1)).to_le_bytes());
            f[h + 16..h + 20].copy_from_slice(&raw.to_le_bytes());
            f[h + 20..h + 24].copy_from_slice(&ptr.to_le_bytes());
            let mut padded = data.clone();
            padded.resize(raw as usize, 0);
            body.extend_from_slice(&padded);
            ptr += raw;
        }
        f.extend_from_slice(&body);
        f
    }

    #[test]
    fn rtmr2_lists_sections_in_stub_order_then_the_kernel_stub_events() {
        let f = sample_uki(b"console=ttyS0 ro\n", b"6.12.117+deb13-amd64");
        let uki = Uki::parse(&f).unwrap();
        let events = uki.rtmr2_events(&BootModel::default()).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.description.as_str()).collect();
        assert_eq!(
            names,
            [
                "UKI section name .linux",
                "UKI section .linux",
                "UKI section name .cmdline",
                "UKI section .cmdline",
                "UKI section name .initrd",
                "UKI section .initrd",
                "UKI section name .uname",
                "UKI section .uname",
                "LOADED_IMAGE::LoadOptions (kernel command line)",
                "Linux initrd",
            ]
        );
        assert_eq!(events[0].digest, Sha384Digest::of(b".linux\0"));
        // VirtualSize bytes, not the 512-byte-aligned raw data.
        assert_eq!(events[3].digest, Sha384Digest::of(b"console=ttyS0 ro\n"));
        assert_eq!(
            events[8].digest,
            Sha384Digest::of(&utf16le("console=ttyS0 ro\0"))
        );
        assert_eq!(events[9].digest, Sha384Digest::of(b"070701 pretend cpio"));
    }

    #[test]
    fn older_kernels_and_explicit_models_drop_the_kernel_stub_events() {
        let f = sample_uki(b"ro", b"6.1.0-31-amd64");
        let uki = Uki::parse(&f).unwrap();
        assert_eq!(uki.rtmr2_events(&BootModel::default()).unwrap().len(), 8);
        let model = BootModel {
            kernel_stub_measures: Some(true),
            ..Default::default()
        };
        assert_eq!(uki.rtmr2_events(&model).unwrap().len(), 10);
        let f = sample_uki(b"ro", b"");
        assert!(
            Uki::parse(&f)
                .unwrap()
                .rtmr2_events(&BootModel::default())
                .is_err()
        );
    }

    #[test]
    fn rtmr1_has_the_uki_then_the_kernel_unless_secure_boot() {
        let f = sample_uki(b"ro", b"6.12.0");
        let uki = Uki::parse(&f).unwrap();
        let gpt = Gpt::read(&sample_disk()).unwrap();
        let ev = uki.rtmr1_events(&gpt, &BootModel::default()).unwrap();
        assert_eq!(ev.len(), 7);
        assert_eq!(ev[3].digest, authenticode_sha384(&f).unwrap());
        assert_eq!(ev[4].digest, authenticode_sha384(&uki.kernel()).unwrap());
        let sb = BootModel {
            secure_boot: true,
            ..Default::default()
        };
        assert_eq!(uki.rtmr1_events(&gpt, &sb).unwrap().len(), 6);
    }

    #[test]
    fn refuses_sections_outside_the_model_and_odd_command_lines() {
        let f = sample_uki(b"ro\x01x", b"6.12.0");
        assert_eq!(
            Uki::parse(&f).unwrap().cmdline(),
            Err(UkiError::CmdlineNotAscii)
        );
        let mut f = sample_uki(b"ro", b"6.12.0");
        let h = 0x84 + 20 + 240 + 40; // second section header: .uname -> .osrel
        f[h..h + 8].copy_from_slice(b".osrel\0\0");
        assert_eq!(
            Uki::parse(&f).unwrap_err(),
            UkiError::UnsupportedSection(".osrel".into())
        );
    }
}

//! The `measurements/<release>.json` format: what a released enclave image measures
//! as, and from which inputs. Peers' attestation policy and the `/secrets` policy load
//! it; [`ReleaseMeasurements::expected`] gives the MRTD and RTMR0-3 to allow.
//!
//! Versioned by the `format` field ([`FORMAT`]); readers refuse other versions and
//! unknown fields, so a change of meaning cannot be read silently.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::Sha384Digest;
use crate::rtmr::MeasuredEvent;
use crate::tdvf::PageOrder;

/// The format identifier this crate reads and writes.
pub const FORMAT: &str = "eigenkms-measurements/v1";

/// Why a release file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid JSON of this format.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// The cause.
        source: serde_json::Error,
    },
    /// Another format version.
    #[error("unsupported measurements format {0:?} (this reader knows {FORMAT:?})")]
    Format(String),
    /// A register has no expected value yet.
    #[error("release {release}: {register} has no expected value ({why})")]
    Incomplete {
        /// The release.
        release: String,
        /// `mrtd` or `rtmrN`.
        register: &'static str,
        /// Its recorded source.
        why: String,
    },
}

/// How a register's expected value was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// Computed by kms-measure from the inputs listed in the file.
    Computed,
    /// Replayed from the event log of a reference boot on a TDX host.
    ReferenceLog,
    /// Nothing extends it during boot: zero until the OS extends runtime events.
    Zero,
    /// Not known yet (see `note`).
    Unknown,
}

/// The expected value of one register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// The value, hex; `null` when unknown.
    pub value: Option<Sha384Digest>,
    /// Where it comes from.
    pub source: Source,
    /// What a reader should know (assumptions, why it is unknown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// MRTD and RTMR0-3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registers {
    /// MRTD (firmware).
    pub mrtd: Register,
    /// RTMR0 (firmware configuration: TD HOB, ACPI, variables).
    pub rtmr0: Register,
    /// RTMR1 (boot manager: GPT, UKI, kernel, ExitBootServices).
    pub rtmr1: Register,
    /// RTMR2 (UKI sections, command line, initrd).
    pub rtmr2: Register,
    /// RTMR3 (runtime).
    pub rtmr3: Register,
}

/// A file that went into the measurements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileInput {
    /// A name for humans (file name, package version).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// SHA-256, hex (what `sha256sum` prints).
    pub sha256: String,
    /// SHA-384.
    pub sha384: Sha384Digest,
    /// Authenticode SHA-384, for PE images (what firmware measures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authenticode_sha384: Option<Sha384Digest>,
}

impl FileInput {
    /// Describes `data` under `name`.
    pub fn of(name: impl Into<String>, data: &[u8]) -> Self {
        FileInput {
            name: name.into(),
            size: data.len() as u64,
            sha256: crate::digest::sha256_hex(data),
            sha384: Sha384Digest::of(data),
            authenticode_sha384: None,
        }
    }
}

/// The inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inputs {
    /// The TDVF firmware image (`-bios`), when one was given.
    pub firmware: Option<FileInput>,
    /// The raw disk image.
    pub disk: FileInput,
    /// The UKI on the disk's ESP (`\EFI\BOOT\BOOTX64.EFI`).
    pub uki: FileInput,
    /// The kernel inside the UKI (`.linux`).
    pub kernel: FileInput,
    /// The initrd inside the UKI (`.initrd`).
    pub initrd: FileInput,
    /// The kernel command line inside the UKI (`.cmdline`), as the kernel gets it.
    pub cmdline: String,
    /// The kernel release (`.uname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
}

/// The VM configuration the values hold for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmConfig {
    /// Guest memory in MiB (enters RTMR0 through the TD HOB).
    pub memory_mib: u64,
    /// vCPUs (enter RTMR0 through the ACPI tables).
    pub cpus: u32,
    /// How the host adds firmware pages (changes MRTD).
    pub page_order: PageOrder,
    /// UEFI Secure Boot (changes RTMR1).
    pub secure_boot: bool,
}

/// Where the image came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The source commit the image was built from.
    pub commit: String,
    /// `SOURCE_DATE_EPOCH` of the build (the commit time).
    pub source_date_epoch: u64,
    /// The Debian package set in the image, `name version` lines, SHA-256.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages_sha256: Option<String>,
}

/// The expected events behind the computed registers, for diagnosing a mismatch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Events {
    /// The RTMR0 events fixed by the firmware file (configuration volume, Secure Boot
    /// variables, separator): a contiguous part of RTMR0, not all of it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rtmr0_firmware: Vec<MeasuredEvent>,
    /// RTMR1's events.
    pub rtmr1: Vec<MeasuredEvent>,
    /// RTMR2's events.
    pub rtmr2: Vec<MeasuredEvent>,
}

/// One release's expected measurements (`measurements/<release>.json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseMeasurements {
    /// Always [`FORMAT`].
    pub format: String,
    /// The release name (also the file name).
    pub release: String,
    /// Source commit and build time.
    pub provenance: Provenance,
    /// The VM configuration.
    pub vm: VmConfig,
    /// The inputs and their hashes.
    pub inputs: Inputs,
    /// The expected register values.
    pub registers: Registers,
    /// The predicted events.
    pub events: Events,
}

impl ReleaseMeasurements {
    /// Reads and checks a release file.
    pub fn load(path: &Path) -> Result<Self, ReleaseError> {
        let text = std::fs::read_to_string(path).map_err(|source| ReleaseError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&text).map_err(|e| match e {
            ReleaseError::Parse { source, .. } => ReleaseError::Parse {
                path: path.display().to_string(),
                source,
            },
            other => other,
        })
    }

    /// Parses a release from JSON and checks its format version.
    pub fn from_json(text: &str) -> Result<Self, ReleaseError> {
        // Check the version before the shape, so that a future format is reported as such.
        #[derive(Deserialize)]
        struct Versioned {
            format: String,
        }
        let v: Versioned = serde_json::from_str(text).map_err(|source| ReleaseError::Parse {
            path: String::new(),
            source,
        })?;
        if v.format != FORMAT {
            return Err(ReleaseError::Format(v.format));
        }
        serde_json::from_str(text).map_err(|source| ReleaseError::Parse {
            path: String::new(),
            source,
        })
    }

    /// Pretty JSON with a final newline (the committed form).
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("plain data serialises");
        s.push('\n');
        s
    }

    /// MRTD and RTMR0-3 to allow, if every register is known. A policy must refuse a
    /// release with an unknown register rather than skip that register: a wildcard
    /// would admit any firmware or configuration.
    pub fn expected(&self) -> Result<([u8; 48], [[u8; 48]; 4]), ReleaseError> {
        let get = |register: &'static str, r: &Register| {
            r.value
                .map(|v| v.0)
                .ok_or_else(|| ReleaseError::Incomplete {
                    release: self.release.clone(),
                    register,
                    why: r.note.clone().unwrap_or_else(|| format!("{:?}", r.source)),
                })
        };
        let r = &self.registers;
        Ok((
            get("mrtd", &r.mrtd)?,
            [
                get("rtmr0", &r.rtmr0)?,
                get("rtmr1", &r.rtmr1)?,
                get("rtmr2", &r.rtmr2)?,
                get("rtmr3", &r.rtmr3)?,
            ],
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ReleaseMeasurements {
        let known = |d: &[u8]| Register {
            value: Some(Sha384Digest::of(d)),
            source: Source::Computed,
            note: None,
        };
        ReleaseMeasurements {
            format: FORMAT.into(),
            release: "0.1.0-test".into(),
            provenance: Provenance {
                commit: "0".repeat(40),
                source_date_epoch: 1,
                packages_sha256: None,
            },
            vm: VmConfig {
                memory_mib: 4096,
                cpus: 2,
                page_order: PageOrder::PerPage,
                secure_boot: false,
            },
            inputs: Inputs {
                firmware: None,
                disk: FileInput::of("disk.raw", b"disk"),
                uki: FileInput::of("uki.efi", b"uki"),
                kernel: FileInput::of("vmlinuz", b"k"),
                initrd: FileInput::of("initrd", b"i"),
                cmdline: "ro".into(),
                kernel_release: None,
            },
            registers: Registers {
                mrtd: known(b"m"),
                rtmr0: Register {
                    value: None,
                    source: Source::Unknown,
                    note: Some("needs a reference boot".into()),
                },
                rtmr1: known(b"1"),
                rtmr2: known(b"2"),
                rtmr3: Register {
                    value: Some(Sha384Digest::ZERO),
                    source: Source::Zero,
                    note: None,
                },
            },
            events: Events::default(),
        }
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        assert_eq!(ReleaseMeasurements::from_json(&r.to_json()).unwrap(), r);
    }

    #[test]
    fn an_unknown_register_makes_the_release_unusable_for_policy() {
        let mut r = sample();
        let err = r.expected().unwrap_err().to_string();
        assert!(
            err.contains("rtmr0") && err.contains("needs a reference boot"),
            "{err}"
        );
        r.registers.rtmr0.value = Some(Sha384Digest::of(b"0"));
        let (mrtd, rtmr) = r.expected().unwrap();
        assert_eq!(mrtd, Sha384Digest::of(b"m").0);
        assert_eq!(rtmr[3], [0u8; 48]);
    }

    #[test]
    fn other_versions_and_unknown_fields_are_refused() {
        let r = sample();
        let other = r.to_json().replace(FORMAT, "eigenkms-measurements/v2");
        assert!(matches!(
            ReleaseMeasurements::from_json(&other),
            Err(ReleaseError::Format(_))
        ));
        let extra = r.to_json().replacen("{", "{\"surprise\": 1,", 1);
        assert!(matches!(
            ReleaseMeasurements::from_json(&extra),
            Err(ReleaseError::Parse { .. })
        ));
    }
}

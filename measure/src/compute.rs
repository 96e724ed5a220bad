//! Assembling a release's expected measurements from its inputs.

use crate::eventlog::EventLog;
use crate::gpt::{Gpt, GptError};
use crate::release::{
    Events, FORMAT, FileInput, Inputs, Provenance, Register, Registers, ReleaseMeasurements,
    Source, VmConfig,
};
use crate::rtmr::replay;
use crate::tdvf::{PageOrder, Tdvf};
use crate::uki::{BootModel, Uki, UkiError};
use crate::{Sha384Digest, authenticode};

/// Why a release cannot be computed.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// The disk has no usable GPT.
    #[error("disk image: {0}")]
    Gpt(#[from] GptError),
    /// The UKI is outside the measurement model.
    #[error("UKI: {0}")]
    Uki(#[from] UkiError),
    /// The reference log could not be read.
    #[error("reference event log: {0}")]
    Log(#[from] crate::eventlog::EventLogError),
    /// The reference log disagrees with the prediction: the model, the image or the
    /// launch differs from what was assumed.
    #[error("the reference event log disagrees with the prediction: {0}")]
    LogMismatch(String),
}

/// Everything a release's measurements depend on.
#[derive(Clone, Debug)]
pub struct ReleaseSpec<'a> {
    /// The release name.
    pub release: String,
    /// Where it was built from.
    pub provenance: Provenance,
    /// The VM configuration.
    pub vm: VmConfig,
    /// The raw disk image.
    pub disk: &'a [u8],
    /// The UKI on it.
    pub uki: &'a [u8],
    /// The TDVF firmware, if given.
    pub firmware: Option<(&'a str, &'a [u8])>,
    /// Whether the kernel's EFI stub measures into RTMR2 (`None`: from `.uname`).
    pub kernel_stub_measures: Option<bool>,
    /// The CC event log of a reference boot of this image in this configuration.
    pub reference_log: Option<&'a [u8]>,
}

fn computed(value: Sha384Digest, note: Option<String>) -> Register {
    Register {
        value: Some(value),
        source: Source::Computed,
        note,
    }
}

fn unknown(note: String) -> Register {
    Register {
        value: None,
        source: Source::Unknown,
        note: Some(note),
    }
}

/// Computes a release's expected measurements.
pub fn compute_release(spec: &ReleaseSpec<'_>) -> Result<ReleaseMeasurements, ComputeError> {
    let gpt = Gpt::read(spec.disk)?;
    let uki = Uki::parse(spec.uki)?;
    let model = BootModel {
        secure_boot: spec.vm.secure_boot,
        kernel_stub_measures: spec.kernel_stub_measures,
    };
    let rtmr1_events = uki.rtmr1_events(&gpt, &model)?;
    let rtmr2_events = uki.rtmr2_events(&model)?;

    let kernel = uki.kernel();
    let mut kernel_input = FileInput::of(".linux", &kernel);
    kernel_input.authenticode_sha384 = authenticode::authenticode_sha384(&kernel).ok();
    let mut uki_input = FileInput::of("BOOTX64.EFI", spec.uki);
    uki_input.authenticode_sha384 = authenticode::authenticode_sha384(spec.uki).ok();

    let mut rtmr0_firmware = Vec::new();
    let (firmware_input, mrtd) = match spec.firmware {
        None => (
            None,
            unknown("no firmware given: MRTD depends on the host's TDVF build".into()),
        ),
        Some((name, fw)) => {
            let input = Some(FileInput::of(name, fw));
            let mrtd = match Tdvf::parse(fw) {
                Ok(t) => {
                    rtmr0_firmware = crate::rtmr0::firmware_events(&t).unwrap_or_default();
                    computed(
                        t.mrtd(spec.vm.page_order),
                        Some(format!(
                            "firmware loaded as one image (-bios); host adds pages {}",
                            spec.vm.page_order
                        )),
                    )
                }
                Err(e) => unknown(format!("{name}: {e}")),
            };
            (input, mrtd)
        }
    };

    let rtmr1 = replay(&rtmr1_events);
    let rtmr2 = replay(&rtmr2_events);
    let rtmr0 = match spec.reference_log {
        None => unknown(
            "RTMR0 measures the VMM's TD HOB, ACPI tables and boot variables: record it from the \
             event log of a reference boot on a TDX host (kms-measure release --reference-log)"
                .into(),
        ),
        Some(log) => {
            let log = EventLog::parse(log)?;
            for (i, events) in [(1, &rtmr1_events), (2, &rtmr2_events)] {
                if let Some(diff) = log.compare(i, events) {
                    return Err(ComputeError::LogMismatch(diff));
                }
            }
            if !log.contains_run(0, &rtmr0_firmware) {
                return Err(ComputeError::LogMismatch(
                    "RTMR0 lacks the firmware's configuration-volume and Secure Boot events: \
                     another firmware or variable store was booted"
                        .into(),
                ));
            }
            Register {
                value: Some(log.replay()[0]),
                source: Source::ReferenceLog,
                note: Some(format!(
                    "replayed from a reference boot with {} MiB and {} vCPUs",
                    spec.vm.memory_mib, spec.vm.cpus
                )),
            }
        }
    };

    let cmdline = uki.cmdline()?.unwrap_or_default();
    Ok(ReleaseMeasurements {
        format: FORMAT.into(),
        release: spec.release.clone(),
        provenance: spec.provenance.clone(),
        vm: spec.vm.clone(),
        inputs: Inputs {
            firmware: firmware_input,
            disk: FileInput::of("disk.raw", spec.disk),
            uki: uki_input,
            kernel: kernel_input,
            initrd: FileInput::of(".initrd", &uki.initrd().unwrap_or_default()),
            cmdline,
            kernel_release: uki.uname(),
        },
        registers: Registers {
            mrtd,
            rtmr0,
            rtmr1: computed(rtmr1, None),
            rtmr2: computed(rtmr2, None),
            rtmr3: Register {
                value: Some(Sha384Digest::ZERO),
                source: Source::Zero,
                note: Some(
                    "no boot component extends RTMR3; the image extends nothing at run time yet"
                        .into(),
                ),
            },
        },
        events: Events {
            rtmr0_firmware,
            rtmr1: rtmr1_events,
            rtmr2: rtmr2_events,
        },
    })
}

/// A default VM configuration (as the smoke test and docs/operators.md launch it).
pub fn default_vm() -> VmConfig {
    VmConfig {
        memory_mib: 4096,
        cpus: 2,
        page_order: PageOrder::PerPage,
        secure_boot: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eventlog::tests::encode;
    use crate::gpt::tests::sample_disk;
    use crate::rtmr::EventType;
    use crate::tdvf::tests::synthetic_firmware;
    use crate::uki::tests::sample_uki;

    fn spec<'a>(
        disk: &'a [u8],
        uki: &'a [u8],
        fw: &'a [u8],
        log: Option<&'a [u8]>,
    ) -> ReleaseSpec<'a> {
        ReleaseSpec {
            release: "t".into(),
            provenance: Provenance {
                commit: "c".into(),
                source_date_epoch: 0,
                packages_sha256: None,
            },
            vm: default_vm(),
            disk,
            uki,
            firmware: Some(("fw.fd", fw)),
            kernel_stub_measures: None,
            reference_log: log,
        }
    }

    #[test]
    fn computes_all_but_rtmr0_without_a_reference_log() {
        let (disk, uki, fw) = (
            sample_disk(),
            sample_uki(b"ro quiet", b"6.12.1"),
            synthetic_firmware(),
        );
        let r = compute_release(&spec(&disk, &uki, &fw, None)).unwrap();
        assert_eq!(r.registers.mrtd.source, Source::Computed);
        assert_eq!(r.registers.rtmr0.value, None);
        assert_eq!(r.registers.rtmr1.value, Some(replay(&r.events.rtmr1)));
        assert_eq!(r.inputs.cmdline, "ro quiet");
        assert!(r.expected().is_err());
    }

    #[test]
    fn a_matching_reference_log_supplies_rtmr0_and_a_different_one_is_refused() {
        let (disk, uki, fw) = (
            sample_disk(),
            sample_uki(b"ro", b"6.12.1"),
            synthetic_firmware(),
        );
        let r = compute_release(&spec(&disk, &uki, &fw, None)).unwrap();
        // A log that records the predicted events, plus one RTMR0 event.
        let rtmr0_data = b"pretend TD HOB".to_vec();
        let rtmr0 = [(1, EventType::PLATFORM_CONFIG_FLAGS, rtmr0_data.clone())];
        let log = encode_digests(&rtmr0, &r.events.rtmr1, &r.events.rtmr2);
        let with_log = compute_release(&spec(&disk, &uki, &fw, Some(&log))).unwrap();
        assert_eq!(with_log.registers.rtmr0.source, Source::ReferenceLog);
        assert_eq!(
            with_log.registers.rtmr0.value,
            Some(crate::Rtmr::replay([&Sha384Digest::of(&rtmr0_data)]))
        );
        assert!(with_log.expected().is_ok());

        let short = encode_digests(&[], &r.events.rtmr1[..3], &r.events.rtmr2);
        assert!(matches!(
            compute_release(&spec(&disk, &uki, &fw, Some(&short))),
            Err(ComputeError::LogMismatch(_))
        ));
    }

    /// A log with data events for RTMR0 and the given digests for RTMR1/RTMR2.
    fn encode_digests(
        rtmr0: &[(u32, EventType, Vec<u8>)],
        rtmr1: &[crate::MeasuredEvent],
        rtmr2: &[crate::MeasuredEvent],
    ) -> Vec<u8> {
        let header = encode(&[]);
        let mut log = header[..header.len() - 64].to_vec();
        let mut push = |mr: u32, ty: EventType, digest: Sha384Digest, data: &[u8]| {
            log.extend_from_slice(&mr.to_le_bytes());
            log.extend_from_slice(&ty.0.to_le_bytes());
            log.extend_from_slice(&1u32.to_le_bytes());
            log.extend_from_slice(&0x000cu16.to_le_bytes());
            log.extend_from_slice(digest.as_bytes());
            log.extend_from_slice(&(data.len() as u32).to_le_bytes());
            log.extend_from_slice(data);
        };
        for (mr, ty, data) in rtmr0 {
            push(*mr, *ty, Sha384Digest::of(data), data);
        }
        for e in rtmr1 {
            push(2, e.event_type, e.digest, e.description.as_bytes());
        }
        for e in rtmr2 {
            push(3, e.event_type, e.digest, e.description.as_bytes());
        }
        log.extend_from_slice(&[0xff; 64]);
        log
    }
}

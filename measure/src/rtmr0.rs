//! The part of RTMR0 that depends on the firmware alone.
//!
//! TDVF extends into RTMR0, in order: the TD HOB the VMM wrote (memory map), the
//! configuration firmware volume (the UEFI variable store as shipped), the Secure Boot
//! variables `SecureBoot`, `PK`, `KEK`, `db`, `dbx`, a separator, then the ACPI tables
//! the VMM provides and the boot variables (`BootOrder`, `Boot####`). The TD HOB, the
//! ACPI tables and the boot entries depend on the VMM, its version and the VM's memory,
//! CPUs and devices, so RTMR0 as a whole comes from a reference boot's event log; the
//! events here are the ones a verifier can recompute from the firmware file, and a
//! reference log must contain them (else it is another firmware or variable store).

use crate::digest::utf16le;
use crate::rtmr::{EventType, MeasuredEvent};
use crate::tdvf::{Tdvf, guid_le};

/// `EFI_GLOBAL_VARIABLE` (`8be4df61-93ca-11d2-aa0d-00e098032b8c`).
const EFI_GLOBAL_VARIABLE: [u8; 16] = guid_le(
    0x8be4_df61,
    0x93ca,
    0x11d2,
    [0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c],
);
/// `EFI_IMAGE_SECURITY_DATABASE_GUID` (`d719b2cb-3d3a-4596-a3bc-dad00e67656f`).
const EFI_IMAGE_SECURITY_DATABASE: [u8; 16] = guid_le(
    0xd719_b2cb,
    0x3d3a,
    0x4596,
    [0xa3, 0xbc, 0xda, 0xd0, 0x0e, 0x67, 0x65, 0x6f],
);

/// `UEFI_VARIABLE_DATA`: vendor GUID, name length (UTF-16 units, u64), data length
/// (u64), the name in UTF-16LE without NUL, the data. For
/// `EV_EFI_VARIABLE_DRIVER_CONFIG` the digest is over this whole structure.
pub fn uefi_variable_data(vendor: &[u8; 16], name: &str, data: &[u8]) -> Vec<u8> {
    let name16 = utf16le(name);
    let mut out = Vec::with_capacity(32 + name16.len() + data.len());
    out.extend_from_slice(vendor);
    out.extend_from_slice(&((name16.len() / 2) as u64).to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&name16);
    out.extend_from_slice(data);
    out
}

/// The Secure Boot policy events of a firmware whose Secure Boot variables are all
/// absent (not enrolled, Secure Boot off), as TDVF measures them.
pub fn secure_boot_events_unenrolled() -> Vec<MeasuredEvent> {
    [
        (&EFI_GLOBAL_VARIABLE, "SecureBoot"),
        (&EFI_GLOBAL_VARIABLE, "PK"),
        (&EFI_GLOBAL_VARIABLE, "KEK"),
        (&EFI_IMAGE_SECURITY_DATABASE, "db"),
        (&EFI_IMAGE_SECURITY_DATABASE, "dbx"),
    ]
    .into_iter()
    .map(|(guid, name)| {
        MeasuredEvent::of_data(
            EventType::EFI_VARIABLE_DRIVER_CONFIG,
            format!("Secure Boot variable {name} (absent)"),
            &uefi_variable_data(guid, name, &[]),
        )
    })
    .collect()
}

/// The contiguous run of RTMR0 events fixed by the firmware file: the configuration
/// volume, the (unenrolled) Secure Boot variables and the separator. `None` when the
/// firmware has no configuration volume section.
pub fn firmware_events(tdvf: &Tdvf<'_>) -> Option<Vec<MeasuredEvent>> {
    let cfv = tdvf.cfv_digest()?;
    let mut events = vec![MeasuredEvent {
        event_type: EventType::EFI_PLATFORM_FIRMWARE_BLOB2,
        description: "configuration firmware volume (variable store as shipped)".into(),
        digest: cfv,
    }];
    events.extend(secure_boot_events_unenrolled());
    events.push(MeasuredEvent::separator());
    Some(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The EV_EFI_VARIABLE_DRIVER_CONFIG digests (SHA-384 bank) in the TPM event log of
    // this image's boot on Debian trixie's OVMF with a virtual TPM (make image-smoke):
    // the same firmware code measures the same variables into RTMR0 in a TD.
    #[test]
    fn unenrolled_secure_boot_variables_match_a_real_boot_log() {
        let expected = [
            "9dc3a1f80bcec915391dcda5ffbb15e7419f77eab462bbf72b42166fb70d50325e37b36f93537a863769bcf9bedae6fb",
            "6f2e3cbc14f9def86980f5f66fd85e99d63e69a73014ed8a5633ce56eca5b64b692108c56110e22acadcef58c3250f1b",
            "d607c0efb41c0d757d69bca0615c3a9ac0b1db06c557d992e906c6b7dee40e0e031640c7bfd7bcd35844ef9edeadc6f9",
            "08a74f8963b337acb6c93682f934496373679dd26af1089cb4eaf0c30cf260a12e814856385ab8843e56a9acea19e127",
            "18cc6e01f0c6ea99aa23f8a280423e94ad81d96d0aeb5180504fc0f7a40cb3619dd39bd6a95ec1680a86ed6ab0f9828d",
        ];
        let events = secure_boot_events_unenrolled();
        for (e, x) in events.iter().zip(expected) {
            assert_eq!(e.digest.to_hex(), x, "{}", e.description);
        }
    }

    #[test]
    fn variable_data_layout() {
        let d = uefi_variable_data(&EFI_GLOBAL_VARIABLE, "PK", b"\x01");
        assert_eq!(d.len(), 16 + 8 + 8 + 4 + 1);
        assert_eq!(&d[16..24], &2u64.to_le_bytes());
        assert_eq!(&d[24..32], &1u64.to_le_bytes());
        assert_eq!(&d[32..36], b"P\0K\0");
    }
}

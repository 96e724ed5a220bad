//! The RTMR extend rule and measured events.
//!
//! A TD starts with its four runtime measurement registers at zero; `TDG.MR.RTMR.EXTEND`
//! replaces a register with `SHA-384(register ‖ digest)` where `digest` is the 48-byte
//! SHA-384 of the measured data. A register therefore commits to the ordered list of
//! digests extended into it, which is what the event logs record.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha384};

use crate::digest::Sha384Digest;

/// One runtime measurement register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rtmr(Sha384Digest);

impl Default for Rtmr {
    fn default() -> Self {
        Rtmr(Sha384Digest::ZERO)
    }
}

impl Rtmr {
    /// A register as at TD start: all zeroes.
    pub fn new() -> Self {
        Self::default()
    }

    /// `RTMR ← SHA-384(RTMR ‖ digest)`.
    pub fn extend(&mut self, digest: &Sha384Digest) {
        let mut h = Sha384::new();
        h.update(self.0.as_bytes());
        h.update(digest.as_bytes());
        self.0 = Sha384Digest(h.finalize().into());
    }

    /// The current value.
    pub fn value(&self) -> Sha384Digest {
        self.0
    }

    /// The value after extending a fresh register with `digests` in order.
    pub fn replay<'a>(digests: impl IntoIterator<Item = &'a Sha384Digest>) -> Sha384Digest {
        let mut r = Rtmr::new();
        for d in digests {
            r.extend(d);
        }
        r.value()
    }
}

/// TCG PC Client event types that appear in TDX boot logs (TCG PFP spec, table 9).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventType(pub u32);

impl EventType {
    /// `EV_POST_CODE`.
    pub const POST_CODE: EventType = EventType(0x0000_0001);
    /// `EV_NO_ACTION`: logged, never extended.
    pub const NO_ACTION: EventType = EventType(0x0000_0003);
    /// `EV_SEPARATOR`.
    pub const SEPARATOR: EventType = EventType(0x0000_0004);
    /// `EV_ACTION`.
    pub const ACTION: EventType = EventType(0x0000_0005);
    /// `EV_EVENT_TAG` (Linux EFI stub: initrd, load options).
    pub const EVENT_TAG: EventType = EventType(0x0000_0006);
    /// `EV_IPL` (systemd-stub: UKI sections, command line).
    pub const IPL: EventType = EventType(0x0000_000d);
    /// `EV_PLATFORM_CONFIG_FLAGS` (TDVF: TD HOB, ACPI tables).
    pub const PLATFORM_CONFIG_FLAGS: EventType = EventType(0x0000_000a);
    /// `EV_EFI_VARIABLE_DRIVER_CONFIG` (secure boot variables).
    pub const EFI_VARIABLE_DRIVER_CONFIG: EventType = EventType(0x8000_0001);
    /// `EV_EFI_VARIABLE_BOOT` (BootOrder, Boot####).
    pub const EFI_VARIABLE_BOOT: EventType = EventType(0x8000_0002);
    /// `EV_EFI_BOOT_SERVICES_APPLICATION` (a loaded PE image, by Authenticode digest).
    pub const EFI_BOOT_SERVICES_APPLICATION: EventType = EventType(0x8000_0003);
    /// `EV_EFI_ACTION`.
    pub const EFI_ACTION: EventType = EventType(0x8000_0007);
    /// `EV_EFI_GPT_EVENT` (the boot disk's partition table).
    pub const EFI_GPT_EVENT: EventType = EventType(0x8000_0006);
    /// `EV_EFI_PLATFORM_FIRMWARE_BLOB2` (TDVF: the configuration firmware volume).
    pub const EFI_PLATFORM_FIRMWARE_BLOB2: EventType = EventType(0x8000_000a);
    /// `EV_EFI_HANDOFF_TABLES2`.
    pub const EFI_HANDOFF_TABLES2: EventType = EventType(0x8000_000b);
    /// `EV_EFI_VARIABLE_AUTHORITY`.
    pub const EFI_VARIABLE_AUTHORITY: EventType = EventType(0x8000_00e0);

    /// The spec's name, for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::POST_CODE => "EV_POST_CODE",
            Self::NO_ACTION => "EV_NO_ACTION",
            Self::SEPARATOR => "EV_SEPARATOR",
            Self::ACTION => "EV_ACTION",
            Self::EVENT_TAG => "EV_EVENT_TAG",
            Self::IPL => "EV_IPL",
            Self::PLATFORM_CONFIG_FLAGS => "EV_PLATFORM_CONFIG_FLAGS",
            Self::EFI_VARIABLE_DRIVER_CONFIG => "EV_EFI_VARIABLE_DRIVER_CONFIG",
            Self::EFI_VARIABLE_BOOT => "EV_EFI_VARIABLE_BOOT",
            Self::EFI_BOOT_SERVICES_APPLICATION => "EV_EFI_BOOT_SERVICES_APPLICATION",
            Self::EFI_ACTION => "EV_EFI_ACTION",
            Self::EFI_GPT_EVENT => "EV_EFI_GPT_EVENT",
            Self::EFI_PLATFORM_FIRMWARE_BLOB2 => "EV_EFI_PLATFORM_FIRMWARE_BLOB2",
            Self::EFI_HANDOFF_TABLES2 => "EV_EFI_HANDOFF_TABLES2",
            Self::EFI_VARIABLE_AUTHORITY => "EV_EFI_VARIABLE_AUTHORITY",
            _ => "EV_UNKNOWN",
        }
    }
}

/// One expected measurement: what is measured, and the digest extended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasuredEvent {
    /// The TCG event type the measuring component logs it with.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// What was measured, for humans ("UKI section .cmdline", ...).
    pub description: String,
    /// The digest extended into the register.
    pub digest: Sha384Digest,
}

impl MeasuredEvent {
    /// An event whose digest is SHA-384 of `data`.
    pub fn of_data(event_type: EventType, description: impl Into<String>, data: &[u8]) -> Self {
        MeasuredEvent {
            event_type,
            description: description.into(),
            digest: Sha384Digest::of(data),
        }
    }

    /// `EV_EFI_ACTION` with an ASCII action string (digest of the string without NUL).
    pub fn efi_action(action: &str) -> Self {
        Self::of_data(EventType::EFI_ACTION, action, action.as_bytes())
    }

    /// `EV_SEPARATOR` as TDVF measures it: the digest of four zero bytes.
    pub fn separator() -> Self {
        Self::of_data(EventType::SEPARATOR, "separator", &[0u8; 4])
    }
}

/// The register value after `events`, extended in order into a fresh register.
pub fn replay(events: &[MeasuredEvent]) -> Sha384Digest {
    Rtmr::replay(events.iter().map(|e| &e.digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Known answers for the extend rule, computed independently with Python's hashlib:
    //   d = sha384(b"abc").digest(); r1 = sha384(bytes(48) + d).digest()
    //   r2 = sha384(r1 + sha384(b"").digest()).digest()
    const ABC_ONCE: &str = "93732e3733514a841c982cfa75ea76ab55fe011acb9cd980ef4523913c65be1b\
                            0998e04d77f8c174f81a82151619ca40";
    const ABC_THEN_EMPTY: &str = "a4d392030aec0188324dac645cac0391f996c9a913563092cd9d7c55c3d86c0f\
                                  109053c37d2974da85660814bf359bed";

    #[test]
    fn extend_rule_known_answers() {
        let mut r = Rtmr::new();
        assert_eq!(r.value(), Sha384Digest::ZERO);
        r.extend(&Sha384Digest::of(b"abc"));
        assert_eq!(r.value().to_hex(), ABC_ONCE);
        r.extend(&Sha384Digest::of(b""));
        assert_eq!(r.value().to_hex(), ABC_THEN_EMPTY);
    }

    #[test]
    fn extend_is_order_sensitive() {
        let (a, b) = (Sha384Digest::of(b"a"), Sha384Digest::of(b"b"));
        assert_ne!(Rtmr::replay([&a, &b]), Rtmr::replay([&b, &a]));
    }

    // Digests of TDVF's constant RTMR1 events as they appear in the event log of a
    // real TDX guest (Google Cloud C3, recorded in public RTMR calculators): they
    // pin the exact bytes measured (ASCII without NUL; a 4-byte zero separator).
    #[test]
    fn constant_boot_events_match_a_real_tdx_event_log() {
        let cases = [
            (
                MeasuredEvent::efi_action("Calling EFI Application from Boot Option"),
                "77a0dab2312b4e1e57a84d865a21e5b2ee8d677a21012ada819d0a98988078d3\
                 d740f6346bfe0abaa938ca20439a8d71",
            ),
            (
                MeasuredEvent::separator(),
                "394341b7182cd227c5c6b07ef8000cdfd86136c4292b8e576573ad7ed9ae4101\
                 9f5818b4b971c9effc60e1ad9f1289f0",
            ),
            (
                MeasuredEvent::efi_action("Exit Boot Services Invocation"),
                "214b0bef1379756011344877743fdc2a5382bac6e70362d624ccf3f654407c1b\
                 4badf7d8f9295dd3dabdef65b27677e0",
            ),
            (
                MeasuredEvent::efi_action("Exit Boot Services Returned with Success"),
                "0a2e01c85deae718a530ad8c6d20a84009babe6c8989269e950d8cf440c6e997\
                 695e64d455c4174a652cd080f6230b74",
            ),
        ];
        for (event, expected) in cases {
            assert_eq!(event.digest.to_hex(), expected, "{}", event.description);
        }
    }

    proptest! {
        #[test]
        fn replay_equals_step_by_step_extends(data in proptest::collection::vec(any::<Vec<u8>>(), 0..8)) {
            let digests: Vec<Sha384Digest> = data.iter().map(|d| Sha384Digest::of(d)).collect();
            let mut r = Rtmr::new();
            for d in &digests {
                let mut concat = r.value().as_bytes().to_vec();
                concat.extend_from_slice(d.as_bytes());
                let expected = Sha384Digest::of(&concat);
                r.extend(d);
                prop_assert_eq!(r.value(), expected);
            }
            prop_assert_eq!(Rtmr::replay(&digests), r.value());
        }
    }
}

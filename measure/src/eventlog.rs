//! The TD event log (the ACPI `CCEL` table's log area, readable in a guest at
//! `/sys/firmware/acpi/tables/data/CCEL`): TCG2 "crypto agile" format, where the
//! `PCRIndex` field holds the CC measurement-register index (1 = RTMR0 .. 4 = RTMR3).
//!
//! Replaying a log recomputes the RTMRs it claims; comparing its events with the
//! predicted ones ([`crate::uki`]) shows which boot component differs. RTMR0 depends
//! on the VMM (TD HOB, ACPI tables, boot variables), so a release records it from the
//! log of a reference boot on a TDX host rather than predicting it.

use serde::Serialize;

use crate::digest::{SHA384_LEN, Sha384Digest};
use crate::rtmr::{EventType, MeasuredEvent, Rtmr};

const TPM_ALG_SHA1: u16 = 0x0004;
const TPM_ALG_SHA256: u16 = 0x000b;
const TPM_ALG_SHA384: u16 = 0x000c;
const TPM_ALG_SHA512: u16 = 0x000d;

/// Why a log cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventLogError {
    /// The first event is not a TCG2 "Spec ID Event03" header.
    #[error("not a TCG2 crypto-agile event log (no Spec ID Event03 header)")]
    NotCryptoAgile,
    /// The log has no SHA-384 digests.
    #[error("the log has no SHA-384 digests")]
    NoSha384,
    /// An event runs past the end of the log.
    #[error("event {0} is truncated")]
    Truncated(usize),
    /// An event names a digest algorithm the header did not declare.
    #[error("event {index} uses undeclared digest algorithm {alg:#06x}")]
    UnknownAlgorithm {
        /// The event's position.
        index: usize,
        /// The algorithm id.
        alg: u16,
    },
    /// An event targets a register other than RTMR0-3.
    #[error("event {index} targets measurement register index {mr}")]
    BadRegister {
        /// The event's position.
        index: usize,
        /// The register index.
        mr: u32,
    },
}

/// One event of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LoggedEvent {
    /// RTMR number (0-3).
    pub rtmr: usize,
    /// Event type.
    #[serde(rename = "type")]
    pub event_type: EventType,
    /// The SHA-384 digest extended.
    pub digest: Sha384Digest,
    /// The event data (a description, or the measured data itself for some types).
    #[serde(with = "hex_bytes")]
    pub data: Vec<u8>,
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }
}

impl LoggedEvent {
    /// Whether the digest can be checked against the event data alone (the data *is*
    /// what was measured), and whether it matches. `None`: not checkable.
    pub fn self_check(&self) -> Option<bool> {
        match self.event_type {
            EventType::SEPARATOR
            | EventType::EFI_ACTION
            | EventType::EFI_VARIABLE_DRIVER_CONFIG => {
                Some(Sha384Digest::of(&self.data) == self.digest)
            }
            _ => None,
        }
    }
}

/// What the log's register index field means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogKind {
    /// A CC (TDX) event log: 1..=4 are RTMR0..RTMR3.
    Cc,
    /// A TPM 2.0 event log (the same boot measured into a virtual TPM): PCRs are mapped
    /// to the RTMR TDVF would use (0, 1, 7 → RTMR0; 2-6 → RTMR1; 8-15 → RTMR2); other
    /// PCRs are dropped. Lets the RTMR1/RTMR2 model be checked without TDX hardware.
    Tpm,
}

/// The RTMR TDVF extends for a TCG PCR index (UEFI 2.10, "CC Measurement Protocol").
pub fn pcr_to_rtmr(pcr: u32) -> Option<usize> {
    match pcr {
        0 | 1 | 7 => Some(0),
        2..=6 => Some(1),
        8..=15 => Some(2),
        _ => None,
    }
}

/// A parsed log.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EventLog {
    /// Events that extend a register, in log order (`EV_NO_ACTION` dropped).
    pub events: Vec<LoggedEvent>,
}

struct Reader<'a> {
    d: &'a [u8],
    at: usize,
    index: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], EventLogError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(EventLogError::Truncated(self.index))?;
        let s = self
            .d
            .get(self.at..end)
            .ok_or(EventLogError::Truncated(self.index))?;
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, EventLogError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, EventLogError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

impl EventLog {
    /// Parses a CC event log.
    pub fn parse(log: &[u8]) -> Result<Self, EventLogError> {
        Self::parse_kind(log, LogKind::Cc)
    }

    /// Parses a CC or TPM event log.
    pub fn parse_kind(log: &[u8], kind: LogKind) -> Result<Self, EventLogError> {
        let mut r = Reader {
            d: log,
            at: 0,
            index: 0,
        };
        // Header: a TCG_PCR_EVENT (SHA-1 sized) whose data is the Spec ID event.
        r.u32()?;
        let header_type = r.u32()?;
        r.take(20)?;
        let size = r.u32()? as usize;
        let spec = r.take(size)?;
        if header_type != EventType::NO_ACTION.0 || !spec.starts_with(b"Spec ID Event03\0") {
            return Err(EventLogError::NotCryptoAgile);
        }
        let mut s = Reader {
            d: spec,
            at: 24,
            index: 0,
        };
        let n = s.u32().map_err(|_| EventLogError::NotCryptoAgile)? as usize;
        let mut sizes = Vec::with_capacity(n.min(8));
        for _ in 0..n {
            let alg = s.u16().map_err(|_| EventLogError::NotCryptoAgile)?;
            let len = s.u16().map_err(|_| EventLogError::NotCryptoAgile)?;
            sizes.push((alg, len as usize));
        }
        if !sizes
            .iter()
            .any(|&(a, l)| a == TPM_ALG_SHA384 && l == SHA384_LEN)
        {
            return Err(EventLogError::NoSha384);
        }
        let mut events = Vec::new();
        loop {
            r.index += 1;
            if log.len().saturating_sub(r.at) < 8 {
                break;
            }
            let mr = r.u32()?;
            let event_type = r.u32()?;
            // The log area is pre-filled with 0xff: the end of the log.
            if mr == u32::MAX || event_type == u32::MAX {
                break;
            }
            let count = r.u32()?;
            let mut sha384 = None;
            for _ in 0..count {
                let alg = r.u16()?;
                let len = sizes
                    .iter()
                    .find(|&&(a, _)| a == alg)
                    .map(|&(_, l)| l)
                    .or(match alg {
                        TPM_ALG_SHA1 => Some(20),
                        TPM_ALG_SHA256 => Some(32),
                        TPM_ALG_SHA512 => Some(64),
                        _ => None,
                    })
                    .ok_or(EventLogError::UnknownAlgorithm {
                        index: r.index,
                        alg,
                    })?;
                let d = r.take(len)?;
                if alg == TPM_ALG_SHA384 {
                    let mut a = [0u8; SHA384_LEN];
                    a.copy_from_slice(d);
                    sha384 = Some(Sha384Digest(a));
                }
            }
            let size = r.u32()? as usize;
            let data = r.take(size)?.to_vec();
            let event_type = EventType(event_type);
            if event_type == EventType::NO_ACTION {
                continue;
            }
            let rtmr = match kind {
                LogKind::Cc if (1..=4).contains(&mr) => mr as usize - 1,
                LogKind::Cc => return Err(EventLogError::BadRegister { index: r.index, mr }),
                LogKind::Tpm => match pcr_to_rtmr(mr) {
                    Some(rtmr) => rtmr,
                    None => continue,
                },
            };
            let digest = sha384.ok_or(EventLogError::NoSha384)?;
            events.push(LoggedEvent {
                rtmr,
                event_type,
                digest,
                data,
            });
        }
        Ok(EventLog { events })
    }

    /// The events of one RTMR.
    pub fn rtmr_events(&self, rtmr: usize) -> impl Iterator<Item = &LoggedEvent> {
        self.events.iter().filter(move |e| e.rtmr == rtmr)
    }

    /// Whether the digests of `run` appear one after another among `rtmr`'s events.
    pub fn contains_run(&self, rtmr: usize, run: &[MeasuredEvent]) -> bool {
        let logged: Vec<_> = self.rtmr_events(rtmr).map(|e| e.digest).collect();
        let wanted: Vec<_> = run.iter().map(|e| e.digest).collect();
        wanted.is_empty() || logged.windows(wanted.len()).any(|w| w == wanted.as_slice())
    }

    /// RTMR0-3 as the log claims them.
    pub fn replay(&self) -> [Sha384Digest; 4] {
        let mut regs = [Rtmr::new(); 4];
        for e in &self.events {
            regs[e.rtmr].extend(&e.digest);
        }
        regs.map(|r| r.value())
    }

    /// The first difference between the log's events for `rtmr` and `expected`, as a
    /// sentence; `None` if the digests agree one for one.
    pub fn compare(&self, rtmr: usize, expected: &[MeasuredEvent]) -> Option<String> {
        let logged: Vec<_> = self.rtmr_events(rtmr).collect();
        Self::first_difference(rtmr, &logged, &expected.iter().collect::<Vec<_>>())
    }

    /// As [`EventLog::compare`], with separators left out on both sides: a TPM log has
    /// one separator per PCR where TDVF extends one per RTMR, and the rest is equal.
    pub fn compare_without_separators(
        &self,
        rtmr: usize,
        expected: &[MeasuredEvent],
    ) -> Option<String> {
        let logged: Vec<_> = self
            .rtmr_events(rtmr)
            .filter(|e| e.event_type != EventType::SEPARATOR)
            .collect();
        let expected: Vec<_> = expected
            .iter()
            .filter(|e| e.event_type != EventType::SEPARATOR)
            .collect();
        Self::first_difference(rtmr, &logged, &expected)
    }

    fn first_difference(
        rtmr: usize,
        logged: &[&LoggedEvent],
        expected: &[&MeasuredEvent],
    ) -> Option<String> {
        for (i, (l, e)) in logged.iter().zip(expected).enumerate() {
            if l.digest != e.digest {
                return Some(format!(
                    "RTMR{rtmr} event {i}: expected {} ({}) = {}, the log has {} = {}",
                    e.description,
                    e.event_type.name(),
                    e.digest,
                    l.event_type.name(),
                    l.digest
                ));
            }
        }
        (logged.len() != expected.len()).then(|| {
            format!(
                "RTMR{rtmr}: expected {} events, the log has {}",
                expected.len(),
                logged.len()
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes events as TDVF writes them (Spec ID header, then TCG_PCR_EVENT2 with
    /// one SHA-384 digest each), followed by 0xff fill.
    pub(crate) fn encode(events: &[(u32, EventType, &[u8])]) -> Vec<u8> {
        let mut spec = b"Spec ID Event03\0".to_vec();
        spec.extend_from_slice(&[0u8; 8]); // platform class, versions, errata, uintn size
        spec.extend_from_slice(&1u32.to_le_bytes());
        spec.extend_from_slice(&TPM_ALG_SHA384.to_le_bytes());
        spec.extend_from_slice(&48u16.to_le_bytes());
        spec.push(0);
        let mut log = Vec::new();
        log.extend_from_slice(&1u32.to_le_bytes());
        log.extend_from_slice(&EventType::NO_ACTION.0.to_le_bytes());
        log.extend_from_slice(&[0u8; 20]);
        log.extend_from_slice(&(spec.len() as u32).to_le_bytes());
        log.extend_from_slice(&spec);
        for (mr, ty, data) in events {
            log.extend_from_slice(&mr.to_le_bytes());
            log.extend_from_slice(&ty.0.to_le_bytes());
            log.extend_from_slice(&1u32.to_le_bytes());
            log.extend_from_slice(&TPM_ALG_SHA384.to_le_bytes());
            log.extend_from_slice(Sha384Digest::of(data).as_bytes());
            log.extend_from_slice(&(data.len() as u32).to_le_bytes());
            log.extend_from_slice(data);
        }
        log.extend_from_slice(&[0xff; 64]);
        log
    }

    #[test]
    fn replays_and_compares_a_log() {
        let sep = [0u8; 4];
        let log = encode(&[
            (1, EventType::SEPARATOR, &sep),
            (
                2,
                EventType::EFI_ACTION,
                b"Calling EFI Application from Boot Option",
            ),
            (2, EventType::SEPARATOR, &sep),
            (3, EventType::IPL, b".linux\0"),
        ]);
        let parsed = EventLog::parse(&log).unwrap();
        assert_eq!(parsed.events.len(), 4);
        assert!(
            parsed
                .events
                .iter()
                .take(3)
                .all(|e| e.self_check() == Some(true))
        );
        let regs = parsed.replay();
        assert_eq!(regs[0], Rtmr::replay([&Sha384Digest::of(&sep)]));
        assert_eq!(regs[3], Sha384Digest::ZERO);

        let expected = [
            MeasuredEvent::efi_action("Calling EFI Application from Boot Option"),
            MeasuredEvent::separator(),
        ];
        assert_eq!(parsed.compare(1, &expected), None);
        assert!(
            parsed
                .compare(1, &expected[..1])
                .unwrap()
                .contains("expected 1 events")
        );
        assert!(
            parsed
                .compare(1, &[MeasuredEvent::separator()])
                .unwrap()
                .contains("event 0")
        );
        assert!(parsed.contains_run(1, &expected));
        assert!(parsed.contains_run(1, &expected[1..]));
        assert!(!parsed.contains_run(1, &[expected[1].clone(), expected[0].clone()]));
        assert!(!parsed.contains_run(0, &expected[..1]));
    }

    #[test]
    fn a_tpm_log_maps_pcrs_to_rtmrs_and_compares_without_separators() {
        let sep = [0u8; 4];
        let log = encode(&[
            (0, EventType::SEPARATOR, &sep),
            (
                4,
                EventType::EFI_ACTION,
                b"Calling EFI Application from Boot Option",
            ),
            (2, EventType::SEPARATOR, &sep),
            (4, EventType::SEPARATOR, &sep),
            (5, EventType::SEPARATOR, &sep),
            (9, EventType::EVENT_TAG, b"initrd"),
            (17, EventType::EFI_ACTION, b"dropped: no RTMR"),
        ]);
        assert!(
            EventLog::parse(&log).is_err(),
            "PCR indices are not CC register indices"
        );
        let parsed = EventLog::parse_kind(&log, LogKind::Tpm).unwrap();
        assert_eq!(parsed.rtmr_events(1).count(), 4);
        assert_eq!(parsed.rtmr_events(2).count(), 1);
        let rtmr1 = [
            MeasuredEvent::efi_action("Calling EFI Application from Boot Option"),
            MeasuredEvent::separator(),
        ];
        assert!(parsed.compare(1, &rtmr1).is_some());
        assert_eq!(parsed.compare_without_separators(1, &rtmr1), None);
        assert_eq!(pcr_to_rtmr(7), Some(0));
        assert_eq!(pcr_to_rtmr(16), None);
    }

    #[test]
    fn rejects_other_formats_and_truncation() {
        assert_eq!(
            EventLog::parse(&[0u8; 64]).unwrap_err(),
            EventLogError::NotCryptoAgile
        );
        let log = encode(&[(2, EventType::EFI_ACTION, b"x")]);
        let cut = log.len() - 64 - 1;
        assert!(matches!(
            EventLog::parse(&log[..cut]),
            Err(EventLogError::Truncated(_))
        ));
        let log = encode(&[(7, EventType::EFI_ACTION, b"x")]);
        assert!(matches!(
            EventLog::parse(&log),
            Err(EventLogError::BadRegister { mr: 7, .. })
        ));
    }
}

//! Which verified TDs are acceptable: TCB statuses, measurement allow-lists, and
//! the `report_data` binding.
//!
//! Verification ([`crate::Verifier`]) establishes that evidence is genuine; the
//! policy decides whether that genuine TD may receive a key share (an app) or
//! take part in a protocol session (a peer node).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::verified::{REPORT_DATA_LEN, TcbStatus, TdMeasurements, VerifiedTd};

/// What a verified TD is being admitted as, which selects the measurement allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A peer node: must run a released node image (`node_images`).
    NodeImage,
    /// An application asking for its secrets: must run a build registered for its app ID.
    App(&'a str),
}

/// Acceptance rules for verified TDs. The default is strict: only `UpToDate`
/// platforms, no advisory refused explicitly, and empty allow-lists (so every
/// measurement is refused until images are registered).
///
/// JSON form (all fields optional):
/// ```json
/// {
///   "accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
///   "refused_advisories": ["INTEL-SA-00837"],
///   "node_images": [{"mrtd": "<96 hex>", "rtmr": ["<96 hex>", "...", "...", "..."]}],
///   "apps": {"my-app": [{"mrtd": "...", "rtmr": ["...", "...", "...", "..."]}]}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// TCB statuses accepted. `Revoked` can never be listed.
    #[serde(default = "strict_statuses")]
    pub accepted_tcb_statuses: BTreeSet<TcbStatus>,
    /// Advisories that make a platform unacceptable even with an accepted status.
    #[serde(default)]
    pub refused_advisories: BTreeSet<String>,
    /// Measurements of released node images (the `measurements/` directory).
    #[serde(default)]
    pub node_images: Vec<TdMeasurements>,
    /// Measurements each app ID may run, from configuration (later also from chain).
    #[serde(default)]
    pub apps: BTreeMap<String, Vec<TdMeasurements>>,
}

fn strict_statuses() -> BTreeSet<TcbStatus> {
    BTreeSet::from([TcbStatus::UpToDate])
}

impl Default for Policy {
    fn default() -> Self {
        Self::strict()
    }
}

impl Policy {
    /// Only `UpToDate` platforms; empty allow-lists.
    pub fn strict() -> Self {
        Policy {
            accepted_tcb_statuses: strict_statuses(),
            refused_advisories: BTreeSet::new(),
            node_images: Vec::new(),
            apps: BTreeMap::new(),
        }
    }

    /// The policy of an insecure-dev deployment: accepts simulated quotes (and
    /// `UpToDate` hardware). Never use it with real secrets.
    pub fn insecure_dev() -> Self {
        Self::strict().accept_status(TcbStatus::Simulated)
    }

    /// Also accepts `status` (for example `SWHardeningNeeded`, or `OutOfDate`
    /// during Intel's grace period). `Revoked` is ignored: it is never acceptable.
    pub fn accept_status(mut self, status: TcbStatus) -> Self {
        if status != TcbStatus::Revoked {
            self.accepted_tcb_statuses.insert(status);
        }
        self
    }

    /// Adds an allowed node image.
    pub fn allow_node_image(mut self, image: TdMeasurements) -> Self {
        self.node_images.push(image);
        self
    }

    /// Adds a build `app_id` may run.
    pub fn allow_app(mut self, app_id: impl Into<String>, build: TdMeasurements) -> Self {
        self.apps.entry(app_id.into()).or_default().push(build);
        self
    }

    /// Parses and validates a JSON policy (see the type's documentation).
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let policy: Policy =
            serde_json::from_slice(bytes).map_err(|e| Error::config("policy", e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks the policy is meaningful: something is accepted and `Revoked` is not.
    pub fn validate(&self) -> Result<(), Error> {
        if self.accepted_tcb_statuses.is_empty() {
            return Err(Error::config(
                "policy.accepted_tcb_statuses",
                "must accept at least one status",
            ));
        }
        if self.accepted_tcb_statuses.contains(&TcbStatus::Revoked) {
            return Err(Error::config(
                "policy.accepted_tcb_statuses",
                "Revoked can never be accepted",
            ));
        }
        Ok(())
    }

    /// Accepts the TD's TCB status and advisories, or says which is refused.
    pub fn check_tcb(&self, td: &VerifiedTd) -> Result<(), Error> {
        // A compromised platform can forge any quote; no policy may accept it.
        if td.tcb_status == TcbStatus::Revoked {
            return Err(Error::Revoked {
                detail: "platform TCB is revoked".into(),
            });
        }
        if !self.accepted_tcb_statuses.contains(&td.tcb_status) {
            return Err(Error::OutdatedTcb {
                status: td.tcb_status,
                advisories: td.advisories.clone(),
            });
        }
        if let Some(advisory) = td
            .advisories
            .iter()
            .find(|a| self.refused_advisories.contains(*a))
        {
            return Err(Error::AdvisoryRefused {
                advisory: advisory.clone(),
            });
        }
        Ok(())
    }

    /// Accepts the TD's measurements for `subject`: an unreleased image or an
    /// unregistered app build must not receive key material.
    pub fn check_measurements(&self, td: &VerifiedTd, subject: Subject<'_>) -> Result<(), Error> {
        let (allowed, scope): (&[TdMeasurements], String) = match subject {
            Subject::NodeImage => (&self.node_images, "node image".into()),
            Subject::App(app_id) => (
                self.apps.get(app_id).map(Vec::as_slice).unwrap_or(&[]),
                format!("app {app_id}"),
            ),
        };
        let measured = td.measurements();
        if allowed.contains(&measured) {
            Ok(())
        } else {
            Err(Error::MeasurementNotAllowed {
                scope,
                mrtd: hex::encode(td.mrtd),
            })
        }
    }

    /// The whole decision: TCB, measurements for `subject`, and that `report_data`
    /// equals `expected_report_data` (see [`crate::binding`]), which stops a
    /// genuine quote from being replayed for another request or another key.
    pub fn appraise(
        &self,
        td: &VerifiedTd,
        subject: Subject<'_>,
        expected_report_data: &[u8; REPORT_DATA_LEN],
    ) -> Result<(), Error> {
        self.check_tcb(td)?;
        self.check_measurements(td, subject)?;
        check_binding(td, expected_report_data)
    }
}

/// Accepts the TD only if its `report_data` is exactly `expected`.
pub fn check_binding(td: &VerifiedTd, expected: &[u8; REPORT_DATA_LEN]) -> Result<(), Error> {
    if &td.report_data == expected {
        Ok(())
    } else {
        Err(Error::BindingMismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn td(status: TcbStatus) -> VerifiedTd {
        VerifiedTd {
            mrtd: [1; 48],
            rtmr: [[2; 48]; 4],
            report_data: [3; 64],
            tcb_status: status,
            advisories: vec!["INTEL-SA-00001".into()],
        }
    }

    #[test]
    fn strict_accepts_only_up_to_date() {
        let policy = Policy::default();
        assert!(policy.check_tcb(&td(TcbStatus::UpToDate)).is_ok());
        for status in [
            TcbStatus::OutOfDate,
            TcbStatus::SWHardeningNeeded,
            TcbStatus::Simulated,
        ] {
            assert_eq!(
                policy.check_tcb(&td(status)).unwrap_err().kind(),
                "outdated_tcb"
            );
        }
        assert_eq!(
            policy
                .check_tcb(&td(TcbStatus::Revoked))
                .unwrap_err()
                .kind(),
            "revoked"
        );
        let lenient = Policy::strict().accept_status(TcbStatus::OutOfDate);
        assert!(lenient.check_tcb(&td(TcbStatus::OutOfDate)).is_ok());
    }

    #[test]
    fn revoked_cannot_be_accepted() {
        let policy = Policy::strict().accept_status(TcbStatus::Revoked);
        assert!(!policy.accepted_tcb_statuses.contains(&TcbStatus::Revoked));
        let json = br#"{"accepted_tcb_statuses": ["UpToDate", "Revoked"]}"#;
        assert_eq!(Policy::from_json(json).unwrap_err().kind(), "config");
    }

    #[test]
    fn refused_advisory() {
        let mut policy = Policy::strict();
        policy.refused_advisories.insert("INTEL-SA-00001".into());
        assert_eq!(
            policy
                .check_tcb(&td(TcbStatus::UpToDate))
                .unwrap_err()
                .kind(),
            "advisory_refused"
        );
    }

    #[test]
    fn measurements_per_subject() {
        let t = td(TcbStatus::UpToDate);
        let policy = Policy::strict()
            .allow_app("a", t.measurements())
            .allow_node_image(TdMeasurements {
                mrtd: [9; 48],
                rtmr: [[9; 48]; 4],
            });
        assert!(policy.check_measurements(&t, Subject::App("a")).is_ok());
        assert_eq!(
            policy
                .check_measurements(&t, Subject::App("b"))
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
        assert_eq!(
            policy
                .check_measurements(&t, Subject::NodeImage)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
    }

    #[test]
    fn appraise_checks_binding() {
        let t = td(TcbStatus::UpToDate);
        let policy = Policy::strict().allow_app("a", t.measurements());
        assert!(policy.appraise(&t, Subject::App("a"), &[3; 64]).is_ok());
        assert_eq!(
            policy
                .appraise(&t, Subject::App("a"), &[4; 64])
                .unwrap_err(),
            Error::BindingMismatch
        );
    }

    #[test]
    fn json_policy() {
        let json = format!(
            r#"{{"accepted_tcb_statuses": ["UpToDate", "OutOfDate"],
                "apps": {{"a": [{{"mrtd": "{m}", "rtmr": ["{m}", "{m}", "{m}", "{m}"]}}]}}}}"#,
            m = "0x".to_string() + &"11".repeat(48)
        );
        let policy = Policy::from_json(json.as_bytes()).unwrap();
        assert!(policy.accepted_tcb_statuses.contains(&TcbStatus::OutOfDate));
        assert_eq!(policy.apps["a"][0].mrtd, [0x11; 48]);
        assert_eq!(
            Policy::from_json(br#"{"acepted": []}"#).unwrap_err().kind(),
            "config"
        );
    }
}

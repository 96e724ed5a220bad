//! The node's trusted-execution side: its own evidence (served at `/attestation`),
//! the verifier and policy it applies to peers and applications, and the measured
//! identity its key store is sealed to.
//!
//! - Own evidence: a quote whose `report_data` is
//!   [`kms_attestation::node_report_data`] over this operator's message key and the
//!   TLS certificate it serves, so a peer that checks the quote knows the key and the
//!   TLS endpoint live inside the measured TD.
//! - Peers: before a session a node fetches every peer's `/attestation`, verifies it
//!   against the policy's node images and the binding to the key the peering source
//!   lists and the certificate the peer presented, and leaves out peers that fail.
//! - Sealing: the store key is HKDF-SHA256 over the operator secret and the measured
//!   identity (MRTD, RTMR0–3), so another image cannot open the store.

use std::path::Path;
use std::sync::Arc;

use kms_attestation::{
    CachingCollateralSource, CollateralDir, DcapVerifier, Error as AttestError, Evidence,
    ItaConfig, ItaVerifier, Jwks, Policy, QuoteProvider, SimulatedProvider, Subject,
    TdMeasurements, VerifiedTd, Verifier,
};
use kms_crypto::signer::OperatorPublicKey;
use serde::{Deserialize, Serialize};

use crate::config::{AttestationConfig, AttestationMode, NodeConfig};

/// What `GET /attestation` returns.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AttestationResponse {
    /// The operator.
    pub operator_address: kms_crypto::OperatorAddress,
    /// Its message key, as the peering source lists it.
    pub public_key: OperatorPublicKey,
    /// The quote (or token), `report_data` = `node_report_data(key, TLS certificate)`.
    pub evidence: Evidence,
    /// Whether the evidence is simulated (insecure-dev).
    pub simulated: bool,
    /// The approval of the node's release, when its image is admitted by signature
    /// (a release rolling out): peers whose own configuration trusts the signers
    /// admit it without having the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release_approval: Option<ReleaseApproval>,
    /// The node's share-encryption key, certified by its operator key for this
    /// deployment (protocol v2). It travels on the connection whose TLS certificate
    /// the quote binds, so it comes from the attested TD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<kms_crypto::vss::encryption::EncryptionKeyCertificate>,
}

/// A release approval as a node presents it: the release's measurements file (its
/// exact text) and the signatures over it (`kms-measure sign`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseApproval {
    /// `measurements/<release>.json`, byte for byte.
    pub measurements: String,
    /// Its `.sig` file.
    pub signatures: kms_measure::signed::ReleaseSignatures,
}

/// Largest measurements file in an approval.
const MAX_RELEASE_FILE_BYTES: usize = 1 << 20;

/// A canonical byte form of an operator key, for bindings: `0x01 ‖ g1 ‖ g2` (BN254,
/// EVM layout) or `0x02 ‖ address` (ECDSA).
pub fn key_bytes(pk: &OperatorPublicKey) -> Vec<u8> {
    match pk {
        OperatorPublicKey::Bn254(k) => [&[1u8][..], &k.to_bytes()].concat(),
        OperatorPublicKey::Ecdsa(a) => [&[2u8][..], a.as_bytes()].concat(),
    }
}

pub use kms_attestation::simulated::simulated_measurements;

/// The node's attestation state.
pub struct NodeAttestation {
    /// `tdx` or `insecure-dev`.
    pub mode: AttestationMode,
    /// Verifies peers' and applications' evidence.
    pub verifier: Verifier,
    /// Decides what verified evidence is accepted.
    pub policy: Policy,
    /// `/secrets` refuses attestations older than this.
    pub max_age_secs: u64,
    evidence: Evidence,
    measurements: TdMeasurements,
    public_key: OperatorPublicKey,
    signed: Option<SignedReleases>,
}

/// A release file's verdict: the image it admits and its approval, or why not.
type Approved = Result<(TdMeasurements, ReleaseApproval), String>;

/// Releases approved by signature (`attestation.signed_release_dir`): re-read before
/// every session, so that nodes of an old release admit a new one without a change
/// to their measured configuration; approvals peers present are checked the same way.
struct SignedReleases {
    dir: std::path::PathBuf,
    signers: Vec<[u8; 32]>,
    required: usize,
    /// As of the last scan: file name, image, approval.
    admitted: std::sync::RwLock<Vec<(String, TdMeasurements, ReleaseApproval)>>,
}

impl SignedReleases {
    /// The image an approval admits, if enough listed signers signed a complete release.
    fn verify(&self, a: &ReleaseApproval) -> Result<TdMeasurements, String> {
        if a.measurements.len() > MAX_RELEASE_FILE_BYTES {
            return Err("measurements file larger than 1 MiB".into());
        }
        let release = kms_measure::signed::verify(
            a.measurements.as_bytes(),
            &a.signatures,
            &self.signers,
            self.required,
        )
        .map_err(|e| e.to_string())?;
        let (mrtd, rtmr) = release.expected().map_err(|e| e.to_string())?;
        Ok(TdMeasurements { mrtd, rtmr })
    }

    /// Every `<release>.json` with a `.sig` in the directory, approved or not (why).
    fn scan(&self) -> Vec<(String, Approved)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let mut sig = path.as_os_str().to_owned();
                sig.push(kms_measure::signed::SIGNATURE_SUFFIX);
                let read = |p: &Path| -> Result<String, String> {
                    let meta = std::fs::metadata(p).map_err(|e| e.to_string())?;
                    if meta.len() > MAX_RELEASE_FILE_BYTES as u64 {
                        return Err(format!("{} is larger than 1 MiB", p.display()));
                    }
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))
                };
                let verdict = read(&path).and_then(|measurements| {
                    let signatures =
                        kms_measure::signed::ReleaseSignatures::from_json(&read(Path::new(&sig))?)
                            .map_err(|e| e.to_string())?;
                    let approval = ReleaseApproval {
                        measurements,
                        signatures,
                    };
                    Ok((self.verify(&approval)?, approval))
                });
                (path.display().to_string(), verdict)
            })
            .collect()
    }
}

/// Per request to the PCCS or the JWKS endpoint.
const PCCS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// How long a fetched Trust Authority JWKS is used before it is fetched again.
const JWKS_TTL_SECS: u64 = 3600;

impl NodeAttestation {
    /// Builds the verifier and policy from the configuration and produces this node's
    /// own evidence over its key and `tls_cert_der` (empty on a plain-HTTP node).
    /// `now` is the verification time of the node's own quote (tdx mode).
    pub fn from_config(
        cfg: &NodeConfig,
        public_key: &OperatorPublicKey,
        tls_cert_der: &[u8],
        now: u64,
    ) -> anyhow::Result<Self> {
        let a = &cfg.attestation;
        let (verifier, mut policy) = verifier_and_policy(a)?;
        let key = key_bytes(public_key);
        let report_data = kms_attestation::node_report_data(&key, tls_cert_der);
        let provider = quote_provider(a)?;
        let evidence = provider
            .quote(&report_data)
            .map_err(|e| anyhow::anyhow!("generating this node's quote: {e}"))?;
        let measurements = if provider.is_simulated() {
            simulated_measurements(&a.simulated_identity)
        } else {
            // Our own quote must verify like any peer's: its measurements are what the
            // store is sealed to.
            let td = verifier.verify(&evidence, now).map_err(|e| {
                anyhow::anyhow!(
                    "this node's own quote does not verify ({}): {e}; is this platform's collateral in attestation.collateral_dir or at attestation.pccs_url?",
                    e.kind()
                )
            })?;
            td.measurements()
        };
        if a.admit_own_image {
            policy = policy.allow_node_image(measurements);
        }
        let signed = (!a.signed_release_dir.as_os_str().is_empty()).then(|| SignedReleases {
            dir: a.signed_release_dir.clone(),
            signers: a
                .release_signers
                .iter()
                .filter_map(|k| kms_measure::signed::parse_signer(k))
                .collect(),
            required: a.release_signatures_required,
            admitted: std::sync::RwLock::new(Vec::new()),
        });
        let me = Self {
            mode: a.mode,
            verifier,
            policy,
            max_age_secs: a.max_age_secs,
            evidence,
            measurements,
            public_key: public_key.clone(),
            signed,
        };
        me.refresh_signed_releases();
        Ok(me)
    }

    /// Re-reads `attestation.signed_release_dir` (before every session): releases
    /// approved by enough listed signers are admitted from now on; the others are
    /// logged with the reason. Returns the admitted release names.
    pub fn refresh_signed_releases(&self) -> Vec<String> {
        let Some(signed) = &self.signed else {
            return Vec::new();
        };
        let mut admitted = Vec::new();
        for (file, verdict) in signed.scan() {
            match verdict {
                Ok((image, approval)) => admitted.push((file, image, approval)),
                Err(reason) => {
                    tracing::warn!(file, reason, "release approval refused");
                }
            }
        }
        let names: Vec<String> = admitted.iter().map(|(n, _, _)| n.clone()).collect();
        let mut slot = signed.admitted.write().expect("signed releases lock");
        if slot.iter().map(|(n, _, _)| n).ne(names.iter()) {
            tracing::info!(releases = ?names, "releases admitted by signature");
        }
        *slot = admitted;
        names
    }

    /// This node's evidence.
    pub fn evidence(&self) -> &Evidence {
        &self.evidence
    }

    /// This node's measured identity (what the store is sealed to).
    pub fn measurements(&self) -> &TdMeasurements {
        &self.measurements
    }

    /// The `/attestation` answer.
    pub fn response(&self, operator: kms_crypto::OperatorAddress) -> AttestationResponse {
        AttestationResponse {
            operator_address: operator,
            public_key: self.public_key.clone(),
            evidence: self.evidence.clone(),
            simulated: matches!(self.evidence, Evidence::Simulated(_)),
            release_approval: self.own_approval(),
            encryption_key: None,
        }
    }

    /// The approval of this node's own image among the signed releases, if any: what
    /// lets peers of an older release admit it.
    pub fn own_approval(&self) -> Option<ReleaseApproval> {
        let signed = self.signed.as_ref()?;
        let admitted = signed.admitted.read().expect("signed releases lock");
        admitted
            .iter()
            .find(|(_, image, _)| *image == self.measurements)
            .map(|(_, _, a)| a.clone())
    }

    /// The measured identity in the form the store's key derivation takes:
    /// `MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3`.
    pub fn sealing_identity(&self) -> Vec<u8> {
        let m = &self.measurements;
        let mut out = m.mrtd.to_vec();
        for r in &m.rtmr {
            out.extend_from_slice(r);
        }
        out
    }

    /// Checks a peer's evidence: genuine, an allowed node image on an accepted
    /// platform, and bound to the key the peering source lists and the TLS
    /// certificate the peer presented.
    pub fn check_peer(
        &self,
        evidence: &Evidence,
        listed_key: &OperatorPublicKey,
        tls_cert_der: &[u8],
        now: u64,
    ) -> Result<VerifiedTd, AttestError> {
        self.check_peer_presenting(evidence, listed_key, tls_cert_der, now, None)
    }

    /// As [`Self::check_peer`], for a peer that also presented its release's approval:
    /// an image outside the policy is admitted if this node's signed releases, or that
    /// approval checked against this node's release signers, name it.
    pub fn check_peer_presenting(
        &self,
        evidence: &Evidence,
        listed_key: &OperatorPublicKey,
        tls_cert_der: &[u8],
        now: u64,
        approval: Option<&ReleaseApproval>,
    ) -> Result<VerifiedTd, AttestError> {
        let td = self.verifier.verify(evidence, now)?;
        let expected = kms_attestation::node_report_data(&key_bytes(listed_key), tls_cert_der);
        match self.policy.appraise(&td, Subject::NodeImage, &expected) {
            Err(e) if e.kind() == "measurement_not_allowed" => {
                let measured = td.measurements();
                let approved = self.signed.as_ref().is_some_and(|s| {
                    s.admitted
                        .read()
                        .expect("signed releases lock")
                        .iter()
                        .any(|(_, image, _)| *image == measured)
                        || approval
                            .is_some_and(|a| s.verify(a).is_ok_and(|image| image == measured))
                });
                if !approved {
                    return Err(e);
                }
                self.policy.clone().allow_node_image(measured).appraise(
                    &td,
                    Subject::NodeImage,
                    &expected,
                )?;
            }
            other => other?,
        }
        Ok(td)
    }
}

/// This node's quote provider in the configured mode: simulated quotes of
/// `simulated_identity` (insecure-dev), or configfs-tsm, which must be there (tdx).
/// Shared by the running node and the locked one (`unlock`).
pub fn quote_provider(a: &AttestationConfig) -> anyhow::Result<Arc<dyn QuoteProvider>> {
    Ok(match a.mode {
        AttestationMode::InsecureDev => Arc::new(SimulatedProvider::new(simulated_measurements(
            &a.simulated_identity,
        ))),
        AttestationMode::Tdx => {
            let provider = kms_attestation::ConfigfsTsmProvider::new();
            if !provider.is_available() {
                anyhow::bail!(
                    "attestation.mode = \"tdx\" but configfs-tsm ({}) is not available: \
                     not a TDX guest? For development set attestation.mode = \"insecure-dev\"",
                    kms_attestation::provider::CONFIGFS_TSM_REPORT
                );
            }
            Arc::new(provider)
        }
    })
}

/// The verifier and the policy of an `[attestation]` section: DCAP collateral
/// (directory or PCCS), Trust Authority keys, the policy file, the released node
/// images of `release_files`; in insecure-dev, simulated quotes and their
/// statuses are accepted, and without a policy file the nodes of the simulated
/// identity admit each other. Shared by the node and `kms-node unlock`.
pub fn verifier_and_policy(a: &AttestationConfig) -> anyhow::Result<(Verifier, Policy)> {
    let insecure_dev = a.mode == AttestationMode::InsecureDev;
    let mut builder = Verifier::builder().insecure_dev(insecure_dev);
    if !a.collateral_dir.as_os_str().is_empty() {
        builder = builder.dcap(
            DcapVerifier::new(CachingCollateralSource::new(CollateralDir::new(
                a.collateral_dir.clone(),
            )))
            .map_err(|e| anyhow::anyhow!("attestation.collateral_dir: {e}"))?,
        );
    } else if !a.pccs_url.is_empty() {
        let url = a
            .pccs_url
            .parse()
            .map_err(|e| anyhow::anyhow!("attestation.pccs_url: {e}"))?;
        let roots = if a.pccs_ca_file.as_os_str().is_empty() {
            None
        } else {
            Some(
                crate::tls::client_roots(&a.pccs_ca_file)
                    .map_err(|e| anyhow::anyhow!("attestation.pccs_ca_file: {e}"))?,
            )
        };
        let fetcher = kms_attestation::PccsFetcher::new(url, roots, PCCS_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("attestation.pccs_url: {e}"))?;
        builder = builder.dcap(
            DcapVerifier::new(CachingCollateralSource::new(fetcher))
                .map_err(|e| anyhow::anyhow!("attestation.pccs_url: {e}"))?,
        );
    }
    let ita = ItaConfig {
        issuer: a.ita_issuer.clone(),
        ..ItaConfig::default()
    };
    if !a.ita_jwks_file.as_os_str().is_empty() {
        let jwks = Jwks::from_file(&a.ita_jwks_file)
            .map_err(|e| anyhow::anyhow!("attestation.ita_jwks_file: {e}"))?;
        builder = builder.ita(ItaVerifier::new(Arc::new(jwks), ita));
    } else if !a.ita_jwks_url.is_empty() {
        let url = a
            .ita_jwks_url
            .parse()
            .map_err(|e| anyhow::anyhow!("attestation.ita_jwks_url: {e}"))?;
        let fetcher = kms_attestation::JwksUrl::new(url, None, PCCS_TIMEOUT)
            .map_err(|e| anyhow::anyhow!("attestation.ita_jwks_url: {e}"))?;
        builder = builder.ita(ItaVerifier::new(
            kms_attestation::CachingJwks::new(fetcher, JWKS_TTL_SECS),
            ita,
        ));
    }
    let verifier = builder.build();
    let mut policy = if a.policy_file.as_os_str().is_empty() {
        Policy::strict()
    } else {
        read_policy(&a.policy_file)?
    };
    for release in &a.release_files {
        policy = policy.allow_node_image(release_image(release)?);
    }
    if insecure_dev {
        policy = Policy {
            accepted_tcb_statuses: Policy::insecure_dev().accepted_tcb_statuses,
            ..policy
        };
        if a.policy_file.as_os_str().is_empty() {
            // Development clusters: nodes of the same simulated identity accept
            // each other.
            policy = policy.allow_node_image(simulated_measurements(&a.simulated_identity));
        }
    }
    Ok((verifier, policy))
}

fn read_policy(path: &Path) -> anyhow::Result<Policy> {
    let bytes = std::fs::read(path)
        .map_err(|e| anyhow::anyhow!("attestation.policy_file {}: {e}", path.display()))?;
    Policy::from_json(&bytes)
        .map_err(|e| anyhow::anyhow!("attestation.policy_file {}: {e}", path.display()))
}

/// The node image a `measurements/<release>.json` file describes; refused when a
/// register is not known (it would otherwise admit anything in its place).
pub fn release_image(path: &Path) -> anyhow::Result<TdMeasurements> {
    let release = kms_measure::ReleaseMeasurements::load(path)
        .map_err(|e| anyhow::anyhow!("attestation.release_files: {e}"))?;
    let (mrtd, rtmr) = release.expected().map_err(|e| {
        anyhow::anyhow!(
            "attestation.release_files {}: {e}; a peer running this release cannot be admitted until the file is complete",
            path.display()
        )
    })?;
    Ok(TdMeasurements { mrtd, rtmr })
}

/// The shared handle.
pub type SharedAttestation = Arc<NodeAttestation>;

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::signer::SignatureScheme;

    fn dev_cfg(identity: &str) -> NodeConfig {
        let mut cfg = NodeConfig::default();
        cfg.attestation.mode = AttestationMode::InsecureDev;
        cfg.attestation.simulated_identity = identity.into();
        cfg
    }

    #[test]
    fn dev_nodes_of_one_identity_accept_each_other_and_no_one_else() {
        let ka = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let kb = crate::keys::OperatorKeys::generate(SignatureScheme::Ecdsa);
        let a =
            NodeAttestation::from_config(&dev_cfg("img"), &ka.public_key(), b"cert-a", 0).unwrap();
        let b =
            NodeAttestation::from_config(&dev_cfg("img"), &kb.public_key(), b"cert-b", 0).unwrap();
        let rogue = NodeAttestation::from_config(&dev_cfg("other"), &kb.public_key(), b"cert-b", 0)
            .unwrap();
        a.check_peer(b.evidence(), &kb.public_key(), b"cert-b", 0)
            .expect("same image");
        assert_eq!(
            a.check_peer(rogue.evidence(), &kb.public_key(), b"cert-b", 0)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
        // Bound to the listed key and to the presented certificate.
        let wrong_key = a.check_peer(b.evidence(), &ka.public_key(), b"cert-b", 0);
        assert_eq!(wrong_key.unwrap_err().kind(), "binding_mismatch");
        let wrong_cert = a.check_peer(b.evidence(), &kb.public_key(), b"cert-x", 0);
        assert_eq!(wrong_cert.unwrap_err().kind(), "binding_mismatch");
        assert_ne!(a.sealing_identity(), rogue.sealing_identity());
        assert_eq!(a.sealing_identity().len(), 5 * 48);
    }

    #[test]
    fn a_tdx_node_without_configfs_tsm_refuses_to_start() {
        if Path::new(kms_attestation::provider::CONFIGFS_TSM_REPORT).exists() {
            eprintln!("skipped: this machine is a TDX guest");
            return;
        }
        let k = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let e = NodeAttestation::from_config(&NodeConfig::default(), &k.public_key(), b"", 0)
            .err()
            .expect("no TDX here");
        assert!(e.to_string().contains("insecure-dev"), "{e}");
    }

    #[test]
    fn released_images_from_measurement_files_are_admitted_and_incomplete_ones_refused() {
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../measurements/eigenkms-0.1.0-dev-3380044144b4.json");
        let k = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        // The committed release has no RTMR0 yet (it needs a reference boot on TDX).
        let mut cfg = dev_cfg("img");
        cfg.attestation.release_files = vec![committed.clone()];
        let e = NodeAttestation::from_config(&cfg, &k.public_key(), b"", 0)
            .err()
            .expect("incomplete release");
        assert!(e.to_string().contains("rtmr0"), "{e}");
        // Completed (as its reference boot would): peers running it are admitted.
        let dir = tempfile::tempdir().unwrap();
        let mut release: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&committed).unwrap()).unwrap();
        release["registers"]["rtmr0"]["value"] = serde_json::json!("ab".repeat(48));
        release["registers"]["rtmr0"]["source"] = serde_json::json!("reference-log");
        let complete = dir.path().join("release.json");
        std::fs::write(&complete, serde_json::to_vec(&release).unwrap()).unwrap();
        let image = release_image(&complete).unwrap();
        assert_eq!(image.rtmr[0], [0xab; 48]);
        cfg.attestation.release_files = vec![complete];
        let me = NodeAttestation::from_config(&cfg, &k.public_key(), b"", 0).unwrap();
        let peer = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let quote = |m: TdMeasurements| {
            SimulatedProvider::new(m)
                .quote(&kms_attestation::node_report_data(
                    &key_bytes(&peer.public_key()),
                    b"cert",
                ))
                .unwrap()
        };
        me.check_peer(&quote(image), &peer.public_key(), b"cert", 0)
            .expect("a released image");
        let mut other = image;
        other.rtmr[2][0] ^= 1;
        assert_eq!(
            me.check_peer(&quote(other), &peer.public_key(), b"cert", 0)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
    }

    #[test]
    fn admit_own_image_admits_peers_of_exactly_this_image() {
        // A policy file that lists no node image: nothing is admitted by default.
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(&policy, r#"{"accepted_tcb_statuses": ["UpToDate"]}"#).unwrap();
        let config = |identity: &str, admit_own: bool| {
            let mut cfg = dev_cfg(identity);
            cfg.attestation.policy_file = policy.clone();
            cfg.attestation.admit_own_image = admit_own;
            cfg
        };
        let ka = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let kb = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let b =
            NodeAttestation::from_config(&config("img", true), &kb.public_key(), b"b", 0).unwrap();
        let other =
            NodeAttestation::from_config(&config("img2", true), &kb.public_key(), b"b", 0).unwrap();
        let closed =
            NodeAttestation::from_config(&config("img", false), &ka.public_key(), b"a", 0).unwrap();
        assert_eq!(
            closed
                .check_peer(b.evidence(), &kb.public_key(), b"b", 0)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
        let open =
            NodeAttestation::from_config(&config("img", true), &ka.public_key(), b"a", 0).unwrap();
        open.check_peer(b.evidence(), &kb.public_key(), b"b", 0)
            .expect("the same image");
        assert_eq!(
            open.check_peer(other.evidence(), &kb.public_key(), b"b", 0)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
    }

    #[test]
    fn releases_approved_by_enough_listed_signers_are_admitted_when_the_directory_is_reread() {
        let dir = tempfile::tempdir().unwrap();
        let approvals = dir.path().join("releases");
        std::fs::create_dir(&approvals).unwrap();
        let keys: Vec<_> = (0..3)
            .map(|_| kms_measure::signed::generate_key())
            .collect();
        let mut cfg = dev_cfg("img");
        cfg.attestation.policy_file = dir.path().join("policy.json");
        std::fs::write(
            &cfg.attestation.policy_file,
            r#"{"accepted_tcb_statuses": ["UpToDate"]}"#,
        )
        .unwrap();
        cfg.attestation.signed_release_dir = approvals.clone();
        cfg.attestation.release_signers = keys.iter().map(|(_, p)| hex::encode(p)).collect();
        cfg.attestation.release_signatures_required = 2;
        cfg.insecure.plain_http = true;
        cfg.validate().unwrap();
        let k = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let me = NodeAttestation::from_config(&cfg, &k.public_key(), b"", 0).unwrap();

        // A complete release (as after its reference boot), and a peer running it.
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../measurements/eigenkms-0.1.0-dev-3380044144b4.json");
        let mut release: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&committed).unwrap()).unwrap();
        release["registers"]["rtmr0"]["value"] = serde_json::json!("cd".repeat(48));
        release["registers"]["rtmr0"]["source"] = serde_json::json!("reference-log");
        let file = serde_json::to_vec_pretty(&release).unwrap();
        let path = approvals.join("r2.json");
        std::fs::write(&path, &file).unwrap();
        let image = release_image(&path).unwrap();
        let peer = crate::keys::OperatorKeys::generate(SignatureScheme::Bn254);
        let quote = SimulatedProvider::new(image)
            .quote(&kms_attestation::node_report_data(
                &key_bytes(&peer.public_key()),
                b"cert",
            ))
            .unwrap();
        let check = || me.check_peer(&quote, &peer.public_key(), b"cert", 0);
        assert_eq!(check().unwrap_err().kind(), "measurement_not_allowed");

        // One signature of two required: still refused.
        let sig_path = approvals.join("r2.json.sig");
        let one = kms_measure::signed::sign(&file, &keys[0].0, None).unwrap();
        std::fs::write(&sig_path, one.to_json()).unwrap();
        assert!(me.refresh_signed_releases().is_empty());
        assert_eq!(check().unwrap_err().kind(), "measurement_not_allowed");

        // A second listed signer: admitted at the next re-read, not before.
        let two = kms_measure::signed::sign(&file, &keys[2].0, Some(one)).unwrap();
        std::fs::write(&sig_path, two.to_json()).unwrap();
        assert_eq!(check().unwrap_err().kind(), "measurement_not_allowed");
        assert_eq!(me.refresh_signed_releases().len(), 1);
        check().expect("an approved release");
        // Still bound to the key and certificate.
        assert_eq!(
            me.check_peer(&quote, &peer.public_key(), b"other", 0)
                .unwrap_err()
                .kind(),
            "binding_mismatch"
        );

        // Editing the approved file (another RTMR0) voids the approval.
        release["registers"]["rtmr0"]["value"] = serde_json::json!("ce".repeat(48));
        std::fs::write(&path, serde_json::to_vec_pretty(&release).unwrap()).unwrap();
        assert!(me.refresh_signed_releases().is_empty());
        assert_eq!(check().unwrap_err().kind(), "measurement_not_allowed");

        // A peer can present the approval itself (a node of the older release has no
        // file): checked against this node's signers and the peer's measurements.
        let approval = ReleaseApproval {
            measurements: String::from_utf8(file.clone()).unwrap(),
            signatures: two.clone(),
        };
        me.check_peer_presenting(&quote, &peer.public_key(), b"cert", 0, Some(&approval))
            .expect("a presented approval");
        let stranger = kms_measure::signed::generate_key();
        let unlisted = ReleaseApproval {
            measurements: approval.measurements.clone(),
            signatures: kms_measure::signed::sign(&file, &stranger.0, None).unwrap(),
        };
        let refused =
            me.check_peer_presenting(&quote, &peer.public_key(), b"cert", 0, Some(&unlisted));
        assert_eq!(refused.unwrap_err().kind(), "measurement_not_allowed");
        // An approval of another image does not admit this one.
        let mut elsewhere = image;
        elsewhere.rtmr[1][0] ^= 1;
        let other_quote = SimulatedProvider::new(elsewhere)
            .quote(&kms_attestation::node_report_data(
                &key_bytes(&peer.public_key()),
                b"cert",
            ))
            .unwrap();
        let refused = me.check_peer_presenting(
            &other_quote,
            &peer.public_key(),
            b"cert",
            0,
            Some(&approval),
        );
        assert_eq!(refused.unwrap_err().kind(), "measurement_not_allowed");
        // A node running an approved release presents its approval at /attestation,
        // and a node without the file admits it from that alone.
        let r2_image = simulated_measurements("r2-img");
        let mut r2_release = release.clone();
        let registers = [
            ("mrtd", r2_image.mrtd),
            ("rtmr0", r2_image.rtmr[0]),
            ("rtmr1", r2_image.rtmr[1]),
            ("rtmr2", r2_image.rtmr[2]),
            ("rtmr3", r2_image.rtmr[3]),
        ];
        for (name, value) in registers {
            r2_release["registers"][name]["value"] = serde_json::json!(hex::encode(value));
            r2_release["registers"][name]["source"] = serde_json::json!("reference-log");
        }
        let r2_file = serde_json::to_vec_pretty(&r2_release).unwrap();
        let r2_dir = dir.path().join("r2-releases");
        std::fs::create_dir(&r2_dir).unwrap();
        std::fs::write(r2_dir.join("r2.json"), &r2_file).unwrap();
        let sigs = kms_measure::signed::sign(&r2_file, &keys[0].0, None).unwrap();
        let sigs = kms_measure::signed::sign(&r2_file, &keys[1].0, Some(sigs)).unwrap();
        std::fs::write(r2_dir.join("r2.json.sig"), sigs.to_json()).unwrap();
        let mut r2_cfg = cfg.clone();
        r2_cfg.attestation.simulated_identity = "r2-img".into();
        r2_cfg.attestation.signed_release_dir = r2_dir;
        let r2_node = NodeAttestation::from_config(&r2_cfg, &peer.public_key(), b"r2", 0).unwrap();
        let presented = r2_node.response(peer.address());
        assert!(presented.release_approval.is_some());
        // Through JSON, as a peer receives it.
        let presented: AttestationResponse =
            serde_json::from_str(&serde_json::to_string(&presented).unwrap()).unwrap();
        me.check_peer_presenting(
            &presented.evidence,
            &peer.public_key(),
            b"r2",
            0,
            presented.release_approval.as_ref(),
        )
        .expect("admitted on its own approval");
        assert_eq!(
            me.check_peer(&presented.evidence, &peer.public_key(), b"r2", 0)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
        // The old node serves no approval: its image is not a signed release.
        assert!(me.response(k.address()).release_approval.is_none());

        // Signers must be configured with the directory, and enough of them.
        let mut bad = cfg.clone();
        bad.attestation.release_signatures_required = 4;
        assert!(bad.validate().is_err());
        bad.attestation.release_signers.clear();
        assert!(bad.validate().is_err());
    }
}

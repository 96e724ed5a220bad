//! Prometheus metrics of one node. Each node owns its registry (several nodes can run
//! in one process, as in the devnet and the tests).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels `kind` (dkg / reshare) and `result` (ok / failed).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    /// dkg / reshare.
    pub kind: String,
    /// ok / failed.
    pub result: String,
}

/// Labels `kind` and `phase`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// dkg / reshare.
    pub kind: String,
    /// 0-based phase index.
    pub phase: String,
}

/// Label `kind` (message kind).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// commitment, share, ack, …
    pub kind: String,
}

/// Label `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: String,
}

/// Label `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// ok, not_found, rate_limited, …
    pub result: String,
}

/// Labels of a key release: endpoint, authorization method, result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReleaseLabels {
    /// `app_sign` or `secrets`.
    pub endpoint: String,
    /// `owner`, `attestation`, `insecure_unauthenticated` or `none`.
    pub method: String,
    /// `released` or the refusal's error code.
    pub result: String,
}

/// All metrics of a node.
pub struct Metrics {
    registry: Registry,
    /// Sessions run, by kind and result.
    pub sessions: Family<SessionLabels, Counter>,
    /// Engine computation per phase, by kind and phase.
    pub phase_seconds: Family<PhaseLabels, Histogram>,
    /// Protocol messages accepted, by kind.
    pub messages_in: Family<KindLabel, Counter>,
    /// Protocol messages sent (per recipient), by kind.
    pub messages_out: Family<KindLabel, Counter>,
    /// Protocol messages or requests rejected, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Deliveries that failed after all retries.
    pub delivery_failures: Counter,
    /// `/app/sign` requests by result.
    pub sign_requests: Family<ResultLabel, Counter>,
    /// `/secrets` requests by result (`ok` or the error code).
    pub secrets_requests: Family<ResultLabel, Counter>,
    /// Key releases and refused release requests (what the audit log records), by
    /// endpoint, method and result.
    pub key_releases: Family<ReleaseLabels, Counter>,
    /// `/app/sign` latency.
    pub sign_latency: Histogram,
    /// Inbound connections closed on arrival because a limit was reached, by reason.
    pub connections_refused: Family<ReasonLabel, Counter>,
    /// Inbound connections open.
    pub connections_open: Gauge,
    /// The active key version (session timestamp), 0 before genesis.
    pub key_version: Gauge,
    /// Fraud evidence produced.
    pub fraud_evidence: Counter,
    /// Peers left out of a session because their attestation failed, by reason.
    pub peer_attestation_failures: Family<ReasonLabel, Counter>,
    /// Sessions this node sat out because it was ready only after the first phase.
    pub sessions_sat_out: Counter,
    /// TLS handshakes refused because an attested peer presented another certificate
    /// than the one its attestation binds.
    pub pinned_certificate_refusals: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("kms");
        let sessions = Family::<SessionLabels, Counter>::default();
        registry.register(
            "sessions",
            "Sessions run, by kind and result",
            sessions.clone(),
        );
        let phase_seconds = Family::<PhaseLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        registry.register(
            "session_phase_seconds",
            "Engine computation time per session phase",
            phase_seconds.clone(),
        );
        let messages_in = Family::<KindLabel, Counter>::default();
        registry.register(
            "messages_in",
            "Protocol messages accepted",
            messages_in.clone(),
        );
        let messages_out = Family::<KindLabel, Counter>::default();
        registry.register(
            "messages_out",
            "Protocol messages sent, per recipient",
            messages_out.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "rejected",
            "Messages and requests rejected, by reason",
            rejected.clone(),
        );
        let delivery_failures = Counter::default();
        registry.register(
            "delivery_failures",
            "Protocol messages not delivered after all retries",
            delivery_failures.clone(),
        );
        let sign_requests = Family::<ResultLabel, Counter>::default();
        registry.register(
            "sign_requests",
            "Partial signature requests, by result",
            sign_requests.clone(),
        );
        let secrets_requests = Family::<ResultLabel, Counter>::default();
        registry.register(
            "secrets_requests",
            "Secrets release requests, by result",
            secrets_requests.clone(),
        );
        let key_releases = Family::<ReleaseLabels, Counter>::default();
        registry.register(
            "key_releases",
            "Key material released (result released) or refused after authorization was checked, as recorded in the audit log",
            key_releases.clone(),
        );
        // Present at zero from the start, so that an alert on releases sees data.
        for endpoint in ["app_sign", "secrets"] {
            key_releases
                .get_or_create(&ReleaseLabels {
                    endpoint: endpoint.to_string(),
                    method: if endpoint == "secrets" {
                        "attestation"
                    } else {
                        "owner"
                    }
                    .to_string(),
                    result: "released".to_string(),
                })
                .inc_by(0);
        }
        let sign_latency = Histogram::new(exponential_buckets(0.0001, 2.0, 16));
        registry.register(
            "sign_latency_seconds",
            "Partial signature request latency",
            sign_latency.clone(),
        );
        let connections_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "connections_refused",
            "Inbound connections closed on arrival because a connection or handshake limit was reached, by reason",
            connections_refused.clone(),
        );
        for reason in [
            "connections",
            "connections_per_ip",
            "handshakes",
            "handshakes_per_ip",
        ] {
            connections_refused
                .get_or_create(&ReasonLabel {
                    reason: reason.to_string(),
                })
                .inc_by(0);
        }
        let connections_open = Gauge::default();
        registry.register(
            "connections_open",
            "Inbound connections open",
            connections_open.clone(),
        );
        let key_version = Gauge::default();
        registry.register(
            "key_version",
            "Active key version (session timestamp), 0 before genesis",
            key_version.clone(),
        );
        let fraud_evidence = Counter::default();
        registry.register(
            "fraud_evidence",
            "Fraud evidence produced by this node",
            fraud_evidence.clone(),
        );
        let sessions_sat_out = Counter::default();
        registry.register(
            "sessions_sat_out",
            "Sessions sat out because the node was ready only after the first phase ended",
            sessions_sat_out.clone(),
        );
        let peer_attestation_failures = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "peer_attestation_failures",
            "Peers left out of a session because their attestation failed, by reason",
            peer_attestation_failures.clone(),
        );
        let pinned_certificate_refusals = Counter::default();
        registry.register(
            "pinned_certificate_refusals",
            "TLS handshakes refused because an attested peer presented another certificate than its attestation binds",
            pinned_certificate_refusals.clone(),
        );
        // Every protocol refusal code exists from the start (at zero), so that a
        // dashboard or an alert on one does not wait for its first occurrence.
        for r in kms_protocol::dkg::Rejection::ALL {
            rejected
                .get_or_create(&ReasonLabel {
                    reason: r.code().to_string(),
                })
                .inc_by(0);
        }
        Self {
            registry,
            sessions,
            phase_seconds,
            messages_in,
            messages_out,
            rejected,
            delivery_failures,
            sign_requests,
            secrets_requests,
            key_releases,
            sign_latency,
            connections_refused,
            connections_open,
            key_version,
            fraud_evidence,
            peer_attestation_failures,
            sessions_sat_out,
            pinned_certificate_refusals,
        }
    }

    /// Counts a rejection.
    pub fn reject(&self, reason: &str) {
        self.reject_many(reason, 1);
    }

    /// Counts `count` rejections for one reason (messages a session dropped in bulk).
    pub fn reject_many(&self, reason: &str, count: u64) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc_by(count);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

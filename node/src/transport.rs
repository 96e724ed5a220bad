//! Outgoing protocol messages: one HTTP POST per recipient, retried with exponential
//! backoff and full jitter, bounded in attempts and by the session's deadline. A
//! broadcast (recipient = zero address) fans out to every other participant.
//!
//! Every connection to a peer attested for the session is pinned to the certificate
//! its quote binds ([`Transport::pin_session`]): one HTTP client per pinned peer,
//! whose TLS verifier accepts that certificate only. Peers are told apart by their
//! URL's origin (scheme, host, port), not by server name, so several peers on one
//! host each keep their own pin.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use kms_crypto::OperatorAddress;
use kms_protocol::SessionKind;
use kms_protocol::dkg::wire::{Body, Kind};
use kms_protocol::messages::SignedMessage;
use rand::Rng;
use reqwest::StatusCode;
use rustls::client::danger::ServerCertVerifier;
use thiserror::Error;
use tracing::{debug, warn};
use url::{Origin, Url};

use crate::config::{TlsConfig, TransportConfig};
use crate::metrics::{KindLabel, Metrics};
use crate::tls::{CertificateDigest, OnPinRefusal, PinnedServerVerifier};

/// The endpoint a message goes to: `/{dkg|reshare}/{commitment|share|ack}`
/// ([`Kind::endpoint_leaf`]: dealings with the shares, a player's answers with the
/// acks, coin and agreement messages with the commitments).
pub fn endpoint(session: SessionKind, kind: Kind) -> String {
    let prefix = match session {
        SessionKind::Dkg => "dkg",
        SessionKind::Reshare => "reshare",
    };
    format!("/{prefix}/{}", kind.endpoint_leaf())
}

/// The lower-case name of a message kind, for metrics and logs.
pub fn kind_name(kind: Kind) -> &'static str {
    kind.label()
}

/// An attested peer of a session: where it is reached and the certificate it must
/// present there (the digest its quote binds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerPin {
    /// The operator.
    pub address: OperatorAddress,
    /// Its URL from the peering source.
    pub url: Url,
    /// The SHA-256 of the certificate its attestation bound.
    pub certificate: CertificateDigest,
}

/// Why an attested peer could not be pinned (and so must be left out).
#[derive(Debug, Error)]
pub enum PinError {
    /// Another attested peer is listed at the same origin: connections to the two
    /// could not be told apart.
    #[error("another attested peer is listed at the same URL origin")]
    SharedOrigin,
    /// The pinned client could not be built.
    #[error("pinned TLS client: {0}")]
    Client(String),
}

impl PinError {
    /// A stable label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PinError::SharedOrigin => "shared_origin",
            PinError::Client(_) => "pin_failed",
        }
    }
}

/// The client of one pinned peer, kept while its pin stays the same.
#[derive(Clone)]
struct PinnedClient {
    address: OperatorAddress,
    certificate: CertificateDigest,
    http: reqwest::Client,
    refusals: Arc<RefusalLog>,
}

/// Logs a pinned peer's refused certificate once per session, not once per retry.
struct RefusalLog {
    peer: OperatorAddress,
    origin: String,
    pinned: CertificateDigest,
    session: AtomicU64,
    logged: AtomicBool,
}

impl RefusalLog {
    fn start(&self, session: u64) {
        self.session.store(session, Ordering::Relaxed);
        self.logged.store(false, Ordering::Relaxed);
    }

    fn refused(&self, presented: CertificateDigest) {
        if !self.logged.swap(true, Ordering::Relaxed) {
            warn!(
                session = self.session.load(Ordering::Relaxed),
                peer = %self.peer,
                origin = %self.origin,
                pinned = %self.pinned,
                %presented,
                "an attested peer presented another TLS certificate than its attestation binds; \
                 handshake refused, nothing sent (logged once per session)"
            );
        }
    }
}

/// Sends protocol messages to peers.
#[derive(Clone)]
pub struct Transport {
    /// For peers not attested in the current session (the `/attestation` GET itself).
    http: reqwest::Client,
    /// The chain verification every peer connection gets; pinned ones add their pin.
    verifier: Arc<dyn ServerCertVerifier>,
    /// The attested peers of the current session, by the origin of their URL.
    pins: Arc<RwLock<HashMap<Origin, PinnedClient>>>,
    plain_http: bool,
    cfg: TransportConfig,
    metrics: Arc<Metrics>,
}

/// The HTTP client settings shared by the unpinned and the pinned clients.
fn client_builder(cfg: &TransportConfig, plain_http: bool) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.request_timeout_ms))
        .connect_timeout(Duration::from_millis(cfg.request_timeout_ms.min(2_000)))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!plain_http)
        // Peer attestation binds the certificate a peer presents.
        .tls_info(true)
        .pool_max_idle_per_host(4)
}

impl Transport {
    /// A transport with the given retry policy. Peers' certificates must chain to
    /// `tls.ca_file` (or, when it is empty, to the system's roots); plain `http://`
    /// peers are refused unless `plain_http` is set.
    pub fn new(
        cfg: TransportConfig,
        tls: &TlsConfig,
        plain_http: bool,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Self> {
        crate::install_crypto_provider();
        let mut builder = client_builder(&cfg, plain_http);
        if let Some(ca) = tls.ca() {
            builder = builder.tls_certs_only(crate::tls::client_roots(ca)?);
        }
        let http = builder.build()?;
        let verifier = crate::tls::peer_verifier(tls.ca())?;
        Ok(Self {
            http,
            verifier,
            pins: Arc::new(RwLock::new(HashMap::new())),
            plain_http,
            cfg,
            metrics,
        })
    }

    /// The client for peers not attested in the current session (the `/attestation`
    /// GET): the configured roots, no pin.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// The client for a peer at `url`: pinned to its certificate if it is an
    /// attested peer of the current session, else [`Transport::http`].
    pub fn client_for(&self, url: &Url) -> reqwest::Client {
        self.pins
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&url.origin())
            .map_or_else(|| self.http.clone(), |p| p.http.clone())
    }

    /// Pins the attested peers of `session`, replacing the previous session's pins:
    /// from now on every connection to one of them accepts only the certificate its
    /// attestation bound. A peer whose pin is unchanged keeps its client; peers not
    /// listed lose theirs. Returns the peers that could not be pinned, which must be
    /// left out of the session.
    pub fn pin_session(&self, session: u64, peers: &[PeerPin]) -> Vec<(OperatorAddress, PinError)> {
        let mut by_origin: HashMap<Origin, Vec<&PeerPin>> = HashMap::new();
        for p in peers {
            // Plain HTTP (`insecure.plain_http`) has no certificate: nothing to pin,
            // such a peer is reached with the unpinned client.
            if p.url.scheme() == "https" {
                by_origin.entry(p.url.origin()).or_default().push(p);
            }
        }
        let current = self.pins.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut next = HashMap::new();
        let mut failed = Vec::new();
        for (origin, at) in by_origin {
            let [pin] = at.as_slice() else {
                failed.extend(at.iter().map(|p| (p.address, PinError::SharedOrigin)));
                continue;
            };
            let kept = current
                .get(&origin)
                .filter(|c| c.address == pin.address && c.certificate == pin.certificate);
            let client = match kept {
                Some(c) => {
                    c.refusals.start(session);
                    c.clone()
                }
                None => match self.pinned_client(session, pin) {
                    Ok(c) => c,
                    Err(e) => {
                        failed.push((pin.address, e));
                        continue;
                    }
                },
            };
            next.insert(origin, client);
        }
        *self.pins.write().unwrap_or_else(|p| p.into_inner()) = next;
        failed
    }

    fn pinned_client(&self, session: u64, pin: &PeerPin) -> Result<PinnedClient, PinError> {
        let refusals = Arc::new(RefusalLog {
            peer: pin.address,
            origin: pin.url.origin().ascii_serialization(),
            pinned: pin.certificate,
            session: AtomicU64::new(session),
            logged: AtomicBool::new(false),
        });
        let on_refusal: OnPinRefusal = {
            let metrics = self.metrics.clone();
            let refusals = refusals.clone();
            Arc::new(move |presented| {
                metrics.pinned_certificate_refusals.inc();
                refusals.refused(presented);
            })
        };
        let verifier = Arc::new(PinnedServerVerifier::new(
            self.verifier.clone(),
            pin.certificate,
            on_refusal,
        ));
        let tls = crate::tls::pinned_client_config(verifier)
            .map_err(|e| PinError::Client(e.to_string()))?;
        let http = client_builder(&self.cfg, self.plain_http)
            .tls_backend_preconfigured(tls)
            .build()
            .map_err(|e| PinError::Client(e.to_string()))?;
        Ok(PinnedClient {
            address: pin.address,
            certificate: pin.certificate,
            http,
            refusals,
        })
    }

    /// Delivers `body` as JSON to `base` + `path` in the background, retrying until
    /// it is accepted, refused for good (a 4xx other than 429), the attempts run out,
    /// or `deadline` passes. Over the peer's pinned client if it is attested.
    pub fn post_json(
        &self,
        base: &Url,
        path: &str,
        body: Arc<Vec<u8>>,
        label: &'static str,
        deadline: Instant,
        delay: Duration,
    ) {
        let Ok(url) = base.join(path) else {
            warn!(%base, path, "peer URL cannot be joined with the endpoint");
            return;
        };
        // Taken now: retries keep the pin of the session the message belongs to.
        let http = self.client_for(base);
        let this = self.clone();
        self.metrics
            .messages_out
            .get_or_create(&KindLabel {
                kind: label.to_string(),
            })
            .inc();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let mut delay = Duration::from_millis(this.cfg.backoff_initial_ms);
            for attempt in 1..=this.cfg.max_attempts {
                let res = http
                    .post(url.clone())
                    .header("content-type", "application/json")
                    .body(body.as_ref().clone())
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r)
                        if r.status().is_client_error()
                            && r.status() != StatusCode::TOO_MANY_REQUESTS =>
                    {
                        // Refused for a reason a retry does not change (e.g. a late
                        // message for a finished session).
                        let status = r.status();
                        let text = r.text().await.unwrap_or_default();
                        debug!(%url, %status, body = %truncate(&text, 200), "peer refused message");
                        return;
                    }
                    Ok(r) => {
                        debug!(%url, status = %r.status(), attempt, "delivery failed, retrying")
                    }
                    Err(e) => debug!(%url, error = %e, attempt, "delivery failed, retrying"),
                }
                if attempt == this.cfg.max_attempts {
                    break;
                }
                // Full jitter: a random delay in [0, backoff), so that retries of many
                // nodes do not synchronise.
                let jittered = rand::thread_rng().gen_range(0..=delay.as_millis() as u64);
                let wake = Instant::now() + Duration::from_millis(jittered);
                if wake >= deadline {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(jittered)).await;
                delay = (delay * 2).min(Duration::from_millis(this.cfg.backoff_max_ms));
            }
            this.metrics.delivery_failures.inc();
            warn!(%url, "message not delivered after retries");
        });
    }

    /// Sends a protocol message of a `session` to every URL in `to`, after `delay`
    /// (zero but in fault-injection tests).
    pub fn send(
        &self,
        session: SessionKind,
        message: &SignedMessage,
        to: &[Url],
        deadline: Instant,
        delay: Duration,
    ) {
        let Ok(body) = Body::decode(&message.payload) else {
            return;
        };
        let kind = body.kind();
        let path = endpoint(session, kind);
        let body = Arc::new(serde_json::to_vec(message).expect("serializable"));
        for url in to {
            self.post_json(url, &path, body.clone(), kind_name(kind), deadline, delay);
        }
    }
}

fn truncate(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(dir: &std::path::Path) -> Transport {
        let ca = crate::tls::DevCa::generate().unwrap();
        let ca_file = dir.join("ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let tls = TlsConfig {
            ca_file,
            ..Default::default()
        };
        let metrics = Arc::new(Metrics::new());
        Transport::new(TransportConfig::default(), &tls, true, metrics).unwrap()
    }

    fn pin(byte: u8, url: &str, digest: u8) -> PeerPin {
        PeerPin {
            address: OperatorAddress::from_bytes([byte; 20]),
            url: url.parse().unwrap(),
            certificate: CertificateDigest([digest; 32]),
        }
    }

    /// The pins by origin; the refusal log stands for the client (held, so that a
    /// dropped client's address cannot be reused by a new one).
    fn pinned(
        t: &Transport,
    ) -> HashMap<Origin, (OperatorAddress, CertificateDigest, Arc<RefusalLog>)> {
        t.pins
            .read()
            .unwrap()
            .iter()
            .map(|(o, c)| (o.clone(), (c.address, c.certificate, c.refusals.clone())))
            .collect()
    }

    /// Peers on one host are pinned apart (by port); a session's pins replace the
    /// last one's, keeping the clients of unchanged pins; plain HTTP has nothing to
    /// pin; two attested peers at one origin cannot be told apart and are refused.
    #[test]
    fn each_session_pins_its_attested_peers_by_origin() {
        let dir = tempfile::tempdir().unwrap();
        let t = transport(dir.path());
        let a = pin(1, "https://127.0.0.1:7001", 1);
        let b = pin(2, "https://127.0.0.1:7002/kms/", 2);
        let plain = pin(3, "http://127.0.0.1:7003", 3);
        assert!(
            t.pin_session(10, &[a.clone(), b.clone(), plain.clone()])
                .is_empty()
        );
        let first = pinned(&t);
        assert_eq!(first.len(), 2);
        assert_eq!(first[&a.url.origin()].1, a.certificate);
        assert_eq!(first[&b.url.origin()].1, b.certificate);
        assert!(!first.contains_key(&plain.url.origin()));

        // Next session: a's pin is unchanged, b's certificate changed, a third peer
        // shares an origin with b.
        let b2 = PeerPin {
            certificate: CertificateDigest([9; 32]),
            ..b.clone()
        };
        let twin = pin(4, "https://127.0.0.1:7002/other/", 2);
        let failed = t.pin_session(11, &[a.clone(), b2.clone(), twin]);
        let mut refused: Vec<_> = failed.iter().map(|(p, e)| (*p, e.kind())).collect();
        refused.sort();
        assert_eq!(
            refused,
            vec![
                (b.address, "shared_origin"),
                (OperatorAddress::from_bytes([4; 20]), "shared_origin")
            ]
        );
        let second = pinned(&t);
        assert_eq!(
            second.len(),
            1,
            "b is no longer pinned to its old certificate"
        );
        let (kept, before) = (&second[&a.url.origin()], &first[&a.url.origin()]);
        assert_eq!((kept.0, kept.1), (before.0, before.1));
        assert!(Arc::ptr_eq(&kept.2, &before.2), "a keeps its client");

        assert!(t.pin_session(12, std::slice::from_ref(&b2)).is_empty());
        let third = pinned(&t);
        assert_eq!(third.len(), 1, "a is not attested in this session");
        assert_eq!(third[&b.url.origin()].1, b2.certificate);
        assert!(
            !Arc::ptr_eq(&third[&b.url.origin()].2, &first[&b.url.origin()].2),
            "a new client"
        );
    }

    #[test]
    fn endpoints_follow_the_api() {
        assert_eq!(endpoint(SessionKind::Dkg, Kind::Vote), "/dkg/commitment");
        assert_eq!(
            endpoint(SessionKind::Reshare, Kind::Dealing),
            "/reshare/share"
        );
        assert_eq!(endpoint(SessionKind::Dkg, Kind::Complaint), "/dkg/ack");
        assert_eq!(
            endpoint(SessionKind::Reshare, Kind::CoinReveal),
            "/reshare/commitment"
        );
    }
}

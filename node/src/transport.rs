//! Outgoing protocol messages: one HTTP POST per recipient, retried with exponential
//! backoff and full jitter, bounded in attempts and by the session's deadline. A
//! broadcast (recipient = zero address) fans out to every other participant.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_protocol::SessionKind;
use kms_protocol::messages::{MessageKind, SignedMessage};
use rand::Rng;
use reqwest::StatusCode;
use tracing::{debug, warn};
use url::Url;

use crate::config::{TlsConfig, TransportConfig};
use crate::metrics::{KindLabel, Metrics};

/// The endpoint a message goes to: `/{dkg|reshare}/{commitment|share|ack}`. Coin-flip
/// messages travel with the commitments (they are dealer broadcasts of the commit
/// phase); complaints travel with the acks (they are the players' answers).
pub fn endpoint(session: SessionKind, kind: MessageKind) -> String {
    let prefix = match session {
        SessionKind::Dkg => "dkg",
        SessionKind::Reshare => "reshare",
    };
    let leaf = match kind {
        MessageKind::Commitment | MessageKind::CoinCommit | MessageKind::CoinReveal => "commitment",
        MessageKind::Share => "share",
        MessageKind::Ack | MessageKind::Complaint => "ack",
    };
    format!("/{prefix}/{leaf}")
}

/// The lower-case name of a message kind, for metrics and logs.
pub fn kind_name(kind: MessageKind) -> &'static str {
    match kind {
        MessageKind::Commitment => "commitment",
        MessageKind::Share => "share",
        MessageKind::Ack => "ack",
        MessageKind::Complaint => "complaint",
        MessageKind::CoinCommit => "coin_commit",
        MessageKind::CoinReveal => "coin_reveal",
    }
}

/// Sends protocol messages to peers.
#[derive(Clone)]
pub struct Transport {
    http: reqwest::Client,
    cfg: TransportConfig,
    metrics: Arc<Metrics>,
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
        let mut builder = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.request_timeout_ms))
            .connect_timeout(Duration::from_millis(cfg.request_timeout_ms.min(2_000)))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .https_only(!plain_http)
            // Peer attestation binds the certificate a peer presents.
            .tls_info(true)
            .pool_max_idle_per_host(4);
        if let Some(ca) = tls.ca() {
            builder = builder.tls_certs_only(crate::tls::client_roots(ca)?);
        }
        let http = builder.build()?;
        Ok(Self { http, cfg, metrics })
    }

    /// The underlying HTTP client (for `/pubkey` queries to peers).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Delivers `body` as JSON to `base` + `path` in the background, retrying until
    /// it is accepted, refused for good (a 4xx other than 429), the attempts run out,
    /// or `deadline` passes.
    pub fn post_json(
        &self,
        base: &Url,
        path: &str,
        body: Arc<Vec<u8>>,
        label: &'static str,
        deadline: Instant,
    ) {
        let Ok(url) = base.join(path) else {
            warn!(%base, path, "peer URL cannot be joined with the endpoint");
            return;
        };
        let this = self.clone();
        self.metrics
            .messages_out
            .get_or_create(&KindLabel {
                kind: label.to_string(),
            })
            .inc();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(this.cfg.backoff_initial_ms);
            for attempt in 1..=this.cfg.max_attempts {
                let res = this
                    .http
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

    /// Sends a protocol message of a `session` to every URL in `to`.
    pub fn send(
        &self,
        session: SessionKind,
        message: &SignedMessage,
        to: &[Url],
        deadline: Instant,
    ) {
        let Ok(payload) = message.peek() else {
            return;
        };
        let kind = payload.kind();
        let path = endpoint(session, kind);
        let body = Arc::new(serde_json::to_vec(message).expect("serializable"));
        for url in to {
            self.post_json(url, &path, body.clone(), kind_name(kind), deadline);
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

    #[test]
    fn endpoints_follow_the_api() {
        assert_eq!(
            endpoint(SessionKind::Dkg, MessageKind::Commitment),
            "/dkg/commitment"
        );
        assert_eq!(
            endpoint(SessionKind::Reshare, MessageKind::Share),
            "/reshare/share"
        );
        assert_eq!(
            endpoint(SessionKind::Dkg, MessageKind::Complaint),
            "/dkg/ack"
        );
        assert_eq!(
            endpoint(SessionKind::Reshare, MessageKind::CoinReveal),
            "/reshare/commitment"
        );
    }
}

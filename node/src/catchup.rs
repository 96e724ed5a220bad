//! Catching up on a session this node missed: a player whose session ended without
//! an outcome (it was cut off, or its host delayed it past the session's end) asks
//! its peers for their transcript of the session (`GET /v2/sessions/{ts}/transcript`:
//! the signed messages a peer holds, all public) and replays it into a fresh engine
//! of the same setup, with the encryption key it had then
//! ([`kms_protocol::dkg::Engine::replay`]). The replay checks everything as the
//! session would have and decides only on a quorum's signed precommits, so a peer
//! can withhold or reorder but never make this node activate anything but the agreed
//! version. It stops as soon as a newer session starts (versions activate in order).

use std::sync::Arc;
use std::time::{Duration, Instant};

use kms_crypto::Scalar;
use kms_crypto::vss::encryption::EncryptionSecretKey;
use kms_protocol::SessionKind;
use kms_protocol::dkg::{Engine, Setup};
use kms_protocol::messages::SignedMessage;
use tracing::{debug, info, warn};

use crate::node::NodeShared;
use crate::peering::Peer;

/// Rounds of asking every peer, one phase apart.
const ATTEMPTS: u32 = 8;
/// The largest transcript taken from a peer (a 100-operator session is about 3 MiB).
const MAX_TRANSCRIPT_BYTES: usize = 32 * 1024 * 1024;

/// What rebuilds a session's engine: kept from the session's start until the next.
pub struct ReplayInputs {
    /// The session.
    pub ts: u64,
    /// DKG or reshare.
    pub kind: SessionKind,
    /// Its setup.
    pub setup: Setup,
    /// The encryption key this node's shares of the session are encrypted to.
    pub encryption: Arc<EncryptionSecretKey>,
    /// A reshare dealer's current share (zeroized on drop).
    pub share: Option<Scalar>,
    /// The engine seed of the session.
    pub seed: [u8; 32],
    /// The operators to ask.
    pub peers: Vec<Peer>,
}

/// Asks the peers for session `ts` until one transcript yields its outcome, a newer
/// session starts, or the attempts run out.
pub async fn catch_up(node: Arc<NodeShared>, ts: u64) {
    let inputs = {
        let guard = node.replay_inputs.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(i) if i.ts == ts => Arc::new(ReplayInputs {
                ts,
                kind: i.kind,
                setup: i.setup.clone(),
                encryption: i.encryption.clone(),
                share: i.share.clone(),
                seed: i.seed,
                peers: i.peers.clone(),
            }),
            _ => return,
        }
    };
    let phase = Duration::from_millis(node.cfg.schedule.phase_ms);
    for attempt in 1..=ATTEMPTS {
        for peer in inputs.peers.iter().filter(|p| p.address != node.address) {
            if node.last_started() > ts || node.has_version(ts) {
                return;
            }
            let messages = match fetch(&node, peer, ts).await {
                Ok(m) => m,
                Err(reason) => {
                    debug!(session = ts, peer = %peer.address, reason, attempt, "no transcript");
                    continue;
                }
            };
            let count = messages.len();
            let node2 = node.clone();
            let inputs2 = inputs.clone();
            let outcome = tokio::task::spawn_blocking(move || {
                let engine = Engine::new(
                    inputs2.setup.clone(),
                    node2.address,
                    node2.protocol_signer(inputs2.ts),
                    inputs2.encryption.clone(),
                    inputs2.share.clone(),
                    inputs2.seed,
                )
                .ok()?
                .with_certificates(node2.certificate_cache());
                engine.replay(&messages)
            })
            .await
            .ok()
            .flatten();
            match outcome {
                Some(Ok(o)) => {
                    if node.last_started() > ts || node.has_version(ts) {
                        return;
                    }
                    info!(
                        session = ts,
                        peer = %peer.address,
                        messages = count,
                        "caught up on a missed session from a peer's transcript"
                    );
                    let hash = inputs.setup.hash().0;
                    let deadline = Instant::now() + phase;
                    node.conclude(ts, inputs.kind, hash, deadline, Ok(o)).await;
                    return;
                }
                Some(Err(f)) => {
                    // The agreed outcome, unusable here (a share this node lacks).
                    warn!(session = ts, reason = %f, "caught up on a missed session, but cannot use its outcome");
                    return;
                }
                None => {
                    debug!(session = ts, peer = %peer.address, messages = count, "transcript without a usable decision")
                }
            }
        }
        tokio::time::sleep(phase).await;
    }
    warn!(
        session = ts,
        "could not catch up on a missed session; the previous version stays active"
    );
}

/// One peer's transcript of session `ts`.
async fn fetch(
    node: &NodeShared,
    peer: &Peer,
    ts: u64,
) -> Result<Vec<SignedMessage>, &'static str> {
    let url = peer
        .url
        .join(&format!("/v2/sessions/{ts}/transcript"))
        .map_err(|_| "bad_url")?;
    let timeout = Duration::from_millis(node.cfg.transport.request_timeout_ms.max(1_000));
    let mut r = tokio::time::timeout(timeout, node.transport.http().get(url).send())
        .await
        .map_err(|_| "unreachable")?
        .map_err(|_| "unreachable")?;
    if !r.status().is_success() {
        return Err("bad_status");
    }
    let bytes = tokio::time::timeout(
        timeout,
        kms_attestation::fetch::read_capped(&mut r, MAX_TRANSCRIPT_BYTES),
    )
    .await
    .map_err(|_| "unreachable")?
    .map_err(|_| "too_large")?;
    serde_json::from_slice(&bytes).map_err(|_| "malformed")
}

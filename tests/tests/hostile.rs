//! Every endpoint fed hostile input answers a 4xx with a reason; the node stays
//! healthy and stores nothing. `/metrics` parses as Prometheus text and moves.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Cluster;
use kms_node::OperatorKeys;
use kms_protocol::messages::SignedMessage;
use kms_protocol::sim::SimOperator;
use kms_protocol::{Participant, Schedule, SessionParams, SessionTimestamp, VssMode};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Messages of a (Pedersen) session that does not exist, signed by `signer` (a
/// participant): its first one is a coin commitment, for `/dkg/commitment`.
fn foreign_messages(
    ts: u64,
    me: Participant,
    signer: Arc<dyn kms_crypto::signer::OperatorSigner>,
) -> Vec<SignedMessage> {
    use kms_crypto::vss::encryption::EncryptionSecretKey;
    use kms_protocol::dkg::sim::SimMember;
    let mut members = SimMember::generate(3, ts);
    let key = EncryptionSecretKey::generate(&mut rand_core::OsRng);
    let directory = members[0].directory.clone();
    members.push(SimMember {
        operator: SimOperator {
            address: me.address,
            signer: signer.clone(),
            certificates: Arc::new(kms_protocol::certificates::CertificateCache::new()),
        },
        encryption: Arc::new(key),
        directory,
    });
    let params = SessionParams::dkg(
        SessionTimestamp(ts),
        VssMode::Pedersen,
        members.iter().map(SimMember::participant).collect(),
        Schedule {
            start_ms: ts * 1000,
            phase_ms: 1000,
        },
    )
    .unwrap();
    let setup = kms_protocol::dkg::sim::setup(params);
    let encryption = members[3].encryption.clone();
    let mut e =
        kms_protocol::dkg::Engine::new(setup, me.address, signer, encryption, None, [9; 32])
            .unwrap();
    e.start(ts * 1000);
    e.drain()
        .into_iter()
        .filter_map(|a| match a {
            kms_protocol::dkg::Action::Send { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

async fn post(
    c: &Cluster,
    path: &str,
    body: impl Into<reqwest::Body>,
    content_type: &str,
) -> (StatusCode, Value) {
    let r = c
        .http
        .post(c.members[0].url.join(path).unwrap())
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    (status, v)
}

fn assert_error(status: StatusCode, body: &Value, want: StatusCode, what: &str) {
    assert_eq!(status, want, "{what}: {body}");
    assert!(status.is_client_error(), "{what}");
    assert!(body["error"]["code"].is_string(), "{what}: {body}");
    assert!(
        !body["error"]["message"].as_str().unwrap_or("").is_empty(),
        "{what}: {body}"
    );
}

/// Parses Prometheus text: `name{labels} value` lines. Panics on a malformed line.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line {line}"));
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in {line}"));
        assert!(
            name.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_'),
            "bad metric name in {line}"
        );
        if let Some((_, labels)) = name.split_once('{') {
            assert!(labels.ends_with('}'), "unterminated labels in {line}");
        }
        out.insert(name.to_string(), v);
    }
    out
}

async fn metrics(c: &Cluster) -> BTreeMap<String, f64> {
    let r = c
        .http
        .get(c.members[0].url.join("/metrics").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    parse_metrics(&r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_input_is_refused_with_4xx_and_changes_nothing() {
    let c = Cluster::start(4, 4, 500).await;
    let all = [0, 1, 2, 3];
    let version = c.wait_for_version(&all, 0, Duration::from_secs(60)).await;
    let before = metrics(&c).await;

    // /app/sign works (owner-signed, sealed to a one-time key), then every kind of
    // bad request.
    let sk = kms_crypto::sealed::OneTimeSecretKey::generate(&mut rand_core::OsRng);
    let key = sk.public_key();
    let signed = |app: &str, at: Option<u64>| c.owner_request(0, app, at, &key);
    let (s, v) = post(
        &c,
        "/app/sign",
        signed("ok", None).to_string(),
        "application/json",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["version"], version);
    let with = |mut body: serde_json::Value, field: &str, value: serde_json::Value| {
        body[field] = value;
        body.to_string()
    };
    let cases: Vec<(&str, String, &str, StatusCode)> = vec![
        (
            "/app/sign",
            "{".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            json!({"appID": 5}).to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        // Without authorization: 401 whatever else the request says.
        (
            "/app/sign",
            json!({"appID": "ok"}).to_string(),
            "application/json",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/app/sign",
            json!({"appID": "a", "attestationTime": 1}).to_string(),
            "application/json",
            StatusCode::UNAUTHORIZED,
        ),
        (
            "/app/sign",
            with(signed("", None), "appID", json!("")),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            with(signed("x", None), "appID", json!("x".repeat(300))),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            with(signed("a", None), "extra", json!(1)),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            with(signed("a", None), "attestationTime", json!(-1)),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            signed("a", Some(u64::MAX)).to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/app/sign",
            signed("a", Some(1)).to_string(),
            "application/json",
            StatusCode::NOT_FOUND,
        ),
        (
            "/app/sign",
            signed("a", None).to_string(),
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "/dkg/commitment",
            "[]".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/dkg/share",
            json!({"payload": "0x01", "hash": "0x00", "signer": "0x00", "signature": 1})
                .to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reshare/ack",
            json!({"payload": "zz"}).to_string(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/reshare/complete",
            "null".into(),
            "application/json",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/nope",
            "{}".into(),
            "application/json",
            StatusCode::NOT_FOUND,
        ),
    ];
    for (path, body, ct, want) in cases {
        let (s, v) = post(&c, path, body.clone(), ct).await;
        assert_error(s, &v, want, &format!("{path} {body:.80}"));
    }
    // A body above the limit: a 413, or the server closes the connection before the
    // client has finished sending a body it will never read (never a 2xx or 5xx). Its
    // own client, so that the closed connection is not reused by later requests.
    let huge = format!("{{\"appID\":\"{}\"}}", "a".repeat(3 * 1024 * 1024));
    if let Some((s, v)) = c.post_oversized(0, "/app/sign", huge.into_bytes()).await {
        assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE, "huge body");
    }

    // Protocol messages: from an unknown sender, replayed from an old session, on the
    // wrong endpoint, with a bad signature.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A near-future timestamp that is not a session boundary (interval 4 s).
    let soon = if (now + 1).is_multiple_of(4) {
        now + 2
    } else {
        now + 1
    };
    let stranger = SimOperator::generate(1, 77).remove(0);
    let msgs = foreign_messages(soon, stranger.participant(), stranger.signer.clone());
    let commitment = serde_json::to_string(&msgs[0]).unwrap();
    let (s, v) = post(
        &c,
        "/dkg/commitment",
        commitment.clone(),
        "application/json",
    )
    .await;
    assert_error(s, &v, StatusCode::FORBIDDEN, "unknown sender");
    let (s, v) = post(&c, "/dkg/share", commitment.clone(), "application/json").await;
    assert_error(
        s,
        &v,
        StatusCode::BAD_REQUEST,
        "commitment on the share endpoint",
    );

    let member = OperatorKeys::read(&c.members[1].key_file, None, true).unwrap();
    let me = Participant {
        address: member.address(),
        public_key: member.public_key(),
    };
    let old = foreign_messages(1, me.clone(), member.signer());
    let (s, v) = post(
        &c,
        "/dkg/commitment",
        serde_json::to_string(&old[0]).unwrap(),
        "application/json",
    )
    .await;
    assert_error(s, &v, StatusCode::CONFLICT, "replay from an old session");
    let mut forged = foreign_messages(soon, me, member.signer()).remove(0);
    forged.signature = member.signer().sign(&[0u8; 32]);
    let (s, v) = post(
        &c,
        "/dkg/commitment",
        serde_json::to_string(&forged).unwrap(),
        "application/json",
    )
    .await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED, "bad signature");
    let mut tampered = forged.clone();
    tampered.hash[0] ^= 1;
    let (s, v) = post(
        &c,
        "/dkg/commitment",
        serde_json::to_string(&tampered).unwrap(),
        "application/json",
    )
    .await;
    assert!(s.is_client_error(), "tampered hash: {s} {v}");

    // Still healthy, nothing stored.
    let h = c.health(0).await.expect("healthy");
    assert_eq!(h.status, "ok");
    assert!(
        h.insecure_modes.contains(&"plaintext-keys".to_string()),
        "{h:?}"
    );
    let versions: Vec<u64> = c.members[0]
        .node
        .as_ref()
        .unwrap()
        .shared()
        .versions()
        .iter()
        .map(|v| v.session_timestamp.0)
        .filter(|v| *v > version)
        .collect();
    assert!(
        versions.iter().all(|v| *v % 4 == 0),
        "only session versions: {versions:?}"
    );

    // The counters moved.
    let after = metrics(&c).await;
    let get = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    assert!(
        get(&after, "kms_sign_requests_total{result=\"ok\"}")
            >= get(&before, "kms_sign_requests_total{result=\"ok\"}") + 1.0
    );
    assert!(
        get(&after, "kms_rejected_total{reason=\"unknown_sender\"}") >= 1.0,
        "{after:?}"
    );
    assert!(
        get(&after, "kms_rejected_total{reason=\"bad_signature\"}") >= 1.0,
        "{after:?}"
    );
    assert!(
        get(&after, "kms_sessions_total{kind=\"dkg\",result=\"ok\"}") >= 1.0,
        "{after:?}"
    );
    assert!(
        after.keys().any(|k| k.starts_with("kms_messages_in_total")),
        "{after:?}"
    );
    assert!(get(&after, "kms_key_version") >= version as f64);
    c.shutdown().await;
}

/// A node that has not re-read the operator set since an operator was added still
/// takes (buffers) that operator's messages for the coming session: at a boundary a
/// peer may read the new set and start writing before this node does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newly_listed_operator_is_heard_before_the_boundary() {
    // Hour-long interval: no boundary (which would re-read the set anyway) in the test.
    let c = Cluster::start(2, 3600, 500).await;
    // The nodes started before the peering file existed: neither knows the other.
    let member = OperatorKeys::read(&c.members[1].key_file, None, true).unwrap();
    let me = Participant {
        address: member.address(),
        public_key: member.public_key(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let msgs = foreign_messages(now + 5, me, member.signer());
    let (s, v) = post(
        &c,
        "/dkg/commitment",
        serde_json::to_string(&msgs[0]).unwrap(),
        "application/json",
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    c.shutdown().await;
}

/// `/app/sign` and `/secrets` are rate limited apart (a flood of one does not starve
/// the other), before any work: past the burst, well-formed requests get 429
/// `rate_limited` until tokens come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_and_secrets_requests_are_rate_limited_apart() {
    let mut c = Cluster::start(1, 3600, 500).await;
    c.stop(0).await;
    let l = &mut c.members[0].cfg.limits;
    l.sign_rate_per_sec = 1;
    l.sign_burst = 2;
    l.secrets_rate_per_sec = 1;
    l.secrets_burst = 2;
    c.restart(0).await;
    let secrets = serde_json::json!({
        "app_id": "app",
        "attestation_method": "dcap",
        "attestation": "AAAA",
        "rsa_pubkey_tmp": "not a key",
        "attest_time": 1,
        "nonce": "ab".repeat(16),
    })
    .to_string();
    let sign = r#"{"appID":"app"}"#;
    for path in ["/secrets", "/app/sign"] {
        let body = if path == "/secrets" { &secrets } else { sign };
        for i in 0..2 {
            let (s, v) = post(&c, path, body.to_string(), "application/json").await;
            assert!(s.is_client_error(), "{path} #{i}: {s} {v}");
            assert_ne!(s, StatusCode::TOO_MANY_REQUESTS, "{path} #{i}: {v}");
        }
        let (s, v) = post(&c, path, body.to_string(), "application/json").await;
        assert_error(s, &v, StatusCode::TOO_MANY_REQUESTS, path);
        assert_eq!(v["error"]["code"], "rate_limited", "{path}");
    }
    c.shutdown().await;
}

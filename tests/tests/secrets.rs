//! `/secrets` end to end against a cluster of 4 nodes in insecure-dev mode: an app
//! whose build is registered attests with a simulated quote bound to its one-time RSA
//! key and nonce, and decrypts its environment; key substitution, nonce replay, an
//! unregistered build, stale or future attestation times, an unknown app and
//! malformed requests are each refused with their own 4xx.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::Cluster;
use kms_attestation::simulated::encode_simulated_quote;
use kms_client::{AppEvidence, ClientOptions, KmsClient, SecretsRequest};
use kms_node::attest::simulated_measurements;
use serde_json::{Value, json};

const INTERVAL: u64 = 4;
const PHASE_MS: u64 = 500;
const APP: &str = "secrets-app";
const ENV: &[u8] = b"DB_PASSWORD=hunter2\nAPI_KEY=0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn quote_for(req: &SecretsRequest, build: &str) -> AppEvidence {
    AppEvidence::Simulated(encode_simulated_quote(
        &simulated_measurements(build),
        &req.report_data(),
    ))
}

/// Posts `body` (raw bytes) to node `i`'s `/secrets`; returns status and JSON body.
async fn post_raw(c: &Cluster, i: usize, ctype: &str, body: Vec<u8>) -> (u16, Value) {
    let r = c
        .http
        .post(c.members[i].url.join("/secrets").unwrap())
        .header("content-type", ctype)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v = r.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

async fn post(c: &Cluster, i: usize, body: &Value) -> (u16, Value) {
    post_raw(c, i, "application/json", serde_json::to_vec(body).unwrap()).await
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_end_to_end_and_refusals() {
    let c = Cluster::start(4, INTERVAL, PHASE_MS).await;
    let all = [0, 1, 2, 3];
    let first = c
        .wait_for_version(&all, 0, Duration::from_secs(INTERVAL * 4 + 20))
        .await;
    let client = KmsClient::with_options(
        c.urls(&all),
        ClientOptions {
            ca_pem: Some(c.ca.cert_pem().as_bytes().to_vec()),
            ..ClientOptions::default()
        },
    )
    .unwrap();

    // Register the app: its environment encrypted to its ID, and one allowed build.
    let ct = client.encrypt(APP, ENV).await.unwrap();
    let m = simulated_measurements("app-build-1");
    let apps = format!(
        "[[apps]]\napp_id = \"{APP}\"\npublic_env = \"LOG_LEVEL=info\"\nencrypted_env = \"{}\"\n\
         [[apps.builds]]\nmrtd = \"{}\"\nrtmr = [{}]\n",
        hex::encode(&ct),
        hex::encode(m.mrtd),
        m.rtmr
            .iter()
            .map(|r| format!("\"{}\"", hex::encode(r)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    std::fs::write(c.apps_file(), apps).unwrap();
    // The nodes re-read the registry at most every 2 s.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // End to end.
    let req = SecretsRequest::new(APP).unwrap();
    let evidence = quote_for(&req, "app-build-1");
    let secrets = client.retrieve_secrets(&req, &evidence).await.unwrap();
    assert_eq!(&secrets.env[..], ENV);
    assert_eq!(secrets.public_env, "LOG_LEVEL=info");

    // Replay of the same request (same nonce) at a node that already answered it.
    let (s, v) = post(&c, 0, &req.body(&evidence)).await;
    assert_eq!((s, code(&v)), (409, "nonce_reused"), "{v}");
    // Replayed with a fresh attest_time (as after its nonce expired from the nodes'
    // memory): the quote binds the time it was made for, so every node refuses it.
    for i in 0..4 {
        let mut replay = req.body(&evidence);
        replay["attest_time"] = json!(req.attest_time() + 1 + i as u64);
        let (s, v) = post(&c, i, &replay).await;
        assert_eq!((s, code(&v)), (403, "binding_mismatch"), "node {i}: {v}");
    }
    // Every node recorded one release for the request and nothing for the replays'
    // secrets.
    for i in 0..4 {
        let log = std::fs::read_to_string(c.members[i].cfg.audit_file()).unwrap();
        let released = log
            .lines()
            .filter(|l| l.contains("\"result\":\"released\""))
            .count();
        assert_eq!(released, 1, "node {i}: {log}");
        assert!(log.contains("\"endpoint\":\"secrets\""), "{log}");
    }

    // RSA key substitution: a quote bound to key A, the request carrying key B.
    let a = SecretsRequest::new(APP).unwrap();
    let b = SecretsRequest::new(APP).unwrap();
    let (s, v) = post(&c, 1, &b.body(&quote_for(&a, "app-build-1"))).await;
    assert_eq!((s, code(&v)), (403, "binding_mismatch"), "{v}");
    // Nor can the attacker swap only the key in A's otherwise valid request.
    let mut forged = a.body(&quote_for(&a, "app-build-1"));
    forged["rsa_pubkey_tmp"] = json!(b.rsa_pubkey_pem());
    let (s, v) = post(&c, 1, &forged).await;
    assert_eq!((s, code(&v)), (403, "binding_mismatch"), "{v}");
    // ... and the refused attempt did not burn A's nonce: A itself still succeeds.
    let secrets = client
        .retrieve_secrets(&a, &quote_for(&a, "app-build-1"))
        .await
        .unwrap();
    assert_eq!(&secrets.env[..], ENV);

    // A request attested before the newest reshare: the nodes sign with the version
    // active then, and the client combines against it (the same master secret).
    c.wait_for_version(&all, first, Duration::from_secs(INTERVAL * 4 + 20))
        .await;
    let newest = client.master_public_key().await.unwrap().version;
    let r = SecretsRequest::new(APP)
        .unwrap()
        .with_attest_time(newest - 1);
    let secrets = client
        .retrieve_secrets(&r, &quote_for(&r, "app-build-1"))
        .await
        .unwrap();
    assert_eq!(&secrets.env[..], ENV);
    assert!(secrets.version < newest, "{} vs {newest}", secrets.version);

    // A build that is not registered for the app.
    let r = SecretsRequest::new(APP).unwrap();
    let (s, v) = post(&c, 2, &r.body(&quote_for(&r, "app-build-2"))).await;
    assert_eq!((s, code(&v)), (403, "measurement_not_allowed"), "{v}");
    // The node image is not an app build either.
    let (s, v) = post(&c, 2, &r.body(&quote_for(&r, "eigenkms-dev-image"))).await;
    assert_eq!((s, code(&v)), (403, "measurement_not_allowed"), "{v}");

    // Stale and future attestation times.
    let r = SecretsRequest::new(APP)
        .unwrap()
        .with_attest_time(now() - 1_000);
    let (s, v) = post(&c, 3, &r.body(&quote_for(&r, "app-build-1"))).await;
    assert_eq!((s, code(&v)), (400, "stale_attestation"), "{v}");
    let r = SecretsRequest::new(APP)
        .unwrap()
        .with_attest_time(now() + 3_600);
    let (s, v) = post(&c, 3, &r.body(&quote_for(&r, "app-build-1"))).await;
    assert_eq!((s, code(&v)), (400, "attest_time_in_future"), "{v}");

    // An app that is not registered.
    let r = SecretsRequest::new("no-such-app").unwrap();
    let (s, v) = post(&c, 0, &r.body(&quote_for(&r, "app-build-1"))).await;
    assert_eq!((s, code(&v)), (404, "unknown_app"), "{v}");

    // A DCAP quote on a node without collateral: refused, not a 500.
    let r = SecretsRequest::new(APP).unwrap();
    let (s, v) = post(
        &c,
        0,
        &r.body(&AppEvidence::Dcap(vec![4, 0, 2, 0, 0x81, 0, 0, 0])),
    )
    .await;
    assert!((400..500).contains(&s), "{s} {v}");

    // Bad-input sweep: every one a 4xx with an error code, none a 5xx.
    let base = {
        let r = SecretsRequest::new(APP).unwrap();
        r.body(&quote_for(&r, "app-build-1"))
    };
    let with = |k: &str, val: Value| {
        let mut b = base.clone();
        b[k] = val;
        b
    };
    let without = |k: &str| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let short_key = {
        use rsa::pkcs8::{EncodePublicKey, LineEnding};
        rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 1024)
            .unwrap()
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap()
    };
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "bad base64",
            with("attestation", json!("!!not base64!!")),
            400,
            "bad_request",
        ),
        (
            "short RSA key",
            with("rsa_pubkey_tmp", json!(short_key)),
            400,
            "bad_rsa_key",
        ),
        (
            "not a PEM key",
            with("rsa_pubkey_tmp", json!("hello")),
            400,
            "bad_rsa_key",
        ),
        (
            "unknown method",
            with("attestation_method", json!("sgx")),
            400,
            "bad_request",
        ),
        (
            "short nonce",
            with("nonce", json!("00ff")),
            400,
            "bad_request",
        ),
        (
            "long nonce",
            with("nonce", json!("ab".repeat(65))),
            400,
            "bad_request",
        ),
        ("empty app", with("app_id", json!("")), 400, "bad_request"),
        (
            "long app",
            with("app_id", json!("a".repeat(257))),
            400,
            "bad_request",
        ),
        (
            "negative time",
            with("attest_time", json!(-1)),
            400,
            "bad_request",
        ),
        (
            "time as string",
            with("attest_time", json!("now")),
            400,
            "bad_request",
        ),
        ("unknown field", with("extra", json!(1)), 400, "bad_request"),
        ("missing app_id", without("app_id"), 400, "bad_request"),
        ("missing nonce", without("nonce"), 400, "bad_request"),
        (
            "missing attestation",
            without("attestation"),
            400,
            "bad_request",
        ),
        ("missing key", without("rsa_pubkey_tmp"), 400, "bad_request"),
        ("not an object", json!([1, 2, 3]), 400, "bad_request"),
        (
            "huge attestation",
            with("attestation", json!("A".repeat(200 * 1024))),
            400,
            "bad_request",
        ),
        (
            "simulated quote too short",
            with("attestation", json!(B64.encode(b"EIGENKMS-SIMULATED-TDX"))),
            400,
            "malformed",
        ),
    ];
    for (name, body, status, want) in cases {
        let (s, v) = post(&c, 1, &body).await;
        assert_eq!((s, code(&v)), (status, want), "{name}: {v}");
    }
    // Bodies over the route's limit (just over, and far over): a 413, or the server
    // closes the connection before the client has finished sending the body it will
    // never read; never a 2xx or a 5xx. A client without a connection pool, so that a
    // connection the server closed is not reused by the requests that follow.
    for size in [300 * 1024, 3 * 1024 * 1024] {
        if let Some((status, v)) = c.post_oversized(1, "/secrets", vec![b' '; size]).await {
            assert_eq!(
                (status.as_u16(), code(&v)),
                (413, "payload_too_large"),
                "{size} bytes: {v}"
            );
        }
    }
    // Not JSON, the wrong content type, the wrong method.
    let (s, v) = post_raw(&c, 1, "application/json", b"{\"app_id\":".to_vec()).await;
    assert_eq!((s, code(&v)), (400, "bad_request"), "{v}");
    let (s, v) = post_raw(&c, 1, "text/plain", serde_json::to_vec(&base).unwrap()).await;
    assert_eq!((s, code(&v)), (415, "unsupported_media_type"), "{v}");
    let r = c
        .http
        .get(c.members[1].url.join("/secrets").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // The base request was valid all along.
    let (s, v) = post(&c, 1, &base).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["encrypted_env"], json!(hex::encode(&ct)));

    let metrics = c.metrics_text(1).await;
    assert!(
        metrics.contains("kms_secrets_requests_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kms_secrets_requests_total{result=\"binding_mismatch\"}"),
        "{metrics}"
    );
    c.shutdown().await;
}

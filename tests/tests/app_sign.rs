//! `/app/sign` releases an app's key material only to a caller the app's registration
//! names, sealed to its one-time key, and records every release: real nodes on
//! loopback (insecure-dev attestation, simulated app quotes), driven over HTTPS.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use common::{Cluster, owner_request_for};
use kms_attestation::simulated::{encode_simulated_quote, simulated_measurements};
use kms_client::{Authority, ClientOptions, KmsClient};
use kms_crypto::sealed::OneTimeSecretKey;
use kms_crypto::signer::ecdsa::EcdsaSigner;
use kms_crypto::tbls::{self, SigningDomain};
use kms_crypto::{G1Point, G2Point, evaluation_point};
use kms_protocol::api::SignResponse;
use rand_core::OsRng;
use serde_json::{Value, json};

const INTERVAL: u64 = 4;
const PHASE_MS: u64 = 500;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post(c: &Cluster, i: usize, body: &Value) -> (u16, Value) {
    let r = c
        .http
        .post(c.members[i].url.join("/app/sign").unwrap())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(body).unwrap())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json::<Value>().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

fn client(c: &Cluster, idx: &[usize]) -> KmsClient {
    KmsClient::with_options(
        c.urls(idx),
        ClientOptions {
            ca_pem: Some(c.ca.cert_pem().as_bytes().to_vec()),
            ..ClientOptions::default()
        },
    )
    .unwrap()
}

/// TOML of one app with one simulated build and no owner.
fn attested_app(app: &str, build: &str) -> String {
    let m = simulated_measurements(build);
    let rtmr: Vec<String> = m
        .rtmr
        .iter()
        .map(|r| format!("\"{}\"", hex::encode(r)))
        .collect();
    format!(
        "[[apps]]\napp_id = \"{app}\"\n[[apps.builds]]\nmrtd = \"{}\"\nrtmr = [{}]\n",
        hex::encode(m.mrtd),
        rtmr.join(", ")
    )
}

/// An attested `/app/sign` body for `app`, quoted by the simulated `build`.
fn attested_request(app: &str, build: &str, key: &kms_crypto::sealed::OneTimePublicKey) -> Value {
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
    let t = now();
    let rd = kms_attestation::app_sign_report_data(&key.to_bytes(), &nonce, app, t);
    let quote = encode_simulated_quote(&simulated_measurements(build), &rd);
    json!({
        "appID": app,
        "auth": {
            "method": "attestation",
            "attestationMethod": "simulated",
            "attestation": B64.encode(quote),
            "attestTime": t,
            "nonce": hex::encode(nonce),
            "responseKey": format!("0x{}", hex::encode(key.to_bytes())),
        }
    })
}

/// Lines of node `i`'s audit log.
fn audit_lines(c: &Cluster, i: usize) -> Vec<Value> {
    let path = c.members[i].cfg.audit_file();
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn released(lines: &[Value]) -> usize {
    lines.iter().filter(|l| l["result"] == "released").count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn app_keys_reach_only_authorized_callers_and_every_release_is_audited() {
    let c = Cluster::start(4, INTERVAL, PHASE_MS).await;
    let all = [0, 1, 2, 3];
    let v1 = c
        .wait_for_version(&all, 0, Duration::from_secs(INTERVAL * 4 + 20))
        .await;
    // Apps: owned ones (the cluster's), "tee-a" and "tee-b" each attested by its own
    // build and without an owner.
    c.register_owned_apps(&format!(
        "{}{}",
        attested_app("tee-a", "build-a"),
        attested_app("tee-b", "build-b")
    ));
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let kms = client(&c, &all);

    // The owner's path and the TD's path yield the same app key, the right one.
    let mk = kms.master_public_key().await.unwrap();
    let owned = kms
        .app_key("app-1", &Authority::Owner(c.owner.clone()))
        .await
        .unwrap();
    assert!(tbls::verify_app_key(&mk.public_key(), b"app-1", &owned));
    let tee = kms
        .app_key("tee-a", &Authority::simulated("build-a"))
        .await
        .unwrap();
    assert!(tbls::verify_app_key(&mk.public_key(), b"tee-a", &tee));
    let released_before: Vec<usize> = all.iter().map(|&i| released(&audit_lines(&c, i))).collect();
    assert_eq!(
        released_before,
        vec![2; 4],
        "one line per release at every node"
    );

    // Without authorization: 401 for every app (registered or not) and every version.
    let sk = OneTimeSecretKey::generate(&mut OsRng);
    let key = sk.public_key();
    for app in ["app-1", "tee-a", "tee-b", "not-registered"] {
        for at in [None, Some(v1), Some(now())] {
            let mut body = json!({ "appID": app });
            if let Some(t) = at {
                body["attestationTime"] = json!(t);
            }
            for i in all {
                let (s, v) = post(&c, i, &body).await;
                assert_eq!((s, code(&v)), (401, "unauthorized"), "{app} {at:?}: {v}");
            }
        }
    }
    // An app whose registration does not name the method: 403.
    let (s, v) = post(&c, 0, &c.owner_request(0, "tee-a", None, &key)).await;
    assert_eq!((s, code(&v)), (403, "method_not_allowed"), "{v}");
    let (s, v) = post(&c, 0, &attested_request("app-1", "build-a", &key)).await;
    assert_eq!((s, code(&v)), (403, "method_not_allowed"), "{v}");
    // An attested request for app A from app B's build: 403.
    let (s, v) = post(&c, 1, &attested_request("tee-a", "build-b", &key)).await;
    assert_eq!((s, code(&v)), (403, "measurement_not_allowed"), "{v}");
    let e = kms
        .app_key("tee-a", &Authority::simulated("build-b"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("measurement_not_allowed"), "{e}");
    // ... nor the node image.
    let (s, v) = post(
        &c,
        1,
        &attested_request("tee-a", "eigenkms-dev-image", &key),
    )
    .await;
    assert_eq!((s, code(&v)), (403, "measurement_not_allowed"), "{v}");
    // A quote bound to another one-time key: the partial would be sealed to the
    // attacker's key, so the binding refuses it.
    let mut swapped = attested_request("tee-a", "build-a", &key);
    let other = OneTimeSecretKey::generate(&mut OsRng).public_key();
    swapped["auth"]["responseKey"] = json!(format!("0x{}", hex::encode(other.to_bytes())));
    let (s, v) = post(&c, 1, &swapped).await;
    assert_eq!((s, code(&v)), (403, "binding_mismatch"), "{v}");
    // A replayed attested request: 409 at the node that answered it.
    let fresh = attested_request("tee-a", "build-a", &key);
    assert_eq!(post(&c, 2, &fresh).await.0, 200);
    let (s, v) = post(&c, 2, &fresh).await;
    assert_eq!((s, code(&v)), (409, "nonce_reused"), "{v}");

    // Owner-signed requests: a wrong signer, expired, replayed, for another node,
    // with a substituted one-time key, too long-lived: refused.
    let stranger = EcdsaSigner::random(&mut OsRng);
    let addr = c.members[0].address;
    let wrong = owner_request_for(&stranger, addr, "app-1", None, &key, 60);
    let (s, v) = post(&c, 0, &wrong).await;
    assert_eq!((s, code(&v)), (401, "bad_signature"), "{v}");
    let expired = owner_request_for(&c.owner, addr, "app-1", None, &key, -10);
    let (s, v) = post(&c, 0, &expired).await;
    assert_eq!((s, code(&v)), (401, "expired"), "{v}");
    let good = c.owner_request(0, "app-1", None, &key);
    let (s, v) = post(&c, 0, &good).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(&c, 0, &good).await;
    assert_eq!((s, code(&v)), (401, "nonce_reused"), "{v}");
    let (s, v) = post(&c, 1, &c.owner_request(0, "app-1", None, &key)).await;
    assert_eq!((s, code(&v)), (401, "wrong_node"), "{v}");
    let mut swapped = c.owner_request(0, "app-1", None, &key);
    swapped["auth"]["responseKey"] = json!(format!("0x{}", hex::encode(other.to_bytes())));
    let (s, v) = post(&c, 0, &swapped).await;
    assert_eq!((s, code(&v)), (401, "bad_signature"), "{v}");
    let mut renamed = c.owner_request(0, "app-1", None, &key);
    renamed["appID"] = json!("app-2");
    let (s, v) = post(&c, 0, &renamed).await;
    assert_eq!((s, code(&v)), (401, "bad_signature"), "{v}");
    let long = owner_request_for(&c.owner, addr, "app-1", None, &key, 3_600);
    let (s, v) = post(&c, 0, &long).await;
    assert_eq!((s, code(&v)), (400, "expiry_too_far"), "{v}");

    // What a release carries is sealed: only the one-time key opens it, and it is
    // this operator's partial of the app key.
    let (s, v) = post(&c, 3, &c.owner_request(3, "app-1", None, &key)).await;
    assert_eq!(s, 200, "{v}");
    assert!(v.get("partialSignature").is_none(), "{v}");
    let sealed = hex::decode(
        v["encryptedPartialSignature"]
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
    )
    .unwrap();
    let version = v["version"].as_u64().unwrap();
    let aad = kms_protocol::release::partial_aad("app-1", version, &c.members[3].address);
    let opened = sk
        .open(&sealed, kms_crypto::sealed::APP_SIGN_INFO, &aad)
        .unwrap();
    let partial = G1Point::from_compressed(opened.as_slice().try_into().unwrap()).unwrap();
    let x = evaluation_point(&c.members[3].address).unwrap();
    let public_share = mk.commitments.evaluate(&x);
    assert!(tbls::verify_partial(
        &public_share,
        &tbls::hash_app_id(b"app-1"),
        &partial
    ));
    assert!(
        OneTimeSecretKey::generate(&mut OsRng)
            .open(&sealed, kms_crypto::sealed::APP_SIGN_INFO, &aad)
            .is_err()
    );

    // The audit log: one line per release, refusals with their code, no secrets.
    let lines = audit_lines(&c, 0);
    // app-1 and tee-a through the client, and `good` above.
    assert_eq!(released(&lines), 3, "{lines:#?}");
    for l in &lines {
        let text = l.to_string();
        for secret in [
            hex::encode(&sealed),
            hex::encode(partial.to_compressed()),
            hex::encode(owned.to_bytes()),
        ] {
            assert!(!text.contains(&secret), "a secret in the audit log: {text}");
        }
        assert!(l["time"].as_u64().unwrap() > 0);
        assert!(l["prev"].as_str().unwrap().len() == 64);
    }
    let owner_line = lines
        .iter()
        .find(|l| l["result"] == "released" && l["method"] == "owner")
        .unwrap();
    assert_eq!(owner_line["app_id"], "app-1");
    assert_eq!(owner_line["version"], v1);
    assert_eq!(
        owner_line["principal"]["owner"]["address"],
        json!(c.owner.address())
    );
    assert!(
        owner_line["caller"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let tee_line = lines
        .iter()
        .find(|l| l["result"] == "released" && l["method"] == "attestation")
        .unwrap();
    assert_eq!(tee_line["app_id"], "tee-a");
    assert_eq!(
        tee_line["principal"]["attested"]["measurements"]["mrtd"],
        json!(hex::encode(simulated_measurements("build-a").mrtd))
    );
    for refused in [
        "bad_signature",
        "expired",
        "nonce_reused",
        "method_not_allowed",
    ] {
        assert!(
            lines.iter().any(|l| l["result"] == refused),
            "no {refused} line: {lines:#?}"
        );
    }
    let metrics = c.metrics_text(0).await;
    assert!(
        metrics.contains(
            "kms_key_releases_total{endpoint=\"app_sign\",method=\"owner\",result=\"released\"} 2"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "kms_key_releases_total{endpoint=\"app_sign\",method=\"attestation\",result=\"released\"} 1"
        ),
        "{metrics}"
    );
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_insecure_unauthenticated_mode_is_announced_and_never_yields_an_app_key() {
    let c = Cluster::start_with(4, INTERVAL, PHASE_MS, |cfg| {
        cfg.insecure.unauthenticated_app_sign = true;
    })
    .await;
    let all = [0, 1, 2, 3];
    c.wait_for_version(&all, 0, Duration::from_secs(INTERVAL * 4 + 20))
        .await;
    let h = c.health(0).await.unwrap();
    for mode in [
        "unauthenticated-app-sign",
        "attestation-insecure-dev",
        "plaintext-keys",
    ] {
        assert!(h.insecure_modes.iter().any(|m| m == mode), "{h:?}");
    }
    let (s, v) = post(&c, 0, &json!({ "appID": "app-1" })).await;
    assert_eq!(s, 200, "{v}");
    let r: SignResponse = serde_json::from_value(v).unwrap();
    let mk = client(&c, &all).master_public_key().await.unwrap();
    let x = evaluation_point(&c.members[0].address).unwrap();
    let public_share: G2Point = mk.commitments.evaluate(&x);
    // A partial in the development domain, not of the app key.
    assert!(tbls::verify_partial(
        &public_share,
        &SigningDomain::InsecureDev.hash(b"app-1"),
        &r.partial_signature
    ));
    assert!(!tbls::verify_partial(
        &public_share,
        &tbls::hash_app_id(b"app-1"),
        &r.partial_signature
    ));
    // Nothing of it was recorded as a key release.
    assert_eq!(released(&audit_lines(&c, 0)), 0);
    c.shutdown().await;
}

//! Clusters of real nodes on 127.0.0.1: DKG on the wall clock, the client CLI against
//! them (pubkey, app-key, encrypt/decrypt), a reshare that adds two operators and
//! removes one, a node stopped and restarted.

mod common;

use std::time::Duration;

use common::Cluster;

const INTERVAL: u64 = 4;
const PHASE_MS: u64 = 500;

fn timeout(sessions: u64) -> Duration {
    Duration::from_secs(INTERVAL * (sessions + 3) + 20)
}

async fn dkg_then_reshare_with_joins_and_leaves(n: usize) {
    let mut c = Cluster::start(n, INTERVAL, PHASE_MS).await;
    let all: Vec<usize> = (0..n).collect();
    let v1 = c.wait_for_version(&all, 0, timeout(3)).await;
    let urls = c.urls(&all);

    let pk: serde_json::Value =
        serde_json::from_slice(&c.cli(&urls, &["pubkey"]).await.unwrap()).unwrap();
    let mpk = pk["masterPublicKey"].as_str().unwrap().to_string();
    assert_eq!(mpk.len(), 2 + 2 * 96);
    let key1 = String::from_utf8(
        c.cli(&urls, &["app-key", "--app-id", "app-1"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(key1.trim().len(), 2 + 2 * 48);

    // Encrypt and decrypt through files, as an application would.
    let dir = tempfile::tempdir().unwrap();
    let (pt, ct, back) = (
        dir.path().join("pt"),
        dir.path().join("ct"),
        dir.path().join("back"),
    );
    std::fs::write(&pt, b"attack at dawn").unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    c.cli(
        &urls,
        &[
            "encrypt",
            "--app-id",
            "app-1",
            "--in",
            &s(&pt),
            "--out",
            &s(&ct),
        ],
    )
    .await
    .unwrap();
    c.cli(
        &urls,
        &[
            "decrypt",
            "--app-id",
            "app-1",
            "--in",
            &s(&ct),
            "--out",
            &s(&back),
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"attack at dawn");
    // Another app cannot decrypt it.
    assert!(
        c.cli(
            &urls,
            &[
                "decrypt",
                "--app-id",
                "app-2",
                "--in",
                &s(&ct),
                "--out",
                &s(&back)
            ]
        )
        .await
        .is_err()
    );

    // Reshare: two operators join, operator 0 leaves.
    let a = c.add_member(PHASE_MS).await;
    let b = c.add_member(PHASE_MS).await;
    let new_set: Vec<usize> = (1..n).chain([a, b]).collect();
    c.set_operators(&new_set);
    let v2 = c.wait_for_version(&new_set, v1, timeout(4)).await;
    assert!(v2 > v1);
    let new_urls = c.urls(&new_set);
    let pk2: serde_json::Value =
        serde_json::from_slice(&c.cli(&new_urls, &["pubkey"]).await.unwrap()).unwrap();
    assert_eq!(
        pk2["masterPublicKey"], pk["masterPublicKey"],
        "the master public key never changes"
    );
    assert_eq!(pk2["operators"].as_array().unwrap().len(), new_set.len());
    let key2 = String::from_utf8(
        c.cli(&new_urls, &["app-key", "--app-id", "app-1"])
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(key1, key2, "the same app key before and after the reshare");
    c.cli(
        &new_urls,
        &[
            "decrypt",
            "--app-id",
            "app-1",
            "--in",
            &s(&ct),
            "--out",
            &s(&back),
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"attack at dawn");
    // An operator that stayed reports both versions at /versions, newest (active)
    // first: the others find the newest agreed version there even if a later
    // session diverged.
    let versions: Vec<kms_protocol::api::PubkeyResponse> = c.get_json(1, "/versions").await;
    let listed: Vec<(u64, bool)> = versions.iter().map(|v| (v.version, v.is_active)).collect();
    assert_eq!(listed[..2], [(v2, true), (v1, false)], "{listed:?}");
    assert!(
        versions
            .iter()
            .all(|v| v.operator_address == c.members[1].address)
    );
    assert_eq!(
        c.pubkey(1).await.unwrap().commitments,
        versions[0].commitments
    );
    // A member that joined in the reshare holds only the new version.
    let joined: Vec<kms_protocol::api::PubkeyResponse> = c.get_json(a, "/versions").await;
    assert_eq!(joined.len(), 1);
    assert_eq!(joined[0].version, v2);
    // The removed operator is not in the new version.
    let removed = c.members[0].address;
    assert!(!pk2["operators"].as_array().unwrap().iter().any(|o| {
        o.as_str()
            .unwrap()
            .eq_ignore_ascii_case(&removed.to_checksum())
    }));
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_nodes_dkg_client_and_reshare() {
    dkg_then_reshare_with_joins_and_leaves(4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seven_nodes_dkg_client_and_reshare() {
    dkg_then_reshare_with_joins_and_leaves(7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stopped_node_does_not_stop_decryption_and_serves_its_stored_version_after_restart() {
    let n = 7;
    let mut c = Cluster::start(n, INTERVAL, PHASE_MS).await;
    let all: Vec<usize> = (0..n).collect();
    c.wait_for_version(&all, 0, timeout(3)).await;
    let urls = c.urls(&all);
    let dir = tempfile::tempdir().unwrap();
    let ct = dir.path().join("ct");
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let pt = dir.path().join("pt");
    std::fs::write(&pt, b"still here").unwrap();
    c.cli(
        &urls,
        &[
            "encrypt",
            "--app-id",
            "svc",
            "--in",
            &s(&pt),
            "--out",
            &s(&ct),
        ],
    )
    .await
    .unwrap();

    let before = c.pubkey(3).await.expect("node 3 has a key");
    c.stop(3).await;
    let back = dir.path().join("back");
    c.cli(
        &urls,
        &[
            "decrypt",
            "--app-id",
            "svc",
            "--in",
            &s(&ct),
            "--out",
            &s(&back),
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"still here");

    c.restart(3).await;
    let after = c.pubkey(3).await.expect("restarted node answers");
    assert_eq!(
        after.version, before.version,
        "the restarted node serves its stored version"
    );
    assert_eq!(after.commitments, before.commitments);
    // And it takes part in the next session again.
    let v = c.wait_for_version(&all, before.version, timeout(4)).await;
    assert!(v > before.version);
    c.cli(
        &urls,
        &[
            "decrypt",
            "--app-id",
            "svc",
            "--in",
            &s(&ct),
            "--out",
            &s(&back),
        ],
    )
    .await
    .unwrap();
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_outvotes_a_node_that_lies_about_the_key_and_its_partials() {
    use axum::routing::{get, post};
    use kms_crypto::{G1Point, G2Point, Scalar};
    use kms_protocol::api::{PubkeyResponse, SignRequest};

    let c = Cluster::start(4, INTERVAL, PHASE_MS).await;
    let all: Vec<usize> = (0..4).collect();
    c.wait_for_version(&all, 0, timeout(3)).await;
    let honest = c.pubkey(0).await.unwrap();
    // The liar impersonates operator 0: a newer version with another polynomial, and
    // partial signatures that do not verify.
    let mut rng = rand_core::OsRng;
    let fake: Vec<G2Point> = (0..honest.threshold)
        .map(|_| G2Point::generator().mul(&Scalar::random(&mut rng)))
        .collect();
    let lie = PubkeyResponse {
        commitments: fake,
        version: honest.version + 1_000,
        ..honest.clone()
    };
    let bad_partial = G1Point::generator().mul(&Scalar::random(&mut rng));
    let liar_operator = honest.operator_address;
    let app = axum::Router::new()
        .route("/pubkey", get(move || async move { axum::Json(lie) }))
        .route(
            "/app/sign",
            post(move |axum::Json(req): axum::Json<SignRequest>| async move {
                // Claims whatever version is asked for, with a partial that does not
                // verify, properly sealed to the caller's one-time key.
                let version = req.attestation_time.unwrap_or_default();
                let key = kms_crypto::sealed::OneTimePublicKey::from_bytes(
                    req.auth.as_ref().expect("authorized").response_key().0,
                )
                .unwrap();
                let sealed = kms_crypto::sealed::seal(
                    &key,
                    kms_crypto::sealed::APP_SIGN_INFO,
                    &kms_protocol::release::partial_aad(&req.app_id, version, &liar_operator),
                    &bad_partial.to_compressed(),
                    &mut rand_core::OsRng,
                )
                .unwrap();
                axum::Json(kms_protocol::api::SealedSignResponse {
                    operator_address: liar_operator,
                    version,
                    encrypted_partial_signature: format!("0x{}", hex::encode(sealed)),
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let liar: url::Url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let mut urls = vec![liar];
    urls.extend(c.urls(&all));
    let pk: serde_json::Value =
        serde_json::from_slice(&c.cli(&urls, &["pubkey"]).await.unwrap()).unwrap();
    assert_eq!(
        pk["masterPublicKey"],
        serde_json::to_value(honest.commitments[0]).unwrap()
    );
    assert!(
        pk["version"].as_u64().unwrap() < honest.version + 1_000,
        "the lie is not agreed"
    );
    let dir = tempfile::tempdir().unwrap();
    let (pt, ct, back) = (
        dir.path().join("pt"),
        dir.path().join("ct"),
        dir.path().join("back"),
    );
    std::fs::write(&pt, b"not fooled").unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    c.cli(
        &urls,
        &[
            "encrypt",
            "--app-id",
            "a",
            "--in",
            &s(&pt),
            "--out",
            &s(&ct),
        ],
    )
    .await
    .unwrap();
    c.cli(
        &urls,
        &[
            "decrypt",
            "--app-id",
            "a",
            "--in",
            &s(&ct),
            "--out",
            &s(&back),
        ],
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&back).unwrap(), b"not fooled");
    c.shutdown().await;
}

/// Operators talk only TLS, and only to peers whose certificate chains to the
/// configured CA: whoever answers at a listed operator's URL with a certificate from
/// another CA is sent no share, while the others finish the DKG. Clients without the
/// CA, or over plain HTTP, get nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_only_talk_tls_to_peers_certified_by_their_ca() {
    let mut c = Cluster::start(4, INTERVAL, PHASE_MS).await;
    let rogue_ca = kms_node::tls::DevCa::generate().unwrap();
    let rogue = c.add_member_with(PHASE_MS, Some(&rogue_ca), None).await;
    let honest = [0, 1, 2, 3];
    let all = [0, 1, 2, 3, rogue];
    c.set_operators(&all);
    // The honest nodes cannot fetch the rogue's attestation over TLS, so they leave
    // it out and run the DKG among themselves.
    let v = c.wait_for_version(&honest, 0, timeout(3)).await;
    // The session's players are the listed operators; the roster, made of the keys
    // of attested peers, leaves the rogue out: it neither dealt nor got a share.
    assert_eq!(c.pubkey(0).await.unwrap().operators.len(), 5);
    assert!(!qualified(&c, 0).contains(&c.members[rogue].address));
    // The cluster's CA does not vouch for the rogue node ...
    let r = c
        .http
        .get(c.members[rogue].url.join("/pubkey").unwrap())
        .send()
        .await;
    assert!(
        r.is_err(),
        "the cluster's CA does not vouch for the rogue node"
    );
    // ... which is up but received no share, so holds no key.
    let rogue_ca_file = c.dir.path().join("rogue-ca.crt");
    std::fs::write(&rogue_ca_file, rogue_ca.cert_pem()).unwrap();
    let via_rogue_ca = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .tls_certs_only(kms_node::tls::client_roots(&rogue_ca_file).unwrap())
        .build()
        .unwrap();
    let r = via_rogue_ca
        .get(c.members[rogue].url.join("/pubkey").unwrap())
        .send()
        .await
        .expect("the rogue node answers over its own TLS");
    assert!(!r.status().is_success(), "rogue node holds a key: {r:?}");
    // A client that trusts only the system roots cannot talk to the cluster, and
    // plain HTTP on a TLS port gets no answer.
    let system = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    assert!(
        system
            .get(c.members[0].url.join("/pubkey").unwrap())
            .send()
            .await
            .is_err()
    );
    let mut plain = c.members[0].url.clone();
    plain.set_scheme("http").unwrap();
    let r = system.get(plain.join("/pubkey").unwrap()).send().await;
    assert!(
        !r.is_ok_and(|r| r.status().is_success()),
        "no API over plain HTTP"
    );
    // The honest cluster still serves applications.
    let key = c
        .cli(&c.urls(&honest), &["app-key", "--app-id", "tls"])
        .await
        .unwrap();
    assert_eq!(String::from_utf8(key).unwrap().trim().len(), 2 + 96);
    assert!(v > 0);
    c.shutdown().await;
}

/// Peers attest each other before a session: a listed operator whose (simulated)
/// quote shows an image the policy does not allow is left out of the DKG, counted in
/// `/metrics`, and the others finish without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_running_another_image_is_left_out_of_the_dkg() {
    let mut c = Cluster::start(4, INTERVAL, PHASE_MS).await;
    let rogue = c
        .add_member_with(PHASE_MS, None, Some("modified-image"))
        .await;
    let honest = [0, 1, 2, 3];
    let all = [0, 1, 2, 3, rogue];
    c.set_operators(&all);
    c.wait_for_version(&honest, 0, timeout(3)).await;
    let pk = c.pubkey(0).await.unwrap();
    // The session's players are the listed operators; the roster (keys of attested
    // peers only) leaves the rogue out, so it neither dealt nor got a share.
    assert_eq!(pk.operators.len(), 5);
    assert!(
        !qualified(&c, 0).contains(&c.members[rogue].address),
        "the rogue dealt"
    );
    assert!(
        c.pubkey(rogue).await.is_none(),
        "the rogue node holds no key"
    );
    // The refusal is counted at the first boundary that lists the rogue (the DKG may
    // have run on a boundary before the peering file named it).
    let started = std::time::Instant::now();
    loop {
        let metrics = c.metrics_text(0).await;
        if metrics.lines().any(|l| {
            l.starts_with("kms_peer_attestation_failures_total{reason=\"measurement_not_allowed\"}")
        }) {
            break;
        }
        assert!(started.elapsed() < timeout(2), "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        c.pubkey(rogue).await.is_none(),
        "the rogue node holds no key"
    );
    // /attestation serves the node's simulated quote, bound to its key.
    let a: serde_json::Value = c.get_json(0, "/attestation").await;
    assert_eq!(a["simulated"], true);
    assert_eq!(a["evidence"]["method"], "simulated");
    c.shutdown().await;
}

/// The qualified dealers of node `i`'s active version.
fn qualified(c: &Cluster, i: usize) -> Vec<kms_crypto::OperatorAddress> {
    c.members[i]
        .node
        .as_ref()
        .expect("node running")
        .shared()
        .active_version()
        .expect("an active version")
        .qualified_dealers
        .clone()
}

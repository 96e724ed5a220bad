//! Remote unlock of a sealed operator key (`operator.unlock = "remote"`): the
//! exchange over real HTTP on 127.0.0.1, hostile requests against the locked node,
//! and the `kms-node` binary end to end (locked → `kms-node unlock` → serving HTTPS
//! with a sealed TLS key). Simulated (insecure-dev) quotes stand in for TDX ones.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kms_crypto::OperatorAddress;
use kms_crypto::signer::SignatureScheme;
use kms_node::OperatorKeys;
use kms_node::config::{AttestationConfig, AttestationMode, NodeConfig, UnlockMode};
use kms_node::peering::{LocalPeeringDataFetcher, Peer};
use kms_node::tls::{DevCa, TLS_KEY_PURPOSE};
use kms_node::unlock::challenges::{CHALLENGE_BURST, CHALLENGE_TTL_MS};
use kms_node::unlock::{
    UnlockClientError, UnlockPolicy, VerifiedChallenge, unlock_remote, wait_for_unlock_on,
    wait_for_unlock_with,
};

const PASSPHRASE: &str = "correct horse battery staple";
const IDENTITY: &str = "unlock-test-image";
/// Bound on every wait.
const DEADLINE: Duration = Duration::from_secs(60);

fn dev_policy(identity: &str, expect: Option<OperatorAddress>) -> UnlockPolicy {
    let a = AttestationConfig {
        mode: AttestationMode::InsecureDev,
        simulated_identity: identity.to_string(),
        ..AttestationConfig::default()
    };
    let (verifier, policy) = kms_node::attest::verifier_and_policy(&a).unwrap();
    UnlockPolicy {
        verifier,
        policy,
        expect_address: expect,
    }
}

fn locked_config(dir: &Path) -> (NodeConfig, OperatorAddress) {
    let keys = OperatorKeys::generate(SignatureScheme::Bn254);
    let key_file = dir.join("operator.key");
    keys.write(&key_file, Some(PASSPHRASE)).unwrap();
    let mut cfg = NodeConfig::default();
    cfg.operator.key_file = key_file;
    cfg.operator.unlock = UnlockMode::Remote;
    cfg.attestation.mode = AttestationMode::InsecureDev;
    cfg.attestation.simulated_identity = IDENTITY.into();
    (cfg, keys.address())
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn post_json(url: &str, body: serde_json::Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn a_locked_node_opens_its_key_only_for_an_attested_exchange_with_the_right_passphrase() {
    kms_node::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, address) = locked_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base: url::Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let node_cfg = cfg.clone();
    let (_stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let locked = tokio::spawn(async move {
        wait_for_unlock_on(listener, &node_cfg, async move {
            let _ = stop_rx.await;
        })
        .await
    });
    let unlock_url = base.join("unlock").unwrap().to_string();

    // Locked: /health says so, with the simulated attestation announced.
    let health: serde_json::Value = reqwest::get(base.join("health").unwrap())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "locked");
    assert_eq!(health["ready"], false);
    assert!(
        health["insecureModes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m == "attestation-insecure-dev"),
        "{health}"
    );

    // Hostile requests: no challenge yet, malformed fields, wrong content type.
    let junk = serde_json::json!({
        "node_public_key": "00".repeat(32), "public_key": "11".repeat(32),
        "nonce": "22".repeat(12), "ciphertext": "33".repeat(40),
    });
    assert_eq!(
        post_json(&unlock_url, junk.clone()).await,
        (409, "no_challenge".into())
    );
    let mut short = junk.clone();
    short["nonce"] = "22".into();
    assert_eq!(post_json(&unlock_url, short).await.0, 400);
    let unknown_field = serde_json::json!({"passphrase": PASSPHRASE});
    assert_eq!(post_json(&unlock_url, unknown_field).await.0, 400);
    let too_big = serde_json::json!({
        "node_public_key": "00".repeat(32), "public_key": "11".repeat(32),
        "nonce": "22".repeat(12), "ciphertext": "33".repeat(3000),
    });
    assert_eq!(post_json(&unlock_url, too_big).await.0, 413);
    let text = reqwest::Client::new()
        .post(&unlock_url)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status().as_u16(), 415);

    // A challenge answered with garbage spends it: the same node key is then stale.
    let challenge: serde_json::Value = reqwest::get(&unlock_url)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        challenge["operator_address"],
        serde_json::to_value(address).unwrap()
    );
    assert_eq!(challenge["simulated"], true);
    let mut forged = junk.clone();
    forged["node_public_key"] = challenge["public_key"].clone();
    assert_eq!(
        post_json(&unlock_url, forged.clone()).await,
        (400, "undecryptable".into())
    );
    assert_eq!(
        post_json(&unlock_url, forged).await,
        (409, "no_challenge".into())
    );

    // The operator refuses a node of another image, and a node holding another
    // operator's key: the passphrase is never sent.
    let other_image =
        unlock_remote(&base, PASSPHRASE, &dev_policy("other-image", None), now()).await;
    assert!(
        matches!(other_image, Err(UnlockClientError::Attestation { .. })),
        "{other_image:?}"
    );
    let someone_else = OperatorAddress::from_bytes([9; 20]);
    let wrong_operator = unlock_remote(
        &base,
        PASSPHRASE,
        &dev_policy(IDENTITY, Some(someone_else)),
        now(),
    )
    .await;
    assert!(
        matches!(wrong_operator, Err(UnlockClientError::WrongOperator { .. })),
        "{wrong_operator:?}"
    );

    // A wrong passphrase: 403, still locked.
    let wrong = unlock_remote(
        &base,
        "not the passphrase",
        &dev_policy(IDENTITY, None),
        now(),
    )
    .await;
    match wrong {
        Err(UnlockClientError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "wrong_passphrase"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!locked.is_finished());

    // The right one: the node opens its key and stops serving the locked endpoints.
    let (opened, td) = unlock_remote(
        &base,
        PASSPHRASE,
        &dev_policy(IDENTITY, Some(address)),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(opened, address);
    assert_eq!(
        td.measurements(),
        kms_node::attest::simulated_measurements(IDENTITY)
    );
    let unlocked = tokio::time::timeout(DEADLINE, locked)
        .await
        .expect("the locked server returns")
        .unwrap()
        .unwrap()
        .expect("unlocked");
    assert_eq!(unlocked.keys.address(), address);
    assert_eq!(unlocked.passphrase.as_str(), PASSPHRASE);
}

/// A clock the test moves.
struct TestClock(std::sync::atomic::AtomicU64);

impl kms_node::Clock for TestClock {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl TestClock {
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

fn refusal(r: Result<OperatorAddress, UnlockClientError>) -> (u16, String) {
    match r {
        Err(UnlockClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn challenges_outlive_floods_of_new_ones_and_are_refused_once_used_or_expired() {
    kms_node::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, address) = locked_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base: url::Url = format!("http://{}/", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    let clock = std::sync::Arc::new(TestClock(1_700_000_000_000.into()));
    let node_cfg = cfg.clone();
    let node_clock = clock.clone();
    let locked = tokio::spawn(async move {
        wait_for_unlock_with(listener, &node_cfg, node_clock, std::future::pending()).await
    });
    let policy = dev_policy(IDENTITY, Some(address));
    let fetch = || VerifiedChallenge::fetch(&base, &policy, now());

    // One challenge left unanswered until just after it expires; three answerable.
    let expiring = fetch().await.unwrap();
    clock.advance(CHALLENGE_TTL_MS - 1_000);
    let operators = fetch().await.unwrap();
    let used = fetch().await.unwrap();

    // A flood from the same address: the rest of its burst, then 429 with the usual
    // error body, and nothing outstanding is replaced.
    let unlock_url = base.join("unlock").unwrap();
    let mut answers = Vec::new();
    for _ in 0..CHALLENGE_BURST + 5 {
        let r = reqwest::get(unlock_url.clone()).await.unwrap();
        let status = r.status().as_u16();
        let body: serde_json::Value = r.json().await.unwrap();
        answers.push((status, body));
    }
    let issued = answers.iter().filter(|(s, _)| *s == 200).count();
    let codes: Vec<_> = answers
        .iter()
        .map(|(s, b)| (*s, b["error"]["code"].clone()))
        .collect();
    assert_eq!(issued, CHALLENGE_BURST as usize - 3, "{codes:?}");
    for (status, body) in &answers[issued..] {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    assert!(!locked.is_finished());

    // A used challenge is refused, whatever the outcome of its first use.
    assert_eq!(
        refusal(used.answer("not the passphrase").await),
        (403, "wrong_passphrase".to_string())
    );
    assert_eq!(
        refusal(used.answer(PASSPHRASE).await),
        (409, "no_challenge".to_string())
    );
    // An expired one is refused even with the right passphrase.
    clock.advance(1_000);
    assert_eq!(
        refusal(expiring.answer(PASSPHRASE).await),
        (409, "expired_challenge".to_string())
    );
    assert!(!locked.is_finished());

    // The operator's challenge, issued before the flood, still opens the key.
    assert_eq!(operators.answer(PASSPHRASE).await.unwrap(), address);
    let unlocked = tokio::time::timeout(DEADLINE, locked)
        .await
        .expect("the locked server returns")
        .unwrap()
        .unwrap()
        .expect("unlocked");
    assert_eq!(unlocked.keys.address(), address);
}

#[tokio::test]
async fn a_locked_node_stops_when_asked_and_refuses_a_plaintext_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, _) = locked_config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outcome = wait_for_unlock_on(listener, &cfg, async {
        tokio::time::sleep(Duration::from_millis(200)).await
    })
    .await
    .unwrap();
    assert!(outcome.is_none());

    let plain = dir.path().join("plain.key");
    OperatorKeys::generate(SignatureScheme::Ecdsa)
        .write(&plain, None)
        .unwrap();
    let mut cfg = cfg;
    cfg.operator.key_file = plain;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = wait_for_unlock_on(listener, &cfg, std::future::pending())
        .await
        .err()
        .expect("refused");
    assert!(e.to_string().contains("not sealed"), "{e}");
}

/// A child process killed when dropped (the test stops it however it ends).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn kms_node() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kms-node"))
}

/// One operator on disk the way a TDX image's data disk holds it: sealed key file,
/// certificate, sealed TLS key, peering file; a config with remote unlock.
fn provision(dir: &Path, port: u16) -> (PathBuf, OperatorAddress, PathBuf) {
    let keys = OperatorKeys::generate(SignatureScheme::Bn254);
    keys.write(&dir.join("operator.key"), Some(PASSPHRASE))
        .unwrap();
    let ca = DevCa::generate().unwrap();
    let (cert, key) = ca.write_node_cert(dir, "tls").unwrap();
    let ca_file = dir.join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    // Seal the TLS key with the CLI, then remove the plaintext.
    let sealed = dir.join("tls.key.sealed");
    let out = kms_node()
        .args(["seal", "--purpose", TLS_KEY_PURPOSE, "--in"])
        .arg(&key)
        .arg("--out")
        .arg(&sealed)
        .env("KMS_OPERATOR_KEY_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&key).unwrap();
    let url: url::Url = format!("https://127.0.0.1:{port}/").parse().unwrap();
    let peers = dir.join("peers.toml");
    LocalPeeringDataFetcher::write(
        &peers,
        &[Peer {
            address: keys.address(),
            public_key: keys.public_key(),
            url,
        }],
    )
    .unwrap();
    let mut cfg = NodeConfig::default();
    cfg.operator.key_file = dir.join("operator.key");
    cfg.operator.unlock = UnlockMode::Remote;
    cfg.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    cfg.peering.file = peers;
    cfg.store.path = dir.join("keys.redb");
    cfg.tls.cert_file = cert;
    cfg.tls.key_file = sealed;
    cfg.tls.ca_file = ca_file.clone();
    cfg.attestation.mode = AttestationMode::InsecureDev;
    cfg.attestation.simulated_identity = IDENTITY.into();
    cfg.validate().unwrap();
    let path = dir.join("node.toml");
    std::fs::write(&path, toml::to_string_pretty(&cfg).unwrap()).unwrap();
    (path, keys.address(), ca_file)
}

#[tokio::test]
async fn the_binary_waits_locked_then_serves_https_with_its_sealed_tls_key() {
    kms_node::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (config, address, ca_file) = provision(dir.path(), port);
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let _node = Running(
        kms_node()
            .args(["run", "--config"])
            .arg(&config)
            .env_remove("KMS_OPERATOR_KEY_PASSPHRASE")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    // Locked, on plain HTTP (the TLS key is sealed under the same passphrase).
    let plain = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{plain}/health")).await {
            let h: serde_json::Value = r.json().await.unwrap();
            assert_eq!(h["status"], "locked");
            break;
        }
        assert!(started.elapsed() < DEADLINE, "the node never listened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The operator's side: the CLI, passphrase on standard input.
    let mut unlock = kms_node()
        .args([
            "unlock",
            "--url",
            &plain,
            "--insecure-dev-identity",
            IDENTITY,
        ])
        .args(["--expect-address", &address.to_string()])
        .env_remove("KMS_OPERATOR_KEY_PASSPHRASE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = unlock.stdin.take().unwrap();
        writeln!(stdin, "{PASSPHRASE}").unwrap();
    }
    let out = unlock.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["unlocked"], serde_json::to_value(address).unwrap());

    // Now the node itself, over HTTPS with the certificate whose key was sealed.
    let ca = std::fs::read(&ca_file).unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .build()
        .unwrap();
    let started = Instant::now();
    let health = loop {
        if let Ok(r) = https
            .get(format!("https://127.0.0.1:{port}/health"))
            .send()
            .await
        {
            break r.json::<serde_json::Value>().await.unwrap();
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the node never served HTTPS: {}",
            std::fs::read_to_string(dir.path().join("node.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(health["status"], "ok");
    assert_eq!(
        health["operatorAddress"],
        serde_json::to_value(address).unwrap()
    );
    let log = std::fs::read_to_string(dir.path().join("node.log")).unwrap();
    assert!(!log.contains(PASSPHRASE));
}

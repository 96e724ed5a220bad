//! Chain mode against a real anvil: the operator set comes from the EigenLayer
//! operator set (mocks with EigenLayer's selectors), sessions start at block numbers
//! divisible by the interval, and every dealer records its commitment hash and ack
//! root in the registry after each session.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use kms_chain::anvil::Anvil;
use kms_chain::{
    ChainConnection, ConnectionOptions, KeyCurve, KmsContracts, LocalTxSigner, SlashingPolicy,
    TxSigner,
};
use kms_crypto::signer::SignatureScheme;
use kms_node::config::{AttestationMode, PeeringSource};
use kms_node::{Node, NodeConfig, OperatorKeys};
use kms_protocol::api::PubkeyResponse;

const INTERVAL_BLOCKS: u64 = 6;

async fn fund(conn: &ChainConnection, to: Address) {
    let amount = U256::from(10u64).pow(U256::from(21));
    let _: () = conn
        .provider()
        .raw_request("anvil_setBalance".into(), (to, amount))
        .await
        .expect("anvil_setBalance");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

async fn pubkey(http: &reqwest::Client, url: &url::Url) -> Option<PubkeyResponse> {
    let r = http.get(url.join("/pubkey").ok()?).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    r.json().await.ok()
}

/// Waits until every node reports the same version newer than `after`.
async fn agreed(
    http: &reqwest::Client,
    urls: &[url::Url],
    after: u64,
    limit: Duration,
) -> PubkeyResponse {
    let start = Instant::now();
    loop {
        let mut answers = Vec::new();
        for u in urls {
            answers.push(pubkey(http, u).await);
        }
        if let Some(Some(first)) = answers.first()
            && first.version > after
            && answers
                .iter()
                .all(|a| a.as_ref().is_some_and(|a| a.version == first.version))
        {
            return first.clone();
        }
        assert!(
            start.elapsed() < limit,
            "no agreed version newer than {after} within {limit:?}: {:?}",
            answers
                .iter()
                .map(|a| a.as_ref().map(|a| a.version))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_from_the_chain_run_dkg_and_reshare_at_block_boundaries() {
    kms_node::install_crypto_provider();
    // The nodes' logs go with the test's output (shown when it fails).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kms_node=info".into()),
        )
        .with_test_writer()
        .try_init();
    // One block a second, so that boundaries come by themselves.
    let Some(anvil) = Anvil::start_with(&["--block-time", "1"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = ChainConnection::read_only(&anvil.url, ConnectionOptions::default()).unwrap();
    let avs_key = Arc::new(LocalTxSigner::from_bytes(&[7u8; 32]).unwrap());
    fund(&bootstrap, avs_key.address()).await;
    let avs_conn =
        ChainConnection::with_signer(&anvil.url, avs_key, ConnectionOptions::default()).unwrap();
    let deployment = kms_chain::deployment::deploy_with_mocks(
        &avs_conn,
        KeyCurve::Bn254,
        1,
        SlashingPolicy::default(),
    )
    .await
    .expect("deploy");
    let deployment_file = dir.path().join("deployment.json");
    std::fs::write(&deployment_file, serde_json::to_vec(&deployment).unwrap()).unwrap();
    let avs = KmsContracts::new(avs_conn, deployment);

    let ca = kms_node::tls::DevCa::generate().unwrap();
    let ca_file = dir.path().join("ca.crt");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let mut starting = Vec::new();
    let mut urls = Vec::new();
    let mut addresses = Vec::new();
    for i in 0..4 {
        let home = dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let keys = OperatorKeys::generate(SignatureScheme::Bn254);
        let key_file = home.join("operator.key");
        keys.write(&key_file, None).unwrap();
        let port = free_port();
        let url: url::Url = format!("https://127.0.0.1:{port}").parse().unwrap();
        // The operator registers its key and socket with its own account.
        let account = Address::from(*keys.address().as_bytes());
        fund(&bootstrap, account).await;
        let secret: [u8; 32] = keys.sealing_secret().try_into().unwrap();
        let op = KmsContracts::new(
            ChainConnection::with_signer(
                &anvil.url,
                Arc::new(LocalTxSigner::from_bytes(&secret).unwrap()),
                ConnectionOptions::default(),
            )
            .unwrap(),
            deployment,
        );
        op.register_operator(&keys.public_key(), url.as_str().trim_end_matches('/'))
            .await
            .expect("register operator");
        let mut cfg = NodeConfig::default();
        cfg.operator.key_file = key_file;
        cfg.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
        cfg.peering.source = PeeringSource::Contract;
        cfg.chain.rpc_url = anvil.url.to_string();
        cfg.chain.deployment_file = deployment_file.clone();
        cfg.chain.interval_blocks = INTERVAL_BLOCKS;
        cfg.chain.poll_ms = 200;
        cfg.schedule.phase_ms = 500;
        cfg.store.path = home.join("keys.redb");
        let (cert, key) = ca.write_node_cert(&home, "tls").unwrap();
        cfg.tls.cert_file = cert;
        cfg.tls.key_file = key;
        cfg.tls.ca_file = ca_file.clone();
        cfg.insecure.plaintext_keys = true;
        cfg.attestation.mode = AttestationMode::InsecureDev;
        cfg.validate().unwrap();
        starting.push((cfg, keys));
        urls.push(url);
        addresses.push(account);
    }
    // All registered first, then all started together, so that the first boundary
    // finds every operator up.
    let mut tasks = Vec::new();
    for (cfg, keys) in starting {
        tasks.push(tokio::spawn(Node::start(cfg, keys)));
    }
    let mut nodes = Vec::new();
    for t in tasks {
        nodes.push(t.await.unwrap().expect("node starts"));
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .tls_certs_only(kms_node::tls::client_roots(&ca_file).unwrap())
        .build()
        .unwrap();

    // DKG at the first boundary block; its session timestamp is that block's time.
    let limit = Duration::from_secs(INTERVAL_BLOCKS * 4 + 30);
    let v1 = agreed(&http, &urls, 0, limit).await;
    assert_eq!(v1.operators.len(), 4);
    assert_eq!(
        v1.operators
            .iter()
            .map(|a| Address::from(*a.as_bytes()))
            .collect::<std::collections::BTreeSet<_>>(),
        addresses.iter().copied().collect(),
        "the session's operators are the on-chain set"
    );
    let head = avs.connection().block(None).await.unwrap();
    assert!(v1.version <= head.timestamp);
    // Every dealer recorded its commitment and ack root for that session.
    let start = Instant::now();
    for a in &addresses {
        loop {
            if let Some(r) = avs.recorded_commitment(v1.version, *a).await.unwrap() {
                assert_ne!(r.ack_merkle_root, alloy::primitives::B256::ZERO);
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no commitment from {a}"
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    // The next boundary reshares to the same master public key.
    let v2 = agreed(&http, &urls, v1.version, limit).await;
    assert_eq!(v2.commitments[0], v1.commitments[0]);
    for n in nodes {
        n.shutdown().await;
    }
    drop(anvil);
}

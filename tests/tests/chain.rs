//! Chain mode against a real anvil: the operator set comes from the EigenLayer
//! operator set (mocks with EigenLayer's selectors), sessions start at block numbers
//! divisible by the interval, every node that activated a version records the agreed
//! outcome in the registry after each session, and fraud evidence becomes on-chain
//! proofs.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy::primitives::{Address, B256};
use kms_chain::anvil::{Anvil, fund};
use kms_chain::{
    ChainConnection, ConnectionOptions, FraudKind, KeyCurve, KmsContracts, LocalTxSigner,
    SlashingPolicy, TxSigner,
};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{OperatorSigner, SignatureScheme};
use kms_node::config::{AttestationMode, PeeringSource};
use kms_node::node::Fault;
use kms_node::{Node, NodeConfig, OperatorKeys, StartOptions};
use kms_protocol::api::PubkeyResponse;
use kms_protocol::dkg::sim::{Deliveries, Outgoing};
use kms_protocol::dkg::wire::{Body, Kind};

const INTERVAL_BLOCKS: u64 = 6;

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

fn eth(a: &OperatorAddress) -> Address {
    Address::from(*a.as_bytes())
}

/// Builds the fault-injection behaviour of the Byzantine node from its identity and
/// every operator's address.
type MakeFault =
    Box<dyn FnOnce(OperatorAddress, Arc<dyn OperatorSigner>, &[OperatorAddress]) -> Fault>;

/// Anvil mining a block a second, the contracts with EigenLayer mocks, and `n` nodes
/// that registered themselves on-chain and read their peers from it.
struct ChainCluster {
    nodes: Vec<Node>,
    /// Each operator's own account on the contracts (what its node sends with).
    accounts: Vec<KmsContracts>,
    urls: Vec<url::Url>,
    addresses: Vec<Address>,
    avs: KmsContracts,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
    _anvil: Anvil,
}

impl ChainCluster {
    /// `None` when anvil is not installed (and CI does not require it).
    async fn start(n: usize, mut byzantine: Option<(usize, MakeFault)>) -> Option<ChainCluster> {
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
        let anvil = Anvil::start_with(&["--block-time", "1"])?;
        let dir = tempfile::tempdir().unwrap();
        let bootstrap =
            ChainConnection::read_only(&anvil.url, ConnectionOptions::default()).unwrap();
        let avs_key = Arc::new(LocalTxSigner::from_bytes(&[7u8; 32]).unwrap());
        fund(&bootstrap, avs_key.address()).await.unwrap();
        let avs_conn =
            ChainConnection::with_signer(&anvil.url, avs_key, ConnectionOptions::default())
                .unwrap();
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
        let keys: Vec<OperatorKeys> = (0..n)
            .map(|_| OperatorKeys::generate(SignatureScheme::Bn254))
            .collect();
        let everyone: Vec<OperatorAddress> = keys.iter().map(|k| k.address()).collect();
        let mut starting = Vec::new();
        let mut accounts = Vec::new();
        let mut urls = Vec::new();
        let mut addresses = Vec::new();
        for (i, keys) in keys.into_iter().enumerate() {
            let home = dir.path().join(format!("node{i}"));
            std::fs::create_dir_all(&home).unwrap();
            let key_file = home.join("operator.key");
            keys.write(&key_file, None).unwrap();
            let port = free_port();
            let url: url::Url = format!("https://127.0.0.1:{port}").parse().unwrap();
            // The operator registers its key and socket with its own account.
            let account = eth(&keys.address());
            fund(&bootstrap, account).await.unwrap();
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
            accounts.push(op);
            let mut cfg = NodeConfig::default();
            cfg.operator.key_file = key_file;
            cfg.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
            cfg.peering.source = PeeringSource::Contract;
            cfg.chain.rpc_url = anvil.url.to_string();
            cfg.chain.deployment_file = deployment_file.clone();
            cfg.chain.interval_blocks = INTERVAL_BLOCKS;
            cfg.chain.poll_ms = 200;
            cfg.schedule.phase_ms = 500;
            // A boundary block's timestamp is whole seconds and a node sees the block
            // up to a poll later: two seconds to notice it, attest the peers and agree.
            cfg.schedule.setup_ms = 2_000;
            cfg.store.path = home.join("keys.redb");
            let (cert, key) = ca.write_node_cert(&home, "tls").unwrap();
            cfg.tls.cert_file = cert;
            cfg.tls.key_file = key;
            cfg.tls.ca_file = ca_file.clone();
            cfg.insecure.plaintext_keys = true;
            cfg.attestation.mode = AttestationMode::InsecureDev;
            cfg.validate().unwrap();
            let mut options = StartOptions::default();
            if let Some((b, _)) = &byzantine
                && *b == i
            {
                let (_, make) = byzantine.take().unwrap();
                options.fault = Some(make(keys.address(), keys.signer(), &everyone));
            }
            starting.push((cfg, keys, options));
            urls.push(url);
            addresses.push(account);
        }
        // All registered first, then all started together, so that the first boundary
        // finds every operator up.
        let mut tasks = Vec::new();
        for (cfg, keys, options) in starting {
            tasks.push(tokio::spawn(Node::start_with(cfg, keys, options)));
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
        Some(ChainCluster {
            nodes,
            accounts,
            urls,
            addresses,
            avs,
            http,
            _dir: dir,
            _anvil: anvil,
        })
    }

    /// Waits until the nodes `among` report the same version newer than `after`.
    async fn agreed(&self, among: &[usize], after: u64, limit: Duration) -> PubkeyResponse {
        let start = Instant::now();
        loop {
            let mut answers = Vec::new();
            for &i in among {
                answers.push(pubkey(&self.http, &self.urls[i]).await);
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

    fn session_limit() -> Duration {
        Duration::from_secs(INTERVAL_BLOCKS * 4 + 30)
    }

    async fn shutdown(self) {
        for n in self.nodes {
            n.shutdown().await;
        }
    }
}

/// Polls `check` every 300 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Four operators from the chain run DKG at a boundary block and reshare at the next.
/// Operator 3's account records another commitment hash than the one its node dealt
/// (written by the test at each boundary, before the node's own record): the other
/// nodes compare the registry with the signed commitments they received and prove
/// the difference on-chain.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operators_from_the_chain_run_dkg_and_reshare_at_block_boundaries() {
    let Some(c) = ChainCluster::start(4, None).await else {
        return;
    };
    let all = [0, 1, 2, 3];
    let liar = c.accounts[3].clone();
    let chain = c.avs.connection().clone();
    let bogus = B256::repeat_byte(0xbb);
    let lying = tokio::spawn(async move {
        let mut last = 0;
        // Bounded: the DKG comes within a few boundaries.
        for _ in 0..600 {
            if let Ok(head) = chain.block(None).await {
                let b = head.number / INTERVAL_BLOCKS * INTERVAL_BLOCKS;
                if b > last
                    && let Ok(boundary) = chain.block(Some(b)).await
                {
                    let _ = liar
                        .submit_commitment(boundary.timestamp, bogus, bogus)
                        .await;
                    last = b;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // DKG at the first boundary block; its session timestamp is that block's time.
    let v1 = c.agreed(&all, 0, ChainCluster::session_limit()).await;
    lying.abort();
    assert_eq!(
        v1.operators.iter().map(eth).collect::<BTreeSet<_>>(),
        c.addresses.iter().copied().collect(),
        "the session's operators are the on-chain set"
    );
    let head = c.avs.connection().block(None).await.unwrap();
    assert!(v1.version <= head.timestamp);
    // Every honest node recorded the one agreed outcome of that session: the same
    // public-polynomial hash and agreed value; the liar's own record changes nothing.
    let mut agreed = BTreeSet::new();
    for a in &c.addresses[..3] {
        let r = eventually("outcome recorded", Duration::from_secs(30), || async {
            c.avs.recorded_commitment(v1.version, *a).await.unwrap()
        })
        .await;
        assert_ne!(r.ack_merkle_root, B256::ZERO);
        assert_ne!(r.commitment_hash, bogus);
        agreed.insert((r.commitment_hash, r.ack_merkle_root));
    }
    assert_eq!(agreed.len(), 1, "honest nodes recorded one outcome");
    let lie = c
        .avs
        .recorded_commitment(v1.version, c.addresses[3])
        .await
        .unwrap();
    assert_eq!(lie.map(|r| r.commitment_hash), Some(bogus));
    // The next boundary reshares to the same master public key.
    let v2 = c
        .agreed(&all, v1.version, ChainCluster::session_limit())
        .await;
    assert_eq!(v2.commitments[0], v1.commitments[0]);
    c.shutdown().await;
}

/// A Byzantine operator (node 4 of 5) sends three players a corrupted share and shows
/// one player another commitment, in every session it deals in. The honest nodes
/// finish every session without it, each submits the proofs it holds, the contract
/// verifies them and punishes once per kind and session (not once per node), and
/// after the third session with fraud the operator is fully slashed and ejected: the
/// next session runs without it, on the same master key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_byzantine_operator_is_proven_slashed_once_per_session_and_ejected() {
    let make: MakeFault = Box::new(|me, _signer, everyone| {
        let mut players: Vec<OperatorAddress> = everyone.to_vec();
        players.sort();
        let honest: Vec<OperatorAddress> = players.iter().copied().filter(|a| *a != me).collect();
        let victims: Vec<usize> = honest[..3]
            .iter()
            .map(|v| players.iter().position(|p| p == v).unwrap())
            .collect();
        let fooled = honest[3];
        Box::new(move |o: &Outgoing<'_>| -> Deliveries {
            if o.kind != Kind::Dealing {
                return vec![(o.message.clone(), 0)];
            }
            let Ok(Body::Dealing(mut d)) = Body::decode(&o.message.payload) else {
                return vec![(o.message.clone(), 0)];
            };
            // Three players get a share off the commitment (each proves it)...
            for &i in &victims {
                let w = kms_crypto::Scalar::from_bytes_be(&d.shareValues[i].0).unwrap();
                d.shareValues[i] = (&w + &kms_crypto::Scalar::one()).to_bytes_be().into();
            }
            // ...and one player another signed dealing than everyone else
            // (equivocation, proven when it fetches the agreed one).
            if o.to == fooled {
                let last = d.shareValues.len() - 1;
                let w = kms_crypto::Scalar::from_bytes_be(&d.shareValues[last].0).unwrap();
                d.shareValues[last] = (&w + &kms_crypto::Scalar::from_u64(2)).to_bytes_be().into();
            }
            vec![(Body::Dealing(d).sign(o.signer), 0)]
        })
    });
    let Some(c) = ChainCluster::start(5, Some((4, make))).await else {
        return;
    };
    let honest = [0, 1, 2, 3];
    let bad = c.addresses[4];
    let limit = ChainCluster::session_limit();
    let mut mpk = None;
    let mut after = 0;
    let mut sessions = Vec::new();
    // Three sessions with fraud: DKG and two reshares, each ending with a key version
    // on the honest nodes.
    for session in 1..=3 {
        let v = c.agreed(&honest, after, limit).await;
        assert_eq!(
            v.operators.len(),
            5,
            "the Byzantine operator is still a player"
        );
        let key = mpk.get_or_insert_with(|| v.commitments[0]);
        assert_eq!(&v.commitments[0], key, "the master key never changes");
        after = v.version;
        sessions.push(v.version);
        if session == 3 {
            // The third session's first accepted proof ejects; the rest are refused.
            break;
        }
        for kind in [FraudKind::InvalidShare, FraudKind::Equivocation] {
            eventually(
                &format!("{kind:?} punished in session {}", v.version),
                Duration::from_secs(30),
                || async {
                    c.avs
                        .is_punished(bad, v.version, kind)
                        .await
                        .unwrap()
                        .then_some(())
                },
            )
            .await;
        }
    }
    let record = eventually("ejection", Duration::from_secs(30), || async {
        let r = c.avs.dealer_record(bad).await.unwrap();
        r.ejected.then_some(r)
    })
    .await;
    assert_eq!(record.fraud_sessions, 3);
    assert!(
        !c.avs.is_member(bad).await.unwrap(),
        "ejected from the operator set"
    );
    // One slash per kind proven in each of the first two sessions (invalid shares,
    // proven by the victims' complaints, and the two dealings), then the full slash —
    // although four honest nodes held proofs.
    let mut punished = 0;
    for session in &sessions[..2] {
        for kind in [FraudKind::InvalidShare, FraudKind::Equivocation] {
            punished += u64::from(c.avs.is_punished(bad, *session, kind).await.unwrap());
        }
    }
    let am = kms_chain::bindings::MockAllocationManager::new(
        c.avs.deployment().allocation_manager,
        c.avs.connection().provider().clone(),
    );
    let slashes = am.slashesOf(bad).call().await.unwrap();
    assert_eq!(
        slashes.to::<u64>(),
        punished + 1,
        "slashed once per kind and session"
    );
    // The next session leaves the ejected operator out and keeps the master key.
    let v = c.agreed(&honest, after, limit).await;
    assert_eq!(
        v.operators.iter().map(eth).collect::<BTreeSet<_>>(),
        c.addresses[..4].iter().copied().collect(),
    );
    assert_eq!(Some(v.commitments[0]), mpk);
    c.shutdown().await;
}

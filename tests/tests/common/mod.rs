//! A cluster of real nodes on 127.0.0.1 (HTTP servers, redb files, the wall clock) in
//! this test process. Every wait is bounded.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kms_crypto::signer::SignatureScheme;
use kms_node::peering::{LocalPeeringDataFetcher, Peer};
use kms_node::{Node, NodeConfig, OperatorKeys};
use kms_protocol::api::{HealthResponse, PubkeyResponse};
use tempfile::TempDir;
use url::Url;

type MakeFault = Box<
    dyn FnOnce(
        kms_crypto::OperatorAddress,
        std::sync::Arc<dyn kms_crypto::signer::OperatorSigner>,
    ) -> kms_node::node::Fault,
>;

/// What a cluster changes in every member's configuration.
pub type ConfigTweak = std::sync::Arc<dyn Fn(&mut NodeConfig) + Send + Sync>;

/// One operator of the cluster: its config (with the port it bound) and, while it
/// runs, the node.
pub struct Member {
    pub cfg: NodeConfig,
    pub key_file: PathBuf,
    pub node: Option<Node>,
    pub url: Url,
    pub address: kms_crypto::OperatorAddress,
    pub public_key: kms_crypto::signer::OperatorPublicKey,
}

pub struct Cluster {
    pub dir: TempDir,
    /// The cluster's CA: every node's certificate chains to it, every node and the
    /// client trust only it.
    pub ca: kms_node::tls::DevCa,
    pub ca_file: PathBuf,
    pub members: Vec<Member>,
    pub interval_secs: u64,
    /// The owner of the apps [`OWNED_APPS`] registered at start (`apps_file()`).
    pub owner: std::sync::Arc<kms_crypto::signer::ecdsa::EcdsaSigner>,
    /// Applied to every member's configuration before it starts.
    pub tweak: Option<ConfigTweak>,
    pub http: reqwest::Client,
    /// Where every node's session boundaries come from (`None`: the wall clock).
    pub boundaries: Option<std::sync::Arc<dyn kms_node::schedule::BoundarySource>>,
}

impl Cluster {
    /// Starts `n` nodes and lists all of them in the peering file.
    pub async fn start(n: usize, interval_secs: u64, phase_ms: u64) -> Cluster {
        Self::start_inner(n, interval_secs, phase_ms, None, None).await
    }

    /// As [`Cluster::start`], with `tweak` applied to every member's configuration.
    pub async fn start_with(
        n: usize,
        interval_secs: u64,
        phase_ms: u64,
        tweak: impl Fn(&mut NodeConfig) + Send + Sync + 'static,
    ) -> Cluster {
        Self::start_inner(
            n,
            interval_secs,
            phase_ms,
            Some(std::sync::Arc::new(tweak)),
            None,
        )
        .await
    }

    /// As [`Cluster::start`], every node (restarted ones too) taking its session
    /// boundaries from `boundaries` instead of the wall clock.
    pub async fn start_with_boundaries(
        n: usize,
        interval_secs: u64,
        phase_ms: u64,
        boundaries: std::sync::Arc<dyn kms_node::schedule::BoundarySource>,
    ) -> Cluster {
        Self::start_inner(n, interval_secs, phase_ms, None, Some(boundaries)).await
    }

    async fn start_inner(
        n: usize,
        interval_secs: u64,
        phase_ms: u64,
        tweak: Option<ConfigTweak>,
        boundaries: Option<std::sync::Arc<dyn kms_node::schedule::BoundarySource>>,
    ) -> Cluster {
        kms_node::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = kms_node::tls::DevCa::generate().expect("CA");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .no_proxy()
            .tls_certs_only(kms_node::tls::client_roots(&ca_file).unwrap())
            .build()
            .expect("client");
        let owner = std::sync::Arc::new(kms_crypto::signer::ecdsa::EcdsaSigner::random(
            &mut rand_core::OsRng,
        ));
        let mut c = Cluster {
            dir,
            ca,
            ca_file,
            members: Vec::new(),
            interval_secs,
            http,
            owner,
            tweak,
            boundaries,
        };
        c.register_owned_apps("");
        for _ in 0..n {
            c.add_member(phase_ms).await;
        }
        let all: Vec<usize> = (0..n).collect();
        c.set_operators(&all);
        c
    }

    pub fn peers_file(&self) -> PathBuf {
        self.dir.path().join("peers.toml")
    }

    /// The nodes' `/secrets` app registry (`[secrets] apps_file`), re-read every 2 s.
    pub fn apps_file(&self) -> PathBuf {
        self.dir.path().join("apps.toml")
    }

    /// The owner's key file (the CLI's `--owner-key`).
    pub fn owner_key_file(&self) -> PathBuf {
        self.dir.path().join("owner.key")
    }

    /// Writes the app registry: every app of [`OWNED_APPS`] owned by [`Cluster::owner`],
    /// then `more` (TOML of further `[[apps]]`). Also writes the owner's key file.
    pub fn register_owned_apps(&self, more: &str) {
        let key = format!("0x{}\n", hex::encode(*self.owner.secret_bytes()));
        std::fs::write(self.owner_key_file(), key).unwrap();
        let mut text = String::new();
        for app in OWNED_APPS {
            text.push_str(&format!(
                "[[apps]]\napp_id = \"{app}\"\nowner = \"{}\"\n",
                self.owner.address()
            ));
        }
        text.push_str(more);
        std::fs::write(self.apps_file(), text).unwrap();
    }

    /// An owner-signed `/app/sign` body for node `i`, sealed to `key`.
    pub fn owner_request(
        &self,
        i: usize,
        app: &str,
        attestation_time: Option<u64>,
        key: &kms_crypto::sealed::OneTimePublicKey,
    ) -> serde_json::Value {
        owner_request_for(
            &self.owner,
            self.members[i].address,
            app,
            attestation_time,
            key,
            60,
        )
    }

    /// Starts one more node (not yet in the peering file). Returns its index.
    pub async fn add_member(&mut self, phase_ms: u64) -> usize {
        self.add_member_with(phase_ms, None, None).await
    }

    /// As [`Cluster::add_member`], with a TLS certificate from `ca` instead of the
    /// cluster's CA, and/or a simulated image `identity` other than the cluster's
    /// (nodes the others must not talk to).
    pub async fn add_member_with(
        &mut self,
        phase_ms: u64,
        ca: Option<&kms_node::tls::DevCa>,
        identity: Option<&str>,
    ) -> usize {
        self.add_member_inner(phase_ms, ca, identity, None, None)
            .await
    }

    /// As [`Cluster::add_member`], for a Byzantine operator: `make` gets its address
    /// and signer and returns what rewrites every protocol message it sends.
    pub async fn add_byzantine_member(
        &mut self,
        phase_ms: u64,
        make: impl FnOnce(
            kms_crypto::OperatorAddress,
            std::sync::Arc<dyn kms_crypto::signer::OperatorSigner>,
        ) -> kms_node::node::Fault
        + 'static,
    ) -> usize {
        self.add_member_inner(phase_ms, None, None, Some(Box::new(make)), None)
            .await
    }

    /// As [`Cluster::add_byzantine_member`], for a member whose host also holds every
    /// incoming protocol message for `inbound_delay` (an honest operator behind a slow
    /// network when `make` only delays what it sends).
    pub async fn add_faulty_member(
        &mut self,
        phase_ms: u64,
        make: impl FnOnce(
            kms_crypto::OperatorAddress,
            std::sync::Arc<dyn kms_crypto::signer::OperatorSigner>,
        ) -> kms_node::node::Fault
        + 'static,
        inbound_delay: Option<Duration>,
    ) -> usize {
        self.add_member_inner(phase_ms, None, None, Some(Box::new(make)), inbound_delay)
            .await
    }

    async fn add_member_inner(
        &mut self,
        phase_ms: u64,
        ca: Option<&kms_node::tls::DevCa>,
        identity: Option<&str>,
        fault: Option<MakeFault>,
        inbound_delay: Option<Duration>,
    ) -> usize {
        kms_node::install_crypto_provider();
        let i = self.members.len();
        let home = self.dir.path().join(format!("node{i}"));
        std::fs::create_dir_all(&home).unwrap();
        let key_file = home.join("operator.key");
        let keys = OperatorKeys::generate(SignatureScheme::Bn254);
        keys.write(&key_file, None).unwrap();
        let mut cfg = NodeConfig::default();
        cfg.operator.key_file = key_file.clone();
        cfg.server.listen = "127.0.0.1:0".parse().unwrap();
        cfg.peering.file = self.peers_file();
        cfg.schedule.interval_secs = self.interval_secs;
        cfg.schedule.phase_ms = phase_ms;
        cfg.schedule.setup_ms = phase_ms;
        cfg.store.path = home.join("keys.redb");
        let (cert, key) = ca
            .unwrap_or(&self.ca)
            .write_node_cert(&home, "tls")
            .unwrap();
        cfg.tls.cert_file = cert;
        cfg.tls.key_file = key;
        cfg.tls.ca_file = self.ca_file.clone();
        cfg.insecure.plaintext_keys = true;
        cfg.attestation.mode = kms_node::config::AttestationMode::InsecureDev;
        if let Some(id) = identity {
            cfg.attestation.simulated_identity = id.to_string();
        }
        cfg.transport.request_timeout_ms = 2_000;
        // `/secrets` app registry; absent until a test writes it (`apps_file()`).
        cfg.secrets.apps_file = self.apps_file();
        if let Some(t) = &self.tweak {
            t(&mut cfg);
        }
        cfg.validate().unwrap();
        let address = keys.address();
        let public_key = keys.public_key();
        let options = kms_node::StartOptions {
            fault: fault.map(|make| make(keys.address(), keys.signer())),
            inbound_delay,
            boundaries: self.boundaries.clone(),
            ..Default::default()
        };
        let node = Node::start_with(cfg.clone(), keys, options)
            .await
            .expect("node starts");
        // Restarts bind the same port.
        cfg.server.listen = node.local_addr();
        let url = node.url();
        self.members.push(Member {
            cfg,
            key_file,
            node: Some(node),
            url,
            address,
            public_key,
        });
        i
    }

    /// Writes the peering file with the members at `idx`.
    pub fn set_operators(&self, idx: &[usize]) {
        let peers: Vec<Peer> = idx
            .iter()
            .map(|&i| {
                let m = &self.members[i];
                Peer {
                    address: m.address,
                    public_key: m.public_key.clone(),
                    url: m.url.clone(),
                }
            })
            .collect();
        LocalPeeringDataFetcher::write(&self.peers_file(), &peers).unwrap();
    }

    pub fn urls(&self, idx: &[usize]) -> Vec<Url> {
        idx.iter().map(|&i| self.members[i].url.clone()).collect()
    }

    /// Stops node `i` (its store stays on disk).
    pub async fn stop(&mut self, i: usize) {
        if let Some(n) = self.members[i].node.take() {
            n.shutdown().await;
        }
    }

    /// Restarts node `i` on the same port with the same store.
    pub async fn restart(&mut self, i: usize) {
        let m = &mut self.members[i];
        let keys = OperatorKeys::read(&m.key_file, None, true).unwrap();
        let started = Instant::now();
        loop {
            let options = kms_node::StartOptions {
                boundaries: self.boundaries.clone(),
                ..Default::default()
            };
            match Node::start_with(m.cfg.clone(), keys_clone(&m.key_file), options).await {
                Ok(n) => {
                    m.node = Some(n);
                    break;
                }
                Err(e) if started.elapsed() < Duration::from_secs(10) => {
                    eprintln!("restart of node {i} failed ({e}), retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("node {i} does not restart: {e}"),
            }
        }
        drop(keys);
    }

    pub async fn health(&self, i: usize) -> Option<HealthResponse> {
        let r = self
            .http
            .get(self.members[i].url.join("/health").unwrap())
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// Node `i`'s `/metrics` text.
    pub async fn metrics_text(&self, i: usize) -> String {
        self.http
            .get(self.members[i].url.join("/metrics").unwrap())
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// GETs `path` from node `i` and decodes its JSON answer (panics otherwise).
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, i: usize, path: &str) -> T {
        self.http
            .get(self.members[i].url.join(path).unwrap())
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path} from node {i}: {e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("GET {path} from node {i}: {e}"))
    }

    /// POSTs a body over node `i`'s limit to `path` on a client of its own without a
    /// connection pool (the server may close the connection before the client has sent
    /// a body it will never read; such a connection must not be reused). `None` when the
    /// connection was closed, else the status and the JSON answer.
    pub async fn post_oversized(
        &self,
        i: usize,
        path: &str,
        body: Vec<u8>,
    ) -> Option<(reqwest::StatusCode, serde_json::Value)> {
        let oversize = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .pool_max_idle_per_host(0)
            .tls_certs_only(kms_node::tls::client_roots(&self.ca_file).unwrap())
            .build()
            .unwrap();
        let r = oversize
            .post(self.members[i].url.join(path).unwrap())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .ok()?;
        let status = r.status();
        Some((status, r.json().await.unwrap_or(serde_json::Value::Null)))
    }

    pub async fn pubkey(&self, i: usize) -> Option<PubkeyResponse> {
        let r = self
            .http
            .get(self.members[i].url.join("/pubkey").unwrap())
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        r.json().await.ok()
    }

    /// Waits until every node at `idx` has an active version newer than `after`, and
    /// all report the same one. Returns it.
    pub async fn wait_for_version(&self, idx: &[usize], after: u64, timeout: Duration) -> u64 {
        let start = Instant::now();
        loop {
            let mut versions = Vec::new();
            for &i in idx {
                versions.push(self.pubkey(i).await.map(|p| p.version));
            }
            if let Some(Some(v)) = versions.first()
                && *v > after
                && versions.iter().all(|x| *x == Some(*v))
            {
                return *v;
            }
            assert!(
                start.elapsed() < timeout,
                "nodes {idx:?} did not agree on a version newer than {after} within {timeout:?}: {versions:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn shutdown(mut self) {
        for i in 0..self.members.len() {
            self.stop(i).await;
        }
    }
}

/// The apps every cluster registers at start, owned by [`Cluster::owner`].
pub const OWNED_APPS: &[&str] = &["app", "app-1", "app-2", "svc", "a", "ok", "tls"];

/// An owner-signed `/app/sign` body for the node of `operator`, valid for `lifetime`
/// seconds, sealed to `key`.
pub fn owner_request_for(
    owner: &kms_crypto::signer::ecdsa::EcdsaSigner,
    operator: kms_crypto::OperatorAddress,
    app: &str,
    attestation_time: Option<u64>,
    key: &kms_crypto::sealed::OneTimePublicKey,
    lifetime: i64,
) -> serde_json::Value {
    use kms_protocol::release::{Authorization, Bytes32, OwnerAuthorization, owner_request_hash};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
    let mut auth = OwnerAuthorization {
        node: operator,
        expiry: (now + lifetime).max(0) as u64,
        nonce: Bytes32(nonce),
        response_key: Bytes32(key.to_bytes()),
        signature: owner.sign_hash(&[0; 32]),
    };
    auth.signature = owner.sign_hash(&owner_request_hash(
        app,
        attestation_time.unwrap_or(0),
        &auth,
    ));
    serde_json::to_value(kms_protocol::api::SignRequest {
        app_id: app.to_string(),
        attestation_time,
        auth: Some(Authorization::Owner(auth)),
    })
    .unwrap()
}

fn keys_clone(path: &std::path::Path) -> OperatorKeys {
    OperatorKeys::read(path, None, true).unwrap()
}

impl Cluster {
    /// Runs the client CLI in-process, trusting the cluster's CA, and returns its
    /// stdout.
    pub async fn cli(&self, urls: &[Url], args: &[&str]) -> anyhow::Result<Vec<u8>> {
        let nodes = urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .collect::<Vec<_>>()
            .join(",");
        let mut argv = vec![
            "kms-client".to_string(),
            "--ca-file".to_string(),
            self.ca_file.display().to_string(),
            "--nodes".to_string(),
            nodes,
        ];
        argv.extend(args.iter().map(|s| s.to_string()));
        if matches!(args.first(), Some(&"app-key") | Some(&"decrypt")) {
            argv.extend([
                "--owner-key".to_string(),
                self.owner_key_file().display().to_string(),
            ]);
        }
        let mut out = Vec::new();
        kms_client::cli::run(argv, &mut out).await?;
        Ok(out)
    }
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Boundaries the test fires. A node asking for its first one gets the last one
/// fired only if that session has not begun (a node started after a session began
/// does not join it, as with a wall clock's boundaries).
pub struct FiredBoundaries(pub tokio::sync::watch::Receiver<u64>);

impl kms_node::schedule::BoundarySource for FiredBoundaries {
    fn next_boundary(
        &self,
        after: u64,
    ) -> kms_node::peering::BoxFuture<'_, Option<kms_node::schedule::Boundary>> {
        let mut rx = self.0.clone();
        Box::pin(async move {
            let now = unix_secs();
            let ts = *rx
                .wait_for(|ts| *ts > after && (after > 0 || *ts + 1 >= now))
                .await
                .ok()?;
            Some(kms_node::schedule::Boundary {
                session_timestamp: ts,
                block: None,
            })
        })
    }
}

/// Fires the next boundary, a second from now (a session timestamp like a wall
/// clock's, so that its phases run on the nodes' clocks).
pub fn fire(tx: &tokio::sync::watch::Sender<u64>) -> u64 {
    let ts = (unix_secs() + 1).max(*tx.borrow() + 1);
    tx.send(ts).unwrap();
    ts
}

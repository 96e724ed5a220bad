//! A peer is pinned, for the session, to the TLS certificate its attestation binds:
//! whoever answers later connections to it with another certificate, even one its
//! CA issued for the same name, gets no handshake and so no share.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::Cluster;
use kms_node::peering::{LocalPeeringDataFetcher, Peer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use url::Url;

const INTERVAL: u64 = 6;
const PHASE_MS: u64 = 1_000;
/// Connects and handshakes of the front towards the member.
const FRONT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP front of one member, listed in one honest node's peering file instead of the
/// member's port. Its first connection is that node's `/attestation` GET (a node
/// connects to a peer for nothing else before it has attested it): it is passed
/// through to the member, so the quote the node checks binds the member's real
/// certificate. Every later connection is terminated by a rogue TLS server with
/// another certificate of the cluster's CA for the same names, which forwards what
/// it decrypts to the member: what anyone with a CA-valid certificate for the
/// member's name could do.
struct RogueFront {
    url: Url,
    passed_through: Arc<AtomicUsize>,
    /// Handshakes the rogue server completed: connections it could read.
    terminated: Arc<AtomicUsize>,
    /// Handshakes the client broke off.
    refused: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl RogueFront {
    async fn start(
        member: SocketAddr,
        dir: &Path,
        ca: &kms_node::tls::DevCa,
        ca_file: &Path,
    ) -> Self {
        let (cert, key) = ca.write_node_cert(dir, "rogue").unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(
            kms_node::tls::server_config(&cert, &key, None, true).unwrap(),
        );
        let mut roots = rustls::RootCertStore::empty();
        for c in kms_node::tls::read_certificates(ca_file).unwrap() {
            roots.add(c).unwrap();
        }
        let mut to_member = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        to_member.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(to_member));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url: Url = format!("https://{}", listener.local_addr().unwrap())
            .parse()
            .unwrap();
        let passed_through = Arc::new(AtomicUsize::new(0));
        let terminated = Arc::new(AtomicUsize::new(0));
        let refused = Arc::new(AtomicUsize::new(0));
        let (p, t, r) = (passed_through.clone(), terminated.clone(), refused.clone());
        let task = tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                if std::mem::take(&mut first) {
                    p.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(pass_through(client, member));
                    continue;
                }
                let (acceptor, connector, t, r) =
                    (acceptor.clone(), connector.clone(), t.clone(), r.clone());
                tokio::spawn(async move {
                    let Ok(Ok(mut client)) =
                        tokio::time::timeout(FRONT_TIMEOUT, acceptor.accept(client)).await
                    else {
                        r.fetch_add(1, Ordering::SeqCst);
                        return;
                    };
                    t.fetch_add(1, Ordering::SeqCst);
                    let name = rustls_pki_types::ServerName::IpAddress(member.ip().into());
                    let connect = async {
                        let tcp = TcpStream::connect(member).await?;
                        connector.connect(name, tcp).await
                    };
                    if let Ok(Ok(mut upstream)) = tokio::time::timeout(FRONT_TIMEOUT, connect).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        RogueFront {
            url,
            passed_through,
            terminated,
            refused,
            task,
        }
    }
}

impl Drop for RogueFront {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pass_through(mut client: TcpStream, member: SocketAddr) {
    if let Ok(Ok(mut upstream)) =
        tokio::time::timeout(FRONT_TIMEOUT, TcpStream::connect(member)).await
    {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

fn peer(c: &Cluster, i: usize, url: &Url) -> Peer {
    let m = &c.members[i];
    Peer {
        address: m.address,
        public_key: m.public_key.clone(),
        url: url.clone(),
    }
}

/// The value of an unlabelled counter in Prometheus text.
fn counter(metrics: &str, name: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

const REFUSALS: &str = "kms_pinned_certificate_refusals_total";

/// n = 4, t = 3. Each honest node reaches the 4th member through its own rogue front:
/// the attestation passes (it is the member's), every later connection meets another
/// CA-valid certificate for the same name. The honest nodes refuse those handshakes,
/// count them, send the rogue nothing, and still finish the DKG among themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_presenting_another_certificate_than_it_attested_is_sent_nothing() {
    // The nodes' logs go with the test's output (shown when it fails).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kms_node=info".into()),
        )
        .with_test_writer()
        .try_init();
    let mut c = Cluster::start(0, INTERVAL, PHASE_MS).await;
    for _ in 0..4 {
        c.add_member(PHASE_MS).await;
    }
    let (honest, target) = ([0, 1, 2], 3);
    let metrics = c.metrics_text(0).await;
    assert_eq!(
        counter(&metrics, REFUSALS),
        Some(0.0),
        "registered at zero: {metrics}"
    );

    // Each honest node gets a peering file of its own (empty for now), so that it
    // alone talks to its front.
    let files: Vec<_> = honest
        .iter()
        .map(|i| c.dir.path().join(format!("peers-{i}.toml")))
        .collect();
    for (&i, file) in honest.iter().zip(&files) {
        LocalPeeringDataFetcher::write(file, &[]).unwrap();
        c.stop(i).await;
        c.members[i].cfg.peering.file = file.clone();
        c.restart(i).await;
    }
    let member = c.members[target].cfg.server.listen;
    let mut fronts = Vec::new();
    for i in honest {
        let dir = c.dir.path().join(format!("front-{i}"));
        fronts.push(RogueFront::start(member, &dir, &c.ca, &c.ca_file).await);
    }

    // Publish the operator set at once, well before a boundary.
    let started = Instant::now();
    loop {
        let into = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
            % (INTERVAL * 1000);
        if (500..INTERVAL * 1000 - 2_000).contains(&into) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2 * INTERVAL));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let real: Vec<Peer> = (0..4).map(|i| peer(&c, i, &c.members[i].url)).collect();
    for ((&i, file), front) in honest.iter().zip(&files).zip(&fronts) {
        let mut peers = real.clone();
        peers[target] = peer(&c, target, &front.url);
        LocalPeeringDataFetcher::write(file, &peers).unwrap();
        assert_ne!(c.members[i].url, front.url);
    }
    LocalPeeringDataFetcher::write(&c.peers_file(), &real).unwrap();

    let v = c
        .wait_for_version(&honest, 0, Duration::from_secs(6 * INTERVAL + 20))
        .await;
    assert!(v > 0);
    // The 4th member attested (through the front), so it is in the session's set:
    // what kept it from the shares is the pin, not its attestation.
    let pk = c.pubkey(0).await.unwrap();
    assert!(
        pk.operators.contains(&c.members[target].address),
        "the member passed attestation: {:?}",
        pk.operators
    );
    for (i, front) in honest.iter().zip(&fronts) {
        assert_eq!(
            front.passed_through.load(Ordering::SeqCst),
            1,
            "node {i}'s attestation reached the member"
        );
        assert_eq!(
            front.terminated.load(Ordering::SeqCst),
            0,
            "node {i} completed a handshake with the rogue certificate"
        );
        assert!(
            front.refused.load(Ordering::SeqCst) >= 1,
            "node {i} tried the rogue at least once"
        );
        let metrics = c.metrics_text(*i).await;
        let refusals = counter(&metrics, REFUSALS).unwrap_or(0.0);
        assert!(refusals >= 1.0, "node {i} counted no refusal: {metrics}");
    }
    drop(fronts);
    c.shutdown().await;
}

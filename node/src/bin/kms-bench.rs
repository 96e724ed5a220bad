//! Load benchmarks against one node of a running devnet, each printing a table with
//! its floor measured in the same run:
//!
//! - `kms-bench sign`: owner-signed `/app/sign` requests (the bench registers its app
//!   with an owner key in the devnet's `apps.toml`, and signs a fresh EIP-712 request
//!   per call) — saturated throughput and latency, latency at half that load, and the
//!   bare cost of what the node must do per request (recover the owner's signature,
//!   `s_i·H1(id)`, seal it to the one-time key) with cores ÷ that cost;
//! - `kms-bench secrets`: `/secrets` with a fresh nonce and a simulated app quote per
//!   request (the bench registers its app in the devnet's `apps.toml`), with the bare
//!   and cached DCAP verify of the real test quote and a projected DCAP figure.
//!
//! ```text
//! KMS_LIMITS_SIGN_RATE_PER_SEC=1000000 KMS_LIMITS_SIGN_BURST=1000000 make run   # terminal 1
//! target/release/kms-bench sign --url https://127.0.0.1:18000 --ca-file devnet-data/ca.crt   # terminal 2
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kms_crypto::signer::ecdsa::EcdsaSigner;
use kms_crypto::{Scalar, tbls};
use kms_protocol::api::SignRequest;
use kms_protocol::release::{
    Authorization, Bytes32, OwnerAuthorization, owner_request_hash, partial_aad,
};
use rand_core::OsRng;
use url::Url;

#[derive(Parser)]
#[command(name = "kms-bench", about = "Load benchmarks against a running node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Load {
    /// The node under load.
    #[arg(long, default_value = "https://127.0.0.1:18000")]
    url: Url,
    /// CA certificate of the node's TLS (a devnet's `ca.crt`).
    #[arg(long, env = "KMS_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Seconds per measurement phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Requests in flight while saturating, and at most in flight (so connections
    /// open) at the fixed rate: the generator never opens more connections than this,
    /// and reuses them.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Runs of the half-load phase, each reported with its p99 (and their spread).
    #[arg(long, default_value_t = 1)]
    runs: usize,
}

#[derive(Subcommand)]
enum Command {
    /// Partial signatures per second and latency of one node (owner-signed).
    Sign {
        #[command(flatten)]
        load: Load,
        /// The nodes' app registry (`secrets.apps_file`; a devnet's `apps.toml`): the
        /// benchmark registers its app there.
        #[arg(long, default_value = "devnet-data/apps.toml")]
        apps_file: std::path::PathBuf,
    },
    /// `/secrets` releases per second and latency of one node (insecure-dev app
    /// quotes), with the DCAP verification costs measured in the same run.
    Secrets {
        #[command(flatten)]
        load: Load,
        /// The nodes' app registry (`secrets.apps_file`; a devnet's `apps.toml`): the
        /// benchmark registers its app there.
        #[arg(long, default_value = "devnet-data/apps.toml")]
        apps_file: std::path::PathBuf,
        /// The simulated identity of the nodes (`attestation.simulated_identity`).
        #[arg(long, default_value = "eigenkms-dev-image")]
        app_build: String,
    },
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// The bare cost of one authorized partial signature on this machine (median of
/// single-thread runs): recover the owner's EIP-712 signature, `s_i·H1(id)`, seal it.
fn floor_cost() -> Duration {
    let share = Scalar::random(&mut OsRng);
    let owner = EcdsaSigner::random(&mut OsRng);
    let node = kms_crypto::OperatorAddress::from_bytes([7; 20]);
    let key = kms_crypto::sealed::OneTimeSecretKey::generate(&mut OsRng).public_key();
    let auth = owner_auth(&owner, node, BENCH_APP, &key);
    median_cost(300, || {
        let h = owner_request_hash(BENCH_APP, 0, &auth);
        std::hint::black_box(auth.signature.verify(&h, &owner.address()).is_ok());
        let p = tbls::sign_partial(&share, BENCH_APP.as_bytes()).to_compressed();
        std::hint::black_box(
            kms_crypto::sealed::seal(
                &key,
                kms_crypto::sealed::APP_SIGN_INFO,
                &partial_aad(BENCH_APP, 1, &node),
                &p,
                &mut OsRng,
            )
            .ok(),
        );
    })
}

/// The benchmark's app.
const BENCH_APP: &str = "kms-bench-app";

/// A fresh owner-signed authorization for `node`.
fn owner_auth(
    owner: &EcdsaSigner,
    node: kms_crypto::OperatorAddress,
    app: &str,
    key: &kms_crypto::sealed::OneTimePublicKey,
) -> OwnerAuthorization {
    let mut nonce = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
    let mut auth = OwnerAuthorization {
        node,
        expiry: unix_now() + 120,
        nonce: Bytes32(nonce),
        response_key: Bytes32(key.to_bytes()),
        signature: owner.sign_hash(&[0; 32]),
    };
    auth.signature = owner.sign_hash(&owner_request_hash(app, 0, &auth));
    auth
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Writes the benchmark app's registration into `apps_file`, replacing an earlier
/// one and keeping every other app.
fn register_bench_app(apps_file: &std::path::Path, entry: &str) -> anyhow::Result<()> {
    const BEGIN: &str = "# kms-bench: begin";
    const END: &str = "# kms-bench: end";
    let old = std::fs::read_to_string(apps_file).unwrap_or_default();
    let mut kept = String::new();
    let mut skipping = false;
    for line in old.lines() {
        if line == BEGIN {
            skipping = true;
        } else if line == END {
            skipping = false;
        } else if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    std::fs::write(apps_file, format!("{kept}{BEGIN}\n{entry}{END}\n"))
        .with_context(|| format!("writing {}", apps_file.display()))
}

/// The node's `/pubkey` answer.
async fn pubkey(
    http: &reqwest::Client,
    load: &Load,
) -> anyhow::Result<kms_protocol::api::PubkeyResponse> {
    Ok(http
        .get(load.url.join("/pubkey")?)
        .send()
        .await?
        .error_for_status()
        .context("GET /pubkey (no key yet?)")?
        .json()
        .await?)
}

/// Registers the benchmark app with an owner key made here, and returns a body maker:
/// one one-time key, a fresh owner-signed request per call.
async fn sign_setup(
    http: &reqwest::Client,
    load: &Load,
    apps_file: &std::path::Path,
) -> anyhow::Result<MakeBody> {
    let pk = pubkey(http, load).await?;
    let owner = Arc::new(EcdsaSigner::random(&mut OsRng));
    register_bench_app(
        apps_file,
        &format!(
            "[[apps]]\napp_id = \"{BENCH_APP}\"\nowner = \"{}\"\n",
            owner.address()
        ),
    )?;
    let node = pk.operator_address;
    let key = kms_crypto::sealed::OneTimeSecretKey::generate(&mut OsRng).public_key();
    Ok(Arc::new(move |_| {
        serde_json::to_vec(&SignRequest {
            app_id: BENCH_APP.to_string(),
            attestation_time: None,
            auth: Some(Authorization::Owner(owner_auth(
                &owner, node, BENCH_APP, &key,
            ))),
        })
        .expect("serializable")
    }))
}

struct Phase {
    ok: u64,
    errors: u64,
    /// Requests the generator did not send because `concurrency` were in flight.
    shed: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    cpu: CpuUse,
}

/// CPU seconds spent during a phase: by this load generator, and by everything else
/// on the machine (the node under load, mostly). Linux `/proc`, in USER_HZ ticks
/// (100 per second by ABI); zeros where `/proc` is not readable.
#[derive(Clone, Copy, Default)]
struct CpuUse {
    generator: f64,
    rest: f64,
}

#[derive(Clone, Copy)]
struct CpuMark {
    machine_busy: f64,
    me: f64,
}

impl CpuMark {
    fn now() -> Self {
        const HZ: f64 = 100.0;
        let machine_busy = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let v: Vec<f64> = s
                    .lines()
                    .next()?
                    .split_whitespace()
                    .skip(1)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal …
                (v.len() >= 5).then(|| (v.iter().take(8).sum::<f64>() - v[3] - v[4]) / HZ)
            })
            .unwrap_or(0.0);
        let me = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                // Fields after the parenthesised command name; utime and stime are the
                // 14th and 15th fields of the whole line.
                let rest = &s[s.rfind(')')? + 2..];
                let v: Vec<&str> = rest.split_whitespace().collect();
                let ut: f64 = v.get(11)?.parse().ok()?;
                let st: f64 = v.get(12)?.parse().ok()?;
                Some((ut + st) / HZ)
            })
            .unwrap_or(0.0);
        Self { machine_busy, me }
    }

    fn since(self, start: CpuMark) -> CpuUse {
        let generator = self.me - start.me;
        CpuUse {
            generator,
            rest: (self.machine_busy - start.machine_busy - generator).max(0.0),
        }
    }
}

/// Builds the body of request number `n` (a fresh app ID, or a fresh nonce).
type MakeBody = Arc<dyn Fn(String) -> Vec<u8> + Send + Sync>;

async fn one(http: &reqwest::Client, url: &Url, body: Vec<u8>) -> Result<Duration, ()> {
    let t = Instant::now();
    let r = http
        .post(url.clone())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|_| ())?;
    if !r.status().is_success() {
        return Err(());
    }
    r.bytes().await.map_err(|_| ())?;
    Ok(t.elapsed())
}

/// Closed loop: `concurrency` workers, each sending the next request when the last
/// answered.
async fn saturate(
    http: &reqwest::Client,
    url: &Url,
    make: &MakeBody,
    secs: u64,
    concurrency: usize,
) -> Phase {
    let counter = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mark = CpuMark::now();
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let (http, url, counter, make) = (http.clone(), url.clone(), counter.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0u64);
            while Instant::now() < end {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                match one(&http, &url, make(format!("bench-sat-{w}-{n}"))).await {
                    Ok(d) => lat.push(d),
                    Err(()) => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("worker");
        latencies.extend(l);
        errors += e;
    }
    let cpu = CpuMark::now().since(mark);
    latencies.sort();
    Phase {
        ok: latencies.len() as u64,
        errors,
        shed: 0,
        elapsed: start.elapsed(),
        latencies,
        cpu,
    }
}

/// Open loop: requests started at a fixed rate, whatever the answers do, with at most
/// `concurrency` in flight: a request due while that many are outstanding is not sent
/// and counted as shed, so the generator never opens more connections than that.
async fn fixed_rate(
    http: &reqwest::Client,
    url: &Url,
    make: &MakeBody,
    secs: u64,
    rate: f64,
    concurrency: usize,
) -> Phase {
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let slots = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let start = Instant::now();
    let mark = CpuMark::now();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut n = 0u64;
    let mut shed = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        ticker.tick().await;
        n += 1;
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shed += 1;
            continue;
        };
        // The body is made here, on the generator's clock, not inside the timed task.
        let body = make(format!("bench-half-{n}"));
        let (http, url) = (http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let r = one(&http, &url, body).await;
            drop(slot);
            r
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        match t.await.expect("request task") {
            Ok(d) => latencies.push(d),
            Err(()) => errors += 1,
        }
    }
    let cpu = CpuMark::now().since(mark);
    latencies.sort();
    Phase {
        ok: latencies.len() as u64,
        errors,
        shed,
        elapsed: start.elapsed(),
        latencies,
        cpu,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The median of 7 single-thread timings of `f` repeated `n` times, per call.
fn median_cost(n: u32, mut f: impl FnMut()) -> Duration {
    let mut runs: Vec<Duration> = (0..7)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed() / n
        })
        .collect();
    runs.sort();
    runs[runs.len() / 2]
}

/// The test TDX quote and its collateral (from `attestation/tests/data`), and a time
/// inside the collateral's validity.
const DCAP_QUOTE: &[u8] = include_bytes!("../../../attestation/tests/data/tdx_quote");
const DCAP_COLLATERAL: &[u8] =
    include_bytes!("../../../attestation/tests/data/tdx_quote_collateral.json");
const DCAP_AT: u64 = 1_750_838_400;

/// Verification costs in this process: (bare dcap-qvl verify with collateral parsing
/// and chain checks, the node's cached DCAP verify, the simulated-quote verify).
fn verify_costs(sim_quote: &[u8]) -> anyhow::Result<(Duration, Duration, Duration)> {
    use kms_attestation::{Collateral, DcapVerifier, Evidence, StaticCollateral, Verifier};
    let dcap = DcapVerifier::new(StaticCollateral::new(Collateral::from_json(
        DCAP_COLLATERAL,
    )?))?;
    dcap.verify(DCAP_QUOTE, DCAP_AT)?;
    let bare = median_cost(30, || {
        std::hint::black_box(dcap.verify_uncached(DCAP_QUOTE, DCAP_AT).ok());
    });
    let cached = median_cost(300, || {
        std::hint::black_box(dcap.verify(DCAP_QUOTE, DCAP_AT).ok());
    });
    let sim = Verifier::builder().insecure_dev(true).build();
    let evidence = Evidence::Simulated(sim_quote.to_vec());
    sim.verify(&evidence, DCAP_AT)?;
    let simulated = median_cost(300, || {
        std::hint::black_box(sim.verify(&evidence, DCAP_AT).ok());
    });
    Ok((bare, cached, simulated))
}

/// Registers the benchmark app (its environment IBE-encrypted to the node's master
/// key, one allowed build) and returns a body maker: one reused RSA key, a fresh
/// nonce and a simulated quote bound to both per request.
async fn secrets_setup(
    http: &reqwest::Client,
    load: &Load,
    apps_file: &std::path::Path,
    build: &str,
) -> anyhow::Result<(MakeBody, Vec<u8>)> {
    use base64::Engine as _;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    const APP: &str = BENCH_APP;
    let pk = pubkey(http, load).await?;
    let env = kms_crypto::ibe::encrypt(
        &pk.commitments[0],
        APP.as_bytes(),
        b"BENCH_SECRET=1",
        &mut OsRng,
    )?;
    let m = kms_node::attest::simulated_measurements(build);
    let rtmr: Vec<String> = m
        .rtmr
        .iter()
        .map(|r| format!("\"{}\"", hex::encode(r)))
        .collect();
    register_bench_app(
        apps_file,
        &format!(
            "[[apps]]\napp_id = \"{APP}\"\npublic_env = \"\"\nencrypted_env = \"{}\"\n\
             [[apps.builds]]\nmrtd = \"{}\"\nrtmr = [{}]\n",
            hex::encode(&env),
            hex::encode(m.mrtd),
            rtmr.join(", ")
        ),
    )?;
    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?;
    let pem = key.to_public_key().to_public_key_pem(LineEnding::LF)?;
    let make: MakeBody = Arc::new(move |_| {
        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
        let now = unix_now();
        let rd = kms_attestation::secrets_report_data(pem.as_bytes(), &nonce, APP, now);
        let quote = kms_attestation::simulated::encode_simulated_quote(&m, &rd);
        serde_json::to_vec(&serde_json::json!({
            "app_id": APP,
            "attestation_method": "simulated",
            "attestation": base64::engine::general_purpose::STANDARD.encode(&quote),
            "rsa_pubkey_tmp": pem,
            "attest_time": now,
            "nonce": hex::encode(nonce),
        }))
        .expect("serializable")
    });
    let sample = {
        let mut nonce = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut OsRng, &mut nonce);
        let rd = kms_attestation::secrets_report_data(b"k", &nonce, APP, unix_now());
        kms_attestation::simulated::encode_simulated_quote(&m, &rd)
    };
    Ok((make, sample))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    kms_node::install_crypto_provider();
    let (load, path, apps_file, build) = match Cli::parse().command {
        Command::Sign { load, apps_file } => (load, "/app/sign", apps_file, None),
        Command::Secrets {
            load,
            apps_file,
            app_build,
        } => (load, "/secrets", apps_file, Some(app_build)),
    };
    let Load {
        ref url,
        ref ca_file,
        duration,
        concurrency,
        runs,
    } = load;
    let target = url.join(path)?;
    let mut http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(concurrency);
    if let Some(ca) = ca_file {
        http = http.tls_certs_only(kms_node::tls::client_roots(ca)?);
    }
    let http = http.build()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let (make, cost, dcap) = match &build {
        None => (
            sign_setup(&http, &load, &apps_file).await?,
            floor_cost(),
            None,
        ),
        Some(build) => {
            let (make, sample) = secrets_setup(&http, &load, &apps_file, build).await?;
            let (bare, cached, simulated) = verify_costs(&sample)?;
            (make, bare, Some((cached, simulated)))
        }
    };
    // The nodes re-read the registry every few seconds.
    let ready = Instant::now();
    while one(&http, &target, make("warm".into())).await.is_err() {
        if ready.elapsed() > Duration::from_secs(30) {
            bail!(
                "{target} does not release the benchmark app's key material (registry not re-read? rate limited?)"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    one(&http, &target, make("bench-warmup".into()))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "{target} refuses the benchmark's requests (no key yet, or rate limited?)"
            )
        })
        .context("warm-up request")?;
    let floor = cores as f64 / cost.as_secs_f64();
    let what = if dcap.is_some() {
        "bare DCAP verify"
    } else {
        "authorized partial signature"
    };
    eprintln!(
        "floor: {} per {what}, {cores} cores → {floor:.0}/s; saturating for {duration} s …",
        ms(cost)
    );
    let sat = saturate(&http, &target, &make, duration, concurrency).await;
    if sat.ok == 0 {
        bail!(
            "no successful request while saturating ({} errors)",
            sat.errors
        );
    }
    let max_rate = sat.ok as f64 / sat.elapsed.as_secs_f64();
    eprintln!(
        "saturated at {max_rate:.0}/s; now {:.0}/s for {duration} s …",
        max_rate / 2.0
    );
    let mut halves = Vec::new();
    for run in 0..runs.max(1) {
        let half = fixed_rate(&http, &target, &make, duration, max_rate / 2.0, concurrency).await;
        eprintln!(
            "half-load run {}: p99 {}",
            run + 1,
            ms(percentile(&half.latencies, 0.99))
        );
        halves.push(half);
    }
    println!(
        "| load | requests ok | errors | shed by the generator | throughput | p50 | p99 | floor (cores ÷ bare cost) | throughput / floor |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| saturated ({concurrency} in flight) | {} | {} | 0 | {max_rate:.0}/s | {} | {} | {floor:.0}/s ({cores} × 1/{}) | {:.0}% |",
        sat.ok,
        sat.errors,
        ms(percentile(&sat.latencies, 0.5)),
        ms(percentile(&sat.latencies, 0.99)),
        ms(cost),
        100.0 * max_rate / floor
    );
    for (i, half) in halves.iter().enumerate() {
        let half_rate = half.ok as f64 / half.elapsed.as_secs_f64();
        println!(
            "| half of saturated, open loop, run {} | {} | {} | {} | {half_rate:.0}/s | {} | {} | | |",
            i + 1,
            half.ok,
            half.errors,
            half.shed,
            ms(percentile(&half.latencies, 0.5)),
            ms(percentile(&half.latencies, 0.99)),
        );
    }
    if halves.len() > 1 {
        let mut p99: Vec<Duration> = halves
            .iter()
            .map(|h| percentile(&h.latencies, 0.99))
            .collect();
        p99.sort();
        println!();
        println!(
            "half-load p99 over {} runs: min {}, median {}, max {}",
            p99.len(),
            ms(p99[0]),
            ms(p99[p99.len() / 2]),
            ms(p99[p99.len() - 1])
        );
    }
    // Where the cores went while saturating: the generator shares the machine with
    // the node, so the node never has all `cores`.
    let secs = sat.elapsed.as_secs_f64();
    let gen_cores = sat.cpu.generator / secs;
    let rest_cores = sat.cpu.rest / secs;
    if sat.cpu.rest > 0.0 {
        let node_cpu_per_req = Duration::from_secs_f64(sat.cpu.rest / sat.ok as f64);
        let node_floor = (cores as f64 - gen_cores).max(0.01) / cost.as_secs_f64();
        println!();
        println!(
            "| while saturated | generator CPU | rest of the machine (node) CPU | node CPU per request | bare cost ÷ node CPU per request | floor for the cores left to the node | throughput / that floor |"
        );
        println!("|---|---|---|---|---|---|---|");
        println!(
            "| {max_rate:.0}/s | {gen_cores:.2} cores | {rest_cores:.2} cores | {} | {:.0}% | {node_floor:.0}/s | {:.0}% |",
            ms(node_cpu_per_req),
            100.0 * cost.as_secs_f64() / node_cpu_per_req.as_secs_f64(),
            100.0 * max_rate / node_floor
        );
        if let Some((cached, simulated)) = dcap {
            // The requests above carry simulated quotes (an app quote bound to a fresh
            // request can only come from a TDX guest); a DCAP request costs the node
            // the same except for the verification: the cached DCAP verify instead
            // of the simulated one, both measured here.
            let per_dcap = node_cpu_per_req.saturating_sub(simulated) + cached;
            let projected = (cores as f64 - gen_cores).max(0.01) / per_dcap.as_secs_f64();
            println!();
            println!(
                "| DCAP | bare dcap-qvl verify | cached verify (node) | simulated verify | node CPU per DCAP request (projected) | projected throughput (cores left to the node) | floor (cores ÷ bare verify) | projected / floor |"
            );
            println!("|---|---|---|---|---|---|---|---|");
            println!(
                "| test quote, collateral cached | {} | {} | {} | {} | {projected:.0}/s | {floor:.0}/s | {:.0}% |",
                ms(cost),
                ms(cached),
                ms(simulated),
                ms(per_dcap),
                100.0 * projected / floor
            );
        }
    }
    Ok(())
}

//! Whole protocol-v2 sessions (`kms_protocol::dkg`) in the simulated network, CPU per
//! node against a floor measured in the same run: what a node cannot avoid doing
//! with the dealings it receives.
//!
//! - Feldman floor: one bare blst G2 multi-scalar multiplication over `n·t` points
//!   (every dealing's commitment checked against this node's share) plus `n` share
//!   decryptions (`decrypt_share`: one G1 multiplication and the pads each).
//! - Pedersen floor: two MSMs of `n·t` points (the commitments with their blinding,
//!   and the public shares against the sum) plus the `n` decryptions.
//!
//! Both sides are process CPU time (all threads: blst spreads a large MSM over the
//! cores). The floor is sampled five times right before each session, once per
//! wall-clock second while it runs (between the simulation's events, outside the
//! nodes' timed work) and five times right after; its median is the run's floor, so
//! that the machine's changing speed weighs on both sides of the ratio alike.
//!
//! `cargo run --release -p kms-protocol --example v2-session-bench -- [--sizes 7,10,15,50,100] [--rounds 3] [--modes feldman-dkg,feldman-reshare,pedersen-dkg,pedersen-reshare]`
//!
//! A `--modes` entry may be a whole name or a part of one (`feldman`, `reshare`).
//! Prints a Markdown table (the v2 one in `docs/benchmarks.md`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kms_crypto::vss::encryption::{
    DealingKey, EncryptionSecretKey, ShareCiphertext, ShareContext, decrypt_share, encrypt_share,
};
use kms_crypto::vss::pedersen::PedersenShare;
use kms_crypto::{G2Point, OperatorAddress, Scalar, threshold};
use kms_protocol::dkg::sim::{Finished, Net, SimMember, setup};
use kms_protocol::session::{Schedule, SessionParams, SessionTimestamp, VssMode};
use kms_protocol::sim::process_cpu_time;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PHASE_MS: u64 = 1_000;

/// The four sessions measured, in the order they run (a reshare needs its DKG).
const MODES: [(&str, VssMode, bool); 4] = [
    ("feldman-dkg", VssMode::Feldman, false),
    ("feldman-reshare", VssMode::Feldman, true),
    ("pedersen-dkg", VssMode::Pedersen, false),
    ("pedersen-reshare", VssMode::Pedersen, true),
];

/// One session's figures.
struct Run {
    n: usize,
    mode: &'static str,
    wall: Duration,
    cpu_median: Duration,
    cpu_max: Duration,
    bytes_median: u64,
    floor: Duration,
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

/// The floor's work, ready to be repeated: `msms` MSMs over `n·t` random points and
/// `n` decryptions of real ciphertexts.
struct Floor {
    points: Vec<G2Point>,
    scalars: Vec<Scalar>,
    msms: usize,
    key: EncryptionSecretKey,
    dealings: Vec<(DealingKey, ShareContext, ShareCiphertext)>,
    runs: Vec<Duration>,
    last: Instant,
}

impl Floor {
    fn new(n: usize, msms: usize) -> Self {
        let points = n * threshold(n);
        let mut rng = ChaCha20Rng::seed_from_u64(points as u64);
        let g = G2Point::generator();
        let base: Vec<G2Point> = (0..64).map(|_| g.mul(&Scalar::random(&mut rng))).collect();
        let key = EncryptionSecretKey::generate(&mut rng);
        let dealings = (0..n)
            .map(|i| {
                let e = DealingKey::generate(&mut rng);
                let ctx = ShareContext {
                    session_hash: [7; 32],
                    dealer: OperatorAddress::from_bytes([i as u8; 20]),
                    player: OperatorAddress::from_bytes([0xee; 20]),
                };
                let share = PedersenShare {
                    value: Scalar::random(&mut rng),
                    blinding: Scalar::random(&mut rng),
                };
                let ct = encrypt_share(&e, &key.public_key(), &ctx, &share);
                (e, ctx, ct)
            })
            .collect();
        Self {
            points: (0..points)
                .map(|i| base[i % 64].add(&base[(i * 7 + 1) % 64]))
                .collect(),
            scalars: (0..points).map(|_| Scalar::random(&mut rng)).collect(),
            msms,
            key,
            dealings,
            runs: Vec::new(),
            last: Instant::now(),
        }
    }

    fn sample(&mut self) {
        let t = process_cpu_time();
        for _ in 0..self.msms {
            let _ = G2Point::msm(&self.points, &self.scalars).expect("lengths match");
        }
        for (e, ctx, ct) in &self.dealings {
            let _ = decrypt_share(&self.key, &e.public(), ctx, ct).expect("canonical");
        }
        self.runs.push(process_cpu_time().saturating_sub(t));
        self.last = Instant::now();
    }
}

/// Runs one session with its floor sampled around and along it.
fn measure(
    n: usize,
    mode: &'static str,
    params: SessionParams,
    members: &[SimMember],
    shares: BTreeMap<OperatorAddress, Scalar>,
    seed: u64,
) -> (Run, Finished) {
    let pedersen = params.mode == VssMode::Pedersen;
    let mut floor = Floor::new(n, if pedersen { 2 } else { 1 });
    let setup = setup(params);
    let mut network = kms_protocol::dkg::sim::Network::new(
        &setup,
        members,
        &shares,
        Net {
            seed,
            ..Net::default()
        },
    );
    (0..5).for_each(|_| floor.sample());
    let t = Instant::now();
    let mut sampling = Duration::ZERO;
    network.run_observed(60 * PHASE_MS, || {
        if floor.last.elapsed() >= Duration::from_secs(1) {
            let s = Instant::now();
            floor.sample();
            sampling += s.elapsed();
        }
    });
    let wall = t.elapsed().saturating_sub(sampling);
    (0..5).for_each(|_| floor.sample());
    let stats: Vec<_> = members
        .iter()
        .filter_map(|m| network.stats(&m.address()))
        .collect();
    let cpu: Vec<Duration> = stats.iter().map(|s| s.cpu).collect();
    let run = Run {
        n,
        mode,
        wall,
        cpu_median: median(cpu.clone()),
        cpu_max: cpu.iter().max().copied().unwrap_or_default(),
        bytes_median: median(stats.iter().map(|s| s.bytes_sent).collect()),
        floor: median(floor.runs),
    };
    let finished = Finished {
        network,
        members: members.to_vec(),
        setup,
    };
    let honest: Vec<_> = members.iter().map(SimMember::address).collect();
    let verdict = finished.check(&honest).expect("honest sessions agree");
    assert_eq!(verdict.activated, n, "{mode} at n = {n}: {verdict:?}");
    (run, finished)
}

/// Steady state: besides the peers' certificates (checked by `SimMember::generate`),
/// each node holds their protocol keys' tables for batch checks, built the first
/// time it heard from them (a one-time cost per peer, not a session's).
fn know_each_other(members: &[SimMember]) {
    for m in members {
        for peer in members.iter().filter(|p| p.address() != m.address()) {
            if let Some(c) = peer.operator.signer.protocol_certificate() {
                let _ = m.operator.certificates.prepared(&c.key);
            }
        }
    }
}

/// The value after `name` on the command line.
fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![7, 10, 15, 50, 100]);
    let modes = arg("--modes").unwrap_or_else(|| "feldman,pedersen".into());
    let wants = |name: &str| modes.split(',').any(|m| !m.is_empty() && name.contains(m));
    let rounds: usize = arg("--rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let schedule = Schedule {
        start_ms: 0,
        phase_ms: PHASE_MS,
    };
    let mut runs = Vec::new();
    let mut seed = 0u64;
    for round in 0..rounds {
        for &n in &sizes {
            let members = SimMember::generate(n, n as u64);
            know_each_other(&members);
            let participants: Vec<_> = members.iter().map(SimMember::participant).collect();
            // A session at n ≤ 15 lasts milliseconds, over which this machine's speed
            // swings: five per round there, one at n = 50 and 100 (seconds each, with
            // the floor sampled along).
            let repeats = if n <= 15 { 5 } else { 1 };
            for _ in 0..repeats {
                for vss in [VssMode::Feldman, VssMode::Pedersen] {
                    let [dkg_mode, reshare_mode] = match vss {
                        VssMode::Feldman => [MODES[0], MODES[1]],
                        VssMode::Pedersen => [MODES[2], MODES[3]],
                    };
                    let reshare = wants(reshare_mode.0);
                    if !wants(dkg_mode.0) && !reshare {
                        continue;
                    }
                    seed += 1;
                    let params = SessionParams::dkg(
                        SessionTimestamp(600),
                        vss,
                        participants.clone(),
                        schedule,
                    )
                    .expect("params");
                    let (run, first) =
                        measure(n, dkg_mode.0, params, &members, BTreeMap::new(), seed);
                    if wants(dkg_mode.0) {
                        runs.push(run);
                    }
                    if reshare {
                        seed += 1;
                        let params = SessionParams::reshare(
                            SessionTimestamp(1200),
                            vss,
                            participants.clone(),
                            first.commitment().expect("the DKG activated"),
                            participants.clone(),
                            schedule,
                        )
                        .expect("params");
                        let (run, _) =
                            measure(n, reshare_mode.0, params, &members, first.shares(), seed);
                        runs.push(run);
                    }
                }
            }
            eprintln!("round {}: n = {n} done", round + 1);
        }
    }
    print_table(&runs);
}

fn ratio(cpu: Duration, floor: Duration) -> f64 {
    cpu.as_secs_f64() / floor.as_secs_f64()
}

/// One line per (n, session): medians over the runs; the worst ratio is the slowest
/// node of the worst run.
fn print_table(runs: &[Run]) {
    let mut keys: Vec<(usize, &str)> = Vec::new();
    for r in runs {
        if !keys.contains(&(r.n, r.mode)) {
            keys.push((r.n, r.mode));
        }
    }
    keys.sort_by_key(|(n, m)| (*n, MODES.iter().position(|x| x.0 == *m)));
    println!(
        "| n | t | session | runs | wall (all nodes) | CPU / node | floor | ratio (median) | ratio range | worst node ÷ floor | bytes sent / node | bytes / (n·t) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, mode) in keys {
        let rs: Vec<&Run> = runs.iter().filter(|r| r.n == n && r.mode == mode).collect();
        let t = threshold(n);
        let mut ratios: Vec<f64> = rs.iter().map(|r| ratio(r.cpu_median, r.floor)).collect();
        ratios.sort_by(f64::total_cmp);
        let worst = rs
            .iter()
            .map(|r| ratio(r.cpu_max, r.floor))
            .fold(0.0, f64::max);
        let bytes = median(rs.iter().map(|r| r.bytes_median).collect());
        println!(
            "| {n} | {t} | {mode} | {} | {:.2} s | {:.1} ms | {:.1} ms | {:.2}× | {:.2}–{:.2} | {:.2}× | {:.1} KiB | {} |",
            rs.len(),
            median(rs.iter().map(|r| r.wall).collect()).as_secs_f64(),
            median(rs.iter().map(|r| r.cpu_median).collect()).as_secs_f64() * 1e3,
            median(rs.iter().map(|r| r.floor).collect()).as_secs_f64() * 1e3,
            ratios[ratios.len() / 2],
            ratios[0],
            ratios[ratios.len() - 1],
            worst,
            bytes as f64 / 1024.0,
            bytes / (n * t) as u64,
        );
    }
}

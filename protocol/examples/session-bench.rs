//! Whole sessions in the simulated network, timed per node, against the floor measured
//! in the same run: one bare blst G2 multi-scalar multiplication over the commitment
//! points a node must check (n·t for Feldman, 2·n·t for Pedersen, whose phase 2 adds a
//! second commitment per dealer).
//!
//! For Pedersen a second floor is sampled beside it: the same points as two MSMs of
//! `n·t` each, what its two phases (phase-1 and phase-2 commitments) check; the last
//! column gives that floor against the first and the session against it.
//!
//! Both sides are process CPU time (all threads: blst spreads a large MSM over the
//! cores), so the ratio does not depend on what else the machine is doing.
//!
//! `cargo run --release -p kms-protocol --example session-bench [-- --sizes 7,10,15,50,100] [--rounds 3] [--kinds dkg,reshare,pedersen]`
//!
//! Prints a Markdown table (the one in `docs/benchmarks.md`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kms_crypto::{G2Point, OperatorAddress, Scalar, threshold};
use kms_protocol::sim::{NetConfig, Network, SimOperator};
use kms_protocol::{
    Participant, Schedule, SessionOutcome, SessionParams, SessionTimestamp, VssMode,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

struct Row {
    n: usize,
    kind: &'static str,
    wall: Duration,
    cpu_median: Duration,
    cpu_max: Duration,
    bytes_per_node: u64,
    floor: Duration,
    floor_points: usize,
    /// Pedersen only: two MSMs of `n·t` points each, what its two phases check.
    floor_two: Option<Duration>,
}

use kms_protocol::sim::process_cpu_time;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Bare MSMs over `points` random points (or, `split`, two MSMs over half of them
/// each), timed in process CPU time.
struct Floor {
    points: Vec<G2Point>,
    scalars: Vec<Scalar>,
    split: bool,
    runs: Vec<Duration>,
    last: Instant,
}

impl Floor {
    fn new(points: usize) -> Self {
        Self::with_split(points, false)
    }

    fn with_split(points: usize, split: bool) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(points as u64);
        let g = G2Point::generator();
        let base: Vec<G2Point> = (0..64).map(|_| g.mul(&Scalar::random(&mut rng))).collect();
        Self {
            points: (0..points)
                .map(|i| base[i % 64].add(&base[(i * 7 + 1) % 64]))
                .collect(),
            scalars: (0..points).map(|_| Scalar::random(&mut rng)).collect(),
            split,
            runs: Vec::new(),
            last: Instant::now(),
        }
    }

    fn sample(&mut self) {
        let t = process_cpu_time();
        if self.split {
            let half = self.points.len() / 2;
            for (p, k) in [
                (&self.points[..half], &self.scalars[..half]),
                (&self.points[half..], &self.scalars[half..]),
            ] {
                let _ = G2Point::msm(p, k).expect("lengths match");
            }
        } else {
            let _ = G2Point::msm(&self.points, &self.scalars).expect("lengths match");
        }
        self.runs.push(process_cpu_time().saturating_sub(t));
        self.last = Instant::now();
    }
}

/// Runs a session and measures its floor over `floor_points` in the same stretch of
/// time: five times right before, once per wall-clock second while it runs (between
/// the simulation's steps, outside the nodes' timed work) and five times right after;
/// the floor is the median. This machine's speed changes by 2–3× from minute to
/// minute, and a session at n = 100 lasts a minute: sampling the floor all along
/// makes such changes weigh on both sides of the ratio alike.
/// With `split`, a second floor is sampled alongside: the same points as two MSMs of
/// half of them each (Pedersen checks its `2·n·t` points in two phases).
fn run(
    params: SessionParams,
    ops: &[SimOperator],
    shares: BTreeMap<OperatorAddress, Scalar>,
    floor_points: usize,
    split: bool,
) -> (Network, Duration, Duration, Option<Duration>) {
    let end = params.schedule.phase_end(10);
    let mut net = Network::new(&params, ops, shares, NetConfig::default()).expect("network");
    let mut floor = Floor::new(floor_points);
    let mut two = split.then(|| Floor::with_split(floor_points, true));
    let sample = |floor: &mut Floor, two: &mut Option<Floor>| {
        floor.sample();
        if let Some(two) = two {
            two.sample();
        }
    };
    (0..5).for_each(|_| sample(&mut floor, &mut two));
    let t = Instant::now();
    let mut session_floor = Duration::ZERO;
    net.run_observed(end, || {
        if floor.last.elapsed() >= Duration::from_secs(1) {
            let s = Instant::now();
            sample(&mut floor, &mut two);
            session_floor += s.elapsed();
        }
    });
    let wall = t.elapsed().saturating_sub(session_floor);
    (0..5).for_each(|_| sample(&mut floor, &mut two));
    (net, wall, median(floor.runs), two.map(|f| median(f.runs)))
}

fn stats(net: &Network, ops: &[SimOperator]) -> (Duration, Duration, u64) {
    let cpu: Vec<Duration> = ops
        .iter()
        .filter_map(|o| net.stats(&o.address))
        .map(|s| s.cpu)
        .collect();
    let bytes: u64 = ops
        .iter()
        .filter_map(|o| net.stats(&o.address))
        .map(|s| s.bytes_sent)
        .sum();
    let max = cpu.iter().max().copied().unwrap_or_default();
    (median(cpu), max, bytes / ops.len() as u64)
}

fn participants(ops: &[SimOperator]) -> Vec<Participant> {
    ops.iter().map(SimOperator::participant).collect()
}

/// The value after `name` on the command line.
fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let sizes: Vec<usize> = arg("--sizes")
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![7, 10, 15, 50, 100]);
    // `--kinds dkg,reshare,pedersen` (default all): a subset, for profiling one kind.
    let kinds = arg("--kinds").unwrap_or_else(|| "dkg,reshare,pedersen".into());
    let wants = |k: &str| kinds.split(',').any(|x| x == k);
    let rounds: usize = arg("--rounds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let schedule = Schedule {
        start_ms: 0,
        phase_ms: 1_000,
    };
    let mut rows = Vec::new();
    let mut cold = Vec::new();
    for (round, &n) in (0..rounds).flat_map(|r| sizes.iter().map(move |n| (r, n))) {
        let t = threshold(n);
        let ops = SimOperator::generate(n, n as u64);
        // Steady state: the peers' protocol-key certificates were checked when the
        // nodes first met (see `cold_start` for that one-time cost).
        SimOperator::know_each_other(&ops);
        if round == 0 {
            cold.push((n, cold_start(&ops)));
        }
        // A session at n ≤ 15 lasts a few milliseconds of CPU, over which this
        // machine's speed swings by ±25%: five sessions per round there, so that the
        // median rests on fifteen runs, not three. (At n = 50 and 100 a session spans
        // seconds to a minute and the floor is sampled along it.)
        let repeats = if n <= 15 { 5 } else { 1 };
        for (kind, mode) in (0..repeats).flat_map(|_| {
            [
                ("Feldman DKG", VssMode::Feldman),
                ("Pedersen DKG", VssMode::Pedersen),
            ]
        }) {
            let reshare = wants("reshare") && mode == VssMode::Feldman;
            let wanted = match mode {
                VssMode::Feldman => wants("dkg") || reshare,
                VssMode::Pedersen => wants("pedersen"),
            };
            if !wanted {
                continue;
            }
            let params =
                SessionParams::dkg(SessionTimestamp(1), mode, participants(&ops), schedule)
                    .expect("params");
            let floor_points = if mode == VssMode::Pedersen {
                2 * n * t
            } else {
                n * t
            };
            let (net, wall, floor, floor_two) = run(
                params,
                &ops,
                BTreeMap::new(),
                floor_points,
                mode == VssMode::Pedersen,
            );
            let (cpu_median, cpu_max, bytes_per_node) = stats(&net, &ops);
            if mode == VssMode::Pedersen || wants("dkg") {
                rows.push(Row {
                    n,
                    kind,
                    wall,
                    cpu_median,
                    cpu_max,
                    bytes_per_node,
                    floor,
                    floor_points,
                    floor_two,
                });
            }
            if reshare {
                // Reshare the key just made, to the same set.
                let mut shares = BTreeMap::new();
                let mut previous = None;
                for o in &ops {
                    if let Some(Ok(SessionOutcome::NewVersion(v))) = net.outcome(&o.address) {
                        shares.insert(o.address, v.share.clone());
                        previous = Some(v.commitment.clone());
                    }
                }
                let previous = previous.expect("DKG produced a key");
                let params = SessionParams::reshare(
                    SessionTimestamp(2),
                    VssMode::Feldman,
                    participants(&ops),
                    previous,
                    participants(&ops),
                    schedule,
                )
                .expect("params");
                let (net, wall, floor, _) = run(params, &ops, shares, n * t, false);
                let (cpu_median, cpu_max, bytes_per_node) = stats(&net, &ops);
                rows.push(Row {
                    n,
                    kind: "Feldman reshare",
                    wall,
                    cpu_median,
                    cpu_max,
                    bytes_per_node,
                    floor,
                    floor_points: n * t,
                    floor_two: None,
                });
            }
        }
        eprintln!("round {}: n = {n} done", round + 1);
    }
    print_table(rows);
    println!();
    println!(
        "| n | first session only: checking the n − 1 peers' certificates, CPU / node | ÷ Feldman DKG floor |"
    );
    println!("|---|---|---|");
    for (n, (cpu, floor)) in cold {
        println!(
            "| {n} | {:.1} ms | {:.2}× |",
            cpu.as_secs_f64() * 1e3,
            cpu.as_secs_f64() / floor.as_secs_f64()
        );
    }
}

/// What a node with an empty certificate cache pays once: its peers' certificates
/// checked as one BN254 batch, keys prepared (what `Engine` does for certificates it
/// has not seen); with the Feldman floor measured right after.
fn cold_start(ops: &[SimOperator]) -> (Duration, Duration) {
    use kms_crypto::signer::{OperatorPublicKey, OperatorSignature, ProtocolKeyCertificate};
    let certificates: Vec<_> = ops[1..]
        .iter()
        .filter_map(
            |o| match (o.signer.public_key(), o.signer.protocol_certificate()) {
                (OperatorPublicKey::Bn254(pk), Some(c)) => Some((pk, c.clone())),
                _ => None,
            },
        )
        .collect();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let t = process_cpu_time();
    let keys: Vec<_> = certificates.iter().map(|(pk, _)| pk.prepare()).collect();
    let items: Vec<_> = certificates
        .iter()
        .enumerate()
        .filter_map(|(i, (_, c))| match c.signature {
            OperatorSignature::Bn254(sig) => Some((
                i,
                ProtocolKeyCertificate::digest(&c.operator, &c.key, c.not_before, c.not_after),
                sig,
            )),
            _ => None,
        })
        .collect();
    assert!(kms_crypto::signer::bn254::verify_batch(
        &keys, &items, &mut rng
    ));
    let cpu = process_cpu_time().saturating_sub(t);
    let mut floor = Floor::new(ops.len() * threshold(ops.len()));
    (0..5).for_each(|_| floor.sample());
    (cpu, median(floor.runs))
}
/// One line per configuration: medians over the runs (the ratio is the median of the
/// runs' ratios; the last column gives their range and number).
fn print_table(rows: Vec<Row>) {
    let mut keys: Vec<(usize, &'static str)> = Vec::new();
    for r in &rows {
        if !keys.contains(&(r.n, r.kind)) {
            keys.push((r.n, r.kind));
        }
    }
    println!(
        "| n | t | session | wall (all nodes, 1 process) | CPU / node (median) | max | floor: G2 MSM, CPU | floor points | ratio | bytes sent / node | bytes / (n·t) | ratio: range (runs) | Pedersen: two MSMs of n·t ÷ floor; ratio to them |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (n, kind) in keys {
        let runs: Vec<&Row> = rows.iter().filter(|r| r.n == n && r.kind == kind).collect();
        let med = |f: &dyn Fn(&Row) -> Duration| median(runs.iter().map(|r| f(r)).collect());
        let mut sorted: Vec<f64> = runs
            .iter()
            .map(|r| r.cpu_median.as_secs_f64() / r.floor.as_secs_f64())
            .collect();
        sorted.sort_by(f64::total_cmp);
        let r0 = runs[0];
        let t = threshold(n);
        // Per run: the two-MSM floor against the one-MSM floor, and the CPU against
        // the two-MSM floor (medians over the runs).
        let two: Vec<(f64, f64)> = runs
            .iter()
            .filter_map(|r| {
                r.floor_two.map(|f2| {
                    (
                        f2.as_secs_f64() / r.floor.as_secs_f64(),
                        r.cpu_median.as_secs_f64() / f2.as_secs_f64(),
                    )
                })
            })
            .collect();
        let two = if two.is_empty() {
            "—".to_string()
        } else {
            let mut a: Vec<f64> = two.iter().map(|x| x.0).collect();
            let mut b: Vec<f64> = two.iter().map(|x| x.1).collect();
            a.sort_by(f64::total_cmp);
            b.sort_by(f64::total_cmp);
            format!("{:.2}; {:.2}×", a[a.len() / 2], b[b.len() / 2])
        };
        println!(
            "| {} | {} | {} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.2}× | {:.1} KiB | {} | {:.2}–{:.2} ({}) | {} |",
            n,
            t,
            kind,
            med(&|r| r.wall).as_secs_f64(),
            med(&|r| r.cpu_median).as_secs_f64() * 1e3,
            med(&|r| r.cpu_max).as_secs_f64() * 1e3,
            med(&|r| r.floor).as_secs_f64() * 1e3,
            r0.floor_points,
            sorted[sorted.len() / 2],
            r0.bytes_per_node as f64 / 1024.0,
            r0.bytes_per_node / (n * t) as u64,
            sorted[0],
            sorted[sorted.len() - 1],
            sorted.len(),
            two,
        );
    }
}

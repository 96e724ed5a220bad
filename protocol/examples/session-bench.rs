//! Whole sessions in the simulated network, timed per node, against the floor measured
//! in the same run: one bare blst G2 multi-scalar multiplication over the commitment
//! points a node must check (n·t for Feldman, 2·n·t for Pedersen, whose phase 2 adds a
//! second commitment per dealer).
//!
//! Both sides are process CPU time (all threads: blst spreads a large MSM over the
//! cores), so the ratio does not depend on what else the machine is doing.
//!
//! `cargo run --release -p kms-protocol --example session-bench [-- --sizes 7,10,15,50,100]`
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
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn floor_msm(points: usize) -> Duration {
    use kms_protocol::sim::process_cpu_time;
    let mut rng = ChaCha20Rng::seed_from_u64(points as u64);
    let g = G2Point::generator();
    let base: Vec<G2Point> = (0..64).map(|_| g.mul(&Scalar::random(&mut rng))).collect();
    let pts: Vec<G2Point> = (0..points)
        .map(|i| base[i % 64].add(&base[(i * 7 + 1) % 64]))
        .collect();
    let scalars: Vec<Scalar> = (0..points).map(|_| Scalar::random(&mut rng)).collect();
    let runs: Vec<Duration> = (0..5)
        .map(|_| {
            let t = process_cpu_time();
            let _ = G2Point::msm(&pts, &scalars).expect("lengths match");
            process_cpu_time().saturating_sub(t)
        })
        .collect();
    median(runs)
}

fn run(
    params: SessionParams,
    ops: &[SimOperator],
    shares: BTreeMap<OperatorAddress, Scalar>,
) -> (Network, Duration) {
    let end = params.schedule.phase_end(10);
    let mut net = Network::new(&params, ops, shares, NetConfig::default()).expect("network");
    let t = Instant::now();
    net.run(end);
    (net, t.elapsed())
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

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip_while(|a| a != "--sizes")
        .nth(1)
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![7, 10, 15, 50, 100]);
    let schedule = Schedule {
        start_ms: 0,
        phase_ms: 1_000,
    };
    let mut rows = Vec::new();
    for &n in &sizes {
        let t = threshold(n);
        let ops = SimOperator::generate(n, n as u64);
        for (kind, mode) in [
            ("Feldman DKG", VssMode::Feldman),
            ("Pedersen DKG", VssMode::Pedersen),
        ] {
            let params =
                SessionParams::dkg(SessionTimestamp(1), mode, participants(&ops), schedule)
                    .expect("params");
            let (net, wall) = run(params, &ops, BTreeMap::new());
            let (cpu_median, cpu_max, bytes_per_node) = stats(&net, &ops);
            let floor_points = if mode == VssMode::Pedersen {
                2 * n * t
            } else {
                n * t
            };
            rows.push(Row {
                n,
                kind,
                wall,
                cpu_median,
                cpu_max,
                bytes_per_node,
                floor: floor_msm(floor_points),
                floor_points,
            });
            if mode == VssMode::Feldman {
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
                let (net, wall) = run(params, &ops, shares);
                let (cpu_median, cpu_max, bytes_per_node) = stats(&net, &ops);
                rows.push(Row {
                    n,
                    kind: "Feldman reshare",
                    wall,
                    cpu_median,
                    cpu_max,
                    bytes_per_node,
                    floor: floor_msm(n * t),
                    floor_points: n * t,
                });
            }
        }
        eprintln!("n = {n} done");
    }
    println!(
        "| n | t | session | wall (all nodes, 1 process) | CPU / node (median) | max | floor: G2 MSM, CPU | floor points | ratio | bytes sent / node | bytes / (n·t) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let t = threshold(r.n);
        println!(
            "| {} | {} | {} | {:.2} s | {:.1} ms | {:.1} ms | {:.1} ms | {} | {:.2}× | {:.1} KiB | {} |",
            r.n,
            t,
            r.kind,
            r.wall.as_secs_f64(),
            r.cpu_median.as_secs_f64() * 1e3,
            r.cpu_max.as_secs_f64() * 1e3,
            r.floor.as_secs_f64() * 1e3,
            r.floor_points,
            r.cpu_median.as_secs_f64() / r.floor.as_secs_f64(),
            r.bytes_per_node as f64 / 1024.0,
            r.bytes_per_node / (r.n * t) as u64,
        );
    }
}

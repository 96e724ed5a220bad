//! The adversarial sweep of protocol v2 ([`kms_protocol::dkg::sweep`]): every case
//! (kind × behaviour × DKG/reshare × Feldman/Pedersen × size) `--runs` times, each
//! run with its own seed; prints a Markdown table of agreement violations, stalls and
//! virtual completion times, then every failing run with the seed that replays it.
//!
//! `cargo run --release -p kms-protocol --example v2-sweep -- [--runs 10] [--n 4,6,7,10] [--seed 1] [--only dkg/pedersen/7/vote] [--replay 0x5584f44af1a419b0]`
//!
//! `--only` keeps the cases whose label contains the given text; `--seed` is the
//! base seed (run `i` of a case uses `run_seed(base, case, i)`); `--replay` runs the
//! kept cases once each with exactly that run seed (as printed by a failure).

use std::time::Instant;

use kms_protocol::dkg::sweep::{Case, Harness, SIZES, run_seed, summarize, table};

struct Args {
    runs: u64,
    sizes: Vec<usize>,
    seed: u64,
    only: Option<String>,
    replay: Option<u64>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        runs: 10,
        sizes: SIZES.to_vec(),
        seed: 1,
        only: None,
        replay: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--runs" => args.runs = value()?.parse().map_err(|e| format!("--runs: {e}"))?,
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--n" => {
                args.sizes = value()?
                    .split(',')
                    .map(|s| s.trim().parse().map_err(|e| format!("--n: {e}")))
                    .collect::<Result<_, _>>()?
            }
            "--only" => args.only = Some(value()?),
            "--replay" => {
                let v = value()?;
                let hex = v.trim_start_matches("0x");
                args.replay =
                    Some(u64::from_str_radix(hex, 16).map_err(|e| format!("--replay: {e}"))?)
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let cases: Vec<Case> = Case::all(&args.sizes)
        .into_iter()
        .filter(|c| args.only.as_ref().is_none_or(|o| c.label().contains(o)))
        .collect();
    let started = Instant::now();
    let mut harness = Harness::new();
    let mut reports = Vec::new();
    for case in &cases {
        match args.replay {
            Some(seed) => reports.push(harness.run(case, seed)),
            None => {
                for i in 0..args.runs {
                    reports.push(harness.run(case, run_seed(args.seed, case, i)));
                }
            }
        }
    }
    print!("{}", table(&summarize(&reports)));
    let total_violations = reports.iter().filter(|r| r.violation.is_some()).count();
    let total_stalls = reports.iter().filter(|r| r.stalled > 0).count();
    println!(
        "\n{} cases, {} runs in {:.0?}: {total_violations} agreement violations, {total_stalls} runs with a stall",
        cases.len(),
        reports.len(),
        started.elapsed()
    );
    for r in reports
        .iter()
        .filter(|r| r.violation.is_some() || r.stalled > 0)
    {
        println!(
            "FAIL {} seed {:#x} (base {}), byzantine {}: violation {:?}, {} stalled",
            r.case.label(),
            r.seed,
            args.seed,
            r.byzantine,
            r.violation,
            r.stalled
        );
    }
    if total_violations > 0 || total_stalls > 0 {
        std::process::exit(1);
    }
}

//! Gas of each accepted fraud proof on anvil (Prague), by operator-set size and key
//! type. Run with `--no-capture` to see the table (docs/benchmarks.md keeps a copy).

mod common;

use alloy::primitives::B256;
use common::evidence::*;
use common::{Fixture, TestOperator};
use kms_chain::{FraudProof, KeyCurve, ProofOutcome};
use kms_protocol::sim::SimOperator;
use kms_protocol::{FraudEvidence, Participant, SessionParams, VssMode};

const TS: u64 = 1_900_000_000;

async fn gas(from: &TestOperator, proof: &FraudProof) -> u64 {
    match from.kms.submit_fraud_proof(proof).await.expect("accepted") {
        ProofOutcome::Submitted(tx) => tx.gas_used,
        other => panic!("expected a submission, got {other:?}"),
    }
}

fn params(f: &Fixture, n: usize, ts: u64) -> SessionParams {
    let mut members: Vec<Participant> = f.participants().into_iter().take(n).collect();
    members.extend(
        SimOperator::generate(n.saturating_sub(members.len()), n as u64)
            .iter()
            .map(SimOperator::participant),
    );
    session(ts, VssMode::Feldman, members)
}

struct Row {
    curve: &'static str,
    n: usize,
    t: usize,
    commitment_bytes: usize,
    gas: [u64; 6],
}

async fn measure(curve: KeyCurve, n: usize) -> Option<Row> {
    let f = Fixture::new(7, curve, 100 + n as u64).await?;
    let ops = &f.operators;
    let p = params(&f, n, TS);
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| ops[i].sim());
    let player = p.players.addresses().last().copied().expect("players");
    let mut out = [0u64; 6];

    // Invalid share by A: three complaints (B, C, D); the third slashes.
    let ev = invalid_share(&a, &p, &player, 1);
    let proof = FraudProof::from_evidence(&ev, &p).unwrap();
    out[0] = gas(&ops[1], &proof).await;
    gas(&ops[2], &proof).await;
    out[1] = gas(&ops[3], &proof).await;
    // Equivocation by B.
    let ev = equivocation(&b, &p, 2);
    out[2] = gas(&ops[0], &FraudProof::from_evidence(&ev, &p).unwrap()).await;
    // A share naming another commitment, by C.
    let ev = inconsistency(&c, &p, &player, 3);
    out[3] = gas(&ops[0], &FraudProof::from_evidence(&ev, &p).unwrap()).await;
    // A commitment other than the one D recorded.
    let shown = Dealing::new(&d, &p, 4);
    let recorded = Dealing::new(&d, &p, 5);
    ops[3]
        .kms
        .submit_commitment(TS, B256::from(recorded.hash()), B256::ZERO)
        .await
        .unwrap();
    let proof = FraudProof::RegistryInconsistency {
        commitment: shown.commitment.clone(),
    };
    out[4] = gas(&ops[0], &proof).await;
    // E equivocates in three sessions: the third is the full slash and ejection.
    for (i, ts) in [TS + 1, TS + 2, TS + 3].into_iter().enumerate() {
        let p = params(&f, n, ts);
        let ev = equivocation(&e, &p, 10 + i as u64);
        let used = gas(&ops[0], &FraudProof::from_evidence(&ev, &p).unwrap()).await;
        if i == 2 {
            out[5] = used;
        }
    }
    let FraudEvidence::Equivocation { first, .. } = equivocation(&b, &p, 2) else {
        unreachable!()
    };
    Some(Row {
        curve: match curve {
            KeyCurve::Bn254 => "BN254",
            KeyCurve::Ecdsa => "ECDSA",
        },
        n,
        t: p.players.threshold(),
        commitment_bytes: first.payload.len(),
        gas: out,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_per_proof_type() {
    let mut rows = Vec::new();
    for (curve, n) in [
        (KeyCurve::Bn254, 4),
        (KeyCurve::Bn254, 10),
        (KeyCurve::Bn254, 50),
        (KeyCurve::Bn254, 100),
        (KeyCurve::Ecdsa, 10),
        (KeyCurve::Ecdsa, 100),
    ] {
        let Some(row) = measure(curve, n).await else {
            return;
        };
        rows.push(row);
    }
    println!(
        "| key | n | t | commitment payload (bytes) | invalid share, 1st complaint | invalid share, 3rd (slash) | equivocation (slash) | commitment inconsistency (slash) | registry inconsistency (slash) | 3rd fraud session (full slash + ejection) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let g = r.gas.map(|x| format!("{x}"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.curve, r.n, r.t, r.commitment_bytes, g[0], g[1], g[2], g[3], g[4], g[5]
        );
    }
    // Sanity bounds: the largest proof fits well inside a block.
    for r in &rows {
        assert!(
            r.gas.iter().all(|g| *g > 21_000 && *g < 15_000_000),
            "{:?}",
            r.gas
        );
    }
}

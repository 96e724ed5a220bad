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

// ---------------------------------------------------------------- protocol v2

struct RowV2 {
    curve: &'static str,
    n: usize,
    t: usize,
    dealing_bytes: usize,
    quorum: usize,
    gas: [u64; 8],
}

async fn gas_v2(from: &TestOperator, proof: &kms_chain::FraudProofV2) -> u64 {
    match from
        .kms
        .submit_fraud_proof_v2(proof)
        .await
        .expect("accepted")
    {
        ProofOutcome::Submitted(tx) => tx.gas_used,
        other => panic!("expected a submission, got {other:?}"),
    }
}

async fn measure_v2(curve: KeyCurve, n: usize) -> Option<RowV2> {
    use common::v2::{deployment, dkg, dkg_in, member, members, quorum, reshare, reshare_in};
    use kms_chain::FraudProofV2;
    use kms_protocol::dkg::{BaseDecision, Evidence, Setup, forge};
    // Every member registered: a Pedersen proof's precommits are checked against the
    // voters' registered keys.
    let f = Fixture::new(n, curve, 200 + n as u64).await?;
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, n as u64);
    let ops = &f.operators;
    let m = |i: usize| member(&ms, &ops[i]);
    let proof = |e: &Evidence, s: &Setup| FraudProofV2::from_evidence(e, s, None).unwrap();
    let proof_in = |e: &Evidence, s: &Setup, d: &BaseDecision| {
        FraudProofV2::from_evidence(e, s, Some(d)).unwrap()
    };
    let mut out = [0u64; 8];

    // Invalid share by operator 0 for operator 1: three members submit; the third slashes.
    let setup = dkg(&ms, TS, dep);
    let e = forge::invalid_share(&setup, m(0), m(1), 1);
    let Evidence::InvalidShare { dealing, .. } = &e else {
        unreachable!()
    };
    let dealing_bytes = dealing.payload.len();
    out[0] = gas_v2(&ops[2], &proof(&e, &setup)).await;
    gas_v2(&ops[3], &proof(&e, &setup)).await;
    out[1] = gas_v2(&ops[4], &proof(&e, &setup)).await;
    // Two dealings of operator 2.
    let eq = Evidence::Equivocation {
        first: forge::dealing(&setup, m(2), None, None, 2),
        second: forge::dealing(&setup, m(2), None, None, 3),
    };
    out[2] = gas_v2(&ops[0], &proof(&eq, &setup)).await;
    // Two precommits of operator 3.
    let vote = |v| forge::vote(&setup, m(3), 1, 0, 2, [v; 32]);
    let eq = Evidence::Equivocation {
        first: vote(1),
        second: vote(2),
    };
    out[3] = gas_v2(&ops[0], &proof(&eq, &setup)).await;
    // A reshare dealing of operator 5 from all n members, with a wrong constant.
    let (previous, shares) = forge::previous_key(&ms, setup.params.players.threshold(), 4);
    let rs = reshare(&ms, previous, &ms, TS + 1, dep);
    let d = m(5);
    let e = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing(&rs, d, &shares[&d.address()], 1, 5),
    };
    out[4] = gas_v2(&ops[0], &proof(&e, &rs)).await;
    // Pedersen: an invalid share by operator 0 with the base's decision (a quorum of
    // precommits and every player's reveal); then a reshare constant by operator 5.
    let ps = dkg_in(VssMode::Pedersen, &ms, TS + 2, dep);
    let q = quorum(&ps);
    let (decision, base) = forge::base_decision(&ps, &ms, q, 0, 6);
    let e = forge::invalid_share_in(&ps, m(0), m(1), Some(&base), 7);
    out[5] = gas_v2(&ops[2], &proof_in(&e, &ps, &decision)).await;
    gas_v2(&ops[3], &proof_in(&e, &ps, &decision)).await;
    out[6] = gas_v2(&ops[4], &proof_in(&e, &ps, &decision)).await;
    let prs = reshare_in(
        VssMode::Pedersen,
        &ms,
        rs.params.previous.clone().unwrap(),
        &ms,
        TS + 3,
        dep,
    );
    let (decision, base) = forge::base_decision(&prs, &ms, quorum(&prs), 0, 8);
    let e = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing_in(&prs, d, &shares[&d.address()], 1, Some(&base), 9),
    };
    out[7] = gas_v2(&ops[0], &proof_in(&e, &prs, &decision)).await;
    Some(RowV2 {
        curve: match curve {
            KeyCurve::Bn254 => "BN254",
            KeyCurve::Ecdsa => "ECDSA",
        },
        n,
        t: setup.params.players.threshold(),
        dealing_bytes,
        quorum: q,
        gas: out,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gas_per_v2_proof_type() {
    let mut rows = Vec::new();
    for (curve, n) in [
        (KeyCurve::Bn254, 7),
        (KeyCurve::Bn254, 20),
        (KeyCurve::Bn254, 50),
        (KeyCurve::Ecdsa, 7),
        (KeyCurve::Ecdsa, 50),
    ] {
        let Some(row) = measure_v2(curve, n).await else {
            return;
        };
        rows.push(row);
    }
    println!(
        "| key | n | t | quorum | dealing payload (bytes) | v2 invalid share, 1st complaint | 3rd (slash) | two dealings (slash) | two precommits (slash) | wrong reshare constant (slash) | Pedersen invalid share, 1st | 3rd (slash) | Pedersen reshare constant (slash) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let g = r.gas.map(|x| format!("{x}"));
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.curve,
            r.n,
            r.t,
            r.quorum,
            r.dealing_bytes,
            g[0],
            g[1],
            g[2],
            g[3],
            g[4],
            g[5],
            g[6],
            g[7]
        );
    }
    for r in &rows {
        assert!(
            r.gas.iter().all(|g| *g > 21_000 && *g < 15_000_000),
            "{:?}",
            r.gas
        );
    }
}

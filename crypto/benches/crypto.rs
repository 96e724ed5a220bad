//! Criterion benchmarks of every primitive of `kms-crypto` at the sizes the protocol
//! uses. `scripts/bench-table.py` turns the results into the table of
//! `docs/benchmarks.md`, including the ratio of batched share verification to one bare
//! G2 MSM over the same number of points (its floor).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kms_crypto::group::{Comb, FixedBase, pairing_bytes};
use kms_crypto::tbls::{PartialSignature, combine_partials, hash_app_id, sign_partial};
use kms_crypto::vss::batch::{BatchItem, verify_batch};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::vss::pedersen::{PedersenBase, PedersenDealing, PedersenShare};
use kms_crypto::{G1Point, G2Point, Scalar, ibe, threshold};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIZES: [usize; 5] = [7, 10, 15, 50, 100];

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0xbe7c)
}

fn random_g2(n: usize, rng: &mut ChaCha20Rng) -> Vec<G2Point> {
    let g = G2Point::generator();
    (0..n).map(|_| g.mul(&Scalar::random(rng))).collect()
}

fn primitives(c: &mut Criterion) {
    let mut rng = rng();
    let k = Scalar::random(&mut rng);
    let p1 = G1Point::generator().mul(&Scalar::random(&mut rng));
    let p2 = G2Point::generator().mul(&Scalar::random(&mut rng));
    let mut g = c.benchmark_group("primitives");
    g.bench_function("g1_mul", |b| b.iter(|| black_box(&p1).mul(black_box(&k))));
    g.bench_function("g2_mul", |b| b.iter(|| black_box(&p2).mul(black_box(&k))));
    let generator = G2Point::generator();
    g.bench_function("g2_generator_mul_blst", |b| {
        b.iter(|| black_box(&generator).mul(black_box(&k)))
    });
    g.bench_function("g2_generator_mul_table", |b| {
        b.iter(|| G2Point::mul_generator(black_box(&k)))
    });
    g.bench_function("g2_fixed_base_table_build", |b| {
        b.iter(|| FixedBase::new(black_box(&p2)))
    });
    let comb = Comb::new(&p2).expect("in G2");
    g.bench_function("g2_comb_mul", |b| {
        b.iter(|| black_box(&comb).mul(black_box(&k)))
    });
    g.bench_function("g2_comb_build", |b| b.iter(|| Comb::new(black_box(&p2))));
    g.bench_function("pairing", |b| {
        b.iter(|| pairing_bytes(black_box(&p1), black_box(&p2)))
    });
    g.bench_function("hash_to_g1", |b| {
        b.iter(|| hash_app_id(black_box(b"app-0123456789")))
    });
    g.finish();
}

fn g2_msm(c: &mut Criterion) {
    let mut rng = rng();
    let mut g = c.benchmark_group("g2_msm");
    g.sample_size(10);
    for n in [100usize, 1_000, 10_000] {
        let points = random_g2(n, &mut rng);
        let scalars: Vec<Scalar> = (0..n).map(|_| Scalar::random(&mut rng)).collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| G2Point::msm(&points, &scalars).unwrap())
        });
    }
    g.finish();
}

/// One dealer's work: a random polynomial of degree t−1, its commitment, n shares.
fn deal(c: &mut Criterion) {
    let mut g = c.benchmark_group("deal_feldman");
    g.sample_size(10);
    for n in SIZES {
        let t = threshold(n);
        let xs: Vec<Scalar> = (1..=n as u64).map(Scalar::from_u64).collect();
        let mut rng = rng();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                let d = FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap();
                xs.iter().map(|x| d.share(x)).collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

/// A receiver verifying the shares of all n dealers (n·t commitment points), against
/// the floor: one bare MSM over n·t + 1 points.
fn batch_verify(c: &mut Criterion) {
    let mut g = c.benchmark_group("batch_verify");
    g.sample_size(10).measurement_time(Duration::from_secs(4));
    for n in SIZES {
        let t = threshold(n);
        let mut rng = rng();
        let x = Scalar::from_u64(424242);
        let dealings: Vec<FeldmanDealing> = (0..n)
            .map(|_| FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap())
            .collect();
        let shares: Vec<Scalar> = dealings.iter().map(|d| d.share(&x)).collect();
        let items: Vec<BatchItem> = dealings
            .iter()
            .zip(&shares)
            .map(|(d, s)| BatchItem::feldman(d.commitment(), s))
            .collect();
        g.bench_with_input(BenchmarkId::new("feldman", n), &n, |b, _| {
            b.iter(|| verify_batch(&x, &items, None, &mut rng).unwrap())
        });
        let points = random_g2(n * t + 1, &mut rng);
        let scalars: Vec<Scalar> = (0..points.len())
            .map(|_| Scalar::random(&mut rng))
            .collect();
        g.bench_with_input(BenchmarkId::new("floor_msm", n), &n, |b, _| {
            b.iter(|| G2Point::msm(&points, &scalars).unwrap())
        });

        let base = PedersenBase::from_seed(&[5u8; 32]);
        let pd: Vec<PedersenDealing> = (0..n)
            .map(|_| PedersenDealing::new(Scalar::random(&mut rng), t, &base, &mut rng).unwrap())
            .collect();
        let ps: Vec<PedersenShare> = pd.iter().map(|d| d.share(&x)).collect();
        let pitems: Vec<BatchItem> = pd
            .iter()
            .zip(&ps)
            .map(|(d, s)| BatchItem::pedersen(d.commitment(), s))
            .collect();
        g.bench_with_input(BenchmarkId::new("pedersen", n), &n, |b, _| {
            b.iter(|| verify_batch(&x, &pitems, Some(&base), &mut rng).unwrap())
        });
    }
    g.finish();
}

/// Client side: verify and combine t partial signatures into an app key.
fn combine(c: &mut Criterion) {
    let mut g = c.benchmark_group("combine_partials");
    g.sample_size(10);
    for n in SIZES {
        let t = threshold(n);
        let mut rng = rng();
        let d = FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).unwrap();
        let partials: Vec<PartialSignature> = (1..=t as u64)
            .map(|i| {
                let x = Scalar::from_u64(i);
                PartialSignature {
                    signature: sign_partial(&d.share(&x), b"app"),
                    evaluation_point: x,
                }
            })
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| combine_partials(d.commitment(), b"app", &partials, &mut rng).unwrap())
        });
    }
    g.finish();
}

fn ibe_bench(c: &mut Criterion) {
    let mut rng = rng();
    let s = Scalar::random(&mut rng);
    let mpk = G2Point::generator().mul(&s);
    let key = kms_crypto::AppPrivateKey::from_point(hash_app_id(b"app").mul(&s));
    let msg = vec![0x42u8; 1024];
    let ct = ibe::encrypt(&mpk, b"app", &msg, &mut rng).unwrap();
    let mut g = c.benchmark_group("ibe_1KiB");
    g.bench_function("encrypt", |b| {
        b.iter(|| ibe::encrypt(&mpk, b"app", &msg, &mut rng).unwrap())
    });
    g.bench_function("decrypt", |b| {
        b.iter(|| ibe::decrypt(&key, b"app", &ct).unwrap())
    });
    g.finish();
}

fn operator_signatures(c: &mut Criterion) {
    use kms_crypto::signer::{
        Bn254SecretKey, Bn254Signer, EcdsaSigner, OperatorSigner, OperatorVerifier,
    };
    let mut rng = rng();
    let hash = [0x5au8; 32];
    let bn = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
    let bn_pk = bn.public_key();
    let bn_sig = bn.sign(&hash);
    let mut g = c.benchmark_group("bn254");
    g.bench_function("sign", |b| b.iter(|| bn.sign(black_box(&hash))));
    g.bench_function("verify", |b| {
        b.iter(|| bn_pk.verify(black_box(&hash), &bn_sig).unwrap())
    });
    // What a node does per phase: one message from each of 100 operators, their keys
    // prepared once per session.
    let signers: Vec<Bn254Signer> = (0..100)
        .map(|_| Bn254Signer::new(Bn254SecretKey::random(&mut rng)))
        .collect();
    let keys: Vec<_> = signers
        .iter()
        .map(|s| s.bn254_public_key().prepare())
        .collect();
    let items: Vec<_> = signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let h = [i as u8; 32];
            (i, h, s.sign_hash(&h))
        })
        .collect();
    g.bench_function("verify_batch_100", |b| {
        b.iter(|| {
            assert!(kms_crypto::signer::bn254::verify_batch(
                &keys, &items, &mut rng
            ))
        })
    });
    g.finish();
    let ec = EcdsaSigner::random(&mut rng);
    let ec_pk = ec.public_key();
    let ec_sig = ec.sign(&hash);
    let mut g = c.benchmark_group("ecdsa");
    g.bench_function("sign", |b| b.iter(|| ec.sign(black_box(&hash))));
    g.bench_function("verify", |b| {
        b.iter(|| ec_pk.verify(black_box(&hash), &ec_sig).unwrap())
    });
    g.finish();
    // Protocol keys (Schnorr on secp256k1, certified by the operator key).
    use kms_crypto::signer::certified::{PreparedProtocolKey, ProtocolSecretKey, verify_batch};
    let pk_secret = ProtocolSecretKey::random(&mut rng);
    let pk_public = pk_secret.public_key();
    let schnorr = pk_secret.sign(&hash, &mut rng);
    let mut g = c.benchmark_group("protocol_key");
    g.bench_function("sign", |b| {
        b.iter(|| pk_secret.sign(black_box(&hash), &mut rand_core::OsRng))
    });
    g.bench_function("verify", |b| {
        b.iter(|| schnorr.verify(&pk_public, black_box(&hash)).unwrap())
    });
    // The same phase as `bn254/verify_batch_100`: one message from each of 100 keys.
    let secrets: Vec<ProtocolSecretKey> = (0..100)
        .map(|_| ProtocolSecretKey::random(&mut rng))
        .collect();
    // Prepared once, as a node keeps its peers' keys (the tables are not part of
    // a batch's cost).
    let publics: Vec<_> = secrets
        .iter()
        .map(|s| PreparedProtocolKey::new(&s.public_key()))
        .collect();
    let hashes: Vec<[u8; 32]> = (0..100u8).map(|i| [i; 32]).collect();
    let sigs: Vec<_> = secrets
        .iter()
        .zip(&hashes)
        .map(|(s, h)| s.sign(h, &mut rng))
        .collect();
    let items: Vec<_> = (0..100)
        .map(|i| (&publics[i], &hashes[i], &sigs[i]))
        .collect();
    g.bench_function("verify_batch_100", |b| {
        b.iter(|| assert!(verify_batch(&items, &mut rng)))
    });
    // A batch as a node at n = 7 checks in each phase: one message from six peers.
    g.bench_function("verify_batch_6", |b| {
        b.iter(|| assert!(verify_batch(&items[..6], &mut rng)))
    });
    g.bench_function("prepare_key", |b| {
        b.iter(|| PreparedProtocolKey::new(black_box(publics[0].key())))
    });
    g.finish();
}

criterion_group!(
    benches,
    primitives,
    g2_msm,
    deal,
    batch_verify,
    combine,
    ibe_bench,
    operator_signatures
);
criterion_main!(benches);

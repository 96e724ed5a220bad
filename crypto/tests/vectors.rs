//! Known-answer vectors for threshold BLS and IBE, committed under `tests/vectors/`.
//!
//! The test recomputes every vector from fixed seeds and compares it with the
//! committed JSON, so any change to an encoding, a hash, a DST or the key derivation
//! fails here. It also checks the committed values on their own terms (partials
//! verify, the key decrypts the ciphertext), which is what another implementation
//! would do to prove interoperability.
//!
//! Regenerate (only for an intentional, versioned format change):
//! `KMS_REGENERATE_VECTORS=1 cargo test -p kms-crypto --test vectors` (or `make vectors`).

use std::path::PathBuf;

use kms_crypto::ibe;
use kms_crypto::tbls::{
    APP_KEY_DST, PartialSignature, combine_partials, hash_app_id, sign_partial, verify_app_key,
};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{AppPrivateKey, Commitment, G1Point, G2Point, OperatorAddress, Scalar};
use kms_crypto::{evaluation_point, threshold};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct TblsShare {
    operator: OperatorAddress,
    evaluation_point: Scalar,
    share: Scalar,
    partial_signature: G1Point,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct TblsVector {
    description: String,
    dst: String,
    app_id: String,
    n: usize,
    threshold: usize,
    master_secret: Scalar,
    master_public_key: G2Point,
    commitment: Commitment,
    app_id_hash: G1Point,
    shares: Vec<TblsShare>,
    app_private_key: AppPrivateKey,
}

#[derive(Serialize, Deserialize, PartialEq, Debug)]
struct IbeVector {
    description: String,
    app_id: String,
    master_public_key: G2Point,
    app_private_key: AppPrivateKey,
    plaintext_hex: String,
    ciphertext_hex: String,
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn operator(i: u8) -> OperatorAddress {
    let mut b = [0u8; 20];
    b[0] = 0xe1;
    b[19] = i;
    OperatorAddress::from_bytes(b)
}

fn tbls_vector(seed: u64, n: usize, app_id: &str) -> TblsVector {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let t = threshold(n);
    let secret = Scalar::random(&mut rng);
    let dealing = FeldmanDealing::new(secret.clone(), t, &mut rng).unwrap();
    let shares: Vec<TblsShare> = (1..=n as u8)
        .map(|i| {
            let operator = operator(i);
            let x = evaluation_point(&operator).unwrap();
            let share = dealing.share(&x);
            let partial_signature = sign_partial(&share, app_id.as_bytes());
            TblsShare {
                operator,
                evaluation_point: x,
                share,
                partial_signature,
            }
        })
        .collect();
    let partials: Vec<PartialSignature> = shares
        .iter()
        .map(|s| PartialSignature {
            evaluation_point: s.evaluation_point.clone(),
            signature: s.partial_signature,
        })
        .collect();
    let key = combine_partials(dealing.commitment(), app_id.as_bytes(), &partials, &mut rng)
        .unwrap()
        .key;
    TblsVector {
        description: format!("{t}-of-{n} Feldman sharing, partial signatures and combined app key"),
        dst: String::from_utf8(APP_KEY_DST.to_vec()).unwrap(),
        app_id: app_id.to_string(),
        n,
        threshold: t,
        master_public_key: *dealing.commitment().constant(),
        master_secret: secret,
        commitment: dealing.commitment().clone(),
        app_id_hash: hash_app_id(app_id.as_bytes()),
        shares,
        app_private_key: key,
    }
}

fn ibe_vector(seed: u64, app_id: &str, plaintext: &[u8]) -> IbeVector {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let s = Scalar::random(&mut rng);
    let mpk = G2Point::generator().mul(&s);
    let key = AppPrivateKey::from_point(hash_app_id(app_id.as_bytes()).mul(&s));
    let ct = ibe::encrypt(&mpk, app_id.as_bytes(), plaintext, &mut rng).unwrap();
    IbeVector {
        description: "IBE encryption to (MPK, appID); decrypt with the app key".into(),
        app_id: app_id.into(),
        master_public_key: mpk,
        app_private_key: key,
        plaintext_hex: hex::encode(plaintext),
        ciphertext_hex: hex::encode(ct),
    }
}

fn check_or_write<T: Serialize + for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(
    name: &str,
    fresh: &T,
) -> T {
    let p = path(name);
    if std::env::var_os("KMS_REGENERATE_VECTORS").is_some() {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_string_pretty(fresh).unwrap() + "\n").unwrap();
    }
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (regenerate with KMS_REGENERATE_VECTORS=1)",
            p.display()
        )
    });
    let stored: T = serde_json::from_str(&text).unwrap();
    assert_eq!(&stored, fresh, "{name} no longer matches the code");
    stored
}

#[test]
fn threshold_bls_known_answers() {
    let vectors = vec![
        tbls_vector(0x7b15_0001, 4, "app-alpha"),
        tbls_vector(0x7b15_0002, 7, ""),
    ];
    let stored = check_or_write("tbls.json", &vectors);
    for v in &stored {
        assert_eq!(v.threshold, threshold(v.n));
        assert_eq!(v.app_id_hash, hash_app_id(v.app_id.as_bytes()));
        assert_eq!(v.master_public_key, *v.commitment.constant());
        assert_eq!(
            v.master_public_key,
            G2Point::generator().mul(&v.master_secret)
        );
        assert!(verify_app_key(
            &v.master_public_key,
            v.app_id.as_bytes(),
            &v.app_private_key
        ));
        for s in &v.shares {
            assert_eq!(s.evaluation_point, evaluation_point(&s.operator).unwrap());
            assert_eq!(
                v.commitment.evaluate(&s.evaluation_point),
                G2Point::generator().mul(&s.share)
            );
        }
    }
}

#[test]
fn ibe_known_answers() {
    let vectors = vec![
        ibe_vector(0x1be_0001, "app-alpha", b"attack at dawn"),
        ibe_vector(0x1be_0002, "", b""),
        ibe_vector(0x1be_0003, "\u{1F510} unicode app", &[0xa5; 100]),
    ];
    let stored = check_or_write("ibe.json", &vectors);
    for v in &stored {
        let ct = hex::decode(&v.ciphertext_hex).unwrap();
        let pt = ibe::decrypt(&v.app_private_key, v.app_id.as_bytes(), &ct).unwrap();
        assert_eq!(hex::encode(&*pt), v.plaintext_hex);
        assert_eq!(&ct[..5], b"EKMS\x01");
    }
}

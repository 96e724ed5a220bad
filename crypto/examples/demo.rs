//! A walk through the cryptographic core with four simulated operators: each deals a
//! Feldman sharing of a random secret, every operator batch-verifies what it received
//! and sums its shares (a joint key nobody knows), an application's key is assembled
//! from partial signatures, and a message is encrypted to the app and decrypted.
//!
//! Run with `cargo run --release -p kms-crypto --example demo`.

use std::time::Instant;

use kms_crypto::tbls::{PartialSignature, combine_partials, sign_partial, verify_app_key};
use kms_crypto::vss::batch::{BatchItem, verify_batch};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{Commitment, OperatorAddress, Scalar, evaluation_point, ibe, threshold};
use rand_core::OsRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 4;
    let t = threshold(n);
    let operators: Vec<OperatorAddress> = (1..=n as u8)
        .map(|i| OperatorAddress::from_bytes([i; 20]))
        .collect();
    let points: Vec<Scalar> = operators
        .iter()
        .map(evaluation_point)
        .collect::<Result<_, _>>()?;
    println!("{n} operators, threshold t = {t}");

    let start = Instant::now();
    let dealings: Vec<FeldmanDealing> = (0..n)
        .map(|_| FeldmanDealing::new(Scalar::random(&mut OsRng), t, &mut OsRng))
        .collect::<Result<_, _>>()?;
    let mut final_shares = Vec::new();
    for (op, x) in operators.iter().zip(&points) {
        let shares: Vec<Scalar> = dealings.iter().map(|d| d.share(x)).collect();
        let items: Vec<BatchItem> = dealings
            .iter()
            .zip(&shares)
            .map(|(d, s)| BatchItem::feldman(d.commitment(), s))
            .collect();
        verify_batch(x, &items, None, &mut OsRng)
            .map_err(|f| format!("operator {op}: invalid shares from dealers {:?}", f.invalid))?;
        final_shares.push(shares.iter().sum::<Scalar>());
    }
    let public = Commitment::sum(dealings.iter().map(FeldmanDealing::commitment))?;
    let mpk = *public.constant();
    println!("joint key generated and verified in {:?}", start.elapsed());
    println!("master public key: {mpk}");

    let app_id = b"demo-app";
    let partials: Vec<PartialSignature> = points
        .iter()
        .zip(&final_shares)
        .map(|(x, s)| PartialSignature {
            evaluation_point: x.clone(),
            signature: sign_partial(s, app_id),
        })
        .collect();
    let combined = combine_partials(&public, app_id, &partials, &mut OsRng)?;
    assert!(verify_app_key(&mpk, app_id, &combined.key));
    println!(
        "app key for {:?} combined from {} partials",
        String::from_utf8_lossy(app_id),
        combined.used.len()
    );

    let message = b"hello from EigenKMS";
    let ciphertext = ibe::encrypt(&mpk, app_id, message, &mut OsRng)?;
    let plaintext = ibe::decrypt(&combined.key, app_id, &ciphertext)?;
    println!(
        "encrypted {} bytes -> {} byte ciphertext",
        message.len(),
        ciphertext.len()
    );
    println!("decrypted: {}", String::from_utf8_lossy(&plaintext));
    Ok(())
}

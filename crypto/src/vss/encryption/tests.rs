use super::*;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn ctx(seed: u8) -> ShareContext {
    ShareContext {
        session_hash: [seed; 32],
        dealer: OperatorAddress::from_bytes([seed ^ 1; 20]),
        player: OperatorAddress::from_bytes([seed ^ 2; 20]),
    }
}

fn random_share(rng: &mut ChaCha20Rng) -> PedersenShare {
    PedersenShare {
        value: Scalar::random(rng),
        blinding: Scalar::random(rng),
    }
}

/// Every way of changing one input of a proof check by a little.
fn tampered_contexts(c: &ShareContext) -> Vec<ShareContext> {
    let mut out = Vec::new();
    let mut t = *c;
    t.session_hash[31] ^= 1;
    out.push(t);
    let flip = |a: &OperatorAddress| {
        let mut b = *a.as_bytes();
        b[19] ^= 1;
        OperatorAddress::from_bytes(b)
    };
    let mut t = *c;
    t.dealer = flip(&c.dealer);
    out.push(t);
    let mut t = *c;
    t.player = flip(&c.player);
    out.push(t);
    // Dealer and player swapped.
    out.push(ShareContext {
        dealer: c.player,
        player: c.dealer,
        ..*c
    });
    out
}

#[test]
fn two_pow_256_mod_r_is_the_documented_constant_and_the_pad_formula_holds() {
    let r256 = Scalar::from_u64(2).pow(256);
    assert_eq!(r256.to_bytes_be(), TWO_POW_256_MOD_R);
    // from_bytes_wide reads its 64 bytes as hi ‖ lo, big-endian: hi·2^256 + lo.
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for _ in 0..8 {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let hi = Scalar::from_bytes_wide(&wide[..32]);
        let lo = Scalar::from_bytes_wide(&wide[32..]);
        assert_eq!(Scalar::from_bytes_wide(&wide), &(&hi * &r256) + &lo);
    }
    // The extremes: all ones reduces too.
    let hi = Scalar::from_bytes_wide(&[0xff; 32]);
    assert_eq!(Scalar::from_bytes_wide(&[0xff; 64]), &(&hi * &r256) + &hi);
}

#[test]
fn pad_and_challenge_preimages_are_the_documented_ones() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let e = DealingKey::generate(&mut rng);
    let c = ctx(5);
    let key = SharedKey(e.public().0.mul(&sk.secret));
    let tail: Vec<u8> = [
        &c.session_hash[..],
        c.dealer.as_bytes(),
        c.player.as_bytes(),
    ]
    .concat();
    let pads = key.pads(&c);
    for (i, pad) in pads.iter().enumerate() {
        let mut wide = Vec::new();
        for h in 0..2u8 {
            let mut pre = b"EIGENKMS-V2-SHARE-PAD".to_vec();
            pre.extend_from_slice(&[i as u8, h]);
            pre.extend_from_slice(key.to_eip2537().as_slice());
            pre.extend_from_slice(&tail);
            assert_eq!(pre.len(), 21 + 2 + 128 + 72);
            wide.extend_from_slice(&Keccak256::digest(&pre));
        }
        assert_eq!(*pad, Scalar::from_bytes_wide(&wide), "pad {i}");
    }
    assert_ne!(pads[0], pads[1]);
    // The ciphertext words are share + pad, big-endian.
    let share = random_share(&mut rng);
    let ct = encrypt_share(&e, &sk.public_key(), &c, &share);
    assert_eq!(ct.value, (&share.value + &pads[0]).to_bytes_be());
    assert_eq!(ct.blinding, (&share.blinding + &pads[1]).to_bytes_be());
    // The challenge: domain ‖ pk ‖ E ‖ K ‖ A1 ‖ A2 ‖ context, and A1, A2 as the
    // contract recomputes them.
    let (revealed, proof) = reveal_shared_key(&sk, &e.public(), &c, &mut rng);
    let cc = Scalar::from_bytes_wide(&proof.challenge);
    let a1 = G1Point::generator()
        .mul(&proof.response)
        .add(&sk.public_key().0.mul(&cc));
    let a2 = e.public().0.mul(&proof.response).add(&revealed.0.mul(&cc));
    let mut pre = b"EIGENKMS-V2-DLEQ".to_vec();
    for p in [sk.public_key().0, e.public().0, revealed.0, a1, a2] {
        pre.extend_from_slice(&p.to_eip2537());
    }
    pre.extend_from_slice(&tail);
    assert_eq!(pre.len(), 16 + 5 * 128 + 72);
    assert_eq!(<[u8; 32]>::from(Keccak256::digest(&pre)), proof.challenge);
}

#[test]
fn feldman_shares_are_masked_too() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let e = DealingKey::generate(&mut rng);
    let share = PedersenShare {
        value: Scalar::random(&mut rng),
        blinding: Scalar::zero(),
    };
    let ct = encrypt_share(&e, &sk.public_key(), &ctx(1), &share);
    assert_ne!(ct.blinding, [0u8; 32]);
    assert_eq!(
        decrypt_share(&sk, &e.public(), &ctx(1), &ct).unwrap(),
        share
    );
}

#[test]
fn non_canonical_ciphertext_words_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let e = DealingKey::generate(&mut rng);
    let c = ctx(2);
    let ct = encrypt_share(&e, &sk.public_key(), &c, &random_share(&mut rng));
    let (key, _) = reveal_shared_key(&sk, &e.public(), &c, &mut rng);
    for bad in [
        ShareCiphertext {
            value: [0xff; 32],
            ..ct
        },
        ShareCiphertext {
            blinding: [0xff; 32],
            ..ct
        },
    ] {
        assert_eq!(
            decrypt_share(&sk, &e.public(), &c, &bad),
            Err(CryptoError::ScalarNotCanonical)
        );
        assert_eq!(
            open_share(&key, &c, &bad),
            Err(CryptoError::ScalarNotCanonical)
        );
        // It still decodes, so that it can be complained about.
        assert_eq!(ShareCiphertext::from_bytes(&bad.to_bytes()), Ok(bad));
    }
    assert!(ShareCiphertext::from_bytes(&[0u8; 63]).is_err());
}

#[test]
fn a_revealed_key_opens_exactly_one_dealings_share() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let pk = sk.public_key();
    let c = ctx(3);
    let (e1, e2) = (
        DealingKey::generate(&mut rng),
        DealingKey::generate(&mut rng),
    );
    let (s1, s2) = (random_share(&mut rng), random_share(&mut rng));
    let ct1 = encrypt_share(&e1, &pk, &c, &s1);
    let ct2 = encrypt_share(&e2, &pk, &c, &s2);
    let (k1, proof) = reveal_shared_key(&sk, &e1.public(), &c, &mut rng);
    assert!(verify_shared_key(&pk, &e1.public(), &k1, &c, &proof));
    assert_eq!(open_share(&k1, &c, &ct1).unwrap(), s1);
    assert_ne!(open_share(&k1, &c, &ct2).unwrap(), s2);
    // The proof is for E1 only.
    assert!(!verify_shared_key(&pk, &e2.public(), &k1, &c, &proof));
}

#[test]
fn encodings_round_trip_and_are_strict() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let pk = sk.public_key();
    assert_eq!(
        EncryptionPublicKey::from_eip2537(&pk.to_eip2537()).unwrap(),
        pk
    );
    let e = DealingKey::generate(&mut rng).public();
    assert_eq!(EphemeralKey::from_eip2537(&e.to_eip2537()).unwrap(), e);
    assert_eq!(
        EncryptionPublicKey::from_eip2537(&[0u8; 128]),
        Err(CryptoError::PointAtInfinity)
    );
    assert!(EphemeralKey::from_eip2537(&[0u8; 128]).is_err());
    assert!(SharedKey::from_eip2537(&[0u8; 128]).is_err());
    let mut off = pk.to_eip2537();
    off[127] ^= 1;
    assert!(EncryptionPublicKey::from_eip2537(&off).is_err());
    assert!(SharedKey::from_eip2537(&off).is_err());
    assert!(EncryptionPublicKey::from_eip2537(&pk.to_eip2537()[..127]).is_err());
    // A curve point outside G1 (the cofactor is large: most small x qualify).
    let outside = (1u8..=50)
        .find_map(|x| {
            let mut b = [0u8; 48];
            b[0] = 0x80;
            b[47] = x;
            match G1Point::from_compressed(&b) {
                Err(CryptoError::PointNotInSubgroup) => Some(b),
                _ => None,
            }
        })
        .unwrap();
    let json = format!("\"0x{}\"", hex::encode(outside));
    assert!(serde_json::from_str::<EncryptionPublicKey>(&json).is_err());
    // Serde: compressed hex, strict.
    let json = serde_json::to_string(&pk).unwrap();
    assert_eq!(
        json,
        format!("\"0x{}\"", hex::encode(pk.point().to_compressed()))
    );
    assert_eq!(
        serde_json::from_str::<EncryptionPublicKey>(&json).unwrap(),
        pk
    );
    let inf = format!("\"0x{}\"", hex::encode(G1Point::identity().to_compressed()));
    assert!(serde_json::from_str::<EphemeralKey>(&inf).is_err());
    // Ciphertext and proof.
    let c = ctx(4);
    let dk = DealingKey::generate(&mut rng);
    let ct = encrypt_share(&dk, &pk, &c, &random_share(&mut rng));
    assert_eq!(ShareCiphertext::from_bytes(&ct.to_bytes()).unwrap(), ct);
    let json = serde_json::to_string(&ct).unwrap();
    assert_eq!(serde_json::from_str::<ShareCiphertext>(&json).unwrap(), ct);
    let (key, proof) = reveal_shared_key(&sk, &dk.public(), &c, &mut rng);
    assert_eq!(DleqProof::from_bytes(&proof.to_bytes()).unwrap(), proof);
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(serde_json::from_str::<DleqProof>(&json).unwrap(), proof);
    let mut b = proof.to_bytes();
    b[32..].fill(0xff);
    assert_eq!(
        DleqProof::from_bytes(&b),
        Err(CryptoError::ScalarNotCanonical)
    );
    assert!(DleqProof::from_bytes(&b[..63]).is_err());
    let back = SharedKey::from_eip2537(key.to_eip2537().as_slice()).unwrap();
    assert!(verify_shared_key(&pk, &dk.public(), &back, &c, &proof));
}

#[test]
fn secrets_are_redacted_and_zero_keys_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let sk = EncryptionSecretKey::from_scalar(Scalar::from_u64(42)).unwrap();
    assert_eq!(
        sk.public_key().0,
        G1Point::generator().mul(&Scalar::from_u64(42))
    );
    let text = format!("{sk:?}");
    assert!(text.contains("<redacted>") && text.contains(&sk.public_key().0.to_string()));
    assert!(!text.contains(&hex::encode(Scalar::from_u64(42).to_bytes_be())));
    assert!(format!("{:?}", DealingKey::generate(&mut rng)).contains("<redacted>"));
    let (key, _) = reveal_shared_key(
        &sk,
        &DealingKey::generate(&mut rng).public(),
        &ctx(0),
        &mut rng,
    );
    assert_eq!(format!("{key:?}"), "SharedKey(<redacted>)");
    assert_eq!(
        EncryptionSecretKey::from_scalar(Scalar::zero()).err(),
        Some(CryptoError::Zero("encryption secret key"))
    );
}

#[test]
fn two_proofs_of_one_statement_use_different_nonces() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let sk = EncryptionSecretKey::generate(&mut rng);
    let e = DealingKey::generate(&mut rng).public();
    let (_, p1) = reveal_shared_key(&sk, &e, &ctx(1), &mut rng);
    let (_, p2) = reveal_shared_key(&sk, &e, &ctx(1), &mut rng);
    assert_ne!(p1.challenge, p2.challenge);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// decrypt ∘ encrypt = id; the proof verifies and the opened share is the one
    /// sent; changing any field of the proof, the key, the context or the
    /// ciphertext makes the proof fail or the share differ.
    #[test]
    fn encrypt_decrypt_prove_open_and_tamper(seed in any::<u64>(), c in any::<u8>(), byte in 0usize..32) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let sk = EncryptionSecretKey::generate(&mut rng);
        let pk = sk.public_key();
        let e = DealingKey::generate(&mut rng);
        let eph = e.public();
        let cx = ctx(c);
        let share = random_share(&mut rng);
        let ct = encrypt_share(&e, &pk, &cx, &share);
        prop_assert_eq!(&decrypt_share(&sk, &eph, &cx, &ct).unwrap(), &share);
        let (key, proof) = reveal_shared_key(&sk, &eph, &cx, &mut rng);
        prop_assert!(verify_shared_key(&pk, &eph, &key, &cx, &proof));
        prop_assert_eq!(&open_share(&key, &cx, &ct).unwrap(), &share);

        // The proof's fields.
        let mut bad = proof.clone();
        bad.challenge[byte] ^= 1;
        prop_assert!(!verify_shared_key(&pk, &eph, &key, &cx, &bad));
        let mut bad = proof.clone();
        bad.response = &bad.response + &Scalar::one();
        prop_assert!(!verify_shared_key(&pk, &eph, &key, &cx, &bad));
        // The key, and the statement's other points.
        let wrong_key = SharedKey(key.0.add(&G1Point::generator()));
        prop_assert!(!verify_shared_key(&pk, &eph, &wrong_key, &cx, &proof));
        prop_assert_ne!(&open_share(&wrong_key, &cx, &ct).unwrap(), &share);
        let other = EncryptionSecretKey::generate(&mut rng).public_key();
        prop_assert!(!verify_shared_key(&other, &eph, &key, &cx, &proof));
        let other_eph = DealingKey::generate(&mut rng).public();
        prop_assert!(!verify_shared_key(&pk, &other_eph, &key, &cx, &proof));
        prop_assert_ne!(&decrypt_share(&sk, &other_eph, &cx, &ct).unwrap(), &share);
        // The context.
        for t in tampered_contexts(&cx) {
            prop_assert!(!verify_shared_key(&pk, &eph, &key, &t, &proof));
            prop_assert_ne!(&decrypt_share(&sk, &eph, &t, &ct).unwrap(), &share);
            prop_assert_ne!(&open_share(&key, &t, &ct).unwrap(), &share);
        }
        // The ciphertext: any change of a canonical word changes that part of the
        // share (the commitment check then fails) or is refused.
        for word in 0..2 {
            let mut b = ct.to_bytes();
            b[word * 32 + byte] ^= 1;
            let bad = ShareCiphertext::from_bytes(&b).unwrap();
            match decrypt_share(&sk, &eph, &cx, &bad) {
                Ok(s) => prop_assert_ne!(&s, &share),
                Err(err) => prop_assert_eq!(err, CryptoError::ScalarNotCanonical),
            }
        }
        // Another recipient's key does not decrypt it.
        let stranger = EncryptionSecretKey::generate(&mut rng);
        prop_assert_ne!(&decrypt_share(&stranger, &eph, &cx, &ct).unwrap(), &share);
    }
}

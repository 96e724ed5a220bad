//! Threshold BLS over the shared master key: an application's private key is the BLS
//! signature `s·H1(appID)` of its identity, assembled from `t` partial signatures
//! `s_i·H1(appID)` by Lagrange interpolation in the exponent.

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::CryptoError;
use crate::group::{G1Point, G2Point, pairing_product_is_one};
use crate::hexser;
use crate::poly::{lagrange_coefficients_at_zero, powers};
use crate::scalar::Scalar;
use crate::vss::Commitment;

/// Domain separation tag of the identity hash (RFC 9380 suite
/// `BLS12381G1_XMD:SHA-256_SSWU_RO_`).
pub const APP_KEY_DST: &[u8] = b"EIGENKMS-V1-APP-KEY_BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// Domain separation tag of what the unauthenticated `/app/sign` of a node in the
/// insecure development mode signs: never the app key, so that even a node with that
/// mode switched on by mistake releases nothing that decrypts an app's data.
pub const INSECURE_DEV_DST: &[u8] =
    b"EIGENKMS-V1-INSECURE-DEV-UNAUTHENTICATED_BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// `H1(appID)`: the application identity hashed to G1.
pub fn hash_app_id(app_id: &[u8]) -> G1Point {
    G1Point::hash_to_curve(app_id, APP_KEY_DST)
}

/// What a partial signature signs: the app key's identity hash, or the insecure
/// development domain's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningDomain {
    /// `s·H1(appID)` with [`APP_KEY_DST`]: the app key (IBE decryption key).
    AppKey,
    /// `s·H(appID)` with [`INSECURE_DEV_DST`]: a public value in development clusters.
    InsecureDev,
}

impl SigningDomain {
    /// The identity hashed to G1 in this domain.
    pub fn hash(self, app_id: &[u8]) -> G1Point {
        match self {
            SigningDomain::AppKey => hash_app_id(app_id),
            SigningDomain::InsecureDev => G1Point::hash_to_curve(app_id, INSECURE_DEV_DST),
        }
    }
}

/// An operator's partial signature on an app ID, tagged with its evaluation point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartialSignature {
    /// The signer's evaluation point `x_i`.
    pub evaluation_point: Scalar,
    /// `s_i·H1(appID)`.
    pub signature: G1Point,
}

/// `s_i·H1(appID)`.
pub fn sign_partial(share: &Scalar, app_id: &[u8]) -> G1Point {
    hash_app_id(app_id).mul(share)
}

/// Whether `e(σ_i, G2) == e(H1(appID), PK_i)` for the signer's public share `PK_i`.
pub fn verify_partial(public_share: &G2Point, app_hash: &G1Point, signature: &G1Point) -> bool {
    if signature.is_identity() || public_share.is_identity() {
        return false;
    }
    pairing_product_is_one(&[
        (*signature, G2Point::generator().neg()),
        (*app_hash, *public_share),
    ])
}

/// An application's private key `s·H1(appID)`. Zeroized on drop, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AppPrivateKey(G1Point);

impl AppPrivateKey {
    /// Wraps a point; checks nothing (use [`verify_app_key`]).
    pub fn from_point(p: G1Point) -> Self {
        Self(p)
    }

    /// The key as a G1 point.
    pub fn point(&self) -> &G1Point {
        &self.0
    }

    /// The 48-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 48] {
        self.0.to_compressed()
    }

    /// Decodes a 48-byte compressed key (canonical, subgroup-checked, non-identity).
    pub fn from_bytes(b: &[u8; 48]) -> Result<Self, CryptoError> {
        G1Point::from_compressed(b).map(Self)
    }
}

impl Zeroize for AppPrivateKey {
    fn zeroize(&mut self) {
        self.0 = G1Point::identity();
    }
}

impl Drop for AppPrivateKey {
    fn drop(&mut self) {
        // SAFETY-free best effort: overwrite the point; volatile writes via zeroize on
        // its coordinates are not exposed by blst's plain structs.
        self.zeroize();
    }
}

impl ZeroizeOnDrop for AppPrivateKey {}

impl std::fmt::Debug for AppPrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppPrivateKey(<redacted>)")
    }
}

impl Serialize for AppPrivateKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hexser::serialize_bytes(&self.to_bytes(), s)
    }
}

impl<'de> Deserialize<'de> for AppPrivateKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let b = hexser::deserialize_array::<D, 48>(d)?;
        Self::from_bytes(&b).map_err(serde::de::Error::custom)
    }
}

/// Whether `e(sk, G2) == e(H1(appID), MPK)`: the key is the master key's signature on
/// the app ID.
pub fn verify_app_key(master_public_key: &G2Point, app_id: &[u8], key: &AppPrivateKey) -> bool {
    verify_partial(master_public_key, &hash_app_id(app_id), key.point())
}

/// A successfully combined key and which inputs were used or rejected.
#[derive(Debug)]
pub struct CombinedKey {
    /// The application private key.
    pub key: AppPrivateKey,
    /// Indices of the partials that entered the interpolation.
    pub used: Vec<usize>,
    /// Indices of partials that failed verification (their operators misbehaved).
    pub invalid: Vec<usize>,
}

/// Combination failed: fewer than `needed` valid partials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not enough valid partial signatures: {valid} valid of {needed} needed ({} invalid)", invalid.len())]
pub struct CombineError {
    /// The threshold.
    pub needed: usize,
    /// How many valid, distinct partials were found.
    pub valid: usize,
    /// Indices of partials that failed verification or were duplicates.
    pub invalid: Vec<usize>,
}

/// Verifies partial signatures against the public polynomial `commitment` and combines
/// `t = commitment.threshold()` valid ones into the app key.
///
/// All partials are first checked together: with random 128-bit weights `ρ_i`,
/// `e(Σρ_iσ_i, G2) == e(H1(id), Σρ_i PK_i)` where `Σρ_i PK_i = Σ_k (Σ_i ρ_i x_i^k)·C_k`
/// is one MSM over the `t` commitment points — two pairings in total however many
/// partials there are. Only if that fails is each partial checked on its own, so that
/// bad partials (from lying operators) are skipped and reported, never combined: a
/// single bad input would otherwise yield a wrong key.
pub fn combine_partials<R: RngCore + CryptoRng + ?Sized>(
    commitment: &Commitment,
    app_id: &[u8],
    partials: &[PartialSignature],
    rng: &mut R,
) -> Result<CombinedKey, CombineError> {
    let t = commitment.threshold();
    let app_hash = hash_app_id(app_id);
    // Keep the first partial per evaluation point; later duplicates are invalid input.
    let mut seen = std::collections::HashSet::new();
    let mut invalid = Vec::new();
    let mut candidates = Vec::new();
    for (i, p) in partials.iter().enumerate() {
        if p.evaluation_point.is_zero() || !seen.insert(p.evaluation_point.to_bytes_be()) {
            invalid.push(i);
        } else {
            candidates.push(i);
        }
    }
    let fail = |valid: usize, mut invalid: Vec<usize>| {
        invalid.sort_unstable();
        CombineError {
            needed: t,
            valid,
            invalid,
        }
    };
    if candidates.len() < t {
        return Err(fail(candidates.len(), invalid));
    }
    let valid: Vec<usize> = if batch_verify(commitment, &app_hash, partials, &candidates, rng) {
        candidates
    } else {
        let (good, bad): (Vec<usize>, Vec<usize>) = candidates.into_iter().partition(|&i| {
            let p = &partials[i];
            verify_partial(
                &commitment.evaluate(&p.evaluation_point),
                &app_hash,
                &p.signature,
            )
        });
        invalid.extend(bad);
        good
    };
    if valid.len() < t {
        return Err(fail(valid.len(), invalid));
    }
    let used: Vec<usize> = valid.into_iter().take(t).collect();
    let xs: Vec<Scalar> = used
        .iter()
        .map(|&i| partials[i].evaluation_point.clone())
        .collect();
    let sigs: Vec<G1Point> = used.iter().map(|&i| partials[i].signature).collect();
    let lambdas = lagrange_coefficients_at_zero(&xs).map_err(|_| fail(0, invalid.clone()))?;
    let key = AppPrivateKey(G1Point::msm(&sigs, &lambdas).map_err(|_| fail(0, invalid.clone()))?);
    // Defence in depth: the interpolated key must verify against the master key.
    if !verify_partial(commitment.constant(), &app_hash, key.point()) {
        return Err(fail(0, invalid));
    }
    invalid.sort_unstable();
    Ok(CombinedKey { key, used, invalid })
}

fn batch_verify<R: RngCore + CryptoRng + ?Sized>(
    commitment: &Commitment,
    app_hash: &G1Point,
    partials: &[PartialSignature],
    indices: &[usize],
    rng: &mut R,
) -> bool {
    let t = commitment.threshold();
    let weights: Vec<Scalar> = indices.iter().map(|_| Scalar::random_u128(rng)).collect();
    let sigs: Vec<G1Point> = indices.iter().map(|&i| partials[i].signature).collect();
    if sigs.iter().any(G1Point::is_identity) {
        return false;
    }
    let mut key_scalars = vec![Scalar::zero(); t];
    for (&i, rho) in indices.iter().zip(&weights) {
        for (acc, xk) in key_scalars
            .iter_mut()
            .zip(powers(&partials[i].evaluation_point, t))
        {
            *acc += &(rho * &xk);
        }
    }
    let (Ok(sig), Ok(pk)) = (
        G1Point::msm(&sigs, &weights),
        G2Point::msm(commitment.coefficients(), &key_scalars),
    ) else {
        return false;
    };
    verify_partial(&pk, app_hash, &sig)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vss::feldman::FeldmanDealing;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn setup(n: u64, t: usize) -> (Scalar, FeldmanDealing, Vec<(Scalar, Scalar)>) {
        let mut rng = ChaCha20Rng::seed_from_u64(n * 31 + t as u64);
        let secret = Scalar::random(&mut rng);
        let d = FeldmanDealing::new(secret.clone(), t, &mut rng).unwrap();
        let shares = (1..=n)
            .map(|i| {
                (
                    Scalar::from_u64(i * 1000 + 1),
                    d.share(&Scalar::from_u64(i * 1000 + 1)),
                )
            })
            .collect();
        (secret, d, shares)
    }

    #[test]
    fn combine_matches_direct_key_and_tolerates_bad_partials() {
        let (secret, d, shares) = setup(7, 5);
        let app = b"app-42";
        let direct = AppPrivateKey(hash_app_id(app).mul(&secret));
        let mut partials: Vec<PartialSignature> = shares
            .iter()
            .map(|(x, s)| PartialSignature {
                evaluation_point: x.clone(),
                signature: sign_partial(s, app),
            })
            .collect();
        for p in &partials {
            assert!(verify_partial(
                &d.commitment().evaluate(&p.evaluation_point),
                &hash_app_id(app),
                &p.signature
            ));
        }
        let mut rng = ChaCha20Rng::seed_from_u64(99);
        let ok = combine_partials(d.commitment(), app, &partials, &mut rng).unwrap();
        assert_eq!(ok.key, direct);
        assert!(ok.invalid.is_empty());
        assert!(verify_app_key(d.commitment().constant(), app, &ok.key));
        assert!(!verify_app_key(
            d.commitment().constant(),
            b"other-app",
            &ok.key
        ));

        // Two lying operators (n - t = 2): a wrong partial and a partial for another app.
        partials[1].signature = partials[1].signature.add(&G1Point::generator());
        partials[4].signature = sign_partial(&shares[4].1, b"other-app");
        let ok = combine_partials(d.commitment(), app, &partials, &mut rng).unwrap();
        assert_eq!(ok.key, direct);
        assert_eq!(ok.invalid, vec![1, 4]);
        assert!(!ok.used.contains(&1) && !ok.used.contains(&4));

        // A third bad one leaves fewer than t valid.
        partials[6].signature = partials[5].signature;
        let err = combine_partials(d.commitment(), app, &partials, &mut rng).unwrap_err();
        assert_eq!(
            err,
            CombineError {
                needed: 5,
                valid: 4,
                invalid: vec![1, 4, 6]
            }
        );
    }

    #[test]
    fn duplicates_and_too_few_are_refused() {
        let (_, d, shares) = setup(5, 4);
        let app = b"a";
        let mut partials: Vec<PartialSignature> = shares
            .iter()
            .take(4)
            .map(|(x, s)| PartialSignature {
                evaluation_point: x.clone(),
                signature: sign_partial(s, app),
            })
            .collect();
        partials.push(partials[0].clone());
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let ok = combine_partials(d.commitment(), app, &partials, &mut rng).unwrap();
        assert_eq!(ok.invalid, vec![4]);
        partials.truncate(3);
        assert_eq!(
            combine_partials(d.commitment(), app, &partials, &mut rng)
                .unwrap_err()
                .valid,
            3
        );
    }

    #[test]
    fn app_key_debug_is_redacted_and_roundtrips() {
        let k = AppPrivateKey(hash_app_id(b"x"));
        assert_eq!(format!("{k:?}"), "AppPrivateKey(<redacted>)");
        assert_eq!(AppPrivateKey::from_bytes(&k.to_bytes()).unwrap(), k);
    }
}

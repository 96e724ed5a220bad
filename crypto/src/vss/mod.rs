//! Verifiable secret sharing over BLS12-381 with commitments in G2.
//!
//! - [`feldman`]: `C_k = a_k·G2`. Computationally hiding; the commitment reveals the
//!   dealer's public contribution, which is what a DKG's public key is made of.
//! - [`pedersen`]: `C_k = a_k·G2 + b_k·H2`. Information-theoretically hiding, so a
//!   dealer who sees the others' commitments cannot bias the joint key (GJKR).
//! - [`batch`]: verification of many dealers' shares for one receiver as a single
//!   multi-scalar multiplication.
//! - [`coin`]: the commit–reveal coin flip that fixes the seed of `H2`.
//! - [`encryption`]: shares encrypted end to end to certified G1 keys, and the
//!   DLEQ-proven opening of one share that a complaint carries (protocol v2).
//! - [`public_share`]: players' public shares with proofs of knowledge, from which
//!   Pedersen mode v2 derives the Feldman commitment without publishing any share.

pub mod batch;
pub mod coin;
mod commitment;
pub mod encryption;
pub mod feldman;
pub mod pedersen;
pub mod public_share;

pub use commitment::Commitment;

//! Large sessions (n = 64 and n = 100). They run in the normal suite: the test profile
//! is optimised, and nextest runs this file's tests in their own test group (see
//! `.config/nextest.toml`) so they do not compete with each other for the 2 cores.

mod common;

use common::*;
use kms_protocol::VssMode;

fn honest_large(n: usize, mode: VssMode) {
    honest_dkg(n, mode, 1_000 + n as u64);
}

#[test]
fn feldman_64() {
    honest_large(64, VssMode::Feldman);
}

#[test]
fn pedersen_64() {
    honest_large(64, VssMode::Pedersen);
}

#[test]
fn feldman_100() {
    honest_large(100, VssMode::Feldman);
}

#[test]
fn pedersen_100() {
    honest_large(100, VssMode::Pedersen);
}

#!/usr/bin/env python3
"""Prints the criterion medians of `cargo bench -p kms-crypto` as Markdown tables,
with the ratio of batched share verification to its floor (one bare G2 MSM over the
same number of points). Run after `cargo bench -p kms-crypto`."""
import json
import pathlib
import sys

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median(*parts):
    p = root.joinpath(*parts, "new", "estimates.json")
    if not p.exists():
        return None
    return json.loads(p.read_text())["median"]["point_estimate"]  # nanoseconds


def fmt(ns):
    if ns is None:
        return "–"
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    return f"{ns / 1e3:.1f} µs"


print("| primitive | median |")
print("|---|---|")
for group, name, label in [
    ("primitives", "g1_mul", "G1 scalar multiplication"),
    ("primitives", "g2_mul", "G2 scalar multiplication"),
    ("primitives", "g2_generator_mul_blst", "G2 generator × secret, blst_p2_mult"),
    ("primitives", "g2_generator_mul_table", "G2 generator × secret, fixed-base table"),
    ("primitives", "g2_fixed_base_table_build", "G2 fixed-base table, building one"),
    ("primitives", "g2_comb_mul", "G2 point × secret, comb (Pedersen's H2)"),
    ("primitives", "g2_comb_build", "G2 comb, building one (with its subgroup check)"),
    ("primitives", "pairing", "pairing (Miller loop + final exponentiation)"),
    ("primitives", "hash_to_g1", "hash to G1 (RFC 9380)"),
    ("g2_msm", "100", "G2 MSM, 100 points"),
    ("g2_msm", "1000", "G2 MSM, 1,000 points"),
    ("g2_msm", "10000", "G2 MSM, 10,000 points"),
    ("ibe_1KiB", "encrypt", "IBE encrypt (1 KiB)"),
    ("ibe_1KiB", "decrypt", "IBE decrypt (1 KiB)"),
    ("bn254", "sign", "BN254 operator signature: sign"),
    ("bn254", "verify", "BN254 operator signature: verify"),
    ("bn254", "verify_batch_100", "BN254: 100 signatures by 100 keys, one batch"),
    ("ecdsa", "sign", "ECDSA operator signature: sign"),
    ("ecdsa", "verify", "ECDSA operator signature: verify (recover)"),
    ("protocol_key", "sign", "protocol key (certified Schnorr): sign"),
    ("protocol_key", "verify", "protocol key: verify"),
    ("protocol_key", "verify_batch_100", "protocol key: 100 signatures by 100 keys, one batch"),
    ("protocol_key", "verify_batch_6", "protocol key: 6 signatures by 6 keys, one batch"),
    ("protocol_key", "prepare_key", "protocol key: building its batch tables (once per key)"),
]:
    print(f"| {label} | {fmt(median(group, name))} |")

print()
print("| n | t | deal (1 dealer, n shares) | batched verify, Feldman | floor: MSM over n·t+1 points | ratio | batched verify, Pedersen | combine + verify t partials |")
print("|---|---|---|---|---|---|---|---|")
for n in [7, 10, 15, 50, 100]:
    t = -(-2 * n // 3)
    feldman = median("batch_verify", "feldman", str(n))
    floor = median("batch_verify", "floor_msm", str(n))
    ratio = f"{feldman / floor:.2f}×" if feldman and floor else "–"
    print(
        f"| {n} | {t} | {fmt(median('deal_feldman', str(n)))} | {fmt(feldman)} | {fmt(floor)} | {ratio} | "
        f"{fmt(median('batch_verify', 'pedersen', str(n)))} | {fmt(median('combine_partials', str(n)))} |"
    )

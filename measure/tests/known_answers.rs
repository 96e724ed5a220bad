//! Known-answer tests against independent implementations and real images.

use std::path::Path;

use kms_measure::authenticode::{authenticode_sha256, authenticode_sha384, signed_sha256_digest};
use kms_measure::tdvf::{PageOrder, Tdvf};

/// The file named by `$var`, else the first of `build_paths` (under
/// enclave-image/build/, where `make image` leaves them) that can be read.
fn first_readable(var: &str, build_paths: &[&str]) -> Option<Vec<u8>> {
    let build = Path::new(env!("CARGO_MANIFEST_DIR")).join("../enclave-image/build");
    std::env::var(var)
        .ok()
        .into_iter()
        .map(std::path::PathBuf::from)
        .chain(build_paths.iter().map(|p| build.join(p)))
        .find_map(|p| std::fs::read(p).ok())
}

fn data(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
    )
    .unwrap()
}

// osslsigncode 2.9's "Calculated message digest" for tests/data/hello.efi.
const HELLO_SHA256: &str = "eb9d78df0c7ac910aae8404abe78ea82214f92dec15a8b04e4bb258b8c1b7680";
const HELLO_SHA384: &str = "ec41cef9f74cdb7ffbffa2d3f9812cb251571712d97c2b51304cc6b2cb107f80\
                            40f7d5851eb51699de14e4244d6d03b6";

#[test]
fn authenticode_of_a_small_pe_matches_osslsigncode() {
    let pe = data("hello.efi");
    assert_eq!(hex::encode(authenticode_sha256(&pe).unwrap()), HELLO_SHA256);
    assert_eq!(authenticode_sha384(&pe).unwrap().to_hex(), HELLO_SHA384);
}

#[test]
fn a_real_signature_is_skipped_and_its_digest_read() {
    let signed = data("hello-signed.efi");
    assert_eq!(
        hex::encode(authenticode_sha256(&signed).unwrap()),
        HELLO_SHA256
    );
    assert_eq!(authenticode_sha384(&signed).unwrap().to_hex(), HELLO_SHA384);
    let vouched = signed_sha256_digest(&signed).unwrap().unwrap();
    assert_eq!(hex::encode(vouched), HELLO_SHA256);
    assert_eq!(signed_sha256_digest(&data("hello.efi")).unwrap(), None);
}

#[test]
fn an_unpadded_image_is_hashed_over_its_own_bytes() {
    // EDK II hashes an unsigned image as it is; signing tools hash it padded to 8
    // bytes. hello.efi ends with its 2 padding bytes: without them the digest differs.
    let pe = data("hello.efi");
    assert_eq!(&pe[pe.len() - 2..], &[0, 0]);
    let unpadded = &pe[..pe.len() - 2];
    assert_ne!(
        authenticode_sha384(unpadded).unwrap().to_hex(),
        HELLO_SHA384
    );
}

/// Debian's signed kernel linux-image-6.12.117+deb13-amd64 (the enclave image's
/// kernel): our SHA-256 Authenticode digest equals the one in Debian's own signature,
/// and both digests equal osslsigncode's. Runs when the file is present
/// (`make image` leaves it in enclave-image/build/out/) or `KMS_MEASURE_KERNEL` names it.
#[test]
fn authenticode_of_debians_signed_kernel() {
    const FILE_SHA256: &str = "14159c607ad9762133db41e479dafecde1d6a5fe715a8d65d292a3262e4b6bed";
    const AUTH_SHA256: &str = "729eaa76aa00dab337d4b5c397fb2a0fded58390cf7573c9540f9533e3b75627";
    const AUTH_SHA384: &str = "b09f5b3ec771bc5841c005e907d696035c8b1bebebf3a179678383865da75197\
                               a0153a06b51df9200c63c29128ec5f4b";
    let Some(kernel) = first_readable("KMS_MEASURE_KERNEL", &["out/latest/vmlinuz"]) else {
        eprintln!("skipped: no Debian 6.12.117+deb13 kernel here (set KMS_MEASURE_KERNEL)");
        return;
    };
    let signed = signed_sha256_digest(&kernel)
        .unwrap()
        .expect("Debian's kernel is signed");
    assert_eq!(
        hex::encode(authenticode_sha256(&kernel).unwrap()),
        hex::encode(signed)
    );
    if kms_measure::digest::sha256_hex(&kernel) == FILE_SHA256 {
        assert_eq!(hex::encode(signed), AUTH_SHA256);
        assert_eq!(authenticode_sha384(&kernel).unwrap().to_hex(), AUTH_SHA384);
    }
}

/// Debian trixie's OVMF (ovmf 2025.02-8+deb13u1, /usr/share/ovmf/OVMF.fd) carries TDX
/// metadata. Its configuration volume's SHA-384 is the RTMR0 "CFV" event digest that
/// the dstack project recorded from real TDX boots of their OVMF build (same empty
/// variable store): a public reference value our TDVF parsing reproduces.
#[test]
fn debian_ovmf_tdx_metadata_and_cfv_digest() {
    const CFV: &str = "344bc51c980ba621aaa00da3ed7436f7d6e549197dfe699515dfa2c6583d95e6\
                       412af21c097d473155875ffd561d6790";
    let Some(fw) = first_readable(
        "KMS_MEASURE_OVMF",
        &["out/latest/OVMF.fd", "tools/usr/share/ovmf/OVMF.fd"],
    ) else {
        eprintln!("skipped: no trixie OVMF.fd here (set KMS_MEASURE_OVMF)");
        return;
    };
    let t = Tdvf::parse(&fw).unwrap();
    assert_eq!(t.cfv_digest().unwrap().to_hex(), CFV);
    let rtmr0 = kms_measure::rtmr0::firmware_events(&t).unwrap();
    assert_eq!(rtmr0.len(), 7); // CFV, five Secure Boot variables, separator
    assert_eq!(rtmr0[0].digest.to_hex(), CFV);
    // Not a reference value (no public MRTD for this build): only stability.
    assert_eq!(t.mrtd(PageOrder::PerPage), t.mrtd(PageOrder::PerPage));
}

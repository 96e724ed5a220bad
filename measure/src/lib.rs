//! Expected TDX measurements of the EigenKMS enclave image.
//!
//! A node is trusted because its TD's MRTD and RTMR0-3 match the published values of
//! a release. This crate recomputes those values from the release's inputs, so anyone
//! can check a published `measurements/<release>.json` against the image:
//!
//! - [`rtmr`]: the extend rule `RTMR ← SHA-384(RTMR ‖ digest)` and measured events;
//! - [`authenticode`]: the PE image hash firmware measures (over [`pe`] parsing);
//! - [`tdvf`]: MRTD from the firmware's TDX metadata;
//! - [`rtmr0`]: the RTMR0 events fixed by the firmware file;
//! - [`gpt`], [`uki`]: the RTMR1/RTMR2 events of booting a UKI from a GPT disk;
//! - [`eventlog`]: replaying a TD's event log (for RTMR0 and cross-checks);
//! - [`release`]: the `measurements/<release>.json` format policies read;
//! - [`signed`]: release approvals, Ed25519 signatures over such a file.

pub mod authenticode;
pub mod compute;
pub mod digest;
pub mod eventlog;
pub mod gpt;
pub mod pe;
pub mod release;
pub mod rtmr;
pub mod rtmr0;
pub mod signed;
pub mod tdvf;
pub mod uki;

pub use digest::Sha384Digest;
pub use release::{FORMAT, ReleaseMeasurements};
pub use rtmr::{MeasuredEvent, Rtmr};

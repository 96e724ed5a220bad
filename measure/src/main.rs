//! `kms-measure`: expected TDX measurements of an EigenKMS enclave image.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use kms_measure::authenticode::{authenticode_sha256, authenticode_sha384, signed_sha256_digest};
use kms_measure::compute::{ReleaseSpec, compute_release, default_vm};
use kms_measure::eventlog::{EventLog, LogKind};
use kms_measure::gpt::Gpt;
use kms_measure::release::{Provenance, ReleaseMeasurements, VmConfig};
use kms_measure::rtmr::{MeasuredEvent, replay};
use kms_measure::tdvf::{PageOrder, Tdvf};
use kms_measure::uki::{BootModel, Uki};

#[derive(Parser)]
#[command(
    name = "kms-measure",
    version,
    about = "Expected TDX measurements (MRTD, RTMR0-3) of the EigenKMS enclave image"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct VmArgs {
    /// Guest memory in MiB (part of the configuration RTMR0 is recorded for).
    #[arg(long, default_value_t = default_vm().memory_mib)]
    memory_mib: u64,
    /// vCPUs (part of the configuration RTMR0 is recorded for).
    #[arg(long, default_value_t = default_vm().cpus)]
    cpus: u32,
    /// How the host adds firmware pages: per-page (upstream KVM) or add-all-then-extend.
    #[arg(long, value_parser = parse_page_order, default_value = "per-page")]
    page_order: PageOrder,
    /// UEFI Secure Boot is on (the kernel is then not measured into RTMR1).
    #[arg(long)]
    secure_boot: bool,
}

impl VmArgs {
    fn config(&self) -> VmConfig {
        VmConfig {
            memory_mib: self.memory_mib,
            cpus: self.cpus,
            page_order: self.page_order,
            secure_boot: self.secure_boot,
        }
    }
}

#[derive(clap::Args)]
struct ImageArgs {
    /// The raw disk image (its GPT is measured).
    #[arg(long)]
    disk: PathBuf,
    /// The UKI booted from the disk's ESP (\EFI\BOOT\BOOTX64.EFI).
    #[arg(long)]
    uki: PathBuf,
    /// The TDVF firmware the host passes with -bios (for MRTD).
    #[arg(long)]
    firmware: Option<PathBuf>,
    /// Force whether the kernel's EFI stub measures its command line and initrd
    /// into RTMR2 (default: yes for Linux >= 6.9, read from the UKI's .uname).
    #[arg(long)]
    kernel_stub_measures: Option<bool>,
}

#[derive(Subcommand)]
enum Command {
    /// Authenticode digests of a PE image (kernel, UKI), as firmware measures them.
    Authenticode {
        /// The PE file.
        file: PathBuf,
        /// Also compare with the digest in the image's own Authenticode signature.
        #[arg(long)]
        check_signature: bool,
    },
    /// MRTD of a TDVF firmware image.
    Mrtd {
        /// The firmware (e.g. OVMF.fd built with TDX support).
        firmware: PathBuf,
        /// How the host adds pages.
        #[arg(long, value_parser = parse_page_order, default_value = "per-page")]
        page_order: PageOrder,
    },
    /// The RTMR1/RTMR2 events and values of booting a UKI from a disk.
    Boot {
        #[command(flatten)]
        image: ImageArgs,
        /// Secure Boot on.
        #[arg(long)]
        secure_boot: bool,
        /// Compare the predicted RTMR1/RTMR2 events with this boot's event log.
        #[arg(long)]
        check_log: Option<PathBuf>,
        /// The log is a TPM log (a VM with a virtual TPM): PCRs are mapped to RTMRs and
        /// separators, one per PCR there, are left out of the comparison.
        #[arg(long)]
        tpm: bool,
    },
    /// Replay a TD event log (/sys/firmware/acpi/tables/data/CCEL).
    Eventlog {
        /// The log.
        log: PathBuf,
        /// A TPM event log (binary_bios_measurements): PCRs mapped as TDVF maps them.
        #[arg(long)]
        tpm: bool,
    },
    /// Compute measurements/<release>.json.
    Release {
        /// The release name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        image: ImageArgs,
        #[command(flatten)]
        vm: VmArgs,
        /// The source commit.
        #[arg(long, default_value = "unknown")]
        commit: String,
        /// SOURCE_DATE_EPOCH of the build.
        #[arg(long, default_value_t = 0)]
        source_date_epoch: u64,
        /// The image's package list (`name version` lines).
        #[arg(long)]
        packages: Option<PathBuf>,
        /// The CC event log of a reference boot on a TDX host: supplies RTMR0 and is
        /// checked against the predicted RTMR1/RTMR2 events.
        #[arg(long)]
        reference_log: Option<PathBuf>,
        /// Where to write the JSON (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Recompute a release file from its inputs and report any difference.
    Verify {
        /// The release file (measurements/<release>.json).
        release: PathBuf,
        #[command(flatten)]
        image: ImageArgs,
        /// The reference event log the release's RTMR0 came from, if any.
        #[arg(long)]
        reference_log: Option<PathBuf>,
    },
    /// Make a release-signing key (Ed25519, PKCS#8): the file is the secret (keep it
    /// offline); the printed public key goes into nodes' attestation.release_signers.
    ReleaseKey {
        /// Where to write the key (never overwritten; owner-only).
        #[arg(long)]
        out: PathBuf,
    },
    /// Approve a release: add this key's signature to <release>.json.sig.
    Sign {
        /// The release-signing key (from release-key).
        #[arg(long)]
        key: PathBuf,
        /// The release file (measurements/<release>.json).
        release: PathBuf,
    },
    /// Check a release's approvals as a node does: at least --required signatures from
    /// the --signer keys over exactly this file.
    CheckSignatures {
        /// A release signer's public key (hex; repeatable).
        #[arg(long = "signer", required = true)]
        signers: Vec<String>,
        /// Signatures required.
        #[arg(long, default_value_t = 1)]
        required: usize,
        /// The release file; its signatures are in <file>.sig.
        release: PathBuf,
    },
}

fn signature_path(release: &Path) -> PathBuf {
    let mut p = release.as_os_str().to_owned();
    p.push(kms_measure::signed::SIGNATURE_SUFFIX);
    PathBuf::from(p)
}

fn parse_page_order(s: &str) -> Result<PageOrder, String> {
    match s {
        "per-page" => Ok(PageOrder::PerPage),
        "add-all-then-extend" => Ok(PageOrder::AddAllThenExtend),
        other => Err(format!("{other}: expected per-page or add-all-then-extend")),
    }
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn print_events(register: &str, events: &[MeasuredEvent]) {
    println!("{register} = {}", replay(events));
    for (i, e) in events.iter().enumerate() {
        println!(
            "  [{i}] {} {}  {}",
            e.digest,
            e.event_type.name(),
            e.description
        );
    }
}

struct Loaded {
    disk: Vec<u8>,
    uki: Vec<u8>,
    firmware: Option<(String, Vec<u8>)>,
}

fn load(image: &ImageArgs) -> anyhow::Result<Loaded> {
    let firmware = match &image.firmware {
        Some(p) => Some((
            p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            read(p)?,
        )),
        None => None,
    };
    Ok(Loaded {
        disk: read(&image.disk)?,
        uki: read(&image.uki)?,
        firmware,
    })
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Authenticode {
            file,
            check_signature,
        } => {
            let data = read(&file)?;
            let sha256 = authenticode_sha256(&data)?;
            println!("authenticode-sha256 {}", hex::encode(sha256));
            println!("authenticode-sha384 {}", authenticode_sha384(&data)?);
            if check_signature {
                match signed_sha256_digest(&data)? {
                    None => bail!(
                        "{}: no Authenticode signature with a SHA-256 digest",
                        file.display()
                    ),
                    Some(signed) if signed == sha256 => println!("signature digest matches"),
                    Some(signed) => bail!("signature digest {} differs", hex::encode(signed)),
                }
            }
        }
        Command::Mrtd {
            firmware,
            page_order,
        } => {
            let fw = read(&firmware)?;
            let t = Tdvf::parse(&fw)?;
            for s in &t.sections {
                println!(
                    "section {:?} gpa={:#x} pages={} file={:#x}+{:#x} extend={} add={}",
                    s.section_type,
                    s.memory_address,
                    s.memory_data_size / 0x1000,
                    s.data_offset,
                    s.raw_data_size,
                    s.extended(),
                    s.page_added()
                );
            }
            if let Some(cfv) = t.cfv_digest() {
                println!("cfv-sha384 {cfv}");
            }
            println!("mrtd {}", t.mrtd(page_order));
        }
        Command::Boot {
            image,
            secure_boot,
            check_log,
            tpm,
        } => {
            let l = load(&image)?;
            let uki = Uki::parse(&l.uki)?;
            let gpt = Gpt::read(&l.disk)?;
            let model = BootModel {
                secure_boot,
                kernel_stub_measures: image.kernel_stub_measures,
            };
            let rtmr1 = uki.rtmr1_events(&gpt, &model)?;
            let rtmr2 = uki.rtmr2_events(&model)?;
            print_events("rtmr1", &rtmr1);
            print_events("rtmr2", &rtmr2);
            if let Some(path) = check_log {
                let kind = if tpm { LogKind::Tpm } else { LogKind::Cc };
                let log = EventLog::parse_kind(&read(&path)?, kind)?;
                let mut differences = Vec::new();
                for (i, events) in [(1, &rtmr1), (2, &rtmr2)] {
                    let diff = if tpm {
                        log.compare_without_separators(i, events)
                    } else {
                        log.compare(i, events)
                    };
                    match diff {
                        None => println!("rtmr{i}: every predicted event is in the log, in order"),
                        Some(d) => differences.push(d),
                    }
                }
                if !differences.is_empty() {
                    bail!(
                        "the log differs from the prediction: {}",
                        differences.join("; ")
                    );
                }
            }
        }
        Command::Eventlog { log, tpm } => {
            let kind = if tpm { LogKind::Tpm } else { LogKind::Cc };
            let parsed = EventLog::parse_kind(&read(&log)?, kind)?;
            for e in &parsed.events {
                let check = match e.self_check() {
                    Some(true) => "data ok",
                    Some(false) => "DATA MISMATCH",
                    None => "",
                };
                println!(
                    "rtmr{} {} {:<34} {check}",
                    e.rtmr,
                    e.digest,
                    e.event_type.name()
                );
            }
            for (i, v) in parsed.replay().iter().enumerate() {
                println!("rtmr{i} = {v}");
            }
        }
        Command::Release {
            name,
            image,
            vm,
            commit,
            source_date_epoch,
            packages,
            reference_log,
            output,
        } => {
            let l = load(&image)?;
            let log = reference_log.as_deref().map(read).transpose()?;
            let packages_sha256 = packages
                .as_deref()
                .map(read)
                .transpose()?
                .map(|p| kms_measure::digest::sha256_hex(&p));
            let release = compute_release(&ReleaseSpec {
                release: name,
                provenance: Provenance {
                    commit,
                    source_date_epoch,
                    packages_sha256,
                },
                vm: vm.config(),
                disk: &l.disk,
                uki: &l.uki,
                firmware: l.firmware.as_ref().map(|(n, d)| (n.as_str(), d.as_slice())),
                kernel_stub_measures: image.kernel_stub_measures,
                reference_log: log.as_deref(),
            })?;
            match output {
                Some(p) => std::fs::write(&p, release.to_json())
                    .with_context(|| format!("writing {}", p.display()))?,
                None => print!("{}", release.to_json()),
            }
        }
        Command::Verify {
            release,
            image,
            reference_log,
        } => {
            let published = ReleaseMeasurements::load(&release)?;
            let l = load(&image)?;
            let log = reference_log.as_deref().map(read).transpose()?;
            let recomputed = compute_release(&ReleaseSpec {
                release: published.release.clone(),
                provenance: published.provenance.clone(),
                vm: published.vm.clone(),
                disk: &l.disk,
                uki: &l.uki,
                firmware: l.firmware.as_ref().map(|(n, d)| (n.as_str(), d.as_slice())),
                kernel_stub_measures: image.kernel_stub_measures,
                reference_log: log.as_deref(),
            })?;
            let (p, r) = (&published.registers, &recomputed.registers);
            let mut differ = Vec::new();
            for (name, a, b) in [
                ("mrtd", &p.mrtd, &r.mrtd),
                ("rtmr0", &p.rtmr0, &r.rtmr0),
                ("rtmr1", &p.rtmr1, &r.rtmr1),
                ("rtmr2", &p.rtmr2, &r.rtmr2),
                ("rtmr3", &p.rtmr3, &r.rtmr3),
            ] {
                let show = |v: &Option<kms_measure::Sha384Digest>| {
                    v.map_or("unknown".to_string(), |d| d.to_hex())
                };
                let same = a.value == b.value;
                println!(
                    "{name} {} {}",
                    if same { "same" } else { "DIFFERS" },
                    show(&b.value)
                );
                if !same {
                    differ.push(name);
                }
            }
            // File names are labels; sizes and hashes are what must agree.
            let unnamed = |mut i: kms_measure::release::Inputs| {
                for f in [&mut i.disk, &mut i.uki, &mut i.kernel, &mut i.initrd]
                    .into_iter()
                    .chain(i.firmware.as_mut())
                {
                    f.name.clear();
                }
                i
            };
            if unnamed(published.inputs.clone()) != unnamed(recomputed.inputs.clone()) {
                differ.push("inputs");
                println!("inputs DIFFER (file names, sizes or hashes)");
            }
            if !differ.is_empty() {
                bail!(
                    "{} does not match the given inputs: {}",
                    release.display(),
                    differ.join(", ")
                );
            }
            println!("{}: all recomputed values match", release.display());
        }
        Command::ReleaseKey { out } => {
            let (pkcs8, public) = kms_measure::signed::generate_key();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            use std::io::Write;
            opts.open(&out)
                .and_then(|mut f| f.write_all(&pkcs8).and_then(|()| f.sync_all()))
                .with_context(|| format!("writing {}", out.display()))?;
            println!("{}", hex::encode(public));
        }
        Command::Sign { key, release } => {
            let file = read(&release)?;
            let sig_path = signature_path(&release);
            let existing = match std::fs::read_to_string(&sig_path) {
                Ok(text) => Some(kms_measure::signed::ReleaseSignatures::from_json(&text)?),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(e).with_context(|| format!("reading {}", sig_path.display())),
            };
            let signed = kms_measure::signed::sign(&file, &read(&key)?, existing)?;
            std::fs::write(&sig_path, signed.to_json())
                .with_context(|| format!("writing {}", sig_path.display()))?;
            println!(
                "{}: {} signature(s)",
                sig_path.display(),
                signed.signatures.len()
            );
        }
        Command::CheckSignatures {
            signers,
            required,
            release,
        } => {
            let keys = signers
                .iter()
                .map(|s| {
                    kms_measure::signed::parse_signer(s)
                        .with_context(|| format!("--signer {s}: expected 64 hex digits"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let sig_path = signature_path(&release);
            let sigs = kms_measure::signed::ReleaseSignatures::from_json(
                &std::fs::read_to_string(&sig_path)
                    .with_context(|| format!("reading {}", sig_path.display()))?,
            )?;
            let approved = kms_measure::signed::verify(&read(&release)?, &sigs, &keys, required)?;
            println!("{}: approved", approved.release);
        }
    }
    Ok(())
}

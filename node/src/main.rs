//! `kms-node`: run an operator, a local devnet, generate keys, check a configuration.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use kms_crypto::signer::SignatureScheme;
use kms_node::config::{AttestationConfig, AttestationMode, UnlockMode};
use kms_node::devnet::{self, DevnetSpec};
use kms_node::{Node, NodeConfig, OperatorKeys, StartOptions};
use kms_protocol::VssMode;
use tracing_subscriber::EnvFilter;
use zeroize::Zeroizing;

const PASSPHRASE_ENV: &str = "KMS_OPERATOR_KEY_PASSPHRASE";

#[derive(Parser)]
#[command(name = "kms-node", version, about = "EigenKMS operator node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one operator.
    Run {
        /// The TOML configuration (see node/config.example.toml).
        #[arg(long, env = "KMS_CONFIG")]
        config: Option<PathBuf>,
        /// Override a field: `section.field=value` (repeatable; wins over env and file).
        #[arg(long = "set", value_name = "SECTION.FIELD=VALUE")]
        overrides: Vec<String>,
    },
    /// Run a local cluster of N operators on 127.0.0.1 (development only).
    Devnet {
        /// Number of operators.
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Port of the first node.
        #[arg(long, default_value_t = 18_000)]
        base_port: u16,
        /// Keys, configs, stores and logs.
        #[arg(long, default_value = "devnet-data")]
        data_dir: PathBuf,
        /// Seconds between sessions (DKG, then a reshare at every boundary).
        #[arg(long, default_value_t = 30)]
        interval: u64,
        /// Phase length in milliseconds.
        #[arg(long, default_value_t = 2_000)]
        phase_ms: u64,
        /// Operator key scheme.
        #[arg(long, value_enum, default_value_t = Scheme::Bn254)]
        scheme: Scheme,
        /// VSS mode.
        #[arg(long, value_enum, default_value_t = Mode::Feldman)]
        mode: Mode,
    },
    /// Generate an operator key file (sealed with $KMS_OPERATOR_KEY_PASSPHRASE).
    Keygen {
        /// Where to write it (never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Signature scheme of protocol messages.
        #[arg(long, value_enum, default_value_t = Scheme::Bn254)]
        scheme: Scheme,
        /// Write the secrets unencrypted (development only).
        #[arg(long)]
        insecure_plaintext: bool,
    },
    /// Send the operator key's passphrase ($KMS_OPERATOR_KEY_PASSPHRASE, else one
    /// line of standard input) to a locked node (`operator.unlock = "remote"`), after
    /// checking its attestation: a released node image (--release-file or the policy's
    /// node images) on an accepted platform, bound to the one-use key it is sent to.
    Unlock {
        /// The locked node (its server.listen), e.g. http://10.0.0.5:8001.
        #[arg(long)]
        url: url::Url,
        /// The operator the node's key file must belong to.
        #[arg(long)]
        expect_address: Option<kms_crypto::OperatorAddress>,
        /// Released node images the node may run (measurements/<release>.json; repeatable).
        #[arg(long = "release-file", value_name = "FILE")]
        release_files: Vec<PathBuf>,
        /// Policy JSON (accepted TCB statuses, node images).
        #[arg(long, value_name = "FILE")]
        policy_file: Option<PathBuf>,
        /// DCAP collateral directory (<FMSPC>[-<ca>].json files).
        #[arg(long, value_name = "DIR", conflicts_with = "pccs_url")]
        collateral_dir: Option<PathBuf>,
        /// Or a PCCS (v4 API) to fetch the node platform's collateral from.
        #[arg(long, value_name = "URL")]
        pccs_url: Option<String>,
        /// Accept the simulated quotes of an insecure-dev node of this identity
        /// (development only: they prove nothing).
        #[arg(long, value_name = "NAME")]
        insecure_dev_identity: Option<String>,
    },
    /// Seal a secret file (a TLS private key) under $KMS_OPERATOR_KEY_PASSPHRASE, for
    /// a node that opens it with its operator key's passphrase.
    Seal {
        /// What the secret is for (the node reads tls.key_file as "tls-key").
        #[arg(long, default_value = kms_node::tls::TLS_KEY_PURPOSE)]
        purpose: String,
        /// The plaintext file.
        #[arg(long = "in", value_name = "FILE")]
        input: PathBuf,
        /// The sealed file to write (never overwritten).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Attestation tools for operators and auditors.
    Attest {
        #[command(subcommand)]
        command: AttestCommand,
    },
}

#[derive(Subcommand)]
enum AttestCommand {
    /// Verify a TDX quote (with its collateral) or a Trust Authority token (with its
    /// JWKS) at a given time and print the verified TD as JSON; exits non-zero naming
    /// the error kind on rejection.
    Verify(kms_attestation::cli::VerifyArgs),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate a configuration (file, env, flags) and print the effective one.
    Check {
        /// The TOML configuration.
        #[arg(long, env = "KMS_CONFIG")]
        config: Option<PathBuf>,
        /// Override a field: `section.field=value`.
        #[arg(long = "set", value_name = "SECTION.FIELD=VALUE")]
        overrides: Vec<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Scheme {
    Bn254,
    Ecdsa,
}

impl From<Scheme> for SignatureScheme {
    fn from(s: Scheme) -> Self {
        match s {
            Scheme::Bn254 => SignatureScheme::Bn254,
            Scheme::Ecdsa => SignatureScheme::Ecdsa,
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Feldman,
    Pedersen,
}

impl From<Mode> for VssMode {
    fn from(m: Mode) -> Self {
        match m {
            Mode::Feldman => VssMode::Feldman,
            Mode::Pedersen => VssMode::Pedersen,
        }
    }
}

fn load_config(config: Option<PathBuf>, overrides: &[String]) -> anyhow::Result<NodeConfig> {
    Ok(NodeConfig::load(
        config.as_deref(),
        std::env::vars(),
        overrides,
    )?)
}

/// The passphrase from the environment, else one line of standard input.
fn read_passphrase() -> anyhow::Result<Zeroizing<String>> {
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        return Ok(Zeroizing::new(p));
    }
    eprintln!("{PASSPHRASE_ENV} is not set: reading the passphrase from standard input");
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().read_line(&mut line)?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_string());
    if trimmed.is_empty() {
        bail!("no passphrase given");
    }
    Ok(trimmed)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config, overrides } => {
            let cfg = load_config(config, &overrides)?;
            let env_passphrase = std::env::var(PASSPHRASE_ENV).ok().map(Zeroizing::new);
            let remote = cfg.operator.unlock == UnlockMode::Remote
                && env_passphrase.is_none()
                && OperatorKeys::peek(&cfg.operator.key_file)?.sealed;
            let (keys, passphrase) = if remote {
                match kms_node::unlock::wait_for_unlock(&cfg, shutdown_signal()).await? {
                    Some(u) => (u.keys, Some(u.passphrase)),
                    None => return Ok(()),
                }
            } else {
                let keys = OperatorKeys::read(
                    &cfg.operator.key_file,
                    env_passphrase.as_deref().map(|p| p.as_str()),
                    cfg.insecure.plaintext_keys,
                )?;
                (keys, env_passphrase)
            };
            let options = StartOptions {
                passphrase,
                ..StartOptions::default()
            };
            let node = Node::start_with(cfg, keys, options).await?;
            shutdown_signal().await;
            node.shutdown().await;
            Ok(())
        }
        Command::Unlock {
            url,
            expect_address,
            release_files,
            policy_file,
            collateral_dir,
            pccs_url,
            insecure_dev_identity,
        } => {
            let mut a = AttestationConfig {
                release_files,
                policy_file: policy_file.unwrap_or_default(),
                collateral_dir: collateral_dir.unwrap_or_default(),
                pccs_url: pccs_url.unwrap_or_default(),
                ..AttestationConfig::default()
            };
            if let Some(identity) = insecure_dev_identity {
                eprintln!("WARNING: accepting simulated quotes (insecure-dev): they prove nothing");
                a.mode = AttestationMode::InsecureDev;
                a.simulated_identity = identity;
            }
            let (verifier, policy) = kms_node::attest::verifier_and_policy(&a)?;
            let passphrase = read_passphrase()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let policy = kms_node::unlock::UnlockPolicy {
                verifier,
                policy,
                expect_address,
            };
            let (address, td) =
                kms_node::unlock::unlock_remote(&url, passphrase.as_str(), &policy, now).await?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "unlocked": address,
                    "td": td,
                }))?
            );
            Ok(())
        }
        Command::Seal {
            purpose,
            input,
            out,
        } => {
            let passphrase = Zeroizing::new(std::env::var(PASSPHRASE_ENV).with_context(|| {
                format!("set {PASSPHRASE_ENV}: the passphrase of the operator key file")
            })?);
            let plain = Zeroizing::new(
                std::fs::read(&input).with_context(|| format!("{}", input.display()))?,
            );
            let sealed = kms_node::keys::seal_secret(&plain, &purpose, &passphrase)?;
            kms_node::keys::write_new_private(&out, sealed.as_bytes())
                .with_context(|| format!("{}", out.display()))?;
            eprintln!(
                "sealed {} for {purpose:?} into {}; delete the plaintext file",
                input.display(),
                out.display()
            );
            Ok(())
        }
        Command::Devnet {
            nodes,
            base_port,
            data_dir,
            interval,
            phase_ms,
            scheme,
            mode,
        } => {
            if !(1..=64).contains(&nodes) {
                bail!("--nodes must be between 1 and 64");
            }
            devnet::run(DevnetSpec {
                nodes,
                base_port,
                data_dir,
                interval_secs: interval,
                phase_ms,
                scheme: scheme.into(),
                mode: mode.into(),
            })
            .await
        }
        Command::Keygen {
            out,
            scheme,
            insecure_plaintext,
        } => {
            let keys = OperatorKeys::generate(scheme.into());
            let passphrase = if insecure_plaintext {
                eprintln!("WARNING: writing an UNENCRYPTED key file (development only)");
                None
            } else {
                let p = std::env::var(PASSPHRASE_ENV).with_context(|| {
                    format!(
                        "set {PASSPHRASE_ENV} to seal the key file (or pass --insecure-plaintext)"
                    )
                })?;
                if p.len() < 12 {
                    bail!("{PASSPHRASE_ENV} must be at least 12 characters");
                }
                Some(p)
            };
            keys.write(&out, passphrase.as_deref())?;
            // The peering entry for this operator.
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "address": keys.address(),
                    "public_key": keys.public_key(),
                    "key_file": out,
                }))?
            );
            Ok(())
        }
        Command::Config {
            command: ConfigCommand::Check { config, overrides },
        } => {
            let cfg = load_config(config, &overrides)?;
            println!("{}", toml::to_string_pretty(&cfg)?);
            for m in cfg.insecure_modes() {
                eprintln!("warning: insecure mode on: {m}");
            }
            eprintln!("configuration OK");
            Ok(())
        }
        Command::Attest {
            command: AttestCommand::Verify(args),
        } => match kms_attestation::cli::verify_cli(&args) {
            Ok(v) => {
                use std::io::Write;
                // A closed pipe (`| head`) is not an error worth a panic.
                let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string_pretty(&v)?);
                Ok(())
            }
            Err(e) => {
                eprintln!("rejected: {}: {e}", e.kind());
                std::process::exit(1);
            }
        },
    }
}

//! The `kms-client` command line, callable in-process (`run`) so tests drive it
//! without spawning a process.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use url::Url;

use crate::KmsClient;

#[derive(Parser)]
#[command(
    name = "kms-client",
    version,
    about = "EigenKMS client: master public key, app keys, IBE"
)]
struct Cli {
    /// Node base URLs, comma separated.
    #[arg(long, env = "KMS_NODES", value_delimiter = ',', required = true)]
    nodes: Vec<Url>,
    /// Trust only the CA certificates in this PEM file for the nodes' TLS (e.g. a
    /// devnet's `ca.crt`); by default the system's roots.
    #[arg(long, env = "KMS_CA_FILE")]
    ca_file: Option<PathBuf>,
    /// Per-request timeout in milliseconds.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..))]
    timeout_ms: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The master public key at least t operators agree on, and its version.
    Pubkey,
    /// Collect, verify and combine partial signatures: the app's private key (0x-hex).
    AppKey {
        /// The application identity.
        #[arg(long)]
        app_id: String,
    },
    /// IBE-encrypt to an app ID (stdin/stdout by default).
    Encrypt {
        /// The application identity.
        #[arg(long)]
        app_id: String,
        /// Input file.
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// Output file.
        #[arg(long = "out")]
        output: Option<PathBuf>,
    },
    /// Decrypt a ciphertext for an app ID (needs t honest operators).
    Decrypt {
        /// The application identity.
        #[arg(long)]
        app_id: String,
        /// Input file.
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// Output file.
        #[arg(long = "out")]
        output: Option<PathBuf>,
    },
}

/// Largest input read (1 GiB): AES-GCM's own limit is far above.
const MAX_INPUT: u64 = 1 << 30;

fn read_input(p: &Option<PathBuf>) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    match p {
        Some(p) => {
            std::fs::File::open(p)
                .with_context(|| format!("reading {}", p.display()))?
                .take(MAX_INPUT)
                .read_to_end(&mut buf)?;
        }
        None => {
            std::io::stdin().take(MAX_INPUT).read_to_end(&mut buf)?;
        }
    }
    Ok(buf)
}

fn write_output(p: &Option<PathBuf>, data: &[u8], stdout: &mut impl Write) -> anyhow::Result<()> {
    match p {
        Some(p) => std::fs::write(p, data).with_context(|| format!("writing {}", p.display())),
        None => Ok(stdout.write_all(data)?),
    }
}

/// Parses `args` (the first one is the program name) and runs the command.
pub async fn run(
    args: impl IntoIterator<Item = String>,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args)?;
    let ca_pem = match &cli.ca_file {
        Some(p) => Some(std::fs::read(p).with_context(|| format!("reading {}", p.display()))?),
        None => None,
    };
    let client = KmsClient::with_options(
        cli.nodes,
        crate::ClientOptions {
            timeout: Duration::from_millis(cli.timeout_ms),
            ca_pem,
        },
    )?;
    match cli.command {
        Command::Pubkey => {
            let mk = client.master_public_key().await?;
            let dissenting: Vec<_> = mk
                .dissenting
                .iter()
                .map(|d| {
                    serde_json::json!({
                        "node": d.node.as_str(),
                        "operator": d.operator,
                        "version": d.version,
                    })
                })
                .collect();
            let out = serde_json::json!({
                "masterPublicKey": mk.public_key(),
                "version": mk.version,
                "threshold": mk.threshold,
                "operators": mk.operators,
                "agreeing": mk.agreeing,
                "dissenting": dissenting,
            });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
        }
        Command::AppKey { app_id } => {
            let key = client.app_key(&app_id).await?;
            let encoded = zeroize::Zeroizing::new(hex::encode(key.to_bytes()));
            writeln!(stdout, "0x{}", encoded.as_str())?;
        }
        Command::Encrypt {
            app_id,
            input,
            output,
        } => {
            let pt = zeroize::Zeroizing::new(read_input(&input)?);
            let ct = client.encrypt(&app_id, &pt).await?;
            write_output(&output, &ct, stdout)?;
        }
        Command::Decrypt {
            app_id,
            input,
            output,
        } => {
            let ct = read_input(&input)?;
            let pt = client.decrypt(&app_id, &ct).await?;
            write_output(&output, &pt, stdout)?;
        }
    }
    stdout.flush()?;
    Ok(())
}

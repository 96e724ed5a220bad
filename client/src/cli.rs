//! The `kms-client` command line, callable in-process (`run`) so tests drive it
//! without spawning a process.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use url::Url;

use crate::{Authority, KmsClient};

#[derive(Parser)]
#[command(
    name = "kms-client",
    version,
    about = "EigenKMS client: master public key, app keys, IBE, /secrets"
)]
struct Cli {
    /// Node base URLs, comma separated.
    #[arg(long, env = "KMS_NODES", value_delimiter = ',')]
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

/// How this client proves it may have an app's key: the owner's key, or a quote of
/// the TD it runs in.
#[derive(clap::Args)]
struct AuthArgs {
    /// The app owner's key file (hex secp256k1 secret, `kms-client owner-keygen`),
    /// registered as the app's `owner` at the nodes.
    #[arg(long, env = "KMS_OWNER_KEY_FILE", conflicts_with = "attest")]
    owner_key: Option<PathBuf>,
    /// Attest the TD this runs in: `tdx` (configfs-tsm quotes) or `simulated`
    /// (insecure-dev nodes only; see --simulated-build).
    #[arg(long, env = "KMS_ATTEST", value_parser = ["tdx", "simulated"])]
    attest: Option<String>,
    /// With `--attest simulated`: the simulated build whose measurements to claim.
    #[arg(long, env = "KMS_SIMULATED_BUILD", default_value = "eigenkms-dev-app")]
    simulated_build: String,
}

impl AuthArgs {
    fn authority(&self) -> anyhow::Result<Authority> {
        match (&self.owner_key, self.attest.as_deref()) {
            (Some(p), _) => Ok(Authority::owner_key_file(p)?),
            (None, Some("tdx")) => Ok(Authority::tdx()),
            (None, Some(_)) => Ok(Authority::simulated(&self.simulated_build)),
            (None, None) => anyhow::bail!(
                "the nodes release app keys only to an authorized caller: pass --owner-key FILE \
                 (the app owner's key) or --attest tdx|simulated (inside the app's TD)"
            ),
        }
    }
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
        #[command(flatten)]
        auth: AuthArgs,
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
    /// Decrypt a ciphertext for an app ID (needs t honest operators and an
    /// authorization: --owner-key or --attest).
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
        #[command(flatten)]
        auth: AuthArgs,
    },
    /// Inside the app's TD: `/secrets` from t nodes (attested, RSA-OAEP), the app key
    /// combined, the registered environment decrypted; written to --out or stdout.
    Secrets {
        /// The application identity.
        #[arg(long)]
        app_id: String,
        /// Write the decrypted environment here (mode 0600) instead of stdout.
        #[arg(long = "out")]
        output: Option<PathBuf>,
        /// Print `{"publicEnv", "env", "version"}` as JSON instead of the raw
        /// environment.
        #[arg(long)]
        json: bool,
        /// `tdx` (configfs-tsm quotes) or `simulated` (insecure-dev nodes only).
        #[arg(long, env = "KMS_ATTEST", value_parser = ["tdx", "simulated"], default_value = "tdx")]
        attest: String,
        /// With `--attest simulated`: the simulated build whose measurements to claim.
        #[arg(long, env = "KMS_SIMULATED_BUILD", default_value = "eigenkms-dev-app")]
        simulated_build: String,
    },
    /// A new app owner key: writes its secret (hex, mode 0600) to --out and prints its
    /// address, to register as the app's `owner`.
    OwnerKeygen {
        /// Where to write the secret key.
        #[arg(long = "out")]
        output: PathBuf,
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

/// Writes a secret file readable by its owner only (refusing to replace one).
fn write_private(p: &PathBuf, data: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(p)
        .with_context(|| format!("creating {}", p.display()))?;
    f.write_all(data)
        .with_context(|| format!("writing {}", p.display()))
}

/// Parses `args` (the first one is the program name) and runs the command.
pub async fn run(
    args: impl IntoIterator<Item = String>,
    stdout: &mut impl Write,
) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args)?;
    if let Command::OwnerKeygen { output } = &cli.command {
        let signer = kms_crypto::signer::ecdsa::EcdsaSigner::random(&mut rand_core::OsRng);
        let secret = zeroize::Zeroizing::new(format!("0x{}\n", hex::encode(signer.secret_bytes())));
        write_private(output, secret.as_bytes())?;
        writeln!(stdout, "{}", signer.address().to_checksum())?;
        return Ok(());
    }
    if cli.nodes.is_empty() {
        use clap::CommandFactory as _;
        return Err(Cli::command()
            .error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "no nodes: pass --nodes URL,URL,... or set KMS_NODES",
            )
            .into());
    }
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
        Command::AppKey { app_id, auth } => {
            let key = client.app_key(&app_id, &auth.authority()?).await?;
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
            auth,
        } => {
            let authority = auth.authority()?;
            let ct = read_input(&input)?;
            let pt = client.decrypt(&app_id, &ct, &authority).await?;
            write_output(&output, &pt, stdout)?;
        }
        Command::Secrets {
            app_id,
            output,
            json,
            attest,
            simulated_build,
        } => {
            let authority = if attest == "tdx" {
                Authority::tdx()
            } else {
                Authority::simulated(&simulated_build)
            };
            let s = client.secrets(&app_id, &authority).await?;
            if json {
                let env = match std::str::from_utf8(&s.env) {
                    Ok(t) => serde_json::Value::String(t.to_string()),
                    Err(_) => serde_json::json!({ "hex": hex::encode(&s.env[..]) }),
                };
                let out =
                    zeroize::Zeroizing::new(serde_json::to_string_pretty(&serde_json::json!({
                        "publicEnv": s.public_env,
                        "env": env,
                        "version": s.version,
                    }))?);
                match &output {
                    Some(p) => write_private(p, out.as_bytes())?,
                    None => writeln!(stdout, "{}", out.as_str())?,
                }
            } else {
                match &output {
                    Some(p) => write_private(p, &s.env)?,
                    None => stdout.write_all(&s.env)?,
                }
            }
        }
        // Handled before connecting.
        Command::OwnerKeygen { .. } => {}
    }
    stdout.flush()?;
    Ok(())
}

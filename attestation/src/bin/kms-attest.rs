//! `kms-attest verify`: verifies a TDX quote or a Trust Authority token offline
//! and prints the verified TD as JSON; exits non-zero naming the error kind.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kms_attestation::cli::{VerifyArgs, verify_cli};

#[derive(Parser)]
#[command(name = "kms-attest", version, about = "EigenKMS TDX attestation tools")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Verify a quote (--quote --collateral) or a token (--token --jwks) at --at.
    Verify(VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Verify(args) => match verify_cli(&args) {
            Ok(td) => {
                match serde_json::to_string_pretty(&td) {
                    Ok(text) => println!("{text}"),
                    Err(e) => {
                        eprintln!("rejected: config: cannot print the result: {e}");
                        return ExitCode::FAILURE;
                    }
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("rejected: {}: {e}", e.kind());
                ExitCode::FAILURE
            }
        },
    }
}

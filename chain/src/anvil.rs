//! Test support: a real anvil, installed by `scripts/install-chain-tools.sh` when
//! missing, started on 127.0.0.1 on a free port with the Prague hardfork (EIP-2537),
//! killed when dropped. Every wait is bounded. Used by this crate's tests and by the
//! node's chain-mode cluster tests.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use url::Url;

const ANVIL_IN_TOOLS: &str = ".tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
const START_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_TIMEOUT: Duration = Duration::from_secs(600);

/// The workspace root (where `.tools/` is installed): the nearest directory, from the
/// current one up, with a `Cargo.lock` (cargo runs tests in their package directory).
/// Found at run time, not with `env!("CARGO_MANIFEST_DIR")`: this module is compiled
/// into kms-node, and a build path inside the binary would make the enclave image's
/// build depend on where it is built (see enclave-image/README.md, Reproducibility).
fn workspace_root() -> PathBuf {
    let start = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    start
        .ancestors()
        .find(|d| d.join("Cargo.lock").is_file())
        .unwrap_or(&start)
        .to_path_buf()
}

fn wait_bounded(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// The anvil binary, installing it once per test process if needed.
fn anvil_binary() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            if let Some(p) = std::env::var_os("KMS_ANVIL").map(PathBuf::from)
                && p.is_file()
            {
                return Some(p);
            }
            let root = workspace_root();
            let local = root.join(ANVIL_IN_TOOLS);
            if local.is_file() {
                return Some(local);
            }
            eprintln!("[anvil] not installed: running scripts/install-chain-tools.sh");
            let child = Command::new("bash")
                .arg(root.join("scripts/install-chain-tools.sh"))
                .stdin(Stdio::null())
                .spawn();
            match child.map(|mut c| wait_bounded(&mut c, INSTALL_TIMEOUT)) {
                Ok(Some(s)) if s.success() && local.is_file() => Some(local),
                other => {
                    eprintln!("[anvil] install failed: {other:?}");
                    None
                }
            }
        })
        .clone()
}

/// A running anvil, killed on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: Url,
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

impl Anvil {
    /// Starts anvil, or returns `None` — loudly — only when it cannot be installed.
    /// `KMS_REQUIRE_ANVIL=1` turns that skip into a failure (for CI).
    pub fn start() -> Option<Anvil> {
        Self::start_with(&[])
    }

    /// As [`Anvil::start`], with extra arguments (e.g. `["--block-time", "1"]` for a
    /// chain that advances on its own).
    pub fn start_with(extra: &[&str]) -> Option<Anvil> {
        let Some(bin) = anvil_binary() else {
            let msg = "anvil could not be installed (npm registry unreachable?): \
                       SKIPPING this chain test";
            if std::env::var("KMS_REQUIRE_ANVIL").is_ok_and(|v| v == "1") {
                panic!("{msg}, but KMS_REQUIRE_ANVIL=1");
            }
            eprintln!("\n!!!!!!!!!! {msg} !!!!!!!!!!\n");
            return None;
        };
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--hardfork", "prague", "--accounts", "2", "--silent"])
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn anvil");
            let start = Instant::now();
            while start.elapsed() < START_TIMEOUT {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // port taken meanwhile, or a crash: try another port
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let url = format!("http://127.0.0.1:{port}").parse().expect("url");
                    return Some(Anvil { child, url });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            eprintln!("[anvil] did not come up on port {port}: {err}");
        }
        panic!("anvil did not start within {START_TIMEOUT:?} (3 attempts)");
    }
}

/// Gives `to` 1000 ether on an anvil chain (`anvil_setBalance`): test accounts pay for
/// their own transactions without a faucet.
pub async fn fund(
    conn: &crate::ChainConnection,
    to: alloy::primitives::Address,
) -> Result<(), crate::ChainError> {
    use alloy::providers::Provider;
    let amount = alloy::primitives::U256::from(10u64).pow(alloy::primitives::U256::from(21));
    conn.provider()
        .raw_request::<_, ()>("anvil_setBalance".into(), (to, amount))
        .await
        .map_err(|e| crate::ChainError::Rpc(e.to_string()))
}

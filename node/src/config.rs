//! Node configuration: one typed struct loaded from TOML, every field overridable by an
//! environment variable `KMS_<SECTION>_<FIELD>` and by `--set section.field=value`
//! flags (flags win over the environment, which wins over the file), validated at
//! start with errors that name the field. `node/config.example.toml` documents it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kms_protocol::VssMode;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use url::Url;

/// A configuration that cannot be used, naming the field.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type / unknown field.
    #[error("config: {0}")]
    Parse(String),
    /// A value out of range.
    #[error("config field `{field}`: {reason}")]
    Invalid {
        /// `section.field`.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

/// The whole node configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// The operator's identity.
    pub operator: OperatorConfig,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Where the operator set comes from.
    pub peering: PeeringConfig,
    /// Session scheduling.
    pub schedule: ScheduleConfig,
    /// The chain (peering source `contract`).
    pub chain: ChainConfig,
    /// The key store.
    pub store: StoreConfig,
    /// Request limits of the public endpoints.
    pub limits: LimitsConfig,
    /// Outgoing protocol messages.
    pub transport: TransportConfig,
    /// TLS of the server and towards peers.
    pub tls: TlsConfig,
    /// Attestation (TDX); a placeholder until the TEE work lands.
    pub attestation: AttestationConfig,
    /// `/secrets`: the registry of applications and replay protection.
    pub secrets: SecretsConfig,
    /// The audit log of key releases.
    pub audit: AuditConfig,
    /// Development modes. Each one is announced in the log and in `/health`.
    pub insecure: InsecureConfig,
}

/// `[operator]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorConfig {
    /// The operator key file written by `kms-node keygen`. Its passphrase comes from the
    /// environment variable `KMS_OPERATOR_KEY_PASSPHRASE`, never from the file.
    pub key_file: PathBuf,
    /// Where the passphrase of a sealed key file comes from when the environment
    /// variable is not set: `env` (nowhere else: the node stops) or `remote` (the
    /// node waits, locked, on `server.listen` until the operator sends it with
    /// `kms-node unlock`, encrypted to a key the node's TD attests; see
    /// `node/src/unlock.rs`). TDX images use `remote`: the host never sees it.
    pub unlock: UnlockMode,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        Self {
            key_file: PathBuf::from("operator.key"),
            unlock: UnlockMode::Env,
        }
    }
}

/// `operator.unlock`: how a sealed operator key file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnlockMode {
    /// The passphrase is in `KMS_OPERATOR_KEY_PASSPHRASE`.
    Env,
    /// The operator sends it to the attested TD (`kms-node unlock`).
    Remote,
}

/// `[server]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address.
    pub listen: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8001".parse().expect("valid"),
        }
    }
}

/// `[peering]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeeringConfig {
    /// `local` (a file); `contract` arrives with the chain work.
    pub source: PeeringSource,
    /// The peering file for `source = "local"` (TOML, see `peering.rs`).
    pub file: PathBuf,
}

impl Default for PeeringConfig {
    fn default() -> Self {
        Self {
            source: PeeringSource::Local,
            file: PathBuf::from("peers.toml"),
        }
    }
}

/// Where operators are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeeringSource {
    /// A local file.
    Local,
    /// The EigenLayer operator set on-chain (`[chain]`); sessions start at blocks.
    Contract,
}

/// `[chain]`: used when `peering.source = "contract"`. Empty strings mean "not set".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChainConfig {
    /// JSON-RPC endpoint.
    pub rpc_url: String,
    /// The deployment (JSON: allocationManager, keyRegistrar, commitmentRegistry,
    /// slashing, avs, operatorSetId).
    pub deployment_file: PathBuf,
    /// A session starts at every block number divisible by this (mainnet 50, about
    /// 10 minutes; sepolia 10).
    pub interval_blocks: u64,
    /// How often the chain head is polled.
    pub poll_ms: u64,
    /// Who signs this operator's transactions: `local` (the operator key file's
    /// account key) or `remote` (a web3signer-compatible endpoint).
    pub signer: TxSignerKind,
    /// The remote signer's URL when `signer = "remote"`.
    pub remote_signer_url: String,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            rpc_url: String::new(),
            deployment_file: PathBuf::new(),
            interval_blocks: 50,
            poll_ms: 1_000,
            signer: TxSignerKind::Local,
            remote_signer_url: String::new(),
        }
    }
}

/// Who signs transactions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TxSignerKind {
    /// The operator key file's account key.
    Local,
    /// A web3signer-compatible endpoint (`eth_signTransaction`).
    Remote,
}

/// `[schedule]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Seconds between session boundaries (DKG first, then reshares).
    pub interval_secs: u64,
    /// Length of one protocol phase in milliseconds.
    pub phase_ms: u64,
    /// Milliseconds between a boundary and the start of the first phase, in which
    /// every node notices the boundary, reads the operator set, checks the peers'
    /// attestations and agrees on the key version. A node that is still not ready
    /// when the first phase ends sits the session out rather than deal late.
    pub setup_ms: u64,
    /// VSS mode of the sessions this node starts.
    pub mode: VssMode,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            interval_secs: 600,
            phase_ms: 10_000,
            setup_ms: 5_000,
            mode: VssMode::Feldman,
        }
    }
}

impl ScheduleConfig {
    /// Phases a healthy session of this mode needs at most (the interval must hold
    /// them); a session under attack may run on until a phase before the next
    /// boundary (`Node` gives it up then).
    pub fn phases(&self) -> u64 {
        match self.mode {
            VssMode::Feldman => 3,
            VssMode::Pedersen => 7,
        }
    }
}

/// `[store]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The redb file of key versions.
    pub path: PathBuf,
    /// How far back `/app/sign` accepts an `attestationTime`.
    pub retention_days: u64,
    /// The proactive-security horizon: a key version superseded longer ago than this
    /// is deleted with its share, from the store and from memory (the active version
    /// never is). A version's shares exist from its session until this long after
    /// its successor's, so an adversary must compromise a threshold of operators
    /// within one interval plus this time. At least twice the session interval, so
    /// that the version a failed reshare started from is still held at the next
    /// boundary, where the operators fall back to it; at most `retention_days`.
    pub share_horizon_secs: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data/keys.redb"),
            retention_days: 30,
            share_horizon_secs: 24 * 3600,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body (protocol messages included).
    pub max_body_bytes: usize,
    /// Sustained `/app/sign` requests per second (whole node).
    pub sign_rate_per_sec: u32,
    /// Burst above the sustained rate.
    pub sign_burst: u32,
    /// `/app/sign` requests computed at the same time; more are refused with 503.
    pub sign_concurrency: usize,
    /// Sustained `/secrets` requests per second (whole node): each costs a quote
    /// verification and an RSA encryption, so it is limited apart from signing.
    pub secrets_rate_per_sec: u32,
    /// Burst above the sustained `/secrets` rate.
    pub secrets_burst: u32,
    /// `/secrets` requests worked on at the same time; more are refused with 503.
    pub secrets_concurrency: usize,
    /// Inbound connections open at once; more are closed on arrival (`connections.rs`).
    pub max_connections: usize,
    /// Inbound connections open at once from one address.
    pub max_connections_per_ip: usize,
    /// TLS handshakes in progress at once.
    pub max_handshakes: usize,
    /// TLS handshakes in progress at once from one address.
    pub max_handshakes_per_ip: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024,
            sign_rate_per_sec: 2_000,
            sign_burst: 4_000,
            sign_concurrency: 256,
            secrets_rate_per_sec: 200,
            secrets_burst: 400,
            secrets_concurrency: 32,
            max_connections: 4_096,
            // Operators behind one address (a NAT, a single-host cluster) and a
            // client's connection pool fit well below it.
            max_connections_per_ip: 1_024,
            max_handshakes: 128,
            max_handshakes_per_ip: 64,
        }
    }
}

/// `[transport]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TransportConfig {
    /// Timeout of one HTTP attempt.
    pub request_timeout_ms: u64,
    /// Attempts per message (first try included).
    pub max_attempts: u32,
    /// First retry delay; doubles each attempt, with full jitter.
    pub backoff_initial_ms: u64,
    /// Largest retry delay.
    pub backoff_max_ms: u64,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            request_timeout_ms: 5_000,
            max_attempts: 6,
            backoff_initial_ms: 100,
            backoff_max_ms: 3_000,
        }
    }
}

/// `[tls]`. Empty paths mean "not set" (so that every field has a `KMS_TLS_*`
/// variable and a `--set tls.*` flag).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// This node's certificate chain (PEM, leaf first), served to peers and apps.
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// Roots (PEM bundle) that peers' certificates must chain to; empty = the
    /// system's roots.
    pub ca_file: PathBuf,
}

impl TlsConfig {
    /// Whether the server speaks TLS.
    pub fn enabled(&self) -> bool {
        !self.cert_file.as_os_str().is_empty()
    }

    /// The CA file, if one is set.
    pub fn ca(&self) -> Option<&Path> {
        (!self.ca_file.as_os_str().is_empty()).then_some(self.ca_file.as_path())
    }
}

/// `[attestation]`: how this node proves what it runs, and what it accepts from
/// peers and applications. Empty paths mean "not set".
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationConfig {
    /// `tdx` (quotes from configfs-tsm, verified with DCAP collateral or Trust
    /// Authority tokens) or `insecure-dev` (simulated quotes, development only).
    pub mode: AttestationMode,
    /// DCAP collateral files, one per platform: `<FMSPC>[-<ca>].json` (PCCS JSON).
    pub collateral_dir: PathBuf,
    /// DCAP collateral from a PCCS (v4 API), e.g. `https://pccs.internal:8081`;
    /// each platform's collateral is fetched once and kept until its `nextUpdate`.
    /// Instead of `collateral_dir`.
    pub pccs_url: String,
    /// The CA of an `https` PCCS with its own certificate (default: system roots).
    pub pccs_ca_file: PathBuf,
    /// Intel Trust Authority: the JWKS file its tokens are checked against.
    pub ita_jwks_file: PathBuf,
    /// Intel Trust Authority: or the URL of its JWKS (its certificate endpoint),
    /// fetched once an hour; the last set stays in use for up to two hours when the
    /// endpoint fails. Instead of `ita_jwks_file`.
    pub ita_jwks_url: String,
    /// Intel Trust Authority: the expected `iss`.
    pub ita_issuer: String,
    /// The acceptance policy (JSON: TCB statuses, node images, per-app builds). Empty:
    /// strict statuses, no image allowed (in insecure-dev: the simulated identity below).
    pub policy_file: PathBuf,
    /// Released node images peers may run: `measurements/<release>.json` files (the
    /// `kms-measure` format), added to the policy's node images. A release with a
    /// register not known yet (RTMR0 before its reference boot) is refused at start:
    /// an unknown register must not become a wildcard.
    pub release_files: Vec<PathBuf>,
    /// Peers running exactly this node's own image (its verified MRTD and RTMRs) are
    /// admitted too. A TDX image sets it in its measured configuration: the image
    /// cannot list its own measurements, which depend on that very file.
    pub admit_own_image: bool,
    /// A directory of release approvals: `<release>.json` (the `kms-measure` format)
    /// beside `<release>.json.sig`, signed by at least `release_signatures_required`
    /// of `release_signers` (`kms-measure sign`). Releases approved so are admitted
    /// like `release_files`; the directory is re-read before every session, so a new
    /// release can be rolled out without changing (or restarting) the old nodes. Empty:
    /// off.
    pub signed_release_dir: PathBuf,
    /// Ed25519 public keys (hex) whose signatures approve a release. In a TDX image
    /// this list is in the measured configuration: the host cannot add a signer.
    pub release_signers: Vec<String>,
    /// Distinct signers a release needs.
    pub release_signatures_required: usize,
    /// `/secrets`: attestations older than this many seconds are refused.
    pub max_age_secs: u64,
    /// insecure-dev only: the name the simulated measurements are derived from
    /// (nodes that should attest each other use the same one).
    pub simulated_identity: String,
}

impl Default for AttestationConfig {
    fn default() -> Self {
        Self {
            mode: AttestationMode::Tdx,
            collateral_dir: PathBuf::new(),
            pccs_url: String::new(),
            pccs_ca_file: PathBuf::new(),
            ita_jwks_file: PathBuf::new(),
            ita_jwks_url: String::new(),
            ita_issuer: String::new(),
            policy_file: PathBuf::new(),
            release_files: Vec::new(),
            admit_own_image: false,
            signed_release_dir: PathBuf::new(),
            release_signers: Vec::new(),
            release_signatures_required: 1,
            max_age_secs: 300,
            simulated_identity: "eigenkms-dev-image".into(),
        }
    }
}

/// `[secrets]`: what `/secrets` releases, and to which builds.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecretsConfig {
    /// The app registry (TOML, see `apps.rs`): per app its public and IBE-encrypted
    /// environment and the builds (MRTD, RTMR0–3) allowed to receive them. Empty: no
    /// apps. A file that does not exist (yet) counts as empty.
    pub apps_file: PathBuf,
    /// The registry is re-read at most this often (seconds), on a request.
    pub reload_secs: u64,
    /// Nonces remembered for replay protection (per node); more requests within the
    /// attestation window are refused with 503 until old nonces expire.
    pub max_nonces: usize,
}

impl Default for SecretsConfig {
    fn default() -> Self {
        Self {
            apps_file: PathBuf::new(),
            reload_secs: 2,
            max_nonces: 100_000,
        }
    }
}

/// `[audit]`: where key releases are recorded (`node/src/audit.rs`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// The append-only JSON-lines file. Empty: `audit.jsonl` in the directory of
    /// `store.path`.
    pub file: PathBuf,
}

impl NodeConfig {
    /// The audit log's path.
    pub fn audit_file(&self) -> PathBuf {
        if !self.audit.file.as_os_str().is_empty() {
            return self.audit.file.clone();
        }
        self.store
            .path
            .parent()
            .unwrap_or(Path::new(""))
            .join("audit.jsonl")
    }
}

/// How this node attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttestationMode {
    /// Intel TDX: real quotes, real verification.
    Tdx,
    /// Simulated quotes, accepted from peers and apps (development only; insecure).
    InsecureDev,
}

/// `[insecure]`: development switches, all off by default.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InsecureConfig {
    /// Accept an unencrypted operator key file.
    pub plaintext_keys: bool,
    /// Talk to peers over plain HTTP (loopback development clusters).
    pub plain_http: bool,
    /// Answer `/app/sign` without authorization, in clear, in the insecure-dev
    /// signing domain (`tbls::INSECURE_DEV_DST`: never the app key). For load tests
    /// of the signing path; needs `attestation.mode = "insecure-dev"`.
    pub unauthenticated_app_sign: bool,
}

impl NodeConfig {
    /// Loads `path` (if given), applies `KMS_*` environment variables from `env`, then
    /// `overrides` (`section.field=value`), and validates. Relative paths in the file
    /// are relative to the file's directory.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[String],
    ) -> Result<Self, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
                    path: p.display().to_string(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Parse(format!("{}: {e}", p.display())))?
            }
            None => toml::Table::new(),
        };
        let known = toml::Table::try_from(NodeConfig::default()).expect("serializable");
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("KMS_"))
            .collect();
        env.sort();
        for (section, fields) in &known {
            let Some(fields) = fields.as_table() else {
                continue;
            };
            for field in fields.keys() {
                let var = format!("KMS_{}_{}", section, field).to_uppercase();
                if let Some((_, v)) = env.iter().find(|(k, _)| *k == var) {
                    set(&mut table, section, field, v);
                }
            }
        }
        for o in overrides {
            let (key, value) = o.split_once('=').ok_or_else(|| {
                ConfigError::Parse(format!("--set {o}: expected section.field=value"))
            })?;
            let (section, field) = key.split_once('.').ok_or_else(|| {
                ConfigError::Parse(format!("--set {o}: expected section.field=value"))
            })?;
            let exists = known
                .get(section)
                .and_then(|s| s.as_table())
                .is_some_and(|s| s.contains_key(field));
            if !exists {
                return Err(ConfigError::Parse(format!(
                    "--set {o}: unknown field `{key}`"
                )));
            }
            set(&mut table, section, field, value);
        }
        let mut cfg: NodeConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        if let Some(dir) = path.and_then(Path::parent) {
            for p in [
                &mut cfg.operator.key_file,
                &mut cfg.peering.file,
                &mut cfg.store.path,
                &mut cfg.tls.cert_file,
                &mut cfg.tls.key_file,
                &mut cfg.tls.ca_file,
                &mut cfg.attestation.collateral_dir,
                &mut cfg.attestation.pccs_ca_file,
                &mut cfg.attestation.ita_jwks_file,
                &mut cfg.attestation.policy_file,
                &mut cfg.secrets.apps_file,
                &mut cfg.audit.file,
            ] {
                if p.is_relative() && !p.as_os_str().is_empty() {
                    *p = dir.join(&*p);
                }
            }
            for p in &mut cfg.attestation.release_files {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Range checks, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| {
            Err(ConfigError::Invalid {
                field,
                reason: reason.to_string(),
            })
        };
        let s = &self.schedule;
        if s.interval_secs == 0 {
            return invalid("schedule.interval_secs", "must be at least 1");
        }
        if s.phase_ms < 100 {
            return invalid("schedule.phase_ms", "must be at least 100 ms");
        }
        if s.setup_ms < 100 {
            return invalid("schedule.setup_ms", "must be at least 100 ms");
        }
        let session_ms = s
            .phase_ms
            .saturating_mul(s.phases())
            .saturating_add(s.setup_ms);
        if session_ms >= s.interval_secs.saturating_mul(1000) {
            return invalid(
                "schedule.phase_ms",
                &format!(
                    "a setup of {} ms and {} phases of {} ms do not fit in an interval of {} s",
                    s.setup_ms,
                    s.phases(),
                    s.phase_ms,
                    s.interval_secs
                ),
            );
        }
        let st = &self.store;
        if st.retention_days == 0 {
            return invalid("store.retention_days", "must be at least 1");
        }
        if st.share_horizon_secs < s.interval_secs.saturating_mul(2) {
            return invalid(
                "store.share_horizon_secs",
                &format!(
                    "must be at least twice schedule.interval_secs ({} s): a failed reshare \
                     falls back to the version before it at the next boundary",
                    s.interval_secs.saturating_mul(2)
                ),
            );
        }
        if st.share_horizon_secs > st.retention_days.saturating_mul(24 * 3600) {
            return invalid(
                "store.share_horizon_secs",
                "must not exceed store.retention_days: versions are deleted after that anyway",
            );
        }
        let l = &self.limits;
        if l.max_body_bytes < 1024 || l.max_body_bytes > 64 * 1024 * 1024 {
            return invalid("limits.max_body_bytes", "must be between 1 KiB and 64 MiB");
        }
        if l.sign_rate_per_sec == 0 || l.sign_burst == 0 || l.sign_concurrency == 0 {
            return invalid(
                "limits.sign_rate_per_sec",
                "sign rate, burst and concurrency must be positive",
            );
        }
        if l.secrets_rate_per_sec == 0 || l.secrets_burst == 0 || l.secrets_concurrency == 0 {
            return invalid(
                "limits.secrets_rate_per_sec",
                "secrets rate, burst and concurrency must be positive",
            );
        }
        if l.max_connections == 0
            || l.max_connections_per_ip == 0
            || l.max_connections_per_ip > l.max_connections
        {
            return invalid(
                "limits.max_connections_per_ip",
                "connection limits must be positive, the per-address one at most max_connections",
            );
        }
        if l.max_handshakes == 0
            || l.max_handshakes_per_ip == 0
            || l.max_handshakes_per_ip > l.max_handshakes
        {
            return invalid(
                "limits.max_handshakes_per_ip",
                "handshake limits must be positive, the per-address one at most max_handshakes",
            );
        }
        let t = &self.transport;
        if t.max_attempts == 0 || t.max_attempts > 20 {
            return invalid("transport.max_attempts", "must be between 1 and 20");
        }
        if t.request_timeout_ms == 0 {
            return invalid("transport.request_timeout_ms", "must be positive");
        }
        if t.backoff_initial_ms == 0 || t.backoff_max_ms < t.backoff_initial_ms {
            return invalid(
                "transport.backoff_max_ms",
                "backoff_initial_ms must be positive and at most backoff_max_ms",
            );
        }
        let tls = &self.tls;
        if tls.cert_file.as_os_str().is_empty() != tls.key_file.as_os_str().is_empty() {
            return invalid(
                "tls.key_file",
                "tls.cert_file and tls.key_file are set together or not at all",
            );
        }
        if !tls.enabled() && !self.insecure.plain_http {
            return invalid(
                "tls.cert_file",
                "required: protocol messages carry key shares and travel only over TLS \
                 (set insecure.plain_http = true for a loopback development cluster)",
            );
        }
        let c = &self.chain;
        if self.peering.source == PeeringSource::Contract {
            if c.rpc_url.is_empty() {
                return invalid(
                    "chain.rpc_url",
                    "required when peering.source = \"contract\"",
                );
            }
            if c.deployment_file.as_os_str().is_empty() {
                return invalid(
                    "chain.deployment_file",
                    "required when peering.source = \"contract\"",
                );
            }
            if c.interval_blocks == 0 {
                return invalid("chain.interval_blocks", "must be at least 1");
            }
            if c.poll_ms < 50 {
                return invalid("chain.poll_ms", "must be at least 50 ms");
            }
            if c.signer == TxSignerKind::Remote && c.remote_signer_url.is_empty() {
                return invalid(
                    "chain.remote_signer_url",
                    "required when chain.signer = \"remote\"",
                );
            }
        }
        let a = &self.attestation;
        if a.max_age_secs == 0 || a.max_age_secs > 24 * 3600 {
            return invalid(
                "attestation.max_age_secs",
                "must be between 1 second and 1 day",
            );
        }
        if !a.pccs_url.is_empty() {
            if !a.collateral_dir.as_os_str().is_empty() {
                return invalid(
                    "attestation.pccs_url",
                    "set attestation.pccs_url or attestation.collateral_dir, not both",
                );
            }
            match a.pccs_url.parse::<url::Url>() {
                Ok(u) if matches!(u.scheme(), "https" | "http") => {}
                _ => return invalid("attestation.pccs_url", "must be an http(s) URL"),
            }
        } else if !a.pccs_ca_file.as_os_str().is_empty() {
            return invalid(
                "attestation.pccs_ca_file",
                "is only used with attestation.pccs_url",
            );
        }
        let (file, url) = (
            !a.ita_jwks_file.as_os_str().is_empty(),
            !a.ita_jwks_url.is_empty(),
        );
        if file && url {
            return invalid(
                "attestation.ita_jwks_url",
                "set attestation.ita_jwks_url or attestation.ita_jwks_file, not both",
            );
        }
        if (file || url) == a.ita_issuer.is_empty() {
            return invalid(
                "attestation.ita_issuer",
                "attestation.ita_issuer is set together with attestation.ita_jwks_file or attestation.ita_jwks_url",
            );
        }
        if url
            && !a
                .ita_jwks_url
                .parse::<url::Url>()
                .is_ok_and(|u| matches!(u.scheme(), "https" | "http"))
        {
            return invalid("attestation.ita_jwks_url", "must be an http(s) URL");
        }
        if a.mode == AttestationMode::InsecureDev && a.simulated_identity.is_empty() {
            return invalid("attestation.simulated_identity", "must not be empty");
        }
        if a.release_signers
            .iter()
            .any(|k| kms_measure::signed::parse_signer(k).is_none())
        {
            return invalid(
                "attestation.release_signers",
                "each signer is an Ed25519 public key, 64 hex digits",
            );
        }
        if !a.signed_release_dir.as_os_str().is_empty() {
            if a.release_signers.is_empty() {
                return invalid(
                    "attestation.release_signers",
                    "required when attestation.signed_release_dir is set",
                );
            }
            if a.release_signatures_required == 0
                || a.release_signatures_required > a.release_signers.len()
            {
                return invalid(
                    "attestation.release_signatures_required",
                    "must be between 1 and the number of release_signers",
                );
            }
        }
        if self.secrets.reload_secs == 0 || self.secrets.reload_secs > 3600 {
            return invalid("secrets.reload_secs", "must be between 1 and 3600");
        }
        if self.secrets.max_nonces == 0 {
            return invalid("secrets.max_nonces", "must be at least 1");
        }
        if self.insecure.unauthenticated_app_sign
            && self.attestation.mode != AttestationMode::InsecureDev
        {
            return invalid(
                "insecure.unauthenticated_app_sign",
                "only with attestation.mode = \"insecure-dev\" (a development cluster)",
            );
        }
        Ok(())
    }

    /// The insecure modes that are on, for the log and `/health`.
    pub fn insecure_modes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.insecure.plaintext_keys {
            v.push("plaintext-keys".to_string());
        }
        if self.insecure.plain_http {
            v.push("plain-http".to_string());
        }
        if self.insecure.unauthenticated_app_sign {
            v.push("unauthenticated-app-sign".to_string());
        }
        if self.attestation.mode == AttestationMode::InsecureDev {
            v.push("attestation-insecure-dev".to_string());
        }
        v
    }
}

/// Sets `section.field` from a string: a TOML literal if it parses as one (numbers,
/// booleans, quoted strings), the raw text as a string otherwise.
fn set(table: &mut toml::Table, section: &str, field: &str, value: &str) {
    let parsed = format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let s = table
        .entry(section.to_string())
        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
    if let Some(s) = s.as_table_mut() {
        s.insert(field.to_string(), parsed);
    }
}

/// A peer's base URL, checked to be `http` or `https` with a host.
pub fn parse_peer_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s).map_err(|e| format!("{s}: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("{s}: expected an http(s) URL with a host"));
    }
    Ok(u)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_example_config_loads_and_validates() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let c = NodeConfig::load(Some(&p), env(&[]), &[]).unwrap();
        assert_eq!(c.schedule.mode, VssMode::Feldman);
        assert!(c.insecure_modes().is_empty());
        assert_eq!(c.audit_file(), p.parent().unwrap().join("data/audit.jsonl"));
    }

    #[test]
    fn the_unauthenticated_app_sign_mode_needs_an_insecure_dev_node_and_is_announced() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        let on = ["insecure.unauthenticated_app_sign=true".to_string()];
        let e = NodeConfig::load(Some(&p), env(&[]), &on).unwrap_err();
        assert!(
            e.to_string().contains("insecure.unauthenticated_app_sign"),
            "{e}"
        );
        let dev = [
            on[0].clone(),
            "attestation.mode=\"insecure-dev\"".to_string(),
        ];
        let c = NodeConfig::load(Some(&p), env(&[]), &dev).unwrap();
        assert!(
            c.insecure_modes()
                .contains(&"unauthenticated-app-sign".to_string()),
            "{:?}",
            c.insecure_modes()
        );
    }

    #[test]
    fn env_and_flags_override_the_file_in_that_order() {
        let c = NodeConfig::load(
            None,
            env(&[
                ("KMS_SCHEDULE_INTERVAL_SECS", "60"),
                ("KMS_SERVER_LISTEN", "127.0.0.1:9000"),
                ("KMS_SCHEDULE_MODE", "pedersen"),
                ("KMS_INSECURE_PLAIN_HTTP", "true"),
                ("OTHER", "x"),
            ]),
            &["schedule.interval_secs=120".into()],
        )
        .unwrap();
        assert_eq!(c.schedule.interval_secs, 120);
        assert_eq!(c.server.listen.port(), 9000);
        assert_eq!(c.schedule.mode, VssMode::Pedersen);
    }

    #[test]
    fn the_enclave_image_profiles_are_valid_and_only_dev_is_insecure() {
        let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("../enclave-image/profiles");
        let dev =
            NodeConfig::load(Some(&image.join("dev/etc/kms/node.toml")), env(&[]), &[]).unwrap();
        assert_eq!(dev.attestation.mode, AttestationMode::InsecureDev);
        assert!(!dev.insecure_modes().is_empty());

        let prod_path = image.join("production/etc/kms/node.toml");
        let prod = NodeConfig::load(Some(&prod_path), env(&[]), &[]).unwrap();
        assert!(
            prod.insecure_modes().is_empty(),
            "{:?}",
            prod.insecure_modes()
        );
        assert_eq!(prod.attestation.mode, AttestationMode::Tdx);
        assert_eq!(prod.operator.unlock, UnlockMode::Remote);
        assert!(prod.attestation.admit_own_image);
        assert!(!prod.attestation.release_signers.is_empty());
        assert!(prod.tls.enabled());
        // Every file the node writes or reads as the operator's is on the data disk;
        // the policy is in the measured root.
        for path in [
            &prod.operator.key_file,
            &prod.store.path,
            &prod.peering.file,
            &prod.tls.cert_file,
            &prod.tls.key_file,
            &prod.tls.ca_file,
            &prod.attestation.collateral_dir,
            &prod.attestation.signed_release_dir,
            &prod.secrets.apps_file,
        ] {
            assert!(path.starts_with("/var/lib/kms"), "{}", path.display());
        }
        assert_eq!(
            prod.attestation.policy_file,
            Path::new("/etc/kms/policy.json")
        );
        let policy = std::fs::read(image.join("production/etc/kms/policy.json")).unwrap();
        kms_attestation::Policy::from_json(&policy).expect("the image's policy parses");
    }

    #[test]
    fn collateral_comes_from_files_or_a_pccs() {
        let base = [("KMS_INSECURE_PLAIN_HTTP", "true")];
        let with = |extra: &[(&str, &str)]| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.extend_from_slice(extra);
            NodeConfig::load(None, env(&v), &[])
        };
        let c = with(&[("KMS_ATTESTATION_PCCS_URL", "https://pccs.internal:8081")]).unwrap();
        assert_eq!(c.attestation.pccs_url, "https://pccs.internal:8081");
        for (extra, field) in [
            (
                vec![
                    ("KMS_ATTESTATION_PCCS_URL", "https://pccs.internal:8081"),
                    ("KMS_ATTESTATION_COLLATERAL_DIR", "/c"),
                ],
                "attestation.pccs_url",
            ),
            (
                vec![("KMS_ATTESTATION_PCCS_URL", "ftp://pccs")],
                "attestation.pccs_url",
            ),
            (
                vec![("KMS_ATTESTATION_PCCS_CA_FILE", "/ca.crt")],
                "attestation.pccs_ca_file",
            ),
            (
                vec![("KMS_ATTESTATION_ITA_JWKS_URL", "https://ita.example/certs")],
                "attestation.ita_issuer",
            ),
            (
                vec![
                    ("KMS_ATTESTATION_ITA_JWKS_URL", "https://ita.example/certs"),
                    ("KMS_ATTESTATION_ITA_JWKS_FILE", "/jwks.json"),
                    ("KMS_ATTESTATION_ITA_ISSUER", "x"),
                ],
                "attestation.ita_jwks_url",
            ),
        ] {
            let e = with(&extra).unwrap_err().to_string();
            assert!(e.contains(field), "{e}");
        }
    }

    #[test]
    fn errors_name_the_field() {
        let e = NodeConfig::load(None, env(&[("KMS_SCHEDULE_PHASE_MS", "50")]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule.phase_ms"), "{e}");
        let e = NodeConfig::load(None, env(&[]), &["schedule.interval_secs=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule.phase_ms"), "{e}");
        let e = NodeConfig::load(None, env(&[]), &["schedule.nope=1".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("schedule.nope"), "{e}");
        let e = NodeConfig::load(None, env(&[("KMS_SERVER_LISTEN", "nowhere")]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        for horizon in ["1199", &(31 * 24 * 3600).to_string()] {
            let e = NodeConfig::load(None, env(&[("KMS_STORE_SHARE_HORIZON_SECS", horizon)]), &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains("store.share_horizon_secs"), "{e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[store]\nretention = 3\n").unwrap();
        let e = NodeConfig::load(Some(&p), env(&[]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention"), "{e}");
        // No TLS and no explicit plain-HTTP opt-in; half a TLS configuration.
        let e = NodeConfig::load(None, env(&[]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.cert_file"), "{e}");
        let e = NodeConfig::load(None, env(&[("KMS_TLS_CERT_FILE", "/x.crt")]), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.key_file"), "{e}");
        let c = NodeConfig::load(
            None,
            env(&[
                ("KMS_TLS_CERT_FILE", "/x.crt"),
                ("KMS_TLS_KEY_FILE", "/x.key"),
            ]),
            &[],
        )
        .unwrap();
        assert!(c.tls.enabled() && c.tls.ca().is_none());
    }
}

//! Errors of the client: one enum for what the caller asked ([`ClientError`]), one for
//! what a single node did wrong ([`NodeError`]). Neither carries secret material: no
//! share, partial signature, app key or plaintext ever enters a message.

use std::fmt;

use kms_crypto::{CryptoError, OperatorAddress};
use kms_protocol::api::MAX_APP_ID_BYTES;
use thiserror::Error;
use url::Url;

/// Why a request to the operators failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The node list is empty.
    #[error("no node URLs given")]
    NoNodes,
    /// A node URL the client cannot use.
    #[error("node URL {url}: {reason}")]
    InvalidNodeUrl {
        /// The URL as given.
        url: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A zero request timeout.
    #[error("the request timeout must be positive")]
    InvalidTimeout,
    /// The HTTP client could not be built (TLS configuration).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),
    /// The app ID is empty or longer than the nodes accept.
    #[error("app ID must be 1 to {MAX_APP_ID_BYTES} bytes, got {len}")]
    InvalidAppId {
        /// Its length in bytes.
        len: usize,
    },
    /// No key version is reported by its threshold of its own operators, so the client
    /// cannot tell the real master key from one that fewer than `t` liars made up.
    #[error(
        "no key version is held by its threshold of operators: {answered} of {nodes} nodes answered, best agreement {agreeing} of {needed} needed{}",
        list(failures)
    )]
    NoAgreement {
        /// Nodes queried.
        nodes: usize,
        /// Nodes that gave a well-formed answer.
        answered: usize,
        /// Size of the largest group of operators agreeing on one version.
        agreeing: usize,
        /// The threshold of that version (0 when nobody answered).
        needed: usize,
        /// Every node that did not answer, and why.
        failures: Vec<NodeFailure>,
    },
    /// Fewer than `t` valid partial signatures for the agreed version.
    #[error(
        "only {valid} valid partial signatures for version {version}, {needed} needed{}",
        list(failures)
    )]
    NotEnoughPartials {
        /// The agreed key version.
        version: u64,
        /// Distinct operators whose partial signature verified.
        valid: usize,
        /// The threshold.
        needed: usize,
        /// Every node whose answer was not used, and why.
        failures: Vec<NodeFailure>,
    },
    /// The combined key does not verify against the master public key. Cannot happen
    /// with verified partials; checked rather than trusted.
    #[error("the combined app key does not verify against the master public key")]
    KeyMismatch,
    /// Encryption or decryption failed: malformed ciphertext, or (one indistinguishable
    /// case) a wrong app ID, a wrong key or tampering.
    #[error("{0}")]
    Crypto(#[from] CryptoError),
    /// `/secrets`: fewer than `t` nodes returned the same registered environment, so the
    /// client cannot tell the app's environment from one a minority made up.
    #[error(
        "no environment is returned by {needed} nodes: best agreement {agreeing}{}",
        list(failures)
    )]
    EnvDisagreement {
        /// Size of the largest group of nodes returning the same environment.
        agreeing: usize,
        /// The threshold.
        needed: usize,
        /// Every node whose answer was not used, and why.
        failures: Vec<NodeFailure>,
    },
    /// `/secrets`: the one-time RSA key could not be generated or encoded.
    #[error("one-time RSA key: {0}")]
    Rsa(String),
    /// The owner key file cannot be read.
    #[error("owner key: {0}")]
    OwnerKey(String),
    /// The TD could not produce evidence.
    #[error("attestation: {0}")]
    Attestation(String),
}

fn list(failures: &[NodeFailure]) -> String {
    if failures.is_empty() {
        return String::new();
    }
    let items: Vec<String> = failures.iter().map(ToString::to_string).collect();
    format!(" ({})", items.join("; "))
}

/// One node that did not contribute, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeFailure {
    /// The node's base URL.
    pub node: Url,
    /// What went wrong.
    pub error: NodeError,
}

impl fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.node, self.error)
    }
}

/// What one node did wrong: transport failures, error answers, and answers that the
/// client refuses because they would let a lying node influence the result.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NodeError {
    /// No answer within the request timeout.
    #[error("timed out")]
    Timeout,
    /// Connection refused, reset, TLS failure, …
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// The body exceeds [`crate::MAX_RESPONSE_BYTES`]; refused unread so that a node
    /// cannot exhaust the client's memory.
    #[error("response larger than {limit} bytes refused")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// A non-2xx answer, with the node's error code and message when it sent the
    /// standard `{"error": {"code", "message"}}` body.
    #[error("HTTP {status}{}", detail(code, message))]
    Status {
        /// The HTTP status code.
        status: u16,
        /// The node's error code (`not_found`, `rate_limited`, …).
        code: Option<String>,
        /// The node's reason.
        message: Option<String>,
    },
    /// A 2xx answer that is not the expected JSON (bad points are refused here).
    #[error("malformed answer: {0}")]
    Malformed(String),
    /// The node signed with another key version than the agreed one.
    #[error("answered with version {got}, expected {expected}")]
    WrongVersion {
        /// The version the node used.
        got: u64,
        /// The agreed version.
        expected: u64,
    },
    /// The node does not list the version asked for among those it holds.
    #[error("does not hold version {0}")]
    VersionNotHeld(u64),
    /// The answering operator does not hold a share of the agreed version.
    #[error("operator {0} is not in the agreed version's operator set")]
    NotAnOperator(OperatorAddress),
    /// Another node already gave a valid answer for the same operator.
    #[error("duplicate answer for operator {0}")]
    DuplicateOperator(OperatorAddress),
    /// The partial signature does not verify against the operator's public share.
    #[error("invalid partial signature from operator {0}")]
    InvalidPartial(OperatorAddress),
}

fn detail(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(" {c}: {m}"),
        (Some(c), None) => format!(" {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

//! HTTP to one node: bounded in time and size, error answers decoded.

use std::time::Duration;

use kms_protocol::api::{ErrorResponse, PubkeyResponse};
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::{ClientError, NodeError};

/// Largest response body read from a node (1 MiB). A `/pubkey` answer with the
/// maximum of 1,024 commitments is about 200 KiB.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An HTTP client for the node API.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    http: reqwest::Client,
    timeout: Duration,
}

impl Transport {
    pub(crate) fn new(timeout: Duration, ca_pem: Option<&[u8]>) -> Result<Self, ClientError> {
        // reqwest is built without a default crypto provider; a second install (another
        // client, or the embedding application) fails harmlessly.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = ca_pem {
            let roots = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::HttpClient(format!("CA certificates: {e}")))?;
            if roots.is_empty() {
                return Err(ClientError::HttpClient(
                    "CA certificates: no certificate in the PEM bundle".into(),
                ));
            }
            builder = builder.tls_certs_only(roots);
        }
        let http = builder
            .timeout(timeout)
            // A node answers itself; following a redirect would let it send the client
            // to a URL the application never configured.
            .redirect(reqwest::redirect::Policy::none())
            // Nodes are addressed directly; an ambient HTTP(S)_PROXY is not consulted.
            .no_proxy()
            .build()
            .map_err(|e| ClientError::HttpClient(error_chain(&e.without_url())))?;
        Ok(Self { http, timeout })
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET {node}/pubkey`.
    pub(crate) async fn pubkey(&self, node: &Url) -> Result<PubkeyResponse, NodeError> {
        self.call(self.http.get(endpoint(node, "pubkey"))).await
    }

    /// `GET {node}/versions`: every version the node holds.
    pub(crate) async fn versions(&self, node: &Url) -> Result<Vec<PubkeyResponse>, NodeError> {
        self.call(self.http.get(endpoint(node, "versions"))).await
    }

    /// `POST {node}/{path}` with a JSON body.
    pub(crate) async fn post_json<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        node: &Url,
        path: &str,
        body: &B,
    ) -> Result<T, NodeError> {
        self.call(self.http.post(endpoint(node, path)).json(body))
            .await
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, NodeError> {
        // reqwest's timeout already covers connecting through reading the body; the outer
        // one makes the bound independent of how the client was configured.
        match tokio::time::timeout(self.timeout, exchange(req)).await {
            Ok(r) => r,
            Err(_) => Err(NodeError::Timeout),
        }
    }
}

async fn exchange<T: DeserializeOwned>(req: reqwest::RequestBuilder) -> Result<T, NodeError> {
    let mut resp = req.send().await.map_err(transport_error)?;
    let status = resp.status();
    let too_large = NodeError::TooLarge {
        limit: MAX_RESPONSE_BYTES,
    };
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_RESPONSE_BYTES as u64)
    {
        return Err(too_large);
    }
    // The declared length may be absent (chunked) or false: count what arrives.
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        let (code, message) = match serde_json::from_slice::<ErrorResponse>(&body) {
            Ok(e) => (Some(e.error.code), Some(e.error.message)),
            Err(_) => (None, None),
        };
        return Err(NodeError::Status {
            status: status.as_u16(),
            code,
            message,
        });
    }
    serde_json::from_slice(&body).map_err(|e| NodeError::Malformed(redact_values(&e.to_string())))
}

/// `{node}/{path}`, keeping any path prefix of the node URL (`https://h/kms/` and
/// `https://h/kms` both give `https://h/kms/pubkey`).
pub(crate) fn endpoint(node: &Url, path: &str) -> Url {
    let mut u = node.clone();
    if !u.path().ends_with('/') {
        let p = format!("{}/", u.path());
        u.set_path(&p);
    }
    u.set_query(None);
    u.set_fragment(None);
    // A relative path without a colon always joins onto an http(s) base.
    u.join(path).unwrap_or(u)
}

fn transport_error(e: reqwest::Error) -> NodeError {
    if e.is_timeout() {
        NodeError::Timeout
    } else {
        // The caller names the node; the chain says what failed (refused, TLS, …).
        NodeError::Unreachable(error_chain(&e.without_url()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

/// A JSON error may quote the offending value; quoted strings longer than a field
/// name are elided, so that a partial signature never lands in a log line.
fn redact_values(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(start) = rest.find('"') {
        let Some(len) = rest[start + 1..].find('"') else {
            break;
        };
        let quoted = &rest[start + 1..start + 1 + len];
        out.push_str(&rest[..start]);
        if quoted.len() > 32 {
            out.push_str("\"…\"");
        } else {
            out.push('"');
            out.push_str(quoted);
            out.push('"');
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_node_path_prefix() {
        let e = |n: &str, p: &str| endpoint(&n.parse().unwrap(), p).to_string();
        assert_eq!(e("http://h:1", "pubkey"), "http://h:1/pubkey");
        assert_eq!(e("http://h:1/", "app/sign"), "http://h:1/app/sign");
        assert_eq!(e("https://h/kms", "pubkey"), "https://h/kms/pubkey");
        assert_eq!(
            e("https://h/kms/?x=1#f", "app/sign"),
            "https://h/kms/app/sign"
        );
    }

    #[test]
    fn long_quoted_values_are_elided() {
        let long = "0x".to_string() + &"ab".repeat(48);
        let msg = format!("invalid type: string \"{long}\", expected u64 at line 1");
        assert_eq!(
            redact_values(&msg),
            "invalid type: string \"…\", expected u64 at line 1"
        );
        assert_eq!(
            redact_values("missing field `version` \"short\""),
            "missing field `version` \"short\""
        );
        assert_eq!(redact_values("odd \" quote"), "odd \" quote");
    }
}

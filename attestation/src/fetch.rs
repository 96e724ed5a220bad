//! Bounded HTTP GETs for collateral and key sets (PCCS, Trust Authority JWKS): a
//! timeout per request, a cap on the answer size, no redirects, and a way to run them
//! from synchronous code anywhere (an async runtime's worker included).

use std::future::Future;
use std::time::Duration;

use url::Url;

/// An HTTP client for one kind of document.
#[derive(Clone, Debug)]
pub(crate) struct Getter {
    http: reqwest::Client,
    timeout: Duration,
}

/// One answer.
pub(crate) struct Got {
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Getter {
    /// `roots`: the certificates to trust for `https` (`None`: the platform's).
    pub fn new(
        roots: Option<Vec<reqwest::Certificate>>,
        timeout: Duration,
    ) -> Result<Self, String> {
        // reqwest is built without a default TLS provider; the node installs ring's,
        // and so does this (a no-op when one is installed already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none());
        if let Some(roots) = roots {
            builder = builder.tls_certs_only(roots);
        }
        let http = builder.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Self { http, timeout })
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GETs `url`; a non-2xx status, a transport error or an answer over `max_bytes`
    /// is an error naming the URL's path.
    pub async fn get(&self, url: Url, max_bytes: usize) -> Result<Got, String> {
        let what = url.path().to_string();
        let short = |e: reqwest::Error| {
            let mut s = e.to_string();
            if let Some(u) = e.url() {
                s = s.replace(u.as_str(), u.path());
            }
            format!("{what}: {s}")
        };
        let mut r = self.http.get(url.clone()).send().await.map_err(short)?;
        if !r.status().is_success() {
            return Err(format!("{what}: HTTP {}", r.status()));
        }
        let headers = r.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = r.chunk().await.map_err(short)? {
            if body.len() + chunk.len() > max_bytes {
                return Err(format!("{what}: answer larger than {max_bytes} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Got { headers, body })
    }
}

/// Runs `work` to completion on a thread of its own with a single-threaded runtime,
/// bounded by `limit`: callable from synchronous code anywhere.
pub(crate) fn block_on_own_thread<T, F>(limit: Duration, work: F) -> Result<T, String>
where
    T: Send,
    F: Future<Output = Result<T, String>> + Send,
{
    std::thread::scope(|s| {
        s.spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("runtime: {e}"))?;
            rt.block_on(async {
                tokio::time::timeout(limit, work)
                    .await
                    .map_err(|_| "no answer in time".to_string())?
            })
        })
        .join()
        .unwrap_or_else(|_| Err("fetch panicked".into()))
    })
}

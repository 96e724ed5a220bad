//! Bounded HTTP reads. [`read_capped`] reads an answer of at most a given size (the
//! node reading its peers uses it too); the crate's own GETs for collateral and key
//! sets (PCCS, Trust Authority JWKS) add a timeout per request, no redirects, and a
//! way to run them from synchronous code anywhere (an async runtime's worker included).

use std::future::Future;
use std::time::Duration;

use url::Url;

/// Why [`read_capped`] returned no body.
#[derive(Debug)]
pub enum BodyError {
    /// The declared or the received length is over the cap.
    TooLarge,
    /// The connection failed while reading.
    Transport(reqwest::Error),
}

/// Reads `resp`'s body, at most `max` bytes: refused unread when its declared length
/// is over the cap, and counted as it arrives (the declaration may be absent or false).
pub async fn read_capped(resp: &mut reqwest::Response, max: usize) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|l| l > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > max {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

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
        let short = |e: reqwest::Error| format!("{what}: {}", e.without_url());
        let mut r = self.http.get(url).send().await.map_err(short)?;
        if !r.status().is_success() {
            return Err(format!("{what}: HTTP {}", r.status()));
        }
        let headers = r.headers().clone();
        let body = read_capped(&mut r, max_bytes).await.map_err(|e| match e {
            BodyError::TooLarge => format!("{what}: answer larger than {max_bytes} bytes"),
            BodyError::Transport(e) => short(e),
        })?;
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

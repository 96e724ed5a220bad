//! Intel Trust Authority: verification of attestation tokens (JWT).
//!
//! Trust Authority verifies the quote itself and signs its verdict; what is
//! checked here is that verdict: the signature against a configured JWKS (the
//! JWKS is the trust anchor, so it must come from configuration, never from the
//! token's `jku`/`x5u` headers, which are ignored), the algorithm (only
//! asymmetric ones Trust Authority uses: `RS256`, `PS384`, `ES256` — never
//! `none` or HMAC, which would let anyone holding the public key forge tokens),
//! `exp`/`nbf`/`iat` against the caller's time, the issuer, and the TDX claims.
//!
//! Claims read (Trust Authority names; the v2 token nests them in a `tdx`
//! object, older tokens have them at the top level): `tdx_mrtd`,
//! `tdx_rtmr0`..`tdx_rtmr3`, `tdx_report_data` (hex), `attester_tcb_status`,
//! `attester_advisory_ids` (optional), `attester_type` (optional, must be TDX),
//! `tdx_is_debuggable` (optional, must be false).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::verified::{MEASUREMENT_LEN, REPORT_DATA_LEN, TcbStatus, VerifiedTd, decode_hex_array};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Default `iss` of Trust Authority tokens.
pub const DEFAULT_ISSUER: &str = "Intel Trust Authority";

/// Signature algorithms a token may use. Deliberately without `none` and HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PSS with SHA-384 (Trust Authority's default).
    PS384,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl SigningAlgorithm {
    fn from_header(alg: &str) -> Option<Self> {
        match alg {
            "RS256" => Some(SigningAlgorithm::RS256),
            "PS384" => Some(SigningAlgorithm::PS384),
            "ES256" => Some(SigningAlgorithm::ES256),
            _ => None,
        }
    }

    fn jwt(self) -> Algorithm {
        match self {
            SigningAlgorithm::RS256 => Algorithm::RS256,
            SigningAlgorithm::PS384 => Algorithm::PS384,
            SigningAlgorithm::ES256 => Algorithm::ES256,
        }
    }

    fn key_kind(self) -> KeyKind {
        match self {
            SigningAlgorithm::RS256 | SigningAlgorithm::PS384 => KeyKind::Rsa,
            SigningAlgorithm::ES256 => KeyKind::EcP256,
        }
    }
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone)]
pub struct ItaConfig {
    /// Required `iss`.
    pub issuer: String,
    /// Accepted algorithms.
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, seconds.
    pub leeway_secs: u64,
    /// If set, tokens issued (`iat`) longer ago than this are refused, and `iat`
    /// is required.
    pub max_age_secs: Option<u64>,
}

impl Default for ItaConfig {
    fn default() -> Self {
        ItaConfig {
            issuer: DEFAULT_ISSUER.into(),
            algorithms: vec![
                SigningAlgorithm::RS256,
                SigningAlgorithm::PS384,
                SigningAlgorithm::ES256,
            ],
            leeway_secs: 30,
            max_age_secs: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
}

struct TokenKey {
    decoding: DecodingKey,
    kind: KeyKind,
    alg: Option<KeyAlgorithm>,
}

/// Token signing keys by key ID. Only RSA and P-256 keys are kept: symmetric
/// (`oct`) and other keys in a JWKS are dropped when it is loaded.
pub struct Jwks {
    keys: HashMap<String, TokenKey>,
}

impl Jwks {
    /// Parses a JWKS document (`{"keys": [...]}`); keys without `kid` or of an
    /// unsupported type are skipped; at least one usable key is required.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let doc: Value =
            serde_json::from_slice(bytes).map_err(|e| Error::config("jwks", e.to_string()))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::config("jwks", "no \"keys\" array"))?;
        let mut keys = HashMap::new();
        for entry in entries {
            let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
                continue;
            };
            let Some(kid) = jwk.common.key_id.clone() else {
                continue;
            };
            let kind = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyKind::Rsa,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    KeyKind::EcP256
                }
                _ => continue,
            };
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            // A key published for encryption is never a token signing key.
            if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
                continue;
            }
            let alg = jwk.common.key_algorithm;
            keys.insert(
                kid,
                TokenKey {
                    decoding,
                    kind,
                    alg,
                },
            );
        }
        if keys.is_empty() {
            return Err(Error::config(
                "jwks",
                "no usable RSA or P-256 key with a kid",
            ));
        }
        Ok(Jwks { keys })
    }

    /// Reads a JWKS file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::config(path.display().to_string(), e.to_string()))?;
        Self::from_json(&bytes)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable (never true for a successfully loaded JWKS).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Jwks").field("kids", &kids).finish()
    }
}

/// Supplies the JWKS tokens are checked against.
pub trait JwksSource: Send + Sync {
    /// The JWKS to use at `now`.
    fn jwks(&self, now: u64) -> Result<Arc<Jwks>, Error>;
}

impl JwksSource for Arc<Jwks> {
    fn jwks(&self, _now: u64) -> Result<Arc<Jwks>, Error> {
        Ok(self.clone())
    }
}

/// Fetches a fresh JWKS (from Trust Authority's certs endpoint, a file...).
pub trait JwksFetcher: Send + Sync {
    /// The current JWKS.
    fn fetch(&self) -> Result<Jwks, Error>;
}

/// The largest JWKS answer read.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Fetches the JWKS from a URL (Trust Authority's certificate endpoint); put it behind
/// [`CachingJwks`] so that it is asked once per TTL, not per token.
#[derive(Clone, Debug)]
pub struct JwksUrl {
    url: url::Url,
    http: crate::fetch::Getter,
}

impl JwksUrl {
    /// The JWKS at `url` (`http(s)`); `roots` for an `https` endpoint with its own CA
    /// (`None`: the platform's roots); each request bounded by `timeout`.
    pub fn new(
        url: url::Url,
        roots: Option<Vec<reqwest::Certificate>>,
        timeout: std::time::Duration,
    ) -> Result<Self, Error> {
        if !matches!(url.scheme(), "https" | "http") {
            return Err(Error::config("jwks url", "must be http(s)"));
        }
        let http =
            crate::fetch::Getter::new(roots, timeout).map_err(|e| Error::config("jwks url", e))?;
        Ok(Self { url, http })
    }
}

impl JwksFetcher for JwksUrl {
    /// Blocks for at most twice the request timeout; callable from anywhere.
    fn fetch(&self) -> Result<Jwks, Error> {
        let got = crate::fetch::block_on_own_thread(self.http.timeout() * 2, async {
            self.http.get(self.url.clone(), MAX_JWKS_BYTES).await
        })
        .map_err(|e| Error::config("jwks url", e))?;
        Jwks::from_json(&got.body)
    }
}

/// Keeps a fetched JWKS for `ttl_secs`, then fetches again. If a refresh fails
/// the previous JWKS stays in use until it is `2 × ttl` old.
pub struct CachingJwks<F> {
    fetcher: F,
    ttl_secs: u64,
    cached: Mutex<Option<(u64, Arc<Jwks>)>>,
}

impl<F: JwksFetcher> CachingJwks<F> {
    /// A cache in front of `fetcher`.
    pub fn new(fetcher: F, ttl_secs: u64) -> Self {
        CachingJwks {
            fetcher,
            ttl_secs,
            cached: Mutex::new(None),
        }
    }
}

impl<F: JwksFetcher> JwksSource for CachingJwks<F> {
    fn jwks(&self, now: u64) -> Result<Arc<Jwks>, Error> {
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((fetched_at, jwks)) = cached.as_ref()
            && now.saturating_sub(*fetched_at) <= self.ttl_secs
        {
            return Ok(jwks.clone());
        }
        match self.fetcher.fetch() {
            Ok(fresh) => {
                let fresh = Arc::new(fresh);
                *cached = Some((now, fresh.clone()));
                Ok(fresh)
            }
            Err(e) => match cached.as_ref() {
                Some((fetched_at, jwks))
                    if now.saturating_sub(*fetched_at) <= self.ttl_secs.saturating_mul(2) =>
                {
                    Ok(jwks.clone())
                }
                _ => Err(e),
            },
        }
    }
}

/// Verifies Trust Authority tokens with keys from `J`.
pub struct ItaVerifier<J> {
    jwks: J,
    config: ItaConfig,
}

impl<J: JwksSource> ItaVerifier<J> {
    /// A verifier with keys from `jwks` and the rules in `config`.
    pub fn new(jwks: J, config: ItaConfig) -> Self {
        ItaVerifier { jwks, config }
    }

    /// Verifies `token` at `now` (unix seconds) and maps its TDX claims.
    pub fn verify(&self, token: &str, now: u64) -> Result<VerifiedTd, Error> {
        let token = token.trim();
        if token.len() > MAX_TOKEN_LEN {
            return Err(Error::malformed("token", "longer than 64 KiB"));
        }
        let header = parse_header(token)?;
        let alg_name = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::malformed("token", "header has no alg"))?;
        let alg = SigningAlgorithm::from_header(alg_name)
            .filter(|a| self.config.algorithms.contains(a))
            .ok_or_else(|| Error::UnsupportedAlgorithm {
                alg: echo(alg_name),
            })?;
        if header.contains_key("crit") {
            return Err(Error::malformed(
                "token",
                "critical header parameters are not supported",
            ));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::malformed("token", "header has no kid"))?;
        let jwks = self.jwks.jwks(now)?;
        let key = jwks
            .keys
            .get(kid)
            .ok_or_else(|| Error::UnknownKey { kid: echo(kid) })?;
        // A key is only ever used with the algorithm family (and, if the JWKS
        // says, the exact algorithm) it was published for.
        if key.kind != alg.key_kind() || key.alg.is_some_and(|a| a != KeyAlgorithm::from(alg.jwt()))
        {
            return Err(Error::UnsupportedAlgorithm {
                alg: format!("{alg_name} with key {}", echo(kid)),
            });
        }
        let mut validation = Validation::new(alg.jwt());
        // Time and issuer are checked below, against the caller's time (the
        // library would read the clock). Trust Authority tokens have no audience.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = jsonwebtoken::decode::<Value>(token, &key.decoding, &validation)
            .map_err(map_jwt_error)?
            .claims;
        let claims = claims
            .as_object()
            .ok_or_else(|| Error::malformed("token", "claims are not a JSON object"))?;
        self.check_registered_claims(claims, now)?;
        tdx_claims(claims)
    }

    fn check_registered_claims(&self, claims: &Map<String, Value>, now: u64) -> Result<(), Error> {
        let leeway = self.config.leeway_secs;
        let exp = time_claim(claims, "exp")?.ok_or(Error::MissingClaim { claim: "exp" })?;
        if now >= exp.saturating_add(leeway) {
            return Err(Error::Stale {
                what: "token".into(),
                not_after: exp,
                now,
            });
        }
        if let Some(nbf) = time_claim(claims, "nbf")?
            && now.saturating_add(leeway) < nbf
        {
            return Err(Error::NotYetValid {
                what: "token".into(),
                not_before: nbf,
                now,
            });
        }
        let iat = time_claim(claims, "iat")?;
        if let Some(iat) = iat
            && now.saturating_add(leeway) < iat
        {
            return Err(Error::NotYetValid {
                what: "token (issued in the future)".into(),
                not_before: iat,
                now,
            });
        }
        if let Some(max_age) = self.config.max_age_secs {
            let iat = iat.ok_or(Error::MissingClaim { claim: "iat" })?;
            if now > iat.saturating_add(max_age) {
                return Err(Error::Stale {
                    what: "token (older than the maximum age)".into(),
                    not_after: iat.saturating_add(max_age),
                    now,
                });
            }
        }
        let issuer = claims
            .get("iss")
            .ok_or(Error::MissingClaim { claim: "iss" })?
            .as_str()
            .ok_or_else(|| Error::malformed("iss", "not a string"))?;
        if issuer != self.config.issuer {
            return Err(Error::WrongIssuer {
                issuer: echo(issuer),
            });
        }
        Ok(())
    }
}

/// A token-supplied string for an error message, cut to a sane length.
fn echo(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// Decodes the JOSE header without trusting anything in it yet.
fn parse_header(token: &str) -> Result<Map<String, Value>, Error> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::malformed(
            "token",
            "not a compact JWS (three dot-separated parts)",
        ));
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| Error::malformed("token", "header is not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(Error::malformed("token", "header is not a JSON object")),
    }
}

fn map_jwt_error(e: jsonwebtoken::errors::Error) -> Error {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => Error::BadSignature { what: "token" },
        K::InvalidAlgorithm | K::InvalidAlgorithmName | K::UnsupportedAlgorithm => {
            Error::UnsupportedAlgorithm {
                alg: "algorithm does not fit the key".into(),
            }
        }
        K::InvalidEcdsaKey | K::InvalidRsaKey(_) | K::InvalidKeyFormat => {
            Error::config("jwks", "key cannot verify this token")
        }
        other => Error::malformed("token", format!("{other:?}")),
    }
}

/// A NumericDate claim, if present.
fn time_claim(claims: &Map<String, Value>, claim: &'static str) -> Result<Option<u64>, Error> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| value.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| Error::malformed(claim, "not a non-negative number")),
    }
}

/// Maps the TDX claims of a verified token into a [`VerifiedTd`].
fn tdx_claims(claims: &Map<String, Value>) -> Result<VerifiedTd, Error> {
    let tdx = match claims.get("tdx") {
        Some(Value::Object(nested)) => nested,
        Some(_) => return Err(Error::malformed("tdx", "not an object")),
        None => claims,
    };
    let attester_type = tdx
        .get("attester_type")
        .or_else(|| claims.get("attester_type"));
    if attester_type.is_some_and(|t| !t.as_str().is_some_and(|k| k.eq_ignore_ascii_case("TDX"))) {
        return Err(Error::malformed("attester_type", "not a TDX attestation"));
    }
    if tdx.get("tdx_is_debuggable").and_then(Value::as_bool) == Some(true) {
        return Err(Error::TdAttributes {
            detail: "the TD is debuggable (tdx_is_debuggable)".into(),
        });
    }
    let mrtd = hex_claim::<MEASUREMENT_LEN>(tdx, "tdx_mrtd")?;
    let rtmr = [
        hex_claim::<MEASUREMENT_LEN>(tdx, "tdx_rtmr0")?,
        hex_claim::<MEASUREMENT_LEN>(tdx, "tdx_rtmr1")?,
        hex_claim::<MEASUREMENT_LEN>(tdx, "tdx_rtmr2")?,
        hex_claim::<MEASUREMENT_LEN>(tdx, "tdx_rtmr3")?,
    ];
    let report_data = hex_claim::<REPORT_DATA_LEN>(tdx, "tdx_report_data")?;
    let status_text = tdx
        .get("attester_tcb_status")
        .ok_or(Error::MissingClaim {
            claim: "attester_tcb_status",
        })?
        .as_str()
        .ok_or_else(|| Error::malformed("attester_tcb_status", "not a string"))?;
    let tcb_status: TcbStatus = status_text.parse().map_err(|_| {
        Error::malformed(
            "attester_tcb_status",
            format!("unknown status {status_text:?}"),
        )
    })?;
    match tcb_status {
        TcbStatus::Revoked => {
            return Err(Error::Revoked {
                detail: "Trust Authority reports the platform TCB as revoked".into(),
            });
        }
        TcbStatus::Simulated => {
            return Err(Error::malformed(
                "attester_tcb_status",
                "not an Intel status",
            ));
        }
        _ => {}
    }
    let advisories = match tdx.get("attester_advisory_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) => ids
            .iter()
            .map(|id| id.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::malformed("attester_advisory_ids", "not a list of strings"))?,
        Some(_) => return Err(Error::malformed("attester_advisory_ids", "not a list")),
    };
    Ok(VerifiedTd {
        mrtd,
        rtmr,
        report_data,
        tcb_status,
        advisories,
    })
}

fn hex_claim<const N: usize>(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<[u8; N], Error> {
    let text = claims
        .get(claim)
        .ok_or(Error::MissingClaim { claim })?
        .as_str()
        .ok_or_else(|| Error::malformed(claim, "not a string"))?;
    decode_hex_array::<N>(text).map_err(|e| Error::malformed(claim, e))
}

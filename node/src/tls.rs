//! TLS between operators and towards applications: the server side (a rustls
//! `ServerConfig` from PEM files), the client side (the roots peers' certificates
//! must chain to, and the pin to the one certificate a peer's attestation binds),
//! and a throw-away certificate authority for local clusters.
//!
//! Protocol messages carry key shares in the clear inside their signed payload, so
//! their confidentiality rests on TLS: a node refuses to talk plain HTTP to peers
//! unless `insecure.plain_http` is set.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Why TLS material could not be loaded. Names the file, never its content.
#[derive(Debug, Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate/key pair.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// The verifier of peers' certificates could not be built from the roots.
    #[error("peer certificate verifier: {0}")]
    Verifier(#[from] rustls::client::VerifierBuilderError),
}

fn file_err(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Reads every certificate of a PEM file (a chain, or a bundle of roots).
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(path, e))?;
    if certs.is_empty() {
        return Err(file_err(path, "no CERTIFICATE block in this PEM file"));
    }
    Ok(certs)
}

/// The purpose a TLS private key is sealed for (`kms-node seal --purpose tls-key`).
pub const TLS_KEY_PURPOSE: &str = "tls-key";

/// The server configuration for `cert_file` (PEM chain, leaf first) and `key_file`
/// (PEM PKCS#8, SEC1 or PKCS#1 private key). Offers HTTP/1.1 only, as the server
/// speaks nothing else.
///
/// The key file is sealed under the operator's passphrase ([`crate::keys::seal_secret`]
/// with [`TLS_KEY_PURPOSE`]); a plain PEM key is accepted only with `allow_plaintext`
/// (`insecure.plaintext_keys`): whoever reads the key can terminate the node's TLS,
/// and protocol messages carry key shares.
pub fn server_config(
    cert_file: &Path,
    key_file: &Path,
    passphrase: Option<&str>,
    allow_plaintext: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    crate::install_crypto_provider();
    let chain = read_certificates(cert_file)?;
    let bytes =
        zeroize::Zeroizing::new(std::fs::read(key_file).map_err(|e| file_err(key_file, e))?);
    let pem = if crate::keys::is_sealed_secret(&bytes) {
        crate::keys::unseal_secret(
            &bytes,
            TLS_KEY_PURPOSE,
            passphrase,
            &key_file.display().to_string(),
        )
        .map_err(|e| file_err(key_file, e))?
    } else if allow_plaintext {
        bytes
    } else {
        return Err(file_err(
            key_file,
            "the TLS private key is not sealed: seal it with `kms-node seal --purpose tls-key` \
             (or set insecure.plaintext_keys = true for a development cluster)",
        ));
    };
    let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| file_err(key_file, e))?;
    let mut cfg = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The roots of `ca_file` for an HTTP client.
pub fn client_roots(ca_file: &Path) -> Result<Vec<reqwest::Certificate>, TlsError> {
    read_certificates(ca_file)?
        .iter()
        .map(|c| reqwest::Certificate::from_der(c.as_ref()).map_err(|e| file_err(ca_file, e)))
        .collect()
}

/// The SHA-256 of a DER certificate: what a node's quote binds
/// ([`kms_attestation::node_report_data`]) and what a peer is pinned to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CertificateDigest(pub [u8; 32]);

impl CertificateDigest {
    /// The digest of `der`.
    pub fn of(der: &[u8]) -> Self {
        Self(Sha256::digest(der).into())
    }
}

impl std::fmt::Display for CertificateDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The crypto provider of peer connections: the process default (the node installs
/// ring), as reqwest picks it for the connections it configures itself.
fn client_provider() -> Arc<CryptoProvider> {
    crate::install_crypto_provider();
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

/// The verification every peer connection gets: chains to the roots of `ca_file`
/// (WebPKI), or, without one, to the platform's roots — what the HTTP client does
/// with `tls_certs_only` and without it.
pub fn peer_verifier(ca_file: Option<&Path>) -> Result<Arc<dyn ServerCertVerifier>, TlsError> {
    let provider = client_provider();
    Ok(match ca_file {
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(ca)? {
                roots.add(cert).map_err(|e| file_err(ca, e))?;
            }
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build()?
        }
        None => Arc::new(rustls_platform_verifier::Verifier::new(provider)?),
    })
}

/// Called with the digest of the certificate a pinned peer presented instead of its
/// pin, once per refused handshake.
pub type OnPinRefusal = Arc<dyn Fn(CertificateDigest) + Send + Sync>;

/// A server certificate verifier for one attested peer: the normal verification
/// first (chain, name, validity), then the end-entity certificate must be the one
/// the peer's quote binds. Prevents whoever obtains another CA-valid certificate for
/// the peer's name from terminating connections that carry its shares: a TD's
/// certificate key never leaves it, any other certificate fails the handshake
/// before a byte of the request is sent.
pub struct PinnedServerVerifier {
    inner: Arc<dyn ServerCertVerifier>,
    pin: CertificateDigest,
    on_refusal: OnPinRefusal,
}

impl PinnedServerVerifier {
    /// Accepts what `inner` accepts, and then only the certificate whose digest is
    /// `pin`; any other one is refused and reported to `on_refusal`.
    pub fn new(
        inner: Arc<dyn ServerCertVerifier>,
        pin: CertificateDigest,
        on_refusal: OnPinRefusal,
    ) -> Self {
        Self {
            inner,
            pin,
            on_refusal,
        }
    }
}

impl std::fmt::Debug for PinnedServerVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PinnedServerVerifier")
            .field("inner", &self.inner)
            .field("pin", &self.pin)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for PinnedServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verified = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        let presented = CertificateDigest::of(end_entity.as_ref());
        if presented != self.pin {
            (self.on_refusal)(presented);
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ));
        }
        Ok(verified)
    }

    // The handshake signature proves possession of the key of the certificate
    // checked above: the pinned one.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }

    fn requires_raw_public_keys(&self) -> bool {
        self.inner.requires_raw_public_keys()
    }

    fn root_hint_subjects(&self) -> Option<&[DistinguishedName]> {
        self.inner.root_hint_subjects()
    }
}

/// The client configuration for connections to one attested peer: `verifier` (a
/// [`PinnedServerVerifier`]), HTTP/1.1, and no session resumption, so that every
/// connection runs a full handshake and so a certificate check.
pub fn pinned_client_config(verifier: Arc<PinnedServerVerifier>) -> Result<ClientConfig, TlsError> {
    let mut cfg = ClientConfig::builder_with_provider(client_provider())
        .with_protocol_versions(rustls::ALL_VERSIONS)?
        // Not a weaker check: the pinned verifier runs the normal one first.
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.resumption = Resumption::disabled();
    Ok(cfg)
}

/// A certificate authority that lives only as long as a local cluster: it signs one
/// certificate per node for `127.0.0.1`, `::1` and `localhost`. Never used with real
/// keys; its private key is never written to disk.
pub struct DevCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    cert_pem: String,
}

/// A node certificate issued by [`DevCa`], as PEM.
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: zeroize::Zeroizing<String>,
}

impl DevCa {
    /// A fresh CA with an ECDSA P-256 key.
    pub fn generate() -> Result<Self, TlsError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(
            rcgen::DnType::CommonName,
            "EigenKMS local cluster CA (development only)",
        );
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        })
    }

    /// The CA certificate (what clients trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A server certificate for loopback names, with a new key.
    pub fn issue(&self, common_name: &str) -> Result<IssuedCert, TlsError> {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        ));
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv6Addr::LOCALHOST.into(),
        ));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(IssuedCert {
            cert_pem: cert.pem(),
            key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        })
    }

    /// Issues a certificate and writes it as `dir/{name}.crt` and `dir/{name}.key`
    /// (the key file readable by its owner only). Returns the two paths.
    pub fn write_node_cert(
        &self,
        dir: &Path,
        name: &str,
    ) -> Result<(std::path::PathBuf, std::path::PathBuf), TlsError> {
        let issued = self.issue(name)?;
        std::fs::create_dir_all(dir).map_err(|e| file_err(dir, e))?;
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &issued.cert_pem).map_err(|e| file_err(&cert, e))?;
        write_private(&key, issued.key_pem.as_bytes()).map_err(|e| file_err(&key, e))?;
        Ok((cert, key))
    }
}

/// Writes `bytes` to a new file readable by its owner only.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_load_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate().unwrap();
        let (cert, key) = ca.write_node_cert(dir.path(), "node0").unwrap();
        server_config(&cert, &key, None, true).expect("loads");
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        assert_eq!(client_roots(&ca_file).unwrap().len(), 1);

        // A key file is not a certificate; an empty file has none; a missing file is named.
        let e = server_config(&key, &key, None, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("node0.key"), "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        assert!(
            client_roots(&empty)
                .unwrap_err()
                .to_string()
                .contains("empty.pem")
        );
        let e = server_config(&cert, &dir.path().join("missing.key"), None, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.key"), "{e}");
        // A key that does not belong to the certificate.
        let (_, other_key) = ca.write_node_cert(dir.path(), "node1").unwrap();
        assert!(server_config(&cert, &other_key, None, true).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A certificate that another CA-valid one cannot stand in for, and that passes
    /// only the normal checks too.
    #[test]
    fn a_pinned_verifier_accepts_the_pinned_certificate_only_after_the_chain_check() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate().unwrap();
        let ca_file = dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.cert_pem()).unwrap();
        let der = |issued: IssuedCert| {
            CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).expect("PEM")
        };
        let pinned = der(ca.issue("node").unwrap());
        let same_name_same_ca = der(ca.issue("node").unwrap());
        let other_ca = der(DevCa::generate().unwrap().issue("node").unwrap());
        let refused = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = refused.clone();
        let v = PinnedServerVerifier::new(
            peer_verifier(Some(&ca_file)).unwrap(),
            CertificateDigest::of(pinned.as_ref()),
            Arc::new(move |d| log.lock().unwrap().push(d)),
        );
        let ip = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let now = UnixTime::now();
        assert!(v.verify_server_cert(&pinned, &[], &ip, &[], now).is_ok());
        let e = v
            .verify_server_cert(&same_name_same_ca, &[], &ip, &[], now)
            .unwrap_err();
        assert_eq!(
            e,
            rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
        );
        // The normal checks still run first: the pin does not replace them, and what
        // they refuse is not a pin refusal.
        assert!(v.verify_server_cert(&other_ca, &[], &ip, &[], now).is_err());
        let elsewhere = ServerName::try_from("example.com").unwrap();
        assert!(
            v.verify_server_cert(&pinned, &[], &elsewhere, &[], now)
                .is_err()
        );
        assert_eq!(
            *refused.lock().unwrap(),
            vec![CertificateDigest::of(same_name_same_ca.as_ref())]
        );
    }

    #[test]
    fn a_tls_key_must_be_sealed_unless_plaintext_keys_are_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::generate().unwrap();
        let (cert, key) = ca.write_node_cert(dir.path(), "node0").unwrap();
        let e = server_config(&cert, &key, None, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not sealed"), "{e}");

        let pem = std::fs::read(&key).unwrap();
        let sealed = dir.path().join("node0.key.sealed");
        let text =
            crate::keys::seal_secret(&pem, TLS_KEY_PURPOSE, "correct horse battery").unwrap();
        std::fs::write(&sealed, text).unwrap();
        server_config(&cert, &sealed, Some("correct horse battery"), false).expect("unsealed");
        let e = server_config(&cert, &sealed, Some("wrong passphrase"), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("node0.key.sealed") && e.contains("wrong passphrase or modified"),
            "{e}"
        );
        assert!(server_config(&cert, &sealed, None, true).is_err());
        // Sealed for another use: refused.
        let other = dir.path().join("other.sealed");
        std::fs::write(
            &other,
            crate::keys::seal_secret(&pem, "something-else", "correct horse battery").unwrap(),
        )
        .unwrap();
        let e = server_config(&cert, &other, Some("correct horse battery"), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("sealed for"), "{e}");
    }
}

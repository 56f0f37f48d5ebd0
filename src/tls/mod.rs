//! TLS for the gateway's gRPC listener ([`server`]) and the exporter's
//! channel to it ([`client`]): rustls with the `ring` provider, TLS 1.2 and
//! 1.3, ALPN `h2`, certificates and keys read from PEM files.
//!
//! Both sides keep their rustls config behind an `ArcSwap` so that it can
//! be **reloaded** (SIGHUP) while serving: a reload reads every file
//! again, builds a complete new config and swaps it in; new connections
//! (handshakes) use the new config, open connections keep the session they
//! negotiated and are not disturbed. A reload that fails (missing file, bad
//! PEM, a key that does not match its certificate) changes nothing and
//! returns the error, which names the setting and the file.
//!
//! ```text
//!  PEM files ── load ──► rustls ServerConfig / ClientConfig ──► ArcSwap ──► each new handshake
//!      ▲                                                        ▲
//!      └──────────────── reload (SIGHUP) ── builds a new one ───┘  (old one kept on error)
//! ```
//!
//! The seams are small on purpose: [`server::incoming`] turns a stream of
//! accepted connections into a stream of TLS connections (the listener and
//! its limits stay elsewhere), and [`client::TlsConnector`] is a tonic
//! connector for a lazily connecting channel.

pub mod client;
pub mod server;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Largest PEM file read (a CA bundle of every public root is ~250 KB).
pub const MAX_PEM_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The ALPN protocol both sides offer: gRPC is HTTP/2 only.
pub const ALPN_H2: &[u8] = b"h2";

/// A PEM file and the setting that named it (for error messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PemFile {
    /// The setting, as its errors should name it (`tls_cert`,
    /// `--export-ca-file`, …).
    pub setting: &'static str,
    /// The file.
    pub path: PathBuf,
}

impl PemFile {
    /// `path`, named by `setting`.
    pub fn new(setting: &'static str, path: impl Into<PathBuf>) -> PemFile {
        PemFile {
            setting,
            path: path.into(),
        }
    }
}

/// Why TLS material could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read. Nothing starts (a reload keeps the old
    /// files); the operator fixes the path or its permissions.
    #[error("{setting}: reading {path}: {source}")]
    Read {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file larger than [`MAX_PEM_FILE_BYTES`]: probably the wrong file.
    #[error("{setting}: {path} is larger than {limit} bytes")]
    TooLarge {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// A file that is not valid PEM. The operator converts it (DER to
    /// PEM) or points at the right file.
    #[error("{setting}: {path} is not valid PEM: {source}")]
    BadPem {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// The parser's complaint.
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    /// No `CERTIFICATE` block in a certificate or CA file. The operator
    /// points at the certificate, not the key.
    #[error("{setting}: {path} holds no PEM CERTIFICATE block")]
    NoCertificate {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// No private key block in a key file. The operator points at the
    /// key.
    #[error(
        "{setting}: {path} holds no PEM private key (PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY)"
    )]
    NoKey {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate rustls refuses as a trust anchor. The operator uses
    /// a CA certificate.
    #[error("{setting}: a certificate in {path} cannot be trusted as a CA: {source}")]
    BadCa {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' complaint.
        #[source]
        source: rustls::Error,
    },
    /// The certificate and key do not go together (or the key type is not
    /// supported). The operator pairs them.
    #[error(transparent)]
    CertKey(Box<CertKeyError>),
    /// The client-certificate verifier could not be built from the CA
    /// file. The operator checks the CA file.
    #[error("{setting}: {path}: {source}")]
    ClientVerifier {
        /// The setting.
        setting: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' complaint.
        #[source]
        source: rustls::server::VerifierBuilderError,
    },
    /// rustls refused the protocol versions (never with the ring
    /// provider): a bug to report.
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// A certificate and key that rustls refuses together.
#[derive(Debug, thiserror::Error)]
#[error("{} {} and {} {}: {source}", cert.setting, cert.path.display(), key.setting, key.path.display())]
pub struct CertKeyError {
    /// The certificate chain.
    pub cert: PemFile,
    /// The key.
    pub key: PemFile,
    /// rustls' complaint.
    #[source]
    pub source: rustls::Error,
}

impl TlsError {
    /// The file the error is about (the certificate for a pair).
    pub fn path(&self) -> Option<&Path> {
        match self {
            TlsError::Read { path, .. }
            | TlsError::TooLarge { path, .. }
            | TlsError::BadPem { path, .. }
            | TlsError::NoCertificate { path, .. }
            | TlsError::NoKey { path, .. }
            | TlsError::BadCa { path, .. }
            | TlsError::ClientVerifier { path, .. } => Some(path),
            TlsError::CertKey(e) => Some(&e.cert.path),
            TlsError::Config(_) => None,
        }
    }
}

/// The crypto provider of every config built here: ring (not aws-lc, whose
/// C build the crate keeps out of its tree; see Cargo.toml), chosen
/// explicitly rather than through rustls' process-wide default.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads a PEM file whole, bounded by [`MAX_PEM_FILE_BYTES`].
fn read_pem(file: &PemFile) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        setting: file.setting,
        path: file.path.clone(),
        source,
    };
    let f = std::fs::File::open(&file.path).map_err(read_error)?;
    let mut bytes = Vec::new();
    f.take(MAX_PEM_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_PEM_FILE_BYTES {
        return Err(TlsError::TooLarge {
            setting: file.setting,
            path: file.path.clone(),
            limit: MAX_PEM_FILE_BYTES,
        });
    }
    Ok(bytes)
}

/// Every `CERTIFICATE` block of a PEM file (at least one), in order: a
/// chain (leaf first) or a CA bundle.
pub fn load_certs(file: &PemFile) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(file)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::BadPem {
            setting: file.setting,
            path: file.path.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            setting: file.setting,
            path: file.path.clone(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(file: &PemFile) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(file)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|source| match source {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            setting: file.setting,
            path: file.path.clone(),
        },
        source => TlsError::BadPem {
            setting: file.setting,
            path: file.path.clone(),
            source,
        },
    })
}

/// A root store holding every certificate of a CA file.
pub fn load_roots(file: &PemFile) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_certs(file)? {
        roots.add(cert).map_err(|source| TlsError::BadCa {
            setting: file.setting,
            path: file.path.clone(),
            source,
        })?;
    }
    Ok(roots)
}

/// A certificate chain and its key, checked to go together.
fn load_pair(
    cert: &PemFile,
    key: &PemFile,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    Ok((load_certs(cert)?, load_key(key)?))
}

fn cert_key_error(cert: &PemFile, key: &PemFile) -> impl FnOnce(rustls::Error) -> TlsError {
    let (cert, key) = (cert.clone(), key.clone());
    move |source| TlsError::CertKey(Box::new(CertKeyError { cert, key, source }))
}

#[cfg(test)]
pub(crate) mod testing {
    //! Certificates generated at test time (rcgen).

    use std::path::{Path, PathBuf};

    /// A CA that signs leaf certificates.
    pub struct TestCa {
        pub cert: rcgen::Certificate,
        pub issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    }

    impl TestCa {
        pub fn new(name: &str) -> TestCa {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            params.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
            ];
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.self_signed(&key).unwrap();
            TestCa {
                cert,
                issuer: rcgen::Issuer::new(params, key),
            }
        }

        /// A leaf for `names` (server and client auth), PEM (cert, key).
        pub fn leaf(&self, names: &[&str], serial: u64) -> (String, String) {
            let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
            let mut params = rcgen::CertificateParams::new(names).unwrap();
            params.serial_number = Some(rcgen::SerialNumber::from(serial));
            params.extended_key_usages = vec![
                rcgen::ExtendedKeyUsagePurpose::ServerAuth,
                rcgen::ExtendedKeyUsagePurpose::ClientAuth,
            ];
            let key = rcgen::KeyPair::generate().unwrap();
            let cert = params.signed_by(&key, &self.issuer).unwrap();
            (cert.pem(), key.serialize_pem())
        }

        pub fn pem(&self) -> String {
            self.cert.pem()
        }
    }

    /// Writes `text` to `dir/name` and returns the path.
    pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{TestCa, write};
    use super::*;

    #[test]
    fn certificates_and_keys_load_from_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new("test ca");
        let (cert, key) = ca.leaf(&["localhost"], 1);
        let cert = PemFile::new("tls_cert", write(dir.path(), "cert.pem", &cert));
        let key = PemFile::new("tls_key", write(dir.path(), "key.pem", &key));
        assert_eq!(load_certs(&cert).unwrap().len(), 1);
        load_key(&key).unwrap();
        let bundle = format!("{}{}", ca.pem(), TestCa::new("other").pem());
        let bundle = PemFile::new("ca", write(dir.path(), "bundle.pem", &bundle));
        assert_eq!(load_roots(&bundle).unwrap().len(), 2);
    }

    #[test]
    fn bad_pem_files_are_refused_naming_the_setting_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = write(dir.path(), "garbage.pem", "not a certificate\n");
        let e = load_certs(&PemFile::new("tls_cert", &garbage)).unwrap_err();
        assert!(matches!(e, TlsError::NoCertificate { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("tls_cert") && text.contains("garbage.pem"),
            "{text}"
        );
        let e = load_key(&PemFile::new("tls_key", &garbage)).unwrap_err();
        assert!(matches!(e, TlsError::NoKey { .. }), "{e}");
        assert!(e.to_string().contains("tls_key"), "{e}");
        let torn = write(
            dir.path(),
            "torn.pem",
            "-----BEGIN CERTIFICATE-----\nMIIB\n",
        );
        let e = load_certs(&PemFile::new("tls_cert", &torn)).unwrap_err();
        assert!(matches!(e, TlsError::BadPem { .. }), "{e}");
        let e = load_certs(&PemFile::new("tls_cert", dir.path().join("missing.pem"))).unwrap_err();
        assert!(matches!(e, TlsError::Read { .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
    }
}

//! Certificates generated at test time (rcgen; never checked-in keys), a
//! tonic client over TLS, and a raw handshake that returns the server's
//! certificate.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName};
use telespool::proto::telemetrygateway::v1::telemetery_gateway_service_client::TelemeteryGatewayServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

use crate::gateway::GatewayClient;

/// A certificate authority and the files of what it signed, in a
/// temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
    ca_cert: rcgen::Certificate,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A certificate and its key as PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Leaf {
    /// The leaf certificate's DER (what a handshake shows).
    pub fn der(&self) -> Vec<u8> {
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.cert.as_bytes())
            .unwrap()
            .to_vec()
    }
}

impl Pki {
    pub fn new(name: &str) -> Pki {
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
        let ca_cert = params.self_signed(&key).unwrap();
        Pki {
            dir: tempfile::tempdir().unwrap(),
            ca_cert,
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    pub fn ca_pem(&self) -> String {
        self.ca_cert.pem()
    }

    /// A leaf for `names` (DNS names or IPs), serial `serial`, good for
    /// server and client authentication.
    pub fn leaf(&self, names: &[&str], serial: u64) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from(serial));
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server leaf for localhost and 127.0.0.1.
    pub fn server(&self, serial: u64) -> Leaf {
        self.leaf(&["localhost", "127.0.0.1"], serial)
    }

    /// Writes `text` to `name` in the directory.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes the CA certificate; returns its path.
    pub fn write_ca(&self, name: &str) -> PathBuf {
        self.write(name, &self.ca_pem())
    }

    /// Writes a leaf as `{name}.pem` and `{name}.key`; returns the paths.
    pub fn write_leaf(&self, name: &str, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            self.write(&format!("{name}.pem"), &leaf.cert),
            self.write(&format!("{name}.key"), &leaf.key),
        )
    }
}

/// A tonic client to `https://localhost:PORT` trusting `ca_pem`, with a
/// client certificate when given. Connects lazily.
pub fn tls_client(addr: SocketAddr, ca_pem: &str, identity: Option<&Leaf>) -> GatewayClient {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost");
    if let Some(leaf) = identity {
        tls = tls.identity(Identity::from_pem(&leaf.cert, &leaf.key));
    }
    let channel = Channel::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    TelemeteryGatewayServiceClient::new(channel)
}

/// Handshakes with `addr` trusting `ca_pem` and returns the leaf
/// certificate the server showed (DER).
pub async fn server_certificate(addr: SocketAddr, ca_pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

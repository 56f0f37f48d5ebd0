//! Client side: the exporter's TLS to the gateway.
//!
//! [`ClientTls`] holds a rustls `ClientConfig` behind an `ArcSwap`:
//!
//! - **Trust**: with a CA file (`--export-ca-file`), exactly the
//!   certificates in it: a private CA *replaces* the public web PKI, as
//!   `curl --cacert` does, so that no public CA can stand in for a private
//!   gateway (to trust both, append the public bundle to the file).
//!   Without one, the webpki roots (Mozilla's list, compiled in).
//! - **Identity** (mutual TLS): a client certificate chain and key
//!   (`--export-client-cert`, `--export-client-key`), presented when the
//!   gateway asks for one.
//!
//! [`TlsConnector`] is the tonic connector that uses it: TCP (no Nagle),
//! then the handshake with the config current at that moment, so a
//! [`ClientTls::reload`] applies to the next connection the channel makes
//! (the exporter's channel reconnects by itself) and leaves the open one
//! alone.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tonic::transport::Uri;

use super::{ALPN_H2, PemFile, TlsError, cert_key_error, load_pair, load_roots, provider};

/// The files a client config is built from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// CA bundle trusted instead of the webpki roots.
    pub ca: Option<PemFile>,
    /// Client certificate chain and key, for mutual TLS.
    pub identity: Option<(PemFile, PemFile)>,
}

impl ClientTlsFiles {
    /// Builds a rustls client config from the files.
    pub fn build(&self) -> Result<ClientConfig, TlsError> {
        let roots = match &self.ca {
            Some(ca) => load_roots(ca)?,
            None => rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            },
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (certs, private) = load_pair(cert, key)?;
                builder
                    .with_client_auth_cert(certs, private)
                    .map_err(cert_key_error(cert, key))?
            }
        };
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(config)
    }
}

/// A reloadable client config (see the module docs).
#[derive(Debug)]
pub struct ClientTls {
    files: ClientTlsFiles,
    current: ArcSwap<ClientConfig>,
}

impl ClientTls {
    /// Loads the files; fails if any is missing or unusable.
    pub fn load(files: ClientTlsFiles) -> Result<ClientTls, TlsError> {
        let config = files.build()?;
        Ok(ClientTls {
            files,
            current: ArcSwap::from_pointee(config),
        })
    }

    /// Reads the files again and swaps the new config in; on error the
    /// current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = self.files.build()?;
        self.current.store(Arc::new(config));
        Ok(())
    }

    /// The files.
    pub fn files(&self) -> &ClientTlsFiles {
        &self.files
    }

    /// The config the next handshake uses.
    pub fn config(&self) -> Arc<ClientConfig> {
        self.current.load_full()
    }
}

/// A TLS connection to the gateway, as hyper wants it.
pub type ClientStream = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;

/// Connects over TCP and TLS to the host and port of the URI it is called
/// with (see the module docs). The URI's scheme is not looked at: tonic is
/// given an `http://` endpoint (it would refuse an `https://` one with a
/// connector of its own) and an `https://` origin for the requests.
#[derive(Clone, Debug)]
pub struct TlsConnector {
    tls: Arc<ClientTls>,
}

impl TlsConnector {
    /// A connector handshaking with `tls`'s current config.
    pub fn new(tls: Arc<ClientTls>) -> TlsConnector {
        TlsConnector { tls }
    }
}

/// The host of a URI without IPv6 brackets, and its port (443 when none).
fn host_port(uri: &Uri) -> Option<(String, u16)> {
    let host = uri.host()?.trim_start_matches('[').trim_end_matches(']');
    Some((host.to_owned(), uri.port_u16().unwrap_or(443)))
}

/// Connects and handshakes.
async fn connect(config: Arc<ClientConfig>, uri: Uri) -> std::io::Result<ClientStream> {
    use std::io::{Error, ErrorKind};
    let (host, port) = host_port(&uri)
        .ok_or_else(|| Error::new(ErrorKind::InvalidInput, format!("no host in {uri}")))?;
    let server_name = ServerName::try_from(host.clone()).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{host:?} is not a valid TLS server name: {e}"),
        )
    })?;
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY not set on the export connection");
    }
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(server_name, tcp)
        .await
        .map_err(|e| Error::new(e.kind(), format!("TLS handshake with {host}:{port}: {e}")))?;
    Ok(TokioIo::new(stream))
}

impl tower::Service<Uri> for TlsConnector {
    type Response = ClientStream;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<ClientStream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(connect(self.tls.config(), uri))
    }
}

#[cfg(test)]
mod tests {
    use super::super::server::{ServerTls, ServerTlsFiles};
    use super::super::testing::{TestCa, write};
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Pki {
        dir: tempfile::TempDir,
        ca: TestCa,
    }

    impl Pki {
        fn new() -> Pki {
            Pki {
                dir: tempfile::tempdir().unwrap(),
                ca: TestCa::new("test ca"),
            }
        }

        fn file(&self, setting: &'static str, name: &str, text: &str) -> PemFile {
            PemFile::new(setting, write(self.dir.path(), name, text))
        }

        fn server(&self, serial: u64, client_ca: bool) -> ServerTlsFiles {
            let (cert, key) = self.ca.leaf(&["localhost", "127.0.0.1"], serial);
            ServerTlsFiles {
                cert: self.file("tls_cert", "server.pem", &cert),
                key: self.file("tls_key", "server.key", &key),
                client_ca: client_ca.then(|| self.file("tls_client_ca", "ca.pem", &self.ca.pem())),
            }
        }

        fn client(&self, with_ca: bool, with_identity: bool) -> ClientTlsFiles {
            ClientTlsFiles {
                ca: with_ca.then(|| self.file("--export-ca-file", "ca.pem", &self.ca.pem())),
                identity: with_identity.then(|| {
                    let (cert, key) = self.ca.leaf(&["sidecar"], 99);
                    (
                        self.file("--export-client-cert", "client.pem", &cert),
                        self.file("--export-client-key", "client.key", &key),
                    )
                }),
            }
        }
    }

    /// Serves one echo over TLS on a loopback port; returns the address
    /// and the server's TLS state.
    async fn echo_server(tls: Arc<ServerTls>) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let mut incoming = Box::pin(crate::tls::server::incoming(accepted, tls));
        tokio::spawn(async move {
            while let Some(Ok(mut stream)) = futures::StreamExt::next(&mut incoming).await {
                tokio::spawn(async move {
                    let mut byte = [0u8; 1];
                    if stream.read_exact(&mut byte).await.is_ok() {
                        let _ = stream.write_all(&byte).await;
                        let _ = stream.flush().await;
                    }
                });
            }
        });
        addr
    }

    async fn round_trip(
        client: &ClientTls,
        addr: std::net::SocketAddr,
    ) -> std::io::Result<Vec<u8>> {
        let uri: Uri = format!("http://localhost:{}", addr.port()).parse().unwrap();
        let mut stream = connect(client.config(), uri).await?.into_inner();
        stream.write_all(b"x").await?;
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        let (_, session) = stream.get_ref();
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
        Ok(session.peer_certificates().unwrap()[0].to_vec())
    }

    #[tokio::test]
    async fn a_client_trusting_the_ca_file_connects_and_one_without_it_is_refused() {
        let pki = Pki::new();
        let server = Arc::new(ServerTls::load(pki.server(1, false)).unwrap());
        let addr = echo_server(server).await;
        let trusting = ClientTls::load(pki.client(true, false)).unwrap();
        round_trip(&trusting, addr).await.unwrap();
        let public_only = ClientTls::load(pki.client(false, false)).unwrap();
        let e = round_trip(&public_only, addr).await.unwrap_err();
        assert!(e.to_string().contains("certificate"), "{e}");
    }

    #[tokio::test]
    async fn with_a_client_ca_only_clients_with_a_certificate_get_through() {
        let pki = Pki::new();
        let server = Arc::new(ServerTls::load(pki.server(1, true)).unwrap());
        let addr = echo_server(server).await;
        let anonymous = ClientTls::load(pki.client(true, false)).unwrap();
        assert!(round_trip(&anonymous, addr).await.is_err());
        let identified = ClientTls::load(pki.client(true, true)).unwrap();
        round_trip(&identified, addr).await.unwrap();
    }

    #[tokio::test]
    async fn a_server_reload_shows_the_new_certificate_to_new_connections_only() {
        let pki = Pki::new();
        let files = pki.server(1, false);
        let server = Arc::new(ServerTls::load(files.clone()).unwrap());
        let addr = echo_server(server.clone()).await;
        let client = ClientTls::load(pki.client(true, false)).unwrap();
        let first = round_trip(&client, addr).await.unwrap();
        let uri: Uri = format!("http://localhost:{}", addr.port()).parse().unwrap();
        let mut open = connect(client.config(), uri).await.unwrap().into_inner();
        pki.server(2, false);
        server.reload().unwrap();
        let second = round_trip(&client, addr).await.unwrap();
        assert_ne!(first, second, "a new connection sees the new certificate");
        open.write_all(b"y").await.unwrap();
        let mut byte = [0u8; 1];
        open.read_exact(&mut byte).await.unwrap();
        assert_eq!(&byte, b"y", "the connection opened before still works");
        assert_eq!(
            open.get_ref().1.peer_certificates().unwrap()[0].to_vec(),
            first
        );
    }

    #[test]
    fn client_settings_are_named_in_errors() {
        let pki = Pki::new();
        let mut files = pki.client(true, true);
        files.ca = Some(pki.file("--export-ca-file", "bad-ca.pem", "junk"));
        let e = ClientTls::load(files).unwrap_err();
        assert!(e.to_string().contains("--export-ca-file"), "{e}");
        let mut files = pki.client(true, true);
        if let Some((_, key)) = &mut files.identity {
            *key = pki.file("--export-client-key", "bad.key", "junk");
        }
        let e = ClientTls::load(files).unwrap_err();
        assert!(e.to_string().contains("--export-client-key"), "{e}");
    }
}

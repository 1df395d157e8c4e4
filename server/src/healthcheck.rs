//! `swamp-server healthcheck`: whether the node of a directory is serving, for
//! container health checks. An image built `FROM scratch` has no shell and no curl, so
//! the probe is the server binary itself.
//!
//! It does what a client does, on the node's own port over loopback: a TLS handshake
//! that must present this node's own certificate (compared byte for byte, the
//! handshake signature checked against its key), then `GET /storage/v1/version` with
//! the swissnum, which must answer 200. So it proves the accept loop, TLS, the HTTP
//! stack and the storage answer, not just that a port is open. Every step has a
//! timeout, and the answer read is bounded.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::start::{StartError, describe_node};

/// The most of the answer read: its status line and headers fit well within this.
const MAX_HEAD: usize = 16 * 1024;

/// Why the node is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// The node directory cannot be read (not created yet, or bad configuration).
    #[error(transparent)]
    Node(#[from] StartError),
    /// The TLS client cannot be set up.
    #[error("cannot set up TLS")]
    Tls(#[source] rustls::Error),
    /// Nothing answered on the node's port, or the exchange broke off or timed out.
    #[error("no answer from the node at {addr}")]
    Unreachable {
        /// Where it was asked.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The node answered something other than 200.
    #[error("the node at {addr} answered {status_line:?} to GET /storage/v1/version")]
    Status {
        /// Where it was asked.
        addr: SocketAddr,
        /// Its status line (no secret in it).
        status_line: String,
    },
}

/// Asks the node of `node_dir` (settings from `tahoe.cfg` and `env`, as `run` reads
/// them) for its version on its own port, within `timeout` per step. Returns the
/// address asked.
///
/// # Errors
/// [`HealthError`] saying which step failed.
pub fn check(
    node_dir: &Path,
    env: impl Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<SocketAddr, HealthError> {
    let (config, identity) = describe_node(node_dir, env)?;
    let addr = loopback_for(config.listen);
    let unreachable = |source| HealthError::Unreachable { addr, source };
    let tcp = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    tcp.set_read_timeout(Some(timeout)).map_err(unreachable)?;
    tcp.set_write_timeout(Some(timeout)).map_err(unreachable)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = OwnCertificate {
        certificate: identity.certificate.clone(),
        algorithms: provider.signature_verification_algorithms,
    };
    // TLS 1.3 only: its handshake signature can be checked against the bare key, which
    // also works for the version-1 certificates Foolscap makes (webpki refuses those).
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(HealthError::Tls)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // An IP address as the name: no SNI is sent, as Tahoe's client sends none.
    let conn = rustls::ClientConnection::new(Arc::new(config), ServerName::from(addr.ip()))
        .map_err(HealthError::Tls)?;
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let request = format!(
        "GET /storage/v1/version HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {}\r\nAccept: application/cbor\r\nConnection: close\r\n\r\n",
        identity.swissnum.authorization_header()
    );
    tls.write_all(request.as_bytes()).map_err(unreachable)?;
    tls.flush().map_err(unreachable)?;
    let status_line = read_status_line(&mut tls).map_err(unreachable)?;
    if status_line.split(' ').nth(1) == Some("200") {
        Ok(addr)
    } else {
        Err(HealthError::Status { addr, status_line })
    }
}

/// Where to reach a node listening on `listen` from inside its own host: loopback
/// when it listens on every interface.
fn loopback_for(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// The answer's first line, read from at most [`MAX_HEAD`] bytes.
fn read_status_line(stream: &mut impl Read) -> std::io::Result<String> {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.contains(&b'\n') {
        if head.len() >= MAX_HEAD {
            return Err(std::io::Error::other("no status line in the answer"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    Ok(String::from_utf8_lossy(line).trim_end().to_string())
}

/// Accepts exactly the node's own certificate, and a handshake signed by its key.
#[derive(Debug)]
struct OwnCertificate {
    certificate: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if intermediates.is_empty() && end_entity.as_ref() == self.certificate.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the configuration offers TLS 1.3 only.
        Err(rustls::Error::General("TLS 1.2 is not offered".into()))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        let spki = SubjectPublicKeyInfoDer::from(parsed.tbs_certificate.subject_pki.raw);
        rustls::crypto::verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_interface_is_asked_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:3457".parse().unwrap();
        assert_eq!(loopback_for(v4), "127.0.0.1:3457".parse().unwrap());
        let v6: SocketAddr = "[::]:3457".parse().unwrap();
        assert_eq!(loopback_for(v6), "[::1]:3457".parse().unwrap());
        let one: SocketAddr = "10.1.2.3:3457".parse().unwrap();
        assert_eq!(loopback_for(one), one);
    }

    #[test]
    fn only_the_nodes_own_certificate_is_accepted() {
        let own = crate::node::NodeIdentity::ephemeral().unwrap();
        let other = crate::node::NodeIdentity::ephemeral().unwrap();
        let verifier = OwnCertificate {
            certificate: own.certificate.clone(),
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        };
        let name = ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
        let check = |cert: &CertificateDer<'_>, chain: &[CertificateDer<'_>]| {
            verifier
                .verify_server_cert(cert, chain, &name, &[], UnixTime::now())
                .is_ok()
        };
        assert!(check(&own.certificate, &[]));
        assert!(
            !check(&other.certificate, &[]),
            "another node's certificate"
        );
        assert!(
            !check(&own.certificate, std::slice::from_ref(&other.certificate)),
            "a chain"
        );
    }

    #[test]
    fn the_status_line_is_read_within_bounds() {
        let mut ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/cbor\r\n\r\n";
        assert_eq!(read_status_line(&mut ok).unwrap(), "HTTP/1.1 200 OK");
        let mut short: &[u8] = b"HTTP/1.1 20";
        assert!(read_status_line(&mut short).is_err());
        let endless = vec![b'x'; MAX_HEAD * 4];
        assert!(read_status_line(&mut endless.as_slice()).is_err());
    }
}

//! The TLS server configuration: exactly one self-signed certificate, ALPN `h2` and
//! `http/1.1`, no client certificates, no SNI needed. A client offering no ALPN (Tahoe's
//! Python client) gets HTTP/1.1, since hyper then sees no HTTP/2 preface.
//!
//! The certificate is served as it is, without rustls's usual check that it parses as
//! a modern X.509 certificate: Foolscap writes **version 1** certificates, which
//! webpki refuses, and a Python node's certificate must be served byte for byte (its
//! SHA-1 is the tubid clients derive write enablers from).

use std::sync::Arc;

use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::node::NodeIdentity;

/// Always answers with the node's one certificate.
#[derive(Debug)]
struct OneCertificate(Arc<CertifiedKey>);

impl ResolvesServerCert for OneCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// Builds the rustls configuration for `identity`, on the `ring` provider.
///
/// # Errors
/// If the private key is of a type rustls cannot sign with.
pub fn server_config(identity: &NodeIdentity) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let signing_key = provider.key_provider.load_private_key(identity.tls_key())?;
    let certified = CertifiedKey::new(vec![identity.certificate.clone()], signing_key);
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(OneCertificate(Arc::new(certified))));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

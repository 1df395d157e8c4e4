//! The TLS server configuration: exactly one self-signed certificate, ALPN `h2` and
//! `http/1.1`, no client certificates, no SNI needed. A client offering no ALPN (Tahoe's
//! Python client) gets HTTP/1.1, since hyper then sees no HTTP/2 preface.

use std::sync::Arc;

use rustls::ServerConfig;

use crate::node::NodeIdentity;

/// Builds the rustls configuration for `identity`, on the `ring` provider.
///
/// # Errors
/// If the key does not match the certificate or is of an unsupported type.
pub fn server_config(identity: &NodeIdentity) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(vec![identity.certificate.clone()], identity.tls_key())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

//! Certificate pinning as Tahoe does it: the server must present exactly one
//! certificate, and the SHA-256 of its SubjectPublicKeyInfo must equal the NURL's hash.
//! No CA, no host name, no validity dates (Tahoe's certificates are often expired); the
//! TLS handshake signature still proves the server holds the pinned key.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use swamp_proto::SpkiHash;

/// Accepts exactly the certificate whose SPKI hashes to the pin.
#[derive(Debug)]
pub struct SpkiPinVerifier {
    pin: SpkiHash,
    provider: Arc<CryptoProvider>,
}

impl SpkiPinVerifier {
    /// A verifier for `pin`.
    pub fn new(pin: SpkiHash, provider: Arc<CryptoProvider>) -> Self {
        Self { pin, provider }
    }
}

impl ServerCertVerifier for SpkiPinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        if !intermediates.is_empty() {
            return Err(Error::General("a GBS server must present exactly one certificate".into()));
        }
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let actual = SpkiHash::of_spki_der(cert.tbs_certificate.subject_pki.raw);
        if actual == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// A rustls client configuration pinned to `pin`, offering the given ALPN protocols.
///
/// # Panics
/// Never in practice: the ring provider supports the default protocol versions.
pub fn pinned_config(pin: SpkiHash, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .expect("invariant: ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpkiPinVerifier::new(pin, provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

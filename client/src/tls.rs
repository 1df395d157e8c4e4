//! Certificate pinning as Tahoe does it: the server must present exactly one
//! certificate, and the SHA-256 of its SubjectPublicKeyInfo must equal the NURL's hash.
//! No CA, no host name, no validity dates (Tahoe's certificates are often expired); the
//! TLS handshake signature still proves the server holds the pinned key.
//!
//! Handshake signatures are checked here with `ring` against the key taken from the
//! certificate by `x509-parser`, not through webpki: Foolscap (the Python node) makes
//! X.509 **version 1** certificates, which webpki refuses to parse.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, SignatureScheme};
use swamp_proto::SpkiHash;

/// Accepts exactly the certificate whose SPKI hashes to the pin.
#[derive(Debug)]
pub struct SpkiPinVerifier {
    pin: SpkiHash,
}

impl SpkiPinVerifier {
    /// A verifier for `pin`.
    pub fn new(pin: SpkiHash) -> Self {
        Self { pin }
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
            return Err(Error::General(
                "a GBS server must present exactly one certificate".into(),
            ));
        }
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity)
            .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
        let actual = SpkiHash::of_spki_der(cert.tbs_certificate.subject_pki.raw);
        if actual == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        SCHEMES.iter().map(|(scheme, _)| *scheme).collect()
    }
}

/// The handshake signature schemes we verify, and ring's algorithm for each.
const SCHEMES: &[(
    SignatureScheme,
    &'static dyn ring::signature::VerificationAlgorithm,
)] = &[
    (
        SignatureScheme::ECDSA_NISTP256_SHA256,
        &ring::signature::ECDSA_P256_SHA256_ASN1,
    ),
    (
        SignatureScheme::ECDSA_NISTP384_SHA384,
        &ring::signature::ECDSA_P384_SHA384_ASN1,
    ),
    (SignatureScheme::ED25519, &ring::signature::ED25519),
    (
        SignatureScheme::RSA_PSS_SHA256,
        &ring::signature::RSA_PSS_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PSS_SHA384,
        &ring::signature::RSA_PSS_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PSS_SHA512,
        &ring::signature::RSA_PSS_2048_8192_SHA512,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA256,
        &ring::signature::RSA_PKCS1_2048_8192_SHA256,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA384,
        &ring::signature::RSA_PKCS1_2048_8192_SHA384,
    ),
    (
        SignatureScheme::RSA_PKCS1_SHA512,
        &ring::signature::RSA_PKCS1_2048_8192_SHA512,
    ),
];

/// Verifies a handshake signature with the certificate's public key.
fn verify_signature(
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, Error> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadEncoding))?;
    let key = &parsed.tbs_certificate.subject_pki.subject_public_key.data;
    let algorithm = SCHEMES
        .iter()
        .find(|(scheme, _)| *scheme == dss.scheme)
        .map(|(_, alg)| *alg)
        .ok_or(Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ))?;
    ring::signature::UnparsedPublicKey::new(algorithm, key)
        .verify(message, dss.signature())
        .map(|()| HandshakeSignatureValid::assertion())
        .map_err(|_| Error::InvalidCertificate(rustls::CertificateError::BadSignature))
}

/// A rustls client configuration pinned to `pin`, offering the given ALPN protocols.
///
/// # Panics
/// Never in practice: the ring provider supports the default protocol versions.
pub fn pinned_config(pin: SpkiHash, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("invariant: ring supports the default TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SpkiPinVerifier::new(pin)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

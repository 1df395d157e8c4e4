//! The RSA key pair behind a mutable file, and everything Tahoe derives from it
//! (`allmydata/crypto/rsa.py`, `mutable/common.py::derive_mutable_keys`).
//!
//! A mutable file *is* its key pair: the write key is a hash of the signing key's
//! PKCS#8 DER, the fingerprint a hash of the verification key's SubjectPublicKeyInfo
//! DER, and every version is signed with RSA-PSS (SHA-256, MGF1-SHA256, 32-byte salt).
//! Each share carries the signing key encrypted with the write key, so any holder of
//! the write cap can recover it and publish a new version. Byte-exact DER matters: the
//! write key hashes those bytes, so a different (equally valid) encoding of the same key
//! would name a different file.
//!
//! Randomness comes in as a parameter; this crate draws none of its own.

use std::fmt;

use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::rand_core::CryptoRng;
use rsa::signature::RandomizedSigner;
use rsa::traits::PublicKeyParts;
use sha2::Sha256;
use swamp_proto::DecodeError;

use crate::cap::{MutableAccess, MutableCap, MutableFormat};
use crate::{aes, hashutil};

/// Tahoe's mutable-file key size; it refuses to load any other.
pub const KEY_BITS: usize = 2048;

/// A mutable file's signing key (and the verification key it implies).
///
/// Debug output never shows key material.
#[derive(Clone)]
pub struct MutableKey {
    private: rsa::PrivateKey,
    /// PKCS#8 DER of `private`, exactly the bytes the write key hashes.
    pkcs8: Vec<u8>,
    /// SubjectPublicKeyInfo DER of the public half.
    spki: Vec<u8>,
}

fn bad(why: impl fmt::Display) -> DecodeError {
    DecodeError::Invalid(format!("mutable signing key: {why}"))
}

impl MutableKey {
    /// Generates a new 2048-bit key with e = 65537, as Tahoe does for each new file.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if the random source fails.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Result<Self, DecodeError> {
        let private = rsa::PrivateKey::new(rng, KEY_BITS).map_err(bad)?;
        Self::from_private(private)
    }

    fn from_private(private: rsa::PrivateKey) -> Result<Self, DecodeError> {
        if private.size() * 8 != KEY_BITS {
            return Err(bad(format!("{} bits, not {KEY_BITS}", private.size() * 8)));
        }
        let pkcs8 = private.to_pkcs8_der().map_err(bad)?.as_bytes().to_vec();
        let spki = private
            .to_public_key()
            .to_public_key_der()
            .map_err(bad)?
            .into_vec();
        Ok(Self {
            private,
            pkcs8,
            spki,
        })
    }

    /// Loads a key from its PKCS#8 DER (the plaintext of a share's encrypted key).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] unless it is a 2048-bit RSA key that re-encodes to the
    /// same bytes (otherwise the write key derived here would not be the file's).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, DecodeError> {
        let key = Self::from_private(rsa::PrivateKey::from_pkcs8_der(der).map_err(bad)?)?;
        if key.pkcs8 != der {
            return Err(bad("the DER is not in the canonical form Tahoe writes"));
        }
        Ok(key)
    }

    /// Recovers the key from a share's encrypted private key, checking that it is the
    /// key of the file whose write key is `writekey`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if it does not decrypt to a key with that write key.
    pub fn from_encrypted(encrypted: &[u8], writekey: &[u8; 16]) -> Result<Self, DecodeError> {
        let mut der = encrypted.to_vec();
        aes::aes128_ctr(writekey, 0, &mut der);
        if &hashutil::ssk_writekey_hash(&der) != writekey {
            return Err(bad("the encrypted key does not belong to this write cap"));
        }
        Self::from_pkcs8_der(&der)
    }

    /// The signing key as PKCS#8 DER. Secret: only for hashing or encrypting.
    pub fn expose_pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The verification key as SubjectPublicKeyInfo DER (294 bytes), stored in shares.
    pub fn verification_key_der(&self) -> &[u8] {
        &self.spki
    }

    /// The write key: `ssk_writekey_hash(PKCS#8 DER)`.
    pub fn writekey(&self) -> [u8; 16] {
        hashutil::ssk_writekey_hash(&self.pkcs8)
    }

    /// The fingerprint: `ssk_pubkey_fingerprint_hash(SPKI DER)`.
    pub fn fingerprint(&self) -> [u8; 32] {
        hashutil::ssk_pubkey_fingerprint_hash(&self.spki)
    }

    /// The signing key encrypted with the write key (AES-128-CTR, zero IV), as every
    /// share stores it.
    pub fn encrypted_private_key(&self) -> Vec<u8> {
        let mut encrypted = self.pkcs8.clone();
        aes::aes128_ctr(&self.writekey(), 0, &mut encrypted);
        encrypted
    }

    /// The write cap of the file this key makes, in `format`.
    pub fn write_cap(&self, format: MutableFormat) -> MutableCap {
        MutableCap {
            format,
            access: MutableAccess::Write(self.writekey()),
            fingerprint: self.fingerprint(),
        }
    }

    /// Signs `message` with RSA-PSS (SHA-256, MGF1-SHA256, salt length 32), which is
    /// randomized: two signatures of one message differ.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if the random source fails.
    pub fn sign<R: CryptoRng + ?Sized>(
        &self,
        rng: &mut R,
        message: &[u8],
    ) -> Result<Vec<u8>, DecodeError> {
        let signer = rsa::pss::SigningKey::<Sha256>::new(self.private.clone());
        let signature = signer.try_sign_with_rng(rng, message).map_err(bad)?;
        Ok(Box::<[u8]>::from(signature).into_vec())
    }
}

impl fmt::Debug for MutableKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MutableKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_round_trips_and_signs() {
        let mut rng = rand::rng();
        let key = MutableKey::generate(&mut rng).unwrap();
        assert_eq!(key.verification_key_der().len(), 294);
        let again =
            MutableKey::from_encrypted(&key.encrypted_private_key(), &key.writekey()).unwrap();
        assert_eq!(again.expose_pkcs8_der(), key.expose_pkcs8_der());
        assert_eq!(again.fingerprint(), key.fingerprint());
        assert!(MutableKey::from_encrypted(&key.encrypted_private_key(), &[0; 16]).is_err());
        let signature = key.sign(&mut rng, b"prefix").unwrap();
        assert_eq!(signature.len(), 256);
        let public = <rsa::PublicKey as rsa::pkcs8::DecodePublicKey>::from_public_key_der(
            key.verification_key_der(),
        )
        .unwrap();
        let verifier = rsa::pss::VerifyingKey::<Sha256>::new(public);
        let signature = rsa::pss::Signature::try_from(signature.as_slice()).unwrap();
        rsa::signature::Verifier::verify(&verifier, b"prefix", &signature).unwrap();
        assert_eq!(format!("{key:?}"), "MutableKey(<redacted>)");
    }
}

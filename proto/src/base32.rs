//! Tahoe's base32: RFC 4648 alphabet in lowercase, no padding, and a decoder that
//! insists on the canonical form (unused trailing bits zero), as `allmydata.util.base32`
//! does. Two spellings of one value would give two names to one storage index.

use data_encoding::{Encoding, Specification};
use std::sync::OnceLock;

use crate::DecodeError;

fn encoding() -> &'static Encoding {
    static ENC: OnceLock<Encoding> = OnceLock::new();
    ENC.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
        spec.check_trailing_bits = true;
        spec.encoding()
            .expect("invariant: the base32 specification is valid")
    })
}

/// Encodes bytes as lowercase unpadded base32.
pub fn encode(bytes: &[u8]) -> String {
    encoding().encode(bytes)
}

/// Decodes canonical lowercase unpadded base32.
///
/// # Errors
/// [`DecodeError::Base32`] for uppercase, padding, characters outside the alphabet, an
/// impossible length or non-zero trailing bits.
pub fn decode(text: &str) -> Result<Vec<u8>, DecodeError> {
    encoding()
        .decode(text.as_bytes())
        .map_err(|e| DecodeError::Base32(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_python_b32encode_lower_rstrip() {
        // base64.b32encode(x).lower().rstrip(b"=") for a few lengths.
        assert_eq!(encode(b""), "");
        assert_eq!(encode(b"f"), "my");
        assert_eq!(encode(b"fo"), "mzxq");
        assert_eq!(encode(b"foo"), "mzxw6");
        assert_eq!(encode(b"foob"), "mzxw6yq");
        assert_eq!(encode(b"fooba"), "mzxw6ytb");
        assert_eq!(encode(b"foobar"), "mzxw6ytboi");
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn rejects_non_canonical_forms() {
        assert!(decode("MZXW6").is_err(), "uppercase");
        assert!(decode("mzxw6===").is_err(), "padding");
        assert!(decode("mzxw7").is_err(), "non-zero trailing bits");
        assert!(decode("mzx1").is_err(), "digit outside the alphabet");
        assert!(decode("m").is_err(), "impossible length");
    }
}

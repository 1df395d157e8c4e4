//! AES-128 in CTR mode with an all-zero initial counter, the only way Tahoe uses AES
//! (`allmydata/crypto/aes.py`): uniqueness comes from deriving a fresh key per file,
//! per segment or per directory entry, never from the IV.

use aes::Aes128;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};

type Aes128Ctr = ctr::Ctr128BE<Aes128>;

/// Encrypts or decrypts (the same operation) `data` in place, as bytes
/// `[offset, offset + data.len())` of the key's keystream.
pub fn aes128_ctr(key: &[u8; 16], offset: u64, data: &mut [u8]) {
    let mut cipher = Aes128Ctr::new(key.into(), &[0u8; 16].into());
    cipher.seek(offset);
    cipher.apply_keystream(data);
}

/// [`aes128_ctr`] from `input` into `output` (of the same length), in one pass.
///
/// # Panics
/// If the lengths differ.
pub fn aes128_ctr_into(key: &[u8; 16], offset: u64, input: &[u8], output: &mut [u8]) {
    let mut cipher = Aes128Ctr::new(key.into(), &[0u8; 16].into());
    cipher.seek(offset);
    cipher.apply_keystream_b2b(input, output);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Python `cryptography`: AES(bytes(range(16))), CTR(b"\0"*16), 100 zero bytes.
    const PYTHON: &str = "c6a13b37878f5b826f4f8162a1c8d8797346139595c0b41e497bbde365f42d0a49d68753999ba68ce3897a686081b09db9ad2b2e346ac238505d365e9cb7fc563063b6df0a2cdbb0851251d2c669d1bf9b82998964728141405e23dd9f1dd01bd45efc52";

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn matches_python_cryptography_at_any_offset() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let mut whole = [0u8; 100];
        aes128_ctr(&key, 0, &mut whole);
        assert_eq!(hex(&whole), PYTHON);
        // The stream continues across calls at any offset (segments of one file).
        let mut tail = [0u8; 63];
        aes128_ctr(&key, 37, &mut tail);
        assert_eq!(&tail[..], &whole[37..]);
        aes128_ctr(&key, 37, &mut tail);
        assert_eq!(tail, [0u8; 63], "decrypting is encrypting again");
        let mut copied = [1u8; 63];
        aes128_ctr_into(&key, 37, &[0u8; 63], &mut copied);
        assert_eq!(
            &copied[..],
            &whole[37..],
            "buffer to buffer is the same stream"
        );
    }
}

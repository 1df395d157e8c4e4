//! Tahoe's hashes (`allmydata.util.hashutil`): SHA-256d over a netstring-wrapped tag,
//! the tags themselves, and the few constructions that are not textbook (the lease
//! secret chain swaps tag and value; `hmac` pads no key; the convergence tag nests
//! netstrings). Every function is pinned by Tahoe's own known answers (tests below).

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::sha256;

/// `<decimal length>:<bytes>,`
pub fn netstring(bytes: &[u8]) -> Vec<u8> {
    let mut out = format!("{}:", bytes.len()).into_bytes();
    out.extend_from_slice(bytes);
    out.push(b',');
    out
}

/// SHA-256 of SHA-256, fed incrementally.
#[derive(Clone)]
pub struct TaggedHasher(sha256::Sha256);

impl TaggedHasher {
    /// A hasher that has already absorbed `netstring(tag)`.
    pub fn new(tag: &[u8]) -> Self {
        let mut h = sha256::Sha256::new();
        h.update(&netstring(tag));
        Self(h)
    }

    /// Absorbs more data.
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// `a.update(da); b.update(db)`, both streams hashed at once where the CPU can
    /// ([`sha256::update_pair`]): the same digests, in less time when `da` and `db`
    /// are about as long.
    pub fn update_pair(a: &mut Self, da: &[u8], b: &mut Self, db: &[u8]) {
        sha256::update_pair(&mut a.0, da, &mut b.0, db);
    }

    /// `SHA256(SHA256(netstring(tag) || data))`.
    pub fn finish(self) -> [u8; 32] {
        sha256::Sha256::digest(&self.0.finalize())
    }
}

/// `sha256d(netstring(tag) || val)`.
pub fn tagged_hash(tag: &[u8], val: &[u8]) -> [u8; 32] {
    let mut h = TaggedHasher::new(tag);
    h.update(val);
    h.finish()
}

/// `sha256d(netstring(tag) || netstring(a) || netstring(b))`.
pub fn tagged_pair_hash(tag: &[u8], a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut h = TaggedHasher::new(tag);
    h.update(&netstring(a));
    h.update(&netstring(b));
    h.finish()
}

fn first16(h: [u8; 32]) -> [u8; 16] {
    h[..16].try_into().expect("invariant: 32 > 16")
}

/// The tags, as Tahoe spells them.
pub mod tag {
    /// CHK key to storage index.
    pub const STORAGE_INDEX: &[u8] = b"allmydata_immutable_key_to_storage_index_v1";
    /// Block hash.
    pub const BLOCK: &[u8] = b"allmydata_encoded_subshare_v1";
    /// URI extension block.
    pub const UEB: &[u8] = b"allmydata_uri_extension_v1";
    /// Whole plaintext.
    pub const PLAINTEXT: &[u8] = b"allmydata_plaintext_v1";
    /// Whole ciphertext.
    pub const CIPHERTEXT: &[u8] = b"allmydata_crypttext_v1";
    /// Ciphertext segment.
    pub const CIPHERTEXT_SEGMENT: &[u8] = b"allmydata_crypttext_segment_v1";
    /// Plaintext segment.
    pub const PLAINTEXT_SEGMENT: &[u8] = b"allmydata_plaintext_segment_v1";
    /// Convergent encryption key prefix.
    pub const CONVERGENT_ENCRYPTION: &[u8] =
        b"allmydata_immutable_content_to_key_with_added_secret_v1+";
    /// Client renewal secret (used as the *value*, the secret as the tag).
    pub const CLIENT_RENEWAL: &[u8] = b"allmydata_client_renewal_secret_v1";
    /// Client cancel secret (likewise).
    pub const CLIENT_CANCEL: &[u8] = b"allmydata_client_cancel_secret_v1";
    /// Per-file renewal secret.
    pub const FILE_RENEWAL: &[u8] = b"allmydata_file_renewal_secret_v1";
    /// Per-file cancel secret.
    pub const FILE_CANCEL: &[u8] = b"allmydata_file_cancel_secret_v1";
    /// Per-server renewal secret.
    pub const BUCKET_RENEWAL: &[u8] = b"allmydata_bucket_renewal_secret_v1";
    /// Per-server cancel secret.
    pub const BUCKET_CANCEL: &[u8] = b"allmydata_bucket_cancel_secret_v1";
    /// Private key to write key.
    pub const MUTABLE_WRITEKEY: &[u8] = b"allmydata_mutable_privkey_to_writekey_v1";
    /// Write key to write enabler master.
    pub const MUTABLE_WRITE_ENABLER_MASTER: &[u8] =
        b"allmydata_mutable_writekey_to_write_enabler_master_v1";
    /// Write enabler master and node id to write enabler.
    pub const MUTABLE_WRITE_ENABLER: &[u8] =
        b"allmydata_mutable_write_enabler_master_and_nodeid_to_write_enabler_v1";
    /// Public key to fingerprint.
    pub const MUTABLE_PUBKEY: &[u8] = b"allmydata_mutable_pubkey_to_fingerprint_v1";
    /// Write key to read key.
    pub const MUTABLE_READKEY: &[u8] = b"allmydata_mutable_writekey_to_readkey_v1";
    /// Salt and read key to data key.
    pub const MUTABLE_DATAKEY: &[u8] = b"allmydata_mutable_readkey_to_datakey_v1";
    /// Read key to storage index.
    pub const MUTABLE_STORAGE_INDEX: &[u8] = b"allmydata_mutable_readkey_to_storage_index_v1";
    /// Dirnode child write-cap key.
    pub const DIRNODE_CHILD_WRITECAP: &[u8] =
        b"allmydata_mutable_writekey_and_salt_to_dirnode_child_capkey_v1";
    /// Dirnode child write-cap salt.
    pub const DIRNODE_CHILD_SALT: &[u8] = b"allmydata_dirnode_child_rwcap_to_salt_v1";
    /// Merkle tree empty leaf.
    pub const MERKLE_EMPTY_LEAF: &[u8] = b"Merkle tree empty leaf";
    /// Merkle tree interior node.
    pub const MERKLE_INTERNAL: &[u8] = b"Merkle tree internal node";
}

/// CHK key to storage index (16 bytes).
pub fn storage_index_hash(key: &[u8]) -> [u8; 16] {
    first16(tagged_hash(tag::STORAGE_INDEX, key))
}
/// Hash of one erasure-coded block.
pub fn block_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::BLOCK, data)
}
/// [`block_hash`] of two blocks at once (faster than one after the other).
pub fn block_hash_pair(a: &[u8], b: &[u8]) -> ([u8; 32], [u8; 32]) {
    let (mut ha, mut hb) = (TaggedHasher::new(tag::BLOCK), TaggedHasher::new(tag::BLOCK));
    TaggedHasher::update_pair(&mut ha, a, &mut hb, b);
    (ha.finish(), hb.finish())
}
/// [`block_hash`] of every block, two at a time.
pub fn block_hashes(blocks: &[&[u8]]) -> Vec<[u8; 32]> {
    let (pairs, odd) = blocks.as_chunks::<2>();
    let mut out = Vec::with_capacity(blocks.len());
    for [a, b] in pairs {
        let (ha, hb) = block_hash_pair(a, b);
        out.extend([ha, hb]);
    }
    out.extend(odd.iter().map(|a| block_hash(a)));
    out
}
/// Hash of a URI extension block.
pub fn uri_extension_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::UEB, data)
}
/// Hash of a whole plaintext.
pub fn plaintext_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::PLAINTEXT, data)
}
/// Hash of a whole ciphertext.
pub fn crypttext_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::CIPHERTEXT, data)
}
/// Hash of a ciphertext segment.
pub fn crypttext_segment_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::CIPHERTEXT_SEGMENT, data)
}
/// Hash of a plaintext segment.
pub fn plaintext_segment_hash(data: &[u8]) -> [u8; 32] {
    tagged_hash(tag::PLAINTEXT_SEGMENT, data)
}

/// The convergence hasher's tag: the prefix, then netstrings of the secret and of
/// `"k,n,segsize"`.
pub fn convergence_tag(k: u16, n: u16, segment_size: u64, convergence: &[u8]) -> Vec<u8> {
    let mut tag = tag::CONVERGENT_ENCRYPTION.to_vec();
    tag.extend_from_slice(&netstring(convergence));
    tag.extend_from_slice(&netstring(format!("{k},{n},{segment_size}").as_bytes()));
    tag
}

/// The convergent CHK key of `data` (16 bytes).
pub fn convergence_hash(
    k: u16,
    n: u16,
    segment_size: u64,
    data: &[u8],
    convergence: &[u8],
) -> [u8; 16] {
    first16(tagged_hash(
        &convergence_tag(k, n, segment_size, convergence),
        data,
    ))
}

/// A client's renewal secret: note the swap (the secret is the tag).
pub fn my_renewal_secret_hash(my_secret: &[u8]) -> [u8; 32] {
    tagged_hash(my_secret, tag::CLIENT_RENEWAL)
}
/// A client's cancel secret (same swap).
pub fn my_cancel_secret_hash(my_secret: &[u8]) -> [u8; 32] {
    tagged_hash(my_secret, tag::CLIENT_CANCEL)
}
/// Per-file renewal secret.
pub fn file_renewal_secret_hash(client_renewal: &[u8], storage_index: &[u8]) -> [u8; 32] {
    tagged_pair_hash(tag::FILE_RENEWAL, client_renewal, storage_index)
}
/// Per-file cancel secret.
pub fn file_cancel_secret_hash(client_cancel: &[u8], storage_index: &[u8]) -> [u8; 32] {
    tagged_pair_hash(tag::FILE_CANCEL, client_cancel, storage_index)
}
/// Per-server renewal secret (`peerid` is the server's 20-byte tubid).
pub fn bucket_renewal_secret_hash(file_renewal: &[u8], peerid: &[u8]) -> [u8; 32] {
    tagged_pair_hash(tag::BUCKET_RENEWAL, file_renewal, peerid)
}
/// Per-server cancel secret.
pub fn bucket_cancel_secret_hash(file_cancel: &[u8], peerid: &[u8]) -> [u8; 32] {
    tagged_pair_hash(tag::BUCKET_CANCEL, file_cancel, peerid)
}

/// Tahoe's `hmac`: not RFC 2104 (the key is xored byte-wise, never padded).
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let ikey: Vec<u8> = key.iter().map(|b| b ^ 0x36).collect();
    let okey: Vec<u8> = key.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ikey)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(&okey)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Key for a dirnode child's encrypted write cap (16 bytes).
pub fn mutable_rwcap_key_hash(iv: &[u8], writekey: &[u8]) -> [u8; 16] {
    first16(tagged_pair_hash(tag::DIRNODE_CHILD_WRITECAP, iv, writekey))
}
/// Deterministic salt for a dirnode child's write cap (16 bytes).
pub fn mutable_rwcap_salt_hash(rw_uri: &[u8]) -> [u8; 16] {
    first16(tagged_hash(tag::DIRNODE_CHILD_SALT, rw_uri))
}
/// Private key (PKCS#8 DER) to write key.
pub fn ssk_writekey_hash(privkey: &[u8]) -> [u8; 16] {
    first16(tagged_hash(tag::MUTABLE_WRITEKEY, privkey))
}
/// Write key to write enabler master.
pub fn ssk_write_enabler_master_hash(writekey: &[u8]) -> [u8; 32] {
    tagged_hash(tag::MUTABLE_WRITE_ENABLER_MASTER, writekey)
}
/// Write key and server node id to that server's write enabler.
pub fn ssk_write_enabler_hash(writekey: &[u8], peerid: &[u8]) -> [u8; 32] {
    tagged_pair_hash(
        tag::MUTABLE_WRITE_ENABLER,
        &ssk_write_enabler_master_hash(writekey),
        peerid,
    )
}
/// Public key (SPKI DER) to fingerprint.
pub fn ssk_pubkey_fingerprint_hash(pubkey: &[u8]) -> [u8; 32] {
    tagged_hash(tag::MUTABLE_PUBKEY, pubkey)
}
/// Write key to read key.
pub fn ssk_readkey_hash(writekey: &[u8]) -> [u8; 16] {
    first16(tagged_hash(tag::MUTABLE_READKEY, writekey))
}
/// Salt and read key to a segment's data key.
pub fn ssk_readkey_data_hash(iv: &[u8], readkey: &[u8]) -> [u8; 16] {
    first16(tagged_pair_hash(tag::MUTABLE_DATAKEY, iv, readkey))
}
/// Read key to storage index.
pub fn ssk_storage_index_hash(readkey: &[u8]) -> [u8; 16] {
    first16(tagged_hash(tag::MUTABLE_STORAGE_INDEX, readkey))
}
/// Where a server sorts in a file's ring: SHA-1 of storage index and permutation seed.
pub fn permute_server_hash(storage_index: &[u8], seed: &[u8]) -> [u8; 20] {
    Sha1::new()
        .chain_update(storage_index)
        .chain_update(seed)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use swamp_proto::base32;

    fn b32(bytes: &[u8]) -> String {
        base32::encode(bytes)
    }

    /// Tahoe's `test_hashutil.py::test_known_answers`, every one.
    #[test]
    fn tahoe_known_answers() {
        assert_eq!(
            b32(&block_hash(b"")),
            "msjr5bh4evuh7fa3zw7uovixfbvlnstr5b65mrerwfnvjxig2jvq"
        );
        assert_eq!(
            b32(&uri_extension_hash(b"")),
            "wthsu45q7zewac2mnivoaa4ulh5xvbzdmsbuyztq2a5fzxdrnkka"
        );
        assert_eq!(
            b32(&plaintext_hash(b"")),
            "5lz5hwz3qj3af7n6e3arblw7xzutvnd3p3fjsngqjcb7utf3x3da"
        );
        assert_eq!(
            b32(&crypttext_hash(b"")),
            "itdj6e4njtkoiavlrmxkvpreosscssklunhwtvxn6ggho4rkqwga"
        );
        assert_eq!(
            b32(&crypttext_segment_hash(b"")),
            "aovy5aa7jej6ym5ikgwyoi4pxawnoj3wtaludjz7e2nb5xijb7aa"
        );
        assert_eq!(
            b32(&plaintext_segment_hash(b"")),
            "4fdgf6qruaisyukhqcmoth4t3li6bkolbxvjy4awwcpprdtva7za"
        );
        assert_eq!(
            b32(&convergence_hash(3, 10, 100, b"", b"converge")),
            "3mo6ni7xweplycin6nowynw2we"
        );
        assert_eq!(
            b32(&my_renewal_secret_hash(b"")),
            "ujhr5k5f7ypkp67jkpx6jl4p47pyta7hu5m527cpcgvkafsefm6q"
        );
        assert_eq!(
            b32(&my_cancel_secret_hash(b"")),
            "rjwzmafe2duixvqy6h47f5wfrokdziry6zhx4smew4cj6iocsfaa"
        );
        assert_eq!(
            b32(&file_renewal_secret_hash(b"", b"si")),
            "hzshk2kf33gzbd5n3a6eszkf6q6o6kixmnag25pniusyaulqjnia"
        );
        assert_eq!(
            b32(&file_cancel_secret_hash(b"", b"si")),
            "bfciwvr6w7wcavsngxzxsxxaszj72dej54n4tu2idzp6b74g255q"
        );
        assert_eq!(
            b32(&bucket_renewal_secret_hash(b"", &[0; 20])),
            "e7imrzgzaoashsncacvy3oysdd2m5yvtooo4gmj4mjlopsazmvuq"
        );
        assert_eq!(
            b32(&bucket_cancel_secret_hash(b"", &[0; 20])),
            "dvdujeyxeirj6uux6g7xcf4lvesk632aulwkzjar7srildvtqwma"
        );
        assert_eq!(
            b32(&hmac(b"tag", b"")),
            "c54ypfi6pevb3nvo6ba42jtglpkry2kbdopqsi7dgrm4r7tw5sra"
        );
        assert_eq!(
            b32(&mutable_rwcap_key_hash(b"iv", b"wk")),
            "6rvn2iqrghii5n4jbbwwqqsnqu"
        );
        assert_eq!(b32(&ssk_writekey_hash(b"")), "ykpgmdbpgbb6yqz5oluw2q26ye");
        assert_eq!(
            b32(&ssk_write_enabler_master_hash(b"")),
            "izbfbfkoait4dummruol3gy2bnixrrrslgye6ycmkuyujnenzpia"
        );
        assert_eq!(
            b32(&ssk_write_enabler_hash(b"wk", &[0; 20])),
            "fuu2dvx7g6gqu5x22vfhtyed7p4pd47y5hgxbqzgrlyvxoev62tq"
        );
        assert_eq!(
            b32(&ssk_pubkey_fingerprint_hash(b"")),
            "3opzw4hhm2sgncjx224qmt5ipqgagn7h5zivnfzqycvgqgmgz35q"
        );
        assert_eq!(b32(&ssk_readkey_hash(b"")), "vugid4as6qbqgeq2xczvvcedai");
        assert_eq!(
            b32(&ssk_readkey_data_hash(b"iv", b"rk")),
            "73wsaldnvdzqaf7v4pzbr2ae5a"
        );
        assert_eq!(
            b32(&ssk_storage_index_hash(b"")),
            "j7icz6kigb6hxrej3tv4z7ayym"
        );
        let seed = base32::decode("u33m4y7klhz3bypswqkozwetvabelhxt").unwrap();
        assert_eq!(
            b32(&permute_server_hash(b"SI", &seed)),
            "kb4354zeeurpo3ze5e275wzbynm6hlap"
        );
    }

    #[test]
    fn netstrings() {
        assert_eq!(netstring(b""), b"0:,");
        assert_eq!(netstring(b"abc"), b"3:abc,");
    }
}

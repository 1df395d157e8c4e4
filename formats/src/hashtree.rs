//! Merkle hash trees as Tahoe builds them (`allmydata/hashtree.py`).
//!
//! A complete binary tree in a flat array: the root at 0, the children of `i` at
//! `2i+1` and `2i+2`. The leaves are padded to a power of two; the padding leaf at
//! leaf position `j` is `tagged_hash("Merkle tree empty leaf", "<j>")`; an interior
//! node is `tagged_pair_hash("Merkle tree internal node", left, right)`.

use std::collections::BTreeSet;

use crate::hashutil::{tag, tagged_hash, tagged_pair_hash};

/// A 32-byte hash.
pub type Hash = [u8; 32];

/// The smallest power of two at least `x` (1 for 0).
pub fn roundup_pow2(x: usize) -> usize {
    x.max(1).next_power_of_two()
}

/// The padding hash for leaf position `i`.
pub fn empty_leaf_hash(i: usize) -> Hash {
    tagged_hash(tag::MERKLE_EMPTY_LEAF, i.to_string().as_bytes())
}

/// An interior node's hash.
pub fn pair_hash(left: &Hash, right: &Hash) -> Hash {
    tagged_pair_hash(tag::MERKLE_INTERNAL, left, right)
}

/// A whole tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashTree {
    nodes: Vec<Hash>,
}

impl HashTree {
    /// Builds the tree over `leaves`.
    pub fn new(leaves: &[Hash]) -> Self {
        let width = roundup_pow2(leaves.len());
        let mut nodes = vec![[0u8; 32]; 2 * width - 1];
        for i in 0..width {
            nodes[width - 1 + i] = leaves.get(i).copied().unwrap_or_else(|| empty_leaf_hash(i));
        }
        for i in (0..width - 1).rev() {
            nodes[i] = pair_hash(&nodes[2 * i + 1], &nodes[2 * i + 2]);
        }
        Self { nodes }
    }

    /// The root hash.
    pub fn root(&self) -> Hash {
        self.nodes[0]
    }

    /// All nodes, root first (as Tahoe stores block and ciphertext trees).
    pub fn nodes(&self) -> &[Hash] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> Option<&Hash> {
        self.nodes.get(i)
    }

    /// Index of the first leaf.
    pub fn first_leaf(&self) -> usize {
        self.nodes.len() / 2
    }

    /// The node indexes needed to check leaf `leaf` against the root: the sibling of
    /// every node on its path (the root excluded), and the leaf itself if asked.
    pub fn needed_hashes(&self, leaf: usize, include_leaf: bool) -> BTreeSet<usize> {
        needed_hashes(self.nodes.len(), leaf, include_leaf)
    }
}

/// [`HashTree::needed_hashes`] for a tree of `node_count` nodes.
pub fn needed_hashes(node_count: usize, leaf: usize, include_leaf: bool) -> BTreeSet<usize> {
    let mut here = node_count / 2 + leaf;
    let mut needed = BTreeSet::new();
    if include_leaf {
        needed.insert(here);
    }
    while here != 0 {
        let sibling = if here % 2 == 1 { here + 1 } else { here - 1 };
        needed.insert(sibling);
        here = (here - 1) / 2;
    }
    needed
}

/// Checks that `leaf_hash` at leaf position `leaf` chains up to `root` through the
/// given `(node index, hash)` pairs.
pub fn verify_leaf(
    node_count: usize,
    leaf: usize,
    leaf_hash: &Hash,
    chain: &[(usize, Hash)],
    root: &Hash,
) -> bool {
    let lookup = |i: usize| chain.iter().find(|(n, _)| *n == i).map(|(_, h)| *h);
    let mut here = node_count / 2 + leaf;
    let mut hash = *leaf_hash;
    while here != 0 {
        let (left, right) = if here % 2 == 1 {
            let Some(sib) = lookup(here + 1) else {
                return false;
            };
            (hash, sib)
        } else {
            let Some(sib) = lookup(here - 1) else {
                return false;
            };
            (sib, hash)
        };
        hash = pair_hash(&left, &right);
        here = (here - 1) / 2;
    }
    &hash == root
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashutil::block_hash;
    use swamp_proto::base32;

    /// Roots and needed-hash sets computed by Tahoe's `HashTree` over
    /// `[block_hash(b"%d" % i) for i in range(n)]`, for the last leaf.
    #[test]
    fn matches_tahoe() {
        for (n, nodes, root, needed) in [
            (
                1,
                1,
                "mhhd7doqusesqt7wjczdqrvmfxmr6ddkpx3mlgyxjekk7fap4naa",
                vec![0],
            ),
            (
                2,
                3,
                "vucczt2m3syrfoehmlsufdrtl7rkaqh5jncbpo6cuw7pmybc6ggq",
                vec![1, 2],
            ),
            (
                3,
                7,
                "geqazyjamueqsx3fnrhclo2xahxwsge5r5rqj3ywbirwovqkvnpq",
                vec![1, 5, 6],
            ),
            (
                5,
                15,
                "bmpxit376eya5qogukov6wakzpcewzd6uxd7d7wscdh572ihbf2q",
                vec![1, 6, 11, 12],
            ),
            (
                8,
                15,
                "mbwve5ub2is46onhfikqpjyj22dqgp3xhrijgw3qruqex6jd6pfq",
                vec![1, 5, 13, 14],
            ),
        ] {
            let leaves: Vec<Hash> = (0..n)
                .map(|i| block_hash(i.to_string().as_bytes()))
                .collect();
            let tree = HashTree::new(&leaves);
            assert_eq!(tree.nodes().len(), nodes);
            assert_eq!(base32::encode(&tree.root()), root, "n={n}");
            assert_eq!(
                tree.needed_hashes(n - 1, true)
                    .into_iter()
                    .collect::<Vec<_>>(),
                needed,
                "n={n}"
            );
            for (leaf, leaf_hash) in leaves.iter().enumerate() {
                let chain: Vec<(usize, Hash)> = tree
                    .needed_hashes(leaf, false)
                    .into_iter()
                    .map(|i| (i, tree.nodes()[i]))
                    .collect();
                assert!(verify_leaf(nodes, leaf, leaf_hash, &chain, &tree.root()));
                assert!(!verify_leaf(nodes, leaf, &[0; 32], &chain, &tree.root()));
            }
        }
    }
}

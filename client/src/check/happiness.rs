//! Servers of happiness, as Tahoe's checker counts it (`happiness_upload.py`): the
//! size of a maximum matching between shares and the servers holding them, that is,
//! how many servers could each hold a different share. Three shares on one server
//! count 1; shares 0 and 1 both on servers A and B count 2.

use std::collections::{BTreeMap, BTreeSet};

/// The size of a maximum matching of `sharemap`'s shares to distinct servers.
pub(crate) fn servers_of_happiness(sharemap: &BTreeMap<String, BTreeSet<String>>) -> usize {
    let servers: Vec<&String> = sharemap
        .values()
        .flatten()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let edges: Vec<Vec<usize>> = sharemap
        .values()
        .map(|holders| {
            holders
                .iter()
                .filter_map(|h| servers.binary_search(&h).ok())
                .collect()
        })
        .collect();
    // Server index to the share matched to it.
    let mut matched: Vec<Option<usize>> = vec![None; servers.len()];
    let mut size = 0;
    for share in 0..edges.len() {
        let mut seen = vec![false; servers.len()];
        if augment(share, &edges, &mut matched, &mut seen) {
            size += 1;
        }
    }
    size
}

/// Kuhn's augmenting path from `share` (at most one visit per server, so the
/// depth is bounded by the number of servers).
fn augment(
    share: usize,
    edges: &[Vec<usize>],
    matched: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for &server in &edges[share] {
        if seen[server] {
            continue;
        }
        seen[server] = true;
        let free = match matched[server] {
            None => true,
            Some(other) => augment(other, edges, matched, seen),
        };
        if free {
            matched[server] = Some(share);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, &[&str])]) -> BTreeMap<String, BTreeSet<String>> {
        entries
            .iter()
            .map(|(share, servers)| {
                (
                    (*share).to_owned(),
                    servers.iter().map(|s| (*s).to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn happiness_is_a_maximum_matching() {
        assert_eq!(servers_of_happiness(&map(&[])), 0);
        assert_eq!(
            servers_of_happiness(&map(&[("0", &["a"]), ("1", &["a"]), ("2", &["a"])])),
            1
        );
        assert_eq!(
            servers_of_happiness(&map(&[("0", &["a", "b"]), ("1", &["a"])])),
            2,
            "share 0 moves to b so that share 1 can have a"
        );
        assert_eq!(
            servers_of_happiness(&map(&[("0", &["a"]), ("1", &["b"]), ("2", &["c"])])),
            3
        );
        assert_eq!(
            servers_of_happiness(&map(&[("0", &["b"]), ("1", &["b"]), ("2", &["c"])])),
            2
        );
    }
}

//! The set of byte ranges an immutable upload has received so far.
//!
//! Kept in a `BTreeMap` from start to end so that adding a range costs a logarithmic
//! search plus the ranges it merges, not a pass over every range: a client that
//! scatters tiny writes would otherwise make each write cost time linear in the writes
//! before it (quadratic in all). The number of disjoint ranges is bounded by the caller
//! (`uploads.rs`, [`MAX_PIECES`]).

use std::collections::BTreeMap;

/// Disjoint written pieces one upload may have at once. An in-order client has one;
/// Tahoe's and Swamp's clients never have more than a few. The bound keeps what a
/// client scattering one-byte writes can make the server hold (about 40 bytes per
/// piece) and compute (the `required` ranges answered to every write) small.
pub const MAX_PIECES: usize = 4096;

/// Disjoint, sorted, half-open ranges `[begin, end)`, merged when they touch.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct RangeSet(BTreeMap<u64, u64>);

impl RangeSet {
    /// Adds `[begin, end)`.
    pub fn insert(&mut self, begin: u64, end: u64) {
        if begin >= end {
            return;
        }
        let (mut begin, mut end) = (begin, end);
        // A range starting at or before `begin` that reaches it merges.
        if let Some((&b, &e)) = self.0.range(..=begin).next_back()
            && e >= begin
        {
            begin = b;
            end = end.max(e);
        }
        // Ranges starting inside `[begin, end]` merge.
        let inside: Vec<(u64, u64)> = self.0.range(begin..=end).map(|(&b, &e)| (b, e)).collect();
        for (b, e) in inside {
            self.0.remove(&b);
            end = end.max(e);
        }
        self.0.insert(begin, end);
    }

    /// Number of disjoint ranges.
    pub fn pieces(&self) -> usize {
        self.0.len()
    }

    /// How many disjoint ranges there would be after adding `[begin, end)`.
    pub fn pieces_after(&self, begin: u64, end: u64) -> usize {
        if begin >= end {
            return self.pieces();
        }
        let first = self
            .0
            .range(..=begin)
            .next_back()
            .map_or(begin, |(&b, _)| b);
        let merged = self
            .0
            .range(first..=end)
            .filter(|&(&b, &e)| b <= end && e >= begin)
            .count();
        self.pieces() + 1 - merged
    }

    /// The ranges that may overlap `[begin, end)`, in order.
    fn near(&self, begin: u64, end: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let first = self
            .0
            .range(..=begin)
            .next_back()
            .map_or(begin, |(&b, _)| b);
        self.0.range(first..end.max(first)).map(|(&b, &e)| (b, e))
    }

    /// The parts of `[begin, end)` already in the set.
    pub fn overlaps(&self, begin: u64, end: u64) -> Vec<(u64, u64)> {
        self.near(begin, end)
            .filter_map(|(b, e)| {
                let (ob, oe) = (b.max(begin), e.min(end));
                (ob < oe).then_some((ob, oe))
            })
            .collect()
    }

    /// The parts of `[0, size)` not in the set.
    pub fn missing(&self, size: u64) -> Vec<(u64, u64)> {
        self.gaps(0, size)
    }

    /// The parts of `[begin, end)` not in the set.
    pub fn gaps(&self, begin: u64, end: u64) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        let mut at = begin;
        for (b, e) in self.near(begin, end) {
            if e <= at {
                continue;
            }
            if b > at {
                out.push((at, b));
            }
            at = e;
            if at >= end {
                break;
            }
        }
        if at < end {
            out.push((at, end));
        }
        out
    }

    /// Whether every byte of `[begin, end)` is in the set.
    pub fn covers(&self, begin: u64, end: u64) -> bool {
        begin >= end
            || self
                .0
                .range(..=begin)
                .next_back()
                .is_some_and(|(_, &e)| end <= e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_reports_gaps() {
        let mut s = RangeSet::default();
        assert_eq!(s.missing(10), vec![(0, 10)]);
        s.insert(2, 4);
        s.insert(6, 8);
        assert_eq!(s.missing(10), vec![(0, 2), (4, 6), (8, 10)]);
        s.insert(4, 6);
        assert_eq!(
            s.0.iter().map(|(&b, &e)| (b, e)).collect::<Vec<_>>(),
            vec![(2, 8)]
        );
        assert_eq!(s.overlaps(0, 3), vec![(2, 3)]);
        s.insert(0, 2);
        s.insert(8, 10);
        assert!(s.missing(10).is_empty());
        assert_eq!(s.overlaps(20, 30), vec![]);
    }

    #[test]
    fn gaps_and_cover_of_a_window() {
        let mut s = RangeSet::default();
        s.insert(10, 20);
        s.insert(30, 40);
        assert_eq!(s.gaps(0, 50), vec![(0, 10), (20, 30), (40, 50)]);
        assert_eq!(s.gaps(15, 35), vec![(20, 30)]);
        assert_eq!(s.gaps(12, 18), vec![]);
        assert_eq!(s.gaps(20, 30), vec![(20, 30)]);
        assert_eq!(s.gaps(45, 45), vec![]);
        assert!(s.covers(10, 20) && s.covers(31, 39) && s.covers(5, 5));
        assert!(!s.covers(10, 21) && !s.covers(19, 31) && !s.covers(0, 1));
    }

    /// Against a model that keeps one flag per byte: any sequence of inserts gives the
    /// same gaps, overlaps and cover answers.
    #[test]
    fn agrees_with_a_byte_model() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for _ in 0..200 {
            let mut set = RangeSet::default();
            let mut model = [false; 64];
            for _ in 0..12 {
                let b = next(64);
                let e = b + next(64 - b + 1);
                set.insert(b, e);
                model[b as usize..e as usize].fill(true);
                let (qb, qe) = (next(64), next(65));
                let want_gaps: Vec<u64> = (qb..qe).filter(|&i| !model[i as usize]).collect();
                let got_gaps: Vec<u64> = set
                    .gaps(qb, qe)
                    .into_iter()
                    .flat_map(|(b, e)| b..e)
                    .collect();
                assert_eq!(got_gaps, want_gaps);
                let want_over: Vec<u64> = (qb..qe).filter(|&i| model[i as usize]).collect();
                let got_over: Vec<u64> = set
                    .overlaps(qb, qe)
                    .into_iter()
                    .flat_map(|(b, e)| b..e)
                    .collect();
                assert_eq!(got_over, want_over);
                assert_eq!(set.covers(qb, qe), want_gaps.is_empty());
                let (pb, pe) = (next(64), next(65));
                let mut probe = set.clone();
                probe.insert(pb, pe);
                assert_eq!(set.pieces_after(pb, pe), probe.pieces());
                let runs = (0..64)
                    .filter(|&i| model[i] && (i == 0 || !model[i - 1]))
                    .count();
                assert_eq!(set.pieces(), runs);
            }
        }
    }
}

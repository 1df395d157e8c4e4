//! The set of byte ranges an immutable upload has received so far.

/// Disjoint, sorted, half-open ranges `[begin, end)`, merged when they touch.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct RangeSet(Vec<(u64, u64)>);

impl RangeSet {
    /// Adds `[begin, end)`.
    pub fn insert(&mut self, begin: u64, end: u64) {
        if begin >= end {
            return;
        }
        let (mut begin, mut end) = (begin, end);
        let mut out = Vec::with_capacity(self.0.len() + 1);
        for &(b, e) in &self.0 {
            if e < begin || b > end {
                out.push((b, e));
            } else {
                begin = begin.min(b);
                end = end.max(e);
            }
        }
        out.push((begin, end));
        out.sort_unstable();
        self.0 = out;
    }

    /// The parts of `[begin, end)` already in the set.
    pub fn overlaps(&self, begin: u64, end: u64) -> Vec<(u64, u64)> {
        self.0
            .iter()
            .filter_map(|&(b, e)| {
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
        for &(b, e) in &self.0 {
            if e <= at {
                continue;
            }
            if b >= end {
                break;
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
        begin >= end || self.0.iter().any(|&(b, e)| b <= begin && end <= e)
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
        assert_eq!(s.0, vec![(2, 8)]);
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
}

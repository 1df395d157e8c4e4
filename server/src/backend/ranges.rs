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
        let mut out = Vec::new();
        let mut at = 0;
        for &(b, e) in &self.0 {
            if b > at {
                out.push((at, b.min(size)));
            }
            at = at.max(e);
            if at >= size {
                break;
            }
        }
        if at < size {
            out.push((at, size));
        }
        out.retain(|(b, e)| b < e);
        out
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
}

//! Tahoe's deep-stats: counts and sizes of what a tree holds, with a histogram of
//! file sizes in buckets two per decade. The JSON keys, their order, and which
//! sizes are known (a mutable file's is not: Tahoe would have to read it) are
//! Tahoe's, so `tahoe stats` and programs reading `t=start-deep-stats` see the same
//! numbers from either node.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use swamp_formats::cap::Cap;

/// Tahoe's deep-stats JSON version.
const API_VERSION: u64 = 1;

/// The counters, in the order Tahoe reports them.
const KEYS: [&str; 13] = [
    "count-immutable-files",
    "count-mutable-files",
    "count-literal-files",
    "count-files",
    "count-directories",
    "count-unknown",
    "size-immutable-files",
    "size-literal-files",
    "size-directories",
    "largest-directory",
    "largest-directory-children",
    "largest-immutable-file",
    // Not a Tahoe key: kept last so Tahoe's keys read as Tahoe's.
    "",
];

/// Deep-stats of a walk so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeepStats {
    counters: BTreeMap<&'static str, u64>,
    /// File sizes by bucket (its lower bound, its upper bound).
    histogram: BTreeMap<(u64, u64), u64>,
}

impl DeepStats {
    /// Counts one object of the tree.
    pub(crate) fn add_node(&mut self, cap: &Cap) {
        match cap {
            Cap::Dir(_) => self.add("count-directories", 1),
            Cap::Mutable(_) => {
                self.add("count-files", 1);
                self.add("count-mutable-files", 1);
            }
            Cap::Chk(chk) => {
                self.add("count-files", 1);
                self.histogram(chk.size);
                self.add("count-immutable-files", 1);
                self.add("size-immutable-files", chk.size);
                self.max("largest-immutable-file", chk.size);
            }
            Cap::Lit(data) => {
                let size = data.len() as u64;
                self.add("count-files", 1);
                self.histogram(size);
                self.add("count-literal-files", 1);
                self.add("size-literal-files", size);
            }
            _ => self.add("count-unknown", 1),
        }
    }

    /// Counts a directory's own size (its serialized contents) and its children.
    pub(crate) fn enter_directory(&mut self, size: u64, children: usize) {
        self.add("size-directories", size);
        self.max("largest-directory", size);
        self.max("largest-directory-children", children as u64);
    }

    fn add(&mut self, key: &'static str, value: u64) {
        let counter = self.counters.entry(key).or_default();
        *counter = counter.saturating_add(value);
    }

    fn max(&mut self, key: &'static str, value: u64) {
        let counter = self.counters.entry(key).or_default();
        *counter = (*counter).max(value);
    }

    fn histogram(&mut self, size: u64) {
        *self.histogram.entry(bucket(size)).or_default() += 1;
    }

    /// A counter by its Tahoe name (0 when nothing was counted).
    pub fn get(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    /// The file-size histogram: (smallest, largest, how many), smallest first.
    pub fn size_histogram(&self) -> Vec<(u64, u64, u64)> {
        self.histogram
            .iter()
            .map(|(&(low, high), &count)| (low, high, count))
            .collect()
    }

    /// Tahoe's JSON: `api-version`, every counter, `size-files-histogram`.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("api-version".into(), json!(API_VERSION));
        for key in KEYS.iter().filter(|k| !k.is_empty()) {
            out.insert((*key).into(), json!(self.get(key)));
        }
        let histogram: Vec<Value> = self
            .size_histogram()
            .into_iter()
            .map(|(low, high, count)| json!([low, high, count]))
            .collect();
        out.insert("size-files-histogram".into(), Value::Array(histogram));
        Value::Object(out)
    }
}

/// The bucket `size` falls in: (0,0), (1,3), (4,10), (11,31), (32,100), ... two per
/// decade, each upper bound the first power of √10 (computed by repeated floating
/// multiplication, as Tahoe does, so the bounds are the same to the byte) not below
/// the lower one.
pub(crate) fn bucket(size: u64) -> (u64, u64) {
    if size == 0 {
        return (0, 0);
    }
    let root = 10f64.sqrt();
    let mut low = 1u64;
    let mut high = 3u64;
    while size > high {
        low = high + 1;
        let mut power = 1f64;
        #[allow(clippy::cast_precision_loss)]
        while power < low as f64 {
            power *= root;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let next = power as u64;
        high = next.max(low);
    }
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_tahoes() {
        // Tahoe 1.20's DeepStats.which_bucket, computed with its own code.
        let tahoe = [
            (0, 0),
            (1, 3),
            (4, 10),
            (11, 31),
            (32, 100),
            (101, 316),
            (317, 1000),
            (1001, 3162),
            (3163, 10000),
            (10001, 31622),
            (31623, 100_000),
            (100_001, 316_227),
            (316_228, 1_000_000),
            (1_000_000_001, 3_162_277_660),
            (316_227_766_017, 1_000_000_000_000),
            (316_227_766_016_839, 1_000_000_000_000_002),
            (1_000_000_000_000_003, 3_162_277_660_168_386),
        ];
        for (low, high) in tahoe {
            assert_eq!(bucket(low), (low, high), "{low}");
            assert_eq!(bucket(high), (low, high), "{high}");
        }
        assert_eq!(bucket(u64::MAX).1, u64::MAX);
    }

    #[test]
    fn json_keys_are_in_tahoes_order() {
        let mut stats = DeepStats::default();
        stats.add_node(&Cap::Lit(b"hello".to_vec()));
        stats.enter_directory(300, 2);
        let json = stats.to_json();
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys.first().map(|k| k.as_str()), Some("api-version"));
        assert_eq!(
            keys.last().map(|k| k.as_str()),
            Some("size-files-histogram")
        );
        assert_eq!(json["count-literal-files"], 1);
        assert_eq!(json["size-literal-files"], 5);
        assert_eq!(json["largest-directory-children"], 2);
        assert_eq!(json["size-files-histogram"], json!([[4, 10, 1]]));
    }
}

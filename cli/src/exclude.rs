//! `tahoe backup --exclude` patterns: shell globs matched against each file or
//! directory name (not the path), as Python's `fnmatch` matches them for Tahoe:
//! `*` any run of characters, `?` one character, `[abc]`, `[a-z]` and `[!abc]` one
//! of (or none of) a set; everything else stands for itself, letter case included.
//! A `[` without its `]` is an ordinary character.

/// The names Tahoe's `--exclude-vcs` leaves out.
pub const VCS_PATTERNS: &[&str] = &[
    "CVS",
    "RCS",
    "SCCS",
    ".git",
    ".gitignore",
    ".cvsignore",
    ".svn",
    ".arch-ids",
    "{arch}",
    "=RELEASE-ID",
    "=meta-update",
    "=update",
    ".bzr",
    ".bzrignore",
    ".bzrtags",
    ".hg",
    ".hgignore",
    "_darcs",
];

/// Whether `name` matches any of `patterns`.
pub fn excluded(patterns: &[String], name: &str) -> bool {
    let name: Vec<char> = name.chars().collect();
    patterns.iter().any(|p| {
        let pattern: Vec<char> = p.chars().collect();
        matches(&pattern, &name)
    })
}

/// A `[...]` set: whether it is negated, and its ranges (a single character is a
/// range of one).
struct Set {
    negated: bool,
    ranges: Vec<(char, char)>,
}

/// The set starting at `pattern[0] == '['`, and the pattern after it; `None` when
/// it has no closing `]`.
fn set(pattern: &[char]) -> Option<(Set, &[char])> {
    let mut i = 1;
    let negated = pattern.get(i) == Some(&'!');
    if negated {
        i += 1;
    }
    let start = i;
    let mut ranges = Vec::new();
    loop {
        let c = *pattern.get(i)?;
        if c == ']' && i > start {
            return Some((Set { negated, ranges }, &pattern[i + 1..]));
        }
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            ranges.push((c, pattern[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

fn matches(pattern: &[char], name: &[char]) -> bool {
    match pattern.first() {
        None => name.is_empty(),
        Some('*') => (0..=name.len()).any(|skip| matches(&pattern[1..], &name[skip..])),
        Some('?') => !name.is_empty() && matches(&pattern[1..], &name[1..]),
        Some('[') => match set(pattern) {
            Some((set, rest)) => name.first().is_some_and(|c| {
                let inside = set.ranges.iter().any(|(lo, hi)| lo <= c && c <= hi);
                inside != set.negated && matches(rest, &name[1..])
            }),
            None => name.first() == Some(&'[') && matches(&pattern[1..], &name[1..]),
        },
        Some(c) => name.first() == Some(c) && matches(&pattern[1..], &name[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(pattern: &str, name: &str) -> bool {
        excluded(&[pattern.to_string()], name)
    }

    #[test]
    fn globs_match_as_fnmatch_does() {
        assert!(one("*.tmp", "a.tmp"));
        assert!(!one("*.tmp", "a.tmp~"));
        assert!(one("*", ""));
        assert!(one("a?c", "abc"));
        assert!(!one("a?c", "ac"));
        assert!(one("[ab]x", "bx"));
        assert!(!one("[!ab]x", "bx"));
        assert!(one("[a-c]", "b"));
        assert!(one("[]]", "]"));
        assert!(one("[!]]", "a"));
        assert!(one("a[", "a["));
        assert!(!one("A*", "a"));
        assert!(one("{arch}", "{arch}"));
        assert!(excluded(
            &VCS_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            ".git"
        ));
    }
}

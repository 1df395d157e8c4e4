//! The subset of Python's `configparser` that `tahoe.cfg` uses: `[section]` headers,
//! `key = value` (or `key: value`) lines, `#`/`;` comments, and indented continuation
//! lines. Keys are case-insensitive, as in Python.

use std::collections::BTreeMap;

/// Sections of key/value pairs, in file order of first appearance.
#[derive(Clone, Default, Debug, PartialEq, Eq)]
pub struct Ini {
    sections: BTreeMap<String, BTreeMap<String, String>>,
}

impl Ini {
    /// Parses INI text.
    ///
    /// # Errors
    /// A message with the line number for a line outside a section or without `=`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ini = Self::default();
        let mut section: Option<String> = None;
        let mut last_key: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
                continue;
            }
            if raw.starts_with([' ', '\t'])
                && let (Some(s), Some(k)) = (&section, &last_key)
            {
                let value = ini
                    .sections
                    .entry(s.clone())
                    .or_default()
                    .entry(k.clone())
                    .or_default();
                value.push('\n');
                value.push_str(trimmed);
                continue;
            }
            if let Some(name) = trimmed.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
                let name = name.trim().to_string();
                ini.sections.entry(name.clone()).or_default();
                section = Some(name);
                last_key = None;
                continue;
            }
            let Some(s) = &section else {
                return Err(format!("line {line_no}: setting outside any [section]"));
            };
            let split = trimmed
                .find(['=', ':'])
                .ok_or_else(|| format!("line {line_no}: expected 'key = value'"))?;
            let key = trimmed[..split].trim().to_ascii_lowercase();
            let value = trimmed[split + 1..].trim().to_string();
            ini.sections
                .entry(s.clone())
                .or_default()
                .insert(key.clone(), value);
            last_key = Some(key);
        }
        Ok(ini)
    }

    /// The value of `key` in `section`, if set.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key).map(String::as_str)
    }

    /// Sets a value.
    pub fn set(&mut self, section: &str, key: &str, value: impl Into<String>) {
        self.sections
            .entry(section.to_string())
            .or_default()
            .insert(key.to_ascii_lowercase(), value.into());
    }

    /// The keys set in `section`.
    pub fn keys(&self, section: &str) -> Vec<&str> {
        self.sections
            .get(section)
            .map(|s| s.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tahoe_cfg() {
        let ini = Ini::parse(
            "# comment\n[node]\nnickname = s1\ntub.port = tcp:3457:interface=127.0.0.1\n\n[storage]\nenabled = true\nreserved_space: 1G\n",
        )
        .unwrap();
        assert_eq!(
            ini.get("node", "tub.port"),
            Some("tcp:3457:interface=127.0.0.1")
        );
        assert_eq!(ini.get("storage", "reserved_space"), Some("1G"));
        assert_eq!(ini.get("storage", "missing"), None);
        assert!(Ini::parse("key = value\n").is_err());
    }
}

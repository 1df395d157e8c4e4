//! Indented JSON as Python's `json.dumps(value, indent=N)` writes it (`","` at line
//! ends, `": "`, non-ASCII characters escaped), where Tahoe's CLI prints JSON that
//! Tahoe's web API wrote so (`check --raw`, `stats --raw`, `list-aliases --json`).
//! One-line JSON is [`swamp_formats::pyjson::dumps`].

use serde::Serialize;
use serde_json::Value;

/// `json.dumps(value, indent=indent)`.
pub fn indented(value: &Value, indent: usize) -> String {
    let mut out = Vec::new();
    let spaces = vec![b' '; indent];
    let formatter = serde_json::ser::PrettyFormatter::with_indent(&spaces);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    value
        .serialize(&mut ser)
        .expect("invariant: a JSON value serialises");
    ascii(&String::from_utf8(out).expect("invariant: serde_json writes UTF-8"))
}

/// Non-ASCII characters as `\uXXXX` (UTF-16 units), as `ensure_ascii` writes them.
fn ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indented_as_python() {
        let value = serde_json::json!({"a": [1, {"b": "é"}], "c": {}});
        assert_eq!(
            indented(&value, 1),
            "{\n \"a\": [\n  1,\n  {\n   \"b\": \"\\u00e9\"\n  }\n ],\n \"c\": {}\n}"
        );
    }
}

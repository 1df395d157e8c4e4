//! JSON written the way Python's `json.dumps` writes it by default: `", "` between
//! items, `": "` after keys, and every character outside printable ASCII escaped
//! (`ensure_ascii`), non-BMP ones as UTF-16 surrogate pairs.
//!
//! Tahoe's streamed answers (`t=stream-manifest`, `t=stream-deep-check`) are one
//! `json.dumps` per line, and its CLI prints them verbatim with `--raw`. Programs
//! that compare the bytes, or split on the separators, see the same text from a
//! Swamp node only if it is written the same way.

use std::io;

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// Python's default `json.dumps` separators and escaping.
struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        for c in fragment.chars() {
            if (' '..='~').contains(&c) {
                writer.write_all(&[c as u8])?;
            } else {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        escape: CharEscape,
    ) -> io::Result<()> {
        let text: &[u8] = match escape {
            CharEscape::Quote => b"\\\"",
            CharEscape::ReverseSolidus => b"\\\\",
            CharEscape::Solidus => b"/",
            CharEscape::Backspace => b"\\b",
            CharEscape::FormFeed => b"\\f",
            CharEscape::LineFeed => b"\\n",
            CharEscape::CarriageReturn => b"\\r",
            CharEscape::Tab => b"\\t",
            CharEscape::AsciiControl(byte) => return write!(writer, "\\u{byte:04x}"),
        };
        writer.write_all(text)
    }
}

/// `json.dumps(value)`, as Python writes it.
pub fn dumps(value: &Value) -> String {
    let mut out = Vec::new();
    let mut serializer = Serializer::with_formatter(&mut out, PythonFormatter);
    // Writing a Value into a Vec cannot fail, and the formatter writes only ASCII.
    if value.serialize(&mut serializer).is_err() {
        return "null".into();
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn writes_what_python_writes() {
        // Each expected string is Python 3's json.dumps of the same value.
        let value =
            json!({"path": ["a", "é", "😀"], "n": 1, "e": [], "o": {}, "c": "\u{7f}\u{1}\t\"\\/"});
        assert_eq!(
            dumps(&value),
            r#"{"path": ["a", "\u00e9", "\ud83d\ude00"], "n": 1, "e": [], "o": {}, "c": "\u007f\u0001\t\"\\/"}"#
        );
    }
}

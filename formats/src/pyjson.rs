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
use serde_json::ser::{CharEscape, Formatter, Serializer};

/// Python's `json.dumps` separators and escaping; with `indent`, its layout for
/// `indent=N` (items on their own lines, `","` then a newline between them, and
/// empty arrays and objects as `[]` and `{}`).
struct PythonFormatter {
    indent: Option<usize>,
    depth: usize,
    /// Whether the array or object being written has had an item (so its end goes
    /// on a line of its own).
    has_value: bool,
}

impl PythonFormatter {
    fn newline<W: ?Sized + io::Write>(&self, writer: &mut W) -> io::Result<()> {
        if let Some(indent) = self.indent {
            const SPACES: &[u8; 64] = &[b' '; 64];
            writer.write_all(b"\n")?;
            let mut left = indent * self.depth;
            while left > 0 {
                let n = left.min(SPACES.len());
                writer.write_all(&SPACES[..n])?;
                left -= n;
            }
        }
        Ok(())
    }

    fn separator<W: ?Sized + io::Write>(&self, writer: &mut W, first: bool) -> io::Result<()> {
        if !first {
            writer.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(writer)
    }

    fn begin<W: ?Sized + io::Write>(&mut self, writer: &mut W, open: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        writer.write_all(open)
    }

    fn end<W: ?Sized + io::Write>(&mut self, writer: &mut W, close: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            self.newline(writer)?;
        }
        self.has_value = true;
        writer.write_all(close)
    }
}

impl Formatter for PythonFormatter {
    fn begin_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.begin(writer, b"[")
    }

    fn end_array<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"]")
    }

    fn begin_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.begin(writer, b"{")
    }

    fn end_object<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.end(writer, b"}")
    }

    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(writer, first)
    }

    fn end_array_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.separator(writer, first)
    }

    fn end_object_value<W: ?Sized + io::Write>(&mut self, _writer: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        // Printable ASCII passes in runs; anything else is escaped on its own.
        let mut rest = fragment;
        while let Some(at) = rest.find(|c: char| !(' '..='~').contains(&c)) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or(' ');
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())?;
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
pub fn dumps(value: &(impl Serialize + ?Sized)) -> String {
    write(value, None)
}

/// `json.dumps(value, indent=indent)`, as Python writes it (what Tahoe's web API
/// answers with `indent=1`).
pub fn dumps_indented(value: &(impl Serialize + ?Sized), indent: usize) -> String {
    write(value, Some(indent))
}

fn write(value: &(impl Serialize + ?Sized), indent: Option<usize>) -> String {
    let mut out = Vec::new();
    let formatter = PythonFormatter {
        indent,
        depth: 0,
        has_value: false,
    };
    let mut serializer = Serializer::with_formatter(&mut out, formatter);
    // Writing into a Vec cannot fail (nor can JSON values or our listings), and the
    // formatter writes only ASCII.
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
        // json.dumps(value, indent=1)
        let nested = json!(["dirnode", {"children": {"ü": ["filenode", {"size": 3, "e": {}, "l": []}]}, "mutable": true}]);
        assert_eq!(
            dumps_indented(&nested, 1),
            "[\n \"dirnode\",\n {\n  \"children\": {\n   \"\\u00fc\": [\n    \"filenode\",\n    {\n     \"size\": 3,\n     \"e\": {},\n     \"l\": []\n    }\n   ]\n  },\n  \"mutable\": true\n }\n]"
        );
    }
}

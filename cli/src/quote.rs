//! Names and paths in messages, quoted as Tahoe's CLI quotes them (`quote_output` in
//! `util/encodingutil.py`), so that a script matching Tahoe's messages matches ours.
//!
//! Text of printable characters is shown as is, in single quotes when asked for;
//! text with anything else (control characters, a `'`, characters Tahoe counts as
//! unprintable) is put in double quotes with those characters escaped
//! (`\x..`, `\u....`, `\U........`, and `\` before `"`, `$`, `` ` `` and `\`).

/// Whether `c` may stand for itself (Tahoe's `MUST_DOUBLE_QUOTE` complement; a
/// newline only when newlines are not quoted).
fn plain(c: char, quote_newlines: bool) -> bool {
    matches!(c, '\x20'..='\x26' | '\x28'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffc}')
        || (c == '\n' && !quote_newlines)
}

/// Whether `c` stays unescaped inside double quotes (`ESCAPABLE_UNICODE`'s complement).
fn unescaped(c: char) -> bool {
    matches!(c, ' ' | '!' | '#' | '\x25'..='\x5b' | '\x5d'..='\x5f' | '\x61'..='\x7e' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fdcf}' | '\u{fdf0}'..='\u{fffc}')
}

/// Tahoe's `quote_output(s, quotemarks)` (newlines quoted exactly when `quotemarks`).
pub fn quote(s: &str, quotemarks: bool) -> String {
    quote_with(s, quotemarks, quotemarks)
}

/// Tahoe's `quote_output(s, quotemarks, quote_newlines)`.
pub fn quote_with(s: &str, quotemarks: bool, quote_newlines: bool) -> String {
    if s.chars().all(|c| plain(c, quote_newlines)) {
        return if quotemarks || s.starts_with('"') {
            format!("'{s}'")
        } else {
            s.to_string()
        };
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '$' | '`' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' if !quote_newlines => out.push(c),
            c if unescaped(c) => out.push(c),
            c if u32::from(c) > 0xffff => out.push_str(&format!("\\U{:08x}", u32::from(c))),
            c if u32::from(c) > 0xff => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push_str(&format!("\\x{:02x}", u32::from(c))),
        }
    }
    out.push('"');
    out
}

/// Tahoe's `quote_path(path, quotemarks)`: the names joined with `/`, newlines quoted.
pub fn quote_path(path: &[String], quotemarks: bool) -> String {
    quote_with(&path.join("/"), quotemarks, true)
}

/// Tahoe's `quote_local_unicode_path(path)`: a local path in single quotes (double
/// quotes and escapes when it needs them). A name that is not UTF-8 is shown lossily.
pub fn quote_local(path: &std::path::Path) -> String {
    quote_with(&path.to_string_lossy(), true, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_tahoe_does() {
        assert_eq!(quote("work", true), "'work'");
        assert_eq!(quote("work", false), "work");
        assert_eq!(quote("ünï ☂", true), "'ünï ☂'");
        assert_eq!(quote("it's", true), "\"it's\"");
        assert_eq!(quote("a\nb", true), "\"a\\x0ab\"");
        assert_eq!(quote("a\nb", false), "a\nb");
        assert_eq!(quote("\"x\" $y", false), "'\"x\" $y'");
        assert_eq!(quote("tab\there", false), "\"tab\\x09here\"");
        assert_eq!(quote("😀'", true), "\"\\U0001f600'\"");
        assert_eq!(
            quote_path(&["a".into(), "b c".into()], false),
            "a/b c".to_string()
        );
    }
}

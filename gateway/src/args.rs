//! Query arguments, read as Tahoe reads them (`get_arg`, `boolean_of_arg`,
//! `parse_replace_arg`, `get_format` in `web/common.py`): the first value of a name
//! wins, `t=` is stripped of spaces, booleans are `true|t|1|on` and
//! `false|f|0|off` in any case, anything else is a 400.

use swamp_client::dir_edit::Replace;
use swamp_formats::cap::MutableFormat;
use swamp_formats::mutable_key::MutableKey;

use crate::error::WebError;

/// Bytes of query string read at most (longer ones are refused, not truncated).
pub(crate) const MAX_QUERY: usize = 64 * 1024;

/// A request's query arguments.
pub(crate) struct Args(Vec<(String, String)>);

/// A file format (`format=`, or `mutable=true`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Format {
    /// Immutable.
    Chk,
    /// Mutable.
    Mutable(MutableFormat),
}

impl Args {
    /// Parses a query string (`None`: no arguments).
    pub(crate) fn parse(query: Option<&str>) -> Result<Self, WebError> {
        let query = query.unwrap_or("");
        if query.len() > MAX_QUERY {
            return Err(WebError::bad(format!(
                "query string longer than {MAX_QUERY} bytes"
            )));
        }
        Ok(Self(
            form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        ))
    }

    /// These arguments followed by an HTML form's fields: as in Tahoe's `get_arg`,
    /// a name in the query wins over the same name in the form.
    pub(crate) fn with_fields(mut self, fields: Vec<(String, String)>) -> Self {
        self.0.extend(fields);
        self
    }

    /// The first value of `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `t=`, stripped ("" when absent).
    pub(crate) fn t(&self) -> &str {
        self.get("t").map_or("", str::trim)
    }

    /// Every argument but `name`, in order (for redirects).
    pub(crate) fn without(&self, name: &str) -> impl Iterator<Item = &(String, String)> {
        self.0.iter().filter(move |(k, _)| k != name)
    }

    /// A boolean argument, `default` when absent.
    pub(crate) fn boolean(&self, name: &str, default: bool) -> Result<bool, WebError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => boolean(v),
        }
    }

    /// `replace=` (default true): `true`, `false` or `only-files`.
    pub(crate) fn replace(&self) -> Result<Replace, WebError> {
        match self.get("replace") {
            None => Ok(Replace::Always),
            Some(v) if v.eq_ignore_ascii_case("only-files") => Ok(Replace::OnlyFiles),
            Some(v) => match boolean(v) {
                Ok(true) => Ok(Replace::Always),
                Ok(false) => Ok(Replace::Never),
                Err(_) => Err(WebError::bad(format!("invalid replace= argument: {v:?}"))),
            },
        }
    }

    /// `format=` (or `mutable=true`, which means SDMF); `default` when neither.
    pub(crate) fn format(&self, default: Option<Format>) -> Result<Option<Format>, WebError> {
        match self.get("format").filter(|f| !f.is_empty()) {
            None => Ok(if self.boolean("mutable", false)? {
                Some(Format::Mutable(MutableFormat::Sdmf))
            } else {
                default
            }),
            Some(f) if f.eq_ignore_ascii_case("CHK") => Ok(Some(Format::Chk)),
            Some(f) if f.eq_ignore_ascii_case("SDMF") => {
                Ok(Some(Format::Mutable(MutableFormat::Sdmf)))
            }
            Some(f) if f.eq_ignore_ascii_case("MDMF") => {
                Ok(Some(Format::Mutable(MutableFormat::Mdmf)))
            }
            Some(f) => Err(WebError::bad(format!(
                "Unknown format: {f}, I know CHK, SDMF, MDMF"
            ))),
        }
    }

    /// `private-key=`: the signing key a new mutable directory is to have
    /// (urlsafe base64 of its DER, padded or not), as GridSync sends it.
    pub(crate) fn private_key(&self) -> Result<Option<MutableKey>, WebError> {
        let Some(text) = self.get("private-key") else {
            return Ok(None);
        };
        let der = data_encoding::BASE64URL_NOPAD
            .decode(text.trim().trim_end_matches('=').as_bytes())
            .map_err(|_| WebError::bad("private-key= is not urlsafe base64"))?;
        MutableKey::from_pkcs8_der(&der)
            .map(Some)
            .map_err(|e| WebError::bad(format!("private-key=: {e}")))
    }

    /// The mutable format a new directory gets (`format=`; SDMF when absent).
    pub(crate) fn dir_format(&self) -> Result<MutableFormat, WebError> {
        match self.format(None)? {
            None => Ok(MutableFormat::Sdmf),
            Some(Format::Mutable(f)) => Ok(f),
            Some(Format::Chk) => Err(WebError::bad(
                "format=CHK not accepted for a mutable directory",
            )),
        }
    }
}

fn boolean(v: &str) -> Result<bool, WebError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "on" => Ok(true),
        "false" | "f" | "0" | "off" => Ok(false),
        _ => Err(WebError::bad(format!("invalid boolean argument: {v:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_read_as_tahoe_reads_them() {
        let args = Args::parse(Some("t=%20json%20&replace=ONLY-FILES&x=1&x=2&mutable=on"))
            .expect("parses");
        assert_eq!(args.t(), "json");
        assert_eq!(args.get("x"), Some("1"));
        assert_eq!(args.replace().expect("replace"), Replace::OnlyFiles);
        assert_eq!(
            args.format(Some(Format::Chk)).expect("format"),
            Some(Format::Mutable(MutableFormat::Sdmf))
        );
        let bad = Args::parse(Some("replace=maybe&format=zip")).expect("parses");
        assert!(bad.replace().is_err());
        assert!(bad.format(None).is_err());
        assert!(Args::parse(Some(&"a".repeat(MAX_QUERY + 1))).is_err());
        assert_eq!(
            Args::parse(Some("replace=false"))
                .expect("parses")
                .replace()
                .expect("replace"),
            Replace::Never
        );
    }
}

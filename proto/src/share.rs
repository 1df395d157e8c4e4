//! Share numbers.

use std::fmt;
use std::str::FromStr;

use crate::DecodeError;

/// Which of a file's erasure-coded shares this is.
///
/// Tahoe encodes at most 256 shares (zfec's limit), so share numbers are 0 to 255. A
/// larger number in a URL matches no share; in a request body it is a schema error.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ShareNumber(u8);

impl ShareNumber {
    /// Wraps a share number.
    pub const fn new(n: u8) -> Self {
        Self(n)
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }
}

impl From<u8> for ShareNumber {
    fn from(n: u8) -> Self {
        Self(n)
    }
}

impl TryFrom<u64> for ShareNumber {
    type Error = DecodeError;

    fn try_from(n: u64) -> Result<Self, Self::Error> {
        u8::try_from(n)
            .map(Self)
            .map_err(|_| DecodeError::Invalid(format!("share number {n} is out of range 0-255")))
    }
}

impl FromStr for ShareNumber {
    type Err = DecodeError;

    /// Parses the decimal form of a URL path segment or share file name (digits only).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::Invalid(format!(
                "share number {s:?} is not a decimal number"
            )));
        }
        let n: u64 = s
            .parse()
            .map_err(|_| DecodeError::Invalid(format!("share number {s:?} is out of range")))?;
        Self::try_from(n)
    }
}

impl fmt::Display for ShareNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_decimal_only() {
        assert_eq!("7".parse::<ShareNumber>().unwrap(), ShareNumber::new(7));
        assert_eq!("007".parse::<ShareNumber>().unwrap(), ShareNumber::new(7));
        assert!("255".parse::<ShareNumber>().is_ok());
        assert!("256".parse::<ShareNumber>().is_err());
        assert!("-1".parse::<ShareNumber>().is_err());
        assert!("+1".parse::<ShareNumber>().is_err());
        assert!("".parse::<ShareNumber>().is_err());
        assert!("1a".parse::<ShareNumber>().is_err());
    }
}

//! Parsers for Tahoe's setting values: sizes, durations, dates, booleans, ports and
//! location hints. Each error names what was expected.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::backend::advisory::civil_from_days;

/// Tahoe's `parse_abbreviated_size`: `1000`, `10k`, `5MB`, `2GiB` (k = 1000, Ki = 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let upper = s.trim().to_ascii_uppercase();
    let digits_end = upper
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(upper.len());
    let (number, suffix) = upper.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 500M or 2GiB"))?;
    let suffix = suffix.strip_suffix('B').unwrap_or(suffix);
    let multiplier: u64 = match suffix {
        "" | "I" => 1,
        "K" => 1000,
        "M" => 1000u64.pow(2),
        "G" => 1000u64.pow(3),
        "T" => 1000u64.pow(4),
        "P" => 1000u64.pow(5),
        "E" => 1000u64.pow(6),
        "KI" => 1 << 10,
        "MI" => 1 << 20,
        "GI" => 1 << 30,
        "TI" => 1 << 40,
        "PI" => 1 << 50,
        "EI" => 1 << 60,
        _ => return Err(format!("{s:?} is not a size like 500M or 2GiB")),
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("{s:?} is too large"))
}

/// Tahoe's `parse_duration`: `60 days`, `2 months`, `1 year` (a month is 31 days).
pub fn parse_duration(s: &str) -> Result<u64, String> {
    const DAY: u64 = 86_400;
    let t = s.trim();
    let t = t.strip_suffix('s').unwrap_or(t);
    let (rest, unit) = if let Some(r) = t.strip_suffix("day") {
        (r, DAY)
    } else if let Some(r) = t.strip_suffix("month") {
        (r, 31 * DAY)
    } else if let Some(r) = t.strip_suffix("mo") {
        (r, 31 * DAY)
    } else if let Some(r) = t.strip_suffix("year") {
        (r, 365 * DAY)
    } else {
        return Err(format!("no unit (like day, month, or year) in {s:?}"));
    };
    let n: u64 = rest
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like '60 days'"))?;
    Ok(n * unit)
}

/// `YYYY-MM-DD` to the Unix time of that day's UTC midnight.
pub fn parse_date(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a date like 2026-01-31");
    let parts: Vec<&str> = s.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, u32, u32) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    // Find the day number by inverting civil_from_days around an estimate.
    let estimate = (y - 1970) * 365 + (y - 1969) / 4;
    for z in estimate - 400..estimate + 400 {
        if civil_from_days(z) == (y, m, d) {
            return u64::try_from(z * 86_400).map_err(|_| bad());
        }
    }
    Err(bad())
}

/// Python-style booleans as Tahoe accepts them.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{s:?} is not a boolean (true or false)")),
    }
}

/// A Twisted server endpoint as `tub.port` holds it: `tcp:3457`,
/// `tcp:port=3457:interface=127.0.0.1`, or a bare port number. `None` for `disabled`.
pub fn parse_port(s: &str) -> Result<Option<SocketAddr>, String> {
    let s = s.trim();
    if s == "disabled" {
        return Ok(None);
    }
    if let Ok(port) = s.parse::<u16>() {
        return Ok(Some(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )));
    }
    let mut fields = s.split(':');
    if fields.next() != Some("tcp") {
        return Err(format!(
            "{s:?} is not a TCP endpoint like tcp:3457:interface=127.0.0.1"
        ));
    }
    let mut port = None;
    let mut interface: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    for field in fields {
        if let Some(v) = field.strip_prefix("port=") {
            port = Some(v);
        } else if let Some(v) = field.strip_prefix("interface=") {
            interface = v
                .trim_matches(['[', ']'])
                .parse()
                .map_err(|_| format!("interface {v:?} in {s:?} is not an IP address"))?;
        } else if !field.contains('=') && port.is_none() {
            port = Some(field);
        } else {
            return Err(format!("unsupported option {field:?} in {s:?}"));
        }
    }
    let port: u16 = port
        .ok_or_else(|| format!("no port in {s:?}"))?
        .parse()
        .map_err(|_| format!("port in {s:?} is not a number 0-65535"))?;
    Ok(Some(SocketAddr::new(interface, port)))
}

/// A connection hint from `tub.location`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocationHint {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

/// The `tcp:HOST:PORT` hints of a `tub.location` (other kinds, like `tor:`, are kept
/// out of NURLs: Swamp serves TCP only).
pub fn parse_location(s: &str) -> Result<Vec<LocationHint>, String> {
    let mut out = Vec::new();
    for hint in s.split(',').map(str::trim).filter(|h| !h.is_empty()) {
        let Some(rest) = hint.strip_prefix("tcp:") else {
            continue;
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("location hint {hint:?} is not tcp:HOST:PORT"))?;
        let port = port
            .parse()
            .map_err(|_| format!("port in location hint {hint:?} is not a number"))?;
        out.push(LocationHint {
            host: host.trim_matches(['[', ']']).to_string(),
            port,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_tahoe() {
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("10k").unwrap(), 10_000);
        assert_eq!(parse_size("5MB").unwrap(), 5_000_000);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("1Ki").unwrap(), 1024);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("1X").is_err());
    }

    #[test]
    fn durations_and_dates() {
        assert_eq!(parse_duration("60 days").unwrap(), 60 * 86_400);
        assert_eq!(parse_duration("2 months").unwrap(), 62 * 86_400);
        assert!(parse_duration("60").is_err());
        assert_eq!(parse_date("1970-01-02").unwrap(), 86_400);
        assert_eq!(parse_date("2023-11-14").unwrap(), 1_699_920_000);
        assert!(parse_date("2023-13-01").is_err());
    }

    #[test]
    fn ports_and_locations() {
        assert_eq!(
            parse_port("tcp:3457:interface=127.0.0.1").unwrap(),
            Some("127.0.0.1:3457".parse().unwrap())
        );
        assert_eq!(
            parse_port("tcp:port=80").unwrap(),
            Some("0.0.0.0:80".parse().unwrap())
        );
        assert_eq!(parse_port("disabled").unwrap(), None);
        assert!(parse_port("unix:/tmp/x").is_err());
        let hints = parse_location("tcp:127.0.0.1:3457,tor:abc.onion:80").unwrap();
        assert_eq!(
            hints,
            vec![LocationHint {
                host: "127.0.0.1".into(),
                port: 3457
            }]
        );
    }
}

//! Corruption advisories, written where and as Tahoe writes them:
//! `storage/corruption-advisories/<UTC time, colons removed>--<si>-<shnum>`.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use swamp_proto::v1::ShareKind;
use swamp_proto::{ShareNumber, StorageIndex};

use super::error::{IoContext, StorageError};

/// Writes one advisory file.
///
/// # Errors
/// [`StorageError::Io`] if the file cannot be written.
pub fn write(
    dir: &Path,
    kind: ShareKind,
    si: &StorageIndex,
    shnum: ShareNumber,
    reason: &str,
    now: SystemTime,
) -> Result<(), StorageError> {
    let name = format!("{}--{si}-{shnum}", iso_utc(now)).replace(':', "");
    let report = format!(
        "report: Share Corruption\ntype: {}\nstorage_index: {si}\nshare_number: {shnum}\n\n{reason}\n\n",
        kind.as_str()
    );
    let path = dir.join(name);
    fs::write(&path, report).op("write", &path)
}

/// Python's `datetime.utcfromtimestamp(t).isoformat("T")`: microseconds only when
/// non-zero.
pub fn iso_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let micros = d.subsec_micros();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let base = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if micros == 0 {
        base
    } else {
        format!("{base}.{micros:06}")
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's
/// algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_like_python_isoformat() {
        // datetime.utcfromtimestamp(1700000000).isoformat("T")
        assert_eq!(
            iso_utc(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            "2023-11-14T22:13:20"
        );
        assert_eq!(
            iso_utc(UNIX_EPOCH + Duration::from_micros(951_782_400_000_001)),
            "2000-02-29T00:00:00.000001"
        );
    }
}

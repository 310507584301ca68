//! The spec's one time format, `YYYY-MM-DD HH:MM:SS`, rendered in a configurable UTC offset.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const FORMAT: &[BorrowedFormatItem<'static>] = format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

/// Renders and parses times as `2025-01-27 10:30:00` in one fixed UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeFormat {
    offset: UtcOffset,
}

impl Default for TimeFormat {
    fn default() -> Self {
        Self { offset: UtcOffset::UTC }
    }
}

impl TimeFormat {
    /// A format that renders times in `offset`.
    pub fn new(offset: UtcOffset) -> Self {
        Self { offset }
    }

    /// Parses an offset written as `+08:00`, `-05:30`, `Z` or `UTC`.
    pub fn parse_offset(raw: &str) -> Result<UtcOffset, String> {
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("z") || raw.eq_ignore_ascii_case("utc") {
            return Ok(UtcOffset::UTC);
        }
        UtcOffset::parse(raw, format_description!("[offset_hour sign:mandatory]:[offset_minute]"))
            .map_err(|_| format!("`{raw}` is not a UTC offset; write it as +08:00, -05:30 or UTC"))
    }

    /// The offset times are rendered in.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// Renders `at` in this format's offset.
    pub fn format(&self, at: OffsetDateTime) -> String {
        // Formatting a valid date with a static description cannot fail; the fallback keeps
        // the function total without a panic path.
        at.to_offset(self.offset).format(FORMAT).unwrap_or_else(|_| at.unix_timestamp().to_string())
    }

    /// Renders an instant given in Unix milliseconds (what the stores keep).
    pub fn format_millis(&self, unix_ms: i64) -> String {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        self.format(at)
    }

    /// Parses a rendered time back into Unix milliseconds, interpreting it in this format's offset.
    pub fn parse_millis(&self, raw: &str) -> Result<i64, time::error::Parse> {
        self.parse(raw).map(|at| at.unix_timestamp() * 1000)
    }

    /// The current time, rendered.
    pub fn now(&self) -> String {
        self.format(OffsetDateTime::now_utc())
    }

    /// Parses a rendered time back, interpreting it in this format's offset.
    pub fn parse(&self, raw: &str) -> Result<OffsetDateTime, time::error::Parse> {
        PrimitiveDateTime::parse(raw, FORMAT).map(|t| t.assume_offset(self.offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renders_the_spec_format_in_utc_by_default() {
        let at = datetime!(2025-01-27 10:30:00 UTC);
        assert_eq!(TimeFormat::default().format(at), "2025-01-27 10:30:00");
    }

    #[test]
    fn renders_in_the_configured_offset() {
        let offset = TimeFormat::parse_offset("+08:00").unwrap();
        let at = datetime!(2025-01-27 10:30:00 UTC);
        assert_eq!(TimeFormat::new(offset).format(at), "2025-01-27 18:30:00");
    }

    #[test]
    fn parses_what_it_renders() {
        let format = TimeFormat::new(TimeFormat::parse_offset("-05:30").unwrap());
        let at = datetime!(2025-01-27 10:30:00 UTC);
        assert_eq!(format.parse(&format.format(at)).unwrap(), at);
    }

    #[test]
    fn renders_milliseconds_within_their_second_and_parses_them_back_to_it() {
        let format = TimeFormat::new(TimeFormat::parse_offset("+08:00").unwrap());
        assert_eq!(format.format_millis(1_737_973_800_999), "2025-01-27 18:30:00");
        assert_eq!(format.parse_millis("2025-01-27 18:30:00").unwrap(), 1_737_973_800_000);
    }

    #[test]
    fn rejects_a_malformed_offset_with_a_hint() {
        let err = TimeFormat::parse_offset("8").unwrap_err();
        assert!(err.contains("+08:00"), "{err}");
        assert_eq!(TimeFormat::parse_offset("UTC").unwrap(), UtcOffset::UTC);
    }
}

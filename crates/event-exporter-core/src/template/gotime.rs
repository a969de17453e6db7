//! Go `time.Time` as templates see it: always in UTC, formatted with Go's reference-time
//! layouts (`2006-01-02T15:04:05Z07:00`).

use std::fmt::Write as _;

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch, negated.
pub(crate) const ZERO_UNIX: i64 = -62_135_596_800;

/// An instant in UTC, with Go's zero value (`0001-01-01 00:00:00 +0000 UTC`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct GoTime {
    /// Seconds since the Unix epoch.
    pub(crate) sec: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub(crate) nsec: u32,
}

impl GoTime {
    /// Go's zero time.
    pub(crate) const ZERO: GoTime = GoTime {
        sec: ZERO_UNIX,
        nsec: 0,
    };

    /// From a jiff timestamp.
    pub(crate) fn from_timestamp(ts: jiff::Timestamp) -> Self {
        let ns = ts.as_nanosecond();
        let sec = ns.div_euclid(1_000_000_000);
        let nsec = ns.rem_euclid(1_000_000_000);
        GoTime {
            sec: i64::try_from(sec).unwrap_or(ZERO_UNIX),
            nsec: u32::try_from(nsec).unwrap_or(0),
        }
    }

    /// From an optional jiff timestamp (`None` is Go's zero time).
    pub(crate) fn from_opt(ts: Option<jiff::Timestamp>) -> Self {
        ts.map_or(Self::ZERO, Self::from_timestamp)
    }

    /// `t.IsZero()`.
    pub(crate) fn is_zero(self) -> bool {
        self == Self::ZERO
    }

    /// `t.Unix()`.
    pub(crate) fn unix(self) -> i64 {
        self.sec
    }

    /// `t.UnixMilli()`.
    pub(crate) fn unix_milli(self) -> i64 {
        self.sec
            .wrapping_mul(1000)
            .wrapping_add(i64::from(self.nsec / 1_000_000))
    }

    /// `t.UnixMicro()`.
    pub(crate) fn unix_micro(self) -> i64 {
        self.sec
            .wrapping_mul(1_000_000)
            .wrapping_add(i64::from(self.nsec / 1000))
    }

    /// `t.UnixNano()` (wraps like Go's for times out of its range).
    pub(crate) fn unix_nano(self) -> i64 {
        self.sec
            .wrapping_mul(1_000_000_000)
            .wrapping_add(i64::from(self.nsec))
    }

    /// The civil date and time in UTC.
    pub(crate) fn civil(self) -> Civil {
        let days = self.sec.div_euclid(86_400);
        let sod = self.sec.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let yday = days - days_from_civil(year, 1, 1) + 1;
        Civil {
            year,
            month,
            day,
            hour: (sod / 3600) as u32,
            minute: ((sod / 60) % 60) as u32,
            second: (sod % 60) as u32,
            nsec: self.nsec,
            // 1970-01-01 was a Thursday; 0 = Sunday.
            weekday: (days + 4).rem_euclid(7) as u32,
            yday: yday as u32,
        }
    }

    /// `t.String()`.
    pub(crate) fn go_string(self) -> String {
        let mut s = String::with_capacity(32);
        self.format_into("2006-01-02 15:04:05.999999999 -0700 MST", &mut s);
        s
    }

    /// `t.Format(layout)`, appended to `out`.
    pub(crate) fn format_into(self, layout: &str, out: &mut String) {
        self.format_zoned_into(layout, 0, "UTC", out);
    }

    /// `t.In(zone).Format(layout)` for a zone at `offset` seconds east of UTC.
    pub(crate) fn format_zoned(self, layout: &str, offset: i32, abbr: &str) -> String {
        let mut s = String::with_capacity(layout.len() + 8);
        self.format_zoned_into(layout, offset, abbr, &mut s);
        s
    }

    fn format_zoned_into(self, layout: &str, offset: i32, abbr: &str, out: &mut String) {
        let shifted = GoTime {
            sec: self.sec.saturating_add(i64::from(offset)),
            nsec: self.nsec,
        };
        let c = shifted.civil();
        let z = Zone { offset, abbr };
        let mut rest = layout;
        while !rest.is_empty() {
            let (prefix, std, suffix) = next_std_chunk(rest);
            out.push_str(prefix);
            match std {
                None => break,
                Some(std) => c.write_std(std, &z, out),
            }
            rest = suffix;
        }
    }

    /// `t.Format(layout)`.
    pub(crate) fn format(self, layout: &str) -> String {
        let mut s = String::with_capacity(layout.len() + 8);
        self.format_into(layout, &mut s);
        s
    }

    /// Seconds since the Unix epoch as an instant (`time.Unix(sec, 0)`).
    pub(crate) fn from_unix(sec: i64) -> Self {
        GoTime { sec, nsec: 0 }
    }

    /// The current time.
    pub(crate) fn now() -> Self {
        Self::from_timestamp(jiff::Timestamp::now())
    }
}

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Civil {
    pub(crate) year: i64,
    pub(crate) month: u32,
    pub(crate) day: u32,
    pub(crate) hour: u32,
    pub(crate) minute: u32,
    pub(crate) second: u32,
    pub(crate) nsec: u32,
    pub(crate) weekday: u32,
    pub(crate) yday: u32,
}

const LONG_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const LONG_DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `month` in 1..=12 → its English name.
pub(crate) fn month_name(month: u32) -> &'static str {
    LONG_MONTHS
        .get(month.saturating_sub(1) as usize)
        .copied()
        .unwrap_or("%!Month")
}

/// `weekday` in 0..7 (Sunday first) → its English name.
pub(crate) fn weekday_name(weekday: u32) -> &'static str {
    LONG_DAYS
        .get(weekday as usize)
        .copied()
        .unwrap_or("%!Weekday")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Std {
    LongMonth,
    Month,
    NumMonth,
    ZeroMonth,
    LongWeekDay,
    WeekDay,
    Day,
    UnderDay,
    ZeroDay,
    UnderYearDay,
    ZeroYearDay,
    Hour,
    Hour12,
    ZeroHour12,
    Minute,
    ZeroMinute,
    Second,
    ZeroSecond,
    LongYear,
    Year,
    PM,
    Pm,
    TZ,
    Iso8601TZ,
    Iso8601SecondsTZ,
    Iso8601ShortTZ,
    Iso8601ColonTZ,
    Iso8601ColonSecondsTZ,
    NumTZ,
    NumSecondsTz,
    NumShortTZ,
    NumColonTZ,
    NumColonSecondsTZ,
    /// Fractional seconds: separator, digits, trailing zeros kept.
    Frac0(u8, usize),
    /// Fractional seconds: separator, digits, trailing zeros trimmed.
    Frac9(u8, usize),
}

fn starts_with_lower(s: &[u8]) -> bool {
    s.first().is_some_and(u8::is_ascii_lowercase)
}

/// Go's `nextStdChunk`: the literal prefix, the next layout element, and the rest.
fn next_std_chunk(layout: &str) -> (&str, Option<Std>, &str) {
    let b = layout.as_bytes();
    let n = b.len();
    let at = |i: usize, s: &str| b.get(i..i + s.len()) == Some(s.as_bytes());
    let mut i = 0;
    while i < n {
        let std_len: Option<(Std, usize)> = match b[i] {
            b'J' => {
                if at(i, "Jan") {
                    if at(i, "January") {
                        Some((Std::LongMonth, 7))
                    } else if !starts_with_lower(&b[i + 3..]) {
                        Some((Std::Month, 3))
                    } else {
                        None
                    }
                } else {
                    None
                }
            }
            b'M' => {
                if at(i, "Mon") {
                    if at(i, "Monday") {
                        Some((Std::LongWeekDay, 6))
                    } else if !starts_with_lower(&b[i + 3..]) {
                        Some((Std::WeekDay, 3))
                    } else {
                        None
                    }
                } else if at(i, "MST") {
                    Some((Std::TZ, 3))
                } else {
                    None
                }
            }
            b'0' => match b.get(i + 1) {
                Some(c @ b'1'..=b'6') => Some((
                    match c {
                        b'1' => Std::ZeroMonth,
                        b'2' => Std::ZeroDay,
                        b'3' => Std::ZeroHour12,
                        b'4' => Std::ZeroMinute,
                        b'5' => Std::ZeroSecond,
                        _ => Std::Year,
                    },
                    2,
                )),
                Some(b'0') if b.get(i + 2) == Some(&b'2') => Some((Std::ZeroYearDay, 3)),
                _ => None,
            },
            b'1' => {
                if b.get(i + 1) == Some(&b'5') {
                    Some((Std::Hour, 2))
                } else {
                    Some((Std::NumMonth, 1))
                }
            }
            b'2' => {
                if at(i, "2006") {
                    Some((Std::LongYear, 4))
                } else {
                    Some((Std::Day, 1))
                }
            }
            b'_' => {
                if b.get(i + 1) == Some(&b'2') {
                    if at(i + 1, "2006") {
                        return (&layout[..i + 1], Some(Std::LongYear), &layout[i + 5..]);
                    }
                    Some((Std::UnderDay, 2))
                } else if at(i + 1, "_2") {
                    Some((Std::UnderYearDay, 3))
                } else {
                    None
                }
            }
            b'3' => Some((Std::Hour12, 1)),
            b'4' => Some((Std::Minute, 1)),
            b'5' => Some((Std::Second, 1)),
            b'P' if b.get(i + 1) == Some(&b'M') => Some((Std::PM, 2)),
            b'p' if b.get(i + 1) == Some(&b'm') => Some((Std::Pm, 2)),
            b'-' => {
                if at(i, "-070000") {
                    Some((Std::NumSecondsTz, 7))
                } else if at(i, "-07:00:00") {
                    Some((Std::NumColonSecondsTZ, 9))
                } else if at(i, "-0700") {
                    Some((Std::NumTZ, 5))
                } else if at(i, "-07:00") {
                    Some((Std::NumColonTZ, 6))
                } else if at(i, "-07") {
                    Some((Std::NumShortTZ, 3))
                } else {
                    None
                }
            }
            b'Z' => {
                if at(i, "Z070000") {
                    Some((Std::Iso8601SecondsTZ, 7))
                } else if at(i, "Z07:00:00") {
                    Some((Std::Iso8601ColonSecondsTZ, 9))
                } else if at(i, "Z0700") {
                    Some((Std::Iso8601TZ, 5))
                } else if at(i, "Z07:00") {
                    Some((Std::Iso8601ColonTZ, 6))
                } else if at(i, "Z07") {
                    Some((Std::Iso8601ShortTZ, 3))
                } else {
                    None
                }
            }
            sep @ (b'.' | b',') => match b.get(i + 1) {
                Some(&ch @ (b'0' | b'9')) => {
                    let mut j = i + 1;
                    while j < n && b[j] == ch {
                        j += 1;
                    }
                    if b.get(j).is_some_and(u8::is_ascii_digit) {
                        None
                    } else {
                        let digits = j - (i + 1);
                        let std = if ch == b'0' {
                            Std::Frac0(sep, digits)
                        } else {
                            Std::Frac9(sep, digits)
                        };
                        Some((std, j - i))
                    }
                }
                _ => None,
            },
            _ => None,
        };
        if let Some((std, len)) = std_len {
            return (&layout[..i], Some(std), &layout[i + len..]);
        }
        // Advance by one character (layouts may contain non-ASCII text).
        i += layout[i..].chars().next().map_or(1, char::len_utf8);
    }
    (layout, None, "")
}

fn pad(out: &mut String, v: i64, width: usize) {
    let _ = write!(out, "{v:0width$}");
}

struct Zone<'z> {
    offset: i32,
    abbr: &'z str,
}

fn write_offset(out: &mut String, offset: i32, colon: bool, minutes: bool, seconds: bool) {
    let sign = if offset < 0 { '-' } else { '+' };
    let u = offset.unsigned_abs();
    let _ = write!(out, "{sign}{:02}", u / 3600);
    if minutes {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", (u / 60) % 60);
    }
    if seconds {
        if colon {
            out.push(':');
        }
        let _ = write!(out, "{:02}", u % 60);
    }
}

impl Civil {
    fn write_std(&self, std: Std, z: &Zone<'_>, out: &mut String) {
        match std {
            Std::Year => pad(out, self.year.rem_euclid(100), 2),
            Std::LongYear => pad(out, self.year, 4),
            Std::Month => out.push_str(&month_name(self.month)[..3]),
            Std::LongMonth => out.push_str(month_name(self.month)),
            Std::NumMonth => pad(out, i64::from(self.month), 0),
            Std::ZeroMonth => pad(out, i64::from(self.month), 2),
            Std::WeekDay => out.push_str(&weekday_name(self.weekday)[..3]),
            Std::LongWeekDay => out.push_str(weekday_name(self.weekday)),
            Std::Day => pad(out, i64::from(self.day), 0),
            Std::UnderDay => {
                if self.day < 10 {
                    out.push(' ');
                }
                pad(out, i64::from(self.day), 0);
            }
            Std::ZeroDay => pad(out, i64::from(self.day), 2),
            Std::UnderYearDay => {
                let _ = write!(out, "{:>3}", self.yday);
            }
            Std::ZeroYearDay => pad(out, i64::from(self.yday), 3),
            Std::Hour => pad(out, i64::from(self.hour), 2),
            Std::Hour12 | Std::ZeroHour12 => {
                let mut hr = self.hour % 12;
                if hr == 0 {
                    hr = 12;
                }
                pad(out, i64::from(hr), if std == Std::Hour12 { 0 } else { 2 });
            }
            Std::Minute => pad(out, i64::from(self.minute), 0),
            Std::ZeroMinute => pad(out, i64::from(self.minute), 2),
            Std::Second => pad(out, i64::from(self.second), 0),
            Std::ZeroSecond => pad(out, i64::from(self.second), 2),
            Std::PM => out.push_str(if self.hour >= 12 { "PM" } else { "AM" }),
            Std::Pm => out.push_str(if self.hour >= 12 { "pm" } else { "am" }),
            Std::TZ => {
                if z.abbr.is_empty() {
                    write_offset(out, z.offset, false, z.offset % 3600 != 0, false);
                } else {
                    out.push_str(z.abbr);
                }
            }
            Std::Iso8601TZ
            | Std::Iso8601SecondsTZ
            | Std::Iso8601ShortTZ
            | Std::Iso8601ColonTZ
            | Std::Iso8601ColonSecondsTZ
                if z.offset == 0 =>
            {
                out.push('Z');
            }
            Std::Iso8601TZ | Std::NumTZ => write_offset(out, z.offset, false, true, false),
            Std::Iso8601SecondsTZ | Std::NumSecondsTz => {
                write_offset(out, z.offset, false, true, true)
            }
            Std::Iso8601ShortTZ | Std::NumShortTZ => {
                write_offset(out, z.offset, false, false, false)
            }
            Std::Iso8601ColonTZ | Std::NumColonTZ => write_offset(out, z.offset, true, true, false),
            Std::Iso8601ColonSecondsTZ | Std::NumColonSecondsTZ => {
                write_offset(out, z.offset, true, true, true);
            }
            Std::Frac0(sep, digits) => {
                out.push(char::from(sep));
                let s = format!("{:09}", self.nsec);
                let d = digits.min(9);
                out.push_str(&s[..d]);
                for _ in 9..digits {
                    out.push('0');
                }
            }
            Std::Frac9(sep, digits) => {
                let s = format!("{:09}", self.nsec);
                let d = digits.min(9);
                let t = s[..d].trim_end_matches('0');
                if !t.is_empty() {
                    out.push(char::from(sep));
                    out.push_str(t);
                }
            }
        }
    }
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Go's `time.Parse(layout, value)` for the common layout elements (UTC unless the value has
/// an offset). `None` when the value does not match.
pub(crate) fn parse(layout: &str, value: &str) -> Option<GoTime> {
    let (mut year, mut month, mut day) = (1i64, 1u32, 1u32);
    let (mut hour, mut min, mut sec, mut nsec) = (0u32, 0u32, 0u32, 0u32);
    let mut pm: Option<bool> = None;
    let mut offset: i64 = 0;
    let mut rest = layout;
    let mut v = value;
    fn num(v: &mut &str, min_len: usize, max_len: usize) -> Option<u32> {
        let n = v
            .bytes()
            .take(max_len)
            .take_while(u8::is_ascii_digit)
            .count();
        if n < min_len {
            return None;
        }
        let x = v[..n].parse().ok()?;
        *v = &v[n..];
        Some(x)
    }
    fn frac(v: &mut &str) -> Option<u32> {
        let n = v.bytes().take_while(u8::is_ascii_digit).count();
        let digits = &v[..n];
        let mut s = digits.chars().take(9).collect::<String>();
        while s.len() < 9 {
            s.push('0');
        }
        *v = &v[n..];
        s.parse().ok()
    }
    while !rest.is_empty() {
        let (prefix, std, suffix) = next_std_chunk(rest);
        v = v.strip_prefix(prefix)?;
        let Some(std) = std else { break };
        match std {
            Std::LongYear => year = i64::from(num(&mut v, 4, 4)?),
            Std::Year => {
                let y = i64::from(num(&mut v, 2, 2)?);
                year = if y >= 69 { 1900 + y } else { 2000 + y };
            }
            Std::ZeroMonth => month = num(&mut v, 2, 2)?,
            Std::NumMonth => month = num(&mut v, 1, 2)?,
            Std::Month | Std::LongMonth => {
                let (i, len) = LONG_MONTHS.iter().enumerate().find_map(|(i, m)| {
                    let full = v.get(..m.len()).is_some_and(|p| p.eq_ignore_ascii_case(m));
                    let short = v.get(..3).is_some_and(|p| p.eq_ignore_ascii_case(&m[..3]));
                    if std == Std::LongMonth && full {
                        Some((i, m.len()))
                    } else if std == Std::Month && short {
                        Some((i, 3))
                    } else {
                        None
                    }
                })?;
                month = i as u32 + 1;
                v = &v[len..];
            }
            Std::WeekDay | Std::LongWeekDay => {
                let len = LONG_DAYS.iter().find_map(|d| {
                    if std == Std::LongWeekDay {
                        v.get(..d.len())
                            .filter(|p| p.eq_ignore_ascii_case(d))
                            .map(str::len)
                    } else {
                        v.get(..3)
                            .filter(|p| p.eq_ignore_ascii_case(&d[..3]))
                            .map(|_| 3)
                    }
                })?;
                v = &v[len..];
            }
            Std::ZeroDay => day = num(&mut v, 2, 2)?,
            Std::Day => day = num(&mut v, 1, 2)?,
            Std::UnderDay => {
                v = v.strip_prefix(' ').unwrap_or(v);
                day = num(&mut v, 1, 2)?;
            }
            Std::ZeroYearDay | Std::UnderYearDay => {
                v = v.trim_start_matches(' ');
                num(&mut v, 1, 3)?;
            }
            Std::Hour => hour = num(&mut v, 2, 2)?,
            Std::Hour12 => hour = num(&mut v, 1, 2)?,
            Std::ZeroHour12 => hour = num(&mut v, 2, 2)?,
            Std::Minute => min = num(&mut v, 1, 2)?,
            Std::ZeroMinute => min = num(&mut v, 2, 2)?,
            Std::Second | Std::ZeroSecond => {
                sec = num(&mut v, if std == Std::Second { 1 } else { 2 }, 2)?;
                // Go accepts a fractional second after the seconds even if the layout has none.
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(','))
                    && r.bytes().next().is_some_and(|b| b.is_ascii_digit())
                    && !suffix.starts_with(['.', ','])
                {
                    v = r;
                    nsec = frac(&mut v)?;
                }
            }
            Std::Frac0(_, _) | Std::Frac9(_, _) => {
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                    v = r;
                    nsec = frac(&mut v)?;
                }
            }
            Std::PM | Std::Pm => {
                let p = v.get(..2)?;
                pm = Some(p.eq_ignore_ascii_case("pm"));
                if !p.eq_ignore_ascii_case("am") && !p.eq_ignore_ascii_case("pm") {
                    return None;
                }
                v = &v[2..];
            }
            Std::TZ => {
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if n < 3 {
                    return None;
                }
                v = &v[n..];
            }
            Std::Iso8601TZ
            | Std::Iso8601SecondsTZ
            | Std::Iso8601ShortTZ
            | Std::Iso8601ColonTZ
            | Std::Iso8601ColonSecondsTZ
            | Std::NumTZ
            | Std::NumSecondsTz
            | Std::NumShortTZ
            | Std::NumColonTZ
            | Std::NumColonSecondsTZ => {
                let iso = matches!(
                    std,
                    Std::Iso8601TZ
                        | Std::Iso8601SecondsTZ
                        | Std::Iso8601ShortTZ
                        | Std::Iso8601ColonTZ
                        | Std::Iso8601ColonSecondsTZ
                );
                if iso && v.starts_with('Z') {
                    v = &v[1..];
                } else {
                    let sign: i64 = match v.as_bytes().first()? {
                        b'+' => 1,
                        b'-' => -1,
                        _ => return None,
                    };
                    v = &v[1..];
                    let h = i64::from(num(&mut v, 2, 2)?);
                    let mut m = 0;
                    if !matches!(std, Std::NumShortTZ | Std::Iso8601ShortTZ) {
                        v = v.strip_prefix(':').unwrap_or(v);
                        m = i64::from(num(&mut v, 2, 2)?);
                    }
                    offset = sign * (h * 3600 + m * 60);
                }
            }
        }
        rest = suffix;
    }
    if !v.is_empty() {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        _ => {}
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs =
        days * 86_400 + i64::from(hour) * 3600 + i64::from(min) * 60 + i64::from(sec) - offset;
    Some(GoTime { sec: secs, nsec })
}

/// Go's `time.Duration.String()` for a number of nanoseconds.
pub(crate) fn duration_string(d: i64) -> String {
    if d == 0 {
        return "0s".to_owned();
    }
    let neg = d < 0;
    let u = d.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Sub-second: use ns, µs or ms.
        let (unit, scale) = if u < 1000 {
            ("ns", 1u64)
        } else if u < 1_000_000 {
            ("µs", 1000)
        } else {
            ("ms", 1_000_000)
        };
        if neg {
            out.push('-');
        }
        out.push_str(&frac_string(u, scale));
        out.push_str(unit);
        return out;
    }
    let hours = u / 3_600_000_000_000;
    let rem = u % 3_600_000_000_000;
    let mins = rem / 60_000_000_000;
    let secs_ns = rem % 60_000_000_000;
    if neg {
        out.push('-');
    }
    if hours > 0 {
        let _ = write!(out, "{hours}h");
    }
    if hours > 0 || mins > 0 {
        let _ = write!(out, "{mins}m");
    }
    out.push_str(&frac_string(secs_ns, 1_000_000_000));
    out.push('s');
    out
}

fn frac_string(v: u64, scale: u64) -> String {
    let int = v / scale;
    let frac = v % scale;
    if frac == 0 {
        return int.to_string();
    }
    let width = scale.ilog10() as usize;
    let f = format!("{frac:0width$}");
    format!("{int}.{}", f.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> GoTime {
        GoTime::from_timestamp(s.parse().expect("valid timestamp"))
    }

    #[test]
    fn zero_time_prints_like_go() {
        assert_eq!(GoTime::ZERO.go_string(), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(GoTime::ZERO.unix(), -62135596800);
        assert!(GoTime::ZERO.is_zero());
    }

    #[test]
    fn layouts() {
        let x = t("2026-11-23T10:00:47.806911Z");
        assert_eq!(x.go_string(), "2026-11-23 10:00:47.806911 +0000 UTC");
        assert_eq!(
            x.format("2006-01-02T15:04:05Z07:00"),
            "2026-11-23T10:00:47Z"
        );
        assert_eq!(
            x.format("2006-01-02T15:04:05.000Z"),
            "2026-11-23T10:00:47.806Z"
        );
        assert_eq!(
            x.format("Mon Jan _2 3:04PM MST 2006"),
            "Mon Nov 23 10:00AM UTC 2026"
        );
        assert_eq!(
            x.format("Monday, January 2 -0700 .999"),
            "Monday, November 23 +0000 .806"
        );
        assert_eq!(x.format("002 pm 06"), "327 am 26");
        assert_eq!(x.format(".000000000"), ".806911000");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_string(0), "0s");
        assert_eq!(duration_string(1_500_000_000), "1.5s");
        assert_eq!(
            duration_string(3_600_000_000_000 + 60_000_000_000),
            "1h1m0s"
        );
        assert_eq!(duration_string(1500), "1.5µs");
    }
}

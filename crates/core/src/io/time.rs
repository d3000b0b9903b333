//! Small, dependency-free date parsing: ISO-like dates and a `strftime` subset.

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn valid(y: i64, m: u32, d: u32) -> bool {
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (1..=12).contains(&m) && d >= 1 && d <= days[(m - 1) as usize]
}

/// Parse a timestamp to seconds since the Unix epoch (UTC).
///
/// With `format` = `None`, accepts `YYYY-MM-DD` or `YYYY/MM/DD`, optionally followed by
/// `T` or a space and `HH:MM[:SS[.fff]]`, and an optional trailing `Z`.
/// With a format, accepts the `strftime` subset `%Y %m %d %H %M %S` and literal characters,
/// for example `%Y%m%d` or `%d.%m.%Y %H:%M`.
pub fn parse_timestamp(s: &str, format: Option<&str>) -> Option<i64> {
    let s = s.trim();
    match format {
        Some(f) => parse_with_format(s, f),
        None => parse_iso(s),
    }
}

fn parse_iso(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    let (date, time) = match s.find(['T', ' ']) {
        Some(p) => (&s[..p], Some(&s[p + 1..])),
        None => (s, None),
    };
    let sep = if date.contains('-') { '-' } else { '/' };
    let mut it = date.split(sep);
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 || m.is_empty() || m.len() > 2 || d.is_empty() || d.len() > 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !valid(y, m, d) {
        return None;
    }
    let mut secs = days_from_civil(y, m, d) * 86_400;
    if let Some(t) = time {
        let mut it = t.split(':');
        let h: i64 = it.next()?.parse().ok()?;
        let mi: i64 = it.next()?.parse().ok()?;
        let sec: f64 = it.next().map_or(Some(0.0), |x| x.parse().ok())?;
        if it.next().is_some() || !(0..24).contains(&h) || !(0..60).contains(&mi) || !(0.0..61.0).contains(&sec) {
            return None;
        }
        secs += h * 3600 + mi * 60 + sec as i64;
    }
    Some(secs)
}

fn parse_with_format(s: &str, f: &str) -> Option<i64> {
    let (mut y, mut m, mut d, mut h, mut mi, mut sec) = (1970i64, 1u32, 1u32, 0i64, 0i64, 0i64);
    let sb = s.as_bytes();
    let mut pos = 0usize;
    let mut chars = f.chars();
    let num = |width: usize, pos: &mut usize| -> Option<i64> {
        let start = *pos;
        while *pos < sb.len() && *pos - start < width && sb[*pos].is_ascii_digit() {
            *pos += 1;
        }
        if *pos == start {
            return None;
        }
        s[start..*pos].parse().ok()
    };
    while let Some(c) = chars.next() {
        if c == '%' {
            match chars.next()? {
                'Y' => y = num(4, &mut pos)?,
                'm' => m = num(2, &mut pos)? as u32,
                'd' => d = num(2, &mut pos)? as u32,
                'H' => h = num(2, &mut pos)?,
                'M' => mi = num(2, &mut pos)?,
                'S' => sec = num(2, &mut pos)?,
                '%' => {
                    if sb.get(pos) != Some(&b'%') {
                        return None;
                    }
                    pos += 1;
                }
                _ => return None,
            }
        } else {
            let mut buf = [0u8; 4];
            let lit = c.encode_utf8(&mut buf).as_bytes();
            if !sb[pos..].starts_with(lit) {
                return None;
            }
            pos += lit.len();
        }
    }
    if pos != sb.len() || !valid(y, m, d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(y, m, d) * 86_400 + h * 3600 + mi * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(1997, 9, 30), 10_134);
        for z in [-800_000, -1, 0, 59, 10_134, 20_000, 2_000_000] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn parses_iso_and_formats() {
        assert_eq!(parse_timestamp("1997-09-30", None), Some(10_134 * 86_400));
        assert_eq!(parse_timestamp("1997/09/30 01:02:03", None), Some(10_134 * 86_400 + 3723));
        assert_eq!(parse_timestamp("19970930", Some("%Y%m%d")), Some(10_134 * 86_400));
        assert_eq!(parse_timestamp("30.09.1997", Some("%d.%m.%Y")), Some(10_134 * 86_400));
        assert_eq!(parse_timestamp("1997-02-30", None), None);
        assert_eq!(parse_timestamp("hello", None), None);
        assert_eq!(parse_timestamp("12", None), None);
    }
}

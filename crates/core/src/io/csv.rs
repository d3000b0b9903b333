//! A forgiving but honest CSV reader: it detects the delimiter (`,` `;` tab `|` or runs of
//! spaces), handles quotes, a UTF-8 BOM and CRLF line ends, recognises missing markers and
//! TRUE/FALSE, infers column types, and reports any value it cannot read with its line and column.

use super::time::parse_timestamp;
use crate::{Column, ColumnData, ColumnType, Error, Frame, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Text that means "missing" in any column (compared after trimming, case-sensitively).
pub const MISSING_MARKERS: [&str; 9] = ["", "NA", "N/A", "NaN", "nan", "NAN", "null", "NULL", "Null"];

/// How to read a CSV file.
#[derive(Debug, Clone)]
pub struct CsvOptions {
    /// The delimiter; `None` detects it. `Some(b' ')` means "runs of whitespace".
    pub delimiter: Option<u8>,
    /// Whether the first line names the columns (otherwise columns are `col_0`, `col_1`, ...).
    pub header: bool,
    /// Declared column types, overriding inference.
    pub types: BTreeMap<String, ColumnType>,
    /// Format of timestamp columns (a `strftime` subset, e.g. `%Y%m%d`); ISO dates when `None`.
    pub timestamp_format: Option<String>,
    /// Extra text values treated as missing, besides [`MISSING_MARKERS`].
    pub missing: Vec<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            header: true,
            types: BTreeMap::new(),
            timestamp_format: None,
            missing: Vec::new(),
        }
    }
}

/// Read a CSV file. Errors name the file, the line and the column.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Frame> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let name = path.display().to_string();
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
            return Err(Error::DataAt {
                path: name,
                line,
                column: "?".into(),
                message: format!("not valid UTF-8 (byte {})", e.valid_up_to()),
            });
        }
    };
    read_csv_str(text, &name, opts)
}

/// Read CSV text; `name` is used in error messages.
pub fn read_csv_str(text: &str, name: &str, opts: &CsvOptions) -> Result<Frame> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if text.trim().is_empty() {
        return Err(Error::data(format!("{name}: the file is empty")));
    }
    let delimiter = opts.delimiter.unwrap_or_else(|| detect_delimiter(text));
    let records = if delimiter == b' ' { split_whitespace(text) } else { split_csv(text, delimiter, name)? };
    let mut records = records.into_iter();
    let (header_line, names) = if opts.header {
        let (line, fields) = records.next().ok_or_else(|| Error::data(format!("{name}: the file is empty")))?;
        let names: Vec<String> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| if f.trim().is_empty() { format!("col_{i}") } else { f.trim().to_string() })
            .collect();
        (line, names)
    } else {
        (0, Vec::new())
    };
    let rows: Vec<(usize, Vec<String>)> = records.collect();
    let width = if opts.header { names.len() } else { rows.first().map_or(0, |r| r.1.len()) };
    let names = if opts.header { names } else { (0..width).map(|i| format!("col_{i}")).collect() };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Error::DataAt {
                path: name.into(),
                line: header_line,
                column: n.clone(),
                message: "this column name appears twice in the header".into(),
            });
        }
    }
    if rows.is_empty() {
        return Err(Error::data(format!("{name}: the file has a header but no data rows")));
    }
    for (line, r) in &rows {
        if r.len() != width {
            return Err(Error::DataAt {
                path: name.into(),
                line: *line,
                column: names.get(r.len().min(width.saturating_sub(1))).cloned().unwrap_or_default(),
                message: format!("this line has {} fields, the header has {width}", r.len()),
            });
        }
    }
    for t in opts.types.keys() {
        if !names.contains(t) {
            let hint = crate::did_you_mean(t, names.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(Error::config(format!("data.types.{t}"), format!("no column `{t}` in {name}{hint}")));
        }
    }
    let is_missing = |s: &str| {
        let t = s.trim();
        MISSING_MARKERS.contains(&t) || opts.missing.iter().any(|m| m == t)
    };
    let fmt = opts.timestamp_format.as_deref();
    let mut columns = Vec::with_capacity(width);
    for (j, col) in names.iter().enumerate() {
        let cells = rows.iter().map(|(line, r)| (*line, r[j].as_str()));
        let declared = opts.types.get(col).copied();
        let data = parse_column(cells, declared, fmt, &is_missing, name, col)?;
        columns.push(Column { name: col.clone(), data });
    }
    Frame::new(columns)
}

fn parse_column<'a>(
    cells: impl Iterator<Item = (usize, &'a str)> + Clone,
    declared: Option<ColumnType>,
    fmt: Option<&str>,
    is_missing: &dyn Fn(&str) -> bool,
    file: &str,
    col: &str,
) -> Result<ColumnData> {
    let present = cells.clone().filter(|(_, s)| !is_missing(s));
    let kind = declared.unwrap_or_else(|| {
        let mut p = present.clone().map(|(_, s)| s.trim()).peekable();
        if p.peek().is_none() {
            ColumnType::Numeric
        } else if present.clone().all(|(_, s)| parse_bool(s).is_some()) {
            ColumnType::Boolean
        } else if present.clone().all(|(_, s)| s.trim().parse::<f64>().is_ok()) {
            ColumnType::Numeric
        } else if present.clone().all(|(_, s)| parse_timestamp(s, fmt).is_some()) {
            ColumnType::Timestamp
        } else {
            ColumnType::Categorical
        }
    });
    let bad = |line: usize, message: String| Error::DataAt { path: file.into(), line, column: col.into(), message };
    Ok(match kind {
        ColumnType::Numeric => {
            let mut v = Vec::new();
            for (line, s) in cells {
                if is_missing(s) {
                    v.push(f64::NAN);
                    continue;
                }
                let x: f64 = s
                    .trim()
                    .parse()
                    .map_err(|_| bad(line, format!("`{}` is not a number (column is numeric)", s.trim())))?;
                if !x.is_finite() {
                    return Err(bad(line, format!("`{}` is not a finite number", s.trim())));
                }
                v.push(x);
            }
            ColumnData::Numeric(v)
        }
        ColumnType::Boolean => {
            let mut v = Vec::new();
            for (line, s) in cells {
                if is_missing(s) {
                    v.push(None);
                } else {
                    v.push(Some(parse_bool(s).ok_or_else(|| {
                        bad(line, format!("`{}` is not a boolean (expected TRUE/FALSE, true/false, 1/0)", s.trim()))
                    })?));
                }
            }
            ColumnData::Boolean(v)
        }
        ColumnType::Timestamp => {
            let mut v = Vec::new();
            for (line, s) in cells {
                if is_missing(s) {
                    v.push(None);
                } else {
                    v.push(Some(parse_timestamp(s, fmt).ok_or_else(|| {
                        bad(
                            line,
                            format!(
                                "`{}` is not a timestamp (format {})",
                                s.trim(),
                                fmt.unwrap_or("YYYY-MM-DD[ HH:MM:SS]")
                            ),
                        )
                    })?));
                }
            }
            ColumnData::Timestamp(v)
        }
        ColumnType::Categorical => {
            ColumnData::categorical_from(cells.map(|(_, s)| (!is_missing(s)).then(|| s.trim().to_string())))
        }
    })
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "TRUE" | "True" | "true" => Some(true),
        "FALSE" | "False" | "false" => Some(false),
        _ => None,
    }
}

/// Pick the delimiter whose count per line (outside quotes) is the same, and non-zero, on the
/// first lines; prefer the most frequent. Fall back to runs of whitespace, then to a comma.
fn detect_delimiter(text: &str) -> u8 {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).take(50).collect();
    let mut best: Option<(u8, usize)> = None;
    for cand in [b',', b';', b'\t', b'|'] {
        let counts: Vec<usize> = lines.iter().map(|l| count_outside_quotes(l, cand)).collect();
        let first = counts[0];
        if first > 0 && counts.iter().all(|&c| c == first) && best.is_none_or(|(_, n)| first > n) {
            best = Some((cand, first));
        }
    }
    if let Some((d, _)) = best {
        return d;
    }
    let ws: Vec<usize> = lines.iter().map(|l| l.split_whitespace().count()).collect();
    if ws[0] > 1 && ws.iter().all(|&c| c == ws[0]) {
        return b' ';
    }
    b','
}

fn count_outside_quotes(line: &str, d: u8) -> usize {
    let mut inside = false;
    line.bytes()
        .filter(|&b| {
            if b == b'"' {
                inside = !inside;
            }
            b == d && !inside
        })
        .count()
}

fn split_whitespace(text: &str) -> Vec<(usize, Vec<String>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_string).collect()))
        .collect()
}

fn split_csv(text: &str, delimiter: u8, name: &str) -> Result<Vec<(usize, Vec<String>)>> {
    let mut reader =
        ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            Error::DataAt { path: name.into(), line, column: "?".into(), message: e.to_string() }
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        if rec.len() == 1 && rec[0].trim().is_empty() {
            continue;
        }
        out.push((line, rec.iter().map(str::to_string).collect()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Frame> {
        read_csv_str(text, "t.csv", &CsvOptions::default())
    }

    #[test]
    fn detects_delimiters_quotes_bom_crlf() {
        for (text, d) in [
            ("a,b,c\r\n1,\"x,y\",TRUE\r\n2,z,false\r\n", ","),
            ("\u{feff}a;b;c\n1;\"x;y\";TRUE\n2;z;false\n", ";"),
            ("a\tb\tc\n1\tx y\tTRUE\n2\tz\tfalse\n", "tab"),
        ] {
            let f = read(text).unwrap_or_else(|e| panic!("{d}: {e}"));
            assert_eq!(f.names(), vec!["a", "b", "c"], "{d}");
            assert_eq!(f.column("a").unwrap().data, ColumnData::Numeric(vec![1.0, 2.0]));
            assert_eq!(f.column("c").unwrap().data, ColumnData::Boolean(vec![Some(true), Some(false)]));
            assert_eq!(f.column("b").unwrap().data.column_type(), ColumnType::Categorical);
        }
        let f = read("a,b\n1,\"x,y\"\n2,z\n").unwrap();
        assert_eq!(f.column("b").unwrap().data.value_string(0).as_deref(), Some("x,y"));
    }

    #[test]
    fn whitespace_runs_and_missing_markers() {
        let f = read(" id  date  n\r\n 00001 19970101  1\r\n 00002 19970112  NA\r\n").unwrap();
        assert_eq!(f.names(), vec!["id", "date", "n"]);
        assert_eq!(f.column("id").unwrap().data, ColumnData::Numeric(vec![1.0, 2.0]));
        assert!(f.column("n").unwrap().data.is_missing(1));
        let f = read("x,y\n1,\n,null\nNaN,3\n").unwrap();
        assert_eq!(f.column("x").unwrap().data.missing_count(), 2);
        assert_eq!(f.column("y").unwrap().data.missing_count(), 2);
    }

    #[test]
    fn infers_timestamps_and_honours_declared_types() {
        let f = read("d,v\n2020-01-02,1\n2020-01-03 10:00:00,2\n").unwrap();
        assert_eq!(f.column("d").unwrap().data.column_type(), ColumnType::Timestamp);
        let mut o = CsvOptions::default();
        o.types.insert("v".into(), ColumnType::Categorical);
        o.types.insert("d".into(), ColumnType::Timestamp);
        o.timestamp_format = Some("%Y%m%d".into());
        let f = read_csv_str("d,v\n19970101,1\n19970102,2\n", "t.csv", &o).unwrap();
        assert_eq!(f.column("v").unwrap().data.column_type(), ColumnType::Categorical);
        assert_eq!(f.column("d").unwrap().data, ColumnData::Timestamp(vec![Some(852_076_800), Some(852_163_200)]));
    }

    #[test]
    fn errors_name_line_and_column() {
        let mut o = CsvOptions::default();
        o.types.insert("x".into(), ColumnType::Numeric);
        let e = read_csv_str("x,y\n1,a\n2,b\nabc,c\n", "t.csv", &o).unwrap_err().to_string();
        assert_eq!(e, "t.csv:4: column `x`: `abc` is not a number (column is numeric)");
        let e = read("x,y\n1,2\n3\n").unwrap_err().to_string();
        assert!(e.contains("t.csv:3") && e.contains("1 fields"), "{e}");
        let e = read("x,y\n1,inf\n").unwrap_err().to_string();
        assert!(e.contains("not a finite number"), "{e}");
        assert!(read("").unwrap_err().to_string().contains("empty"));
        assert!(read("a,b\n").unwrap_err().to_string().contains("no data rows"));
    }
}

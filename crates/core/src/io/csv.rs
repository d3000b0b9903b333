//! A forgiving but honest CSV reader: it detects the delimiter (`,` `;` tab `|` or runs of
//! spaces), handles quotes, a UTF-8 BOM and CRLF line ends, recognises missing markers and
//! TRUE/FALSE, infers column types, and reports any value it cannot read with its line and column.
//!
//! Line numbers count every line end (`\n`, `\r\n` or a lone `\r`), so errors point at the
//! same line an editor shows. A column whose values are numbers except for a few stray words
//! (under 1 % of its values, or under 20 values and 5 %) is not silently read as categorical:
//! the stray value is an error naming its line, unless the column is declared (`types`) or its
//! unreadable values are accepted as missing ([`CsvOptions::bad_as_missing`]).

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
    /// Columns whose unreadable values (a word in a numeric column, a bad date or boolean) are
    /// read as missing instead of failing the read; how many, per column, is kept in the
    /// frame's [`Origin`](crate::Origin) (`data.on_bad_value = { column = "missing" }`).
    pub bad_as_missing: std::collections::BTreeSet<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            header: true,
            types: BTreeMap::new(),
            timestamp_format: None,
            missing: Vec::new(),
            bad_as_missing: Default::default(),
        }
    }
}

/// Read a CSV file, decompressing it when its extension says it is gzip or zstd compressed
/// ([`super::Compression`]). Errors name the file, the line and the column.
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Frame> {
    let bytes = super::compress::read_bytes(path)?;
    let name = path.display().to_string();
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let line = LineIndex::new(&bytes).line_of(e.valid_up_to());
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
    let lines = LineIndex::new(text.as_bytes());
    if delimiter != b' '
        && let Some(at) = unterminated_quote(text.as_bytes(), delimiter)
    {
        return Err(Error::DataAt {
            path: name.into(),
            line: lines.line_of(at),
            column: "?".into(),
            message: "a quoted field opens here and is never closed (unterminated `\"`)".into(),
        });
    }
    let records = if delimiter == b' ' { split_whitespace(text) } else { split_csv(text, delimiter, name, &lines)? };
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
    for c in &opts.bad_as_missing {
        if !names.contains(c) {
            let hint = crate::did_you_mean(c, names.iter().map(String::as_str))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(Error::config(format!("data.on_bad_value.{c}"), format!("no column `{c}` in {name}{hint}")));
        }
    }
    let fmt = opts.timestamp_format.as_deref();
    let mut columns = Vec::with_capacity(width);
    let mut bad_as_missing = BTreeMap::new();
    for (j, col) in names.iter().enumerate() {
        let cells = rows.iter().map(|(line, r)| (*line, r[j].as_str()));
        let declared = opts.types.get(col).copied();
        let lenient = opts.bad_as_missing.contains(col);
        let (data, bad) = parse_column(cells, declared, fmt, &is_missing, lenient, name, col)?;
        if lenient {
            bad_as_missing.insert(col.clone(), bad);
        }
        columns.push(Column { name: col.clone(), data });
    }
    let origin = crate::Origin { file: name.to_string(), lines: rows.iter().map(|r| r.0).collect(), bad_as_missing };
    Ok(Frame::new(columns)?.with_origin(origin))
}

/// Values of a column that is numeric but for a few stray words: how many may stray before the
/// column counts as categorical (under 1 % of the present values, or under 20 and under 5 %).
fn few_strays(strays: usize, present: usize) -> bool {
    strays > 0 && (strays * 100 < present || (strays < 20 && strays * 20 < present))
}

/// Read one column: its declared type, or the type inferred from its values. With `lenient`,
/// a value that does not fit the type is read as missing (and counted: the second result).
#[allow(clippy::too_many_arguments)]
fn parse_column<'a>(
    cells: impl Iterator<Item = (usize, &'a str)> + Clone,
    declared: Option<ColumnType>,
    fmt: Option<&str>,
    is_missing: &dyn Fn(&str) -> bool,
    lenient: bool,
    file: &str,
    col: &str,
) -> Result<(ColumnData, usize)> {
    let present = cells.clone().filter(|(_, s)| !is_missing(s));
    let is_number = |s: &str| s.trim().parse::<f64>().is_ok();
    let mut stray_hint = "";
    let kind = match declared {
        Some(k) => k,
        None => {
            let n_present = present.clone().count();
            let strays = present.clone().filter(|(_, s)| !is_number(s)).count();
            if n_present == 0 {
                ColumnType::Numeric
            } else if present.clone().all(|(_, s)| parse_bool(s).is_some()) {
                ColumnType::Boolean
            } else if strays == 0 {
                ColumnType::Numeric
            } else if present.clone().all(|(_, s)| parse_timestamp(s, fmt).is_some()) {
                ColumnType::Timestamp
            } else if few_strays(strays, n_present) {
                stray_hint = if lenient {
                    ""
                } else {
                    "; the column holds numbers otherwise: fix the value, declare the column \
                     (`types = { COLUMN = \"categorical\" }`) or read such values as missing \
                     (`on_bad_value = { COLUMN = \"missing\" }`)"
                };
                ColumnType::Numeric
            } else {
                ColumnType::Categorical
            }
        }
    };
    let stray_hint = stray_hint.replace("COLUMN", col);
    let bad = |line: usize, message: String| Error::DataAt { path: file.into(), line, column: col.into(), message };
    let mut n_bad = 0;
    // Each typed column: parse every present value, or fail (or, lenient, count it as missing).
    fn typed<'a, T>(
        cells: impl Iterator<Item = (usize, &'a str)>,
        is_missing: &dyn Fn(&str) -> bool,
        lenient: bool,
        n_bad: &mut usize,
        parse: impl Fn(&str) -> std::result::Result<T, String>,
        bad: &dyn Fn(usize, String) -> Error,
    ) -> Result<Vec<Option<T>>> {
        let mut v = Vec::new();
        for (line, s) in cells {
            if is_missing(s) {
                v.push(None);
                continue;
            }
            match parse(s.trim()) {
                Ok(x) => v.push(Some(x)),
                Err(_) if lenient => {
                    *n_bad += 1;
                    v.push(None);
                }
                Err(m) => return Err(bad(line, m)),
            }
        }
        Ok(v)
    }
    let data = match kind {
        ColumnType::Numeric => {
            let parse = |s: &str| match s.parse::<f64>() {
                Ok(x) if x.is_finite() => Ok(x),
                Ok(_) => Err(format!("`{s}` is not a finite number")),
                Err(_) => Err(format!("`{s}` is not a number (column is numeric){stray_hint}")),
            };
            let v = typed(cells, is_missing, lenient, &mut n_bad, parse, &bad)?;
            ColumnData::Numeric(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
        }
        ColumnType::Boolean => {
            let parse = |s: &str| {
                parse_bool(s).ok_or_else(|| format!("`{s}` is not a boolean (expected TRUE/FALSE, true/false, 1/0)"))
            };
            ColumnData::Boolean(typed(cells, is_missing, lenient, &mut n_bad, parse, &bad)?)
        }
        ColumnType::Timestamp => {
            let parse = |s: &str| {
                parse_timestamp(s, fmt).ok_or_else(|| {
                    format!("`{s}` is not a timestamp (format {})", fmt.unwrap_or("YYYY-MM-DD[ HH:MM:SS]"))
                })
            };
            ColumnData::Timestamp(typed(cells, is_missing, lenient, &mut n_bad, parse, &bad)?)
        }
        ColumnType::Categorical => {
            ColumnData::categorical_from(cells.map(|(_, s)| (!is_missing(s)).then(|| s.trim().to_string())))
        }
    };
    Ok((data, n_bad))
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "TRUE" | "True" | "true" => Some(true),
        "FALSE" | "False" | "false" => Some(false),
        _ => None,
    }
}

/// Pick the delimiter whose count per line (outside quotes) is the same, and non-zero, on the
/// first lines; prefer the most frequent. Fall back to runs of whitespace (`b' '`), then to a
/// comma. Streaming readers call it on a file's first lines.
pub fn detect_delimiter(text: &str) -> u8 {
    let lines: Vec<&str> = physical_lines(text).filter(|l| !l.trim().is_empty()).take(50).collect();
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

/// The lines of `text`, split at `\n`, `\r\n` or a lone `\r` (what [`LineIndex`] counts).
fn physical_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let t = rest?;
        match t.find(['\n', '\r']) {
            Some(i) => {
                let skip = if t[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&t[i + skip..]).filter(|r| !r.is_empty());
                Some(&t[..i])
            }
            None => {
                rest = None;
                Some(t)
            }
        }
    })
}

/// Where each line of a file starts, to turn a byte offset into a 1-based line number. A line
/// ends at `\n`, `\r\n` or a lone `\r`.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(bytes: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'\n' || (b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
                starts.push(i + 1);
            }
        }
        LineIndex { starts }
    }
    /// The line of a record starting at byte `at` of `bytes`: the reader may place a record's
    /// start on the line end before it (the `\n` of a `\r\n`), so line ends are skipped.
    fn record_line(&self, bytes: &[u8], mut at: usize) -> usize {
        while matches!(bytes.get(at), Some(b'\r' | b'\n')) {
            at += 1;
        }
        self.line_of(at)
    }
    /// The line holding byte `at`.
    fn line_of(&self, at: usize) -> usize {
        self.starts.partition_point(|&s| s <= at).max(1)
    }
}

/// The byte offset of a quote that opens a field and is never closed, if any (quotes count only
/// at the start of a field, as the CSV reader treats them; `""` inside quotes is an escape).
fn unterminated_quote(bytes: &[u8], delimiter: u8) -> Option<usize> {
    let (mut inside, mut field_start, mut open) = (false, true, 0);
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if inside {
            if b == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 1;
                } else {
                    inside = false;
                }
            }
        } else if b == b'"' && field_start {
            inside = true;
            open = i;
            field_start = false;
        } else {
            field_start = b == delimiter || b == b'\n' || b == b'\r';
        }
        i += 1;
    }
    inside.then_some(open)
}

fn split_whitespace(text: &str) -> Vec<(usize, Vec<String>)> {
    physical_lines(text)
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split_whitespace().map(str::to_string).collect()))
        .collect()
}

fn split_csv(text: &str, delimiter: u8, name: &str, lines: &LineIndex) -> Result<Vec<(usize, Vec<String>)>> {
    let mut reader =
        ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| lines.record_line(text.as_bytes(), p.byte() as usize));
            Error::DataAt { path: name.into(), line, column: "?".into(), message: e.to_string() }
        })?;
        let line = rec.position().map_or(0, |p| lines.record_line(text.as_bytes(), p.byte() as usize));
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

    /// 400 numbers and one word (file line 152): an error naming the place and the value, not
    /// a silent categorical column (issue 13, defect 1).
    fn stray_word_csv() -> String {
        let mut t = String::from("a,b\n");
        for i in 0..400 {
            let a = if i == 150 { "abc".to_string() } else { format!("{}", f64::from(i) / 7.0) };
            t.push_str(&format!("{a},{}\n", i % 3));
        }
        t
    }

    #[test]
    fn stray_word_in_numeric_column_is_an_error_naming_line_and_value() {
        let e = read(&stray_word_csv()).unwrap_err().to_string();
        assert!(e.starts_with("t.csv:152: column `a`: `abc` is not a number"), "{e}");
        assert!(e.contains("types = { a = \"categorical\" }") && e.contains("on_bad_value"), "{e}");
        // Declared categorical: accepted as such.
        let mut o = CsvOptions::default();
        o.types.insert("a".into(), ColumnType::Categorical);
        let f = read_csv_str(&stray_word_csv(), "t.csv", &o).unwrap();
        assert_eq!(f.column("a").unwrap().data.column_type(), ColumnType::Categorical);
        // Many words: a categorical column, as before.
        let f = read("a\n1\nx\ny\n2\nz\n").unwrap();
        assert_eq!(f.column("a").unwrap().data.column_type(), ColumnType::Categorical);
        // Few strays in a small file still count (under 20 values and under 5 %).
        let mut t = String::from("a\n");
        for i in 0..60 {
            t.push_str(if i == 9 { "n/a?\n" } else { "1.5\n" });
        }
        let e = read(&t).unwrap_err().to_string();
        assert!(e.starts_with("t.csv:11: column `a`: `n/a?`"), "{e}");
    }

    #[test]
    fn on_bad_value_missing_reads_stray_words_as_missing_and_counts_them() {
        let mut o = CsvOptions::default();
        o.bad_as_missing.insert("a".into());
        let f = read_csv_str(&stray_word_csv(), "t.csv", &o).unwrap();
        let a = &f.column("a").unwrap().data;
        assert_eq!(a.column_type(), ColumnType::Numeric);
        assert!(a.is_missing(150) && !a.is_missing(149));
        assert_eq!(f.origin().unwrap().bad_as_missing.get("a"), Some(&1));
        // A declared type is lenient too.
        let mut o = CsvOptions::default();
        o.types.insert("d".into(), ColumnType::Timestamp);
        o.bad_as_missing.insert("d".into());
        let f = read_csv_str("d\n2020-01-01\nsoon\n2020-01-03\n", "t.csv", &o).unwrap();
        assert_eq!(f.origin().unwrap().bad_as_missing["d"], 1);
        // An unknown column is a located config error.
        let mut o = CsvOptions::default();
        o.bad_as_missing.insert("aa".into());
        let e = read_csv_str("a\n1\n", "t.csv", &o).unwrap_err().to_string();
        assert!(e.contains("data.on_bad_value.aa") && e.contains("did you mean `a`"), "{e}");
    }

    #[test]
    fn crlf_and_cr_only_files_report_the_right_line() {
        let rows: Vec<String> =
            std::iter::once("a,b,y".to_string()).chain((0..60).map(|i| format!("{i},{},{}", i % 7, i % 2))).collect();
        for (name, end) in [("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")] {
            let mut r = rows.clone();
            r[41] = "0.5,1".into(); // file line 42
            let e = read(&(r.join(end) + end)).unwrap_err().to_string();
            assert!(e.starts_with("t.csv:42:"), "{name}: {e}");
            let mut r = rows.clone();
            r[9] = "1,2,zz".into(); // line 10: a word in the numeric target
            let e = read(&(r.join(end) + end)).unwrap_err().to_string();
            assert!(e.starts_with("t.csv:10: column `y`: `zz`"), "{name}: {e}");
            let f = read(&(rows.join(end) + end)).unwrap();
            assert_eq!(f.n_rows(), 60, "{name}");
            assert_eq!(f.row_place(0), "t.csv:2", "{name}");
            assert_eq!(f.take(&[59]).row_place(0), "t.csv:61", "{name}");
        }
        // Whitespace-separated, CR-only.
        let o = CsvOptions { delimiter: Some(b' '), ..CsvOptions::default() };
        let e = read_csv_str("id n\r1 2\r3\r", "t.csv", &o).unwrap_err().to_string();
        assert!(e.starts_with("t.csv:3:"), "{e}");
    }

    #[test]
    fn unterminated_quote_is_reported_where_it_opens() {
        let e = read("a,b\n1,2\n3,\"oops\n4,5\n6,7\n").unwrap_err().to_string();
        assert!(e.starts_with("t.csv:3:") && e.contains("never closed"), "{e}");
        // Quotes inside a field and escaped quotes are fine.
        let f = read("a,b\n5'11\",\"say \"\"hi\"\"\"\n1,2\n").unwrap();
        assert_eq!(f.column("b").unwrap().data.value_string(0).as_deref(), Some("say \"hi\""));
    }
}

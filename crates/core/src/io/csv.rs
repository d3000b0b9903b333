//! A forgiving but honest CSV reader: it detects the delimiter (`,` `;` tab `|` or runs of
//! spaces), handles quotes, a UTF-8 BOM and CRLF line ends, recognises missing markers and
//! TRUE/FALSE, infers column types, and reports any value it cannot read with its line and column.
//!
//! Line numbers count every line end (`\n`, `\r\n` or a lone `\r`), so errors point at the
//! same line an editor shows. A column whose values are numbers except for a few stray words
//! (under 1 % of its values, or under 20 values and 5 %) is not silently read as categorical:
//! the stray value is an error naming its line, unless the column is declared (`types`) or its
//! unreadable values are accepted as missing ([`CsvOptions::bad_as_missing`]).

use super::records::Records;
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
///
/// The file is read twice as a stream, one record at a time: once to check its shape and infer
/// each column's type, once to parse the values into typed columns. Memory holds the finished
/// table and one record, never the file's text (a 10 M-row table loads in the size of its
/// columns).
pub fn read_csv(path: &Path, opts: &CsvOptions) -> Result<Frame> {
    let name = path.display().to_string();
    read_stream(&name, opts, &|| super::compress::open_text(path))
}

/// Read CSV text; `name` is used in error messages.
pub fn read_csv_str(text: &str, name: &str, opts: &CsvOptions) -> Result<Frame> {
    read_stream(name, opts, &|| Ok(Box::new(text.as_bytes())))
}

/// Where a stream of the file's text comes from; called once per pass.
type Open<'a> = dyn Fn() -> Result<Box<dyn std::io::BufRead + Send + 'a>> + 'a;

/// What the first pass saw of a column's present values, to infer its type.
#[derive(Clone, Copy)]
struct Evidence {
    present: usize,
    /// Present values that are not numbers.
    strays: usize,
    all_bool: bool,
    all_timestamps: bool,
}

impl Evidence {
    fn new() -> Evidence {
        Evidence { present: 0, strays: 0, all_bool: true, all_timestamps: true }
    }

    fn see(&mut self, s: &str, fmt: Option<&str>) {
        self.present += 1;
        let t = s.trim();
        if t.parse::<f64>().is_err() {
            self.strays += 1;
        }
        if self.all_bool && parse_bool(t).is_none() {
            self.all_bool = false;
        }
        if self.all_timestamps && parse_timestamp(t, fmt).is_none() {
            self.all_timestamps = false;
        }
    }

    /// The column's type, and with it the hint a stray word's error gets (numeric columns with
    /// a few strays).
    fn column_type(&self, lenient: bool, col: &str) -> (ColumnType, String) {
        let numeric_with_strays = |hint: bool| {
            let hint = if hint && !lenient {
                format!(
                    "; the column holds numbers otherwise: fix the value, declare the column \
                     (`types = {{ {col} = \"categorical\" }}`) or read such values as missing \
                     (`on_bad_value = {{ {col} = \"missing\" }}`)"
                )
            } else {
                String::new()
            };
            (ColumnType::Numeric, hint)
        };
        if self.present == 0 {
            numeric_with_strays(false)
        } else if self.all_bool {
            (ColumnType::Boolean, String::new())
        } else if self.strays == 0 {
            numeric_with_strays(false)
        } else if self.all_timestamps {
            (ColumnType::Timestamp, String::new())
        } else if few_strays(self.strays, self.present) {
            numeric_with_strays(true)
        } else {
            (ColumnType::Categorical, String::new())
        }
    }
}

/// The values of one column as the second pass parses them.
enum Builder {
    Numeric(Vec<f64>),
    Boolean(Vec<Option<bool>>),
    Timestamp(Vec<Option<i64>>),
    Categorical { index: std::collections::HashMap<String, u32>, levels: Vec<String>, codes: Vec<Option<u32>> },
}

/// How one column is parsed: its builder, whether unreadable values become missing (and how
/// many did), and the hint its errors carry.
struct ColumnReader {
    builder: Builder,
    lenient: bool,
    bad: usize,
    hint: String,
}

impl ColumnReader {
    fn new(kind: ColumnType, rows: usize, lenient: bool, hint: String) -> ColumnReader {
        let builder = match kind {
            ColumnType::Numeric => Builder::Numeric(Vec::with_capacity(rows)),
            ColumnType::Boolean => Builder::Boolean(Vec::with_capacity(rows)),
            ColumnType::Timestamp => Builder::Timestamp(Vec::with_capacity(rows)),
            ColumnType::Categorical => {
                Builder::Categorical { index: Default::default(), levels: Vec::new(), codes: Vec::with_capacity(rows) }
            }
        };
        ColumnReader { builder, lenient, bad: 0, hint }
    }

    /// Parse one value (`missing` when it is a missing marker); a value that does not fit is
    /// the error message, or, lenient, a missing value.
    fn push(&mut self, s: &str, missing: bool, fmt: Option<&str>) -> std::result::Result<(), String> {
        let t = s.trim();
        let failed = match &mut self.builder {
            Builder::Numeric(v) => {
                let (x, failed) = if missing {
                    (f64::NAN, None)
                } else {
                    match t.parse::<f64>() {
                        Ok(x) if x.is_finite() => (x, None),
                        Ok(_) => (f64::NAN, Some(format!("`{t}` is not a finite number"))),
                        Err(_) => (f64::NAN, Some(format!("`{t}` is not a number (column is numeric){}", self.hint))),
                    }
                };
                v.push(x);
                failed
            }
            Builder::Boolean(v) => {
                let b = if missing { None } else { parse_bool(t) };
                v.push(b);
                (!missing && b.is_none())
                    .then(|| format!("`{t}` is not a boolean (expected TRUE/FALSE, true/false, 1/0)"))
            }
            Builder::Timestamp(v) => {
                let x = if missing { None } else { parse_timestamp(t, fmt) };
                v.push(x);
                (!missing && x.is_none())
                    .then(|| format!("`{t}` is not a timestamp (format {})", fmt.unwrap_or("YYYY-MM-DD[ HH:MM:SS]")))
            }
            Builder::Categorical { index, levels, codes } => {
                let code = (!missing).then(|| match index.get(t) {
                    Some(&c) => c,
                    None => {
                        levels.push(t.to_string());
                        let c = (levels.len() - 1) as u32;
                        index.insert(t.to_string(), c);
                        c
                    }
                });
                codes.push(code);
                None
            }
        };
        match failed {
            None => Ok(()),
            Some(_) if self.lenient => {
                self.bad += 1;
                Ok(())
            }
            Some(message) => Err(message),
        }
    }

    fn finish(self) -> ColumnData {
        match self.builder {
            Builder::Numeric(v) => ColumnData::Numeric(v),
            Builder::Boolean(v) => ColumnData::Boolean(v),
            Builder::Timestamp(v) => ColumnData::Timestamp(v),
            Builder::Categorical { levels, codes, .. } => ColumnData::Categorical { levels, codes },
        }
    }
}

/// Read a table from a stream in two passes (see [`read_csv`]).
fn read_stream(name: &str, opts: &CsvOptions, open: &Open<'_>) -> Result<Frame> {
    // Pass 1: the header, each record's width, and what each column holds.
    let mut records = Records::new(open()?, name, opts.delimiter)?;
    let delimiter = records.delimiter();
    let Some(first) = records.next_record()? else {
        return Err(Error::data(format!("{name}: the file is empty")));
    };
    let width = records.len();
    let names: Vec<String> = if opts.header {
        (0..width)
            .map(|i| {
                let f = records.field(i).trim();
                if f.is_empty() { format!("col_{i}") } else { f.to_string() }
            })
            .collect()
    } else {
        (0..width).map(|i| format!("col_{i}")).collect()
    };
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(Error::DataAt {
                path: name.into(),
                line: first,
                column: n.clone(),
                message: "this column name appears twice in the header".into(),
            });
        }
    }
    for (key, cols) in
        [("types", opts.types.keys().collect::<Vec<_>>()), ("on_bad_value", opts.bad_as_missing.iter().collect())]
    {
        for c in cols {
            if !names.contains(c) {
                let hint = crate::did_you_mean(c, names.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(Error::config(format!("data.{key}.{c}"), format!("no column `{c}` in {name}{hint}")));
            }
        }
    }
    let is_missing = |s: &str| {
        let t = s.trim();
        MISSING_MARKERS.contains(&t) || opts.missing.iter().any(|m| m == t)
    };
    let fmt = opts.timestamp_format.as_deref();
    let declared: Vec<Option<ColumnType>> = names.iter().map(|c| opts.types.get(c).copied()).collect();
    let mut evidence = vec![Evidence::new(); width];
    let mut rows = 0usize;
    let mut line = Some(first);
    if opts.header {
        line = records.next_record()?;
    }
    while let Some(at) = line {
        if records.len() != width {
            return Err(Error::DataAt {
                path: name.into(),
                line: at,
                column: names.get(records.len().min(width.saturating_sub(1))).cloned().unwrap_or_default(),
                message: format!("this line has {} fields, the header has {width}", records.len()),
            });
        }
        for (j, e) in evidence.iter_mut().enumerate() {
            let s = records.field(j);
            if declared[j].is_none() && !is_missing(s) {
                e.see(s, fmt);
            }
        }
        rows += 1;
        line = records.next_record()?;
    }
    if rows == 0 {
        return Err(Error::data(format!("{name}: the file has a header but no data rows")));
    }
    // Pass 2: parse every value into its column.
    let mut readers: Vec<ColumnReader> = names
        .iter()
        .enumerate()
        .map(|(j, col)| {
            let lenient = opts.bad_as_missing.contains(col);
            let (kind, hint) = match declared[j] {
                Some(k) => (k, String::new()),
                None => evidence[j].column_type(lenient, col),
            };
            ColumnReader::new(kind, rows, lenient, hint)
        })
        .collect();
    let mut records = Records::new(open()?, name, Some(delimiter))?;
    if opts.header {
        records.next_record()?;
    }
    let mut lines = Vec::with_capacity(rows);
    while let Some(at) = records.next_record()? {
        for (j, (reader, col)) in readers.iter_mut().zip(&names).enumerate() {
            let s = records.field(j);
            reader.push(s, is_missing(s), fmt).map_err(|message| Error::DataAt {
                path: name.into(),
                line: at,
                column: col.clone(),
                message,
            })?;
        }
        lines.push(at);
        if lines.len() == rows {
            break;
        }
    }
    let mut bad_as_missing = BTreeMap::new();
    let mut columns = Vec::with_capacity(width);
    for (reader, col) in readers.into_iter().zip(names) {
        if reader.lenient {
            bad_as_missing.insert(col.clone(), reader.bad);
        }
        columns.push(Column { name: col, data: reader.finish() });
    }
    let origin = crate::Origin { file: name.to_string(), lines, bad_as_missing };
    Ok(Frame::new(columns)?.with_origin(origin))
}

/// Values of a column that is numeric but for a few stray words: how many may stray before the
/// column counts as categorical (under 1 % of the present values, or under 20 and under 5 %).
fn few_strays(strays: usize, present: usize) -> bool {
    strays > 0 && (strays * 100 < present || (strays < 20 && strays * 20 < present))
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

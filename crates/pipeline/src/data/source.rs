//! Event logs read as a stream of Arrow record batches, for the query engine ([`crate::data::engine`]).
//!
//! A text log (comma, semicolon, tab, `|` or runs of whitespace, the CDNOW form) is read line by
//! line: only the columns an event plan uses are parsed, into fixed-size batches, so memory does
//! not grow with the log. A value that cannot be read fails with the file, the line and the
//! column, as promoml's CSV reader does. A gzip or zstd compressed log (`events.csv.gz`,
//! `log.txt.zst`) is decompressed as a stream on the way. A Parquet log (`.parquet`, `.pq`) is
//! scanned by DataFusion's Parquet reader and converted batch by batch; so is a directory of
//! Parquet files ([`Dataset`]: flat, or in Hive partitions such as `date=2024-01-01/`, whose
//! partitions outside the event window are never opened).
//!
//! Every source yields the same canonical schema ([`canonical_schema`]): the entity (`Float64`
//! for a numeric entity column, `Utf8` otherwise), the time in seconds since 1970-01-01 UTC,
//! one `Float64` per value column (missing values are NaN), the label column of `label = "sum"`
//! when it is not a value column, and the 1-based line of the event in its file (for Parquet:
//! the 1-based row; for a directory, the row counted over its files in path order), which also
//! orders events as they appear in the log.

use crate::sequence::{EventsPlan, Label};
use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Builder, Int64Array, Int64Builder, StringBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use promoml_core::io::{MISSING_MARKERS, ReadOptions, parse_timestamp};
use promoml_core::{ColumnType, Error, Result};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Canonical column: the entity.
pub(crate) const ENTITY: &str = "__entity";
/// Canonical column: the event time, seconds since 1970-01-01 UTC.
pub(crate) const TIME: &str = "__t";
/// Canonical column: the label column of `label = "sum"`, when it is not a value column.
pub(crate) const LABEL: &str = "__label";
/// Canonical column: the event's 1-based line in a text file (row in a Parquet file).
pub(crate) const LINE: &str = "__line";

/// The canonical name of the `i`-th value column.
pub(crate) fn value_name(i: usize) -> String {
    format!("__v{i}")
}

/// Rows per record batch of a text log.
const BATCH_ROWS: usize = 16_384;

/// Data lines of a text log read to decide whether an undeclared entity column is numeric.
const INFER_LINES: usize = 1_000;

/// Which columns of a log an event plan reads, and how.
#[derive(Debug, Clone)]
pub(crate) struct EventColumns {
    /// Entity column name.
    pub entity: String,
    /// Whether the entity is numeric (`Float64`) rather than text.
    pub entity_numeric: bool,
    /// Time column name.
    pub time: String,
    /// Value column names.
    pub values: Vec<String>,
    /// The `label = "sum"` column, when it is not a value column.
    pub label: Option<String>,
    /// For `label = "sum"`: the index of its column among the values, when it is one.
    pub label_in_values: Option<usize>,
}

impl EventColumns {
    /// The columns of `plan`; the entity's type is `entity_numeric`.
    fn of(plan: &EventsPlan, entity_numeric: bool) -> EventColumns {
        let (label, label_in_values) = match &plan.label {
            Label::Sum(c) => match plan.values.iter().position(|v| v == c) {
                Some(i) => (None, Some(i)),
                None => (Some(c.clone()), None),
            },
            _ => (None, None),
        };
        EventColumns {
            entity: plan.entity.clone(),
            entity_numeric,
            time: plan.time.clone(),
            values: plan.values.clone(),
            label,
            label_in_values,
        }
    }
}

/// The schema every event source yields (see the module documentation).
pub(crate) fn canonical_schema(cols: &EventColumns) -> SchemaRef {
    let entity = if cols.entity_numeric { DataType::Float64 } else { DataType::Utf8 };
    let mut fields = vec![Field::new(ENTITY, entity, false), Field::new(TIME, DataType::Int64, false)];
    fields.extend((0..cols.values.len()).map(|i| Field::new(value_name(i), DataType::Float64, false)));
    if cols.label.is_some() {
        fields.push(Field::new(LABEL, DataType::Float64, false));
    }
    fields.push(Field::new(LINE, DataType::UInt64, false));
    Arc::new(Schema::new(fields))
}

/// Whether `path` is read as Parquet: a Parquet file (by its extension, as
/// [`promoml_core::io::read_file`] does) or a directory (a Parquet dataset, [`Dataset`]).
pub(crate) fn is_parquet(path: &Path) -> bool {
    promoml_core::io::is_parquet_file(path) || path.is_dir()
}

/// What a source counted while it was read: events and, per column read leniently
/// (`data.on_bad_value`), the unreadable values taken as missing.
#[derive(Debug, Default)]
pub(crate) struct ReadCounts {
    /// Events (data lines or Parquet rows) read.
    pub events: AtomicU64,
    /// Unreadable values read as missing, per column.
    pub bad_as_missing: Mutex<BTreeMap<String, usize>>,
}

/// An event log as a DataFusion partition stream of canonical batches.
#[derive(Debug)]
pub(crate) struct TextEvents {
    path: PathBuf,
    read: ReadOptions,
    cols: EventColumns,
    schema: SchemaRef,
    counts: Arc<ReadCounts>,
}

impl TextEvents {
    /// A text log read with `read`'s delimiter, missing markers and timestamp format. An
    /// undeclared entity column is numeric when its first values are all numbers.
    pub(crate) fn open(path: &Path, read: &ReadOptions, plan: &EventsPlan) -> Result<TextEvents> {
        let entity_numeric = match read.types.get(&plan.entity) {
            Some(ColumnType::Numeric) => true,
            Some(ColumnType::Categorical) => false,
            Some(other) => {
                return Err(Error::config(
                    format!("data.types.{}", plan.entity),
                    format!("the events entity column must be numeric or categorical, not {other:?}"),
                ));
            }
            None => infer_entity_numeric(path, read, &plan.entity)?,
        };
        for v in plan.values.iter().chain(match &plan.label {
            Label::Sum(c) => Some(c),
            _ => None,
        }) {
            if let Some(t) = read.types.get(v).filter(|t| !matches!(t, ColumnType::Numeric | ColumnType::Boolean)) {
                return Err(Error::data(format!(
                    "events value column `{v}` is declared {t:?}; it must be numeric (declare it in `data.types`)"
                )));
            }
        }
        let cols = EventColumns::of(plan, entity_numeric);
        Ok(TextEvents {
            path: path.to_path_buf(),
            read: read.clone(),
            schema: canonical_schema(&cols),
            cols,
            counts: Arc::new(ReadCounts::default()),
        })
    }

    /// What this source counted (shared with every stream it starts).
    pub(crate) fn counts(&self) -> Arc<ReadCounts> {
        self.counts.clone()
    }

    /// The columns read.
    pub(crate) fn columns(&self) -> &EventColumns {
        &self.cols
    }
}

impl PartitionStream for TextEvents {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        use futures::StreamExt;
        let batches = batches_or_error(TextBatches::new(
            &self.path,
            &self.read,
            &self.cols,
            self.schema.clone(),
            self.counts.clone(),
        ));
        // Parse on a thread of its own, a few batches ahead of the plan that consumes them.
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let reader = std::thread::Builder::new().name("promoml-events-reader".into()).spawn(move || {
            for b in batches {
                if tx.blocking_send(b).is_err() {
                    break; // the plan stopped reading
                }
            }
        });
        let failed = reader.err().map(|e| Err(external(Error::data(format!("cannot start the event reader: {e}")))));
        let stream = futures::stream::iter(failed)
            .chain(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) }));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// The batches of a text log, or the one error that kept it from opening.
fn batches_or_error(b: Result<TextBatches>) -> Box<dyn Iterator<Item = datafusion::error::Result<RecordBatch>> + Send> {
    match b {
        Ok(b) => Box::new(b),
        Err(e) => Box::new(std::iter::once(Err(external(e)))),
    }
}

/// A promoml error carried through DataFusion (see [`crate::data::engine::from_datafusion`]).
pub(crate) fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

/// The records of a text log, one at a time: the current record's line and fields.
enum Lines {
    /// Runs of whitespace separate fields: the line and each field's byte range in it.
    Whitespace { reader: Box<dyn BufRead + Send>, text: String, ranges: Vec<(usize, usize)>, line: usize },
    /// A delimiter, with CSV quoting.
    Delimited { reader: ::csv::Reader<Box<dyn BufRead + Send>>, record: ::csv::StringRecord, line: usize },
}

impl Lines {
    /// The records of `path`, decompressed as they are read when it is gzip or zstd compressed
    /// ([`promoml_core::io::open_text`]).
    fn open(path: &Path, delimiter: u8) -> Result<Lines> {
        let file = promoml_core::io::open_text(path)?;
        Ok(if delimiter == b' ' {
            Lines::Whitespace { reader: file, text: String::new(), ranges: Vec::new(), line: 0 }
        } else {
            let reader =
                ::csv::ReaderBuilder::new().delimiter(delimiter).has_headers(false).flexible(true).from_reader(file);
            Lines::Delimited { reader, record: ::csv::StringRecord::new(), line: 0 }
        })
    }

    /// Move to the next non-empty record; its line, or `None` at the end of the file.
    fn next_record(&mut self, name: &str) -> Result<Option<usize>> {
        match self {
            Lines::Whitespace { reader, text, ranges, line } => loop {
                text.clear();
                ranges.clear();
                let n = reader.read_line(text).map_err(|e| Error::DataAt {
                    path: name.into(),
                    line: *line + 1,
                    column: "?".into(),
                    message: if e.kind() == std::io::ErrorKind::InvalidData {
                        "not valid UTF-8".into()
                    } else {
                        e.to_string()
                    },
                })?;
                if n == 0 {
                    return Ok(None);
                }
                *line += 1;
                let skip = if *line == 1 && text.starts_with('\u{feff}') { '\u{feff}'.len_utf8() } else { 0 };
                let base = text.as_ptr() as usize;
                for f in text[skip..].split_whitespace() {
                    let at = f.as_ptr() as usize - base;
                    ranges.push((at, at + f.len()));
                }
                if !ranges.is_empty() {
                    return Ok(Some(*line));
                }
            },
            Lines::Delimited { reader, record, line } => loop {
                // A read error (a corrupt compressed file) has no position: the line reached.
                let more = reader.read_record(record).map_err(|e| Error::DataAt {
                    path: name.into(),
                    line: e.position().map_or(*line + 1, |p| p.line() as usize),
                    column: "?".into(),
                    message: e.to_string(),
                })?;
                if !more {
                    return Ok(None);
                }
                *line = record.position().map_or(0, |p| p.line() as usize);
                if record.len() == 1 && record[0].trim().is_empty() {
                    continue;
                }
                return Ok(Some(*line));
            },
        }
    }

    /// Fields of the current record.
    fn len(&self) -> usize {
        match self {
            Lines::Whitespace { ranges, .. } => ranges.len(),
            Lines::Delimited { record, .. } => record.len(),
        }
    }

    /// Field `j` of the current record (a UTF-8 BOM before the first field of line 1 removed).
    fn field(&self, j: usize) -> &str {
        match self {
            Lines::Whitespace { text, ranges, .. } => &text[ranges[j].0..ranges[j].1],
            Lines::Delimited { record, line, .. } => {
                let f = &record[j];
                if *line == 1 && j == 0 { f.strip_prefix('\u{feff}').unwrap_or(f) } else { f }
            }
        }
    }
}

/// The delimiter of a text log: the declared one, or the one detected on its first lines.
fn delimiter_of(path: &Path, read: &ReadOptions) -> Result<u8> {
    if let Some(d) = read.csv.delimiter {
        return Ok(d);
    }
    let file = promoml_core::io::open_text(path)?;
    let mut head = String::new();
    for (i, line) in file.lines().take(50).enumerate() {
        head.push_str(&line.map_err(|e| Error::DataAt {
            path: path.display().to_string(),
            line: i + 1,
            column: "?".into(),
            message: if e.kind() == std::io::ErrorKind::InvalidData { "not valid UTF-8".into() } else { e.to_string() },
        })?);
        head.push('\n');
    }
    if head.trim().is_empty() {
        return Err(Error::data(format!("{}: the file is empty", path.display())));
    }
    Ok(promoml_core::io::detect_delimiter(&head))
}

/// The header line of a text log (or `col_0`, `col_1`, ... without one), or an error naming a
/// wanted column that is not there.
/// The column names come first in the result, then the position of each `wanted` column.
fn header(lines: &mut Lines, name: &str, read: &ReadOptions, wanted: &[&str]) -> Result<(Vec<String>, Vec<usize>)> {
    lines.next_record(name)?.ok_or_else(|| Error::data(format!("{name}: the file is empty")))?;
    let names: Vec<String> = if read.csv.header {
        (0..lines.len())
            .map(|i| {
                let f = lines.field(i).trim();
                if f.is_empty() { format!("col_{i}") } else { f.to_string() }
            })
            .collect()
    } else {
        (0..lines.len()).map(|i| format!("col_{i}")).collect()
    };
    let at = wanted
        .iter()
        .map(|w| {
            names.iter().position(|n| n == w).ok_or_else(|| {
                let hint = promoml_core::did_you_mean(w, names.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Error::data(format!("{name}: no column `{w}` (columns: {}){hint}", names.join(", ")))
            })
        })
        .collect::<Result<Vec<usize>>>()?;
    Ok((names, at))
}

/// Whether the entity column's present values on the first [`INFER_LINES`] data lines are all
/// numbers (then it is numeric, as the CSV reader would infer it).
fn infer_entity_numeric(path: &Path, read: &ReadOptions, entity: &str) -> Result<bool> {
    let name = path.display().to_string();
    if is_parquet(path) {
        return Ok(false);
    }
    let mut lines = Lines::open(path, delimiter_of(path, read)?)?;
    let (_, at) = header(&mut lines, &name, read, &[entity])?;
    let mut seen = 0;
    if !read.csv.header {
        // The first record was the header probe: it is data.
        lines = Lines::open(path, delimiter_of(path, read)?)?;
    }
    while seen < INFER_LINES && lines.next_record(&name)?.is_some() {
        let s = if at[0] < lines.len() { lines.field(at[0]).trim() } else { "" };
        if !is_missing(s, read) {
            if s.parse::<f64>().is_err() {
                return Ok(false);
            }
            seen += 1;
        }
    }
    Ok(true)
}

fn is_missing(s: &str, read: &ReadOptions) -> bool {
    MISSING_MARKERS.contains(&s) || read.csv.missing.iter().any(|m| m == s)
}

/// The batches of a text log.
struct TextBatches {
    lines: Lines,
    name: String,
    read: ReadOptions,
    cols: EventColumns,
    schema: SchemaRef,
    /// The column names (their number is the fields per record).
    names: Vec<String>,
    /// Positions of the entity, time, values and label (if any) among the fields.
    at: Vec<usize>,
    counts: Arc<ReadCounts>,
    bad: BTreeMap<String, usize>,
    done: bool,
}

impl TextBatches {
    fn new(
        path: &Path,
        read: &ReadOptions,
        cols: &EventColumns,
        schema: SchemaRef,
        counts: Arc<ReadCounts>,
    ) -> Result<TextBatches> {
        let name = path.display().to_string();
        let mut lines = Lines::open(path, delimiter_of(path, read)?)?;
        let mut wanted: Vec<&str> = vec![&cols.entity, &cols.time];
        wanted.extend(cols.values.iter().map(String::as_str));
        wanted.extend(cols.label.as_deref());
        let (names, at) = header(&mut lines, &name, read, &wanted)?;
        if !read.csv.header {
            lines = Lines::open(path, delimiter_of(path, read)?)?;
        }
        Ok(TextBatches {
            lines,
            name,
            read: read.clone(),
            cols: cols.clone(),
            schema,
            names,
            at,
            counts,
            bad: BTreeMap::new(),
            done: false,
        })
    }

    /// The next batch of up to [`BATCH_ROWS`] events, or `None` at the end of the file.
    fn batch(&mut self) -> Result<Option<RecordBatch>> {
        let nv = self.cols.values.len();
        let mut entity_num = Float64Builder::with_capacity(if self.cols.entity_numeric { BATCH_ROWS } else { 0 });
        let mut entity_text = StringBuilder::new();
        let mut time = Int64Builder::with_capacity(BATCH_ROWS);
        let mut values: Vec<Float64Builder> = (0..nv).map(|_| Float64Builder::with_capacity(BATCH_ROWS)).collect();
        let mut label = Float64Builder::with_capacity(if self.cols.label.is_some() { BATCH_ROWS } else { 0 });
        let mut lines = UInt64Builder::with_capacity(BATCH_ROWS);
        let fmt = self.read.csv.timestamp_format.clone();
        let mut rows = 0;
        while rows < BATCH_ROWS {
            let Some(line) = self.lines.next_record(&self.name)? else { break };
            let width = self.names.len();
            let place = |column: &str, message: String| Error::DataAt {
                path: self.name.clone(),
                line,
                column: column.into(),
                message,
            };
            if self.lines.len() != width {
                let n = self.lines.len();
                return Err(place(
                    &self.names[n.min(width - 1)],
                    format!("this line has {n} fields, the header has {width}"),
                ));
            }
            let e = self.lines.field(self.at[0]).trim();
            if is_missing(e, &self.read) {
                return Err(place(&self.cols.entity, "the events entity is missing".into()));
            }
            if self.cols.entity_numeric {
                match e.parse::<f64>() {
                    Ok(x) if x.is_finite() => entity_num.append_value(x),
                    _ => {
                        return Err(place(
                            &self.cols.entity,
                            format!(
                                "`{e}` is not a number (the entity column is numeric: its first values are numbers, \
                                 or it is declared so); declare it `types = {{ {} = \"categorical\" }}`",
                                self.cols.entity
                            ),
                        ));
                    }
                }
            } else {
                entity_text.append_value(e);
            }
            let t = self.lines.field(self.at[1]).trim();
            if is_missing(t, &self.read) {
                return Err(place(&self.cols.time, "the events time is missing".into()));
            }
            let Some(secs) = parse_timestamp(t, fmt.as_deref()) else {
                return Err(place(
                    &self.cols.time,
                    format!("`{t}` is not a timestamp (format {})", fmt.as_deref().unwrap_or("YYYY-MM-DD[ HH:MM:SS]")),
                ));
            };
            time.append_value(secs);
            for (v, b) in values.iter_mut().enumerate() {
                let col = &self.cols.values[v];
                let x = number(self.lines.field(self.at[2 + v]), col, &self.read, &mut self.bad)
                    .map_err(|m| place(col, m))?;
                b.append_value(x);
            }
            if let Some(col) = &self.cols.label {
                let x = number(self.lines.field(self.at[2 + nv]), col, &self.read, &mut self.bad)
                    .map_err(|m| place(col, m))?;
                label.append_value(x);
            }
            lines.append_value(line as u64);
            rows += 1;
        }
        if rows == 0 {
            return Ok(None);
        }
        self.counts.events.fetch_add(rows as u64, Ordering::Relaxed);
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        arrays.push(if self.cols.entity_numeric {
            Arc::new(entity_num.finish())
        } else {
            Arc::new(entity_text.finish())
        });
        arrays.push(Arc::new(time.finish()));
        arrays.extend(values.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        if self.cols.label.is_some() {
            arrays.push(Arc::new(label.finish()));
        }
        arrays.push(Arc::new(lines.finish()));
        Ok(Some(RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| Error::data(e.to_string()))?))
    }
}

/// A number of the value column `col`, NaN when missing; TRUE/FALSE read as 1/0. An unreadable
/// value is an error message, or missing (counted in `bad`) for a column of `data.on_bad_value`.
fn number(
    s: &str,
    col: &str,
    read: &ReadOptions,
    bad: &mut BTreeMap<String, usize>,
) -> std::result::Result<f64, String> {
    let s = s.trim();
    if is_missing(s, read) {
        return Ok(f64::NAN);
    }
    match s {
        "TRUE" | "True" | "true" => return Ok(1.0),
        "FALSE" | "False" | "false" => return Ok(0.0),
        _ => {}
    }
    let message = match s.parse::<f64>() {
        Ok(x) if x.is_finite() => return Ok(x),
        Ok(_) => format!("`{s}` is not a finite number"),
        Err(_) => format!("`{s}` is not a number (column is numeric)"),
    };
    if read.csv.bad_as_missing.contains(col) {
        *bad.entry(col.to_string()).or_default() += 1;
        return Ok(f64::NAN);
    }
    Err(message)
}

impl Iterator for TextBatches {
    type Item = datafusion::error::Result<RecordBatch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.batch() {
            Ok(Some(b)) => Some(Ok(b)),
            Ok(None) => {
                self.done = true;
                let mut counts = self.counts.bad_as_missing.lock().unwrap_or_else(|p| p.into_inner());
                for (c, n) in std::mem::take(&mut self.bad) {
                    *counts.entry(c).or_default() += n;
                }
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(external(e)))
            }
        }
    }
}

/// Hive's name for a missing partition value (`key=__HIVE_DEFAULT_PARTITION__`).
const HIVE_NULL: &str = "__HIVE_DEFAULT_PARTITION__";

/// What the values of a Hive partition directory (`key=value`) are, inferred from all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PartitionKind {
    /// Every value is a date `YYYY-MM-DD`: an Arrow `Date32`.
    Date,
    /// Every value is a month `YYYY-MM`: text, which sorts as the months do.
    Month,
    /// A column named `year` whose values are years `YYYY`: `Int64`.
    Year,
    /// Every value is an integer: `Int64`.
    Integer,
    /// Every value is a number: `Float64`.
    Number,
    /// Anything else (also the events time column in another format, parsed with
    /// `timestamp_format` like a text time column): `Utf8`.
    Text,
}

impl PartitionKind {
    /// The Arrow type DataFusion gives the partition column.
    fn data_type(self) -> DataType {
        match self {
            PartitionKind::Date => DataType::Date32,
            PartitionKind::Month | PartitionKind::Text => DataType::Utf8,
            PartitionKind::Year | PartitionKind::Integer => DataType::Int64,
            PartitionKind::Number => DataType::Float64,
        }
    }

    /// Infer the kind of partition column `name` from its values (the missing marker of Hive
    /// left out).
    fn infer(name: &str, values: &[&str]) -> PartitionKind {
        let present: Vec<&str> = values.iter().copied().filter(|v| *v != HIVE_NULL).collect();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let date = |v: &str| v.len() == 10 && parse_timestamp(v, Some("%Y-%m-%d")).is_some();
        let month = |v: &str| v.len() == 7 && v.as_bytes()[4] == b'-' && digits(&v[..4]) && digits(&v[5..]);
        if present.is_empty() {
            PartitionKind::Text
        } else if present.iter().all(|v| date(v)) {
            PartitionKind::Date
        } else if present.iter().all(|v| month(v)) {
            PartitionKind::Month
        } else if name.eq_ignore_ascii_case("year") && present.iter().all(|v| v.len() == 4 && digits(v)) {
            PartitionKind::Year
        } else if present.iter().all(|v| v.parse::<i64>().is_ok()) {
            PartitionKind::Integer
        } else if present.iter().all(|v| v.parse::<f64>().is_ok_and(f64::is_finite)) {
            PartitionKind::Number
        } else {
            PartitionKind::Text
        }
    }
}

/// A Hive partition column of a [`Dataset`].
#[derive(Debug, Clone)]
pub(crate) struct Partition {
    /// The key of its directories (`date` of `date=2024-01-01`).
    pub name: String,
    /// What its values are.
    pub kind: PartitionKind,
}

/// The days (since 1970-01-01) an event window covers: from `start` (or the beginning) to
/// `horizon_end`, both days included.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    /// The first day, if the window has a start.
    pub first: Option<i64>,
    /// The last day.
    pub last: i64,
}

impl Window {
    /// The window of an event plan: `start` (if any) to `horizon_end`.
    pub(crate) fn of(plan: &EventsPlan) -> Window {
        const DAY: i64 = 86_400;
        Window { first: plan.start.map(|s| s.div_euclid(DAY)), last: plan.horizon_end.div_euclid(DAY) }
    }
}

/// A directory of Parquet files read as one event log: the files directly in it, or in Hive
/// partition directories (`date=2024-01-01/part-0.parquet`, `year=1997/month=01/...`) whose
/// keys become columns. Names starting with `.` or `_` (`_SUCCESS`, `.crc` files, `_temporary/`)
/// are left out, as Spark and Hive do; of the rest, the `.parquet` files are read (or, when there
/// is none, the `.pq` files).
#[derive(Debug)]
pub(crate) struct Dataset {
    /// The directory.
    pub dir: PathBuf,
    /// Its Parquet files, sorted by path.
    pub files: Vec<PathBuf>,
    /// Each file's partition values (in the order of `partitions`).
    pub values: Vec<Vec<String>>,
    /// The extension of the files read, without the dot.
    pub extension: &'static str,
    /// The partition columns, outermost directory first.
    pub partitions: Vec<Partition>,
}

impl Dataset {
    /// Find the Parquet files under `dir` and the partition columns their directories name.
    /// Every file must sit under the same partition keys, in the same order, or directly in
    /// `dir` when there are none; the error names the first file that does not.
    pub(crate) fn discover(dir: &Path) -> Result<Dataset> {
        let mut all = Vec::new();
        walk(dir, &mut all)?;
        let ext = |p: &PathBuf| p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let extension = if all.iter().any(|p| ext(p) == "parquet") {
            "parquet"
        } else if all.iter().any(|p| ext(p) == "pq") {
            "pq"
        } else {
            return Err(Error::data(format!(
                "{}: no Parquet files (*.parquet, *.pq) in this directory or its partition directories",
                dir.display()
            )));
        };
        let mut files: Vec<PathBuf> = all.into_iter().filter(|p| ext(p) == extension).collect();
        files.sort();
        let mut keys: Option<(Vec<String>, &Path)> = None;
        let mut values = Vec::with_capacity(files.len());
        for f in &files {
            let rel = f.strip_prefix(dir).unwrap_or(f);
            let dirs: Vec<String> = rel
                .parent()
                .into_iter()
                .flat_map(|p| p.components())
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let pairs: Option<Vec<(String, String)>> = dirs
                .iter()
                .map(|d| d.split_once('=').filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())))
                .collect();
            let Some(pairs) = pairs else {
                return Err(Error::data(format!(
                    "{}: this Parquet file is in a directory that is not a Hive partition (`key=value`); \
                     a Parquet dataset holds its files directly in {} or in partition directories such as \
                     `date=2024-01-01/`",
                    f.display(),
                    dir.display()
                )));
            };
            let (k, v): (Vec<String>, Vec<String>) = pairs.into_iter().unzip();
            match &keys {
                None => keys = Some((k, f)),
                Some((first, at)) if *first != k => {
                    let show = |k: &[String]| if k.is_empty() { "none".to_string() } else { k.join("/") };
                    return Err(Error::data(format!(
                        "{}: its partition keys ({}) differ from those of {} ({}); every file of a Parquet \
                         dataset sits under the same partition directories",
                        f.display(),
                        show(&k),
                        at.display(),
                        show(first)
                    )));
                }
                Some(_) => {}
            }
            values.push(v);
        }
        let names = keys.map(|(k, _)| k).unwrap_or_default();
        let partitions = names
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let vs: Vec<&str> = values.iter().map(|v| v[i].as_str()).collect();
                Partition { name: name.clone(), kind: PartitionKind::infer(name, &vs) }
            })
            .collect();
        Ok(Dataset { dir: dir.to_path_buf(), files, values, extension, partitions })
    }

    /// Whether the partitions of `file` (its index) can hold events of `window`: always, but for a
    /// partition that is the events time column, or a date-like partition (a date, a month, a
    /// year) of a log whose time column is in the files, taken to hold the events of that day,
    /// month or year. (Partition values are read as days, months and years of UTC.)
    fn keeps(&self, file: usize, window: Window, time: &str) -> bool {
        use promoml_core::io::{civil_from_days, days_from_civil};
        self.pruned(time).all(|(i, p)| {
            let v = self.values[file][i].as_str();
            if v == HIVE_NULL {
                return false; // the filter's comparison with a missing value is not true either
            }
            let day = |v: &str| parse_timestamp(v, Some("%Y-%m-%d")).map(|t| t.div_euclid(86_400));
            // The first and last day the partition covers.
            let span = match p.kind {
                PartitionKind::Date => day(v).map(|d| (d, d)),
                PartitionKind::Month => day(&format!("{v}-01")).map(|lo| {
                    let (y, m, _) = civil_from_days(lo);
                    let next = if m == 12 { days_from_civil(y + 1, 1, 1) } else { days_from_civil(y, m + 1, 1) };
                    (lo, next - 1)
                }),
                PartitionKind::Year => {
                    v.parse::<i64>().ok().map(|y| (days_from_civil(y, 1, 1), days_from_civil(y + 1, 1, 1) - 1))
                }
                _ => None,
            };
            let Some((lo, hi)) = span else { return true };
            hi >= window.first.unwrap_or(i64::MIN) && lo <= window.last
        })
    }

    /// The partition columns the event window prunes, with their index.
    fn pruned<'a>(&'a self, time: &'a str) -> impl Iterator<Item = (usize, &'a Partition)> + 'a {
        let time_is_partition = self.partitions.iter().any(|p| p.name == time);
        self.partitions.iter().enumerate().filter(move |(_, p)| {
            matches!(p.kind, PartitionKind::Date | PartitionKind::Month | PartitionKind::Year)
                && (p.name == time || !time_is_partition)
        })
    }

    /// The filter on partition columns that keeps the event window (`None`: nothing to prune):
    /// DataFusion evaluates it on the directories' values, so pruned files are never opened.
    fn window_filter(&self, window: Window, time: &str) -> Option<datafusion::prelude::Expr> {
        use datafusion::common::{Column, ScalarValue};
        use datafusion::prelude::{Expr, lit};
        let first = window.first.map(promoml_core::io::civil_from_days);
        let (y1, m1, _) = promoml_core::io::civil_from_days(window.last);
        let mut filter: Option<Expr> = None;
        for (_, p) in self.pruned(time) {
            let c = Expr::Column(Column::new_unqualified(&p.name));
            let (lo, hi) = match p.kind {
                PartitionKind::Date => (
                    window.first.map(|d| lit(ScalarValue::Date32(Some(d as i32)))),
                    lit(ScalarValue::Date32(Some(window.last as i32))),
                ),
                PartitionKind::Month => {
                    (first.map(|(y, m, _)| lit(format!("{y:04}-{m:02}"))), lit(format!("{y1:04}-{m1:02}")))
                }
                PartitionKind::Year => (first.map(|(y, _, _)| lit(y)), lit(y1)),
                _ => continue,
            };
            let keep = match lo {
                Some(lo) => c.between(lo, hi),
                None => c.lt_eq(hi),
            };
            filter = Some(match filter {
                Some(f) => f.and(keep),
                None => keep,
            });
        }
        filter
    }

    /// The column names of the dataset: those of its first file, then the partition columns.
    pub(crate) fn columns(&self) -> Result<Vec<String>> {
        let first = self.files.first().expect("a dataset has files");
        let mut names = promoml_core::io::parquet_columns(first)?;
        names.extend(self.partitions.iter().map(|p| p.name.clone()));
        Ok(names)
    }

    /// Scan the dataset through `ctx`: DataFusion's listing table over the directory, with the
    /// partition columns, read as one partition (files in path order, rows in file order, so
    /// the row numbers that order an entity's events are the same on every run), filtered to
    /// `plan`'s event window by partition where a partition says the time. The schema is that
    /// of the first file the window keeps (other files are never opened to infer it).
    async fn scan(&self, ctx: &datafusion::prelude::SessionContext, plan: &EventsPlan) -> Result<ScanOf> {
        use datafusion::datasource::file_format::parquet::ParquetFormat;
        use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
        let name = self.dir.display().to_string();
        let fail = |e: DataFusionError| Error::data(format!("{name}: {}", e.find_root()));
        let window = Window::of(plan);
        let kept: Vec<PathBuf> = (0..self.files.len())
            .filter(|&i| self.keeps(i, window, &plan.time))
            .map(|i| self.files[i].clone())
            .collect();
        let Some(first) = kept.first() else {
            return Err(Error::data(format!(
                "{name}: no partition of this Parquet dataset falls in the event window (partitions: {})",
                self.partitions.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
            )));
        };
        let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
            .with_file_extension(format!(".{}", self.extension))
            .with_table_partition_cols(self.partitions.iter().map(|p| (p.name.clone(), p.kind.data_type())).collect())
            .with_target_partitions(1);
        let state = ctx.state();
        let first_url = ListingTableUrl::parse(first.display().to_string()).map_err(fail)?;
        let schema = options
            .infer_schema(&state, &first_url)
            .await
            .map_err(|e| Error::data(format!("{}: {}", first.display(), e.find_root())))?;
        for p in &self.partitions {
            if schema.field_with_name(&p.name).is_ok() {
                return Err(Error::data(format!(
                    "{name}: `{}` is both a partition directory (`{}=...`) and a column of the files (as in {})",
                    p.name,
                    p.name,
                    first.display()
                )));
            }
        }
        // A trailing separator: the URL is a directory, listed with its partition directories.
        let url = ListingTableUrl::parse(format!("{}{}", name.trim_end_matches('/'), std::path::MAIN_SEPARATOR))
            .map_err(fail)?;
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        let table = ListingTable::try_new(config).map_err(fail)?;
        let mut df = ctx.read_table(Arc::new(table)).map_err(fail)?;
        if let Some(f) = self.window_filter(window, &plan.time) {
            df = df.filter(f).map_err(fail)?;
        }
        Ok(ScanOf { df, files: kept })
    }
}

/// A scan of a Parquet file or dataset and the files it may open (to name the one at fault).
struct ScanOf {
    df: datafusion::prelude::DataFrame,
    files: Vec<PathBuf>,
}

/// The files under `dir`, recursively, leaving out names that start with `.` or `_`.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| Error::Io { path: dir.to_path_buf(), source };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links, as DataFusion's listing does.
        let meta = std::fs::metadata(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if meta.is_file() && meta.len() > 0 {
            out.push(path);
        }
    }
    Ok(())
}

/// The first of `files` whose Parquet footer cannot be read, with the reason: the file a scan
/// error comes from, when it is one that is not Parquet or is cut short.
fn unreadable(files: &[PathBuf]) -> Option<Error> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    files.iter().find_map(|f| {
        let file = match std::fs::File::open(f) {
            Ok(file) => file,
            Err(source) => return Some(Error::Io { path: f.clone(), source }),
        };
        ParquetRecordBatchReaderBuilder::try_new(file)
            .err()
            .map(|e| Error::data(format!("{}: not a readable Parquet file ({e})", f.display())))
    })
}

/// Parquet events: each batch of the scanned columns converted to the canonical schema. The
/// time column may be a timestamp (any unit), a date, or text in `timestamp_format`. The log is
/// a Parquet file or a directory of them ([`Dataset`]); for a directory, rows are counted over
/// its files in path order.
#[derive(Debug)]
pub(crate) struct ParquetEvents {
    name: String,
    read: ReadOptions,
    cols: EventColumns,
    schema: SchemaRef,
    /// The scan of the file, selecting entity, time, values and label in that order.
    scan: datafusion::prelude::DataFrame,
    /// The files the scan may open (to name the one a read error comes from).
    files: Vec<PathBuf>,
    counts: Arc<ReadCounts>,
}

impl ParquetEvents {
    /// Scan `path`'s columns of `plan` through `ctx`: a Parquet file, or a directory of them
    /// (a [`Dataset`], its partitions outside the event window pruned).
    pub(crate) async fn open(
        ctx: &datafusion::prelude::SessionContext,
        path: &Path,
        read: &ReadOptions,
        plan: &EventsPlan,
    ) -> Result<ParquetEvents> {
        let name = path.display().to_string();
        let ScanOf { df, files } = if path.is_dir() {
            Dataset::discover(path)?.scan(ctx, plan).await?
        } else {
            let df =
                ctx.read_parquet(name.as_str(), datafusion::prelude::ParquetReadOptions::default()).await.map_err(
                    |e| unreadable(&[path.to_path_buf()]).unwrap_or_else(|| Error::data(format!("{name}: {e}"))),
                )?;
            ScanOf { df, files: vec![path.to_path_buf()] }
        };
        let file_schema = df.schema().clone();
        let field = |c: &str| {
            file_schema.field_with_unqualified_name(c).map(|f| f.data_type().clone()).map_err(|_| {
                let names: Vec<&str> = file_schema.fields().iter().map(|f| f.name().as_str()).collect();
                Error::data(format!("{name}: no column `{c}` (columns: {})", names.join(", ")))
            })
        };
        let entity_numeric = field(&plan.entity)?.is_numeric();
        let cols = EventColumns::of(plan, entity_numeric);
        let mut select: Vec<&str> = vec![&cols.entity, &cols.time];
        select.extend(cols.values.iter().map(String::as_str));
        select.extend(cols.label.as_deref());
        for c in &select {
            field(c)?;
        }
        let scan = df.select_columns(&select).map_err(|e| Error::data(format!("{name}: {e}")))?;
        Ok(ParquetEvents {
            name,
            read: read.clone(),
            schema: canonical_schema(&cols),
            cols,
            scan,
            files,
            counts: Arc::new(ReadCounts::default()),
        })
    }

    /// What this source counted.
    pub(crate) fn counts(&self) -> Arc<ReadCounts> {
        self.counts.clone()
    }

    /// The columns read.
    pub(crate) fn columns(&self) -> &EventColumns {
        &self.cols
    }
}

impl PartitionStream for ParquetEvents {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        use futures::{StreamExt, TryStreamExt};
        let scan = self.scan.clone();
        let convert = Convert {
            name: self.name.clone(),
            fmt: self.read.csv.timestamp_format.clone(),
            cols: self.cols.clone(),
            schema: self.schema.clone(),
            counts: self.counts.clone(),
            rows: Arc::new(AtomicU64::new(0)),
        };
        let files = self.files.clone();
        // A scan error (a file that is not Parquet, or cut short) names its file when it can be
        // found by its footer; values that cannot be converted name theirs in `convert`.
        let locate = move |e: DataFusionError| unreadable(&files).map_or(e, external);
        let stream = futures::stream::once(async move { scan.execute_stream().await })
            .try_flatten()
            .map(move |b| b.map_err(&locate).and_then(|b| convert.batch(&b).map_err(external)));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), stream))
    }
}

/// Converts scanned Parquet batches to the canonical schema.
struct Convert {
    name: String,
    fmt: Option<String>,
    cols: EventColumns,
    schema: SchemaRef,
    counts: Arc<ReadCounts>,
    rows: Arc<AtomicU64>,
}

impl Convert {
    fn batch(&self, b: &RecordBatch) -> Result<RecordBatch> {
        use datafusion::arrow::compute::cast;
        let first = self.rows.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        self.counts.events.fetch_add(b.num_rows() as u64, Ordering::Relaxed);
        let arrow = |e: datafusion::arrow::error::ArrowError| Error::data(format!("{}: {e}", self.name));
        let row_err = |i: usize, column: &str, message: String| Error::DataAt {
            path: self.name.clone(),
            line: (first as usize) + i + 1,
            column: column.into(),
            message,
        };
        let no_nulls = |a: &ArrayRef, column: &str, role: &str| -> Result<()> {
            match (0..a.len()).find(|&i| a.is_null(i)) {
                Some(i) => Err(row_err(i, column, format!("the {role} is missing"))),
                None => Ok(()),
            }
        };
        let entity = b.column(0);
        no_nulls(entity, &self.cols.entity, "events entity")?;
        let entity = if self.cols.entity_numeric {
            cast(entity, &DataType::Float64).map_err(arrow)?
        } else {
            cast(entity, &DataType::Utf8).map_err(arrow)?
        };
        let t = b.column(1);
        no_nulls(t, &self.cols.time, "events time")?;
        let time: Int64Array = match t.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                let s = cast(t, &DataType::Utf8).map_err(arrow)?;
                let s = s.as_any().downcast_ref::<datafusion::arrow::array::StringArray>().expect("cast to Utf8");
                let mut out = Int64Builder::with_capacity(s.len());
                for i in 0..s.len() {
                    let v = s.value(i).trim();
                    let secs = parse_timestamp(v, self.fmt.as_deref()).ok_or_else(|| {
                        row_err(
                            i,
                            &self.cols.time,
                            format!(
                                "`{v}` is not a timestamp (format {})",
                                self.fmt.as_deref().unwrap_or("YYYY-MM-DD[ HH:MM:SS]")
                            ),
                        )
                    })?;
                    out.append_value(secs);
                }
                out.finish()
            }
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 => {
                let secs = cast(t, &DataType::Timestamp(TimeUnit::Second, None)).map_err(arrow)?;
                let secs = cast(&secs, &DataType::Int64).map_err(arrow)?;
                secs.as_any().downcast_ref::<Int64Array>().expect("cast to Int64").clone()
            }
            other => {
                return Err(Error::data(format!(
                    "{}: events time column `{}` is {other}; it must be a timestamp, a date or text",
                    self.name, self.cols.time
                )));
            }
        };
        let mut arrays: Vec<ArrayRef> = vec![entity, Arc::new(time)];
        let numbers = |a: &ArrayRef, column: &str| -> Result<ArrayRef> {
            let a = if let Some(bools) = a.as_any().downcast_ref::<BooleanArray>() {
                cast(bools, &DataType::Float64).map_err(arrow)?
            } else if a.data_type().is_numeric() {
                cast(a, &DataType::Float64).map_err(arrow)?
            } else {
                return Err(Error::data(format!(
                    "{}: events value column `{column}` is {}; it must be numeric",
                    self.name,
                    a.data_type()
                )));
            };
            // Missing values are NaN, as in promoml's frames.
            let f = a.as_any().downcast_ref::<datafusion::arrow::array::Float64Array>().expect("cast to Float64");
            Ok(Arc::new(
                f.iter().map(|x| Some(x.unwrap_or(f64::NAN))).collect::<datafusion::arrow::array::Float64Array>(),
            ))
        };
        for (v, name) in self.cols.values.iter().enumerate() {
            arrays.push(numbers(b.column(2 + v), name)?);
        }
        if let Some(c) = &self.cols.label {
            arrays.push(numbers(b.column(2 + self.cols.values.len()), c)?);
        }
        let lines: datafusion::arrow::array::UInt64Array = (0..b.num_rows() as u64).map(|i| first + i + 1).collect();
        arrays.push(Arc::new(lines));
        RecordBatch::try_new(self.schema.clone(), arrays).map_err(arrow)
    }
}

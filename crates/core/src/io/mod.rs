//! Reading data files into a [`Frame`](crate::Frame): CSV (robustly) and Parquet.

mod csv;
mod parquet;
mod time;

pub use self::csv::{CsvOptions, MISSING_MARKERS, detect_delimiter, read_csv, read_csv_str};
pub use self::parquet::{parquet_columns, read_parquet};
pub use self::time::{civil_from_days, days_from_civil, parse_timestamp};

use crate::{ColumnType, Frame, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// How to read a data file, whatever its format.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// CSV settings (ignored for Parquet).
    pub csv: CsvOptions,
    /// Declared column types; they override inference (CSV) or convert (Parquet).
    pub types: BTreeMap<String, ColumnType>,
}

/// Read a CSV or Parquet file, chosen by extension (`.parquet`/`.pq` are Parquet, anything else CSV).
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<Frame> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "parquet" || ext == "pq" {
        read_parquet(path, &opts.types)
    } else {
        let mut csv = opts.csv.clone();
        csv.types.extend(opts.types.clone());
        read_csv(path, &csv)
    }
}

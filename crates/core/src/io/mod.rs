//! Reading data files into a [`Frame`](crate::Frame): CSV (robustly) and Parquet. CSV and text
//! files may be gzip or zstd compressed ([`Compression`], by extension: `table.csv.gz`).

mod compress;
mod csv;
mod parquet;
mod records;
mod time;

pub use self::compress::{Compression, format_extension, is_parquet_file, open_text, read_bytes};
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

/// Read a CSV or Parquet file, chosen by extension (`.parquet`/`.pq` are Parquet, anything else
/// CSV). A CSV file ending in `.gz`/`.gzip` or `.zst`/`.zstd` is decompressed as it is read
/// (`table.csv.gz`); a compressed Parquet file is refused (Parquet compresses its pages itself).
pub fn read_file(path: &Path, opts: &ReadOptions) -> Result<Frame> {
    compress::refuse_compressed_parquet(path)?;
    if is_parquet_file(path) {
        read_parquet(path, &opts.types)
    } else {
        let mut csv = opts.csv.clone();
        csv.types.extend(opts.types.clone());
        read_csv(path, &csv)
    }
}

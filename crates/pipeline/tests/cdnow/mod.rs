//! The CDNOW log and its read options, shared by the event-log tests (`events_engine.rs`,
//! `events_sql.rs`, `inputs.rs`).

use promoml_core::ColumnType;
use promoml_core::io::{CsvOptions, ReadOptions};
use std::path::{Path, PathBuf};

/// The workspace root (tests run in the crate's directory).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The raw CDNOW purchase log in `../shared/data`.
pub fn cdnow() -> PathBuf {
    root().join("../shared/data/raw/CDNOW_master.txt")
}

/// `[data]` read options of the CDNOW pipelines.
pub fn cdnow_read() -> ReadOptions {
    let mut types = std::collections::BTreeMap::new();
    types.insert("customer_id".to_string(), ColumnType::Numeric);
    types.insert("date".to_string(), ColumnType::Timestamp);
    ReadOptions {
        csv: CsvOptions { delimiter: Some(b' '), timestamp_format: Some("%Y%m%d".into()), ..CsvOptions::default() },
        types,
    }
}

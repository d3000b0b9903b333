//! The CDNOW log and its read options, shared by the event-log tests (`events_engine.rs`,
//! `events_sql.rs`, `inputs.rs`).
// Each test file uses what it needs of this module.
#![allow(dead_code)]

use promoml_core::ColumnType;
use promoml_core::io::{CsvOptions, ReadOptions};
use promoml_pipeline::sequence::EventsSpec;
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

/// The `[data.events]` section of a pipeline file of the repository, with `extra` TOML lines
/// replacing or adding keys (`"<none>"` removes one).
pub fn pipeline_events(file: &str, extra: &str) -> EventsSpec {
    let text = std::fs::read_to_string(root().join("pipelines").join(file)).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    with_keys(doc["data"].as_table().unwrap()["events"].as_table().unwrap().clone(), extra)
}

/// The events section `t` with `extra` TOML lines replacing or adding keys (`"<none>"` removes
/// one).
pub fn with_keys(mut t: toml::Table, extra: &str) -> EventsSpec {
    for (k, v) in toml::from_str::<toml::Table>(extra).unwrap() {
        if v.as_str() == Some("<none>") {
            t.remove(&k);
        } else {
            t.insert(k, v);
        }
    }
    toml::Value::Table(t).try_into().unwrap()
}

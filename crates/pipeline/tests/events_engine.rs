//! The event plan on the query engine (`data::events::build_file`) against the in-memory builder
//! it replaces (`sequence::build`, kept as the oracle): on the real CDNOW log, every summary,
//! label and sequence step must be bit-identical, for the event plans of the pipelines that
//! read it (`pipelines/cdnow-repurchase.toml`, `cdnow-spend.toml`, `seed-lstm.toml`) and for every
//! encoding and option the sequence tests use. Also: a Parquet copy of the log, a log larger
//! than the engine's memory pool (the sort spills), and errors that name file, line and column.

use promoml_core::io::{CsvOptions, ReadOptions, read_file};
use promoml_core::{ColumnData, ColumnType, Frame};
use promoml_pipeline::data::events::build_file;
use promoml_pipeline::sequence::{EntityTable, EventsPlan, EventsSpec, ROW_ID, build};
use std::path::{Path, PathBuf};

mod cdnow;
use cdnow::{cdnow, cdnow_read, pipeline_events, with_keys};

/// The CDNOW event plan with `extra` TOML lines replacing or adding keys.
fn cdnow_events(extra: &str) -> EventsSpec {
    let t: toml::Table = toml::from_str(
        "entity = \"customer_id\"\ntime = \"date\"\nvalues = [\"number_of_cds\", \"dollar_value\"]\n\
         start = \"1997-01-01\"\ncutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"",
    )
    .unwrap();
    with_keys(t, extra)
}

/// Assert that two entity tables are bit-identical: the same columns in the same order, every
/// value with the same bits, and each row's sequence (found through its [`ROW_ID`]) with the
/// same length and the same bits in every step and channel.
fn assert_identical(old: &EntityTable, new: &EntityTable, what: &str) {
    let (a, b) = (&old.frame, &new.frame);
    assert_eq!(a.names(), b.names(), "{what}: columns");
    assert_eq!(a.n_rows(), b.n_rows(), "{what}: rows");
    for c in a.columns() {
        if c.name == ROW_ID {
            continue;
        }
        let d = &b.column(&c.name).unwrap().data;
        match (&c.data, d) {
            (ColumnData::Numeric(x), ColumnData::Numeric(y)) => {
                for (i, (p, q)) in x.iter().zip(y).enumerate() {
                    assert_eq!(p.to_bits(), q.to_bits(), "{what}: column {} row {i}: {p} vs {q}", c.name);
                }
            }
            (x, y) => assert_eq!(x, y, "{what}: column {}", c.name),
        }
    }
    let row_ids = |f: &Frame| -> Vec<usize> {
        let c = &f.column(ROW_ID).unwrap().data;
        (0..c.len()).map(|i| c.value_f64(i) as usize).collect()
    };
    match (&old.sequences, &new.sequences) {
        (None, None) => {}
        (Some(s), Some(t)) => {
            assert_eq!(s.channels, t.channels, "{what}: channels");
            assert_eq!(s.data.shape(), t.data.shape(), "{what}: sequence shape");
            let (ra, rb) = (row_ids(a), row_ids(b));
            let mut seen = vec![false; rb.len()];
            for (r, (&i, &j)) in ra.iter().zip(&rb).enumerate() {
                assert!(!std::mem::replace(&mut seen[j], true), "{what}: sequence {j} used twice");
                assert_eq!(s.lengths[i], t.lengths[j], "{what}: row {r} sequence length");
                let (x, y) = (s.data.index_axis(ndarray::Axis(0), i), t.data.index_axis(ndarray::Axis(0), j));
                for ((k, p), q) in x.indexed_iter().zip(y.iter()) {
                    assert_eq!(p.to_bits(), q.to_bits(), "{what}: row {r} step/channel {k:?}: {p} vs {q}");
                }
            }
        }
        _ => panic!("{what}: one table has sequences, the other not"),
    }
}

/// Build the table of `spec` on `log` both ways and compare.
fn compare(log: &Path, read: &ReadOptions, spec: &EventsSpec, target: &str, limit: usize, what: &str) -> EntityTable {
    let plan = EventsPlan::from_spec(spec, read.csv.timestamp_format.as_deref()).unwrap();
    let events = read_file(log, read).unwrap();
    let old = build(&events, &plan, target).unwrap();
    let new = build_file(log, read, &plan, target, limit).unwrap();
    assert_eq!(new.events, events.n_rows() as u64, "{what}: events counted");
    assert_identical(&old, &new.table, what);
    new.table
}

const LIMIT: usize = promoml_pipeline::data::engine::DEFAULT_MEMORY_LIMIT;

#[test]
fn cdnow_pipelines_features_are_bit_identical() {
    for file in ["cdnow-repurchase.toml", "cdnow-spend.toml", "seed-lstm.toml"] {
        let t = compare(&cdnow(), &cdnow_read(), &pipeline_events(file, ""), "buys_again", LIMIT, file);
        // The real log: 23,570 customers, all of whom bought in the first quarter of 1997.
        assert_eq!(t.frame.n_rows(), 23_570, "{file}");
        assert_eq!(t.sequences.as_ref().unwrap().data.shape(), &[23_570, 39, 3], "{file}");
    }
}

#[test]
fn cdnow_every_encoding_and_option_is_bit_identical() {
    for extra in [
        "transform = \"none\"",
        "encoding = \"last_n\"\nsteps = 5",
        "encoding = \"last_n\"\ntransform = \"none\"",
        "encoding = \"none\"",
        "bin = \"day\"",
        "bin = \"month\"\nsteps = 4",
        "bin_days = 10",
        "steps = 10",
        "start = \"<none>\"",
        "start = \"<none>\"\nbin = \"month\"",
        "start = \"1997-03-01\"",
        "cutoff = \"1997-06-30T12:00:00\"\nhorizon_end = \"1997-12-31\"",
        "label = \"count\"",
        "label = \"sum\"\nlabel_column = \"dollar_value\"",
        "label = \"sum\"\nlabel_column = \"number_of_cds\"\nvalues = [\"dollar_value\"]",
        "values = []",
        "periods = 4\nrecent_days = [7, 400]",
        "periods = 12\nperiod_days = 7\nrecent_days = []",
    ] {
        compare(&cdnow(), &cdnow_read(), &cdnow_events(extra), "y", LIMIT, extra);
    }
}

/// A shuffled, CDNOW-shaped log of `n` customers with events out of time order (a customer's
/// events scattered over the file, same-day events), bigger than a 16 MiB memory pool.
fn shuffled_log(dir: &Path, n: u64) -> PathBuf {
    use std::fmt::Write as _;
    let mut z = 42u64;
    let mut next = move || {
        z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        z >> 33
    };
    let mut text = String::from("customer_id  date number_of_cds  dollar_value\n");
    for _ in 0..n * 8 {
        let c = next() % n + 1;
        let d = next() % 546;
        let (y, doy) = if d >= 365 { (1998, d - 365) } else { (1997, d) };
        let days = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
        let (mut m, mut dd) = (0, doy);
        while dd >= days[m] {
            dd -= days[m];
            m += 1;
        }
        let cds = next() % 5 + 1;
        writeln!(text, " {c:06}  {y}{:02}{:02}  {cds}  {}.{:02}", m + 1, dd + 1, cds * (5 + next() % 20), next() % 100)
            .unwrap();
    }
    let path = dir.join("shuffled.txt");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_log_bigger_than_the_memory_pool_spills_and_stays_identical() {
    let dir = tempfile::tempdir().unwrap();
    let log = shuffled_log(dir.path(), 60_000);
    let spec = pipeline_events("cdnow-repurchase.toml", "");
    let t = compare(&log, &cdnow_read(), &spec, "buys_again", 16 << 20, "spilling");
    assert!(t.frame.n_rows() > 50_000);
    let last_n = cdnow_events("encoding = \"last_n\"\nsteps = 7");
    compare(&log, &cdnow_read(), &last_n, "y", 16 << 20, "spilling last_n");
}

#[test]
fn a_parquet_copy_of_the_log_gives_the_same_table() {
    use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use std::sync::Arc;
    let events = read_file(&cdnow(), &cdnow_read()).unwrap();
    let col = |n: &str| events.column(n).unwrap().data.clone();
    let ids: Int64Array = match col("customer_id") {
        ColumnData::Numeric(v) => v.iter().map(|x| *x as i64).collect(),
        other => panic!("{other:?}"),
    };
    let dates: Date32Array = match col("date") {
        ColumnData::Timestamp(v) => v.iter().map(|t| t.map(|t| (t / 86_400) as i32)).collect(),
        other => panic!("{other:?}"),
    };
    let num = |n: &str| -> Float64Array {
        match col(n) {
            ColumnData::Numeric(v) => v.into_iter().collect(),
            other => panic!("{other:?}"),
        }
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Int64, false),
        Field::new("date", DataType::Date32, true),
        Field::new("number_of_cds", DataType::Float64, false),
        Field::new("dollar_value", DataType::Float64, false),
    ]));
    let arrays: Vec<ArrayRef> =
        vec![Arc::new(ids), Arc::new(dates), Arc::new(num("number_of_cds")), Arc::new(num("dollar_value"))];
    let batch = RecordBatch::try_new(schema.clone(), arrays).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cdnow.parquet");
    let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let read = cdnow_read();
    for file in ["cdnow-repurchase.toml", "seed-lstm.toml"] {
        let plan = EventsPlan::from_spec(&pipeline_events(file, ""), Some("%Y%m%d")).unwrap();
        let old = build(&events, &plan, "buys_again").unwrap();
        let new = build_file(&path, &read, &plan, "buys_again", LIMIT).unwrap();
        assert_eq!(new.events, 69_659);
        assert_identical(&old, &new.table, &format!("parquet, {file}"));
    }
}

#[test]
fn bad_values_name_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let plan = EventsPlan::from_spec(&cdnow_events(""), Some("%Y%m%d")).unwrap();
    let run = |text: &str, read: &ReadOptions| {
        let path = dir.path().join("log.txt");
        std::fs::write(&path, text).unwrap();
        build_file(&path, read, &plan, "y", LIMIT).unwrap_err().to_string()
    };
    let head = "customer_id date number_of_cds dollar_value\n1 19970101 1 10.0\n";
    let e = run(&format!("{head}2 19970105 x 3.0\n"), &cdnow_read());
    assert!(e.ends_with("log.txt:3: column `number_of_cds`: `x` is not a number (column is numeric)"), "{e}");
    let e = run(&format!("{head}\n2 1997-01-05 1 3.0\n"), &cdnow_read());
    assert!(e.ends_with("log.txt:4: column `date`: `1997-01-05` is not a timestamp (format %Y%m%d)"), "{e}");
    let e = run(&format!("{head}NA 19970105 1 3.0\n"), &cdnow_read());
    assert!(e.ends_with("log.txt:3: column `customer_id`: the events entity is missing"), "{e}");
    let e = run(&format!("{head}2 19970105 1\n"), &cdnow_read());
    assert!(e.ends_with("log.txt:3: column `dollar_value`: this line has 3 fields, the header has 4"), "{e}");
    // A missing value counts only inside the input window, and names its line.
    let e = run(&format!("{head}3 19961231 NA 1.0\n2 19970105 NA 3.0\n"), &cdnow_read());
    assert!(e.ends_with("log.txt:4: column `number_of_cds`: the events value is missing"), "{e}");
    // A text entity that turns up in an undeclared entity column after its first 1,000 values,
    // all numbers (lines 2 to 1,001), made it numeric.
    let mut read = cdnow_read();
    read.types.remove("customer_id");
    let many = format!("{head}{}c7 19970105 1 3.0\n", "2 19970105 1 3.0\n".repeat(999));
    let e = run(&many, &read);
    assert!(e.contains("log.txt:1002: column `customer_id`: `c7` is not a number") && e.contains("categorical"), "{e}");
    // Lenient columns read unreadable values as missing (and count them).
    read.csv.bad_as_missing.insert("dollar_value".into());
    let path = dir.path().join("lenient.txt");
    std::fs::write(&path, format!("{head}2 19971105 1 oops\n")).unwrap();
    let t = build_file(&path, &read, &plan, "y", LIMIT).unwrap();
    assert_eq!(t.bad_as_missing.get("dollar_value"), Some(&1));
    assert_eq!(t.table.frame.n_rows(), 1);
}

#[test]
fn text_entities_and_comma_separated_logs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.csv");
    // Quoted fields, a customer's events out of time order, one with horizon events only.
    let text = "user,when,amount\nb,1997-02-01,1.5\na,1997-01-03,2\n\"b\",1997-01-02,\"3\"\nc,1997-11-01,4\n";
    std::fs::write(&path, text).unwrap();
    let read = ReadOptions {
        csv: CsvOptions::default(),
        types: [("when".to_string(), ColumnType::Timestamp)].into_iter().collect(),
    };
    let spec: EventsSpec = toml::from_str(
        "entity = \"user\"\ntime = \"when\"\nvalues = [\"amount\"]\ncutoff = \"1997-09-30\"\nhorizon_end = \"1997-12-31\"",
    )
    .unwrap();
    let t = compare(&path, &read, &spec, "y", LIMIT, "text entities");
    assert_eq!(t.frame.column("user").unwrap().data.value_string(0).as_deref(), Some("b"));
    assert_eq!(t.frame.n_rows(), 2, "`c` has horizon events only");
}

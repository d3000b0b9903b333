//! The inputs users have, end to end: a gzip or zstd compressed event log or table, and a
//! directory of Parquet files (flat, or in Hive partitions, pruned by the event window).
//!
//! Compressed copies of the CDNOW log give the same entity table bit for bit as the plain file;
//! a monthly Hive-partitioned Parquet copy gives the same table per customer (rows come in order
//! of first appearance, which a month-by-month layout changes; see
//! `a_hive_partitioned_parquet_copy_of_cdnow_gives_the_same_table_and_runs`). A corrupt file in a
//! partition outside the window is never opened; one inside fails naming itself.

use datafusion::arrow::array::{ArrayRef, Date32Array, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use promoml_core::io::{CsvOptions, ReadOptions, read_file};
use promoml_core::{ColumnData, Frame, Registry};
use promoml_pipeline::data::events::build_file;
use promoml_pipeline::sequence::{EntityTable, EventsPlan, EventsSpec, ROW_ID};
use promoml_pipeline::{Pipeline, Silent, run};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

mod cdnow;
use cdnow::{cdnow, cdnow_read, root};

const LIMIT: usize = promoml_pipeline::data::engine::DEFAULT_MEMORY_LIMIT;

/// The event plan of `pipelines/cdnow-repurchase.toml`.
fn cdnow_plan() -> EventsPlan {
    let text = std::fs::read_to_string(root().join("pipelines/cdnow-repurchase.toml")).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    let spec: EventsSpec = doc["data"].as_table().unwrap()["events"].clone().try_into().unwrap();
    EventsPlan::from_spec(&spec, Some("%Y%m%d")).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// Every value's bits of column `name` in row `i`, or its text.
fn cell(f: &Frame, name: &str, i: usize) -> String {
    match &f.column(name).unwrap().data {
        ColumnData::Numeric(v) => format!("{:x}", v[i].to_bits()),
        other => format!("{:?}", other.value_string(i)),
    }
}

/// Assert that two entity tables hold the same rows, matched by the entity column `entity`:
/// the same columns, every value with the same bits, each row's sequence (through its
/// [`ROW_ID`]) the same length and bits. With `same_order`, rows must also come in the same order.
fn assert_same_entities(old: &EntityTable, new: &EntityTable, entity: &str, same_order: bool, what: &str) {
    let (a, b) = (&old.frame, &new.frame);
    assert_eq!(a.names(), b.names(), "{what}: columns");
    assert_eq!(a.n_rows(), b.n_rows(), "{what}: rows");
    let key = |f: &Frame, i: usize| f.column(entity).unwrap().data.value_string(i).unwrap();
    let at: std::collections::HashMap<String, usize> = (0..b.n_rows()).map(|j| (key(b, j), j)).collect();
    let row_id = |f: &Frame, i: usize| f.column(ROW_ID).unwrap().data.value_f64(i) as usize;
    for i in 0..a.n_rows() {
        let j = at[&key(a, i)];
        if same_order {
            assert_eq!(i, j, "{what}: entity {} is row {i}, not {j}", key(a, i));
        }
        for name in a.names().into_iter().filter(|n| *n != ROW_ID) {
            assert_eq!(cell(a, name, i), cell(b, name, j), "{what}: entity {} column {name}", key(a, i));
        }
        match (&old.sequences, &new.sequences) {
            (None, None) => {}
            (Some(s), Some(t)) => {
                let (p, q) = (row_id(a, i), row_id(b, j));
                assert_eq!(s.lengths[p], t.lengths[q], "{what}: entity {} sequence length", key(a, i));
                let x = s.data.index_axis(ndarray::Axis(0), p);
                let y = t.data.index_axis(ndarray::Axis(0), q);
                assert!(
                    x.iter().zip(y.iter()).all(|(u, v)| u.to_bits() == v.to_bits()),
                    "{what}: entity {}",
                    key(a, i)
                );
            }
            _ => panic!("{what}: one table has sequences, the other not"),
        }
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_smartcore::register(&mut r);
    r
}

/// A pipeline file in `dir` with `[data]` lines `data` (and sections after them), one quick model.
fn pipeline(dir: &Path, data: &str) -> Pipeline {
    let text = format!(
        "[pipeline]\nname = \"inputs\"\ntask = \"binary\"\nseed = 7\n\n[data]\n{data}\n\n\
         [[models]]\nkind = \"smartcore.logistic_regression\"\n\n[search]\ntrials = 1\ncv_folds = 2\n"
    );
    let path = dir.join("p.toml");
    std::fs::write(&path, text).unwrap();
    Pipeline::load(&path, &[], &registry()).unwrap_or_else(|e| panic!("{e}"))
}

/// The `[data]` of a CDNOW repurchase pipeline reading `path` (a text log or a Parquet dataset).
fn cdnow_data(path: &Path) -> String {
    format!(
        "path = \"{}\"\ndelimiter = \"whitespace\"\ntimestamp_format = \"%Y%m%d\"\n\
         types = {{ customer_id = \"numeric\", date = \"timestamp\" }}\ntarget = \"buys_again\"\npositive = \"TRUE\"\n\
         split = {{ kind = \"modulo\", modulo = 5, remainder = 4, column = \"customer_id\" }}\n\n\
         [data.events]\nentity = \"customer_id\"\ntime = \"date\"\nvalues = [\"number_of_cds\", \"dollar_value\"]\n\
         start = \"1997-01-01\"\ncutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"\nlabel = \"any\"\nencoding = \"none\"\n\
         recent_days = [30, 90]\nperiods = 3",
        path.display()
    )
}

/// Run `p` and check that it fitted, scored its test customers and ranked them better than chance.
fn run_ok(p: &Pipeline, test_rows: usize, what: &str) {
    let report = run(p, &Silent).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(report.failures.is_empty(), "{what}: {:?}", report.failures);
    assert_eq!(report.data.test_rows, test_rows, "{what}");
    let auc = report.leaderboard[0].test["roc_auc"];
    assert!(auc > 0.6, "{what}: test roc_auc {auc}");
}

#[test]
fn gzip_and_zstd_copies_of_the_cdnow_log_give_the_same_table_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(cdnow()).unwrap();
    let gz = dir.path().join("CDNOW_master.txt.gz");
    std::fs::write(&gz, gzip(&raw)).unwrap();
    let zst = dir.path().join("CDNOW_master.txt.zst");
    std::fs::write(&zst, zstd(&raw)).unwrap();
    let (read, plan) = (cdnow_read(), cdnow_plan());
    let plain = build_file(&cdnow(), &read, &plan, "buys_again", LIMIT).unwrap();
    for log in [&gz, &zst] {
        let t = build_file(log, &read, &plan, "buys_again", LIMIT).unwrap();
        assert_eq!(t.events, 69_659, "{}", log.display());
        assert_same_entities(&plain.table, &t.table, "customer_id", true, &log.display().to_string());
    }
    // The whole pipeline on the gzip log, with the delimiter detected from the decompressed text.
    let p = pipeline(dir.path(), &cdnow_data(&gz).replace("delimiter = \"whitespace\"\n", ""));
    promoml_pipeline::data::check_header(&p).unwrap();
    run_ok(&p, 4_714, "gzip CDNOW");
}

#[test]
fn a_cut_short_compressed_log_names_the_file_and_the_line_reached() {
    let dir = tempfile::tempdir().unwrap();
    let raw = std::fs::read(cdnow()).unwrap();
    let full = gzip(&raw);
    let gz = dir.path().join("cut.txt.gz");
    std::fs::write(&gz, &full[..full.len() / 2]).unwrap();
    let e = build_file(&gz, &cdnow_read(), &cdnow_plan(), "buys_again", LIMIT).unwrap_err().to_string();
    assert!(e.contains("cut.txt.gz:") && e.contains("gzip data is corrupt or cut short"), "{e}");
    // The line reached: past the middle of the log's 69,660 lines.
    let line: usize = e.split("cut.txt.gz:").nth(1).unwrap().split(':').next().unwrap().parse().unwrap();
    assert!((20_000..69_660).contains(&line), "{e}");
    // Comma-separated (the CSV reader's path), zstd.
    let csv = "user,when,amount\n".to_string() + &"a,1997-01-03,2\n".repeat(50_000);
    let z = zstd(csv.as_bytes());
    let zst = dir.path().join("cut.csv.zst");
    std::fs::write(&zst, &z[..z.len() - 10]).unwrap();
    let read = ReadOptions { csv: CsvOptions::default(), types: Default::default() };
    let spec: EventsSpec = toml::from_str(
        "entity = \"user\"\ntime = \"when\"\nvalues = [\"amount\"]\ncutoff = \"1997-09-30\"\nhorizon_end = \"1997-12-31\"",
    )
    .unwrap();
    let plan = EventsPlan::from_spec(&spec, None).unwrap();
    let e = build_file(&zst, &read, &plan, "y", LIMIT).unwrap_err().to_string();
    assert!(e.contains("cut.csv.zst:") && e.contains("zstd data is corrupt or cut short"), "{e}");
}

/// A table of 400 customers: `spend` and `visits` say who converts (`y`), `segment` is text.
fn table_csv() -> String {
    let mut text = String::from("id,spend,visits,segment,y\n");
    for i in 0..400u32 {
        let spend = (i * 37 % 101) as f64 / 10.0;
        let visits = i * 13 % 7;
        let y = spend + visits as f64 > 8.0 || i % 11 == 0;
        text.push_str(&format!("{i},{spend},{visits},{},{}\n", ["a", "b", "c"][(i % 3) as usize], y));
    }
    text
}

#[test]
fn a_zstd_table_and_a_gzip_train_test_pair_load_in_a_pipeline_run() {
    let dir = tempfile::tempdir().unwrap();
    let text = table_csv();
    let plain = dir.path().join("table.csv");
    std::fs::write(&plain, &text).unwrap();
    let zst = dir.path().join("table.csv.zst");
    std::fs::write(&zst, zstd(text.as_bytes())).unwrap();
    let opts = ReadOptions::default();
    let (a, b) = (read_file(&plain, &opts).unwrap(), read_file(&zst, &opts).unwrap());
    assert_eq!(a.names(), b.names());
    for c in a.columns() {
        assert_eq!(c.data, b.column(&c.name).unwrap().data, "column {}", c.name);
    }
    let p = pipeline(
        dir.path(),
        &format!(
            "path = \"{}\"\ntarget = \"y\"\nid = \"id\"\nsplit = {{ kind = \"modulo\", modulo = 4, remainder = 0, column = \"id\" }}",
            zst.display()
        ),
    );
    promoml_pipeline::data::check_header(&p).unwrap();
    run_ok(&p, 100, "zstd table");
    // Separate train and test files, gzip compressed (`.gzip` and `.gz`).
    let (head, rows) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = rows.lines().collect();
    let (train, test) = (dir.path().join("train.csv.gzip"), dir.path().join("test.csv.gz"));
    std::fs::write(&train, gzip(format!("{head}\n{}\n", rows[..300].join("\n")).as_bytes())).unwrap();
    std::fs::write(&test, gzip(format!("{head}\n{}\n", rows[300..].join("\n")).as_bytes())).unwrap();
    let p = pipeline(
        dir.path(),
        &format!("train = \"{}\"\ntest = \"{}\"\ntarget = \"y\"\nid = \"id\"", train.display(), test.display()),
    );
    run_ok(&p, 100, "gzip train/test");
    // A bad value inside a compressed table still names its file, line and column.
    let bad = dir.path().join("bad.csv.gz");
    std::fs::write(&bad, gzip(text.replacen("\n5,", "\nfive,", 1).as_bytes())).unwrap();
    let e = read_file(&bad, &opts).unwrap_err().to_string();
    assert!(e.contains("bad.csv.gz:7: column `id`: ") && e.contains("five"), "{e}");
    // A truncated one names the file and the line the text reached.
    let cut = dir.path().join("cut.csv.gz");
    let full = gzip(text.as_bytes());
    std::fs::write(&cut, &full[..full.len() - 12]).unwrap();
    let e = read_file(&cut, &opts).unwrap_err().to_string();
    assert!(e.contains("cut.csv.gz:") && e.contains("gzip data is corrupt or cut short"), "{e}");
}

/// Write `rows` of the CDNOW events (`events`, read from the text log) as a Parquet file at
/// `path` (directories created): customer_id Int64, date Date32, number_of_cds and
/// dollar_value Float64.
fn write_cdnow_parquet(events: &Frame, rows: &[usize], path: &Path) {
    let col = |n: &str| events.column(n).unwrap().data.clone();
    let ids: Int64Array = match col("customer_id") {
        ColumnData::Numeric(v) => rows.iter().map(|&i| v[i] as i64).collect(),
        other => panic!("{other:?}"),
    };
    let dates: Date32Array = match col("date") {
        ColumnData::Timestamp(v) => rows.iter().map(|&i| v[i].map(|t| (t / 86_400) as i32)).collect(),
        other => panic!("{other:?}"),
    };
    let num = |n: &str| -> Float64Array {
        match col(n) {
            ColumnData::Numeric(v) => rows.iter().map(|&i| v[i]).collect(),
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
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut w = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The CDNOW events' rows per month (`(year, month)`), each month's rows in log order.
fn cdnow_months(events: &Frame) -> std::collections::BTreeMap<(i64, u32), Vec<usize>> {
    let ColumnData::Timestamp(t) = &events.column("date").unwrap().data else { panic!("date") };
    let mut months = std::collections::BTreeMap::<(i64, u32), Vec<usize>>::new();
    for (i, t) in t.iter().enumerate() {
        let (y, m, _) = promoml_core::io::civil_from_days(t.unwrap().div_euclid(86_400));
        months.entry((y, m)).or_default().push(i);
    }
    months
}

#[test]
fn a_hive_partitioned_parquet_copy_of_cdnow_gives_the_same_table_and_runs() {
    let events = read_file(&cdnow(), &cdnow_read()).unwrap();
    let months = cdnow_months(&events);
    assert_eq!(months.len(), 18, "CDNOW covers 1997-01 to 1998-06");
    let dir = tempfile::tempdir().unwrap();
    let (hive, nested, flat) = (dir.path().join("hive"), dir.path().join("nested"), dir.path().join("flat"));
    for ((y, m), rows) in &months {
        write_cdnow_parquet(&events, rows, &hive.join(format!("month={y}-{m:02}/part-0.parquet")));
        write_cdnow_parquet(&events, rows, &nested.join(format!("year={y}/month={m:02}/part-0.parquet")));
        write_cdnow_parquet(&events, rows, &flat.join(format!("events-{y}-{m:02}.parquet")));
    }
    // What Spark leaves next to its output is not read.
    std::fs::write(hive.join("_SUCCESS"), "").unwrap();
    std::fs::write(hive.join(".part-0.parquet.crc"), "not parquet").unwrap();
    let (read, plan) = (cdnow_read(), cdnow_plan());
    let text = build_file(&cdnow(), &read, &plan, "buys_again", LIMIT).unwrap();
    // The text log is sorted by customer, then date: its rows (entities in order of first
    // appearance) come in customer order. Month by month, a customer whose first purchase is in
    // February appears after every January customer, so rows come in another order; each
    // customer's events are in the same order (by date, the log's order within a month), so
    // every customer's row and sequence are bit-identical.
    for (d, what) in [(&hive, "hive month=YYYY-MM"), (&nested, "hive year=/month="), (&flat, "flat")] {
        let t = build_file(d, &read, &plan, "buys_again", LIMIT).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(t.events, 69_659, "{what}");
        assert_same_entities(&text.table, &t.table, "customer_id", false, what);
    }
    // The whole pipeline on the partitioned directory.
    let p = pipeline(dir.path(), &cdnow_data(&hive));
    promoml_pipeline::data::check_header(&p).unwrap();
    run_ok(&p, 4_714, "hive CDNOW");
}

#[test]
fn partitions_outside_the_event_window_are_never_opened() {
    let events = read_file(&cdnow(), &cdnow_read()).unwrap();
    let months = cdnow_months(&events);
    let dir = tempfile::tempdir().unwrap();
    let hive = dir.path().join("events");
    for ((y, m), rows) in &months {
        write_cdnow_parquet(&events, rows, &hive.join(format!("month={y}-{m:02}/part-0.parquet")));
    }
    let (read, plan) = (cdnow_read(), cdnow_plan());
    let before = build_file(&hive, &read, &plan, "buys_again", LIMIT).unwrap();
    // Not Parquet, before `start` (first in path order) and after `horizon_end`: never opened.
    for m in ["1996-12", "1998-07"] {
        let d = hive.join(format!("month={m}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("part-0.parquet"), "this is not a Parquet file").unwrap();
    }
    let after = build_file(&hive, &read, &plan, "buys_again", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after.events, 69_659);
    assert_same_entities(&before.table, &after.table, "customer_id", true, "pruned");
    // Without a start, the window is open at the beginning: 1996-12 is read, and fails, naming it.
    let mut open = plan.clone();
    open.start = None;
    let e = build_file(&hive, &read, &open, "buys_again", LIMIT).unwrap_err().to_string();
    assert!(e.contains("month=1996-12/part-0.parquet"), "{e}");
    // Inside the window: the run fails naming the file.
    std::fs::remove_dir_all(hive.join("month=1996-12")).unwrap();
    std::fs::write(hive.join("month=1997-05/zz-bad.parquet"), "this is not a Parquet file either").unwrap();
    let e = build_file(&hive, &read, &plan, "buys_again", LIMIT).unwrap_err().to_string();
    assert!(e.contains("month=1997-05/zz-bad.parquet") && e.contains("not a readable Parquet file"), "{e}");
}

#[test]
fn the_time_column_as_a_date_partition_gives_the_times_and_prunes() {
    // 40 customers' purchases over 1997, in time order, as a text log and as a Parquet dataset
    // partitioned by the time column itself (`date=1997-03-04/`, the column not in the files).
    let dir = tempfile::tempdir().unwrap();
    let mut lines = Vec::new();
    for day in 0..365i64 {
        for k in 0..40i64 {
            if (day * 7 + k * 13) % 29 == 0 {
                lines.push((day, k, (k % 5 + 1) as f64, (day % 17) as f64 + 0.5));
            }
        }
    }
    let date = |day: i64| {
        let (y, m, d) = promoml_core::io::civil_from_days(promoml_core::io::days_from_civil(1997, 1, 1) + day);
        format!("{y}-{m:02}-{d:02}")
    };
    let mut text = String::from("user,date,cds,dollars\n");
    for (day, k, c, v) in &lines {
        text.push_str(&format!("u{k},{},{c},{v}\n", date(*day)));
    }
    let log = dir.path().join("log.csv");
    std::fs::write(&log, text).unwrap();
    let hive = dir.path().join("events");
    let schema = Arc::new(Schema::new(vec![
        Field::new("user", DataType::Utf8, false),
        Field::new("cds", DataType::Float64, false),
        Field::new("dollars", DataType::Float64, false),
    ]));
    for day in 0..365i64 {
        let rows: Vec<_> = lines.iter().filter(|l| l.0 == day).collect();
        if rows.is_empty() {
            continue;
        }
        let users: datafusion::arrow::array::StringArray = rows.iter().map(|l| Some(format!("u{}", l.1))).collect();
        let arrays: Vec<ArrayRef> = vec![
            Arc::new(users),
            Arc::new(rows.iter().map(|l| l.2).collect::<Float64Array>()),
            Arc::new(rows.iter().map(|l| l.3).collect::<Float64Array>()),
        ];
        let path = hive.join(format!("date={}/part-0.parquet", date(day)));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut w = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema.clone(), None).unwrap();
        w.write(&RecordBatch::try_new(schema.clone(), arrays).unwrap()).unwrap();
        w.close().unwrap();
    }
    let read = ReadOptions { csv: CsvOptions::default(), types: Default::default() };
    let spec: EventsSpec = toml::from_str(
        "entity = \"user\"\ntime = \"date\"\nvalues = [\"cds\", \"dollars\"]\nstart = \"1997-02-01\"\n\
         cutoff = \"1997-09-30\"\nhorizon_end = \"1997-11-30\"\nencoding = \"last_n\"\nsteps = 4",
    )
    .unwrap();
    let plan = EventsPlan::from_spec(&spec, None).unwrap();
    let text = build_file(&log, &read, &plan, "y", LIMIT).unwrap();
    for m in ["1996-06-01", "1997-01-31", "1997-12-01", "1998-02-01"] {
        let d = hive.join(format!("date={m}"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("part-0.parquet"), "not Parquet").unwrap();
    }
    let t = build_file(&hive, &read, &plan, "y", LIMIT).unwrap_or_else(|e| panic!("{e}"));
    // Both in time order: the same rows in the same order, bit for bit.
    assert_same_entities(&text.table, &t.table, "user", true, "date partitions");
    assert!(t.events < lines.len() as u64, "days outside the window are not read: {} events", t.events);
    std::fs::write(hive.join("date=1997-06-02/bad.parquet"), "not Parquet").unwrap();
    let e = build_file(&hive, &read, &plan, "y", LIMIT).unwrap_err().to_string();
    assert!(e.contains("date=1997-06-02/bad.parquet"), "{e}");
}

#[test]
fn a_dataset_with_mixed_layouts_or_no_parquet_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let events = read_file(&cdnow(), &cdnow_read()).unwrap();
    let d = dir.path().join("mixed");
    write_cdnow_parquet(&events, &[0, 1, 2], &d.join("month=1997-01/part-0.parquet"));
    write_cdnow_parquet(&events, &[3, 4], &d.join("day=1997-01-02/part-0.parquet"));
    let e = build_file(&d, &cdnow_read(), &cdnow_plan(), "y", LIMIT).unwrap_err().to_string();
    assert!(e.contains("partition keys (month) differ") || e.contains("partition keys (day) differ"), "{e}");
    let d = dir.path().join("loose");
    write_cdnow_parquet(&events, &[0, 1, 2], &d.join("2024/part-0.parquet"));
    let e = build_file(&d, &cdnow_read(), &cdnow_plan(), "y", LIMIT).unwrap_err().to_string();
    assert!(e.contains("2024/part-0.parquet") && e.contains("not a Hive partition"), "{e}");
    let d = dir.path().join("empty");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("notes.txt"), "hello").unwrap();
    let e = build_file(&d, &cdnow_read(), &cdnow_plan(), "y", LIMIT).unwrap_err().to_string();
    assert!(e.contains("no Parquet files"), "{e}");
}

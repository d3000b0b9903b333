//! The event plan as SQL (`data::sql::events_sql`), run by DataFusion, against the engine's
//! entity table (`data::events::build_file`): on the real CDNOW log (its raw integer dates
//! parsed by the SQL's `to_timestamp`) for the plans of the CDNOW pipelines and variations, and
//! on a small synthetic log (text entities, ISO text and native timestamp times, no `start`,
//! events before 1970, `label = "sum"` and `"count"`, window edges to the second).
//!
//! Same entities, same columns in the same order; counts and day differences exactly equal (the
//! SQL returns them as `BIGINT`), amounts and ratios within 1e-9 relative: the SQL sums per day
//! and then per entity, in the engine's order, where promoml sums event by event in time order,
//! so the last bits of a floating-point sum may differ.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use promoml_core::io::{CsvOptions, ReadOptions, read_file};
use promoml_core::{ColumnData, ColumnType, Frame};
use promoml_pipeline::data::engine::{DEFAULT_MEMORY_LIMIT, Engine};
use promoml_pipeline::data::events::build_file;
use promoml_pipeline::data::sql::{Dialect, TimeColumn, entity_columns, events_sql};
use promoml_pipeline::sequence::{EventsPlan, EventsSpec, Label};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod cdnow;
use cdnow::{cdnow, cdnow_read, pipeline_events};

/// A frame as an Arrow batch for the `events` table: numeric columns listed in `ints` as
/// `Int64` (CDNOW's ids, dates and CD counts are integers in the file), other numbers
/// `Float64`, text `Utf8`, timestamps `Timestamp(Second)`.
fn batch(frame: &Frame, ints: &[&str]) -> RecordBatch {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for c in frame.columns() {
        let (ty, a): (DataType, ArrayRef) = match &c.data {
            ColumnData::Numeric(v) if ints.contains(&c.name.as_str()) => (
                DataType::Int64,
                Arc::new(v.iter().map(|x| x.is_finite().then_some(*x as i64)).collect::<Int64Array>()),
            ),
            ColumnData::Numeric(v) => {
                (DataType::Float64, Arc::new(v.iter().map(|x| x.is_finite().then_some(*x)).collect::<Float64Array>()))
            }
            ColumnData::Categorical { levels, codes } => (
                DataType::Utf8,
                Arc::new(codes.iter().map(|c| c.map(|c| levels[c as usize].as_str())).collect::<StringArray>()),
            ),
            ColumnData::Timestamp(v) => (
                DataType::Timestamp(TimeUnit::Second, None),
                Arc::new(v.iter().copied().collect::<datafusion::arrow::array::TimestampSecondArray>()),
            ),
            ColumnData::Boolean(v) => (DataType::Boolean, Arc::new(v.iter().copied().collect::<BooleanArray>())),
        };
        fields.push(Field::new(&c.name, ty, true));
        arrays.push(a);
    }
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap()
}

/// Run `sql` in DataFusion over `events` = `log`; the result as one batch.
fn run_sql(log: &RecordBatch, sql: &str) -> RecordBatch {
    let engine = Engine::new(DEFAULT_MEMORY_LIMIT).unwrap();
    engine.block_on(async {
        let table = MemTable::try_new(log.schema(), vec![vec![log.clone()]]).unwrap();
        engine.ctx.register_table("events", Arc::new(table)).unwrap();
        let df = engine.ctx.sql(sql).await.unwrap_or_else(|e| panic!("{e}\n{sql}"));
        let batches = df.collect().await.unwrap_or_else(|e| panic!("{e}\n{sql}"));
        let schema = batches[0].schema();
        let columns = (0..schema.fields().len())
            .map(|i| concat(&batches.iter().map(|b| b.column(i).as_ref()).collect::<Vec<_>>()).unwrap())
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    })
}

/// A summary that counts events or days, or subtracts days: an exact integer.
fn is_count(name: &str, plan: &EventsPlan) -> bool {
    let counts = ["n_events", "n_days", "frequency", "recency_days", "T_days", "days_since_last"];
    counts.contains(&name)
        || name.starts_with("n_events_last_")
        || name.starts_with("n_days_last_")
        || name.starts_with("n_days_period_")
        || (plan.label == Label::Count && name == "y")
}

/// Assert that the SQL's result `got` is the entity table `want` (without its row id):
/// same columns in order, same entities, counts and the label exactly, amounts within 1e-9
/// relative. Returns the number of rows.
fn assert_same(want: &Frame, got: &RecordBatch, plan: &EventsPlan, target: &str, what: &str) -> usize {
    let names: Vec<String> = got.schema().fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(names, entity_columns(plan, target), "{what}: the SQL's columns");
    let frame_names: Vec<&str> = want.names().into_iter().filter(|n| !n.starts_with("__")).collect();
    assert_eq!(names, frame_names, "{what}: the engine's columns");
    assert_eq!(got.num_rows(), want.n_rows(), "{what}: entities");
    // Rows of the SQL's result by entity key.
    let key_of = |a: &ArrayRef, i: usize| -> String {
        match a.data_type() {
            DataType::Utf8 => a.as_any().downcast_ref::<StringArray>().unwrap().value(i).to_string(),
            _ => {
                let f = cast(a, &DataType::Float64).unwrap();
                f.as_any().downcast_ref::<Float64Array>().unwrap().value(i).to_string()
            }
        }
    };
    let ent = got.column(0);
    assert_eq!(ent.null_count(), 0, "{what}: entity keys");
    let rows: HashMap<String, usize> = (0..got.num_rows()).map(|i| (key_of(ent, i), i)).collect();
    assert_eq!(rows.len(), got.num_rows(), "{what}: one row per entity");
    let want_ent = &want.column(&plan.entity).unwrap().data;
    let order: Vec<usize> = (0..want.n_rows())
        .map(|r| {
            let k = match want_ent {
                ColumnData::Numeric(v) => v[r].to_string(),
                other => other.value_string(r).unwrap(),
            };
            *rows.get(&k).unwrap_or_else(|| panic!("{what}: entity {k} has no row in the SQL's result"))
        })
        .collect();
    for (j, name) in names.iter().enumerate().skip(1) {
        let a = got.column(j);
        assert_eq!(a.null_count(), 0, "{what}: column {name} has nulls");
        let col = &want.column(name).unwrap().data;
        if let ColumnData::Boolean(w) = col {
            let g = a.as_any().downcast_ref::<BooleanArray>().unwrap_or_else(|| panic!("{what}: {name} is boolean"));
            for (r, &i) in order.iter().enumerate() {
                assert_eq!(w[r], Some(g.value(i)), "{what}: {name} row {r}");
            }
            continue;
        }
        let exact = is_count(name, plan);
        if exact {
            assert_eq!(a.data_type(), &DataType::Int64, "{what}: {name} is an integer");
        } else {
            assert_eq!(a.data_type(), &DataType::Float64, "{what}: {name} is a double");
        }
        let g = cast(a, &DataType::Float64).unwrap();
        let g = g.as_any().downcast_ref::<Float64Array>().unwrap();
        for (r, &i) in order.iter().enumerate() {
            let (x, y) = (col.value_f64(r), g.value(i));
            if exact {
                assert_eq!(x, y, "{what}: {name} row {r}");
            } else {
                let tol = 1e-9 * x.abs().max(y.abs());
                assert!((x - y).abs() <= tol, "{what}: {name} row {r}: engine {x} vs SQL {y}");
            }
        }
    }
    got.num_rows()
}

/// The CDNOW log as the lake would hold it: the raw integers of the file (dates `19970101`).
fn cdnow_raw() -> RecordBatch {
    let mut read = cdnow_read();
    read.types.insert("date".into(), ColumnType::Numeric);
    let frame = read_file(&cdnow(), &read).unwrap();
    batch(&frame, &["customer_id", "date", "number_of_cds"])
}

#[test]
fn cdnow_sql_in_datafusion_gives_the_engines_table() {
    let log = cdnow_raw();
    assert_eq!(log.num_rows(), 69_659);
    let time = TimeColumn::Formatted("%Y%m%d".into());
    for (file, extra) in [
        ("cdnow-repurchase.toml", ""),
        ("cdnow-spend.toml", ""),
        ("cdnow-repurchase.toml", "start = \"<none>\"\nlabel = \"sum\"\nlabel_column = \"dollar_value\""),
        ("cdnow-repurchase.toml", "label = \"count\"\ncutoff = \"1997-06-30T12:00:00\"\nhorizon_end = \"1997-12-31\""),
        ("cdnow-repurchase.toml", "values = []\nrecent_days = [7, 400]\nperiods = 12\nperiod_days = 7"),
    ] {
        let what = format!("{file} {extra}");
        let spec = pipeline_events(file, extra);
        let plan = EventsPlan::from_spec(&spec, Some("%Y%m%d")).unwrap();
        let target = if extra.is_empty() { "buys_again" } else { "y" };
        let want = build_file(&cdnow(), &cdnow_read(), &plan, target, DEFAULT_MEMORY_LIMIT).unwrap().table.frame;
        let sql = events_sql(&plan, target, &time, Dialect::DataFusion).unwrap();
        let n = assert_same(&want, &run_sql(&log, &sql), &plan, target, &what);
        if extra.is_empty() {
            assert_eq!(n, 23_570, "{what}: every CDNOW customer");
        }
        if file == "cdnow-repurchase.toml" && extra.is_empty() {
            // The figure quoted in the report of this slice.
            eprintln!("CDNOW repurchase SQL: {} lines", sql.lines().count());
        }
    }
}

/// A small log: 30 text entities over 1969-12..1998-01 (events before 1970 have negative epoch
/// seconds), with same-day events, events on the window edges to the second, horizon-only and
/// after-horizon entities, and negative amounts.
fn synthetic_log(dir: &Path) -> PathBuf {
    use std::fmt::Write as _;
    let mut z = 7u64;
    let mut next = move || {
        z = z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        z >> 33
    };
    let mut text = String::from("user,when,amount,items\n");
    let day = |y: i64, m: u32, d: u32| promoml_core::io::days_from_civil(y, m, d) * 86_400;
    let stamp = |t: i64| {
        let (y, m, d) = promoml_core::io::civil_from_days(t.div_euclid(86_400));
        let s = t.rem_euclid(86_400);
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    };
    let first = day(1997, 3, 1);
    for _ in 0..400 {
        let u = next() % 30;
        let t = first + (next() % 300) as i64 * 86_400 + (next() % 86_400) as i64;
        let amount = (next() % 20_000) as f64 / 100.0 - 50.0;
        writeln!(text, "u{u},{},{amount},{}", stamp(t), next() % 4).unwrap();
    }
    let cutoff = day(1997, 9, 30) + 12 * 3600;
    for (u, t, a) in [
        ("edge", cutoff, 1.25),                    // the cutoff second: an input
        ("edge", cutoff + 1, 2.5),                 // the next second: the label
        ("edge", day(1997, 12, 31) + 86_399, 4.0), // horizon_end's last second: the label
        ("edge", day(1998, 1, 1), 8.0),            // after the horizon: nothing
        ("old", day(1969, 12, 30) + 3600, -3.0),   // before 1970
        ("old", day(1969, 12, 31) + 86_399, 1.5),  // the last second before 1970
        ("late", cutoff + 3600, 9.0),              // horizon events only: no row
        ("day0", cutoff - 60, 0.5),                // an entity whose first day is the cutoff's
    ] {
        writeln!(text, "{u},{},{a},1", stamp(t)).unwrap();
    }
    let path = dir.join("log.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn synthetic_log_without_start_with_sum_and_count_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = synthetic_log(dir.path());
    let read = ReadOptions {
        csv: CsvOptions::default(),
        types: [("when".to_string(), ColumnType::Timestamp)].into_iter().collect(),
    };
    // The time as ISO text, and as a native timestamp.
    let mut as_text = read.clone();
    as_text.types.insert("when".into(), ColumnType::Categorical);
    let logs = [
        (TimeColumn::IsoText, batch(&read_file(&path, &as_text).unwrap(), &["items"])),
        (TimeColumn::Timestamp, batch(&read_file(&path, &read).unwrap(), &["items"])),
    ];
    for extra in [
        "label = \"sum\"\nlabel_column = \"amount\"",
        "label = \"sum\"\nlabel_column = \"items\"\nvalues = [\"amount\"]\nperiods = 5\nperiod_days = 11",
        "label = \"count\"\nrecent_days = [1, 2, 45]\nstart = \"1997-05-01T06:00:00\"",
        "encoding = \"last_n\"\nrecent_days = []",
    ] {
        let mut t: toml::Table = toml::from_str(
            "entity = \"user\"\ntime = \"when\"\nvalues = [\"amount\", \"items\"]\n\
             cutoff = \"1997-09-30T12:00:00\"\nhorizon_end = \"1997-12-31\"",
        )
        .unwrap();
        t.extend(toml::from_str::<toml::Table>(extra).unwrap());
        let spec: EventsSpec = toml::Value::Table(t).try_into().unwrap();
        let plan = EventsPlan::from_spec(&spec, None).unwrap();
        let want = build_file(&path, &read, &plan, "y", DEFAULT_MEMORY_LIMIT).unwrap().table.frame;
        let users = want.column("user").unwrap();
        let has = |u: &str| (0..want.n_rows()).any(|i| users.data.value_string(i).as_deref() == Some(u));
        assert!(has("edge") && has("day0") && !has("late"), "{extra}: the special entities");
        assert_eq!(has("old"), plan.start.is_none(), "{extra}: events before 1970");
        for (time, log) in &logs {
            let sql = events_sql(&plan, "y", time, Dialect::DataFusion).unwrap();
            assert_same(&want, &run_sql(log, &sql), &plan, "y", &format!("{extra} ({time:?})"));
        }
    }
}

#[test]
fn the_engines_table_written_as_csv_and_parquet_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = synthetic_log(dir.path());
    let read = ReadOptions {
        csv: CsvOptions::default(),
        types: [("when".to_string(), ColumnType::Timestamp)].into_iter().collect(),
    };
    let spec: EventsSpec = toml::from_str(
        "entity = \"user\"\ntime = \"when\"\nvalues = [\"amount\"]\ncutoff = \"1997-09-30\"\nhorizon_end = \"1997-12-31\"",
    )
    .unwrap();
    let plan = EventsPlan::from_spec(&spec, None).unwrap();
    let frame = build_file(&path, &read, &plan, "y", DEFAULT_MEMORY_LIMIT).unwrap().table.frame;
    for name in ["features.csv", "features.parquet"] {
        let out = dir.path().join(name);
        promoml_pipeline::data::sql::write_table(&frame, &out).unwrap();
        let back = read_file(&out, &ReadOptions::default()).unwrap();
        assert_eq!(
            back.names(),
            entity_columns(&plan, "y").iter().map(String::as_str).collect::<Vec<_>>(),
            "{name}: no row id"
        );
        assert_eq!(back.n_rows(), frame.n_rows(), "{name}");
        for c in back.columns() {
            let w = &frame.column(&c.name).unwrap().data;
            for i in 0..frame.n_rows() {
                match w {
                    // -0.0 (an empty sum) is written as 0.
                    ColumnData::Numeric(_) => {
                        assert_eq!(c.data.value_f64(i), w.value_f64(i), "{name}: {} row {i}", c.name)
                    }
                    _ => assert_eq!(c.data.value_string(i), w.value_string(i), "{name}: {} row {i}", c.name),
                }
            }
        }
    }
}

//! `promoml features`: the event plan of a pipeline printed as SQL per dialect, the engine's
//! per-entity table written to a file, and the refusal of a pipeline without `[data.events]`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root (tests run from the CLI crate's folder).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn promoml(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_promoml")).args(args).output().expect("run promoml")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn features_sql_prints_the_event_plan_per_dialect() {
    let pipeline = root().join("pipelines/cdnow-repurchase.toml");
    let p = pipeline.to_str().unwrap();
    for (dialect, time) in [
        ("datafusion", "to_timestamp(CAST(\"date\" AS VARCHAR), '%Y%m%d')"),
        ("postgres", "to_timestamp(CAST(\"date\" AS TEXT), 'YYYYMMDD')"),
        ("spark", "unix_timestamp(CAST(`date` AS STRING), 'yyyyMMdd')"),
        ("duckdb", "strptime(CAST(\"date\" AS VARCHAR), '%Y%m%d')"),
        ("trino", "to_unixtime(date_parse(CAST(\"date\" AS VARCHAR), '%Y%m%d'))"),
    ] {
        let o = promoml(&["features", p, "--sql", "--dialect", dialect]);
        assert!(o.status.success(), "{dialect}: {}", text(&o.stderr));
        let sql = text(&o.stdout);
        assert!(sql.starts_with("-- promoml [data.events] features"), "{dialect}: {sql}");
        assert!(sql.contains(time), "{dialect}: {sql}");
        assert!(sql.contains("FROM events") && sql.trim_end().ends_with(';'), "{dialect}");
        let q = if dialect == "spark" { '`' } else { '"' };
        for column in ["n_days_period_8", "dollar_value_last_180d", "buys_again"] {
            assert!(sql.contains(&format!("{q}{column}{q}")), "{dialect}: {column}");
        }
    }
    // Overrides apply; the default dialect is DataFusion; the time can be declared a timestamp.
    let o = promoml(&["features", p, "--sql", "--set", "data.target=\"again\"", "--time-as", "timestamp"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let sql = text(&o.stdout);
    assert!(sql.contains("\"again\"") && sql.contains("date_part('epoch', \"date\")"), "{sql}");
    // A timestamp format the translation does not know names its key.
    let o = promoml(&["features", p, "--sql", "--set", "data.timestamp_format=\"%Y%j\""]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("data.timestamp_format"), "{}", text(&o.stderr));
}

#[test]
fn features_needs_an_event_log_and_sql_or_out() {
    let demo = root().join("pipelines/demo.toml");
    let o = promoml(&["features", demo.to_str().unwrap(), "--sql"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("data.events"), "{}", text(&o.stderr));
    let o = promoml(&["features", demo.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "neither --sql nor --out");
    let o = promoml(&["features", demo.to_str().unwrap(), "--sql", "--out", "x.csv"]);
    assert_eq!(o.status.code(), Some(2), "both --sql and --out");
}

#[test]
fn features_out_writes_the_engines_table() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("log.csv"),
        "user,when,amount\na,1997-01-03,2\nb,1997-02-01,1.5\nb,1997-01-02,3\nb,1997-10-02,7\nc,1997-11-01,4\n",
    )
    .unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        "[pipeline]\nname = \"events\"\ntask = \"binary\"\n\n[data]\npath = \"log.csv\"\ntarget = \"again\"\n\
         types = { when = \"timestamp\" }\n\n[data.events]\nentity = \"user\"\ntime = \"when\"\nvalues = [\"amount\"]\n\
         cutoff = \"1997-09-30\"\nhorizon_end = \"1997-12-31\"\nrecent_days = [30]\n\n\
         [[models]]\nkind = \"smartcore.logistic_regression\"\n",
    )
    .unwrap();
    let out = dir.path().join("features.csv");
    let o = promoml(&["features", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("wrote 2 entities"), "{}", text(&o.stdout));
    let csv = std::fs::read_to_string(&out).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "user,n_events,n_days,frequency,recency_days,T_days,days_since_last,mean_gap_days,recency_ratio,\
         n_events_last_30d,n_days_last_30d,amount_total,amount_mean,amount_max,amount_first_day,\
         amount_repeat_mean,amount_last_30d,again"
    );
    // `a` first (order of first appearance), then `b` with its horizon purchase; `c` has none
    // in the input window.
    assert!(lines.next().unwrap().starts_with("a,1,1,0,0,270,270,270,0,0,0,2,2,2,2,0,0,FALSE"), "{csv}");
    assert!(lines.next().unwrap().starts_with("b,2,2,1,30,271,241,30,"), "{csv}");
    assert_eq!(lines.next(), None);
    // The SQL of the same pipeline reads the log's ISO text dates.
    let o = promoml(&["features", pipeline.to_str().unwrap(), "--sql", "--dialect", "duckdb"]);
    assert!(text(&o.stdout).contains("extract(epoch FROM CAST(\"when\" AS TIMESTAMP))"), "{}", text(&o.stdout));
}

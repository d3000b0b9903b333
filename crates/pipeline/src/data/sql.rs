//! The `[data.events]` plan as one SQL query, for engines that already hold the log (Spark,
//! Trino, PostgreSQL, DuckDB, DataFusion): `promoml features PIPELINE --sql --dialect spark`.
//!
//! [`events_sql`] writes a query over a table `events` (the log, with its own column names)
//! that returns one row per entity with an event in the input window and exactly the columns of
//! the entity table that [`crate::sequence::build`] and [`crate::data::events::build_file`]
//! make (the entity, the summaries, the target; not the hidden row id, not the sequences),
//! in the same order and with the same meaning. Its result, written as Parquet, is a plain
//! table for a pipeline without `[data.events]` (`path = "features.parquet"`).
//!
//! Every feature is computed by the engine:
//!
//! 1. `ev`: the entity, the event's time as whole epoch seconds (UTC), the values as doubles;
//! 2. `inp`: the events of the input window `[start, cutoff]` with their calendar day
//!    (`FLOOR(seconds / 86400.0)`, the `div_euclid` of the builder);
//! 3. `per_day` / `days`: one row per entity and active day (event count, value sums and
//!    maxima), with the entity's first active day (a window function);
//! 4. `agg`: per entity, conditional sums over its active days (recent windows, periods,
//!    first-day and repeat-day amounts);
//! 5. `hor`: per entity, the events of the label window `(cutoff, horizon_end]`;
//! 6. the final `SELECT` derives the ratios and the label (`LEFT JOIN`: an entity with horizon
//!    events only has no row, one without horizon events gets `FALSE` / 0).
//!
//! Sums run in another order than the builder's (per day, then per entity), so amounts may
//! differ from the builder's in the last bits; counts and day differences are exact integers.

use crate::sequence::{EventsPlan, Label};
use promoml_core::io::{ReadOptions, civil_from_days};
use promoml_core::{Error, Frame, Result};
use std::fmt::Write as _;
use std::path::Path;

const DAY: i64 = 86_400;

/// The SQL engine a query is written for: how identifiers are quoted, how a time becomes epoch
/// seconds, how text is parsed into a time, and the name of the double type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Apache DataFusion (also promoml's own engine): `date_part('epoch', ..)`, `to_timestamp`
    /// with a chrono format.
    DataFusion,
    /// PostgreSQL (and engines that follow it): `extract(epoch FROM ..)`, `to_timestamp(text,
    /// 'YYYYMMDD')`.
    Postgres,
    /// Apache Spark SQL / Databricks: backticks, `unix_timestamp(text, 'yyyyMMdd')`.
    Spark,
    /// DuckDB: `extract(epoch FROM ..)`, `strptime(text, '%Y%m%d')`.
    DuckDb,
    /// Trino / Presto: `to_unixtime(..)`, `date_parse(text, '%Y%m%d')` (MySQL-style format).
    Trino,
}

impl Dialect {
    /// Every dialect, in the order of [`Dialect::NAMES`].
    pub const ALL: [Dialect; 5] =
        [Dialect::DataFusion, Dialect::Postgres, Dialect::Spark, Dialect::DuckDb, Dialect::Trino];
    /// The names [`Dialect::parse`] accepts, as the CLI's `--dialect` spells them.
    pub const NAMES: [&'static str; 5] = ["datafusion", "postgres", "spark", "duckdb", "trino"];

    /// The dialect named `name` (`datafusion`, `postgres`, `spark`, `duckdb`, `trino`;
    /// case-insensitive, `postgresql`, `databricks` and `presto` accepted too). The error names
    /// `--dialect`.
    pub fn parse(name: &str) -> Result<Dialect> {
        match name.to_ascii_lowercase().as_str() {
            "datafusion" => Ok(Dialect::DataFusion),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            "spark" | "databricks" => Ok(Dialect::Spark),
            "duckdb" => Ok(Dialect::DuckDb),
            "trino" | "presto" => Ok(Dialect::Trino),
            other => Err(Error::config(
                "--dialect",
                format!("unknown SQL dialect \"{other}\" (known: {})", Dialect::NAMES.join(", ")),
            )),
        }
    }

    /// The dialect's name, as [`Dialect::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::DataFusion => "datafusion",
            Dialect::Postgres => "postgres",
            Dialect::Spark => "spark",
            Dialect::DuckDb => "duckdb",
            Dialect::Trino => "trino",
        }
    }

    /// `name` as a quoted identifier: backticks for Spark, double quotes elsewhere (the quote
    /// character doubled inside).
    pub fn quote(self, name: &str) -> String {
        match self {
            Dialect::Spark => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    fn double(self) -> &'static str {
        match self {
            Dialect::Postgres => "DOUBLE PRECISION",
            _ => "DOUBLE",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Dialect::Postgres => "TEXT",
            Dialect::Spark => "STRING",
            _ => "VARCHAR",
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the log's time column is stored in the table the query reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeColumn {
    /// A `TIMESTAMP` (instants, or wall-clock times read as UTC) or `DATE` column.
    Timestamp,
    /// ISO text (`1997-01-01`, `1997-01-01 12:30:00`, `1997-01-01T12:30:00`), cast to a
    /// timestamp by the engine.
    IsoText,
    /// Text or integers (CDNOW's `19970101`) in a chrono format of `data.timestamp_format`
    /// (`%Y %m %d %H %M %S` and literal characters), parsed with the dialect's own function.
    Formatted(String),
}

impl TimeColumn {
    /// The time column of the log at `path` as promoml reads it: a `TIMESTAMP`/`DATE` column of
    /// a Parquet file (or of the first Parquet file under a folder) is [`TimeColumn::Timestamp`];
    /// anything else is text, in `data.timestamp_format` when the pipeline sets one, ISO
    /// otherwise.
    pub fn of_log(path: &Path, read: &ReadOptions, time: &str) -> TimeColumn {
        if parquet_time_is_timestamp(path, time) {
            return TimeColumn::Timestamp;
        }
        TimeColumn::text(read.csv.timestamp_format.as_deref())
    }

    /// Text in `format` ([`TimeColumn::Formatted`]) or, without one, ISO text.
    pub fn text(format: Option<&str>) -> TimeColumn {
        match format {
            Some(f) => TimeColumn::Formatted(f.to_string()),
            None => TimeColumn::IsoText,
        }
    }
}

/// Whether `time` is a timestamp or date column of the Parquet file at `path` (or of the first
/// Parquet file found under the folder `path`).
fn parquet_time_is_timestamp(path: &Path, time: &str) -> bool {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    fn first_parquet(dir: &Path, depth: usize) -> Option<std::path::PathBuf> {
        let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().map(|e| e.path()).collect();
        entries.sort();
        entries.iter().find(|p| p.is_file() && is_parquet_name(p)).cloned().or_else(|| {
            (depth < 8).then(|| entries.iter().filter(|p| p.is_dir()).find_map(|d| first_parquet(d, depth + 1)))?
        })
    }
    fn is_parquet_name(p: &Path) -> bool {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        ext == "parquet" || ext == "pq"
    }
    let file = if path.is_dir() {
        first_parquet(path, 0)
    } else if is_parquet_name(path) {
        Some(path.to_path_buf())
    } else {
        None
    };
    let Some(schema) = file
        .and_then(|f| std::fs::File::open(f).ok())
        .and_then(|f| ParquetRecordBatchReaderBuilder::try_new(f).ok())
        .map(|b| b.schema().clone())
    else {
        return false;
    };
    schema
        .field_with_name(time)
        .is_ok_and(|f| matches!(f.data_type(), DataType::Timestamp(..) | DataType::Date32 | DataType::Date64))
}

/// The names of the entity table's columns, in order, as [`events_sql`] returns them and
/// [`crate::sequence::build`] makes them (without the hidden row id): the entity, the
/// summaries, the target.
pub fn entity_columns(plan: &EventsPlan, target: &str) -> Vec<String> {
    let mut names = vec![plan.entity.clone()];
    names.extend(crate::data::events::summary_names(plan));
    names.push(target.to_string());
    names
}

/// A chrono time format (`data.timestamp_format`) in the dialect's own notation: unchanged for
/// DataFusion and DuckDB (both read `%Y %m %d %H %M %S`), `yyyyMMdd`-style for Spark (letters
/// quoted), `YYYYMMDD` / `HH24:MI:SS` for PostgreSQL (letters double-quoted), MySQL-style
/// `%Y%m%d %H:%i:%s` for Trino. Only `%Y %m %d %H %M %S` and `%%` are translated; any other
/// specifier is refused, naming `data.timestamp_format`.
pub fn time_format(format: &str, dialect: Dialect) -> Result<String> {
    let bad = |what: String| {
        Err(Error::config(
            "data.timestamp_format",
            format!("\"{format}\": {what}; the SQL translation knows %Y %m %d %H %M %S and %%"),
        ))
    };
    let mut out = String::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let Some(s) = chars.next() else { return bad("a lone % at the end".into()) };
            let (spark, postgres, trino) = match s {
                'Y' => ("yyyy", "YYYY", "%Y"),
                'm' => ("MM", "MM", "%m"),
                'd' => ("dd", "DD", "%d"),
                'H' => ("HH", "HH24", "%H"),
                'M' => ("mm", "MI", "%i"),
                'S' => ("ss", "SS", "%s"),
                '%' => ("%", "%", "%%"),
                other => return bad(format!("the specifier %{other}")),
            };
            match dialect {
                Dialect::DataFusion | Dialect::DuckDb => {
                    out.push('%');
                    out.push(s);
                }
                Dialect::Spark => out.push_str(spark),
                Dialect::Postgres => out.push_str(postgres),
                Dialect::Trino => out.push_str(trino),
            }
        } else {
            match dialect {
                Dialect::DataFusion | Dialect::DuckDb | Dialect::Trino => out.push(c),
                // Letters are pattern letters in Spark and PostgreSQL: quote them as literals.
                Dialect::Spark if c.is_ascii_alphabetic() || c == '\'' => {
                    if c == '\'' {
                        out.push_str("''");
                    } else {
                        out.push('\'');
                        out.push(c);
                        out.push('\'');
                    }
                }
                Dialect::Postgres if c.is_ascii_alphabetic() => {
                    out.push('"');
                    out.push(c);
                    out.push('"');
                }
                _ => out.push(c),
            }
        }
    }
    Ok(out)
}

/// A SQL string literal (single quotes doubled).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The expression giving an event's time in whole seconds since 1970-01-01 UTC.
fn epoch_seconds(dialect: Dialect, time: &TimeColumn, column: &str) -> Result<String> {
    let c = dialect.quote(column);
    let text = dialect.text();
    let secs = match (dialect, time) {
        (Dialect::Spark, TimeColumn::Timestamp) => format!("unix_timestamp({c})"),
        (Dialect::Spark, TimeColumn::IsoText) => format!("unix_timestamp(CAST({c} AS TIMESTAMP))"),
        (Dialect::Spark, TimeColumn::Formatted(f)) => {
            format!("unix_timestamp(CAST({c} AS {text}), {})", literal(&time_format(f, dialect)?))
        }
        (Dialect::Trino, TimeColumn::Timestamp) => format!("to_unixtime({c})"),
        (Dialect::Trino, TimeColumn::IsoText) => format!("to_unixtime(CAST({c} AS TIMESTAMP))"),
        (Dialect::Trino, TimeColumn::Formatted(f)) => {
            format!("to_unixtime(date_parse(CAST({c} AS {text}), {}))", literal(&time_format(f, dialect)?))
        }
        // `date_part`, not `extract`: promoml's DataFusion is built without the planner of the
        // `extract(.. FROM ..)` syntax (feature `datetime_expressions`); the function is there.
        (Dialect::DataFusion, TimeColumn::Timestamp) => format!("date_part('epoch', {c})"),
        (Dialect::DataFusion, TimeColumn::IsoText) => format!("date_part('epoch', CAST({c} AS TIMESTAMP))"),
        (Dialect::DataFusion, TimeColumn::Formatted(f)) => {
            format!("date_part('epoch', to_timestamp(CAST({c} AS {text}), {}))", literal(&time_format(f, dialect)?))
        }
        (_, TimeColumn::Timestamp) => format!("extract(epoch FROM {c})"),
        (_, TimeColumn::IsoText) => format!("extract(epoch FROM CAST({c} AS TIMESTAMP))"),
        (Dialect::Postgres, TimeColumn::Formatted(f)) => format!(
            "extract(epoch FROM CAST(to_timestamp(CAST({c} AS {text}), {}) AS TIMESTAMP))",
            literal(&time_format(f, dialect)?)
        ),
        (Dialect::DuckDb, TimeColumn::Formatted(f)) => {
            format!("extract(epoch FROM strptime(CAST({c} AS {text}), {}))", literal(&time_format(f, dialect)?))
        }
    };
    Ok(format!("CAST(FLOOR({secs}) AS BIGINT)"))
}

/// A moment as ISO text, for the query's comments.
fn iso(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(DAY));
    let s = t.rem_euclid(DAY);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The event plan as one SQL query in `dialect` over the table `events` (the log, with the
/// plan's column names; its time column stored as `time` says): one row per entity with an event in
/// the input window, with the columns of [`entity_columns`] in that order (the label named
/// `target`), ordered by entity.
///
/// The input contract: `events` has the entity column (any type; rows where it is `NULL` are
/// left out), the time column, and the numeric value columns (and `label_column` for
/// `label = "sum"`). Times are read as UTC (Spark: run with `spark.sql.session.timeZone=UTC`,
/// PostgreSQL with a UTC session for text parsed by `to_timestamp`). Where promoml stops at a
/// missing value in the window, the SQL skips it in sums and maxima (it still counts as an
/// event): fill or filter missing values first.
///
/// Errors: a target that is also a summary's name (`data.target`); a `timestamp_format` the
/// dialect's translation does not know (`data.timestamp_format`).
pub fn events_sql(plan: &EventsPlan, target: &str, time: &TimeColumn, dialect: Dialect) -> Result<String> {
    let columns = entity_columns(plan, target);
    if columns[1..columns.len() - 1].iter().any(|c| c == target) {
        return Err(Error::config("data.target", format!("`{target}` is also the name of an events summary column")));
    }
    if columns[0] == target {
        return Err(Error::config("data.target", format!("`{target}` is also the events entity column")));
    }
    let q = |name: &str| dialect.quote(name);
    let dbl = dialect.double();
    let nv = plan.values.len();
    let cutoff = plan.cutoff;
    let ref_day = cutoff.div_euclid(DAY);
    let mut s = String::new();
    // The header: what the query reads and computes.
    let _ = writeln!(s, "-- promoml [data.events] features, {} dialect: one row per entity.", dialect.name());
    let header = format!(
        "-- Reads table `events`: entity {}, time {} ({}){}.",
        plan.entity,
        plan.time,
        match time {
            TimeColumn::Timestamp => "TIMESTAMP or DATE".to_string(),
            TimeColumn::IsoText => "ISO text".to_string(),
            TimeColumn::Formatted(f) => format!("text or integers in {f}"),
        },
        if plan.values.is_empty() && !matches!(plan.label, Label::Sum(_)) {
            String::new()
        } else {
            let mut v = plan.values.clone();
            if let Label::Sum(c) = &plan.label
                && !v.contains(c)
            {
                v.push(c.clone());
            }
            format!(", numbers {}", v.join(", "))
        }
    );
    // One comment line, whatever the names hold.
    let _ = writeln!(s, "{}", header.replace(['\n', '\r'], " "));
    let _ = writeln!(
        s,
        "-- Input window [{}, {}] (seconds since 1970-01-01 UTC: [{}, {cutoff}]); label window ({}, {}].",
        plan.start.map_or_else(|| "the first event".to_string(), iso),
        iso(cutoff),
        plan.start.map_or_else(|| "-inf".to_string(), |t| t.to_string()),
        iso(cutoff),
        iso(plan.horizon_end),
    );
    match dialect {
        Dialect::Spark => {
            let _ = writeln!(s, "-- Times are read as UTC: run with spark.sql.session.timeZone=UTC.");
        }
        Dialect::Trino => {
            let _ = writeln!(s, "-- Times are read as UTC: run in a session with SET TIME ZONE 'UTC'.");
        }
        _ => {}
    }
    // ev: the events with epoch seconds and double values.
    let _ = writeln!(s, "WITH ev AS (");
    let _ = writeln!(s, "  SELECT");
    let mut sel =
        vec![format!("{} AS ent", q(&plan.entity)), format!("{} AS secs", epoch_seconds(dialect, time, &plan.time)?)];
    for (i, v) in plan.values.iter().enumerate() {
        sel.push(format!("CAST({} AS {dbl}) AS v{i}", q(v)));
    }
    if let Label::Sum(c) = &plan.label {
        sel.push(format!("CAST({} AS {dbl}) AS lv", q(c)));
    }
    list(&mut s, "    ", &sel);
    let _ = writeln!(s, "  FROM events");
    let _ = writeln!(s, "  WHERE {} IS NOT NULL", q(&plan.entity));
    let _ = writeln!(s, "),");
    // inp: the input window's events with their day.
    let vs: String = (0..nv).map(|i| format!(", v{i}")).collect();
    let window = match plan.start {
        Some(st) => format!("secs >= {st} AND secs <= {cutoff}"),
        None => format!("secs <= {cutoff}"),
    };
    let _ = writeln!(s, "inp AS (");
    let _ = writeln!(s, "  SELECT ent, CAST(FLOOR(secs / 86400.0) AS BIGINT) AS dnum{vs}");
    let _ = writeln!(s, "  FROM ev");
    let _ = writeln!(s, "  WHERE {window}");
    let _ = writeln!(s, "),");
    // per_day: one row per entity and active day.
    let _ = writeln!(s, "per_day AS (");
    let _ = writeln!(s, "  SELECT");
    let mut sel = vec!["ent".to_string(), "dnum".to_string(), "COUNT(*) AS n".to_string()];
    for i in 0..nv {
        sel.push(format!("SUM(v{i}) AS s{i}"));
        sel.push(format!("MAX(v{i}) AS m{i}"));
    }
    list(&mut s, "    ", &sel);
    let _ = writeln!(s, "  FROM inp");
    let _ = writeln!(s, "  GROUP BY ent, dnum");
    let _ = writeln!(s, "),");
    // days: with the entity's first active day.
    let sm: String = (0..nv).map(|i| format!(", s{i}, m{i}")).collect();
    let _ = writeln!(s, "days AS (");
    let _ = writeln!(s, "  SELECT ent, dnum, n{sm}, MIN(dnum) OVER (PARTITION BY ent) AS first_d");
    let _ = writeln!(s, "  FROM per_day");
    let _ = writeln!(s, "),");
    // agg: per entity.
    let _ = writeln!(s, "agg AS (");
    let _ = writeln!(s, "  SELECT");
    let mut sel = vec![
        "ent".to_string(),
        "SUM(n) AS n_events".to_string(),
        "COUNT(*) AS n_days".to_string(),
        "MIN(dnum) AS fday".to_string(),
        "MAX(dnum) AS lday".to_string(),
    ];
    // Days strictly after `ref_day - k` are within the last k days.
    for (r, &k) in plan.recent_days.iter().enumerate() {
        let since = ref_day - i64::from(k);
        sel.push(format!("SUM(CASE WHEN dnum > {since} THEN n ELSE 0 END) AS ne_r{r}"));
        sel.push(format!("SUM(CASE WHEN dnum > {since} THEN 1 ELSE 0 END) AS nd_r{r}"));
    }
    // Period p: (ref_day - day) div period_days == p, i.e. day in (ref_day - (p+1)w, ref_day - pw].
    let w = i64::from(plan.period_days);
    for p in 0..plan.periods as i64 {
        let (lo, hi) = (ref_day - (p + 1) * w, ref_day - p * w);
        sel.push(format!("SUM(CASE WHEN dnum > {lo} AND dnum <= {hi} THEN 1 ELSE 0 END) AS nd_p{p}"));
    }
    for i in 0..nv {
        sel.push(format!("SUM(s{i}) AS tot{i}"));
        sel.push(format!("MAX(m{i}) AS max{i}"));
        sel.push(format!("SUM(CASE WHEN dnum = first_d THEN s{i} ELSE 0 END) AS fd{i}"));
        sel.push(format!("SUM(CASE WHEN dnum <> first_d THEN s{i} ELSE 0 END) AS rep{i}"));
        for (r, &k) in plan.recent_days.iter().enumerate() {
            let since = ref_day - i64::from(k);
            sel.push(format!("SUM(CASE WHEN dnum > {since} THEN s{i} ELSE 0 END) AS l{i}_r{r}"));
        }
    }
    list(&mut s, "    ", &sel);
    let _ = writeln!(s, "  FROM days");
    let _ = writeln!(s, "  GROUP BY ent");
    let _ = writeln!(s, "),");
    // hor: the label window's events per entity.
    let sum = if matches!(plan.label, Label::Sum(_)) { ", SUM(lv) AS s_h" } else { "" };
    let _ = writeln!(s, "hor AS (");
    let _ = writeln!(s, "  SELECT ent, COUNT(*) AS n_h{sum}");
    let _ = writeln!(s, "  FROM ev");
    let _ = writeln!(s, "  WHERE secs > {cutoff} AND secs <= {}", plan.horizon_end);
    let _ = writeln!(s, "  GROUP BY ent");
    let _ = writeln!(s, ")");
    // The entity table.
    let int = |e: &str, name: &str| format!("CAST({e} AS BIGINT) AS {}", q(name));
    let num = |e: &str, name: &str| format!("CAST({e} AS {dbl}) AS {}", q(name));
    let mut sel = vec![
        format!("a.ent AS {}", q(&plan.entity)),
        int("a.n_events", "n_events"),
        int("a.n_days", "n_days"),
        int("a.n_days - 1", "frequency"),
        int("a.lday - a.fday", "recency_days"),
        int(&format!("{ref_day} - a.fday"), "T_days"),
        int(&format!("{ref_day} - a.lday"), "days_since_last"),
        num(
            &format!(
                "CASE WHEN a.n_days = 1 THEN CAST({ref_day} - a.fday AS {dbl}) \
                 ELSE CAST(a.lday - a.fday AS {dbl}) / (a.n_days - 1) END"
            ),
            "mean_gap_days",
        ),
        num(
            &format!(
                "CASE WHEN a.fday = {ref_day} THEN 1.0 \
                 ELSE CAST(a.lday - a.fday AS {dbl}) / ({ref_day} - a.fday) END"
            ),
            "recency_ratio",
        ),
    ];
    for (r, &k) in plan.recent_days.iter().enumerate() {
        sel.push(int(&format!("a.ne_r{r}"), &format!("n_events_last_{k}d")));
        sel.push(int(&format!("a.nd_r{r}"), &format!("n_days_last_{k}d")));
    }
    for p in 0..plan.periods {
        sel.push(int(&format!("a.nd_p{p}"), &format!("n_days_period_{p}")));
    }
    for (i, v) in plan.values.iter().enumerate() {
        sel.push(num(&format!("a.tot{i}"), &format!("{v}_total")));
        sel.push(num(&format!("a.tot{i} / a.n_events"), &format!("{v}_mean")));
        sel.push(num(&format!("a.max{i}"), &format!("{v}_max")));
        sel.push(num(&format!("a.fd{i}"), &format!("{v}_first_day")));
        sel.push(num(
            &format!("CASE WHEN a.n_days = 1 THEN 0.0 ELSE a.rep{i} / (a.n_days - 1) END"),
            &format!("{v}_repeat_mean"),
        ));
        for (r, &k) in plan.recent_days.iter().enumerate() {
            sel.push(num(&format!("a.l{i}_r{r}"), &format!("{v}_last_{k}d")));
        }
    }
    sel.push(match plan.label {
        Label::Any => format!("COALESCE(h.n_h, 0) > 0 AS {}", q(target)),
        Label::Count => int("COALESCE(h.n_h, 0)", target),
        Label::Sum(_) => num("COALESCE(h.s_h, 0.0)", target),
    });
    let _ = writeln!(s, "SELECT");
    list(&mut s, "  ", &sel);
    let _ = writeln!(s, "FROM agg a");
    let _ = writeln!(s, "LEFT JOIN hor h ON a.ent = h.ent");
    let _ = writeln!(s, "ORDER BY a.ent;");
    Ok(s)
}

/// Items one per line, comma-separated.
fn list(s: &mut String, indent: &str, items: &[String]) {
    for (i, item) in items.iter().enumerate() {
        let comma = if i + 1 < items.len() { "," } else { "" };
        let _ = writeln!(s, "{indent}{item}{comma}");
    }
}

/// Write an entity table (or any frame) as CSV, or as Parquet when `path` ends in `.parquet` /
/// `.pq`: the table [`events_sql`] computes, computed by promoml's engine instead. Numbers are
/// written as doubles (missing: empty / null), booleans as `TRUE`/`FALSE`, text as text,
/// timestamps as ISO text (CSV) or `TIMESTAMP` seconds (Parquet). Columns whose name starts with
/// `__` (the hidden row id) are left out.
pub fn write_table(frame: &Frame, path: &Path) -> Result<()> {
    use promoml_core::ColumnData;
    let io = |e: std::io::Error| Error::Io { path: path.to_path_buf(), source: e };
    let columns: Vec<&promoml_core::Column> = frame.columns().iter().filter(|c| !c.name.starts_with("__")).collect();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if ext == "parquet" || ext == "pq" {
        let batch = crate::data::engine::to_batch(columns.iter().copied())?;
        let schema = batch.schema();
        let file = std::fs::File::create(path).map_err(io)?;
        let parquet = |e: datafusion::parquet::errors::ParquetError| Error::data(format!("{}: {e}", path.display()));
        let mut w = datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None).map_err(parquet)?;
        w.write(&batch).map_err(parquet)?;
        w.close().map_err(parquet)?;
        return Ok(());
    }
    let field = |text: &str| {
        if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.into() }
    };
    let mut out = String::new();
    let names: Vec<String> = columns.iter().map(|c| field(&c.name)).collect();
    out.push_str(&names.join(","));
    out.push('\n');
    for i in 0..frame.n_rows() {
        for (j, c) in columns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            match &c.data {
                ColumnData::Numeric(v) if v[i].is_finite() => {
                    // `+ 0.0`: an empty sum is -0.0; write it as 0.
                    let _ = write!(out, "{}", v[i] + 0.0);
                }
                ColumnData::Timestamp(v) => {
                    if let Some(t) = v[i] {
                        out.push_str(&iso(t));
                    }
                }
                ColumnData::Boolean(v) => {
                    if let Some(b) = v[i] {
                        out.push_str(if b { "TRUE" } else { "FALSE" });
                    }
                }
                other => {
                    if let (false, Some(text)) = (matches!(other, ColumnData::Numeric(_)), other.value_string(i)) {
                        out.push_str(&field(&text));
                    }
                }
            }
        }
        out.push('\n');
    }
    std::fs::write(path, out).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sequence::EventsSpec;
    use datafusion::sql::sqlparser::dialect::{
        AnsiDialect, DatabricksDialect, Dialect as SqlDialect, DuckDbDialect, GenericDialect, HiveDialect,
        PostgreSqlDialect, SparkSqlDialect,
    };
    use datafusion::sql::sqlparser::parser::Parser;

    fn plan(extra: &str) -> EventsPlan {
        let text = format!(
            "entity = \"customer_id\"\ntime = \"date\"\nvalues = [\"number_of_cds\", \"dollar value\"]\n\
             start = \"1997-01-01\"\ncutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"\n\
             recent_days = [30, 90]\nperiods = 3\n{extra}"
        );
        let spec: EventsSpec = toml::from_str(&text).unwrap();
        EventsPlan::from_spec(&spec, Some("%Y%m%d")).unwrap()
    }

    fn parsers(d: Dialect) -> Vec<Box<dyn SqlDialect>> {
        match d {
            Dialect::DataFusion => vec![Box::new(GenericDialect {})],
            Dialect::Postgres => vec![Box::new(PostgreSqlDialect {})],
            Dialect::Spark => {
                vec![Box::new(DatabricksDialect {}), Box::new(HiveDialect {}), Box::new(SparkSqlDialect {})]
            }
            Dialect::DuckDb => vec![Box::new(DuckDbDialect {})],
            Dialect::Trino => vec![Box::new(GenericDialect {}), Box::new(AnsiDialect {})],
        }
    }

    #[test]
    fn every_dialect_parses_with_its_parser() {
        let times = [
            TimeColumn::Timestamp,
            TimeColumn::IsoText,
            TimeColumn::Formatted("%Y%m%d".into()),
            TimeColumn::Formatted("%Y-%m-%dT%H:%M:%S".into()),
        ];
        for extra in ["", "label = \"sum\"\nlabel_column = \"dollar value\"", "label = \"count\"\nstart = \"<none>\""] {
            let p = if extra.contains("<none>") {
                EventsPlan { start: None, ..plan(&extra.replace("\nstart = \"<none>\"", "")) }
            } else {
                plan(extra)
            };
            for d in Dialect::ALL {
                for t in &times {
                    let sql = events_sql(&p, "buys_again", t, d).unwrap();
                    for parser in parsers(d) {
                        let parsed = Parser::parse_sql(parser.as_ref(), &sql)
                            .unwrap_or_else(|e| panic!("{d} / {t:?} / {parser:?}: {e}\n{sql}"));
                        assert_eq!(parsed.len(), 1, "{d}: one statement");
                    }
                    assert!(sql.contains(&d.quote("dollar value")), "{d}: quoted names");
                }
            }
        }
    }

    #[test]
    fn time_formats_per_dialect() {
        assert_eq!(time_format("%Y%m%d", Dialect::Spark).unwrap(), "yyyyMMdd");
        assert_eq!(time_format("%Y%m%d", Dialect::Postgres).unwrap(), "YYYYMMDD");
        assert_eq!(time_format("%Y%m%d", Dialect::DuckDb).unwrap(), "%Y%m%d");
        assert_eq!(time_format("%d.%m.%Y %H:%M:%S", Dialect::Spark).unwrap(), "dd.MM.yyyy HH:mm:ss");
        assert_eq!(time_format("%Y-%m-%dT%H:%M", Dialect::Spark).unwrap(), "yyyy-MM-dd'T'HH:mm");
        assert_eq!(time_format("%Y-%m-%dT%H:%M:%S", Dialect::Postgres).unwrap(), "YYYY-MM-DD\"T\"HH24:MI:SS");
        assert_eq!(time_format("%Y-%m-%d %H:%M:%S", Dialect::Trino).unwrap(), "%Y-%m-%d %H:%i:%s");
        let e = time_format("%d %b %Y", Dialect::Spark).unwrap_err().to_string();
        assert!(e.contains("data.timestamp_format") && e.contains("%b"), "{e}");
        let p = plan("");
        let e = events_sql(&p, "y", &TimeColumn::Formatted("%s".into()), Dialect::DataFusion).unwrap_err();
        assert!(e.to_string().contains("data.timestamp_format"), "{e}");
    }

    #[test]
    fn the_time_becomes_epoch_seconds_per_dialect() {
        let p = plan("");
        let f = TimeColumn::Formatted("%Y%m%d".into());
        let sql = |d| events_sql(&p, "y", &f, d).unwrap();
        assert!(sql(Dialect::DataFusion).contains("to_timestamp(CAST(\"date\" AS VARCHAR), '%Y%m%d')"));
        assert!(sql(Dialect::Spark).contains("unix_timestamp(CAST(`date` AS STRING), 'yyyyMMdd')"));
        assert!(sql(Dialect::DuckDb).contains("strptime(CAST(\"date\" AS VARCHAR), '%Y%m%d')"));
        assert!(sql(Dialect::Postgres).contains("to_timestamp(CAST(\"date\" AS TEXT), 'YYYYMMDD')"));
        assert!(sql(Dialect::Trino).contains("to_unixtime(date_parse(CAST(\"date\" AS VARCHAR), '%Y%m%d'))"));
        // The window's bounds are epoch seconds: 1997-01-01 and the last second of 1997-09-30.
        assert!(sql(Dialect::Postgres).contains("secs >= 852076800 AND secs <= 875663999"));
    }

    #[test]
    fn names_and_dialects() {
        let p = plan("");
        let names = entity_columns(&p, "y");
        assert_eq!(names.first().map(String::as_str), Some("customer_id"));
        assert_eq!(names.last().map(String::as_str), Some("y"));
        assert!(names.contains(&"n_days_period_2".to_string()) && names.contains(&"dollar value_last_90d".to_string()));
        let e = events_sql(&p, "n_days", &TimeColumn::Timestamp, Dialect::Spark).unwrap_err().to_string();
        assert!(e.contains("data.target"), "{e}");
        for (d, n) in Dialect::ALL.iter().zip(Dialect::NAMES) {
            assert_eq!(Dialect::parse(n).unwrap(), *d);
            assert_eq!(d.name(), n);
        }
        assert!(Dialect::parse("oracle").unwrap_err().to_string().contains("--dialect"));
        assert_eq!(Dialect::Spark.quote("a`b"), "`a``b`");
        assert_eq!(Dialect::Postgres.quote("a\"b"), "\"a\"\"b\"");
    }
}

//! Loading the data a pipeline declares, cutting it into train and test, and the checks that
//! make bad data fail early with a clear message.
//!
//! The query engine (Apache DataFusion, [`engine`]) evaluates `[data] derive` for any table and
//! runs the event plan of `[data.events]` ([`events`]) over a log streamed by `source`, in the
//! memory of `[data] memory_limit`.

pub mod engine;
pub mod events;
mod source;
pub mod sql;

use crate::cv::holdout;
use crate::plan::{DataPlan, DataSource, SplitRule};
use promoml_core::io::read_file;
use promoml_core::synthetic::SyntheticPromotion;
use promoml_core::{ColumnData, Error, Frame, Result, Sequences, Task};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Train and test frames, as loaded.
pub struct Loaded {
    /// Training rows.
    pub train: Frame,
    /// Test rows.
    pub test: Frame,
    /// Where they came from, for the report.
    pub description: String,
    /// Columns before `drop`.
    pub columns: usize,
    /// Behaviour sequences of an event-log source, indexed by the hidden
    /// [`ROW_ID`](crate::sequence::ROW_ID) column of the train and test rows.
    pub sequences: Option<Arc<Sequences>>,
    /// Per column named in `data.on_bad_value`, how many unreadable values were read as missing
    /// (train and test files together).
    pub bad_as_missing: BTreeMap<String, usize>,
    /// Text columns unique on (nearly) every training row, left out of the features
    /// ([`identifier_columns`]).
    pub identifiers: Vec<String>,
    /// The `data.id` column of the training and test rows, taken out of the features (an uplift
    /// policy may name its customers by it: `policy.key`).
    pub ids: Option<(promoml_core::Column, promoml_core::Column)>,
}

/// Text columns that look like identifiers (a phone number, an e-mail, an order id): unique on
/// at least 95 % of the (at least 20) training rows that have a value. One-hot encoding them
/// would make a feature per row that no new row shares. Columns the pipeline names anywhere
/// (`types`, a step's `columns`, `policy.key`, ...) and the target are kept.
pub fn identifier_columns(train: &Frame, plan: &DataPlan) -> Vec<String> {
    let mut out = Vec::new();
    for c in train.columns() {
        if c.name == plan.target || plan.named.contains(&c.name) || c.name.starts_with("__") {
            continue;
        }
        let ColumnData::Categorical { codes, .. } = &c.data else { continue };
        let present: Vec<u32> = codes.iter().flatten().copied().collect();
        let distinct: std::collections::HashSet<u32> = present.iter().copied().collect();
        if present.len() >= 20 && distinct.len() * 100 >= present.len() * 95 {
            out.push(c.name.clone());
        }
    }
    out
}

/// Add the values read as missing in `frame` to `counts`.
fn count_bad(counts: &mut BTreeMap<String, usize>, frame: &Frame) {
    for (c, n) in frame.origin().map(|o| &o.bad_as_missing).into_iter().flatten() {
        *counts.entry(c.clone()).or_default() += n;
    }
}

/// Class labels of a target column, in index order (the positive class last for binary tasks).
pub fn class_labels(col: &ColumnData, positive: Option<&str>, task: Task, target: &str) -> Result<Vec<String>> {
    let mut labels: Vec<String> = (0..col.len()).filter_map(|i| col.value_string(i)).collect();
    match col {
        ColumnData::Numeric(_) => {
            labels.sort_by(|a, b| a.parse::<f64>().unwrap_or(0.0).total_cmp(&b.parse::<f64>().unwrap_or(0.0)));
        }
        _ => labels.sort(),
    }
    labels.dedup();
    if labels.len() < 2 {
        return Err(Error::data(format!(
            "target `{target}` has a single class ({}) in the training rows: nothing to learn",
            labels.first().map_or("no values".into(), |l| format!("\"{l}\""))
        )));
    }
    if task == Task::Binary && labels.len() > 2 {
        return Err(Error::data(format!(
            "target `{target}` has {} classes ({}…) but the task is binary; use task = \"multiclass\"",
            labels.len(),
            labels.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(p) = positive {
        let pos = labels.iter().position(|l| l == p).ok_or_else(|| {
            Error::config(
                "data.positive",
                format!("\"{p}\" is not a class of `{target}` (classes: {})", labels.join(", ")),
            )
        })?;
        let l = labels.remove(pos);
        labels.push(l);
    }
    Ok(labels)
}

/// Load and split the data of a pipeline.
pub fn load(plan: &DataPlan, task: Task) -> Result<Loaded> {
    let mut sequences = None;
    let mut bad_as_missing = BTreeMap::new();
    let (train, test, description) = match &plan.source {
        DataSource::Synthetic { price, rows, arms, split } => {
            let frame =
                SyntheticPromotion { rows: *rows, arms: *arms, price: *price, ..Default::default() }.generate()?;
            let frame = derived(frame, plan)?;
            let (tr, te) = split_frame(&frame, split, plan, task)?;
            let name = if *price { "synthetic.price" } else { "synthetic.promotion" };
            (tr, te, format!("{name} ({rows} rows)"))
        }
        DataSource::File { path, split } if plan.events.is_some() => {
            let ev = plan.events.as_ref().expect("matched");
            // The log is streamed through the query engine; only the entity table is held.
            let built = crate::data::events::build_file(path, &plan.read, ev, &plan.target, plan.memory_limit)
                .map_err(|e| match e {
                    located @ (Error::DataAt { .. } | Error::Io { .. } | Error::Config { .. }) => located,
                    other => Error::data(format!("{} (data.events): {other}", path.display())),
                })?;
            for c in &plan.read.csv.bad_as_missing {
                *bad_as_missing.entry(c.clone()).or_default() += built.bad_as_missing.get(c).copied().unwrap_or(0);
            }
            let table = built.table;
            sequences = table.sequences.map(Arc::new);
            let frame = derived(table.frame, plan)?;
            let (tr, te) = split_frame(&frame, split, plan, task)?;
            let what = format!("{} ({} events, {} entities)", path.display(), built.events, frame.n_rows());
            (tr, te, what)
        }
        DataSource::File { path, split } => {
            let frame = read_file(path, &plan.read)?;
            count_bad(&mut bad_as_missing, &frame);
            let frame = derived(frame, plan)?;
            let (tr, te) = split_frame(&frame, split, plan, task)?;
            (tr, te, path.display().to_string())
        }
        DataSource::TrainTest { train, test } => {
            let tr = read_file(train, &plan.read)?;
            // Read the test file with the training file's column types, so both agree.
            let mut opts = plan.read.clone();
            for c in tr.columns() {
                opts.types.entry(c.name.clone()).or_insert(c.data.column_type());
            }
            let te = read_file(test, &opts)?;
            count_bad(&mut bad_as_missing, &tr);
            count_bad(&mut bad_as_missing, &te);
            for c in tr.columns() {
                te.require(&c.name, &format!("test file {}:", test.display()))?;
            }
            let (tr, te) = (derived(tr, plan)?, derived(te, plan)?);
            (tr, te, format!("{} + {}", train.display(), test.display()))
        }
    };
    let columns = train.n_cols();
    let (mut train, mut test) = (train, test);
    let ids = plan.id.as_ref().and_then(|c| Some((train.column(c)?.clone(), test.column(c)?.clone())));
    for d in plan.drop.iter().chain(plan.id.iter()) {
        train.require(d, "dropped").map_err(|e| Error::config("data.drop", e.to_string()))?;
        train.remove(d);
        test.remove(d);
    }
    let identifiers = identifier_columns(&train, plan);
    for c in &identifiers {
        tracing::warn!(
            "column `{c}` looks like an identifier (a different value on nearly every row): left out of the features; declare it (`types = {{ {c} = \"categorical\" }}`) to use it, or list it in `data.drop`"
        );
        train.remove(c);
        test.remove(c);
    }
    // Whole-data problems name where the data came from (the file, or the built-in source).
    check(&train, &test, plan, task).map_err(|e| match e {
        Error::Data(m) => Error::Data(format!("{description}: {m}")),
        other => other,
    })?;
    Ok(Loaded { train, test, description, columns, sequences, bad_as_missing, identifiers, ids })
}

/// `frame` with the columns of `[data] derive` computed by the query engine.
fn derived(frame: Frame, plan: &DataPlan) -> Result<Frame> {
    crate::data::engine::derive(frame, &plan.derive, plan.memory_limit)
}

fn split_frame(frame: &Frame, rule: &SplitRule, plan: &DataPlan, task: Task) -> Result<(Frame, Frame)> {
    let n = frame.n_rows();
    let (tr, te) = match rule {
        SplitRule::Modulo { modulo, remainder, column: None } => {
            let te: Vec<usize> = (0..n).filter(|i| i % modulo == *remainder).collect();
            (crate::cv::complement(n, &te), te)
        }
        SplitRule::Modulo { modulo, remainder, column: Some(c) } => {
            let col = &frame.require(c, "split").map_err(|e| Error::config("data.split.column", e.to_string()))?.data;
            let mut te = Vec::new();
            for i in 0..n {
                let v = col.value_f64(i);
                if !matches!(col, ColumnData::Numeric(_)) || !v.is_finite() || v.fract() != 0.0 {
                    return Err(Error::data(format!(
                        "{}: split column `{c}` needs an integer in every row; this row has {}",
                        frame.row_place(i),
                        col.value_string(i).unwrap_or_else(|| "a missing value".into())
                    )));
                }
                if (v as i64).rem_euclid(*modulo as i64) == *remainder as i64 {
                    te.push(i);
                }
            }
            (crate::cv::complement(n, &te), te)
        }
        SplitRule::All => ((0..n).collect(), (0..n).collect()),
        SplitRule::Random { test_fraction, seed } => holdout(n, *test_fraction, None, *seed),
        SplitRule::Stratified { test_fraction, seed } => {
            let col = &frame.require(&plan.target, "target")?.data;
            let labels = class_labels(col, plan.positive.as_deref(), task, &plan.target)?;
            let index: BTreeMap<String, usize> = labels.iter().enumerate().map(|(i, l)| (l.clone(), i)).collect();
            let y: Vec<usize> =
                (0..n).map(|i| col.value_string(i).and_then(|s| index.get(&s).copied()).unwrap_or(0)).collect();
            holdout(n, *test_fraction, Some(&y), *seed)
        }
    };
    if tr.is_empty() || te.is_empty() {
        return Err(Error::data(format!("the split leaves {} training and {} test rows", tr.len(), te.len())));
    }
    Ok((frame.take(&tr), frame.take(&te)))
}

fn check(train: &Frame, test: &Frame, plan: &DataPlan, task: Task) -> Result<()> {
    let target = &plan.target;
    if task == Task::Anomaly && target.is_empty() {
        // No label column: nothing to check but the features.
        return check_columns(train, target);
    }
    let y = &train.require(target, "target")?.data;
    test.require(target, "target (in the test rows)")?;
    let missing = y.missing_count();
    if missing > 0 {
        let first = (0..y.len()).find(|&i| y.is_missing(i)).unwrap_or(0);
        return Err(Error::data(format!(
            "target `{target}` is missing in {missing} training rows (first: {}); remove them with a `filter` cleaner (op = \"not_missing\") or fix the data",
            train.row_place(first)
        )));
    }
    if task == Task::Regression && !matches!(y, ColumnData::Numeric(_) | ColumnData::Boolean(_)) {
        return Err(Error::data(format!(
            "target `{target}` is {:?}; a regression target must be numeric",
            y.column_type()
        )));
    }
    if task.is_classification() {
        class_labels(y, plan.positive.as_deref(), task, target)?;
    }
    check_columns(train, target)
}

fn check_columns(train: &Frame, target: &str) -> Result<()> {
    for c in train.columns() {
        if c.name != *target && c.data.missing_count() == c.data.len() {
            return Err(Error::data(format!(
                "column `{}` has no values at all in the training rows; add it to `data.drop`",
                c.name
            )));
        }
    }
    Ok(())
}

/// Features that alone separate a binary target almost perfectly on the training rows: the
/// univariate ROC AUC of the feature's values (or 1 − AUC) is at least `threshold` (0.95 in a
/// run). Such a feature is often recorded after the outcome (a `visit` flag when predicting
/// `conversion`), and a model that leans on it is worthless on new customers.
pub fn suspected_leaks(ds: &promoml_core::Dataset, threshold: f64) -> Vec<promoml_report::SuspectedLeak> {
    let Some(y) = ds.y.as_deref() else { return Vec::new() };
    let mut out = Vec::new();
    for (j, name) in ds.feature_names.iter().enumerate() {
        let col: Vec<f64> = ds.x.column(j).to_vec();
        if let Ok(auc) = promoml_core::metrics::roc_auc(y, &col) {
            let auc = auc.max(1.0 - auc);
            if auc >= threshold {
                out.push(promoml_report::SuspectedLeak { feature: name.clone(), auc });
            }
        }
    }
    out
}

/// The column names of a data file from its first lines only (CSV, decompressed if need be) or
/// its schema (Parquet; for a directory of Parquet files, its first file's and the partitions').
fn header_of(path: &std::path::Path, plan: &DataPlan) -> Result<Vec<String>> {
    if path.is_dir() {
        return source::Dataset::discover(path)?.columns();
    }
    if promoml_core::io::is_parquet_file(path) {
        return promoml_core::io::parquet_columns(path);
    }
    use std::io::BufRead;
    let file = promoml_core::io::open_text(path)?;
    let mut head = String::new();
    for line in file.lines().take(3) {
        head.push_str(&line.map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?);
        head.push('\n');
    }
    // Names only: no declared types or bad-value rules (they are what is being checked).
    let opts = promoml_core::io::CsvOptions {
        types: Default::default(),
        bad_as_missing: Default::default(),
        ..plan.read.csv.clone()
    };
    let frame = promoml_core::io::read_csv_str(&head, &path.display().to_string(), &opts)?;
    Ok(frame.names().into_iter().map(str::to_string).collect())
}

/// Check, reading only the header of each data file, that every column the pipeline names in
/// `[data]` exists: the target, `id`, `drop`, `types`, `on_bad_value`, and for an event log its
/// entity, time and value columns. Errors are located at the key in the pipeline file, with a
/// "did you mean". Built-in sources are not checked (their columns are fixed).
pub fn check_header(p: &crate::Pipeline) -> crate::Result<()> {
    let plan = &p.data;
    let files: Vec<&std::path::Path> = match &plan.source {
        DataSource::Synthetic { .. } => return Ok(()),
        DataSource::File { path, .. } => vec![path.as_path()],
        DataSource::TrainTest { train, .. } => vec![train.as_path()],
    };
    for file in files {
        let names = header_of(file, plan)?;
        let mut wanted: Vec<(String, &str)> = Vec::new();
        match &plan.events {
            Some(ev) => {
                wanted.push(("data.events.entity".into(), ev.entity.as_str()));
                wanted.push(("data.events.time".into(), ev.time.as_str()));
                for (i, v) in ev.values.iter().enumerate() {
                    wanted.push((format!("data.events.values[{i}]"), v.as_str()));
                }
            }
            None => {
                if !plan.target.is_empty() {
                    wanted.push(("data.target".into(), plan.target.as_str()));
                }
                if let Some(id) = &plan.id {
                    wanted.push(("data.id".into(), id.as_str()));
                }
                for (i, d) in plan.drop.iter().enumerate() {
                    wanted.push((format!("data.drop[{i}]"), d.as_str()));
                }
            }
        }
        for c in plan.read.types.keys() {
            // The event plan declares its own time column's type.
            if plan.events.as_ref().is_none_or(|e| e.time != *c) {
                wanted.push((format!("data.types.{c}"), c.as_str()));
            }
        }
        for c in &plan.read.csv.bad_as_missing {
            wanted.push((format!("data.on_bad_value.{c}"), c.as_str()));
        }
        for (key, col) in wanted {
            // A derived column is made after reading (`data.derive`).
            if !names.iter().any(|n| n == col) && !plan.derive.iter().any(|(d, _)| d == col) {
                let hint = promoml_core::did_you_mean(col, names.iter().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                return Err(p.source.error_at(
                    &key,
                    format!("no column `{col}` in {} (columns: {}){hint}", file.display(), names.join(", ")),
                ));
            }
        }
    }
    Ok(())
}

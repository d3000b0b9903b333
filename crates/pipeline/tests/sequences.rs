//! An event-log pipeline end to end: sequences stay aligned with their rows through the
//! id-based split, a cleaner that drops training rows, the CV folds and the test rows.

use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt as _, Predictions, Registry, Result,
    SearchSpace, Task,
};
use promoml_pipeline::data;
use promoml_pipeline::{Pipeline, Silent, run};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const KIND: &str = "probe.sequence";

/// A model that checks, on every dataset it sees, that each row's sequence belongs to that row:
/// the weekly counts and spend of the sequence must add up to the row's `n_events` and
/// `spend_total` summaries (both computed from the same events), and padding must be zero.
struct Probe;

fn check(data: &Dataset, what: &str) -> Result<()> {
    let s = data.sequences.as_ref().ok_or_else(|| Error::model(KIND, format!("{what}: no sequences")))?;
    let col = |name: &str| {
        data.feature_names.iter().position(|n| n == name).ok_or_else(|| Error::model(KIND, format!("no `{name}`")))
    };
    let (n_events, spend) = (col("n_events")?, col("spend_total")?);
    if data.feature_names.iter().any(|n| n == "customer_id" || n.starts_with("__")) {
        return Err(Error::model(KIND, format!("{what}: the id or the row id is a feature: {:?}", data.feature_names)));
    }
    if s.data.shape()[0] != data.n_rows() || s.lengths.len() != data.n_rows() {
        return Err(Error::model(KIND, format!("{what}: {} sequences for {} rows", s.lengths.len(), data.n_rows())));
    }
    for r in 0..data.n_rows() {
        let len = s.lengths[r];
        let count: f64 = (0..len).map(|t| f64::from(s.data[[r, t, 0]])).sum();
        let total: f64 = (0..len).map(|t| f64::from(s.data[[r, t, 1]])).sum();
        let padding: f32 = (len..s.data.shape()[1]).map(|t| s.data[[r, t, 0]].abs() + s.data[[r, t, 1]].abs()).sum();
        if count != data.x[[r, n_events]] || (total - data.x[[r, spend]]).abs() > 1e-3 || padding != 0.0 {
            return Err(Error::model(
                KIND,
                format!(
                    "{what} row {r}: sequence has {count} events / {total} spent, the row says {} / {}",
                    data.x[[r, n_events]],
                    data.x[[r, spend]]
                ),
            ));
        }
    }
    Ok(())
}

impl Model for Probe {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "test probe: checks that sequences match their rows"
    }
    fn input(&self) -> promoml_core::InputKind {
        promoml_core::InputKind::Sequence
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![ParamSpec::float("scale", "score = n_events / scale", 10.0, 1.0, 100.0)])
    }
    fn fit(&self, data: &Dataset, params: &Params, _ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check(data, "training")?;
        Ok(Box::new(FittedProbe { scale: params.f64("scale")? }))
    }
}

struct FittedProbe {
    scale: f64,
}

impl FittedModel for FittedProbe {
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check(data, "predicted")?;
        let j = data.feature_names.iter().position(|n| n == "n_events").expect("checked");
        Ok(Predictions::binary((0..data.n_rows()).map(|r| (data.x[[r, j]] / self.scale).min(1.0))))
    }
}

/// 200 customers (ids 1..=200): customer `k` buys on `k % 7 + 1` distinct days of 1997 for `k`
/// dollars each, and buys again after the cutoff when `k % 3 == 0`.
fn write_log(dir: &Path) -> PathBuf {
    let mut text = String::from("customer_id date spend\n");
    for k in 1..=200u32 {
        for e in 0..(k % 7 + 1) {
            let month = 1 + (k + e * 2) % 9;
            let day = 1 + (k * 3 + e * 5) % 28;
            writeln!(text, "{k:05} 1997{month:02}{day:02} {k}").unwrap();
        }
        if k % 3 == 0 {
            writeln!(text, "{k:05} 19980115 {}", k * 10).unwrap();
        }
    }
    let path = dir.join("events.txt");
    std::fs::write(&path, text).unwrap();
    path
}

fn pipeline(dir: &Path, log: &Path) -> Pipeline {
    let toml = format!(
        r#"
[pipeline]
name = "sequence-alignment"
task = "binary"

[data]
path = "{}"
delimiter = "whitespace"
timestamp_format = "%Y%m%d"
target = "buys"
positive = "TRUE"
split = {{ kind = "modulo", modulo = 5, remainder = 4, column = "customer_id" }}

[data.events]
entity = "customer_id"
time = "date"
values = ["spend"]
cutoff = "1997-09-30"
horizon_end = "1998-06-30"
transform = "none"

[[clean]]
kind = "filter"
column = "n_events"
op = "<="
value = 5

[[models]]
kind = "{KIND}"

[search]
cv_folds = 3
"#,
        log.display()
    );
    let path = dir.join("p.toml");
    std::fs::write(&path, toml).unwrap();
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    r.add_model(Probe);
    Pipeline::load(&path, &[], &r).unwrap()
}

#[test]
fn test_customers_are_chosen_by_id() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), &write_log(dir.path()));
    let loaded = data::load(&p.data, p.task).unwrap();
    assert_eq!((loaded.train.n_rows(), loaded.test.n_rows()), (160, 40));
    // Every purchase of customer k is k dollars, so the largest one names the customer.
    let ids = |f: &promoml_core::Frame| {
        let c = &f.column("spend_max").unwrap().data;
        (0..c.len()).map(|i| c.value_f64(i) as i64).collect::<Vec<_>>()
    };
    assert!(ids(&loaded.test).iter().all(|k| k % 5 == 4));
    assert!(ids(&loaded.train).iter().all(|k| k % 5 != 4));
    assert!(loaded.train.column("customer_id").is_none(), "the entity is an id, not a feature");
    let s = loaded.sequences.as_ref().unwrap();
    assert_eq!(s.lengths.len(), 200);
}

#[test]
fn sequences_stay_aligned_through_split_cleaner_and_folds() {
    let dir = tempfile::tempdir().unwrap();
    let p = pipeline(dir.path(), &write_log(dir.path()));
    let report = run(&p, &Silent).unwrap();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.data.dropped_train_rows > 0, "the filter dropped training rows");
    assert_eq!(report.data.test_rows, 40);
    let entry = &report.leaderboard[0];
    assert_eq!(entry.name, KIND);
    assert!(entry.test["roc_auc"].is_finite());
    assert!(report.trials.iter().all(|t| t.error.is_none()), "{:?}", report.trials);
}

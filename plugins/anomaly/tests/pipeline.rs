//! The anomaly task and the `anomaly.*` steps through a whole pipeline.

use promoml_core::Registry;
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Pipeline, Silent, run};
use promoml_report::Report;
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_anomaly::register(&mut r);
    r
}

/// 300 rows: 285 around the origin, 15 far out (label 1), a boolean and a categorical column.
fn write_csv(dir: &Path) -> std::path::PathBuf {
    write_labelled(dir, "rows.csv", false)
}

/// The rows of [`write_csv`] into `name`, labels inverted when `invert`.
fn write_labelled(dir: &Path, name: &str, invert: bool) -> std::path::PathBuf {
    let mut s = String::from("a,b,c,flag,colour,label\n");
    for i in 0..300u64 {
        // A cheap deterministic jitter.
        let j = |k: u64| ((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0 - 0.5;
        let out = i % 20 == 7;
        let shift = if out { 8.0 } else { 0.0 };
        s += &format!(
            "{},{},{},{},{},{}\n",
            j(1) + shift,
            j(2) * 3.0 - shift,
            j(3),
            i % 2 == 0,
            ["red", "green"][(i % 2) as usize],
            u8::from(out != invert)
        );
    }
    let path = dir.join(name);
    std::fs::write(&path, s).unwrap();
    path
}

fn pipeline(dir: &Path, body: &str) -> promoml_pipeline::Result<Pipeline> {
    let path = dir.join("p.toml");
    let src = Source::from_text(&path, body.to_string(), &[])?;
    let spec = src.parse()?;
    Pipeline::from_spec(src, spec, &registry())
}

const ANOMALY: &str = r#"
[pipeline]
name = "t"
task = "anomaly"
seed = 3

[data]
path = "rows.csv"
target = "label"

[[models]]
kind = "anomaly.isolation_forest"
params = { n_trees = 100 }

[[models]]
kind = "anomaly.ecod"
"#;

#[test]
fn anomaly_task_scores_detectors_with_the_label_only() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let p = pipeline(dir.path(), ANOMALY).unwrap();
    let report = run(&p, &Silent).unwrap();
    assert_eq!(report.task, "anomaly");
    assert_eq!(report.data.train_rows, 300);
    assert_eq!(report.data.test_rows, 300, "no split: every row fitted on and scored");
    let names: Vec<&str> = report.leaderboard.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"anomaly.isolation_forest") && names.contains(&"anomaly.ecod"), "{names:?}");
    for e in &report.leaderboard {
        assert!(e.test["roc_auc"] > 0.95, "{}: {:?}", e.name, e.test);
        assert!(e.test.contains_key("pr_auc") && e.test.contains_key("precision_at_contamination"));
    }
    let section = report.anomaly.as_ref().unwrap();
    assert_eq!(section.label.as_deref(), Some("label"));
    assert_eq!(section.detectors.len(), 2);
    // The label never reaches the detectors: inverted labels leave every score and threshold
    // where it was, and only the metrics move.
    write_labelled(dir.path(), "inverted.csv", true);
    let inverted = ANOMALY.replace("rows.csv", "inverted.csv");
    let again = run(&pipeline(dir.path(), &inverted).unwrap(), &Silent).unwrap();
    let without_timing = |v: &promoml_report::AnomalySection| {
        let mut v = v.detectors.clone();
        v.iter_mut().for_each(|d| d.score_s = 0.0);
        v
    };
    assert_eq!(without_timing(again.anomaly.as_ref().unwrap()), without_timing(section));
    assert!(again.leaderboard.iter().all(|e| e.test["roc_auc"] < 0.05));
    // Without a label column: detectors still fit, nothing to score them with.
    let unlabelled = ANOMALY.replace("target = \"label\"", "drop = [\"label\"]");
    let r = run(&pipeline(dir.path(), &unlabelled).unwrap(), &Silent).unwrap();
    assert!(r.leaderboard.iter().all(|e| e.test.is_empty()));
    assert!(r.anomaly.as_ref().unwrap().detectors[0].threshold.is_some());
}

#[test]
fn anomaly_task_rejects_search_and_unknown_detectors() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let searched = ANOMALY.replace("params = { n_trees = 100 }", "search = { n_trees = { int = [10, 100] } }");
    let e = pipeline(dir.path(), &searched).err().unwrap().to_string();
    assert!(e.contains("not searched"), "{e}");
    let typo = ANOMALY.replace("kind = \"anomaly.ecod\"", "kind = \"anomaly.ecodd\"");
    let e = pipeline(dir.path(), &typo).err().unwrap().to_string();
    assert!(e.contains("models[1].kind") && e.contains("did you mean `anomaly.ecod`"), "{e}");
    let bad_param = ANOMALY.replace("n_trees = 100", "n_tres = 100");
    let e = pipeline(dir.path(), &bad_param).err().unwrap().to_string();
    assert!(e.contains("did you mean `n_trees`"), "{e}");
    let split_none = ANOMALY.replace("target = \"label\"", "target = \"label\"\nsplit = { kind = \"none\" }");
    assert!(pipeline(dir.path(), &split_none).is_ok());
    let e = pipeline(dir.path(), &split_none.replace("task = \"anomaly\"", "task = \"binary\"")).err().unwrap();
    assert!(e.to_string().contains("only anomaly tasks"), "{e}");
    let held_out =
        ANOMALY.replace("target = \"label\"", "target = \"label\"\nsplit = { kind = \"random\", test_fraction = 0.5 }");
    let r = run(&pipeline(dir.path(), &held_out).unwrap(), &Silent).unwrap();
    assert_eq!(r.data.test_rows, 150);
    assert!(r.anomaly.as_ref().unwrap().protocol.as_deref().unwrap().contains("test rows"));
}

#[test]
fn filter_and_score_steps_report_in_a_binary_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    write_csv(dir.path());
    let body = r#"
[pipeline]
name = "b"
task = "binary"

[data]
path = "rows.csv"
target = "label"

[[clean]]
kind = "anomaly.corrupt"
share = 0.05

[[clean]]
kind = "anomaly.filter"
threshold = "auto"

[[features]]
kind = "anomaly.score"
detector = "anomaly.ecod"

[[models]]
kind = "forest.random_forest"
params = { n_trees = 20 }

[search]
cv_folds = 3
"#;
    // The model plugins are not dependencies here: a stand-in model reads the anomaly score.
    let mut r = registry();
    r.add_model(TinyModel);
    let body = body.replace("kind = \"forest.random_forest\"\nparams = { n_trees = 20 }", "kind = \"test.mean\"");
    let path = dir.path().join("b.toml");
    let src = Source::from_text(&path, body, &[]).unwrap();
    let spec = src.parse().unwrap();
    let p = Pipeline::from_spec(src, spec, &r).unwrap();
    let report = run(&p, &Silent).unwrap();
    let steps = report.anomaly.as_ref().unwrap().steps.clone();
    let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["anomaly.corrupt", "anomaly.filter", "anomaly.score"]);
    assert_eq!(steps[1]["rule"], "auto");
    assert_eq!(report.data.dropped_train_rows, steps[1]["dropped"].as_u64().unwrap() as usize);
    assert!(report.data.test_rows > 0);
}

/// A model that predicts the training positive rate: enough to run a binary pipeline here.
struct TinyModel;
struct TinyFitted(f64);

impl promoml_core::Model for TinyModel {
    fn kind(&self) -> &str {
        "test.mean"
    }
    fn description(&self) -> &str {
        "positive rate"
    }
    fn tasks(&self) -> &[promoml_core::Task] {
        &[promoml_core::Task::Binary]
    }
    fn space(&self) -> promoml_core::SearchSpace {
        promoml_core::SearchSpace::new(vec![])
    }
    fn fit(
        &self,
        data: &promoml_core::Dataset,
        _: &promoml_core::Params,
        _: &promoml_core::FitContext,
    ) -> promoml_core::Result<Box<dyn promoml_core::FittedModel>> {
        let y = data.y.as_ref().unwrap();
        Ok(Box::new(TinyFitted(y.iter().sum::<f64>() / y.len() as f64)))
    }
}

impl promoml_core::FittedModel for TinyFitted {
    fn predict(&self, data: &promoml_core::Dataset) -> promoml_core::Result<promoml_core::Predictions> {
        let col = data.feature_names.iter().position(|n| n == "anomaly_score").unwrap();
        let s = data.x.column(col);
        let max = s.iter().cloned().fold(f64::MIN, f64::max).max(1e-9);
        Ok(promoml_core::Predictions::binary(s.iter().map(|v| (v / max) * self.0.max(0.01) * 10.0)))
    }
}

/// `rows` rows of four numeric features: every 10th row (from `offset`) shifted moderately on
/// two of them (label 1, or 0 when `invert`), so that detectors differ in how well they rank.
fn write_moderate(dir: &Path, name: &str, rows: u64, offset: u64, invert: bool) {
    let mut s = String::from("a,b,c,d,label\n");
    for i in offset..offset + rows {
        let j = |k: u64| ((i * 7919 + k * 104_729) % 1000) as f64 / 1000.0 - 0.5;
        let out = i % 10 == 3;
        let shift = if out { 0.9 } else { 0.0 };
        s += &format!("{},{},{},{},{}\n", j(1) + shift, j(2) - shift, j(3), j(4), u8::from(out != invert));
    }
    std::fs::write(dir.join(name), s).unwrap();
}

/// An anomaly pipeline on `train.csv` and `test`, with the given `[[models]]` entries.
fn held_out(test: &str, models: &str) -> String {
    format!(
        "[pipeline]\nname = \"held-out\"\ntask = \"anomaly\"\nseed = 5\n\n[data]\ntrain = \"train.csv\"\ntest = \"{test}\"\ntarget = \"label\"\n\n{models}"
    )
}

const WEAK_FOREST: &str = "[[models]]\nkind = \"anomaly.isolation_forest\"\nname = \"weak-forest\"\nparams = { n_trees = 1, max_samples = 8 }\n";
const ECOD: &str = "[[models]]\nkind = \"anomaly.ecod\"\n";

#[test]
fn anomaly_final_detector_chosen_without_test_labels() {
    let dir = tempfile::tempdir().unwrap();
    write_moderate(dir.path(), "train.csv", 600, 0, false);
    write_moderate(dir.path(), "test.csv", 300, 600, false);
    write_moderate(dir.path(), "inverted.csv", 300, 600, true);
    let models = format!("{WEAK_FOREST}\n{ECOD}");
    let right = run(&pipeline(dir.path(), &held_out("test.csv", &models)).unwrap(), &Silent).unwrap();
    let wrong = run(&pipeline(dir.path(), &held_out("inverted.csv", &models)).unwrap(), &Silent).unwrap();
    let order = |r: &Report| r.leaderboard.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    // Inverted test labels turn every test figure around, yet the choice stays where the
    // training labels put it: the detector with the best cross-validated ROC-AUC.
    assert_eq!(order(&right), order(&wrong));
    assert_eq!(right.final_model, wrong.final_model);
    assert_eq!(right.final_model, "anomaly.ecod", "{:?}", right.leaderboard);
    for r in [&right, &wrong] {
        let cv: Vec<f64> = r.leaderboard.iter().map(|e| e.cv["roc_auc"]).collect();
        assert!(cv[0] > cv[1], "ranked by cross-validated ROC-AUC: {cv:?}");
        assert_eq!(r.anomaly.as_ref().unwrap().selection.as_ref().unwrap().rule, "cross-validation");
        // The cross-validation ran in the search loop: one trial per detector (its fixed
        // parameters), one score per fold, the trial's mean on the leaderboard.
        assert_eq!(r.trials.len(), 2, "{:?}", r.trials);
        for e in &r.leaderboard {
            let t = r.trials.iter().find(|t| t.model == e.name).unwrap();
            assert_eq!((t.number, t.fold_scores.len(), t.score), (0, 5, Some(e.cv["roc_auc"])), "{t:?}");
            assert_eq!(t.params, e.params);
        }
    }
    assert_eq!(right.leaderboard[0].cv, wrong.leaderboard[0].cv, "test labels never reach the choice");
    // The defect's reproducer: by the inverted test labels the weak forest would look best.
    assert!(wrong.leaderboard[1].test["roc_auc"] > wrong.leaderboard[0].test["roc_auc"], "{:?}", wrong.leaderboard);

    // Without a label column, the label-free rule: the first detector listed, whatever its scores.
    let unlabelled = held_out("test.csv", &models).replace("target = \"label\"", "drop = [\"label\"]");
    let r = run(&pipeline(dir.path(), &unlabelled).unwrap(), &Silent).unwrap();
    assert_eq!(r.final_model, "weak-forest");
    assert!(r.leaderboard.iter().all(|e| e.cv.is_empty()));
    assert_eq!(r.anomaly.as_ref().unwrap().selection.as_ref().unwrap().rule, "first listed");
}

#[test]
fn anomaly_detector_seed_independent_of_position() {
    let dir = tempfile::tempdir().unwrap();
    write_moderate(dir.path(), "train.csv", 600, 0, false);
    write_moderate(dir.path(), "test.csv", 300, 600, false);
    let forest = "[[models]]\nkind = \"anomaly.isolation_forest\"\nparams = { n_trees = 20, max_samples = 64 }\n";
    let first = run(&pipeline(dir.path(), &held_out("test.csv", &format!("{forest}\n{ECOD}"))).unwrap(), &Silent);
    let second = run(&pipeline(dir.path(), &held_out("test.csv", &format!("{ECOD}\n{forest}"))).unwrap(), &Silent);
    let (first, second) = (first.unwrap(), second.unwrap());
    let entry = |r: &Report| r.leaderboard.iter().find(|e| e.name == "anomaly.isolation_forest").cloned().unwrap();
    let detector = |r: &Report, at: usize| {
        let mut d = r.anomaly.as_ref().unwrap().detectors[at].clone();
        d.score_s = 0.0;
        d
    };
    // Same scores (quantiles and threshold), same test and cross-validated figures, wherever it is listed.
    assert_eq!(detector(&first, 0), detector(&second, 1));
    assert_eq!(entry(&first).test, entry(&second).test);
    assert_eq!(entry(&first).cv, entry(&second).cv);
}

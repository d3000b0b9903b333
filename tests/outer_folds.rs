//! `[evaluation] outer_folds = K` (issue 18, item 3): the whole pipeline on K folds of one
//! table, each fold's test metrics with their mean, standard deviation and paired comparisons,
//! and `promoml compare` paired by fold.

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// 600 rows: two numeric features, a category and a noisy 0/1 target.
fn data(dir: &Path) {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut t = String::from("a,b,c,y\n");
    for _ in 0..600 {
        let (a, b, u) = (next(), next(), next());
        let c = ["red", "green", "blue"][(next() * 3.0) as usize % 3];
        let z = 2.0 * a - b + if c == "red" { 0.5 } else { 0.0 } - 0.6 + 0.8 * (u - 0.5);
        t.push_str(&format!("{a:.4},{b:.4},{c},{}\n", u8::from(z > 0.0)));
    }
    std::fs::write(dir.join("d.csv"), t).unwrap();
}

/// A pipeline with two cheap candidates on `d.csv` (no split: the folds make theirs), written
/// to `p.toml`.
fn pipeline(dir: &Path, extra: &str) -> PathBuf {
    pipeline_at(dir, "p.toml", extra)
}

fn pipeline_at(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(
        &p,
        format!(
            "[pipeline]\nname = \"of\"\ntask = \"binary\"\nseed = 7\n[data]\npath = \"d.csv\"\ntarget = \"y\"\n\
             positive = 1\n{extra}\n[[features]]\nkind = \"one_hot\"\n\
             [[models]]\nkind = \"smartcore.logistic_regression\"\nname = \"lr\"\n\
             [[models]]\nkind = \"smartcore.knn\"\nname = \"knn\"\n\
             [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n"
        ),
    )
    .unwrap();
    p
}

fn read(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
}

fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    (m, (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0)).sqrt())
}

#[test]
fn three_outer_folds_equal_three_modulo_runs_and_compare_pairs_them() {
    let dir = tempfile::tempdir().unwrap();
    data(dir.path());
    let p = pipeline(dir.path(), "[evaluation]\nouter_folds = 3\n");
    let out = dir.path().join("of");
    let r = run_pipeline(&p, &out, &[]);
    let f = &r["folds"];
    assert_eq!(f["k"], 3, "{f}");
    assert_eq!(f["metric"], "roc_auc");
    let metrics: Vec<&str> = f["metrics"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
    assert!(metrics.contains(&"roc_auc") && metrics.contains(&"accuracy"), "{metrics:?}");
    let rows: Vec<u64> = f["test_rows"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(rows, [200, 200, 200]);
    let names: Vec<&str> = f["candidates"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert_eq!(names[0], "final model");
    assert!(names.contains(&"lr") && names.contains(&"knn"), "{names:?}");
    let cand = |name: &str| f["candidates"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap().clone();

    // Each fold equals a separate run of the pipeline with the modulo split of that fold, bit
    // for bit (the runs are seeded), and its outputs are in OUT/fold-r.
    let single = pipeline_at(dir.path(), "single.toml", "");
    for r_ in 0..3 {
        let fold_report = read(&out.join(format!("fold-{r_}/report.json")));
        assert!(fold_report.get("folds").is_none());
        assert!(out.join(format!("fold-{r_}/model.promoml")).is_file());
        let sep = run_pipeline(
            &single,
            &dir.path().join(format!("sep{r_}")),
            &["data.split.kind=modulo", "data.split.modulo=3", &format!("data.split.remainder={r_}")],
        );
        assert_eq!(sep["test"], fold_report["test"], "fold {r_}");
        for m in &metrics {
            let v = sep["test"][m].as_f64().unwrap();
            assert_eq!(floats(&cand("final model")["values"][m])[r_], v, "fold {r_} {m}");
            for e in sep["leaderboard"].as_array().unwrap() {
                let name = e["name"].as_str().unwrap();
                assert_eq!(floats(&cand(name)["values"][m])[r_], e["test"][m].as_f64().unwrap(), "{name} {m}");
            }
        }
        assert_eq!(f["final_models"][r_], sep["final_model"]);
        if r_ == 2 {
            // The top-level report is the last fold's, with the folds section added.
            assert_eq!(r["test"], sep["test"]);
            let tests = |v: &Value| -> Vec<(Value, Value)> {
                v["leaderboard"].as_array().unwrap().iter().map(|e| (e["name"].clone(), e["test"].clone())).collect()
            };
            assert_eq!(tests(&r), tests(&sep));
        }
    }
    assert!(out.join("model.promoml").is_file());

    // Mean and sample standard deviation of every candidate and metric.
    for c in f["candidates"].as_array().unwrap() {
        for m in &metrics {
            let v = floats(&c["values"][m]);
            let (mean, sd) = mean_sd(&v);
            assert!((c["mean"][m].as_f64().unwrap() - mean).abs() < 1e-12, "{c}");
            assert!((c["sd"][m].as_f64().unwrap() - sd).abs() < 1e-12, "{c}");
        }
    }
    // Paired comparisons of roc_auc: final model − each candidate, with a 95 % t-interval.
    let paired = f["paired"].as_array().unwrap();
    assert_eq!(paired.len(), 2);
    for p_ in paired {
        let other = p_["second"].as_str().unwrap();
        let (a, b) = (floats(&cand("final model")["values"]["roc_auc"]), floats(&cand(other)["values"]["roc_auc"]));
        let d: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        assert_eq!(floats(&p_["differences"]), d);
        let (mean, sd) = mean_sd(&d);
        let half = 4.302_652_730 * sd / 3f64.sqrt();
        let (lo, hi) = (p_["low"].as_f64().unwrap(), p_["high"].as_f64().unwrap());
        assert!((p_["mean"].as_f64().unwrap() - mean).abs() < 1e-12, "{p_}");
        assert!((lo - (mean - half)).abs() < 1e-12 && (hi - (mean + half)).abs() < 1e-12, "{p_}");
        assert!(lo <= mean && mean <= hi, "{p_}");
    }
    // The Markdown and HTML reports show the tables.
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Outer folds (test)") && md.contains("| final model | roc_auc (headline) |"), "{md}");
    assert!(md.contains("### Paired differences of test `roc_auc` by fold"), "{md}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<h2>Outer folds (test)</h2>"));

    // compare: a report with itself passes, paired by fold.
    let cur = out.join("report.json");
    let o = promoml(&["compare", cur.to_str().unwrap(), cur.to_str().unwrap()]);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{md}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(md.contains("### Outer folds: paired by fold") && md.contains("| 0 |"), "{md}");
    // A doctored baseline, better by 0.05 on folds 0 and 1 only (its last fold, the top-level
    // headline, unchanged): the mean paired drop of 0.0333 fails the gate.
    let mut base = read(&cur);
    let fin = base["folds"]["candidates"].as_array_mut().unwrap().iter_mut().find(|c| c["name"] == "final model");
    let values = &mut fin.unwrap()["values"]["roc_auc"];
    for i in 0..2 {
        values[i] = Value::from(values[i].as_f64().unwrap() + 0.05);
    }
    let doctored = dir.path().join("baseline.json");
    std::fs::write(&doctored, serde_json::to_string_pretty(&base).unwrap()).unwrap();
    let o = promoml(&["compare", doctored.to_str().unwrap(), cur.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("over 3 outer folds") && err.contains("-0.0333"), "{err}");
    // Within a looser tolerance it passes.
    let o = promoml(&["compare", doctored.to_str().unwrap(), cur.to_str().unwrap(), "--max-drop", "0.04"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Against a report without folds: today's comparison of the last fold.
    let sep = dir.path().join("sep2/report.json");
    let o = promoml(&["compare", sep.to_str().unwrap(), cur.to_str().unwrap()]);
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success() && md.contains("Only the current report has outer folds"), "{md}");
    // --resume continues each fold's own study: every trial is replayed, the folds are the same.
    let o = promoml(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--resume"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let resumed = read(&out.join("report.json"));
    assert_eq!(resumed["folds"]["candidates"], r["folds"]["candidates"]);
    assert_eq!(resumed["folds"]["paired"], r["folds"]["paired"]);
    // A later run into the same folder with fewer folds leaves none of the earlier run's.
    let r2 = run_pipeline(&p, &out, &["evaluation.outer_folds=2"]);
    assert_eq!(r2["folds"]["k"], 2);
    assert!(out.join("fold-1").is_dir() && !out.join("fold-2").exists());
    run_pipeline(&single, &out, &[]);
    assert!(!out.join("fold-0").exists());
}

#[test]
fn outer_folds_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    data(dir.path());
    let check = |extra: &str, set: &[&str], expect: &[&str]| {
        let p = pipeline(dir.path(), extra);
        let mut args = vec!["validate", p.to_str().unwrap()];
        for s in set {
            match s.strip_prefix('!') {
                Some(k) => args.extend(["--unset", k]),
                None => args.extend(["--set", s]),
            }
        }
        let o = promoml(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{extra} {set:?}: {err}");
        for e in expect {
            assert!(err.contains(e), "{extra} {set:?}: expected {e:?} in {err}");
        }
    };
    check(
        "[evaluation]\nouter_folds = 1\n",
        &[],
        &["p.toml:10:1", "evaluation.outer_folds", "1 is out of range: allowed 2 to 20"],
    );
    check("", &["evaluation.outer_folds=21"], &["--set evaluation.outer_folds=21", "allowed 2 to 20"]);
    std::fs::copy(dir.path().join("d.csv"), dir.path().join("t.csv")).unwrap();
    check(
        "[evaluation]\nouter_folds = 3\n",
        &["!data.path", "data.train=d.csv", "data.test=t.csv"],
        &["evaluation.outer_folds", "not separate `train` and `test` files"],
    );
    check(
        "[evaluation]\nouter_folds = 3\n",
        &["pipeline.task=anomaly", "data.split.kind=none"],
        &["evaluation.outer_folds", "fits and scores every row"],
    );
    check("[evaluation]\nouter_fold = 3\n", &[], &["unknown field `outer_fold`", "did you mean `outer_folds`?"]);
    // Valid: outer folds replace a given split.
    let p =
        pipeline(dir.path(), "split = { kind = \"stratified\", test_fraction = 0.3 }\n[evaluation]\nouter_folds = 4\n");
    let o = promoml(&["validate", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("4 outer folds"));
}

/// Uplift (Hillstrom): the folds carry the uplift metrics, and with K = 5 the last fold is the
/// pipeline's own benchmark split (`i % 5 == 4`), so `OUT/report.json` equals a plain run's.
#[test]
fn uplift_folds_report_qini_and_the_last_fold_is_the_bench_split() {
    let _ = shared_data();
    let dir = tempfile::tempdir().unwrap();
    let cheap = [
        "search.trials=1",
        "search.cv_folds=2",
        "uplift.bootstrap=0",
        "models[0].params.n_estimators=20",
        "report.importance_repeats=0",
        // Two meta-learners (the pipeline has one since issue 18), so that folds pair them.
        "uplift.learners=[\"s\", \"t\"]",
    ];
    let p = root().join("pipelines/hillstrom-uplift.toml");
    let mut set = cheap.to_vec();
    set.push("evaluation.outer_folds=5");
    let r = run_pipeline(&p, &dir.path().join("folds"), &set);
    let plain = run_pipeline(&p, &dir.path().join("plain"), &cheap);
    let f = &r["folds"];
    assert_eq!((f["k"].as_u64(), f["metric"].as_str()), (Some(5), Some("qini_auc")), "{f}");
    let fin = &f["candidates"][0];
    assert_eq!(fin["name"], "final model");
    for m in ["qini_auc", "uplift_at_30"] {
        let v = floats(&fin["values"][m]);
        assert_eq!(v.len(), 5, "{m}");
        assert_eq!(v[4], plain["test"][m].as_f64().unwrap(), "{m}: fold 4 is the bench split");
        assert!((fin["mean"][m].as_f64().unwrap() - mean_sd(&v).0).abs() < 1e-12);
    }
    assert_eq!(r["test"], plain["test"]);
    assert_eq!(r["uplift"]["metrics"][0]["qini_auc"], plain["uplift"]["metrics"][0]["qini_auc"]);
    // The paired comparisons cover the meta-learners of the leaderboard.
    let seconds: Vec<&str> = f["paired"].as_array().unwrap().iter().map(|p| p["second"].as_str().unwrap()).collect();
    assert!(seconds.contains(&"s-learner/gbm") && seconds.contains(&"t-learner/gbm"), "{seconds:?}");
}

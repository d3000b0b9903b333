//! End-to-end tests of the `promoml` binary and the pipelines in `pipelines/`.

mod common;
use common::*;

/// Drop the fields that measure time, which differ between two runs.
fn without_timings(mut v: serde_json::Value) -> serde_json::Value {
    v["timing"] = serde_json::Value::Null;
    for e in v["leaderboard"].as_array_mut().unwrap() {
        e["fit_s"] = serde_json::Value::Null;
    }
    for t in v["trials"].as_array_mut().unwrap() {
        t["seconds"] = serde_json::Value::Null;
    }
    v
}

#[test]
fn demo_runs_on_built_in_data_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_pipeline(&root().join("pipelines/demo.toml"), dir.path(), &[]);
    assert_eq!(r["schema_version"], promoml_report::SCHEMA_VERSION);
    assert_eq!(r["task"], "binary");
    let board = r["leaderboard"].as_array().unwrap();
    assert_eq!(board.len(), 3, "{board:?}");
    for e in board {
        for key in ["name", "params", "cv", "test", "fit_s"] {
            assert!(e.get(key).is_some(), "leaderboard entry lacks {key}: {e}");
        }
    }
    // Three trials per candidate, each with five fold scores.
    assert_eq!(r["trials"].as_array().unwrap().len(), 9);
    assert!(r["trials"].as_array().unwrap().iter().all(|t| t["fold_scores"].as_array().unwrap().len() == 5));
    let auc = r["test"]["roc_auc"].as_f64().unwrap();
    assert!(auc > 0.7, "demo test roc_auc {auc}");
    assert_eq!(r["test"], board[0]["test"]);
    assert!(dir.path().join("report.md").is_file());
}

#[test]
fn same_seed_gives_the_same_report() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let p = root().join("pipelines/demo.toml");
    let set = ["data.rows=1500", "search.trials=2"];
    let ra = without_timings(run_pipeline(&p, a.path(), &set));
    let rb = without_timings(run_pipeline(&p, b.path(), &set));
    assert_eq!(ra, rb);
    let rc = without_timings(run_pipeline(&p, a.path(), &["data.rows=1500", "search.trials=2", "pipeline.seed=7"]));
    assert_ne!(ra["trials"], rc["trials"], "another seed should give other trials");
}

#[test]
fn set_overrides_any_value() {
    let dir = tempfile::tempdir().unwrap();
    let r = run_pipeline(
        &root().join("pipelines/demo.toml"),
        dir.path(),
        &["data.rows=800", "search.trials=1", "search.cv_folds=3", "models[1].params.n_trees=20"],
    );
    assert_eq!(r["trials"].as_array().unwrap().len(), 3);
    assert_eq!(r["trials"][0]["fold_scores"].as_array().unwrap().len(), 3);
    let rf = r["leaderboard"].as_array().unwrap().iter().find(|e| e["kind"] == "forest.random_forest").unwrap();
    assert_eq!(rf["params"]["n_trees"], 20);
    assert_eq!(r["data"]["train_rows"].as_u64().unwrap() + r["data"]["test_rows"].as_u64().unwrap(), 800);
}

#[test]
fn every_pipeline_validates() {
    let mut n = 0;
    for entry in std::fs::read_dir(root().join("pipelines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml" || e == "ron") {
            let o = promoml(&["validate", path.to_str().unwrap()]);
            assert!(o.status.success(), "{}: {}", path.display(), String::from_utf8_lossy(&o.stderr));
            n += 1;
        }
    }
    assert!(n >= 2);
}

/// Issue 20: the RON twin of the demo is the same pipeline, so it writes the same report.
#[test]
fn ron_demo_gives_the_same_report_as_the_toml_demo() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let toml = without_timings(run_pipeline(&root().join("pipelines/demo.toml"), a.path(), &[]));
    let ron = without_timings(run_pipeline(&root().join("pipelines/demo.ron"), b.path(), &[]));
    assert_eq!(toml["trials"].as_array().unwrap().len(), 9);
    assert_eq!(toml, ron);
}

/// Issue 20: `validate --emit` converts between TOML and RON; the verdict goes to stderr.
#[test]
fn validate_emit_converts_between_toml_and_ron() {
    let dir = tempfile::tempdir().unwrap();
    let o = promoml(&["validate", root().join("pipelines/demo.toml").to_str().unwrap(), "--emit", "ron"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("valid (binary task"));
    let ron_path = dir.path().join("demo.ron");
    std::fs::write(&ron_path, &o.stdout).unwrap();
    let o = promoml(&["validate", ron_path.to_str().unwrap(), "--emit", "toml", "--set", "search.trials=4"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let back: toml::Table = toml::from_str(&String::from_utf8(o.stdout).unwrap()).unwrap();
    let mut want: toml::Table =
        toml::from_str(&std::fs::read_to_string(root().join("pipelines/demo.toml")).unwrap()).unwrap();
    want["search"]["trials"] = toml::Value::Integer(4);
    assert_eq!(back, want);
}

/// Issue 20: a typo in a RON pipeline is refused (exit 2) at its line and column, with a
/// suggestion.
#[test]
fn a_ron_typo_is_located_with_did_you_mean() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.ron");
    let text = std::fs::read_to_string(root().join("pipelines/demo.ron")).unwrap();
    std::fs::write(&path, text.replace("cv_folds: 5", "cv_fold: 5").replace("\"standardize\"", "\"standardise\""))
        .unwrap();
    let o = promoml(&["validate", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    let line = text.lines().position(|l| l.contains("cv_folds: 5")).unwrap() + 1;
    assert!(e.contains(&format!("typo.ron:{line}:9: unknown field `cv_fold`")), "{e}");
    assert!(e.contains("did you mean `cv_folds`?"), "{e}");
    // Fixed, the next error is the feature step's kind, also located in the .ron file.
    std::fs::write(&path, text.replace("\"standardize\"", "\"standardise\"")).unwrap();
    let o = promoml(&["run", path.to_str().unwrap(), "--out", dir.path().join("out").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    let line = text.lines().position(|l| l.contains("\"standardize\"")).unwrap() + 1;
    assert!(e.contains(&format!("typo.ron:{line}:")) && e.contains("`features[3].kind`"), "{e}");
    assert!(e.contains("did you mean `standardize`?"), "{e}");
}

#[test]
fn plugins_lists_every_kind_with_ranges() {
    let o = promoml(&["plugins"]);
    assert!(o.status.success());
    let text = String::from_utf8(o.stdout).unwrap();
    for kind in [
        "smartcore.logistic_regression",
        "smartcore.svm_rbf",
        "smartcore.knn",
        "forest.random_forest",
        "linfa.decision_tree",
        "impute",
        "one_hot",
        "random",
        "tpe.crate",
    ] {
        assert!(text.contains(kind), "plugins output lacks {kind}");
    }
    assert!(text.contains("int in [1, "), "parameter ranges missing:\n{text}");
    let o = promoml(&["plugins", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["models"].as_array().unwrap().len() >= 8);
}

#[test]
fn online_shoppers_reaches_the_bar_on_the_benchmark_split() {
    let _ = shared_data();
    let dir = tempfile::tempdir().unwrap();
    // A quicker configuration than the full pipeline: each model's defaults only, 3 folds.
    let r = run_pipeline(
        &root().join("pipelines/online-shoppers.toml"),
        dir.path(),
        &["search.cv_folds=3", "search.trials=1", "models[3].trials=1"],
    );
    assert_eq!(r["data"]["train_rows"], 9864);
    assert_eq!(r["data"]["test_rows"], 2466);
    let rf = r["leaderboard"].as_array().unwrap().iter().find(|e| e["name"] == "random_forest").unwrap();
    let auc = rf["test"]["roc_auc"].as_f64().unwrap();
    assert!(auc >= 0.93, "random forest test roc_auc {auc} on online-shoppers");
}

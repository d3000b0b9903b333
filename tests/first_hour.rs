//! What a new user hits in the first hour (issue 14): natural TOML (`positive = 1`) and text
//! columns that are identifiers kept out of the features. Each test is named after the defect.

mod common;
use common::*;

/// 1,500 rows: a unique phone number per row, two numeric features and a 0/1 target.
fn phone_data(dir: &std::path::Path) {
    let mut t = String::from("phone,a,b,y\n");
    for i in 0..1500u64 {
        let (a, b) = ((i * 7919 % 1000) as f64 / 1000.0, (i * 104_729 % 997) as f64 / 997.0);
        let y = u8::from(a + 0.4 * b > 0.7);
        t.push_str(&format!("{}-{}-{},{a:.4},{b:.4},{y}\n", 200 + i % 800, 100 + i % 900, 1000 + i));
    }
    std::fs::write(dir.join("d.csv"), t).unwrap();
}

fn pipeline(dir: &std::path::Path, extra_data: &str) -> std::path::PathBuf {
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        format!(
            "[pipeline]\nname = \"fh\"\ntask = \"binary\"\n[data]\npath = \"d.csv\"\n\
             split = {{ kind = \"modulo\", modulo = 5, remainder = 4 }}\ntarget = \"y\"\npositive = 1\n{extra_data}\n\
             [[features]]\nkind = \"one_hot\"\n[[models]]\nkind = \"smartcore.logistic_regression\"\n\
             [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n"
        ),
    )
    .unwrap();
    p
}

#[test]
fn integer_positive_label_and_unique_phone_column_is_not_one_hot_encoded() {
    let dir = tempfile::tempdir().unwrap();
    phone_data(dir.path());
    let p = pipeline(dir.path(), "");
    let out = dir.path().join("o");
    let o = promoml(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "positive = 1 on a 0/1 target: {stderr}");
    assert!(stderr.contains("column `phone` looks like an identifier"), "{stderr}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(r["data"]["features"], 2, "{}", r["data"]);
    assert_eq!(r["data"]["identifier_columns"], serde_json::json!(["phone"]));
    assert_eq!(r["data"]["classes"]["1"].as_u64().unwrap() + r["data"]["classes"]["0"].as_u64().unwrap(), 1200);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("identifiers"));
    // Declared, the column is the user's choice: one-hot encoded like any category.
    let p = pipeline(dir.path(), "types = { phone = \"categorical\" }");
    let r = run_pipeline(&p, &dir.path().join("o2"), &[]);
    assert!(r["data"]["features"].as_u64().unwrap() > 2, "{}", r["data"]);
    assert!(r["data"].get("identifier_columns").is_none());
}

#[test]
fn positive_label_may_be_a_number_or_a_boolean_but_not_a_table() {
    let dir = tempfile::tempdir().unwrap();
    phone_data(dir.path());
    let p = pipeline(dir.path(), "");
    let text = std::fs::read_to_string(&p).unwrap();
    std::fs::write(&p, text.replace("positive = 1\n", "positive = 2\n")).unwrap();
    let o = promoml(&["run", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap(), "--quiet"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(e.contains("\"2\" is not a class of `y` (classes: 0, 1)"), "{e}");
    std::fs::write(&p, text.replace("positive = 1\n", "positive = { a = 1 }\n")).unwrap();
    let o = promoml(&["validate", p.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("p.toml:8:") && e.contains("expected a class label"), "{e}");
}

#[test]
fn burn_training_logs_a_line_per_epoch_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.txt");
    write_event_log(&log);
    let p = dir.path().join("p.toml");
    std::fs::write(
        &p,
        format!(
            "[pipeline]\nname = \"epochs\"\ntask = \"binary\"\n[data]\npath = \"{}\"\ndelimiter = \"whitespace\"\n\
             timestamp_format = \"%Y%m%d\"\ntypes = {{ customer_id = \"numeric\", date = \"timestamp\" }}\n\
             target = \"buys_again\"\npositive = \"TRUE\"\n\
             split = {{ kind = \"modulo\", modulo = 5, remainder = 4, column = \"customer_id\" }}\n\
             [data.events]\nentity = \"customer_id\"\ntime = \"date\"\nvalues = [\"n\", \"value\"]\n\
             start = \"1997-01-01\"\ncutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"\nbin = \"month\"\n\
             [[models]]\nkind = \"burn.lstm\"\nname = \"lstm\"\n\
             params = {{ hidden_size = 8, epochs = 3, batch_size = 64, valid_fraction = 0.0, use_tabular = false }}\n\
             [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 1\n",
            log.display()
        ),
    )
    .unwrap();
    // Not --quiet, and stderr is a pipe (not a terminal): progress goes to the log.
    let o = promoml(&["run", p.to_str().unwrap(), "--out", dir.path().join("o").to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    for fold in ["lstm trial 0 fold 1/2", "lstm trial 0 fold 2/2", "lstm refit on all training rows"] {
        for epoch in 1..=3 {
            let want = format!("burn.lstm ({fold}): epoch {epoch}/3: train loss ");
            assert!(e.contains(&want), "no line `{want}` in:\n{e}");
        }
    }
    assert!(e.contains("no validation rows"), "{e}");
    // With `use_tabular = false` the model reads only the sequences: permutation importance
    // shuffles nothing else (no empty bars for the customer summaries), and says "1 shuffle".
    let out = dir.path().join("o");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let shuffled: Vec<&str> = r["feature_importance"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["feature"].as_str().unwrap())
        .collect();
    assert_eq!(shuffled, ["(sequence)"]);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("(1 shuffle)"), "{md}");
}

#[test]
fn feature_that_alone_separates_the_target_is_flagged_as_a_possible_leak() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = String::from("a,visit,y\n");
    for i in 0..800u64 {
        let a = (i * 7919 % 1000) as f64 / 1000.0;
        let y = u8::from((i * 104_729 % 997) as f64 / 997.0 + 0.3 * a > 0.8);
        // `visit` is recorded after the outcome: it equals the target but for 1 % of the rows.
        let visit = if i % 100 == 7 { 1 - y } else { y };
        t.push_str(&format!("{a:.4},{visit},{y}\n"));
    }
    std::fs::write(dir.path().join("d.csv"), t).unwrap();
    let p = pipeline(dir.path(), "");
    let out = dir.path().join("o");
    let o = promoml(&["run", p.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("possible leak: feature `visit` alone separates the target `y`"), "{e}");
    assert!(!e.contains("feature `a`"), "{e}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let leaks = r["data"]["suspected_leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{leaks:?}");
    assert_eq!(leaks[0]["feature"], "visit");
    assert!(leaks[0]["auc"].as_f64().unwrap() >= 0.95);
    assert!(std::fs::read_to_string(out.join("report.md")).unwrap().contains("**Possible leak:** feature `visit`"));
    assert!(std::fs::read_to_string(out.join("report.html")).unwrap().contains("possible leak"));
}

#[test]
fn unset_removes_a_key_so_a_stock_pipeline_can_be_repointed() {
    let dir = tempfile::tempdir().unwrap();
    phone_data(dir.path());
    // A train/test pipeline re-pointed at one file with a split: --unset, then --set.
    let p = dir.path().join("tt.toml");
    std::fs::write(
        &p,
        "[pipeline]\nname = \"tt\"\ntask = \"binary\"\n[data]\ntrain = \"missing-train.csv\"\ntest = \"missing-test.csv\"\n\
         target = \"y\"\npositive = 1\n[[models]]\nkind = \"smartcore.logistic_regression\"\n\
         [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n",
    )
    .unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["validate", p.to_str().unwrap(), "--unset", "data.train", "--unset", "data.test"];
        a.extend_from_slice(extra);
        a.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |a: Vec<String>| promoml(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let o = run(args(&[
        "--set",
        "data.path=\"d.csv\"",
        "--set",
        "data.split={ kind = \"modulo\", modulo = 5, remainder = 4 }",
    ]));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // A key that is not there: named, with a suggestion.
    let o = promoml(&["validate", p.to_str().unwrap(), "--unset", "data.trian"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("--unset data.trian: the pipeline has no key `trian` to remove")
            && e.contains("did you mean `train`?"),
        "{e}"
    );
    // validate reads the data header: a target that is not a column is refused at its key.
    let o = run(args(&["--set", "data.path=\"d.csv\"", "--set", "data.target=\"yy\""]));
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains("--set data.target=\"yy\": `data.target`: no column `yy` in") && e.contains("did you mean `y`?"),
        "{e}"
    );
}

#[test]
fn imbalanced_target_gets_a_decision_threshold_from_out_of_fold_predictions() {
    let dir = tempfile::tempdir().unwrap();
    // About 2 % positives, driven by `a`.
    let mut t = String::from("a,b,y\n");
    for i in 0..3000u64 {
        let a = (i * 7919 % 1000) as f64 / 1000.0;
        let b = (i * 104_729 % 997) as f64 / 997.0;
        let y = u8::from(a + 0.02 * b > 0.985);
        t.push_str(&format!("{a:.4},{b:.4},{y}\n"));
    }
    std::fs::write(dir.path().join("d.csv"), t).unwrap();
    let p = pipeline(dir.path(), "");
    let r = run_pipeline(&p, &dir.path().join("o"), &[]);
    let dt = &r["decision_threshold"];
    assert_eq!(dt["rule"], "max_f1", "{r}");
    let rate = dt["positive_rate"].as_f64().unwrap();
    assert!(rate > 0.0 && rate < 0.05, "{dt}");
    let t = dt["value"].as_f64().unwrap();
    assert!(t > 0.0 && t < 0.5, "a rare positive class needs a low threshold: {dt}");
    let lb = &r["leaderboard"][0];
    assert_eq!(lb["threshold"].as_f64(), Some(t));
    // At 0.5 the model predicts almost no positive; at the chosen threshold it finds them.
    assert!(r["test"]["f1"].as_f64().unwrap() > 0.5, "{}", r["test"]);
    let md = std::fs::read_to_string(dir.path().join("o/report.md")).unwrap();
    assert!(md.contains("Decision threshold") && md.contains("% of the training rows are positive"), "{md}");
    // A fixed threshold is honoured; it is refused outside (0, 1) and for other tasks.
    let r = run_pipeline(&p, &dir.path().join("o2"), &["search.threshold=0.5"]);
    assert_eq!(r["decision_threshold"]["value"], 0.5);
    assert_eq!(r["decision_threshold"]["rule"], "fixed");
    let o = promoml(&["validate", p.to_str().unwrap(), "--set", "search.threshold=1.5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`search.threshold`"));
}

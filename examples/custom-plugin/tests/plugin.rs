//! The example plugin registers, is listed by `plugins`, and runs from a TOML pipeline.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_promoml-example");

#[test]
fn listed_by_plugins() {
    let out = Command::new(BIN).arg("plugins").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("example.gaussian_nb"), "{text}");
    assert!(text.contains("var_smoothing"), "{text}");
}

#[test]
fn runs_from_a_pipeline_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("nb.toml");
    std::fs::write(
        &toml,
        r#"
[pipeline]
name = "example-plugin"
task = "binary"
seed = 3

[data]
source = "synthetic.promotion"
rows = 3000
target = "purchase"
id = "customer_id"
drop = ["true_effect", "spend"]

[[clean]]
kind = "impute"

[[features]]
kind = "log1p"

[[models]]
kind = "example.gaussian_nb"

[search]
cv_folds = 3
"#,
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    let out = Command::new(BIN)
        .args(["run", toml.to_str().unwrap(), "--out", out_dir.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["leaderboard"][0]["kind"], "example.gaussian_nb");
    let auc = report["test"]["roc_auc"].as_f64().unwrap();
    // Naive Bayes on the synthetic shoppers: clearly better than chance on unseen rows.
    assert!(auc > 0.65, "test roc_auc {auc}");
}

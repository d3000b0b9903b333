//! `promoml predict` papercuts: a target column with unseen values, an `--output` that is the
//! model or the input, and a device that no model uses.

mod common;
use common::*;
use std::path::Path;

fn write_rows(path: &Path, labels: &[&str]) {
    let mut text = String::from("a,b,y\n");
    for i in 0..200 {
        text.push_str(&format!("{},{},{}\n", i as f64 / 100.0, (i * 7) % 13, labels[i % labels.len()]));
    }
    std::fs::write(path, text).unwrap();
}

/// A one-model binary pipeline on `data`, run into `out`; returns the artifact path.
fn trained(dir: &Path, extra: &str) -> std::path::PathBuf {
    let data = dir.join("train.csv");
    write_rows(&data, &["0", "1"]);
    let pipeline = dir.join("p.toml");
    std::fs::write(
        &pipeline,
        format!(
            "[pipeline]\nname = \"papercuts\"\ntask = \"binary\"\n{extra}[data]\npath = \"{}\"\ntarget = \"y\"\n\
             split = {{ kind = \"modulo\", modulo = 5, remainder = 4 }}\n[[models]]\nkind = \"smartcore.logistic_regression\"\n\
             [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n",
            data.display()
        ),
    )
    .unwrap();
    let out = dir.join("run");
    run_pipeline(&pipeline, &out, &[]);
    out.join("model.promoml")
}

#[test]
fn predict_ignores_a_target_column_with_unseen_values() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained(dir.path(), "");
    let input = dir.path().join("new.csv");
    write_rows(&input, &["maybe", "", "7.5"]);
    let scores = dir.path().join("scores.csv");
    let o = predict(&model, &input, &scores, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&scores).unwrap();
    assert!(text.starts_with("score\n") && text.lines().count() == 201, "{}", &text[..text.len().min(200)]);
}

#[test]
fn predict_refuses_an_output_that_is_its_model_or_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = trained(dir.path(), "");
    let input = dir.path().join("train.csv");
    let (model_before, input_before) = (std::fs::read(&model).unwrap(), std::fs::read(&input).unwrap());
    // The same files, also spelt another way and through a hard link.
    let other_spelling = dir.path().join("run/../run/model.promoml");
    let link = dir.path().join("link.csv");
    std::fs::hard_link(&input, &link).unwrap();
    for (output, role) in [(&model, "model"), (&other_spelling, "model"), (&input, "input"), (&link, "input")] {
        let o = predict(&model, &input, output, &[]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{}: {e}", output.display());
        assert!(e.contains(&format!("is the {role} file")), "{e}");
    }
    assert_eq!(std::fs::read(&model).unwrap(), model_before, "the model is untouched");
    assert_eq!(std::fs::read(&input).unwrap(), input_before, "the input is untouched");
}

#[test]
fn run_warns_when_a_device_is_set_but_no_model_uses_one() {
    let dir = tempfile::tempdir().unwrap();
    trained(dir.path(), "");
    let pipeline = dir.path().join("p.toml");
    let out = dir.path().join("run2");
    let o = promoml(&["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--device", "cuda:0"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{e}");
    assert!(e.contains("device \"cuda:0\" is set") && e.contains("no candidate model uses a device"), "{e}");
    // Without a device there is nothing to warn about.
    let o = promoml(&["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!String::from_utf8_lossy(&o.stderr).contains("no candidate model uses a device"));
}

//! Runs that must never report a stale or mixed result (issue 13): resuming with settings that
//! change the scores, two runs into one `--out`, a later run that writes no model, a failed run,
//! an interrupted run, and values read as missing on request. Each test is named after the defect
//! it reproduces.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// The demo pipeline, small and quick.
fn demo() -> std::path::PathBuf {
    root().join("pipelines/demo.toml")
}

const QUICK: [&str; 4] = ["--set", "search.trials=2", "--set", "report.importance_repeats=0"];

fn run(out: &Path, extra: &[&str]) -> std::process::Output {
    let demo = demo();
    let mut args = vec!["run", demo.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(&QUICK);
    args.extend_from_slice(extra);
    promoml(&args)
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn resume_with_other_cv_folds_or_metric_reuses_no_stale_score() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let first = run(&out, &["--set", "search.cv_folds=3"]);
    assert!(first.status.success(), "{}", stderr(&first));
    for (set, changed) in [
        ("search.cv_folds=2", "search.cv_folds: 3 -> 2"),
        ("search.metric=\"log_loss\"", "search.metric"),
        ("data.rows=3000", "the data's content"),
    ] {
        let o = run(&out, &["--set", "search.cv_folds=3", "--set", set, "--resume"]);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{set}: {e}");
        assert!(
            e.contains("--resume: the logged trials were scored with other settings") && e.contains(changed),
            "{set}: {e}"
        );
        assert!(!e.contains("panicked"), "{e}");
    }
    // More trials change no logged score: the resume replays them.
    let o = run(&out, &["--set", "search.cv_folds=3", "--set", "search.trials=3", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["trials"].as_array().unwrap().iter().all(|t| t["fold_scores"].as_array().unwrap().len() == 3));
}

#[test]
fn second_run_into_an_out_in_use_is_refused_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let mut first = Command::new(BIN)
        .args(["run", demo().to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(["--set", "search.trials=40", "--set", "report.importance_repeats=0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the folder (its staging folder appears once it does).
    let t0 = std::time::Instant::now();
    while !out.join(".promoml-run").exists() {
        assert!(t0.elapsed().as_secs() < 60, "the first run never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = run(&out, &[]);
    let e = stderr(&second);
    assert_eq!(second.status.code(), Some(1), "{e}");
    assert!(e.contains("is in use by promoml run (pid ") && e.contains("demo.toml"), "{e}");
    // The refused run changed nothing; the first finishes and publishes its own report.
    first.kill().unwrap();
    first.wait().unwrap();
    let again = run(&out, &[]);
    assert!(again.status.success(), "the lock outlives its process: {}", stderr(&again));
}

#[test]
fn later_run_whose_model_cannot_be_saved_leaves_no_earlier_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    assert!(run(&out, &[]).status.success());
    assert!(out.join("model.promoml").exists());
    let knn = dir.path().join("knn.toml");
    std::fs::write(
        &knn,
        "[pipeline]\nname = \"knn\"\ntask = \"binary\"\n[data]\nsource = \"synthetic.promotion\"\nrows = 1000\n\
         target = \"purchase\"\ndrop = [\"spend\", \"true_effect\", \"promotion\"]\n[[clean]]\nkind = \"impute\"\n\
         [[models]]\nkind = \"smartcore.knn\"\n[search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n",
    )
    .unwrap();
    let o = promoml(&["run", knn.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!out.join("model.promoml").exists(), "the demo's model.promoml was left beside the knn report");
    let report = std::fs::read_to_string(out.join("report.json")).unwrap();
    assert!(report.contains("\"pipeline\": \"knn\""), "report.json is not the knn run's");
    assert!(!out.join(".promoml-run").exists());
}

#[test]
fn failed_run_leaves_no_earlier_report_or_model_beside_its_trial_log() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    assert!(run(&out, &[]).status.success());
    // A target with many values for a binary task: the run starts, then fails on its data.
    let o = run(&out, &["--set", "data.target=\"true_effect\""]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    for f in ["report.json", "report.md", "report.html", "model.promoml", "trials.jsonl"] {
        assert!(!out.join(f).exists(), "{f} of the earlier run is still in --out after a failed run");
    }
}

#[test]
fn interrupted_run_finishes_its_trial_log_exits_130_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let child = Command::new(BIN)
        .args(["run", demo().to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(["--set", "search.trials=200", "--set", "report.importance_repeats=0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join(".promoml-run/trials.jsonl");
    let t0 = std::time::Instant::now();
    // Interrupt once a few trials are logged.
    while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 4 {
        assert!(t0.elapsed().as_secs() < 120, "no trial logged");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let o = child.wait_with_output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(130), "{e}");
    assert!(e.contains("interrupted during the search") && e.contains("--resume"), "{e}");
    // Every logged line is a whole trial, and the run resumes from them.
    let text = std::fs::read_to_string(&log).unwrap();
    let logged = text.lines().skip(1).count();
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|err| panic!("torn line {l}: {err}"));
    }
    let demo = demo();
    let o = promoml(&[
        "run",
        demo.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
        "--set",
        "search.trials=2",
        "--set",
        "report.importance_repeats=0",
        "--resume",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert!(report["trials"].as_array().unwrap().len() >= 2.min(logged));
}

#[test]
fn stray_word_read_as_missing_on_request_is_counted_in_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("d.csv");
    let mut text = String::from("a,b,y\n");
    for i in 0..300 {
        let a = if i == 77 { "abc".to_string() } else { format!("{}", (i * 37 % 101) as f64 / 101.0) };
        text.push_str(&format!("{a},{},{}\n", (i * 13 % 7) as f64, (i * 37 % 101 > 50) as u8));
    }
    std::fs::write(&csv, text).unwrap();
    let toml = |extra: &str| {
        format!(
            "[pipeline]\nname = \"s\"\ntask = \"binary\"\n[data]\npath = \"d.csv\"\n\
             split = {{ kind = \"modulo\", modulo = 5, remainder = 4 }}\ntarget = \"y\"\n{extra}\n\
             [[clean]]\nkind = \"impute\"\n[[models]]\nkind = \"smartcore.logistic_regression\"\n\
             [search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n"
        )
    };
    let p = dir.path().join("p.toml");
    std::fs::write(&p, toml("")).unwrap();
    let o = promoml(&["run", p.to_str().unwrap(), "--out", dir.path().join("o1").to_str().unwrap(), "--quiet"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.contains("d.csv:79: column `a`: `abc` is not a number"), "{e}");
    std::fs::write(&p, toml("on_bad_value = { a = \"missing\" }")).unwrap();
    let report = run_pipeline(&p, &dir.path().join("o2"), &[]);
    assert_eq!(report["data"]["bad_values_as_missing"]["a"], 1, "{}", report["data"]);
    assert_eq!(report["data"]["features"], 2, "a stays one numeric feature");
}

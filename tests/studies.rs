//! Studies (issue 15): a run's study in `OUT/study.db` survives SIGKILL and resumes without
//! refitting what it logged; a study shared through a real PostgreSQL server by a leader and
//! workers reports every trial exactly once, as many as a single process, with a killed
//! worker's trial taken over; a worker with another pipeline is refused, naming the difference.
//!
//! PostgreSQL: `PROMOML_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB` (`.ci/run` starts a
//! throw-away cluster and sets it). Without it the shared-study tests fail, unless
//! `PROMOML_SKIP_POSTGRES=1` says that skipping them is intended.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn demo() -> std::path::PathBuf {
    root().join("pipelines/demo.toml")
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn report(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// The finished trials in a JSON-lines export (after its header line).
fn exported(text: &str) -> Vec<serde_json::Value> {
    text.lines().skip(1).map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn run_killed_with_sigkill_resumes_from_its_study_db_refitting_nothing_it_logged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o");
    let demo = demo();
    let args = |trials: &str| {
        vec![
            "run".to_string(),
            demo.display().to_string(),
            "--out".into(),
            out.display().to_string(),
            "--quiet".into(),
            "--set".into(),
            format!("search.trials={trials}"),
            "--set".into(),
            "report.importance_repeats=0".into(),
        ]
    };
    let mut child = Command::new(BIN).args(args("200")).stderr(Stdio::null()).spawn().unwrap();
    let db = out.join(".promoml-run/study.db");
    let export = |db: &Path| {
        let o = promoml(&["study", "export", "--storage", db.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        exported(&String::from_utf8_lossy(&o.stdout))
    };
    let t0 = Instant::now();
    while !db.is_file() || export(&db).len() < 4 {
        assert!(t0.elapsed() < Duration::from_secs(180), "no trial stored");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap(); // SIGKILL: no handler runs
    child.wait().unwrap();
    let logged = export(&db);
    assert!(logged.len() >= 4);
    // Resume with fewer trials: every logged trial it needs is replayed, with its recorded time.
    let o = promoml(&args("3").iter().map(String::as_str).chain(["--resume"]).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    let r = report(&out);
    let trials = r["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 9, "3 candidates x 3 trials");
    let mut replayed = 0;
    for t in trials {
        if let Some(l) = logged.iter().find(|l| l["model"] == t["model"] && l["number"] == t["number"]) {
            assert_eq!(l["seconds"], t["seconds"], "trial {} of {} was refitted", t["number"], t["model"]);
            assert_eq!(l["params"], t["params"]);
            replayed += 1;
        }
    }
    assert!(replayed >= 3, "{replayed} replayed");
    // The published study holds every trial; the trial log is its export.
    let published = export(&out.join("study.db"));
    assert!(published.len() >= 9);
    let log = std::fs::read_to_string(out.join("trials.jsonl")).unwrap();
    assert_eq!(exported(&log).len(), published.len());
}

fn spawn(args: &[&str], log: &Path) -> Child {
    Command::new(BIN).args(args).stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap()
}

#[test]
fn leader_and_workers_share_a_postgres_study_each_trial_once_a_killed_workers_trial_taken_over() {
    let Some(url) = promoml_core::testing::postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let demo = demo();
    let d = demo.to_str().unwrap();
    // A pipeline name of its own: other tests share the database.
    let name = format!("pipeline.name=\"demo-shared-{}\"", std::process::id());
    let set = ["--set", &name, "--set", "search.trials=5", "--set", "report.importance_repeats=0"];
    let beat = ["--heartbeat-s", "0.3", "--grace-s", "2"];
    let single = dir.path().join("single");
    let o = promoml(&[&["run", d, "--out", single.to_str().unwrap(), "--quiet"][..], &set].concat());
    assert!(o.status.success(), "{}", stderr(&o));

    let dist = dir.path().join("dist");
    let lead_args = [&["run", d, "--out", dist.to_str().unwrap(), "--storage", &url][..], &set, &beat].concat();
    let mut lead = spawn(&lead_args, &dir.path().join("lead.log"));
    let worker_args = [&["worker", d, "--storage", &url][..], &set, &beat].concat();
    let mut w1 = spawn(&worker_args, &dir.path().join("w1.log"));
    let mut w2 = spawn(&worker_args, &dir.path().join("w2.log"));
    // Kill the second worker (SIGKILL) while it holds a trial (or several: one per claimer).
    let marker = format!(":{}:", w2.id());
    let t0 = Instant::now();
    let mut killed_holding = false;
    while t0.elapsed() < Duration::from_secs(120) {
        let o = promoml(&["study", "show", "--storage", &url]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        if text.contains(&format!("demo-shared-{}", std::process::id()))
            && text.lines().any(|l| l.contains(" running ") && l.contains(&marker))
        {
            w2.kill().unwrap();
            killed_holding = true;
            break;
        }
        if w2.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(killed_holding, "the second worker never held a trial");
    w2.wait().unwrap();
    assert!(lead.wait().unwrap().success(), "{}", std::fs::read_to_string(dir.path().join("lead.log")).unwrap());
    assert!(w1.wait().unwrap().success(), "{}", std::fs::read_to_string(dir.path().join("w1.log")).unwrap());

    let (a, b) = (report(&single), report(&dist));
    let finished =
        |r: &serde_json::Value| r["trials"].as_array().unwrap().iter().filter(|t| t["error"].is_null()).count();
    let keys: Vec<(String, u64)> = b["trials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["model"].as_str().unwrap().to_string(), t["number"].as_u64().unwrap()))
        .collect();
    assert_eq!(keys.len(), keys.iter().collect::<BTreeSet<_>>().len(), "a trial reported twice: {keys:?}");
    assert_eq!(finished(&a), finished(&b), "as many trials as one process");
    assert_eq!(finished(&b), 15);
    // The killed worker's trial was run again by another process.
    let o = promoml(&["study", "show", "--storage", &url]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("finished"), "{text}");
    // (Each of its `search.parallel_trials` claimers may have held one.)
    let taken = text.lines().filter(|l| l.contains("no heartbeat") && l.contains(&marker)).count();
    assert!(taken >= 1, "{text}");
    assert!(text.lines().filter(|l| l.contains(" complete ") || l.contains(" pruned ")).count() == 15, "{text}");
    // The leader's outputs: report, model and the study's export.
    assert!(dist.join("model.promoml").is_file() && dist.join("trials.jsonl").is_file());
}

#[test]
fn a_worker_started_with_other_settings_is_refused_naming_them() {
    let Some(url) = promoml_core::testing::postgres_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let demo = demo();
    let d = demo.to_str().unwrap();
    let name = format!("pipeline.name=\"demo-refused-{}\"", std::process::id());
    let set = ["--set", &name, "--set", "search.trials=40", "--set", "report.importance_repeats=0"];
    let out = dir.path().join("o");
    let lead_args = [&["run", d, "--out", out.to_str().unwrap(), "--storage", &url][..], &set].concat();
    let mut lead = spawn(&lead_args, &dir.path().join("lead.log"));
    let o = promoml(&[&["worker", d, "--storage", &url, "--set", "search.cv_folds=3"][..], &set].concat());
    let _ = lead.kill();
    let _ = lead.wait();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("search.cv_folds: 5 -> 3") && e.contains("differs"), "{e}");
}

/// Issue 15: the device was dropped by steps that fit models, so a burn autoencoder inside
/// `anomaly.filter` trained on the CPU whatever `--device` said. The typed device now reaches
/// it: without CUDA support compiled in, `--device cuda:0` is refused by the filter's detector
/// instead of silently running on the CPU.
#[test]
fn the_device_reaches_a_detector_fitted_inside_anomaly_filter() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = dir.path().join("p.toml");
    std::fs::write(
        &pipeline,
        r#"
[pipeline]
name = "filter-device"
task = "binary"
seed = 3
[data]
source = "synthetic.promotion"
rows = 400
target = "purchase"
id = "customer_id"
drop = ["true_effect", "spend"]
[[clean]]
kind = "impute"
[[clean]]
kind = "anomaly.filter"
detector = "burn.autoencoder"
params = { epochs = 1 }
contamination = 0.05
[[features]]
kind = "one_hot"
[[models]]
kind = "smartcore.logistic_regression"
[search]
trials = 1
cv_folds = 2
[report]
importance_repeats = 0
"#,
    )
    .unwrap();
    let out = dir.path().join("o");
    let p = pipeline.to_str().unwrap();
    let cpu = promoml(&["run", p, "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(cpu.status.success(), "{}", stderr(&cpu));
    let cuda = promoml(&["run", p, "--out", out.to_str().unwrap(), "--quiet", "--device", "cuda:0"]);
    if cfg!(feature = "cuda") {
        return; // a CUDA build trains the filter's autoencoder on the GPU (scripts/gpu-check.sh)
    }
    assert!(!cuda.status.success());
    let e = stderr(&cuda);
    assert!(e.contains("anomaly.filter") && e.contains("cuda:0") && e.contains("--features cuda"), "{e}");
}

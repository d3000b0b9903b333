//! End-to-end tests of the scoring service: artifacts fitted in-process on seeded data, the
//! service on a free loopback port, requests over plain HTTP/1.1.

mod http;

use http::{get, post};
use promoml_core::Registry;
use promoml_pipeline::artifact::{Artifact, ExplainOptions};
use promoml_pipeline::{Pipeline, RunOptions, Silent, run_with};
use promoml_serve::{ServeOptions, spawn};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_gbm::register(&mut r);
    promoml_forest::register(&mut r);
    r
}

/// A seeded linear congruential generator (the tests need no RNG crate).
struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn gauss(&mut self) -> f64 {
        (-2.0 * self.uniform().ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// `id,a,b,c,y`: a binary outcome of two numbers and a three-level label (the acceptance check's
/// data); `regression` gives `y` as a number instead.
fn write_data(path: &Path, rows: usize, seed: u64, regression: bool) {
    let mut g = Lcg(seed);
    let mut s = String::from("id,a,b,c,y\n");
    for i in 0..rows {
        let (a, b) = (g.gauss(), g.gauss());
        let c = ["x", "y", "z"][(g.uniform() * 3.0) as usize % 3];
        let z = 1.5 * a - b + if c == "x" { 0.8 } else { 0.0 };
        let y = if regression {
            format!("{:.4}", z + 0.3 * g.gauss())
        } else {
            u8::from(g.uniform() < 1.0 / (1.0 + (-z).exp())).to_string()
        };
        s.push_str(&format!("{i},{a:.4},{b:.4},{c},{y}\n"));
    }
    std::fs::write(path, s).unwrap();
}

/// Fit `model` (a `[[models]]` table body) on seeded data in `dir`; returns the artifact path.
fn fit(dir: &Path, name: &str, task: &str, model: &str, seed: u64) -> PathBuf {
    let data = dir.join(format!("{name}.csv"));
    write_data(&data, 1200, seed, task == "regression");
    let toml = format!(
        "[pipeline]\nname = \"{name}\"\ntask = \"{task}\"\nseed = {seed}\n[data]\npath = \"{name}.csv\"\nid = \"id\"\n\
         split = {{ kind = \"modulo\", modulo = 5, remainder = 4 }}\ntarget = \"y\"\n[[features]]\nkind = \"one_hot\"\n\
         [[models]]\n{model}\n[search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n"
    );
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(&spec, toml).unwrap();
    let out = dir.join(name);
    std::fs::create_dir_all(&out).unwrap();
    let reg = registry();
    let p = Pipeline::load(&spec, &[], &reg).unwrap_or_else(|e| panic!("{e}"));
    let opts = RunOptions { artifact: promoml_pipeline::artifact::for_task(&p, &out, &reg), ..RunOptions::default() };
    let report = run_with(&p, &Silent, &opts).unwrap_or_else(|e| panic!("{e}"));
    promoml_pipeline::write_report(&report, &p.formats, &out).unwrap_or_else(|e| panic!("{e}"));
    out.join("model.promoml")
}

const GBM: &str = "kind = \"gbm.forust\"\nparams = { n_estimators = 60, max_depth = 3 }";

/// JSON rows (without the target) of the first `n` data rows.
fn rows(dir: &Path, name: &str, n: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap();
    text.lines()
        .skip(1)
        .take(n)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            json!({"id": f[0].parse::<i64>().unwrap(), "a": f[1].parse::<f64>().unwrap(), "b": f[2].parse::<f64>().unwrap(), "c": f[3]})
        })
        .collect()
}

/// `predict`'s scores for the first `n` data rows (the scores file's `score` or `prediction`).
fn predict_scores(dir: &Path, name: &str, artifact: &Path, n: usize) -> Vec<f64> {
    let text = std::fs::read_to_string(dir.join(format!("{name}.csv"))).unwrap();
    let input = dir.join(format!("{name}-new.csv"));
    let head: Vec<&str> = text.lines().take(n + 1).collect();
    std::fs::write(&input, head.join("\n") + "\n").unwrap();
    let a = Artifact::read(artifact, &registry()).unwrap();
    let out = dir.join(format!("{name}-pred.csv"));
    a.predict_file(&input, &out).unwrap();
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect()
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

fn start(artifact: &Path) -> promoml_serve::Running {
    let opts =
        ServeOptions { max_body_bytes: 1 << 20, ..ServeOptions::new(artifact.into(), "127.0.0.1:0".parse().unwrap()) };
    spawn(opts, registry(), false).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn served_scores_equal_predict_and_explanations_are_additive() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = fit(dir.path(), "gbm", "binary", GBM, 1);
    let want = predict_scores(dir.path(), "gbm", &artifact, 20);
    let server = start(&artifact);
    let (status, body) = post(
        server.addr,
        "/v1/predict",
        "application/json",
        &json!({"rows": rows(dir.path(), "gbm", 20), "explain": 10}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["explanation"]["space"], "log_odds");
    assert_eq!(v["explanation"]["method"], "exact");
    let got = v["predictions"].as_array().unwrap();
    assert_eq!(got.len(), 20);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["id"], json!(i));
        assert_eq!(g["score"].as_f64().unwrap(), *w, "row {i}");
        let c = g["contributions"].as_array().unwrap();
        // One contribution per input column: the one-hot levels of `c` add up to one.
        let mut names: Vec<&str> = c.iter().map(|x| x["feature"].as_str().unwrap()).collect();
        names.sort_unstable();
        assert_eq!(names, ["a", "b", "c"]);
        let total =
            g["base_value"].as_f64().unwrap() + c.iter().map(|x| x["contribution"].as_f64().unwrap()).sum::<f64>();
        assert!((total - logit(*w)).abs() < 1e-9, "row {i}: {total} vs {}", logit(*w));
    }
    // The same rows as CSV.
    let text = std::fs::read_to_string(dir.path().join("gbm-new.csv")).unwrap();
    let (status, body) = post(server.addr, "/v1/predict?explain=2", "text/csv", &text);
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    for (g, w) in v["predictions"].as_array().unwrap().iter().zip(&want) {
        assert_eq!(g["score"].as_f64().unwrap(), *w);
        assert_eq!(g["contributions"].as_array().unwrap().len(), 2);
        let total = g["base_value"].as_f64().unwrap()
            + g["contributions"].as_array().unwrap().iter().map(|x| x["contribution"].as_f64().unwrap()).sum::<f64>()
            + g["rest"].as_f64().unwrap();
        assert!((total - logit(*w)).abs() < 1e-9);
    }
    let (status, body) = get(server.addr, "/v1/model");
    assert_eq!(status, 200);
    let m: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(m["task"], "binary");
    assert_eq!(m["generation"], 1);
    let inputs: Vec<(&str, &str)> = m["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["type"].as_str().unwrap()))
        .collect();
    assert!(inputs.contains(&("a", "numeric")) && inputs.contains(&("c", "categorical")), "{inputs:?}");
    assert!(m["metrics"]["test"].is_object(), "{}", m["metrics"]);
    server.shutdown().unwrap();
    // The report's SHAP summary of the same model: exact, in log-odds, per input column.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("gbm/report.json")).unwrap()).unwrap();
    let shap = &report["shap"];
    assert_eq!((shap["method"].as_str(), shap["space"].as_str()), (Some("exact"), Some("log_odds")));
    let names: Vec<&str> =
        shap["features"].as_array().unwrap().iter().map(|f| f["feature"].as_str().unwrap()).collect();
    assert_eq!(names[0], "a", "the strongest input comes first: {names:?}");
    assert_eq!(names.len(), 3);
    let md = std::fs::read_to_string(dir.path().join("gbm/report.md")).unwrap();
    assert!(md.contains("## SHAP summary (test)"));
}

#[test]
fn bad_requests_get_located_4xx_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = fit(dir.path(), "bad", "binary", GBM, 2);
    let server = start(&artifact);
    let a = server.addr;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("application/json", "{not json".into(), 400, "invalid JSON request"),
        (
            "application/json",
            json!({"rows": [{"id": 1, "a": 0.1}]}).to_string(),
            400,
            "rows[0]: missing columns `b`, `c`",
        ),
        (
            "application/json",
            json!({"rows": [{"a": 1, "b": 0, "c": "x"}, {"id": 1, "a": "zz", "b": 0, "c": "x"}]}).to_string(),
            400,
            "rows[1]: column `a`: \"zz\" is not a number",
        ),
        (
            "application/json",
            json!({"rows": [{"a": 1, "b": 0, "c": "x"}], "explain": -1}).to_string(),
            400,
            "invalid JSON request",
        ),
        ("application/json", json!({"rows": [], "events": []}).to_string(), 400, "exactly one of `rows` and `events`"),
        ("application/json", json!({"events": [{"a": 1}]}).to_string(), 400, "send `rows`, not `events`"),
        ("text/csv", "id,a,b,c\n1,0.5,zz,x\n".into(), 400, "request body:2: column `b`: `zz` is not a number"),
        ("text/plain", "a".into(), 415, "send application/json or text/csv"),
        (
            "application/json",
            json!({"rows": vec![json!({"a": 1, "b": 0, "c": "x"}); 1001], "explain": 1}).to_string(),
            413,
            "at most 1000 (--max-explain-rows)",
        ),
        ("application/json", format!("{{\"rows\": [{}]}}", "0,".repeat(600_000)), 413, ""),
    ];
    for (ctype, body, want, says) in cases {
        let (status, answer) = post(a, "/v1/predict", ctype, &body);
        assert_eq!(status, want, "{body:.80}: {answer}");
        let error = serde_json::from_str::<Value>(&answer).map(|v| v["error"].as_str().unwrap_or("").to_string());
        assert!(error.unwrap_or(answer.clone()).contains(says), "{body:.80}: {answer}");
        // Still serving.
        let (ok, _) =
            post(a, "/v1/predict", "application/json", &json!({"rows": [{"a": 1, "b": 0, "c": "x"}]}).to_string());
        assert_eq!(ok, 200);
    }
    assert_eq!(get(a, "/nope").0, 404);
    assert_eq!(get(a, "/healthz").0, 200);
    assert_eq!(get(a, "/readyz").0, 200);
    let (_, metrics) = get(a, "/metrics");
    assert!(metrics.contains("promoml_requests_total{route=\"/v1/predict\",status=\"400\"} 7"), "{metrics}");
    assert!(metrics.contains("promoml_requests_total{route=\"/v1/predict\",status=\"200\"} 10"), "{metrics}");
    assert!(metrics.contains("promoml_request_duration_seconds_count{route=\"/v1/predict\"}"));
    assert!(metrics.contains("promoml_rows_scored_total 10"), "{metrics}");
    assert!(metrics.contains("promoml_model_generation 1"));
    server.shutdown().unwrap();
}

#[test]
fn requests_beyond_the_in_flight_limit_get_429() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = fit(dir.path(), "busy", "binary", GBM, 3);
    let opts = ServeOptions {
        max_in_flight: 1,
        max_explain_rows: 5000,
        ..ServeOptions::new(artifact, "127.0.0.1:0".parse().unwrap())
    };
    let server = spawn(opts, registry(), false).unwrap();
    let many: Vec<Value> = (0..4000).map(|i| json!({"a": (i as f64) / 1000.0, "b": 0.5, "c": "y"})).collect();
    let body = Arc::new(json!({"rows": many, "explain": 3}).to_string());
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (b, bar, addr) = (body.clone(), barrier.clone(), server.addr);
            std::thread::spawn(move || {
                bar.wait();
                post(addr, "/v1/predict", "application/json", &b).0
            })
        })
        .collect();
    let statuses: Vec<u16> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    assert!(statuses.contains(&429) && statuses.contains(&200), "{statuses:?}");
    server.shutdown().unwrap();
}

#[test]
fn hot_reload_under_load_swaps_atomically_and_refuses_a_bad_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let first = fit(dir.path(), "v1", "binary", GBM, 4);
    let second =
        fit(dir.path(), "v2", "binary", "kind = \"gbm.forust\"\nparams = { n_estimators = 20, max_depth = 2 }", 5);
    let served = dir.path().join("served.promoml");
    std::fs::copy(&first, &served).unwrap();
    let one = rows(dir.path(), "v1", 1);
    let a1 = Artifact::read(&first, &registry()).unwrap();
    let a2 = Artifact::read(&second, &registry()).unwrap();
    let score = |a: &Artifact| {
        let b = a.score_json_rows(&one, None).unwrap();
        a.rows_json(&b, 0)[0]["score"].as_f64().unwrap()
    };
    let (s1, s2) = (score(&a1), score(&a2));
    assert_ne!(s1, s2);
    let server = start(&served);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let body = json!({"rows": one}).to_string();
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, bad, body, addr) = (stop.clone(), ok.clone(), bad.clone(), body.clone(), server.addr);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let (status, answer) = post(addr, "/v1/predict", "application/json", &body);
                    let v: Value = serde_json::from_str(&answer).unwrap_or_default();
                    let s = v["predictions"][0]["score"].as_f64();
                    // Every answer comes whole from one model or the other.
                    let g = v["model"]["generation"].as_u64();
                    if status == 200 && ((g == Some(1) && s == Some(s1)) || (g == Some(2) && s == Some(s2))) {
                        ok.fetch_add(1, Ordering::SeqCst);
                    } else {
                        bad.fetch_add(1, Ordering::SeqCst);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // Replace the file atomically, then reload over HTTP.
    let tmp = dir.path().join("served.tmp");
    std::fs::copy(&second, &tmp).unwrap();
    std::fs::rename(&tmp, &served).unwrap();
    let (status, answer) = post(server.addr, "/admin/reload", "application/json", "");
    assert_eq!((status, answer.as_str()), (200, "{\"generation\":2}"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A corrupt artifact is refused; the old model stays.
    std::fs::write(&served, b"PROMOML-ARTIFACT garbage").unwrap();
    let (status, answer) = post(server.addr, "/admin/reload", "application/json", "");
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("the old model stays"), "{answer}");
    assert!(server.reload().is_err());
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    for t in load {
        t.join().unwrap();
    }
    assert_eq!(bad.load(Ordering::SeqCst), 0);
    assert!(ok.load(Ordering::SeqCst) > 20, "{} answers", ok.load(Ordering::SeqCst));
    assert_eq!(server.generation(), 2);
    let (_, metrics) = get(server.addr, "/metrics");
    assert!(metrics.contains("promoml_model_generation 2"));
    assert!(metrics.contains("promoml_model_reloads_total 1"));
    assert!(metrics.contains("promoml_model_reload_failures_total 2"));
    server.shutdown().unwrap();
}

#[test]
fn forest_regression_is_served_with_exact_additive_tree_shap() {
    let dir = tempfile::tempdir().unwrap();
    let artifact = fit(
        dir.path(),
        "rf",
        "regression",
        "kind = \"forest.random_forest\"\nparams = { n_trees = 30, max_depth = 6 }",
        6,
    );
    let want = predict_scores(dir.path(), "rf", &artifact, 10);
    let a = Artifact::read(&artifact, &registry()).unwrap();
    let b = a.score_json_rows(&rows(dir.path(), "rf", 10), Some(&ExplainOptions::default())).unwrap();
    let e = b.explained.as_ref().unwrap();
    assert_eq!(e.method, promoml_pipeline::explain::Method::Exact);
    assert_eq!(e.inputs, ["a", "b", "c"]);
    for (i, r) in a.rows_json(&b, 3).iter().enumerate() {
        assert_eq!(r["prediction"].as_f64().unwrap(), want[i]);
        let total = e.values.total(i);
        assert!((total - want[i]).abs() < 1e-9, "{total} vs {}", want[i]);
    }
    // The largest contributions: `a` moves the outcome most (1.5 a - b + 0.8 [c = x]).
    let mean_abs = |j: usize| (0..10).map(|i| e.values.contributions[[i, j]].abs()).sum::<f64>();
    assert!(mean_abs(0) > mean_abs(2), "{}", e.values.contributions);
}

//! Model artifacts end to end: `promoml run` writes OUT/model.promoml, `promoml predict`
//! reproduces the report's test metric exactly from it, and bad artifacts or inputs fail with
//! clear errors. (The run itself checks that the reloaded artifact predicts the test rows bit
//! for bit like the in-process model: see `promoml_pipeline::artifact::write_for_run`.)

mod common;
use common::*;
use promoml_core::{Metric, Predictions};
use promoml_pipeline::artifact::{Artifact, ExplainOptions};
use std::path::Path;

/// The `score` column of a scores file.
fn scores(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("score"));
    lines.map(|l| l.parse::<f64>().unwrap()).collect()
}

/// The cells of a two-column scores file after its header, which must be `header`.
fn two_columns<'a>(text: &'a str, header: &str) -> impl Iterator<Item = (&'a str, &'a str)> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(header));
    lines.map(|l| l.split_once(',').unwrap())
}

/// `text` (a CSV without quoted commas) without column `name`.
fn without_column(text: &str, name: &str) -> String {
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let j = header.iter().position(|h| *h == name).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let cells: Vec<&str> = line.split(',').enumerate().filter(|(i, _)| *i != j).map(|(_, c)| c).collect();
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[test]
fn predict_reproduces_the_test_metric_and_rejects_bad_artifacts_and_inputs() {
    let test_csv = shared_data().join("bench/online-shoppers/test.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let report = run_pipeline(&root().join("tests/artifact-osi.toml"), &out, &[]);
    let model = out.join("model.promoml");
    assert!(model.is_file(), "promoml run wrote no model artifact");

    // Scores of the test file reproduce the report's test AUC exactly.
    let scored = dir.path().join("scores.csv");
    let o = predict(&model, &test_csv, &scored, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&test_csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let target = header.iter().position(|h| *h == "Revenue").unwrap();
    let labels: Vec<f64> =
        text.lines().skip(1).map(|l| f64::from(u8::from(l.split(',').nth(target).unwrap() == "TRUE"))).collect();
    let s = scores(&scored);
    assert_eq!(s.len(), labels.len());
    let auc = Metric::RocAuc.score(&labels, &Predictions::binary(s.iter().copied())).unwrap();
    let reported = report["test"]["roc_auc"].as_f64().unwrap();
    assert_eq!(auc.to_bits(), reported.to_bits(), "AUC from the artifact {auc}, report {reported}");
    // Independent check of the AUC: the share of (positive, negative) pairs ranked right.
    let (pos, neg): (Vec<f64>, Vec<f64>) = {
        let p = s.iter().zip(&labels).filter(|(_, y)| **y == 1.0).map(|(v, _)| *v).collect();
        let n = s.iter().zip(&labels).filter(|(_, y)| **y == 0.0).map(|(v, _)| *v).collect();
        (p, n)
    };
    let mut right = 0.0;
    for a in &pos {
        for b in &neg {
            right += if a > b {
                1.0
            } else if a == b {
                0.5
            } else {
                0.0
            };
        }
    }
    assert!((right / (pos.len() * neg.len()) as f64 - auc).abs() < 1e-9);

    // Without the target column: the same scores, byte for byte.
    let no_target = dir.path().join("no-target.csv");
    std::fs::write(&no_target, without_column(&text, "Revenue")).unwrap();
    let scored2 = dir.path().join("scores2.csv");
    assert!(predict(&model, &no_target, &scored2, &[]).status.success());
    assert_eq!(std::fs::read(&scored).unwrap(), std::fs::read(&scored2).unwrap());

    // A missing column is named, with the input file.
    let no_pages = dir.path().join("no-pages.csv");
    std::fs::write(&no_pages, without_column(&text, "PageValues")).unwrap();
    let o = predict(&model, &no_pages, &dir.path().join("x.csv"), &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("no-pages.csv") && e.contains("`PageValues`"), "{e}");

    // `--cutoff` is for event-log pipelines only.
    let o = predict(&model, &test_csv, &dir.path().join("x.csv"), &["--cutoff", "2020-01-01"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--cutoff applies to event-log pipelines only"), "{e}");

    // Another format version, a truncated file, a flipped byte.
    let bytes = std::fs::read(&model).unwrap();
    // Version 1 (classification and regression only, with an FNV-1a checksum where version 3
    // has its SHA-256 digest) is a subset: still read.
    let v1 = dir.path().join("v1.promoml");
    let body = &bytes[68..];
    let fnv = body.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    std::fs::write(&v1, [&bytes[..16], &1u32.to_le_bytes()[..], &bytes[20..36], &fnv.to_le_bytes()[..], body].concat())
        .unwrap();
    let scored_v1 = dir.path().join("scores-v1.csv");
    assert!(predict(&v1, &test_csv, &scored_v1, &[]).status.success());
    assert_eq!(std::fs::read(&scored).unwrap(), std::fs::read(&scored_v1).unwrap());
    let cases: [(&str, Vec<u8>, &str); 3] = [
        ("v99.promoml", [&bytes[..16], &99u32.to_le_bytes()[..], &bytes[20..]].concat(), "format version 99"),
        ("cut.promoml", bytes[..bytes.len() / 2].to_vec(), "truncated"),
        (
            "flip.promoml",
            {
                let mut b = bytes.clone();
                let at = b.len() - 10;
                b[at] ^= 0x55;
                b
            },
            "checksum",
        ),
    ];
    for (name, content, expected) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let o = predict(&path, &test_csv, &dir.path().join("x.csv"), &[]);
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(name) && e.contains(expected), "{name}: {e}");
    }
}

/// An event log of 400 customers (ids 1..=400, CDNOW's layout): each buys on a few days of 1997
/// up to the cutoff (1997-09-30); a customer buys again in 1998 (the label) more often the more
/// recently and often they bought. Returns the log and the ids that buy again.
#[test]
fn event_log_artifacts_score_every_customer_of_a_log_and_move_the_cutoff() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.txt");
    let buyers = write_event_log(&log);
    let pipeline = dir.path().join("events.toml");
    std::fs::write(
        &pipeline,
        format!(
            r#"
[pipeline]
name = "event-log-artifact"
task = "binary"
seed = 3

[data]
path = "{}"
delimiter = "whitespace"
timestamp_format = "%Y%m%d"
types = {{ customer_id = "numeric", date = "timestamp" }}
target = "buys_again"
positive = "TRUE"
split = {{ kind = "modulo", modulo = 5, remainder = 4, column = "customer_id" }}

[data.events]
entity = "customer_id"
time = "date"
values = ["n", "value"]
start = "1997-01-01"
cutoff = "1997-09-30"
horizon_end = "1998-06-30"
bin = "month"

[[models]]
kind = "burn.gru"
name = "gru"
params = {{ hidden_size = 8, epochs = 3, batch_size = 64, patience = 1 }}

[[models]]
kind = "burn.lstm"
name = "lstm"
params = {{ hidden_size = 8, epochs = 3, batch_size = 64, patience = 1 }}

[search]
trials = 1
cv_folds = 2

[ensemble]
kind = "stacking"

[report]
importance_repeats = 0
"#,
            log.display()
        ),
    )
    .unwrap();
    let out = dir.path().join("run");
    let report = run_pipeline(&pipeline, &out, &[]);
    assert!(report["failures"].as_array().unwrap().is_empty(), "{}", report["failures"]);
    let model = out.join("model.promoml");
    assert!(model.is_file(), "an event-log run writes a model artifact");

    // The artifact reads the raw event log: one row per customer, named by the entity column.
    let scored = dir.path().join("scores.csv");
    let o = predict(&model, &log, &scored, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&scored).unwrap();
    let rows: Vec<(u32, f64)> =
        two_columns(&text, "customer_id,score").map(|(id, s)| (id.parse().unwrap(), s.parse().unwrap())).collect();
    assert_eq!(rows.len(), 400);
    // Its scores of the test customers (id % 5 == 4) give the report's test AUC, bit for bit:
    // the final model (a burn sequence model, or the stack of both) came back from the file.
    let test: Vec<&(u32, f64)> = rows.iter().filter(|(id, _)| id % 5 == 4).collect();
    let labels: Vec<f64> = test.iter().map(|(id, _)| f64::from(u8::from(buyers.contains(id)))).collect();
    let auc = Metric::RocAuc.score(&labels, &Predictions::binary(test.iter().map(|r| r.1))).unwrap();
    let reported = report["test"]["roc_auc"].as_f64().unwrap();
    assert_eq!(auc.to_bits(), reported.to_bits(), "AUC from the artifact {auc}, report {reported}");
    let final_kind = report["leaderboard"][0]["kind"].as_str().unwrap();
    assert!(final_kind.starts_with("burn.") || final_kind.starts_with("ensemble."), "{final_kind}");

    // A moved cutoff: events after it never reach the inputs, so the full log and the log cut
    // at the new cutoff score alike; customers without events by then are not scored.
    let cut = dir.path().join("cut.txt");
    let all = std::fs::read_to_string(&log).unwrap();
    let kept: Vec<&str> = all.lines().filter(|l| l.starts_with("customer_id") || l[6..14] <= *"19970630").collect();
    std::fs::write(&cut, kept.join("\n") + "\n").unwrap();
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    for (input, output) in [(&log, &a), (&cut, &b)] {
        let o = predict(&model, input, output, &["--cutoff", "1997-06-30"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let moved = std::fs::read_to_string(&a).unwrap();
    assert_eq!(moved, std::fs::read_to_string(&b).unwrap());
    assert!(moved.lines().count() - 1 < 400 && moved != text, "the June cutoff sees fewer customers");

    // A cutoff that is no date is named.
    let o = predict(&model, &log, &a, &["--cutoff", "June"]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("--cutoff") && e.contains("\"June\""), "{e}");

    // The same log as served (`{"events": [...]}`, here the events of five customers): the
    // same scores, and sampled explanations in which the behaviour sequence is one input.
    let artifact = Artifact::read(&model, &promoml_cli::registry_with(&[])).unwrap();
    let events: Vec<serde_json::Value> = all
        .lines()
        .skip(1)
        .filter(|l| l[..5].parse::<u32>().unwrap() <= 5)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            serde_json::json!({"customer_id": f[0], "date": f[1], "n": f[2].parse::<f64>().unwrap(), "value": f[3].parse::<f64>().unwrap()})
        })
        .collect();
    let batch = artifact.score_json_events(&events, None, Some(&ExplainOptions::default())).unwrap();
    let served = artifact.rows_json(&batch, 100);
    assert_eq!(served.len(), 5);
    let e = batch.explained.as_ref().unwrap();
    assert_eq!(e.inputs.last().map(String::as_str), Some("sequence"));
    for (i, r) in served.iter().enumerate() {
        let id = r["customer_id"].as_u64().unwrap() as u32;
        let want = rows.iter().find(|(c, _)| *c == id).unwrap().1;
        let score = r["score"].as_f64().unwrap();
        assert_eq!(score, want, "customer {id}");
        let logit = (score / (1.0 - score)).ln();
        assert!((e.values.total(i) - logit).abs() < 1e-6, "customer {id}: {} vs {logit}", e.values.total(i));
    }
}

#[test]
fn anomaly_artifacts_reproduce_the_detector_scores_and_flags() {
    let data = shared_data().join("raw/anomaly/cardio.csv");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let report = run_pipeline(&root().join("pipelines/cardio-anomaly.toml"), &out, &[]);
    let scored = dir.path().join("scores.csv");
    let o = predict(&out.join("model.promoml"), &data, &scored, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&scored).unwrap();
    let rows: Vec<(f64, bool)> =
        two_columns(&text, "anomaly_score,is_anomaly").map(|(s, f)| (s.parse().unwrap(), f.parse().unwrap())).collect();
    // The label column (last) scores the detector; the artifact never saw it.
    let input = std::fs::read_to_string(&data).unwrap();
    let labels: Vec<f64> = input.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect();
    assert_eq!(rows.len(), labels.len());
    let auc = promoml_core::metrics::roc_auc(&labels, &rows.iter().map(|r| r.0).collect::<Vec<_>>()).unwrap();
    let reported = report["test"]["roc_auc"].as_f64().unwrap();
    assert_eq!(auc.to_bits(), reported.to_bits(), "AUC from the artifact {auc}, report {reported}");
    let final_name = report["final_model"].as_str().unwrap();
    let detectors = report["anomaly"]["detectors"].as_array().unwrap();
    let d = detectors.iter().find(|d| d["name"] == final_name).unwrap();
    let flagged = rows.iter().filter(|r| r.1).count() as u64;
    assert_eq!(flagged, d["flagged_test_rows"].as_u64().unwrap(), "{d}");
    let threshold = d["threshold"].as_f64().unwrap();
    assert!(rows.iter().all(|&(s, f)| f == (s > threshold)));

    // Served as JSON rows: the same `anomaly_score` and `is_anomaly`, and sampled explanations
    // of the score that add up to it.
    let artifact = Artifact::read(&out.join("model.promoml"), &promoml_cli::registry_with(&[])).unwrap();
    let header: Vec<&str> = input.lines().next().unwrap().split(',').collect();
    let json_rows: Vec<serde_json::Value> = input
        .lines()
        .skip(1)
        .take(20)
        .map(|l| {
            let o: serde_json::Map<String, serde_json::Value> = header
                .iter()
                .zip(l.split(','))
                .map(|(k, v)| (k.to_string(), serde_json::json!(v.parse::<f64>().unwrap())))
                .collect();
            serde_json::Value::Object(o)
        })
        .collect();
    let batch = artifact.score_json_rows(&json_rows, Some(&ExplainOptions::default())).unwrap();
    let e = batch.explained.as_ref().unwrap();
    for (i, r) in artifact.rows_json(&batch, 3).iter().enumerate() {
        assert_eq!(r["anomaly_score"].as_f64().unwrap(), rows[i].0, "row {i}");
        assert_eq!(r["is_anomaly"].as_bool().unwrap(), rows[i].1, "row {i}");
        assert!((e.values.total(i) - rows[i].0).abs() < 1e-9, "row {i}");
    }
}

/// `[data] derive` in an artifact: the model reads a derived amount (`margin = revenue - cost`,
/// `cost` itself dropped) and the target is derived too (`bought = amount > 0`). `promoml
/// predict` on rows in the raw file's shape (no `margin`, no `bought`) computes the margin as the
/// run did and reproduces the report's test AUC bit for bit; the artifact asks for `revenue` and
/// `cost`, not `margin`.
#[test]
fn derived_columns_are_computed_again_at_predict_time() {
    let dir = tempfile::tempdir().unwrap();
    let (mut all, mut test, mut labels) = (String::new(), String::new(), Vec::new());
    let header = "id,visits,revenue,cost,amount\n";
    for i in 0..400u32 {
        let (visits, revenue, cost) = (i * 37 % 23, 50 + i * 13 % 71, 20 + i * 29 % 67);
        // Buying depends on the margin (revenue - cost), which no single input column shows.
        let buys = (revenue as i32 - cost as i32) + visits as i32 > 30 || i % 17 == 0;
        let amount = if buys { format!("{}.5", 3 + i % 20) } else { "0".into() };
        let row = format!("{i},{visits},{revenue},{cost},{amount}\n");
        if i % 4 == 0 {
            test.push_str(&row);
            labels.push(f64::from(u8::from(buys)));
        }
        all.push_str(&row);
    }
    std::fs::write(dir.path().join("coupons.csv"), format!("{header}{all}")).unwrap();
    let test_csv = dir.path().join("new.csv");
    std::fs::write(&test_csv, format!("{header}{test}")).unwrap();
    let pipeline = dir.path().join("derive.toml");
    std::fs::write(
        &pipeline,
        r#"
[pipeline]
name = "derive-artifact"
task = "binary"
seed = 5

[data]
path = "coupons.csv"
id = "id"
target = "bought"
positive = "TRUE"
derive = { bought = "amount > 0", margin = "revenue - cost" }
drop = ["amount", "cost"]
split = { kind = "modulo", modulo = 4, remainder = 0, column = "id" }

[[models]]
kind = "smartcore.logistic_regression"

[search]
trials = 1
cv_folds = 2
"#,
    )
    .unwrap();
    let out = dir.path().join("run");
    let report = run_pipeline(&pipeline, &out, &[]);
    let model = out.join("model.promoml");
    let artifact = Artifact::read(&model, &promoml_cli::registry_with(&[])).unwrap();
    let d = artifact.describe();
    let inputs: Vec<&str> = d["inputs"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert!(inputs.contains(&"revenue") && inputs.contains(&"cost") && !inputs.contains(&"margin"), "{inputs:?}");
    assert_eq!(d["derived"][0]["name"], "margin", "{d}");

    let scored = dir.path().join("scores.csv");
    let o = predict(&model, &test_csv, &scored, &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&scored).unwrap();
    let s: Vec<f64> = two_columns(&text, "id,score").map(|(_, v)| v.parse().unwrap()).collect();
    assert_eq!(s.len(), labels.len());
    let auc = Metric::RocAuc.score(&labels, &Predictions::binary(s.iter().copied())).unwrap();
    let reported = report["test"]["roc_auc"].as_f64().unwrap();
    assert_eq!(auc.to_bits(), reported.to_bits(), "AUC from the artifact {auc}, report {reported}");
    assert!(auc > 0.8, "the derived margin carries the signal: {auc}");
    // A scoring request (what `promoml serve` receives) in the raw shape: the same scores.
    let json_rows: Vec<serde_json::Value> = test
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|c| c.parse().unwrap()).collect();
            serde_json::json!({"id": v[0], "visits": v[1], "revenue": v[2], "cost": v[3]})
        })
        .collect();
    let batch = artifact.score_json_rows(&json_rows, None).unwrap();
    for (i, r) in artifact.rows_json(&batch, 0).iter().enumerate() {
        assert_eq!(r["score"].as_f64().unwrap().to_bits(), s[i].to_bits(), "request row {i}: {r}");
    }

    // Without `cost` the margin cannot be derived: the error names the column.
    let no_cost = dir.path().join("no-cost.csv");
    std::fs::write(&no_cost, without_column(&std::fs::read_to_string(&test_csv).unwrap(), "cost")).unwrap();
    let o = predict(&model, &no_cost, &dir.path().join("x.csv"), &[]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("no-cost.csv") && e.contains("`cost`"), "{e}");
}

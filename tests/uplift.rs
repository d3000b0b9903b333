//! End-to-end tests of uplift pipelines: the Hillstrom benchmark pipelines (real data in
//! `../shared/data`) and the synthetic price-sensitivity pipeline, whose true effects are known.
//! Overrides keep them quick; the figures of the full pipelines are in the README.

mod common;
use common::*;

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn hillstrom_uplift_reports_sklift_metrics_intervals_curves_and_kpis() {
    shared_data();
    let out = tempfile::tempdir().unwrap();
    let r = run_pipeline(
        &root().join("pipelines/hillstrom-uplift.toml"),
        out.path(),
        &[
            "models[0].params.n_estimators=30",
            "search.trials=2",
            "uplift.bootstrap=30",
            "search.cv_folds=2",
            "uplift.learners=[\"s\", \"t\"]",
        ],
    );
    assert_eq!(r["task"], "uplift");
    for m in ["qini_auc", "uplift_at_30", "uplift_auc"] {
        assert!(r["test"][m].as_f64().unwrap().is_finite(), "test.{m} missing: {}", r["test"]);
    }
    let names: Vec<&str> = r["leaderboard"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
    for want in ["s-learner/gbm", "t-learner/gbm", "uplift-ensemble(top 2)"] {
        assert!(names.contains(&want), "leaderboard {names:?} lacks {want}");
    }
    for e in r["leaderboard"].as_array().unwrap() {
        assert!(e["cv"]["qini_auc"].is_number() && e["test"]["qini_auc"].is_number(), "{e}");
    }
    let arm = &r["uplift"]["metrics"][0];
    assert_eq!(arm["arm"], "Womens E-Mail");
    let q = &arm["qini_auc"];
    let (v, lo, hi) = (q["value"].as_f64().unwrap(), q["low"].as_f64().unwrap(), q["high"].as_f64().unwrap());
    assert!(lo < v && v < hi, "qini {v} outside its interval [{lo}, {hi}]");
    // The Womens e-mail raises visits by about 4 points on this split.
    let ate = arm["ate_observed"]["value"].as_f64().unwrap();
    assert!((0.02..0.07).contains(&ate), "observed effect {ate}");
    let curve = arm["qini_curve"].as_array().unwrap();
    assert!(curve.len() > 10 && curve[0] == serde_json::json!([0.0, 0.0]), "{curve:?}");
    let kpis = r["uplift"]["kpis"].as_array().unwrap();
    assert_eq!(kpis.len(), 2);
    for k in kpis {
        for f in ["participation_rate", "conversion_rate", "average_order_value", "predicted_outcome_mean"] {
            assert!(k[f].as_f64().is_some_and(f64::is_finite), "KPI {f} missing: {k}");
        }
    }
    // Outcomes kept out of the features: visit is the target, conversion and spend are KPIs.
    assert!(r["data"]["features"].as_u64().unwrap() < 20, "{}", r["data"]);

    // The model artifact scores the test file: one effect column per arm, and the test Qini
    // computed from those effects is the report's, bit for bit.
    let test_csv = shared_data().join("bench/hillstrom/test.csv");
    let scores = out.path().join("scores.csv");
    predict_ok(&out.path().join("model.promoml"), &test_csv, &scores);
    let (head, rows) = csv_rows(&read(&scores));
    assert_eq!(head, ["uplift_Womens E-Mail"]);
    let (_, input) = csv_rows(&read(&test_csv));
    assert_eq!(rows.len(), input.len(), "one score per input row, whatever its arm");
    let (mut y, mut u, mut t) = (vec![], vec![], vec![]);
    for (inp, sc) in input.iter().zip(&rows) {
        // Columns: ..., segment (8), visit (9), ...
        if inp[8] == "No E-Mail" || inp[8] == "Womens E-Mail" {
            y.push(inp[9].parse::<f64>().unwrap());
            u.push(sc[0].parse::<f64>().unwrap());
            t.push(u8::from(inp[8] == "Womens E-Mail"));
        }
    }
    let qini = promoml_pipeline::uplift::metrics::qini_auc_score(&y, &u, &t).unwrap();
    let reported = r["test"]["qini_auc"].as_f64().unwrap();
    assert_eq!(qini.to_bits(), reported.to_bits(), "Qini from the artifact {qini}, report {reported}");
}

/// `promoml predict`; panics with stderr on failure.
fn predict_ok(model: &std::path::Path, input: &std::path::Path, output: &std::path::Path) {
    let o = predict(model, input, output, &[]);
    assert!(o.status.success(), "promoml predict failed:\n{}", String::from_utf8_lossy(&o.stderr));
}

/// Header and rows of a CSV text (quoted cells unquoted; no line breaks inside cells).
fn csv_rows(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let split = |l: &str| {
        let (mut cells, mut cell, mut quoted) = (Vec::new(), String::new(), false);
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' if quoted && chars.peek() == Some(&'"') => {
                    cell.push('"');
                    chars.next();
                }
                '"' => quoted = !quoted,
                ',' if !quoted => cells.push(std::mem::take(&mut cell)),
                c => cell.push(c),
            }
        }
        cells.push(cell);
        cells
    };
    let mut lines = text.lines();
    let head = split(lines.next().unwrap());
    (head, lines.map(split).collect())
}

/// `policy.best_baseline` is the baseline (treat none, or treat all with one arm) of highest IPW
/// value, and the gain over it is reported with its interval.
fn assert_best_baseline(p: &serde_json::Value) -> String {
    let rows = p["policies"].as_array().unwrap();
    let baselines = rows.iter().filter(|r| {
        let n = r["policy"].as_str().unwrap();
        n == "treat none" || n.starts_with("treat all")
    });
    let best =
        baselines.max_by(|a, b| a["ipw"]["value"].as_f64().unwrap().total_cmp(&b["ipw"]["value"].as_f64().unwrap()));
    let best = best.unwrap()["policy"].as_str().unwrap().to_string();
    assert_eq!(p["best_baseline"], best.as_str(), "{p}");
    let g = &p["gain_vs_best_baseline_ipw"];
    let model_minus_best = rows[0]["ipw"]["value"].as_f64().unwrap()
        - rows.iter().find(|r| r["policy"] == best.as_str()).unwrap()["ipw"]["value"].as_f64().unwrap();
    assert!((g["value"].as_f64().unwrap() - model_minus_best).abs() < 1e-9, "{g}");
    assert!(
        g["low"].as_f64().unwrap() <= g["value"].as_f64().unwrap()
            && g["value"].as_f64().unwrap() <= g["high"].as_f64().unwrap()
    );
    assert!(p["gain_vs_best_baseline_dr"]["value"].is_number());
    best
}

#[test]
fn policy_gain_is_measured_against_the_best_baseline_mailing_nobody_included() {
    shared_data();
    let out = tempfile::tempdir().unwrap();
    // At 0.6 per e-mail, mailing costs more than the visits it brings: mailing nobody is best.
    let r = run_pipeline(
        &root().join("pipelines/hillstrom-policy.toml"),
        out.path(),
        &[
            "models[0].params.n_trees=20",
            "uplift.bootstrap=30",
            "search.cv_folds=2",
            "uplift.learners=[\"s\"]",
            "policy.cost={ \"Mens E-Mail\" = 0.6, \"Womens E-Mail\" = 0.6 }",
        ],
    );
    assert_eq!(assert_best_baseline(&r["policy"]), "treat none");
}

#[test]
fn multi_treatment_policy_is_valued_next_to_the_baselines() {
    shared_data();
    let out = tempfile::tempdir().unwrap();
    let r = run_pipeline(
        &root().join("pipelines/hillstrom-policy.toml"),
        out.path(),
        &["models[0].params.n_trees=20", "uplift.bootstrap=30", "search.cv_folds=2", "uplift.learners=[\"s\"]"],
    );
    let p = &r["policy"];
    let names: Vec<&str> = p["policies"].as_array().unwrap().iter().map(|x| x["policy"].as_str().unwrap()).collect();
    assert!(names[0].starts_with("model"), "{names:?}");
    for want in ["treat none", "treat all: Mens E-Mail", "treat all: Womens E-Mail", "random"] {
        assert!(names.contains(&want), "{names:?} lacks {want}");
    }
    for row in p["policies"].as_array().unwrap() {
        let ipw = &row["ipw"];
        assert!(ipw["low"].as_f64().unwrap() <= ipw["value"].as_f64().unwrap(), "{row}");
        assert!(row["dr"]["value"].is_number(), "{row}");
    }
    let none = &p["policies"][1];
    assert_eq!(none["treated_share"], 0.0);
    assert!(p["gain_vs_best_single_arm_ipw"]["value"].is_number());
    assert_best_baseline(p);
    // No key column configured: the CSV names test rows by position, never raw ids.
    let csv = read(&out.path().join("assignments.csv"));
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("test_row,arm,expected_gain"));
    assert_eq!(lines.count() as u64, r["data"]["test_rows"].as_u64().unwrap());

    // The model artifact chooses the same e-mail with the same expected gain for every test
    // customer, also for customers without arm or outcome columns (new customers).
    let test_csv = shared_data().join("bench/hillstrom/test.csv");
    let scores = out.path().join("scores.csv");
    predict_ok(&out.path().join("model.promoml"), &test_csv, &scores);
    let (head, rows) = csv_rows(&read(&scores));
    assert_eq!(head, ["uplift_Mens E-Mail", "uplift_Womens E-Mail", "arm", "expected_gain"]);
    let (_, assigned) = csv_rows(&csv);
    assert_eq!(rows.len(), assigned.len());
    for (i, (s, a)) in rows.iter().zip(&assigned).enumerate() {
        assert_eq!((&s[2], &s[3]), (&a[1], &a[2]), "test row {i}");
    }
    let (input_head, input) = csv_rows(&read(&test_csv));
    let keep: Vec<usize> = (0..input_head.len())
        .filter(|&j| !["segment", "visit", "conversion", "spend"].contains(&input_head[j].as_str()))
        .collect();
    let mut new_customers = String::new();
    for row in std::iter::once(&input_head).chain(&input) {
        let cells: Vec<String> = keep
            .iter()
            .map(|&j| if row[j].contains(',') { format!("\"{}\"", row[j]) } else { row[j].clone() })
            .collect();
        new_customers.push_str(&cells.join(","));
        new_customers.push('\n');
    }
    let (plain, plain_scores) = (out.path().join("new.csv"), out.path().join("new-scores.csv"));
    std::fs::write(&plain, new_customers).unwrap();
    predict_ok(&out.path().join("model.promoml"), &plain, &plain_scores);
    assert_eq!(read(&scores), read(&plain_scores));
}

#[test]
fn price_policy_recovers_most_of_the_oracle_gain() {
    let out = tempfile::tempdir().unwrap();
    // `policy.key` may name the `data.id` column (taken out of the features at load).
    let r = run_pipeline(
        &root().join("pipelines/synthetic-price.toml"),
        out.path(),
        &["uplift.bootstrap=30", "data.id=\"customer_id\""],
    );
    let p = &r["policy"];
    let share = p["oracle_share_recovered"].as_f64().unwrap();
    // Seeded, so the same everywhere: 0.781 measured on 2026-11-29 (the 0.8 aimed for is not reached yet).
    assert!(share >= 0.75, "the policy recovers {share:.3} of the oracle's gain over list price for everyone");
    let true_of = |i: usize| p["policies"][i]["true_value"].as_f64().unwrap();
    assert!(true_of(0) > true_of(1), "model {} vs list price {}", true_of(0), true_of(1));
    let treated = p["policies"][0]["treated_share"].as_f64().unwrap();
    assert!(treated <= 0.6 + 1e-9, "budget of 60 % exceeded: {treated}");
    let csv = read(&out.path().join("assignments.csv"));
    // Named as the input names its key, the effects as `promoml predict` names them.
    assert!(csv.starts_with("customer_id,arm,expected_gain,uplift_discount_10,uplift_discount_20\n"), "{}", &csv[..80]);
}

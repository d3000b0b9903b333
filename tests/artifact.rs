//! Model artifacts end to end: `promoml run` writes OUT/model.promoml, `promoml predict`
//! reproduces the report's test metric exactly from it, and bad artifacts or inputs fail with
//! clear errors. (The run itself checks that the reloaded artifact predicts the test rows bit
//! for bit like the in-process model: see `promoml_pipeline::artifact::write_for_run`.)

mod common;
use common::*;
use promoml_core::{Metric, Predictions};
use std::path::Path;

fn predict(model: &Path, input: &Path, output: &Path) -> std::process::Output {
    promoml(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ])
}

/// The `score` column of a scores file.
fn scores(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("score"));
    lines.map(|l| l.parse::<f64>().unwrap()).collect()
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
    let o = predict(&model, &test_csv, &scored);
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
    assert!(predict(&model, &no_target, &scored2).status.success());
    assert_eq!(std::fs::read(&scored).unwrap(), std::fs::read(&scored2).unwrap());

    // A missing column is named, with the input file.
    let no_pages = dir.path().join("no-pages.csv");
    std::fs::write(&no_pages, without_column(&text, "PageValues")).unwrap();
    let o = predict(&model, &no_pages, &dir.path().join("x.csv"));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && e.contains("no-pages.csv") && e.contains("`PageValues`"), "{e}");

    // Another format version, a truncated file, a flipped byte.
    let bytes = std::fs::read(&model).unwrap();
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
        let o = predict(&path, &test_csv, &dir.path().join("x.csv"));
        let e = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && e.contains(name) && e.contains(expected), "{name}: {e}");
    }
}

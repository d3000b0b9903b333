//! Helpers shared by the end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `promoml` binary built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_promoml");

/// The workspace root (tests run from the CLI crate's folder).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `../shared/data` beside the workspace; the tests that use it fail loudly when it is absent.
pub fn shared_data() -> PathBuf {
    let p = root().join("../shared/data");
    assert!(p.is_dir(), "real data sets expected at {} (see README: Data sets)", p.display());
    p
}

/// Run `promoml` with arguments.
pub fn promoml(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("run promoml")
}

/// Run a pipeline into `out` with overrides; panics with stderr on failure; returns report.json.
pub fn run_pipeline(pipeline: &Path, out: &Path, set: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", pipeline.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    for s in set {
        args.push("--set");
        args.push(s);
    }
    let o = promoml(&args);
    assert!(o.status.success(), "promoml {args:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap()
}

/// `promoml predict --model MODEL --input INPUT --output OUTPUT` plus `extra` arguments.
pub fn predict(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--output",
        output.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    promoml(&args)
}

/// A seeded CDNOW-shaped purchase log (`customer_id date n value`, 400 customers in 1997, some
/// buying again in 1998) at `path`; returns the customers who buy again.
pub fn write_event_log(path: &Path) -> std::collections::BTreeSet<u32> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: u32| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % u64::from(m)) as u32
    };
    let mut text = String::from("customer_id date n value\n");
    let mut buyers = std::collections::BTreeSet::new();
    for k in 1..=400u32 {
        let visits = 1 + next(6);
        let mut last_month = 1;
        for _ in 0..visits {
            let month = 1 + next(9);
            last_month = last_month.max(month);
            let day = 1 + next(28);
            text.push_str(&format!(
                "{k:05} 1997{month:02}{day:02} {} {}.{:02}\n",
                1 + next(3),
                5 + next(40),
                next(100)
            ));
        }
        if next(12) < visits + last_month {
            buyers.insert(k);
            text.push_str(&format!("{k:05} 1998{:02}15 1 20.00\n", 1 + next(6)));
        }
    }
    std::fs::write(path, text).unwrap();
    buyers
}

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

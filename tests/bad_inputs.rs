//! Every case under `tests/bad-inputs/` must fail with its exit code and its message, never
//! with a panic. Each case folder holds `bad.toml` (and data files) and `expect.txt`: the exit
//! code on the first line, then substrings the error must contain.

mod common;
use common::*;

#[test]
fn bad_inputs_fail_clearly() {
    let dir = root().join("tests/bad-inputs");
    let mut cases: Vec<_> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(cases.len() >= 15, "only {} bad-input cases", cases.len());
    let out = tempfile::tempdir().unwrap();
    let mut problems = Vec::new();
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expect = std::fs::read_to_string(case.join("expect.txt")).unwrap();
        let mut lines = expect.lines();
        let code: i32 = lines.next().unwrap().trim().parse().unwrap();
        // Run from the case folder so messages name `bad.toml` and `train.csv` as written.
        let o = std::process::Command::new(BIN)
            .current_dir(case)
            .args(["run", "bad.toml", "--out", out.path().join(&name).to_str().unwrap(), "--quiet"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr).to_string();
        if stderr.contains("panicked") {
            problems.push(format!("{name}: panicked:\n{stderr}"));
            continue;
        }
        if o.status.code() != Some(code) {
            problems.push(format!("{name}: exit {:?}, expected {code}; stderr:\n{stderr}", o.status.code()));
        }
        for want in lines.filter(|l| !l.trim().is_empty()) {
            if !stderr.contains(want) {
                problems.push(format!("{name}: message lacks `{want}`; stderr:\n{stderr}"));
            }
        }
    }
    assert!(problems.is_empty(), "{} of {} cases wrong:\n{}", problems.len(), cases.len(), problems.join("\n"));
}

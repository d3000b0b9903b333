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

/// Issue 13, defects 3 and 4 through the command line: absurd numbers given by `--set` are
/// refused by `validate` and `run` (exit code 2, no panic, nothing allocated), and the error
/// names the `--set` argument, not a line of the pipeline file.
#[test]
fn absurd_settings_and_set_overrides_are_refused_by_the_cli() {
    let demo = root().join("pipelines/demo.toml");
    let demo = demo.to_str().unwrap();
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("run");
    let cases: [(&[&str], &str); 6] = [
        (&["validate", demo, "--set", "search.time_budget_s=1e20"], "allowed more than 0 and at most 2592000 seconds"),
        (&["validate", demo, "--set", "report.importance_budget_s=1e20"], "at most 2592000 seconds"),
        (&["validate", demo, "--set", "data.rows=10000000000000"], "allowed 50 to 10000000"),
        (&["validate", demo, "--set", "data.arms=1000000"], "allowed 1 to 9"),
        (&["run", demo, "--out", out.to_str().unwrap(), "--quiet", "--set", "search.time_budget_s=1.8e19"], "at most"),
        (&["validate", demo, "--set", "search.trails=3"], "did you mean `trials`?"),
    ];
    for (args, want) in cases {
        let o = promoml(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        let set = args.last().unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains(&format!("error: --set {set}: ")) && stderr.contains(want), "{args:?}: {stderr}");
    }
}

//! Validation of the pipeline file: absurd numbers are refused with their key and the allowed
//! range, and errors caused by a `--set` override name that argument instead of a place in the
//! file (issue 13, defects 3 and 4).

use promoml_core::Registry;
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Pipeline, PipelineError};
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    promoml_smartcore::register(&mut r);
    r
}

const BASE: &str = r#"[pipeline]
name = "config-test"
task = "binary"

[data]
source = "synthetic.promotion"
rows = 1000
target = "purchase"
drop = ["true_effect", "spend"]

[[models]]
kind = "forest.random_forest"

[search]
trials = 3

[report]
formats = ["json"]
"#;

/// Validate `text` (as the file `dir/p.toml`) with `set` overrides, as `promoml validate` does.
fn validate(dir: &Path, text: &str, set: &[&str]) -> Result<Pipeline, PipelineError> {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let path = dir.join("p.toml");
    let src = Source::from_text(&path, text.to_string(), &set)?;
    let spec = src.parse()?;
    Pipeline::from_spec(src, spec, &registry())
}

/// The error of an invalid pipeline: a configuration error (exit code 2), as text.
fn refused(dir: &Path, text: &str, set: &[&str]) -> String {
    match validate(dir, text, set) {
        Ok(_) => panic!("accepted: {set:?}\n{text}"),
        Err(e) => {
            assert_eq!(e.exit_code(), 2, "{e}");
            e.to_string()
        }
    }
}

/// An event-log pipeline over a small log written into `dir`, with `extra` lines in
/// `[data.events]`.
fn events_pipeline(dir: &Path, extra: &str) -> String {
    std::fs::write(dir.join("events.csv"), "id,t,spend\n1,1997-01-05,10\n2,1997-02-01,5\n1,1997-11-01,3\n").unwrap();
    format!(
        r#"[pipeline]
name = "events"
task = "binary"

[data]
path = "events.csv"
target = "again"
split = {{ kind = "modulo", modulo = 2, remainder = 1, column = "id" }}

[data.events]
entity = "id"
time = "t"
values = ["spend"]
cutoff = "1997-09-30"
horizon_end = "1998-06-30"
{extra}

[[models]]
kind = "forest.random_forest"
"#
    )
}

#[test]
fn absurd_settings_are_refused_by_validate() {
    let dir = tempfile::tempdir().unwrap();
    // (override, key, allowed range as the message states it)
    let cases = [
        ("search.time_budget_s=1e20", "search.time_budget_s", "at most 2592000 seconds"),
        ("search.time_budget_s=1.8e19", "search.time_budget_s", "at most 2592000 seconds"),
        ("search.time_budget_s=inf", "search.time_budget_s", "at most 2592000 seconds"),
        ("report.importance_budget_s=1e20", "report.importance_budget_s", "at most 2592000 seconds"),
        ("data.rows=10000000000000", "data.rows", "allowed 50 to 10000000"),
        ("data.arms=1000000", "data.arms", "allowed 1 to 9"),
        ("search.trials=100000000000", "search.trials", "allowed 1 to 1000000"),
        ("search.cv_folds=1000000", "search.cv_folds", "allowed 2 to 100"),
        ("search.parallel_trials=100000000", "search.parallel_trials", "allowed 1 to 256"),
        ("search.startup_trials=100000000", "search.startup_trials", "allowed 0 to 1000000"),
        ("search.pruner_warmup_folds=1000", "search.pruner_warmup_folds", "allowed 0 to 100"),
        ("report.importance_repeats=1000000000", "report.importance_repeats", "allowed 0 to 1000"),
        ("models[0].trials=100000000000", "models[0].trials", "allowed 1 to 1000000"),
        ("models[0].params.n_trees=1000000000", "models[0].params.n_trees", "int in [1, 10000]"),
        ("data.split={ kind = \"modulo\", modulo = 100000000000 }", "data.split.modulo", "allowed 2 to 1000000"),
    ];
    for (set, key, range) in cases {
        let e = refused(dir.path(), BASE, &[set]);
        assert!(e.contains(&format!("`{key}`")) && e.contains(range), "--set {set}: {e}");
        assert!(!e.contains("panicked"), "{e}");
    }
    // The same numbers written in the file: located at their line.
    let text = BASE.replace("rows = 1000", "rows = 10000000000000");
    let e = refused(dir.path(), &text, &[]);
    assert!(e.contains("p.toml:7:1: `data.rows`: 10000000000000 is out of range: allowed 50 to 10000000"), "{e}");
    let text = format!("{BASE}\n[ensemble]\nkind = \"greedy\"\nsize = 1000000000\n");
    let e = refused(dir.path(), &text, &[]);
    assert!(e.contains("`ensemble.size`") && e.contains("allowed 1 to 10000"), "{e}");

    // Event logs: sequence length, periods, windows and the bins a `start` implies.
    let events = [
        ("steps = 1000000000000", "data.events.steps", "allowed 1 to 10000"),
        ("encoding = \"last_n\"\nsteps = 1000000000000", "data.events.steps", "allowed 1 to 10000"),
        ("periods = 100000000", "data.events.periods", "allowed 0 to 1000"),
        ("period_days = 4000000000", "data.events.period_days", "allowed 1 to 36525"),
        ("bin_days = 4000000000", "data.events.bin_days", "allowed 1 to 36525"),
        ("recent_days = [30, 4000000000]", "data.events.recent_days", "allowed 1 to 36525"),
        ("start = \"0001-01-01\"\nbin = \"day\"", "data.events.start", "allowed at most 10000"),
    ];
    for (extra, key, range) in events {
        let e = refused(dir.path(), &events_pipeline(dir.path(), extra), &[]);
        assert!(e.contains(&format!("`{key}`")) && e.contains(range), "{extra}: {e}");
    }
    // Within the bounds, the same settings are accepted.
    for extra in ["steps = 10000", "periods = 1000", "start = \"1997-01-01\"\nbin = \"day\""] {
        validate(dir.path(), &events_pipeline(dir.path(), extra), &[]).unwrap_or_else(|e| panic!("{extra}: {e}"));
    }
    validate(dir.path(), BASE, &["search.time_budget_s=2592000", "data.arms=9", "data.rows=10000000"]).unwrap();
}

#[test]
fn set_override_errors_name_the_argument() {
    let dir = tempfile::tempdir().unwrap();
    // An unknown key given by --set: named by the argument, with the suggestion.
    let e = refused(dir.path(), BASE, &["search.trails=3"]);
    assert!(e.starts_with("--set search.trails=3: `search.trails`: unknown field `trails`"), "{e}");
    assert!(e.contains("did you mean `trials`?"), "{e}");
    // A whole new table path: the argument, not a line past the end of the file.
    let e = refused(dir.path(), BASE, &["a.b.c.d=1"]);
    assert!(e.starts_with("--set a.b.c.d=1: `a`: unknown field `a`"), "{e}");
    // A value out of range given by --set, replacing the file's value or adding a new one.
    let e = refused(dir.path(), BASE, &["search.trials=0"]);
    assert_eq!(e, "--set search.trials=0: `search.trials`: 0 is out of range: allowed 1 to 1000000");
    let e = refused(dir.path(), BASE, &["search.cv_folds=1000"]);
    assert_eq!(e, "--set search.cv_folds=1000: `search.cv_folds`: 1000 is out of range: allowed 2 to 100");
    // A value of the wrong type given by --set.
    let e = refused(dir.path(), BASE, &["search.trials=-1"]);
    assert!(e.starts_with("--set search.trials=-1: `search.trials`: "), "{e}");
    // A model parameter given by --set, in a table the file does not have.
    let e = refused(dir.path(), BASE, &["models[0].params.n_trees=0"]);
    assert!(e.starts_with("--set models[0].params.n_trees=0: `models[0].params.n_trees`: 0 is not int in"), "{e}");
    // Of two overrides, the one that wrote the key is named.
    let e = refused(dir.path(), BASE, &["search.trials=5", "search.cv_folds=1"]);
    assert!(e.starts_with("--set search.cv_folds=1: "), "{e}");
    // A malformed argument names itself.
    let e = refused(dir.path(), BASE, &["search.trials"]);
    assert_eq!(e, "--set search.trials: expected KEY=VALUE");
}

#[test]
fn file_errors_keep_their_place_when_overrides_are_given() {
    let dir = tempfile::tempdir().unwrap();
    // `--set search.cv_folds=3` adds a line inside [search], above [report]: errors about the
    // file's own keys below it still point at their lines in the file.
    let text = BASE.replace("formats = [\"json\"]", "formats = [\"json\"]\nimportance_repeat = 2");
    let set = ["search.cv_folds=3"];
    let line = text.lines().position(|l| l.starts_with("importance_repeat ")).unwrap() + 1;
    let e = refused(dir.path(), &text, &set);
    assert!(
        e.starts_with(&format!("{}:{line}:1: unknown field `importance_repeat`", dir.path().join("p.toml").display())),
        "{e}"
    );
    let text = BASE.replace("formats = [\"json\"]", "formats = [\"json\"]\nimportance_repeats = 100000");
    let e = refused(dir.path(), &text, &set);
    assert!(e.contains(&format!("p.toml:{line}:1: `report.importance_repeats`: 100000 is out of range")), "{e}");
    // A wrong type in the file: the column of the value, as without overrides.
    let text = BASE.replace("formats = [\"json\"]", "formats = [\"json\"]\nimportance_repeats = \"many\"");
    let without = refused(dir.path(), &text, &[]);
    let with = refused(dir.path(), &text, &set);
    assert!(without.contains(&format!("p.toml:{line}:22: ")), "{without}");
    assert_eq!(with, without);
    // The override that a file error does not concern leaves it at the file.
    let e = refused(dir.path(), &text, &["search.trials=4"]);
    assert!(e.contains(&format!("p.toml:{line}:22: ")), "{e}");
}

//! Helpers shared by the search-loop tests (`search.rs`, `tasks.rs`).

use promoml_pipeline::{Pipeline, RunOptions, Silent, run_with};
use promoml_report::Report;

/// Run `p`, panicking with the error's message.
pub fn run(p: &Pipeline, opts: &RunOptions) -> Report {
    run_with(p, &Silent, opts).unwrap_or_else(|e| panic!("{e}"))
}

/// The report without wall-clock figures.
pub fn numbers(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    v.as_object_mut().unwrap().remove("timing");
    for e in v["leaderboard"].as_array_mut().unwrap() {
        e.as_object_mut().unwrap().remove("fit_s");
    }
    for t in v["trials"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("seconds");
    }
    v
}

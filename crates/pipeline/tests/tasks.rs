//! Every task goes through the one search loop: uplift pairs (learner × model) get the study
//! database, `--resume` and the median pruner like supervised candidates.

mod common;

use common::{numbers, run};
use promoml_core::Registry;
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Pipeline, RunOptions, Silent, run_with};
use promoml_report::Report;
use std::path::Path;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    r
}

const UPLIFT: &str = r#"
[pipeline]
name = "uplift-loop"
task = "uplift"
seed = 5

[data]
source = "synthetic.price"
rows = 4000
arms = 1
split = { kind = "random", test_fraction = 0.3 }
target = "purchase"
treatment = { column = "promotion", control = "control" }

[uplift]
learners = ["s", "t"]
outcome = "binary"
bootstrap = 10

[[features]]
kind = "one_hot"

[[models]]
kind = "forest.random_forest"
name = "rf"
search = { n_trees = { int = [5, 20] }, max_depth = { int = [1, 10] }, min_samples_leaf = { int = [1, 200] } }

[search]
optimizer = "random"
trials = 8
cv_folds = 4
parallel_trials = 2
metric = "qini_auc"
"#;

fn pipeline(set: &[&str]) -> Pipeline {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let src = Source::from_text(Path::new("uplift-loop.toml"), UPLIFT.to_string(), &set).unwrap();
    let spec = src.parse().unwrap();
    Pipeline::from_spec(src, spec, &registry()).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn uplift_study_is_stored_and_resumed_like_a_supervised_one() {
    let dir = tempfile::tempdir().unwrap();
    let (db, log) = (dir.path().join("study.db"), dir.path().join("trials.jsonl"));
    let opts = |resume| RunOptions {
        study_db: Some(db.clone()),
        trial_log: Some(log.clone()),
        resume,
        ..RunOptions::default()
    };
    let uninterrupted = run(&pipeline(&[]), &RunOptions::default());
    let names: Vec<&str> = uninterrupted.leaderboard.iter().map(|e| e.name.as_str()).collect();
    assert!(names.contains(&"s-learner/rf") && names.contains(&"t-learner/rf"), "{names:?}");
    assert_eq!(uninterrupted.trials.len(), 2 * 8);

    // Stopped after 3 trials per pair, then continued to 8 from the study database: the first
    // 3 are replayed (not refitted), and the report is the uninterrupted run's.
    run(&pipeline(&["search.trials=3"]), &opts(false));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1 + 2 * 3, "header + 6 trials");
    let resumed = run(&pipeline(&[]), &opts(true));
    assert_eq!(numbers(&resumed), numbers(&uninterrupted));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1 + 2 * 8);

    // Another seed's study is refused.
    let e = run_with(&pipeline(&["pipeline.seed=6"]), &Silent, &opts(true)).unwrap_err().to_string();
    assert!(e.contains("seed"), "{e}");
}

#[test]
fn uplift_trials_are_pruned_by_the_median_pruner() {
    // Random search asks the same parameters whatever the results, so the pruned and the
    // unpruned study try the same trials.
    let set = ["search.trials=14", "search.pruner_startup_trials=3"];
    let unpruned = run(&pipeline(&[&set[..], &["search.pruner=\"none\""]].concat()), &RunOptions::default());
    let pruned = run(&pipeline(&set), &RunOptions::default());
    assert_eq!(unpruned.trials.len(), pruned.trials.len());
    let key = |t: &promoml_report::Trial| (t.model.clone(), t.number);
    let mut cut = 0;
    for t in &pruned.trials {
        let full = unpruned.trials.iter().find(|u| key(u) == key(t)).unwrap();
        assert_eq!(full.params, t.params);
        if t.pruned {
            cut += 1;
            // Warm-up of 2 folds, then stopped before the last; the folds it ran score alike.
            assert!(t.fold_scores.len() >= 2 && t.fold_scores.len() < 4, "{t:?}");
            assert_eq!(t.fold_scores[..], full.fold_scores[..t.fold_scores.len()]);
        } else {
            assert_eq!(t.fold_scores, full.fold_scores);
        }
    }
    assert!(cut >= 2, "the pruner stopped only {cut} of {} uplift trials", pruned.trials.len());
    // The best trial of each pair is never pruned, so the winners are the same.
    let winner = |r: &Report| r.leaderboard.iter().map(|e| (e.name.clone(), e.params.clone())).collect::<Vec<_>>();
    assert_eq!(winner(&unpruned), winner(&pruned));
}

/// `search.metric = "policy_value"` ranks uplift candidates by the value of the assignment each
/// makes under the `[policy]` on its held-out rows; the DR-learner (no outcome model of its own)
/// is scored with a control outcome model, and the final model's test `policy_value` is the
/// policy section's IPW value of the model's assignment.
#[test]
fn uplift_candidates_are_ranked_by_the_value_of_their_policy() {
    let p = pipeline(&[
        "data.arms=2",
        "uplift.learners=[\"s\", \"x\", \"dr\"]",
        "uplift.ensemble=0",
        "search.trials=2",
        "search.metric=policy_value",
        "policy.value_per_outcome={control = 40.0, discount_10 = 30.0, discount_20 = 20.0}",
        "policy.budget={max_treated_share = 0.6}",
        "policy.calibrate=false",
        "policy.true_outcome={control = \"true_p_control\", discount_10 = \"true_p_discount_10\", discount_20 = \"true_p_discount_20\"}",
    ]);
    let r = run(&p, &RunOptions::default());
    assert_eq!(r.metric, "policy_value");
    let cv: Vec<f64> = r.leaderboard.iter().map(|e| e.cv["policy_value"]).collect();
    assert_eq!(r.leaderboard.len(), 3, "{:?}", r.leaderboard.iter().map(|e| &e.name).collect::<Vec<_>>());
    assert!(cv.windows(2).all(|w| w[0] >= w[1]), "leaderboard not ranked by CV policy value: {cv:?}");
    for e in &r.leaderboard {
        assert!(e.test["policy_value"].is_finite(), "{}: {:?}", e.name, e.test);
    }
    let policy = r.policy.as_ref().expect("policy section");
    let model_row = policy.policies.iter().find(|row| row.policy.starts_with("model")).unwrap();
    let test_value = r.leaderboard[0].test["policy_value"];
    assert!((model_row.ipw.value - test_value).abs() < 1e-12, "{} vs {test_value}", model_row.ipw.value);
    assert!(policy.oracle_share_recovered.unwrap() > 0.0);
}

/// A model of effects (`forest.uplift_random_forest`) is a candidate of its own next to the
/// meta-learner pairs, searched like them, with outcome levels for the policy; as the final
/// model it is written into the artifact, which the run reloads and checks bit for bit.
#[test]
fn an_uplift_forest_is_a_candidate_of_its_own_and_reloads_from_its_artifact() {
    let text = r#"
[pipeline]
name = "uplift-forest"
task = "uplift"
seed = 3

[data]
source = "synthetic.price"
rows = 4000
arms = 2
split = { kind = "random", test_fraction = 0.3 }
target = "purchase"
treatment = { column = "promotion", control = "control" }

[uplift]
learners = ["s"]
ensemble = 0
bootstrap = 10

[policy]
value_per_outcome = { control = 40.0, discount_10 = 30.0, discount_20 = 20.0 }
budget = { max_treated_share = 0.6 }

[[features]]
kind = "one_hot"

[[models]]
kind = "forest.uplift_random_forest"
name = "urf"
params = { n_trees = 20, min_samples_leaf = 50 }
search = { criterion = { choice = ["kl", "ed", "chi"] } }

[[models]]
kind = "forest.random_forest"
name = "rf"
params = { n_trees = 20, min_samples_leaf = 50 }

[search]
optimizer = "random"
trials = 3
cv_folds = 3
metric = "qini_auc"
"#;
    let src = Source::from_text(Path::new("uplift-forest.toml"), text.to_string(), &[]).unwrap();
    let spec = src.parse().unwrap();
    let p = Pipeline::from_spec(src, spec, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&p, &RunOptions::default());
    let urf = r.leaderboard.iter().find(|e| e.name == "urf").expect("the forest is a candidate");
    assert_eq!(urf.kind, "uplift.direct(forest.uplift_random_forest)");
    assert!(r.leaderboard.iter().any(|e| e.name == "s-learner/rf"));
    assert!(!r.leaderboard.iter().any(|e| e.name.contains("learner/urf")), "no meta-learner over a model of effects");
    assert_eq!(r.trials.iter().filter(|t| t.model == "urf").count(), 3);
    assert!(urf.test["qini_auc"].is_finite() && urf.test["policy_value"].is_finite());

    // Only the forest: it is the final model, and its artifact reproduces the run.
    let dir = tempfile::tempdir().unwrap();
    let only = text.replace("[[models]]\nkind = \"forest.random_forest\"\nname = \"rf\"\nparams = { n_trees = 20, min_samples_leaf = 50 }\n", "");
    let src = Source::from_text(Path::new("uplift-forest.toml"), only, &[]).unwrap();
    let spec = src.parse().unwrap();
    let p = Pipeline::from_spec(src, spec, &registry()).unwrap_or_else(|e| panic!("{e}"));
    let req =
        promoml_pipeline::artifact::ArtifactRequest { path: dir.path().join("model.promoml"), registry: registry() };
    let r = run(&p, &RunOptions { artifact: Some(req), ..RunOptions::default() });
    assert_eq!(r.final_model, "urf");
    assert!(dir.path().join("model.promoml").exists());
}

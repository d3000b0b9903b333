//! The search loop's promises: determinism, the time budget, resume, pruning, ensembles.

mod common;

use common::{numbers, run};
use promoml_core::Registry;
use promoml_pipeline::spec::Source;
use promoml_pipeline::{Pipeline, RunOptions, Silent, run_with};
use promoml_report::Report;
use std::path::Path;
use std::time::Instant;

fn registry() -> Registry {
    let mut r = Registry::new();
    promoml_pipeline::register(&mut r);
    promoml_forest::register(&mut r);
    promoml_smartcore::register(&mut r);
    r
}

const BASE: &str = r#"
[pipeline]
name = "search-test"
task = "binary"
seed = 7

[data]
source = "synthetic.promotion"
rows = 1200
target = "purchase"
id = "customer_id"
drop = ["true_effect", "spend"]

[[clean]]
kind = "impute"

[[features]]
kind = "date_parts"
parts = ["month"]

[[features]]
kind = "standardize"

[[models]]
kind = "forest.random_forest"
name = "rf"
search = { n_trees = { int = [5, 30] }, max_depth = { int = [2, 12] } }

[[models]]
kind = "smartcore.logistic_regression"
name = "logistic"
"#;

fn pipeline(extra: &str, set: &[&str]) -> Pipeline {
    let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
    let src = Source::from_text(Path::new("search-test.toml"), format!("{BASE}{extra}"), &set).unwrap();
    let spec = src.parse().unwrap();
    Pipeline::from_spec(src, spec, &registry()).unwrap_or_else(|e| panic!("{e}"))
}

const SEARCH: &str = "\n[search]\ntrials = 8\nstartup_trials = 3\ncv_folds = 3\nparallel_trials = 3\n";

#[test]
fn same_seed_same_report() {
    let p = pipeline(&format!("{SEARCH}\n[ensemble]\nkind = \"stacking\"\n"), &[]);
    let a = run(&p, &RunOptions::default());
    let b = run(&p, &RunOptions::default());
    assert_eq!(numbers(&a), numbers(&b));
    assert_eq!(a.trials.len(), 8 + 8);
    // Another seed explores other parameters.
    let c = run(
        &pipeline(&format!("{SEARCH}\n[ensemble]\nkind = \"stacking\"\n"), &["pipeline.seed=8"]),
        &RunOptions::default(),
    );
    assert_ne!(numbers(&a)["trials"], numbers(&c)["trials"]);
}

#[test]
fn resume_replays_the_log_and_matches_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trials.jsonl");
    let full = pipeline(SEARCH, &[]);
    let uninterrupted = run(&full, &RunOptions::default());

    // An "interrupted" study: the same pipeline stopped after 5 trials per model...
    let short = pipeline(SEARCH, &["search.trials=5"]);
    run(&short, &RunOptions { trial_log: Some(log.clone()), resume: false, ..Default::default() });
    let logged = std::fs::read_to_string(&log).unwrap().lines().count();
    assert_eq!(logged, 1 + 2 * 5, "header + 10 trials");
    // ...then continued to 8: the first 5 are replayed, 3 more are run.
    let resumed = run(&full, &RunOptions { trial_log: Some(log.clone()), resume: true, ..Default::default() });
    assert_eq!(numbers(&resumed), numbers(&uninterrupted));
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 1 + 2 * 8);

    // A log from another seed is refused, naming the file.
    let other = pipeline(SEARCH, &["pipeline.seed=9"]);
    let e = run_with(&other, &Silent, &RunOptions { trial_log: Some(log.clone()), resume: true, ..Default::default() })
        .unwrap_err();
    assert!(e.to_string().contains("trials.jsonl") && e.to_string().contains("seed 7"), "{e}");
}

#[test]
fn resumed_best_trial_gets_the_same_ensemble() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trials.jsonl");
    let extra = format!("{SEARCH}\n[ensemble]\nkind = \"greedy\"\nsize = 10\n");
    let p = pipeline(&extra, &[]);
    let first = run(&p, &RunOptions { trial_log: Some(log.clone()), resume: false, ..Default::default() });
    // Everything replayed: no trial is refitted, out-of-fold predictions are recomputed.
    let again = run(&p, &RunOptions { trial_log: Some(log), resume: true, ..Default::default() });
    assert_eq!(numbers(&first), numbers(&again));
    assert!(first.ensemble.is_some());
}

#[test]
fn time_budget_is_kept_including_refit_and_ensemble() {
    // Far more trials than fit in 6 s: the budget, not the trial count, ends the search.
    let p = pipeline(
        "\n[search]\ntrials = 100000\ncv_folds = 3\ntime_budget_s = 6.0\n\n[ensemble]\nkind = \"stacking\"\n",
        &[],
    );
    let t = Instant::now();
    let r = run(&p, &RunOptions::default());
    let took = t.elapsed().as_secs_f64();
    assert!(took <= 6.0 * 1.05, "run took {took:.2} s for a 6 s budget");
    assert!(r.timing.total_s <= 6.0 * 1.05);
    // Both candidates got trials (the budget is shared, not spent on the first), and the budget,
    // not the trial count, ended the search.
    for name in ["rf", "logistic"] {
        assert!(r.trials.iter().any(|t| t.model == name && t.score.is_some()), "{name}");
    }
    assert!(r.trials.iter().filter(|t| t.score.is_some()).count() >= 4);
    assert!(r.leaderboard.iter().any(|e| e.name == "ensemble"));
}

#[test]
fn median_pruning_never_prunes_the_best_trial() {
    // Random search asks the same parameters whatever the results, so the pruned and the
    // unpruned study try the same trials.
    // Depth matters a lot on this data, so good and bad trials differ by more than fold noise.
    let search = "\n[search]\noptimizer = \"random\"\ntrials = 16\ncv_folds = 4\nparallel_trials = 2\n";
    let set = ["data.rows=3000", "models[0].search.max_depth.int=[1, 12]"];
    let unpruned = run(&pipeline(search, &[&set[..], &["search.pruner=\"none\""]].concat()), &RunOptions::default());
    let pruned = run(&pipeline(search, &set), &RunOptions::default());
    let rf = |r: &Report| r.trials.iter().filter(|t| t.model == "rf").cloned().collect::<Vec<_>>();
    let (full, cut) = (rf(&unpruned), rf(&pruned));
    assert_eq!(full.len(), cut.len());
    for (a, b) in full.iter().zip(&cut) {
        assert_eq!(a.params, b.params);
    }
    let best = full.iter().max_by(|a, b| a.score.unwrap().total_cmp(&b.score.unwrap())).unwrap();
    let best_cut = cut.iter().find(|t| t.number == best.number).unwrap();
    assert!(!best_cut.pruned, "the best trial ({}) was pruned", best.number);
    assert_eq!(best_cut.score, best.score);
    let n_pruned = cut.iter().filter(|t| t.pruned).count();
    assert!(n_pruned >= 2, "the pruner stopped only {n_pruned} of 16 trials");
    for t in cut.iter().filter(|t| t.pruned) {
        assert!(t.fold_scores.len() >= 2 && t.fold_scores.len() < 4, "warm-up of 2 folds, then pruned");
    }
    // Same winner either way.
    let winner = |r: &Report| r.leaderboard.iter().find(|e| e.name == "rf").unwrap().params.clone();
    assert_eq!(winner(&unpruned), winner(&pruned));
}

#[test]
fn ensemble_is_on_the_leaderboard_with_nested_cv_and_weights() {
    for kind in ["stacking", "greedy"] {
        let p = pipeline(&format!("{SEARCH}\n[ensemble]\nkind = \"{kind}\"\n"), &["search.trials=3"]);
        let r = run(&p, &RunOptions::default());
        let e = r.leaderboard.iter().find(|e| e.name == "ensemble").expect("ensemble entry");
        assert_eq!(e.kind, format!("ensemble.{kind}"));
        assert!(e.cv.contains_key("roc_auc") && e.test.contains_key("roc_auc"));
        let s = r.ensemble.as_ref().unwrap();
        assert_eq!(s.members.len(), 2);
        assert!(s.members.iter().all(|m| m.weight >= 0.0));
        assert!(s.members.iter().any(|m| m.weight > 0.0));
    }
}

#[test]
fn two_layer_stack_refits_the_best_models_on_layer_one_predictions() {
    let extra = format!("{SEARCH}\n[ensemble]\nkind = \"stacking\"\nlayers = 2\nlayer2_models = 2\n");
    let p = pipeline(&extra, &["search.trials=3"]);
    let r = run(&p, &RunOptions::default());
    let s = r.ensemble.as_ref().unwrap();
    assert_eq!(s.layers, 2);
    let names: Vec<&str> = s.members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert!(names.iter().all(|n| n.ends_with("(layer 2)")), "{names:?}");
    let e = r.leaderboard.iter().find(|e| e.name == "ensemble").unwrap();
    assert!(e.test["roc_auc"] > 0.6, "{:?}", e.test);
    // Deterministic like everything else.
    assert_eq!(numbers(&r), numbers(&run(&p, &RunOptions::default())));
}

#[test]
fn conditional_parameters_declared_in_toml_are_searched_only_when_active() {
    // `sample_fraction` is searched only for bootstrapped forests.
    let extra = "\n[search]\noptimizer = \"random\"\ntrials = 12\ncv_folds = 3\n";
    let set = [
        "models[0].search.bootstrap.choice=[true, false]",
        "models[0].search.sample_fraction.float=[0.3, 0.9]",
        "models[0].search.sample_fraction.when.bootstrap=true",
    ];
    let r = run(&pipeline(extra, &set), &RunOptions::default());
    let rf: Vec<_> = r.trials.iter().filter(|t| t.model == "rf" && t.number > 0).collect();
    let on = rf.iter().filter(|t| t.params["bootstrap"] == serde_json::json!(true)).count();
    assert!(on > 0 && on < rf.len(), "both branches sampled");
    for t in rf {
        let f = t.params.get("sample_fraction").and_then(|v| v.as_f64());
        if t.params["bootstrap"] == serde_json::json!(true) {
            assert!(f.is_some_and(|f| (0.3..=0.9).contains(&f)), "{:?}", t.params);
        } else {
            assert!(f.is_none_or(|f| f == 1.0), "inactive parameter left at its default: {:?}", t.params);
        }
    }
    // A condition on an unknown parameter is refused at its key.
    let text = format!("{BASE}\n[search]\ntrials = 2\n");
    let bad = [
        "models[0].search.max_depth.int=[2, 5]".to_string(),
        "models[0].search.max_depth.when.bootstrapp=true".to_string(),
    ];
    let src = Source::from_text(Path::new("p.toml"), text, &bad).unwrap();
    let e = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).err().unwrap().to_string();
    assert!(e.contains("models[0].search.max_depth.when") && e.contains("bootstrapp"), "{e}");
}

#[test]
fn bad_ensemble_settings_are_located() {
    let set: Vec<String> = vec![];
    let text = format!("{BASE}\n[ensemble]\nkind = \"stack\"\n");
    let src = Source::from_text(Path::new("p.toml"), text, &set).unwrap();
    let e = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).err().unwrap().to_string();
    assert!(e.contains("ensemble.kind") && e.contains("did you mean `stacking`"), "{e}");
    let text = format!("{BASE}\n[ensemble]\nkind = \"greedy\"\nl2 = 0.1\n");
    let src = Source::from_text(Path::new("p.toml"), text, &set).unwrap();
    let e = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).err().unwrap().to_string();
    assert!(e.contains("ensemble.l2"), "{e}");
    let text = format!("{BASE}\n[search]\npruner = \"hyperband\"\n");
    let src = Source::from_text(Path::new("p.toml"), text, &set).unwrap();
    let e = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).err().unwrap().to_string();
    assert!(e.contains("search.pruner") && e.contains("median"), "{e}");
}

#[test]
fn final_model_gets_permutation_importance_on_the_test_rows() {
    let p = pipeline(&format!("{SEARCH}\n[ensemble]\nkind = \"stacking\"\n"), &["search.trials=2"]);
    let r = run(&p, &RunOptions::default());
    let fi = r.feature_importance.as_ref().expect("permutation importance by default");
    assert_eq!(fi.model, r.final_model);
    assert_eq!(fi.metric, r.metric);
    assert_eq!(fi.repeats, 5);
    assert_eq!(fi.features.len(), r.data.features, "one entry per prepared feature");
    assert!(fi.features.windows(2).all(|w| w[0].importance >= w[1].importance), "most important first");
    // The synthetic purchase depends on the features: shuffling the top one must cost AUC.
    assert!(fi.features[0].importance > 0.005, "{:?}", fi.features[0]);
    assert!(r.timing.importance_s > 0.0);
    let p = pipeline(SEARCH, &["search.trials=1", "report.importance_repeats=0"]);
    assert!(run(&p, &RunOptions::default()).feature_importance.is_none());
}

#[test]
fn unknown_device_is_located() {
    let set = vec!["pipeline.device=\"gpu0\"".to_string()];
    let src = Source::from_text(Path::new("p.toml"), BASE.to_string(), &set).unwrap();
    let e = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).err().unwrap().to_string();
    assert!(e.contains("pipeline.device") && e.contains("cuda:N"), "{e}");
    let set = vec!["pipeline.device=\"cuda:1\"".to_string()];
    let src = Source::from_text(Path::new("p.toml"), BASE.to_string(), &set).unwrap();
    let p = Pipeline::from_spec(src.clone(), src.parse().unwrap(), &registry()).unwrap();
    assert_eq!(p.fit_context(3).device, promoml_core::Device::Cuda(1));
}

//! The shared study stores keep the same promises on SQLite and on a real PostgreSQL server:
//! concurrent claims never hand a trial out twice, a trial whose worker stopped beating is
//! handed to another worker (and the first worker's late result is dropped), heartbeats keep a
//! live worker's trial, and a worker with another fingerprint is refused, naming what differs.
//!
//! PostgreSQL: set `PROMOML_TEST_POSTGRES=postgresql://USER@HOST:PORT/DB` (`.ci/run` starts a
//! throw-away cluster and sets it). Without it these tests fail, unless
//! `PROMOML_SKIP_POSTGRES=1` says that skipping them is intended.

use promoml_pipeline::study::open_store;
use promoml_pipeline::study::shared::{Budget, ClaimView, Decision, TrialState, join_study};
use promoml_pipeline::study::{StudyHeader, TRIAL_LOG_VERSION, TrialRecord, score_settings};
use promoml_report::Trial;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Store URLs to test: a fresh SQLite file, and PostgreSQL when configured.
fn stores(dir: &tempfile::TempDir) -> Vec<String> {
    let mut v = vec![format!("sqlite:{}", dir.path().join("study.db").display())];
    v.extend(promoml_core::testing::postgres_url());
    v
}

/// A header for a pipeline name unique to this test process and case (studies of one PostgreSQL
/// database are shared by every test).
fn header(case: &str, cv_folds: u32, data: &str) -> StudyHeader {
    let nonce = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    StudyHeader {
        trial_log_version: TRIAL_LOG_VERSION,
        pipeline: format!("{case}-{}-{nonce}", std::process::id()),
        seed: 7,
        promoml_version: "0.1.0".into(),
        data_sha256: data.repeat(32),
        settings: score_settings(&format!("[search]\ncv_folds = {cv_folds}\n[[models]]\nkind = \"m\"\n")).unwrap(),
    }
}

fn budget(models: &[(&str, usize)]) -> Budget {
    Budget { trials: models.iter().map(|(m, n)| (m.to_string(), *n)).collect(), folds: 3, ..Budget::default() }
}

/// The next trial of the model with the fewest, while the budget allows; waiting trials first.
fn next_trial(view: &ClaimView<'_>) -> promoml_core::Result<Decision> {
    if let Some(t) = view.trials.iter().find(|t| t.state == TrialState::Waiting) {
        return Ok(Decision::TakeOver { model: t.model.clone(), number: t.number });
    }
    let mut counts: BTreeMap<&str, usize> = view.budget.trials.keys().map(|m| (m.as_str(), 0)).collect();
    for t in view.trials {
        *counts.entry(&t.model).or_default() += 1;
    }
    let pick = counts.iter().filter(|(m, n)| **n < view.budget.trials[**m]).min_by_key(|(m, n)| (**n, **m));
    Ok(match pick {
        Some((m, n)) => Decision::New {
            model: m.to_string(),
            number: *n,
            params: [("x".to_string(), serde_json::json!(*n as f64 / 10.0))].into_iter().collect(),
        },
        None => Decision::Nothing,
    })
}

fn record(model: &str, number: usize, worker: &str) -> TrialRecord {
    TrialRecord {
        trial: Trial {
            model: model.into(),
            number,
            params: [
                ("x".to_string(), serde_json::json!(number as f64 / 10.0)),
                ("by".to_string(), serde_json::json!(worker)),
            ]
            .into_iter()
            .collect(),
            fold_scores: vec![0.5, 0.7],
            score: Some(0.6),
            seconds: 0.01,
            error: None,
            pruned: false,
        },
        cv: [("roc_auc".to_string(), 0.6)].into_iter().collect(),
    }
}

#[test]
fn concurrent_claims_hand_out_every_trial_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    for url in stores(&dir) {
        let h = header("race", 3, "ab");
        let b = budget(&[("a", 40), ("b", 35)]);
        let study = open_store(&url).unwrap().create_study(&h, &b).unwrap();
        // Every thread connects first, then all start claiming at once.
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let (url, start) = (url.clone(), start.clone());
                std::thread::spawn(move || {
                    let mut store = open_store(&url).unwrap();
                    start.wait();
                    let me = format!("w{w}");
                    let mut done = Vec::new();
                    while let Some(t) = store.claim(study, &me, 60.0, &mut next_trial).unwrap() {
                        assert!(store.finish(study, &me, &record(&t.model, t.number, &me)).unwrap());
                        done.push((t.model, t.number));
                    }
                    done
                })
            })
            .collect();
        let per_worker: Vec<Vec<(String, usize)>> = workers.into_iter().map(|h| h.join().unwrap()).collect();
        let all: Vec<&(String, usize)> = per_worker.iter().flatten().collect();
        let unique: BTreeSet<&(String, usize)> = all.iter().copied().collect();
        assert_eq!(all.len(), 75, "{url}: every trial of the budget claimed");
        assert_eq!(unique.len(), 75, "{url}: no trial claimed twice");
        let stored = open_store(&url).unwrap().trials(study).unwrap();
        assert_eq!(stored.len(), 75);
        assert!(stored.iter().all(|t| t.state == TrialState::Complete && t.attempts == 1), "{url}");
        for (m, n) in [("a", 40), ("b", 35)] {
            let numbers: BTreeSet<usize> = stored.iter().filter(|t| t.model == m).map(|t| t.number).collect();
            assert_eq!(numbers, (0..n).collect(), "{url}: numbers of {m} are 0..{n}");
        }
    }
}

#[test]
fn a_trial_whose_worker_stopped_beating_is_handed_over_once() {
    let dir = tempfile::tempdir().unwrap();
    for url in stores(&dir) {
        let h = header("stale", 3, "ab");
        let mut store = open_store(&url).unwrap();
        let study = store.create_study(&h, &budget(&[("a", 3)])).unwrap();
        // A claims trial 0 and dies (no heartbeat).
        let dead = store.claim(study, "dead", 60.0, &mut next_trial).unwrap().unwrap();
        assert_eq!((dead.model.as_str(), dead.number), ("a", 0));
        // B beats for trial 1.
        let live = store.claim(study, "live", 60.0, &mut next_trial).unwrap().unwrap();
        assert_eq!(live.number, 1);
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(store.heartbeat(study, "live").unwrap(), 1);
        // C claims with a 0.5 s grace: trial 0 is stale and handed over, trial 1 is not.
        let mut other = open_store(&url).unwrap();
        let taken = other.claim(study, "taker", 0.5, &mut next_trial).unwrap().unwrap();
        assert_eq!((taken.number, taken.attempts), (0, 2), "{url}: the dead worker's trial, second attempt");
        assert_eq!(taken.params, dead.params, "{url}: same parameters");
        let t0 = other.trials(study).unwrap().into_iter().find(|t| t.number == 0).unwrap();
        assert!(t0.note.as_deref().unwrap_or("").contains("dead"), "{url}: the note names the worker: {:?}", t0.note);
        // The dead worker comes back: its result is dropped; the taker's is stored.
        assert!(!store.finish(study, "dead", &record("a", 0, "dead")).unwrap(), "{url}");
        assert!(other.finish(study, "taker", &record("a", 0, "taker")).unwrap(), "{url}");
        assert!(store.finish(study, "live", &record("a", 1, "live")).unwrap(), "{url}");
        // The next claim is a new trial; the live worker's trial was never taken.
        let next = other.claim(study, "taker", 0.5, &mut next_trial).unwrap().unwrap();
        assert_eq!((next.number, next.attempts), (2, 1), "{url}");
        let stored = other.trials(study).unwrap();
        let t0 = stored.iter().find(|t| t.number == 0).unwrap();
        assert_eq!((t0.state, t0.worker.as_deref(), t0.attempts), (TrialState::Complete, Some("taker"), 2), "{url}");
        let t1 = stored.iter().find(|t| t.number == 1).unwrap();
        assert_eq!((t1.worker.as_deref(), t1.attempts), (Some("live"), 1), "{url}");
        // An interrupted worker hands its trial back at once.
        other.release(study, "taker").unwrap();
        let back = store.claim(study, "live", 60.0, &mut next_trial).unwrap().unwrap();
        assert_eq!((back.number, back.attempts), (2, 2), "{url}");
    }
}

#[test]
fn a_worker_with_another_fingerprint_is_refused_naming_what_differs() {
    let dir = tempfile::tempdir().unwrap();
    for url in stores(&dir) {
        let h = header("refuse", 3, "ab");
        let mut store = open_store(&url).unwrap();
        let id = store.create_study(&h, &budget(&[("a", 3)])).unwrap();
        let same = join_study(store.as_mut(), &h, Duration::from_secs(5)).unwrap();
        assert_eq!(same.id, id);
        let other = StudyHeader { data_sha256: "cd".repeat(32), ..header("x", 2, "ab") };
        let other = StudyHeader { pipeline: h.pipeline.clone(), ..other };
        let e = join_study(store.as_mut(), &other, Duration::from_secs(5)).err().unwrap().to_string();
        for want in ["search.cv_folds: 3 -> 2", "data's content", &format!("study {id}")] {
            assert!(e.contains(want), "{url}: `{want}` in {e}");
        }
        // No study of the pipeline at all: an error after the wait, naming the leader's command.
        let none = header("nobody", 3, "ab");
        let e = join_study(store.as_mut(), &none, Duration::from_millis(300)).err().unwrap().to_string();
        assert!(e.contains("promoml run") && e.contains("--storage"), "{url}: {e}");
        // A finished study is not joined.
        store.set_study_state(id, "finished").unwrap();
        assert!(join_study(store.as_mut(), &h, Duration::from_millis(300)).is_err(), "{url}");
    }
}

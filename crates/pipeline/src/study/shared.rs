//! Studies shared by processes on one or many machines, as Optuna's RDB storage: every process
//! (the `run` leader and any number of `promoml worker`s) claims trials from one database, in a
//! transaction, evaluates them and stores the result.
//!
//! * **Claims.** [`SharedStore::claim`] locks the study, fails the running trials whose worker
//!   stopped beating, shows every trial to a decision function (the search loop's sampler), and
//!   inserts or takes over the trial it chose, all in one transaction: no trial is evaluated by
//!   two workers at once, and no trial number is given twice.
//! * **Heartbeats.** A process beats for its running trials every few seconds
//!   ([`SharedStore::heartbeat`]). A running trial whose last beat is older than the grace period
//!   is set back to [`TrialState::Waiting`] (its attempt noted) and handed to the next claimer
//!   with the same parameters, as Optuna's `fail_stale_trials` plus a retry.
//! * **Exactly once.** [`SharedStore::finish`] stores a result only while the trial is still
//!   running under the same worker: a worker that was taken for dead and comes back has its
//!   result dropped, so each trial is reported once.
//! * **Fingerprints.** A study is keyed by its [`StudyHeader`]: a worker joins only a study whose
//!   header equals its own, and is told what differs otherwise ([`join_study`]).
//!
//! Backends: [`crate::study::sqlite::SqliteStore`] (one machine, several processes) and
//! [`crate::study::postgres::PostgresStore`] (many machines), chosen by URL in [`super::open_store`].

use super::{StudyHeader, TrialRecord};
use promoml_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Where a trial of a shared study stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Claimed by a worker that is evaluating it.
    Running,
    /// Its worker stopped beating; the next claimer takes it over with the same parameters.
    Waiting,
    /// Finished with a score on every fold.
    Complete,
    /// Stopped early by the pruner (a score on the folds that ran).
    Pruned,
    /// Finished with an error.
    Failed,
}

impl TrialState {
    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Waiting => "waiting",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
        }
    }

    /// Parse a stored name.
    pub fn parse(s: &str) -> Result<TrialState> {
        Ok(match s {
            "running" => TrialState::Running,
            "waiting" => TrialState::Waiting,
            "complete" => TrialState::Complete,
            "pruned" => TrialState::Pruned,
            "failed" => TrialState::Failed,
            other => return Err(Error::data(format!("study storage: unknown trial state `{other}`"))),
        })
    }

    /// Whether the trial has a stored result.
    pub fn finished(self) -> bool {
        matches!(self, TrialState::Complete | TrialState::Pruned | TrialState::Failed)
    }

    /// The state a finished record is stored with.
    pub fn of(record: &TrialRecord) -> TrialState {
        if record.trial.error.is_some() {
            TrialState::Failed
        } else if record.trial.pruned {
            TrialState::Pruned
        } else {
            TrialState::Complete
        }
    }
}

/// One trial of a shared study as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedTrial {
    /// Candidate (leaderboard) name.
    pub model: String,
    /// Trial number within the candidate.
    pub number: usize,
    /// Where it stands.
    pub state: TrialState,
    /// Its parameters, as JSON values.
    pub params: BTreeMap<String, Value>,
    /// The result, once finished.
    pub record: Option<TrialRecord>,
    /// The worker that holds (or finished) it.
    pub worker: Option<String>,
    /// How many times it was started (more than 1 after a takeover).
    pub attempts: u32,
    /// Unix time of the last heartbeat (or of the claim).
    pub heartbeat: Option<f64>,
    /// What happened to earlier attempts (e.g. a worker that stopped beating).
    pub note: Option<String>,
}

/// What the leader decided about a study's size and time, read by every worker: a worker
/// evaluates trials until this budget is spent, whatever its own `--set` said.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// Trials per candidate.
    pub trials: BTreeMap<String, usize>,
    /// Unix time after which no trial may end (the leader's start plus its time budget).
    pub deadline_unix: Option<f64>,
    /// Seconds the leader keeps free after the search (ensemble) on top of refits.
    pub reserve_s: f64,
    /// Candidates refitted again in a second stacking layer.
    pub layer2_models: usize,
    /// Cross-validation folds.
    pub folds: usize,
}

/// A study in a shared store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StudyRow {
    /// Its id in the store.
    pub id: i64,
    /// Pipeline name.
    pub pipeline: String,
    /// SHA-256 of its header ([`fingerprint`]).
    pub fingerprint: String,
    /// Everything that decides its scores.
    pub header: StudyHeader,
    /// Size and time.
    pub budget: Budget,
    /// `running` while trials may be claimed, `finished` once the leader reported.
    pub state: String,
    /// Unix time it was created.
    pub created: f64,
    /// Trials stored (any state).
    pub n_trials: usize,
    /// Trials finished.
    pub n_finished: usize,
}

/// What a claimer sees inside the claim transaction.
pub struct ClaimView<'a> {
    /// Every trial of the study (stale ones already set back to waiting).
    pub trials: &'a [SharedTrial],
    /// The store's clock (unix seconds): the database server's for PostgreSQL.
    pub now: f64,
    /// The study's budget.
    pub budget: &'a Budget,
}

/// The claimer's choice.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Start a new trial with these parameters.
    New {
        /// Candidate name.
        model: String,
        /// Its number (the candidate's count of trials so far).
        number: usize,
        /// Parameters.
        params: BTreeMap<String, Value>,
    },
    /// Take over a waiting trial (same parameters).
    TakeOver {
        /// Candidate name.
        model: String,
        /// Trial number.
        number: usize,
    },
    /// Nothing to claim now.
    Nothing,
}

/// A database holding shared studies.
pub trait SharedStore: Send {
    /// Create a study for `header` with `budget`; returns its id.
    fn create_study(&mut self, header: &StudyHeader, budget: &Budget) -> Result<i64>;
    /// Replace a study's budget and set it running again (a resumed leader).
    fn reopen_study(&mut self, study: i64, budget: &Budget) -> Result<()>;
    /// Every study, newest first.
    fn studies(&mut self) -> Result<Vec<StudyRow>>;
    /// In one transaction that holds the study's lock: set running trials whose heartbeat is
    /// older than `grace_s` back to waiting, show every trial to `decide`, and start what it
    /// chose under `worker`. Returns the claimed trial.
    fn claim(
        &mut self,
        study: i64,
        worker: &str,
        grace_s: f64,
        decide: &mut dyn FnMut(&ClaimView<'_>) -> Result<Decision>,
    ) -> Result<Option<SharedTrial>>;
    /// Store the result of a trial `worker` holds. `false` (nothing stored) when the trial is no
    /// longer running under `worker` (it was taken for dead and handed over).
    fn finish(&mut self, study: i64, worker: &str, record: &TrialRecord) -> Result<bool>;
    /// Beat for every trial `worker` runs (also those of its claimers `worker/N`); returns how
    /// many.
    fn heartbeat(&mut self, study: i64, worker: &str) -> Result<usize>;
    /// Hand `worker`'s running trials (and its claimers' `worker/N`) back at once (an
    /// interrupted worker).
    fn release(&mut self, study: i64, worker: &str) -> Result<()>;
    /// Every trial of a study, by model and number.
    fn trials(&mut self, study: i64) -> Result<Vec<SharedTrial>>;
    /// Mark a study `finished` (or `running`).
    fn set_study_state(&mut self, study: i64, state: &str) -> Result<()>;
}

impl SharedTrial {
    /// A trial just started by `worker` at `now` (attempt 1).
    pub fn started(
        model: String,
        number: usize,
        params: BTreeMap<String, Value>,
        worker: &str,
        now: f64,
    ) -> SharedTrial {
        SharedTrial {
            model,
            number,
            state: TrialState::Running,
            params,
            record: None,
            worker: Some(worker.to_string()),
            attempts: 1,
            heartbeat: Some(now),
            note: None,
        }
    }

    /// This waiting trial, taken over by `worker` at `now` (one attempt more).
    pub fn taken_over(self, worker: &str, now: f64) -> SharedTrial {
        SharedTrial {
            state: TrialState::Running,
            worker: Some(worker.to_string()),
            attempts: self.attempts + 1,
            heartbeat: Some(now),
            ..self
        }
    }
}

/// SHA-256 of a header's JSON: the key that a worker's study must match.
pub fn fingerprint(header: &StudyHeader) -> String {
    use sha2::{Digest, Sha256};
    let json = serde_json::to_string(header).unwrap_or_default();
    Sha256::digest(json.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The study a worker joins: the newest running study whose header equals `header`. A running
/// study of the same pipeline with another header is refused, naming what differs; with no
/// study of the pipeline yet, waits up to `wait` for a leader to create one.
pub fn join_study(store: &mut dyn SharedStore, header: &StudyHeader, wait: Duration) -> Result<StudyRow> {
    let want = fingerprint(header);
    let started = Instant::now();
    loop {
        let studies = store.studies()?;
        let same_pipeline: Vec<&StudyRow> =
            studies.iter().filter(|s| s.pipeline == header.pipeline && s.state == "running").collect();
        if let Some(s) = same_pipeline.iter().find(|s| s.fingerprint == want) {
            return Ok((*s).clone());
        }
        if let Some(s) = same_pipeline.first() {
            let mut diff = s.header.differences(header);
            if s.header.seed != header.seed {
                diff.insert(0, format!("seed {} -> {}", s.header.seed, header.seed));
            }
            if diff.is_empty() {
                diff.push("the trial-log format version".into());
            }
            return Err(Error::data(format!(
                "the running study {} of pipeline `{}` was started with other data or settings, so this worker's scores would not belong to it; differs: {}. Start the worker with the leader's pipeline, --set options and data",
                s.id,
                header.pipeline,
                diff.join("; ")
            )));
        }
        if started.elapsed() >= wait {
            let finished = studies.iter().filter(|s| s.pipeline == header.pipeline).count();
            return Err(Error::data(format!(
                "no running study of pipeline `{}` in the storage after waiting {} s ({finished} finished one(s)); start the leader first: promoml run PIPELINE --out DIR --storage URL",
                header.pipeline,
                wait.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Unix time now, from this machine's clock.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// A stored JSON column back to a value, naming the study and column on failure.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::data(format!("study storage: cannot read {what}: {e}")))
}

/// A value as stored JSON.
pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::data(format!("study storage: {e}")))
}

/// The note left on a trial whose worker stopped beating.
pub(crate) fn stale_note(previous: Option<&str>, worker: Option<&str>, last_beat: Option<f64>, now: f64) -> String {
    let line = format!(
        "attempt by {} failed: no heartbeat for {:.0} s; handed to another worker",
        worker.unwrap_or("an unknown worker"),
        last_beat.map_or(0.0, |b| now - b)
    );
    match previous {
        Some(p) if !p.is_empty() => format!("{p}\n{line}"),
        _ => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("postgresql://u:secret@h:5432/db"), "postgresql://u:***@h:5432/db");
        assert_eq!(redact("postgresql://u@h:5432/db"), "postgresql://u@h:5432/db");
        assert_eq!(redact("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
    }

    #[test]
    fn unknown_storage_urls_are_refused_naming_the_forms() {
        let e = crate::study::open_store("mysql://x/y").err().unwrap().to_string();
        assert!(e.contains("mysql://x/y") && e.contains("postgresql://") && e.contains("sqlite:"), "{e}");
    }
}

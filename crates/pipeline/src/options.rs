//! Options of a run or a worker that are not part of the pipeline file.

use promoml_report::Trial;
use std::path::PathBuf;

/// Options of one run that are not part of the pipeline file.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Write every trial to this JSON-lines file as it finishes.
    pub trial_log: Option<PathBuf>,
    /// Continue the study in `trial_log` instead of starting a new one: logged trials are
    /// replayed, not refitted.
    pub resume: bool,
    /// Write the fitted preparation and final model as a model artifact.
    pub artifact: Option<crate::artifact::ArtifactRequest>,
    /// The run's study database (SQLite, e.g. `OUT/study.db`): every trial is committed there
    /// as it finishes, and `--resume` continues from it. The trial log is then its export.
    pub study_db: Option<PathBuf>,
    /// Share the study with `promoml worker`s through a database (`--storage URL`).
    pub shared: Option<SharedOptions>,
}

/// How a process takes part in a study shared through a database.
#[derive(Debug, Clone)]
pub struct SharedOptions {
    /// `postgresql://USER@HOST:PORT/DB` or `sqlite:PATH`.
    pub url: String,
    /// How often running trials beat (seconds).
    pub heartbeat: std::time::Duration,
    /// A running trial whose last beat is older than this is handed to another worker.
    pub grace: std::time::Duration,
    /// A worker waits this long for the leader to create the study.
    pub wait: std::time::Duration,
}

impl SharedOptions {
    /// Defaults for `url`: beat every 2 s, hand over after 20 s without a beat, wait 120 s for
    /// a leader.
    pub fn new(url: &str) -> SharedOptions {
        SharedOptions {
            url: url.to_string(),
            heartbeat: std::time::Duration::from_secs(2),
            grace: std::time::Duration::from_secs(20),
            wait: std::time::Duration::from_secs(120),
        }
    }
}

/// What a `promoml worker` did.
#[derive(Debug, Clone)]
pub struct WorkSummary {
    /// The study it joined.
    pub study: i64,
    /// The trials it finished (stored in the study).
    pub trials: Vec<Trial>,
}

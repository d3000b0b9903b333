//! Where a study's trials are kept. The search loop appends every finished trial to a
//! [`StudyStorage`]; `--resume` reads them back and replays them instead of refitting.
//!
//! [`JsonlStorage`] (one JSON object per line, the first line a header naming the pipeline and
//! seed) is the default; [`MemoryStorage`] keeps nothing on disk. A shared database (SQLite,
//! PostgreSQL) fits behind the same trait so that workers on many machines share one study.

use promoml_core::{Error, Result};
use promoml_report::{Scores, Trial};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Version of the trial-log format; a log with another version is refused.
pub const TRIAL_LOG_VERSION: u32 = 1;

/// One finished trial as stored: the report's [`Trial`] plus the mean of every metric over its
/// folds, so that a replayed best trial reports the same cross-validation figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// The trial as reported.
    #[serde(flatten)]
    pub trial: Trial,
    /// Mean of every metric over the folds that ran.
    #[serde(default)]
    pub cv: Scores,
}

/// What a study belongs to; a log written for another pipeline or seed is refused on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyHeader {
    /// Trial-log format version ([`TRIAL_LOG_VERSION`]).
    pub trial_log_version: u32,
    /// Pipeline name.
    pub pipeline: String,
    /// Seed of the run.
    pub seed: u64,
}

/// Storage of a study's trials.
pub trait StudyStorage: Send {
    /// Every trial stored so far, in the order they were appended.
    fn trials(&self) -> Result<Vec<TrialRecord>>;
    /// Store one finished trial (durably, before the search goes on).
    fn append(&mut self, record: &TrialRecord) -> Result<()>;
}

/// A study kept in memory only (nothing to resume from).
#[derive(Debug, Default)]
pub struct MemoryStorage {
    records: Vec<TrialRecord>,
}

impl StudyStorage for MemoryStorage {
    fn trials(&self) -> Result<Vec<TrialRecord>> {
        Ok(self.records.clone())
    }
    fn append(&mut self, record: &TrialRecord) -> Result<()> {
        self.records.push(record.clone());
        Ok(())
    }
}

/// A study in a JSON-lines file: a header line, then one trial per line, flushed after each.
pub struct JsonlStorage {
    path: PathBuf,
    records: Vec<TrialRecord>,
    file: std::fs::File,
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Io { path: path.to_path_buf(), source: e }
}

impl JsonlStorage {
    /// Start a new log at `path` (an existing file is replaced).
    pub fn create(path: &Path, header: &StudyHeader) -> Result<JsonlStorage> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let mut file = std::fs::File::create(path).map_err(|e| io(path, e))?;
        let line = serde_json::to_string(header).map_err(|e| Error::data(e.to_string()))?;
        writeln!(file, "{line}").map_err(|e| io(path, e))?;
        file.flush().map_err(|e| io(path, e))?;
        Ok(JsonlStorage { path: path.to_path_buf(), records: Vec::new(), file })
    }

    /// Open an existing log to continue its study. The header must match `header`; a torn
    /// last line (a run killed while writing) is dropped, any other bad line is an error
    /// naming the file and line.
    pub fn resume(path: &Path, header: &StudyHeader) -> Result<JsonlStorage> {
        let f = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let lines: Vec<String> = BufReader::new(f).lines().collect::<std::io::Result<_>>().map_err(|e| io(path, e))?;
        let bad = |line: usize, msg: String| Error::data(format!("{}:{line}: {msg}", path.display()));
        let first = lines.first().ok_or_else(|| bad(1, "the trial log is empty (no header line)".into()))?;
        let found: StudyHeader =
            serde_json::from_str(first).map_err(|e| bad(1, format!("not a promoml trial-log header: {e}")))?;
        if found.trial_log_version != header.trial_log_version {
            return Err(bad(
                1,
                format!(
                    "trial-log format version {} is not the supported version {}",
                    found.trial_log_version, header.trial_log_version
                ),
            ));
        }
        if found.pipeline != header.pipeline || found.seed != header.seed {
            return Err(bad(
                1,
                format!(
                    "the log belongs to pipeline `{}` with seed {}, not `{}` with seed {}",
                    found.pipeline, found.seed, header.pipeline, header.seed
                ),
            ));
        }
        let mut records = Vec::new();
        let last = lines.len() - 1;
        for (i, line) in lines.iter().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<TrialRecord>(line) {
                Ok(r) => records.push(r),
                Err(_) if i == last => {
                    tracing::warn!("{}:{}: dropping a torn last line", path.display(), i + 1);
                }
                Err(e) => return Err(bad(i + 1, format!("not a trial record: {e}"))),
            }
        }
        // Rewrite the log without a torn line, then append to it.
        let mut file = std::fs::File::create(path).map_err(|e| io(path, e))?;
        writeln!(file, "{first}").map_err(|e| io(path, e))?;
        for r in &records {
            let line = serde_json::to_string(r).map_err(|e| Error::data(e.to_string()))?;
            writeln!(file, "{line}").map_err(|e| io(path, e))?;
        }
        file.flush().map_err(|e| io(path, e))?;
        Ok(JsonlStorage { path: path.to_path_buf(), records, file })
    }
}

impl StudyStorage for JsonlStorage {
    fn trials(&self) -> Result<Vec<TrialRecord>> {
        Ok(self.records.clone())
    }
    fn append(&mut self, record: &TrialRecord) -> Result<()> {
        let line = serde_json::to_string(record).map_err(|e| Error::data(e.to_string()))?;
        writeln!(self.file, "{line}").map_err(|e| io(&self.path, e))?;
        self.file.flush().map_err(|e| io(&self.path, e))?;
        self.records.push(record.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: usize) -> TrialRecord {
        TrialRecord {
            trial: Trial {
                model: "m".into(),
                number: n,
                params: [("a".to_string(), serde_json::json!(n as f64 * 0.1))].into_iter().collect(),
                fold_scores: vec![0.5, 0.25],
                score: Some(0.375),
                seconds: 0.01,
                error: None,
                pruned: n == 1,
            },
            cv: [("roc_auc".to_string(), 0.375)].into_iter().collect(),
        }
    }

    fn header() -> StudyHeader {
        StudyHeader { trial_log_version: TRIAL_LOG_VERSION, pipeline: "p".into(), seed: 7 }
    }

    #[test]
    fn jsonl_round_trips_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        let mut s = JsonlStorage::create(&path, &header()).unwrap();
        s.append(&record(0)).unwrap();
        s.append(&record(1)).unwrap();
        drop(s);
        let mut r = JsonlStorage::resume(&path, &header()).unwrap();
        assert_eq!(r.trials().unwrap(), vec![record(0), record(1)]);
        r.append(&record(2)).unwrap();
        drop(r);
        let r = JsonlStorage::resume(&path, &header()).unwrap();
        assert_eq!(r.trials().unwrap().len(), 3);
    }

    #[test]
    fn torn_last_line_is_dropped_other_bad_lines_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        let mut s = JsonlStorage::create(&path, &header()).unwrap();
        s.append(&record(0)).unwrap();
        drop(s);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"model\": \"m\", \"numb");
        std::fs::write(&path, &text).unwrap();
        let r = JsonlStorage::resume(&path, &header()).unwrap();
        assert_eq!(r.trials().unwrap().len(), 1);
        drop(r);

        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replacen("\n{", "\n{oops\n{", 1);
        std::fs::write(&path, &text).unwrap();
        let e = JsonlStorage::resume(&path, &header()).err().unwrap().to_string();
        assert!(e.contains("trials.jsonl") && e.contains(":2"), "{e}");
    }

    #[test]
    fn a_log_of_another_pipeline_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        JsonlStorage::create(&path, &header()).unwrap();
        let other = StudyHeader { seed: 8, ..header() };
        let e = JsonlStorage::resume(&path, &other).err().unwrap().to_string();
        assert!(e.contains("seed 7") && e.contains("seed 8"), "{e}");
    }

    #[test]
    fn memory_storage_keeps_order() {
        let mut m = MemoryStorage::default();
        m.append(&record(0)).unwrap();
        m.append(&record(1)).unwrap();
        assert_eq!(m.trials().unwrap().iter().map(|r| r.trial.number).collect::<Vec<_>>(), vec![0, 1]);
    }
}

//! Where a study's trials are kept. The search loop appends every finished trial to a
//! [`StudyStorage`]; `--resume` reads them back and replays them instead of refitting.
//!
//! A run's study lives in `OUT/study.db` ([`sqlite::SqliteStorage`], crash-safe: each trial is
//! committed before the search goes on) with a JSON-lines export beside it ([`JsonlStorage`]:
//! one JSON object per line, the first line a header naming the pipeline, the seed and a
//! fingerprint of everything that decides a trial's score; [`TeeStorage`] writes both).
//! [`MemoryStorage`] keeps nothing on disk. Studies shared by workers on many machines
//! (PostgreSQL, or SQLite on one machine) are in [`shared`].

use promoml_core::{Error, Frame, Result};
use promoml_report::{Scores, Trial};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

pub mod postgres;
pub mod shared;
pub mod sqlite;

/// Version of the trial-log format; a log with another version is refused. Version 2 added the
/// fingerprint ([`StudyHeader::data_sha256`], [`StudyHeader::settings`]).
pub const TRIAL_LOG_VERSION: u32 = 2;

/// Keys of a pipeline file that do not change any trial's score, left out of
/// [`StudyHeader::settings`]: so a study can be resumed with more trials, another time budget,
/// other report settings or an ensemble, but not with other folds, metric, models or data.
/// Data file paths are left out too: the data's content is fingerprinted instead.
pub const SCORE_NEUTRAL_KEYS: [&str; 9] = [
    "pipeline.description",
    "report",
    "search.trials",
    "search.time_budget_s",
    "search.parallel_trials",
    "ensemble",
    "data.path",
    "data.train",
    "data.test",
];

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

/// What a study belongs to: a log written for another pipeline or seed, or whose fingerprint
/// (data, settings that decide a score, promoml version) differs, is refused on resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyHeader {
    /// Trial-log format version ([`TRIAL_LOG_VERSION`]).
    pub trial_log_version: u32,
    /// Pipeline name.
    pub pipeline: String,
    /// Seed of the run.
    pub seed: u64,
    /// The promoml version that scored the trials.
    #[serde(default)]
    pub promoml_version: String,
    /// SHA-256 of the loaded training and test rows (every column's name, type and values).
    #[serde(default)]
    pub data_sha256: String,
    /// Every setting of the pipeline (after `--set`) that can change a trial's score, as
    /// `dotted.key = TOML value` (all but [`SCORE_NEUTRAL_KEYS`]).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
}

impl StudyHeader {
    /// The header of a run of `p` on the loaded `frames` (train, test).
    pub fn for_run(p: &crate::Pipeline, frames: &[&Frame]) -> Result<StudyHeader> {
        Ok(StudyHeader {
            trial_log_version: TRIAL_LOG_VERSION,
            pipeline: p.name.clone(),
            seed: p.seed,
            promoml_version: env!("CARGO_PKG_VERSION").to_string(),
            data_sha256: data_sha256(frames),
            settings: score_settings(&p.source.text)?,
        })
    }

    /// What differs between the study that wrote a log (`self`) and this run (`now`), one
    /// phrase each (empty when the log's scores apply to this run).
    pub fn differences(&self, now: &StudyHeader) -> Vec<String> {
        let mut out = Vec::new();
        if self.promoml_version != now.promoml_version {
            out.push(format!("promoml version {} -> {}", self.promoml_version, now.promoml_version));
        }
        if self.data_sha256 != now.data_sha256 {
            let short = |h: &str| h.chars().take(12).collect::<String>();
            out.push(format!(
                "the data's content (sha256 {}… -> {}…)",
                short(&self.data_sha256),
                short(&now.data_sha256)
            ));
        }
        let keys: std::collections::BTreeSet<&String> = self.settings.keys().chain(now.settings.keys()).collect();
        for k in keys {
            match (self.settings.get(k), now.settings.get(k)) {
                (Some(a), Some(b)) if a != b => out.push(format!("{k}: {a} -> {b}")),
                (Some(a), None) => out.push(format!("{k}: {a} -> (not set)")),
                (None, Some(b)) => out.push(format!("{k}: (not set) -> {b}")),
                _ => {}
            }
        }
        out
    }
}

/// SHA-256 of frames: for each, every column's name, type and values (numbers bit for bit).
pub fn data_sha256(frames: &[&Frame]) -> String {
    use promoml_core::ColumnData;
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for f in frames {
        h.update((f.n_rows() as u64).to_le_bytes());
        for c in f.columns() {
            h.update((c.name.len() as u64).to_le_bytes());
            h.update(c.name.as_bytes());
            match &c.data {
                ColumnData::Numeric(v) => {
                    h.update(b"n");
                    for x in v {
                        h.update(x.to_bits().to_le_bytes());
                    }
                }
                ColumnData::Categorical { levels, codes } => {
                    h.update(b"c");
                    for code in codes {
                        match code.and_then(|c| levels.get(c as usize)) {
                            Some(l) => {
                                h.update((l.len() as u64).to_le_bytes());
                                h.update(l.as_bytes());
                            }
                            None => h.update(u64::MAX.to_le_bytes()),
                        }
                    }
                }
                ColumnData::Boolean(v) => {
                    h.update(b"b");
                    h.update(v.iter().map(|b| b.map_or(2u8, u8::from)).collect::<Vec<u8>>());
                }
                ColumnData::Timestamp(v) => {
                    h.update(b"t");
                    for t in v {
                        h.update(t.map_or([0xff; 9], |t| {
                            let mut b = [0u8; 9];
                            b[1..].copy_from_slice(&t.to_le_bytes());
                            b
                        }));
                    }
                }
            }
        }
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The settings of a pipeline's text that can change a trial's score, flattened to
/// `dotted.key = value` (arrays of tables as `models[0].kind`).
pub fn score_settings(text: &str) -> Result<BTreeMap<String, String>> {
    let table: toml::Table =
        toml::from_str(text).map_err(|e| Error::data(format!("cannot fingerprint the pipeline: {e}")))?;
    let mut out = BTreeMap::new();
    flatten("", &toml::Value::Table(table), &mut out);
    out.retain(|k, _| {
        !SCORE_NEUTRAL_KEYS.iter().any(|n| k == n || k.strip_prefix(n).is_some_and(|r| r.starts_with(['.', '['])))
    });
    Ok(out)
}

fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| if prefix.is_empty() { k.to_string() } else { format!("{prefix}.{k}") };
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                flatten(&join(k), v, out);
            }
        }
        toml::Value::Array(a) if a.iter().any(toml::Value::is_table) => {
            for (i, v) in a.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Whether trials scored under `found` apply to a run with `header`; the message says what
/// differs otherwise.
pub fn check_same_study(found: &StudyHeader, header: &StudyHeader) -> std::result::Result<(), String> {
    if found.trial_log_version != header.trial_log_version {
        return Err(format!(
            "trial-log format version {} is not the supported version {}",
            found.trial_log_version, header.trial_log_version
        ));
    }
    if found.pipeline != header.pipeline || found.seed != header.seed {
        return Err(format!(
            "the log belongs to pipeline `{}` with seed {}, not `{}` with seed {}",
            found.pipeline, found.seed, header.pipeline, header.seed
        ));
    }
    let changed = found.differences(header);
    if !changed.is_empty() {
        return Err(format!(
            "--resume: the logged trials were scored with other settings, so their scores do not apply to this run; changed: {}. Run without --resume to start a new study (or resume with the settings of the logged run)",
            changed.join("; ")
        ));
    }
    Ok(())
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
        check_same_study(&found, header).map_err(|m| bad(1, m))?;
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

/// A study stored in a primary storage (resumed from) and exported to a second one as it goes:
/// `OUT/study.db` with `OUT/trials.jsonl` beside it.
pub struct TeeStorage {
    primary: Box<dyn StudyStorage>,
    export: Box<dyn StudyStorage>,
}

impl TeeStorage {
    /// Write every trial to `primary` first, then to `export`. Trials already in `primary` (a
    /// resumed study) are written to `export` now, so the export is whole.
    pub fn new(primary: Box<dyn StudyStorage>, mut export: Box<dyn StudyStorage>) -> Result<TeeStorage> {
        let have = export.trials()?.len();
        for r in primary.trials()?.iter().skip(have) {
            export.append(r)?;
        }
        Ok(TeeStorage { primary, export })
    }
}

impl StudyStorage for TeeStorage {
    fn trials(&self) -> Result<Vec<TrialRecord>> {
        self.primary.trials()
    }
    fn append(&mut self, record: &TrialRecord) -> Result<()> {
        self.primary.append(record)?;
        self.export.append(record)
    }
}

/// Open the store at `url`: `postgresql://USER@HOST:PORT/DB` (or `postgres://`), or
/// `sqlite:PATH` / `sqlite://PATH` (a file on this machine, shared by its processes).
pub fn open_store(url: &str) -> Result<Box<dyn shared::SharedStore>> {
    if url.starts_with("postgresql://") || url.starts_with("postgres://") {
        Ok(Box::new(postgres::PostgresStore::connect(url)?))
    } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
        Ok(Box::new(sqlite::SqliteStore::open(std::path::Path::new(path))?))
    } else {
        Err(Error::data(format!(
            "--storage {url}: not a study storage URL; use postgresql://USER@HOST:PORT/DB or sqlite:PATH"
        )))
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
        StudyHeader {
            trial_log_version: TRIAL_LOG_VERSION,
            pipeline: "p".into(),
            seed: 7,
            promoml_version: "0.1.0".into(),
            data_sha256: "ab".repeat(32),
            settings: score_settings("[search]\ncv_folds = 3\ntrials = 5\n[[models]]\nkind = \"m\"\n").unwrap(),
        }
    }

    #[test]
    fn resume_with_changed_scoring_settings_is_refused_naming_the_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trials.jsonl");
        JsonlStorage::create(&path, &header()).unwrap();
        // More trials, another time budget or report: the logged scores still apply.
        let more = StudyHeader {
            settings: score_settings(
                "[search]\ncv_folds = 3\ntrials = 50\ntime_budget_s = 9\n[report]\nformats = []\n[[models]]\nkind = \"m\"\n",
            )
            .unwrap(),
            ..header()
        };
        JsonlStorage::resume(&path, &more).unwrap();
        // Other folds, metric, model or data: refused, naming each change.
        let other = StudyHeader {
            settings: score_settings("[search]\ncv_folds = 2\nmetric = \"log_loss\"\n[[models]]\nkind = \"m2\"\n")
                .unwrap(),
            data_sha256: "cd".repeat(32),
            ..header()
        };
        let e = JsonlStorage::resume(&path, &other).err().unwrap().to_string();
        for want in
            ["search.cv_folds: 3 -> 2", "search.metric: (not set) -> \"log_loss\"", "models[0].kind", "data's content"]
        {
            assert!(e.contains(want), "{want} in {e}");
        }
        assert!(!e.contains("search.trials"), "{e}");
    }

    #[test]
    fn data_fingerprint_sees_one_changed_value() {
        let f = |x: f64| {
            Frame::new(vec![promoml_core::Column {
                name: "a".into(),
                data: promoml_core::ColumnData::Numeric(vec![1.0, x]),
            }])
            .unwrap()
        };
        assert_eq!(data_sha256(&[&f(2.0)]), data_sha256(&[&f(2.0)]));
        assert_ne!(data_sha256(&[&f(2.0)]), data_sha256(&[&f(2.000001)]));
        assert_eq!(data_sha256(&[&f(2.0)]).len(), 64);
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

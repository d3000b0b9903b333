//! Studies in an SQLite file (`rusqlite` with the bundled library): a run's own study in
//! `OUT/study.db` ([`SqliteStorage`]), and studies shared by several processes on one machine
//! ([`SqliteStore`], `--storage sqlite:PATH`).
//!
//! Every write is its own transaction, committed with `synchronous = FULL` in rollback-journal
//! mode, so a trial that was reported is on disk: a run killed at any moment (SIGKILL, power
//! loss) resumes from every trial committed before. Claims take the database's write lock
//! first (`BEGIN IMMEDIATE`), so two processes never claim the same trial.

use super::shared::{
    Budget, ClaimView, Decision, SharedStore, SharedTrial, StudyRow, TrialState, fingerprint, from_json, stale_note,
    to_json, unix_now,
};
use super::{StudyHeader, StudyStorage, TrialRecord, check_same_study};
use promoml_core::{Error, Result};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};

/// The schema's version, kept in `promoml_meta`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS promoml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promoml_studies (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    header TEXT NOT NULL,
    budget TEXT NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS promoml_trials (
    study INTEGER NOT NULL REFERENCES promoml_studies(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    number INTEGER NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    record TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL,
    heartbeat REAL,
    note TEXT,
    seq INTEGER,
    PRIMARY KEY (study, model, number)
);
";

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::data(format!("{}: study database: {e}", path.display()))
}

/// An open SQLite study database.
pub struct SqliteStore {
    path: PathBuf,
    conn: Connection,
}

const TRIAL_COLUMNS: &str = "model, number, state, params, record, worker, attempts, heartbeat, note";

fn read_trial(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawTrial> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

/// A running trial past its grace: model, number, worker, last beat, note.
type StaleTrial = (String, i64, Option<String>, Option<f64>, Option<String>);

/// A trial row as read: the columns of `TRIAL_COLUMNS`.
type RawTrial = (String, i64, String, String, Option<String>, Option<String>, i64, Option<f64>, Option<String>);

fn to_trial(raw: RawTrial) -> Result<SharedTrial> {
    let (model, number, state, params, record, worker, attempts, heartbeat, note) = raw;
    Ok(SharedTrial {
        number: usize::try_from(number).map_err(|_| Error::data(format!("study storage: trial number {number}")))?,
        state: TrialState::parse(&state)?,
        params: from_json(&params, &format!("the parameters of trial {number} of `{model}`"))?,
        record: record.map(|r| from_json(&r, &format!("the result of trial {number} of `{model}`"))).transpose()?,
        worker,
        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
        heartbeat,
        note,
        model,
    })
}

impl SqliteStore {
    /// Open (creating if needed) the study database at `path`.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), source: e })?;
        }
        let conn = Connection::open(path).map_err(|e| db_err(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(|e| db_err(path, e))?;
        conn.execute_batch("PRAGMA journal_mode = DELETE; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;")
            .map_err(|e| db_err(path, e))?;
        let mut store = SqliteStore { path: path.to_path_buf(), conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(|e| db_err(&path, e))?;
        tx.execute_batch(SCHEMA).map_err(|e| db_err(&path, e))?;
        let found: Option<String> = tx
            .query_row("SELECT value FROM promoml_meta WHERE key = 'schema_version'", [], |r| r.get(0))
            .optional()
            .map_err(|e| db_err(&path, e))?;
        match found {
            None => {
                tx.execute(
                    "INSERT INTO promoml_meta (key, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| db_err(&path, e))?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(Error::data(format!(
                    "{}: study database schema version {v}, this promoml reads version {SCHEMA_VERSION}",
                    path.display()
                )));
            }
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        db_err(&self.path, e)
    }

    /// The finished trials of a study in the order they finished.
    fn records(&self, study: i64) -> Result<Vec<TrialRecord>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT record FROM promoml_trials WHERE study = ?1 AND record IS NOT NULL ORDER BY seq, model, number",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt.query_map([study], |r| r.get::<_, String>(0)).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(from_json(&r.map_err(|e| self.err(e))?, "a trial result")?);
        }
        Ok(out)
    }

    fn insert_finished(&self, study: i64, worker: &str, record: &TrialRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO promoml_trials (study, model, number, state, params, record, worker, attempts, heartbeat, note, seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, NULL,
                         (SELECT COALESCE(MAX(seq), 0) + 1 FROM promoml_trials WHERE study = ?1))",
                params![
                    study,
                    record.trial.model,
                    record.trial.number as i64,
                    TrialState::of(record).as_str(),
                    to_json(&record.trial.params)?,
                    to_json(record)?,
                    worker,
                    unix_now()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl SharedStore for SqliteStore {
    fn create_study(&mut self, header: &StudyHeader, budget: &Budget) -> Result<i64> {
        self.conn
            .execute(
                "INSERT INTO promoml_studies (pipeline, fingerprint, header, budget, state, created) VALUES (?1, ?2, ?3, ?4, 'running', ?5)",
                params![header.pipeline, fingerprint(header), to_json(header)?, to_json(budget)?, unix_now()],
            )
            .map_err(|e| self.err(e))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn reopen_study(&mut self, study: i64, budget: &Budget) -> Result<()> {
        self.conn
            .execute(
                "UPDATE promoml_studies SET budget = ?2, state = 'running' WHERE id = ?1",
                params![study, to_json(budget)?],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn studies(&mut self) -> Result<Vec<StudyRow>> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT s.id, s.pipeline, s.fingerprint, s.header, s.budget, s.state, s.created,
                        (SELECT COUNT(*) FROM promoml_trials t WHERE t.study = s.id),
                        (SELECT COUNT(*) FROM promoml_trials t WHERE t.study = s.id AND t.record IS NOT NULL)
                 FROM promoml_studies s ORDER BY s.id DESC",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                    r.get::<_, f64>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, i64>(8)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for r in rows {
            let (id, pipeline, fp, header, budget, state, created, n, done) = r.map_err(|e| self.err(e))?;
            out.push(StudyRow {
                id,
                pipeline,
                fingerprint: fp,
                header: from_json(&header, &format!("the header of study {id}"))?,
                budget: from_json(&budget, &format!("the budget of study {id}"))?,
                state,
                created,
                n_trials: n.max(0) as usize,
                n_finished: done.max(0) as usize,
            });
        }
        Ok(out)
    }

    fn claim(
        &mut self,
        study: i64,
        worker: &str,
        grace_s: f64,
        decide: &mut dyn FnMut(&ClaimView<'_>) -> Result<Decision>,
    ) -> Result<Option<SharedTrial>> {
        let path = self.path.clone();
        let e = |e| db_err(&path, e);
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(e)?;
        let now = unix_now();
        let budget: String =
            tx.query_row("SELECT budget FROM promoml_studies WHERE id = ?1", [study], |r| r.get(0)).map_err(e)?;
        let budget: Budget = from_json(&budget, "the study's budget")?;
        // Running trials whose worker stopped beating go back to waiting.
        let stale: Vec<StaleTrial> = {
            let mut stmt = tx
                .prepare(
                    "SELECT model, number, worker, heartbeat, note FROM promoml_trials
                     WHERE study = ?1 AND state = 'running' AND (heartbeat IS NULL OR heartbeat < ?2)",
                )
                .map_err(e)?;
            stmt.query_map(params![study, now - grace_s], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .map_err(e)?
            .collect::<rusqlite::Result<_>>()
            .map_err(e)?
        };
        for (model, number, w, beat, note) in stale {
            tracing::warn!(
                "trial {number} of `{model}`: worker {} stopped beating; handing it over",
                w.as_deref().unwrap_or("?")
            );
            tx.execute(
                "UPDATE promoml_trials SET state = 'waiting', worker = NULL, note = ?4 WHERE study = ?1 AND model = ?2 AND number = ?3",
                params![study, model, number, stale_note(note.as_deref(), w.as_deref(), beat, now)],
            )
            .map_err(e)?;
        }
        let trials: Vec<SharedTrial> = {
            let mut stmt = tx
                .prepare(&format!("SELECT {TRIAL_COLUMNS} FROM promoml_trials WHERE study = ?1 ORDER BY model, number"))
                .map_err(e)?;
            let raw: Vec<RawTrial> =
                stmt.query_map([study], read_trial).map_err(e)?.collect::<rusqlite::Result<_>>().map_err(e)?;
            raw.into_iter().map(to_trial).collect::<Result<_>>()?
        };
        let decision = decide(&ClaimView { trials: &trials, now, budget: &budget })?;
        let claimed = match decision {
            Decision::Nothing => None,
            Decision::New { model, number, params } => {
                tx.execute(
                    "INSERT INTO promoml_trials (study, model, number, state, params, worker, attempts, heartbeat)
                     VALUES (?1, ?2, ?3, 'running', ?4, ?5, 1, ?6)",
                    params![study, model, number as i64, to_json(&params)?, worker, now],
                )
                .map_err(e)?;
                Some(SharedTrial::started(model, number, params, worker, now))
            }
            Decision::TakeOver { model, number } => {
                let n = tx
                    .execute(
                        "UPDATE promoml_trials SET state = 'running', worker = ?4, attempts = attempts + 1, heartbeat = ?5
                         WHERE study = ?1 AND model = ?2 AND number = ?3 AND state = 'waiting'",
                        params![study, model, number as i64, worker, now],
                    )
                    .map_err(e)?;
                if n == 0 {
                    return Err(Error::data(format!("study storage: trial {number} of `{model}` is not waiting")));
                }
                let t = trials.iter().find(|t| t.model == model && t.number == number).cloned();
                t.map(|t| t.taken_over(worker, now))
            }
        };
        tx.commit().map_err(e)?;
        Ok(claimed)
    }

    fn finish(&mut self, study: i64, worker: &str, record: &TrialRecord) -> Result<bool> {
        let n = self
            .conn
            .execute(
                "UPDATE promoml_trials SET state = ?5, record = ?6, heartbeat = ?7,
                        seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM promoml_trials WHERE study = ?1)
                 WHERE study = ?1 AND model = ?2 AND number = ?3 AND worker = ?4 AND state = 'running'",
                params![
                    study,
                    record.trial.model,
                    record.trial.number as i64,
                    worker,
                    TrialState::of(record).as_str(),
                    to_json(record)?,
                    unix_now()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    fn heartbeat(&mut self, study: i64, worker: &str) -> Result<usize> {
        self.conn
            .execute(
                "UPDATE promoml_trials SET heartbeat = ?3
                 WHERE study = ?1 AND (worker = ?2 OR substr(worker, 1, length(?2) + 1) = ?2 || '/') AND state = 'running'",
                params![study, worker, unix_now()],
            )
            .map_err(|e| self.err(e))
    }

    fn release(&mut self, study: i64, worker: &str) -> Result<()> {
        self.conn
            .execute(
                "UPDATE promoml_trials SET state = 'waiting', worker = NULL
                 WHERE study = ?1 AND (worker = ?2 OR substr(worker, 1, length(?2) + 1) = ?2 || '/') AND state = 'running'",
                params![study, worker],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn trials(&mut self, study: i64) -> Result<Vec<SharedTrial>> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {TRIAL_COLUMNS} FROM promoml_trials WHERE study = ?1 ORDER BY model, number"))
            .map_err(|e| self.err(e))?;
        let raw: Vec<RawTrial> = stmt
            .query_map([study], read_trial)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        raw.into_iter().map(to_trial).collect()
    }

    fn set_study_state(&mut self, study: i64, state: &str) -> Result<()> {
        self.conn
            .execute("UPDATE promoml_studies SET state = ?2 WHERE id = ?1", params![study, state])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// A run's own study in an SQLite file (`OUT/study.db`): one process, trials committed one by
/// one as they finish.
pub struct SqliteStorage {
    store: SqliteStore,
    study: i64,
    records: Vec<TrialRecord>,
}

impl SqliteStorage {
    /// Start a new study for `header` in the database at `path`.
    pub fn create(path: &Path, header: &StudyHeader) -> Result<SqliteStorage> {
        let mut store = SqliteStore::open(path)?;
        let study = store.create_study(header, &Budget::default())?;
        Ok(SqliteStorage { store, study, records: Vec::new() })
    }

    /// Continue the newest study in the database at `path`; refused (naming what differs) when
    /// its header does not match `header`.
    pub fn resume(path: &Path, header: &StudyHeader) -> Result<SqliteStorage> {
        let mut store = SqliteStore::open(path)?;
        let newest =
            store.studies()?.into_iter().next().ok_or_else(|| {
                Error::data(format!("{}: --resume: the study database holds no study", path.display()))
            })?;
        check_same_study(&newest.header, header)
            .map_err(|m| Error::data(format!("{} (study {}): {m}", path.display(), newest.id)))?;
        let records = store.records(newest.id)?;
        Ok(SqliteStorage { store, study: newest.id, records })
    }

    /// The study's id in the database.
    pub fn study(&self) -> i64 {
        self.study
    }
}

impl StudyStorage for SqliteStorage {
    fn trials(&self) -> Result<Vec<TrialRecord>> {
        Ok(self.records.clone())
    }
    fn append(&mut self, record: &TrialRecord) -> Result<()> {
        self.store.insert_finished(self.study, "local", record)?;
        self.records.push(record.clone());
        Ok(())
    }
}

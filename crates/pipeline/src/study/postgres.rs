//! Studies in PostgreSQL, shared by workers on many machines (`--storage
//! postgresql://USER@HOST:PORT/DB`).
//!
//! The client is the `postgres` crate: the blocking face of `tokio-postgres` (a pure-Rust
//! protocol implementation, no libpq to install). The search loop is synchronous and makes a
//! few short queries per trial, so an async pool (`sqlx`) would add a runtime to every call
//! site and compile-time query checking that needs a database at build time, for nothing.
//!
//! A claim locks the study's row (`SELECT … FOR UPDATE`), so claims of one study are
//! serialised across every machine; heartbeats and stale checks use the server's clock, so
//! machines with skewed clocks agree on who is late.

use super::shared::{
    Budget, ClaimView, Decision, SharedStore, SharedTrial, StudyRow, TrialState, fingerprint, from_json, redact,
    stale_note, to_json,
};
use super::{StudyHeader, TrialRecord};
use postgres::{Client, NoTls};
use promoml_core::{Error, Result};

/// The schema's version, kept in `promoml_meta`.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS promoml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS promoml_studies (
    id BIGSERIAL PRIMARY KEY,
    pipeline TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    header TEXT NOT NULL,
    budget TEXT NOT NULL,
    state TEXT NOT NULL,
    created DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS promoml_trials (
    study BIGINT NOT NULL REFERENCES promoml_studies(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    number BIGINT NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    record TEXT,
    worker TEXT,
    attempts INTEGER NOT NULL,
    heartbeat DOUBLE PRECISION,
    note TEXT,
    seq BIGINT,
    PRIMARY KEY (study, model, number)
);
";

const NOW: &str = "extract(epoch from clock_timestamp())::float8";
const TRIAL_COLUMNS: &str = "model, number, state, params, record, worker, attempts, heartbeat, note";

/// A connection to a PostgreSQL study database.
pub struct PostgresStore {
    url: String,
    client: Client,
}

fn to_trial(row: &postgres::Row) -> Result<SharedTrial> {
    let model: String = row.get(0);
    let number: i64 = row.get(1);
    let state: String = row.get(2);
    let params: String = row.get(3);
    let record: Option<String> = row.get(4);
    let attempts: i32 = row.get(6);
    Ok(SharedTrial {
        number: usize::try_from(number).map_err(|_| Error::data(format!("study storage: trial number {number}")))?,
        state: TrialState::parse(&state)?,
        params: from_json(&params, &format!("the parameters of trial {number} of `{model}`"))?,
        record: record.map(|r| from_json(&r, &format!("the result of trial {number} of `{model}`"))).transpose()?,
        worker: row.get(5),
        attempts: attempts.max(0) as u32,
        heartbeat: row.get(7),
        note: row.get(8),
        model,
    })
}

impl PostgresStore {
    /// Connect to `url` and create the tables if they are missing.
    pub fn connect(url: &str) -> Result<PostgresStore> {
        let client = Client::connect(url, NoTls)
            .map_err(|e| Error::data(format!("--storage {}: cannot connect: {e}", redact(url))))?;
        let mut store = PostgresStore { url: url.to_string(), client };
        store.migrate()?;
        Ok(store)
    }

    fn err(&self, e: postgres::Error) -> Error {
        Error::data(format!("--storage {}: {e}", redact(&self.url)))
    }

    fn migrate(&mut self) -> Result<()> {
        let url = self.url.clone();
        let e = |e: postgres::Error| Error::data(format!("--storage {}: creating the study tables: {e}", redact(&url)));
        let mut tx = self.client.transaction().map_err(e)?;
        // Workers starting together must not race on CREATE TABLE.
        tx.execute("SELECT pg_advisory_xact_lock(7269001)", &[]).map_err(e)?;
        // No "relation already exists, skipping" notices in every worker's log.
        tx.batch_execute("SET LOCAL client_min_messages = warning").map_err(e)?;
        tx.batch_execute(SCHEMA).map_err(e)?;
        let found = tx.query_opt("SELECT value FROM promoml_meta WHERE key = 'schema_version'", &[]).map_err(e)?;
        match found.map(|r| r.get::<_, String>(0)) {
            None => {
                tx.execute(
                    "INSERT INTO promoml_meta (key, value) VALUES ('schema_version', $1)",
                    &[&SCHEMA_VERSION.to_string()],
                )
                .map_err(e)?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(Error::data(format!(
                    "--storage {}: study schema version {v}, this promoml reads version {SCHEMA_VERSION}",
                    redact(&url)
                )));
            }
        }
        tx.commit().map_err(e)
    }
}

impl SharedStore for PostgresStore {
    fn create_study(&mut self, header: &StudyHeader, budget: &Budget) -> Result<i64> {
        let row = self
            .client
            .query_one(
                &format!(
                    "INSERT INTO promoml_studies (pipeline, fingerprint, header, budget, state, created)
                     VALUES ($1, $2, $3, $4, 'running', {NOW}) RETURNING id"
                ),
                &[&header.pipeline, &fingerprint(header), &to_json(header)?, &to_json(budget)?],
            )
            .map_err(|e| self.err(e))?;
        Ok(row.get(0))
    }

    fn reopen_study(&mut self, study: i64, budget: &Budget) -> Result<()> {
        self.client
            .execute(
                "UPDATE promoml_studies SET budget = $2, state = 'running' WHERE id = $1",
                &[&study, &to_json(budget)?],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn studies(&mut self) -> Result<Vec<StudyRow>> {
        let rows = self
            .client
            .query(
                "SELECT s.id, s.pipeline, s.fingerprint, s.header, s.budget, s.state, s.created,
                        (SELECT COUNT(*) FROM promoml_trials t WHERE t.study = s.id),
                        (SELECT COUNT(*) FROM promoml_trials t WHERE t.study = s.id AND t.record IS NOT NULL)
                 FROM promoml_studies s ORDER BY s.id DESC",
                &[],
            )
            .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.get(0);
                let n: i64 = r.get(7);
                let done: i64 = r.get(8);
                Ok(StudyRow {
                    id,
                    pipeline: r.get(1),
                    fingerprint: r.get(2),
                    header: from_json(&r.get::<_, String>(3), &format!("the header of study {id}"))?,
                    budget: from_json(&r.get::<_, String>(4), &format!("the budget of study {id}"))?,
                    state: r.get(5),
                    created: r.get(6),
                    n_trials: n.max(0) as usize,
                    n_finished: done.max(0) as usize,
                })
            })
            .collect()
    }

    fn claim(
        &mut self,
        study: i64,
        worker: &str,
        grace_s: f64,
        decide: &mut dyn FnMut(&ClaimView<'_>) -> Result<Decision>,
    ) -> Result<Option<SharedTrial>> {
        let url = self.url.clone();
        let e = |e: postgres::Error| Error::data(format!("--storage {}: claiming a trial: {e}", redact(&url)));
        let mut tx = self.client.transaction().map_err(e)?;
        let row = tx
            .query_one(&format!("SELECT budget, {NOW} FROM promoml_studies WHERE id = $1 FOR UPDATE"), &[&study])
            .map_err(e)?;
        let budget: Budget = from_json(&row.get::<_, String>(0), "the study's budget")?;
        let now: f64 = row.get(1);
        let stale = tx
            .query(
                "SELECT model, number, worker, heartbeat, note FROM promoml_trials
                 WHERE study = $1 AND state = 'running' AND (heartbeat IS NULL OR heartbeat < $2)",
                &[&study, &(now - grace_s)],
            )
            .map_err(e)?;
        for r in stale {
            let (model, number, w, beat, note): (String, i64, Option<String>, Option<f64>, Option<String>) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            tracing::warn!(
                "trial {number} of `{model}`: worker {} stopped beating; handing it over",
                w.as_deref().unwrap_or("?")
            );
            tx.execute(
                "UPDATE promoml_trials SET state = 'waiting', worker = NULL, note = $4 WHERE study = $1 AND model = $2 AND number = $3",
                &[&study, &model, &number, &stale_note(note.as_deref(), w.as_deref(), beat, now)],
            )
            .map_err(e)?;
        }
        let trials: Vec<SharedTrial> = tx
            .query(
                &format!("SELECT {TRIAL_COLUMNS} FROM promoml_trials WHERE study = $1 ORDER BY model, number"),
                &[&study],
            )
            .map_err(e)?
            .iter()
            .map(to_trial)
            .collect::<Result<_>>()?;
        let claimed = match decide(&ClaimView { trials: &trials, now, budget: &budget })? {
            Decision::Nothing => None,
            Decision::New { model, number, params } => {
                tx.execute(
                    "INSERT INTO promoml_trials (study, model, number, state, params, worker, attempts, heartbeat)
                     VALUES ($1, $2, $3, 'running', $4, $5, 1, $6)",
                    &[&study, &model, &(number as i64), &to_json(&params)?, &worker, &now],
                )
                .map_err(e)?;
                Some(SharedTrial::started(model, number, params, worker, now))
            }
            Decision::TakeOver { model, number } => {
                let n = tx
                    .execute(
                        "UPDATE promoml_trials SET state = 'running', worker = $4, attempts = attempts + 1, heartbeat = $5
                         WHERE study = $1 AND model = $2 AND number = $3 AND state = 'waiting'",
                        &[&study, &model, &(number as i64), &worker, &now],
                    )
                    .map_err(e)?;
                if n == 0 {
                    return Err(Error::data(format!("study storage: trial {number} of `{model}` is not waiting")));
                }
                trials
                    .iter()
                    .find(|t| t.model == model && t.number == number)
                    .cloned()
                    .map(|t| t.taken_over(worker, now))
            }
        };
        tx.commit().map_err(e)?;
        Ok(claimed)
    }

    fn finish(&mut self, study: i64, worker: &str, record: &TrialRecord) -> Result<bool> {
        let url = self.url.clone();
        let e = |e: postgres::Error| Error::data(format!("--storage {}: storing a trial: {e}", redact(&url)));
        let mut tx = self.client.transaction().map_err(e)?;
        // The study's row lock orders `seq` with claims.
        tx.execute("SELECT id FROM promoml_studies WHERE id = $1 FOR UPDATE", &[&study]).map_err(e)?;
        let n = tx
            .execute(
                &format!(
                    "UPDATE promoml_trials SET state = $5, record = $6, heartbeat = {NOW},
                            seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM promoml_trials WHERE study = $1)
                     WHERE study = $1 AND model = $2 AND number = $3 AND worker = $4 AND state = 'running'"
                ),
                &[
                    &study,
                    &record.trial.model,
                    &(record.trial.number as i64),
                    &worker,
                    &TrialState::of(record).as_str(),
                    &to_json(record)?,
                ],
            )
            .map_err(e)?;
        tx.commit().map_err(e)?;
        Ok(n == 1)
    }

    fn heartbeat(&mut self, study: i64, worker: &str) -> Result<usize> {
        let n = self
            .client
            .execute(
                &format!(
                    "UPDATE promoml_trials SET heartbeat = {NOW}
                     WHERE study = $1 AND (worker = $2 OR left(worker, length($2) + 1) = $2 || '/') AND state = 'running'"
                ),
                &[&study, &worker],
            )
            .map_err(|e| self.err(e))?;
        Ok(n as usize)
    }

    fn release(&mut self, study: i64, worker: &str) -> Result<()> {
        self.client
            .execute(
                "UPDATE promoml_trials SET state = 'waiting', worker = NULL
                 WHERE study = $1 AND (worker = $2 OR left(worker, length($2) + 1) = $2 || '/') AND state = 'running'",
                &[&study, &worker],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    fn trials(&mut self, study: i64) -> Result<Vec<SharedTrial>> {
        let rows = self
            .client
            .query(
                &format!("SELECT {TRIAL_COLUMNS} FROM promoml_trials WHERE study = $1 ORDER BY model, number"),
                &[&study],
            )
            .map_err(|e| self.err(e))?;
        rows.iter().map(to_trial).collect()
    }

    fn set_study_state(&mut self, study: i64, state: &str) -> Result<()> {
        self.client
            .execute("UPDATE promoml_studies SET state = $2 WHERE id = $1", &[&study, &state])
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

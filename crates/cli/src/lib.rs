//! The `promoml` command line, as a library so that a team can build its own binary with its
//! own plugins added: `promoml_cli::main_with(&[my_plugin::register])`.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use promoml_core::Registry;
use promoml_pipeline::spec::Format;
use promoml_pipeline::{Observer, Pipeline, PipelineError};
use promoml_report::Trial;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

pub mod outdir;
use outdir::OutDir;

/// A plugin's registration function.
pub type RegisterFn = fn(&mut Registry);

/// The plugins built into the stock `promoml` binary, in registration order.
pub const DEFAULT_PLUGINS: &[RegisterFn] = &[
    promoml_pipeline::register,
    promoml_smartcore::register,
    promoml_linfa::register,
    promoml_forest::register,
    promoml_anomaly::register,
    promoml_gbm::register,
    promoml_burn::register,
    promoml_tpe::register,
];

/// A registry with the stock plugins and then `extra`.
pub fn registry_with(extra: &[RegisterFn]) -> Registry {
    let mut r = Registry::new();
    for f in DEFAULT_PLUGINS.iter().chain(extra) {
        f(&mut r);
    }
    r
}

#[derive(Parser)]
#[command(
    name = "promoml",
    version,
    about = "AutoML and ensembles for personalised promotions, from one TOML (or RON) file"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline and write its report into a folder.
    Run {
        /// The pipeline file: TOML, or RON when it ends in `.ron`.
        pipeline: PathBuf,
        /// Output folder (created if needed).
        #[arg(long)]
        out: PathBuf,
        /// Override any TOML value, e.g. `--set search.trials=20` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove a key of the pipeline, e.g. `--unset data.train --unset data.test` before
        /// `--set data.path=...` (repeatable; applied before every `--set`).
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        /// Print only errors.
        #[arg(long, short)]
        quiet: bool,
        /// Continue the study logged in OUT (an interrupted or failed run's log in
        /// OUT/.promoml-run/, else OUT/trials.jsonl): logged trials are replayed, not refitted.
        /// Refused when the data or a setting that decides a trial's score changed.
        #[arg(long)]
        resume: bool,
        /// Compute device for the burn models, e.g. `cuda:0` (same as `--set pipeline.device=...`;
        /// CUDA needs a build with `--features cuda`).
        #[arg(long)]
        device: Option<String>,
        /// Share the study with `promoml worker` processes through a database:
        /// `postgresql://USER@HOST:PORT/DB` (many machines) or `sqlite:PATH` (one machine).
        /// This run evaluates trials too, waits for the workers' trials, then refits and
        /// reports. With --resume, continues the stored study of the same pipeline and data.
        #[arg(long, value_name = "URL")]
        storage: Option<String>,
        #[command(flatten)]
        shared: SharedArgs,
    },
    /// Join the running study of a pipeline in a shared database (started by
    /// `promoml run PIPELINE --storage URL`) and evaluate its trials until its budget is spent.
    /// Refused when the pipeline, `--set` options or data differ from the leader's.
    Worker {
        /// The pipeline TOML file (the leader's).
        pipeline: PathBuf,
        /// The study database: `postgresql://USER@HOST:PORT/DB` or `sqlite:PATH`.
        #[arg(long, value_name = "URL")]
        storage: String,
        /// Overrides, as for `run` (the leader's).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Keys to remove, as for `run`.
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        /// Print only errors.
        #[arg(long, short)]
        quiet: bool,
        /// Seconds to wait for the leader to create the study.
        #[arg(long, default_value_t = 120)]
        wait_s: u64,
        #[command(flatten)]
        shared: SharedArgs,
    },
    /// Inspect the studies in a database: `list`, `show`, `export`.
    Study {
        #[command(subcommand)]
        action: StudyAction,
    },
    /// Check a pipeline without running it.
    Validate {
        /// The pipeline file: TOML, or RON when it ends in `.ron`.
        pipeline: PathBuf,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Keys to remove, as for `run`.
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
        /// Print the validated pipeline (overrides applied) in this format on stdout, to convert
        /// between TOML and RON (comments are not carried over); the verdict goes to stderr.
        #[arg(long, value_name = "FORMAT")]
        emit: Option<EmitFormat>,
    },
    /// Compare a report with a baseline: prints a Markdown diff; exits 1 when the final model's
    /// headline test metric is worse by more than --max-drop or a candidate disappeared, 2 when
    /// a report cannot be read or the two are not comparable.
    Compare {
        /// The baseline report.json.
        baseline: PathBuf,
        /// The current report.json.
        current: PathBuf,
        /// Largest tolerated worsening of the headline metric (direction-aware).
        #[arg(long, default_value_t = promoml_report::compare::DEFAULT_MAX_DROP)]
        max_drop: f64,
    },
    /// Score new rows with a model artifact written by `run` (OUT/model.promoml).
    Predict {
        /// The model artifact.
        #[arg(long)]
        model: PathBuf,
        /// Rows to score (CSV or Parquet, with the training columns; the target may be absent),
        /// or for an event-log pipeline an event log (entity, time and value columns).
        #[arg(long)]
        input: PathBuf,
        /// Scores to write (CSV): `score` (binary), `score_<class>` (multiclass),
        /// `prediction` (regression), `uplift_<arm>` per treatment arm (uplift; with a policy
        /// also `arm` and `expected_gain`) or `anomaly_score` (and `is_anomaly` with a
        /// threshold), after the id column when the input has it.
        #[arg(long)]
        output: PathBuf,
        /// Event-log pipelines: the end of the input window (YYYY-MM-DD, a time, or the data's
        /// timestamp format; default the training cutoff). The window keeps its length.
        #[arg(long)]
        cutoff: Option<String>,
        /// Explain each row: append `base_value`, its K largest contributions (`feature_i`,
        /// `contribution_i`, in the model's raw output space: log-odds, outcome or effect) and
        /// `rest` (the sum of the others), one-hot features added up per input column.
        #[arg(long, value_name = "K")]
        explain: Option<usize>,
    },
    /// Serve a model artifact over HTTP: POST /v1/predict (JSON rows or CSV, optional
    /// explanations), GET /v1/model, /healthz, /readyz, /metrics; SIGHUP or POST /admin/reload
    /// reloads the artifact; SIGTERM/SIGINT shut down gracefully.
    Serve {
        /// The model artifact.
        #[arg(long)]
        model: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: std::net::SocketAddr,
        /// Largest request body in bytes (413 beyond).
        #[arg(long, default_value_t = 16 << 20)]
        max_body_bytes: usize,
        /// Most rows in one request (413 beyond).
        #[arg(long, default_value_t = 100_000)]
        max_rows: usize,
        /// Most rows in one request that asks for explanations (413 beyond).
        #[arg(long, default_value_t = 1000)]
        max_explain_rows: usize,
        /// Most scoring requests answered at once (429 beyond).
        #[arg(long, default_value_t = 64)]
        max_in_flight: usize,
    },
    /// List every registered component with its parameters and ranges.
    Plugins {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The per-entity table of an event-log pipeline (`[data.events]`): `--sql` prints the
    /// query that computes it on another engine (Spark, Trino, PostgreSQL, DuckDB) over a
    /// table `events`; `--out FILE.csv|.parquet` computes it here and writes it.
    Features {
        /// The pipeline file: TOML, or RON when it ends in `.ron`.
        pipeline: PathBuf,
        /// Print the event plan as one SQL query on standard output.
        #[arg(long, conflicts_with = "out", required_unless_present = "out")]
        sql: bool,
        /// With --sql: the engine the query is written for.
        #[arg(long, value_enum, default_value = "datafusion", requires = "sql")]
        dialect: SqlDialect,
        /// With --sql: how the `events` table stores the time column (default: as the
        /// pipeline's log does; `text` is ISO text, or `data.timestamp_format` when set).
        #[arg(long, value_enum, requires = "sql")]
        time_as: Option<TimeAs>,
        /// Compute the table with promoml's engine and write it here (CSV, or Parquet for
        /// `.parquet`/`.pq`), without the hidden row id.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Keys to remove, as for `run`.
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
    },
}

/// `promoml features --dialect`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum SqlDialect {
    /// Apache DataFusion.
    Datafusion,
    /// PostgreSQL.
    Postgres,
    /// Apache Spark SQL / Databricks.
    Spark,
    /// DuckDB.
    Duckdb,
    /// Trino / Presto.
    Trino,
}

/// `promoml features --time-as`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum TimeAs {
    /// A TIMESTAMP or DATE column.
    Timestamp,
    /// Text (or integers) in `data.timestamp_format`, ISO text without one.
    Text,
}

/// Heartbeat settings of a process in a shared study.
#[derive(clap::Args, Clone, Copy)]
struct SharedArgs {
    /// Seconds between heartbeats of running trials.
    #[arg(long, default_value_t = 2.0, value_name = "S")]
    heartbeat_s: f64,
    /// A running trial with no heartbeat for this many seconds is handed to another worker.
    #[arg(long, default_value_t = 20.0, value_name = "S")]
    grace_s: f64,
}

impl SharedArgs {
    fn options(self, url: &str, wait_s: u64) -> Result<promoml_pipeline::SharedOptions, String> {
        let secs = |flag: &str, v: f64, lo: f64| {
            if v.is_finite() && (lo..=3600.0).contains(&v) {
                Ok(std::time::Duration::from_secs_f64(v))
            } else {
                Err(format!("--{flag} {v}: must be between {lo} and 3600 seconds"))
            }
        };
        let heartbeat = secs("heartbeat-s", self.heartbeat_s, 0.1)?;
        let grace = secs("grace-s", self.grace_s, 0.5)?;
        if grace <= heartbeat {
            return Err(format!(
                "--grace-s {} must be longer than --heartbeat-s {}: a live worker would be taken for dead",
                self.grace_s, self.heartbeat_s
            ));
        }
        Ok(promoml_pipeline::SharedOptions {
            url: url.to_string(),
            heartbeat,
            grace,
            wait: std::time::Duration::from_secs(wait_s.min(86_400)),
        })
    }
}

/// `promoml study` actions.
#[derive(Subcommand)]
enum StudyAction {
    /// One line per study: id, pipeline, state, trials, best score.
    List {
        /// The study database: `postgresql://USER@HOST:PORT/DB`, `sqlite:PATH`, or a run's
        /// `OUT/study.db`.
        #[arg(long, value_name = "URL")]
        storage: String,
    },
    /// A study's settings and every trial (state, score, worker, attempts).
    Show {
        /// The study database.
        #[arg(long, value_name = "URL")]
        storage: String,
        /// The study's id (default: the newest).
        #[arg(long)]
        study: Option<i64>,
    },
    /// A study as a JSON-lines trial log (header line, then one finished trial per line), the
    /// format of `OUT/trials.jsonl`.
    Export {
        /// The study database.
        #[arg(long, value_name = "URL")]
        storage: String,
        /// The study's id (default: the newest).
        #[arg(long)]
        study: Option<i64>,
        /// Write here instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// The formats `validate --emit` writes.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum EmitFormat {
    /// TOML, the reference format.
    Toml,
    /// RON (Rusty Object Notation).
    Ron,
}

/// Run the CLI with the stock plugins plus `extra`; returns the process exit code
/// (0 success, 1 run failure, 2 invalid input).
pub fn main_with(extra: &[RegisterFn]) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let registry = registry_with(extra);
    // Panics that the artifact reader and plugins catch come back as errors: no panic message.
    promoml_core::guard::quiet_caught_panics();
    match cli.command {
        Command::Run { pipeline, out, set, unset, quiet, resume, device, storage, shared } => {
            let mut set = with_unsets(&unset, set);
            init_logging(quiet);
            install_interrupt_handler();
            if let Some(d) = device {
                set.push(format!("pipeline.device={d:?}"));
            }
            let shared = match storage.as_deref().map(|u| shared.options(u, 0)).transpose() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let call = RunCall { path: &pipeline, out: &out, set: &set, registry: &registry, quiet, resume };
            match run(&call, shared) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Worker { pipeline, storage, set, unset, quiet, wait_s, shared } => {
            init_logging(quiet);
            install_interrupt_handler();
            GRACEFUL_STOP.store(true, Ordering::SeqCst);
            let opts = match shared.options(&storage, wait_s) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            let worked = Pipeline::load(&pipeline, &with_unsets(&unset, set), &registry)
                .and_then(|p| promoml_pipeline::data::check_header(&p).map(|()| p))
                .and_then(|p| promoml_pipeline::work(&p, &Progress { bar: None }, &opts).map_err(Into::into));
            match worked {
                Ok(w) => {
                    if !quiet {
                        println!(
                            "worker: {} trial(s) of study {} evaluated here; the study's budget is spent",
                            w.trials.len(),
                            w.study
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Study { action } => match study_command(action) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Validate { pipeline, set, unset, emit } => {
            let emitted = |p: &Pipeline| match emit {
                None => Ok(None),
                Some(EmitFormat::Toml) => p.source.emit(Format::Toml).map(Some),
                Some(EmitFormat::Ron) => p.source.emit(Format::Ron).map(Some),
            };
            // Every outer fold's pipeline is built too: a split the folds replace must validate.
            let folds_valid =
                |p: &Pipeline| (0..p.outer_folds.unwrap_or(0)).try_for_each(|r| p.outer_fold(r, &registry).map(|_| ()));
            match Pipeline::load(&pipeline, &with_unsets(&unset, set), &registry)
                .and_then(|p| promoml_pipeline::data::check_header(&p).map(|()| p))
                .and_then(|p| folds_valid(&p).map(|()| p))
                .and_then(|p| emitted(&p).map(|text| (p, text)))
            {
                Ok((p, text)) => {
                    let verdict = format!(
                        "{}: valid ({} task, {} candidate model(s), {} cleaner(s), {} feature step(s){})",
                        pipeline.display(),
                        p.task.name(),
                        p.candidates.len(),
                        p.cleaners.len(),
                        p.features.len(),
                        p.outer_folds.map(|k| format!(", {k} outer folds")).unwrap_or_default()
                    );
                    match text {
                        Some(text) => {
                            print!("{text}");
                            eprintln!("{verdict}");
                        }
                        None => println!("{verdict}"),
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&e),
            }
        }
        Command::Compare { baseline, current, max_drop } => match compare_files(&baseline, &current, max_drop) {
            Ok(c) => {
                print!("{}", c.markdown);
                if c.passed() {
                    ExitCode::SUCCESS
                } else {
                    eprintln!("regression: {}", c.regressions.join("; "));
                    ExitCode::from(1)
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { model, addr, max_body_bytes, max_rows, max_explain_rows, max_in_flight } => {
            init_logging(false);
            let opts = promoml_serve::ServeOptions {
                max_body_bytes,
                max_rows,
                max_explain_rows,
                max_in_flight,
                ..promoml_serve::ServeOptions::new(model, addr)
            };
            match promoml_serve::serve(opts, registry) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Predict { model, input, output, cutoff, explain } => {
            if let Err(e) = check_output(&output, &[("model", &model), ("input", &input)]) {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
            let scored = promoml_pipeline::artifact::Artifact::read(&model, &registry).and_then(|a| {
                let what = if a.reads_event_log() { "entities of the event log" } else { "rows of" };
                Ok((a.predict_file_explained(&input, &output, cutoff.as_deref(), explain)?, what))
            });
            match scored {
                Ok((n, what)) => {
                    println!(
                        "scored {n} {what} {} with {}; wrote {}",
                        input.display(),
                        model.display(),
                        output.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Plugins { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&plugins_json(&registry)).expect("serialisable"));
            } else {
                print!("{}", plugins_text(&registry));
            }
            ExitCode::SUCCESS
        }
        Command::Features { pipeline, sql, dialect, time_as, out, set, unset } => {
            let loaded = Pipeline::load(&pipeline, &with_unsets(&unset, set), &registry);
            let p = match loaded {
                Ok(p) => p,
                Err(e) => return fail(&e),
            };
            match features_command(&p, sql, dialect, time_as, out.as_deref()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(if matches!(e, promoml_core::Error::Config { .. }) { 2 } else { 1 })
                }
            }
        }
    }
}

/// `promoml features`: print the event plan of `p` as SQL, or compute its entity table and
/// write it to `out`.
fn features_command(
    p: &Pipeline,
    sql: bool,
    dialect: SqlDialect,
    time_as: Option<TimeAs>,
    out: Option<&Path>,
) -> promoml_core::Result<()> {
    use promoml_pipeline::data::sql::{Dialect, TimeColumn, events_sql, write_table};
    let data = &p.data;
    let (Some(events), promoml_pipeline::plan::DataSource::File { path, .. }) = (&data.events, &data.source) else {
        return Err(promoml_core::Error::config(
            "data.events",
            "the pipeline has no `[data.events]` section: `features` turns an event log into one row per entity",
        ));
    };
    if sql {
        let dialect = match dialect {
            SqlDialect::Datafusion => Dialect::DataFusion,
            SqlDialect::Postgres => Dialect::Postgres,
            SqlDialect::Spark => Dialect::Spark,
            SqlDialect::Duckdb => Dialect::DuckDb,
            SqlDialect::Trino => Dialect::Trino,
        };
        let format = data.read.csv.timestamp_format.as_deref();
        let time = match time_as {
            Some(TimeAs::Timestamp) => TimeColumn::Timestamp,
            Some(TimeAs::Text) => TimeColumn::text(format),
            None => TimeColumn::of_log(path, &data.read, &events.time),
        };
        print!("{}", events_sql(events, &data.target, &time, dialect)?);
        return Ok(());
    }
    let out = out.expect("clap requires --sql or --out");
    if out.canonicalize().is_ok_and(|o| path.canonicalize().is_ok_and(|p| p == o)) {
        return Err(promoml_core::Error::config(
            "--out",
            format!("{} is the event log itself; write the table to another file", out.display()),
        ));
    }
    let built = promoml_pipeline::data::events::build_file(path, &data.read, events, &data.target, data.memory_limit)?;
    write_table(&built.table.frame, out)?;
    println!(
        "wrote {} entities ({} columns) of {} ({} events) to {}",
        built.table.frame.n_rows(),
        built.table.frame.n_cols() - 1,
        path.display(),
        built.events,
        out.display()
    );
    Ok(())
}

/// The overrides of `--unset` (as `!KEY` entries, applied first) and `--set`, in the form
/// [`Pipeline::load`] takes.
fn with_unsets(unset: &[String], set: Vec<String>) -> Vec<String> {
    unset.iter().map(|k| format!("!{k}")).chain(set).collect()
}

/// Read two reports and compare them (`promoml compare`). The error names the file and what is
/// wrong with it, or why the reports are not comparable.
pub fn compare_files(baseline: &Path, current: &Path, max_drop: f64) -> Result<promoml_report::Comparison, String> {
    let read = |role: &str, path: &Path| -> Result<promoml_report::Report, String> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read the {role} report {shown}: {e}"))?;
        promoml_report::Report::from_json(&text, &shown).map_err(|e| format!("{role} report: {e}"))
    };
    let (b, c) = (read("baseline", baseline)?, read("current", current)?);
    let labels = [baseline.display().to_string(), current.display().to_string()];
    promoml_report::compare(&b, &c, max_drop, [&labels[0], &labels[1]]).map_err(|e| e.to_string())
}

/// Refuse an `--output` that is one of the files `predict` reads (`reads`: role and path), by
/// canonical path and, where the output exists, by file identity (a hard link, another
/// spelling): scores must never overwrite the model or the rows they come from.
pub fn check_output(output: &Path, reads: &[(&str, &Path)]) -> Result<(), String> {
    // Where the output would be written: its canonical path, or its folder's when it does not
    // exist yet.
    let target = output.canonicalize().ok().or_else(|| {
        let name = output.file_name()?;
        let dir = output.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        Some(dir.canonicalize().ok()?.join(name))
    });
    for (role, path) in reads {
        let same_path = target.is_some() && path.canonicalize().ok() == target;
        if same_path || same_file(output, path) {
            return Err(format!(
                "--output {} is the {role} file {} that predict reads; write the scores to another file",
                output.display(),
                path.display()
            ));
        }
    }
    Ok(())
}

/// Whether two existing paths are the same file (device and inode on Unix).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Whether two existing paths are the same file (compared by canonical path elsewhere).
#[cfg(not(unix))]
fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

fn fail(e: &PipelineError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(e.exit_code())
}

fn init_logging(quiet: bool) {
    // On a terminal the progress bar shows what runs; off it (a CI log), every epoch of a long
    // fit gets a line (`promoml_core::PROGRESS_TARGET`).
    let default = match (quiet, std::io::stderr().is_terminal()) {
        (true, _) => "error",
        (false, true) => "info,promoml_progress=warn",
        (false, false) => "info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PROMOML_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}

/// Progress: a bar on a terminal, log lines otherwise.
struct Progress {
    bar: Option<ProgressBar>,
}

impl Observer for Progress {
    fn stage(&self, message: &str) {
        match &self.bar {
            Some(b) => b.set_message(message.to_string()),
            None => tracing::info!("{message}"),
        }
    }
    fn search_started(&self, total: usize) {
        if let Some(b) = &self.bar {
            b.set_length(total as u64);
            b.set_message("searching");
        } else {
            tracing::info!("searching: up to {total} trials");
        }
    }
    fn trial_done(&self, t: &Trial) {
        let what = match (&t.score, &t.error) {
            (Some(s), _) => format!("{} trial {}: cv {s:.4} ({:.1} s)", t.model, t.number, t.seconds),
            (None, Some(e)) => format!("{} trial {} failed: {e}", t.model, t.number),
            _ => format!("{} trial {}", t.model, t.number),
        };
        match &self.bar {
            Some(b) => {
                b.inc(1);
                b.set_message(what);
            }
            None => tracing::info!("{what}"),
        }
    }
}

/// Whether an interrupt lets the run finish its trial log (supervised tasks, whose search loop
/// stops between trials) rather than ending the process at once.
static GRACEFUL_STOP: AtomicBool = AtomicBool::new(false);

/// On SIGINT or SIGTERM: the first asks the run to stop after the trials in flight (their trial
/// log stays complete and resumable); a second, or any when the task keeps no trial log, ends the
/// process at once with exit code 130.
fn install_interrupt_handler() {
    let seen = AtomicBool::new(false);
    let installed = ctrlc::set_handler(move || {
        if seen.swap(true, Ordering::SeqCst) || !GRACEFUL_STOP.load(Ordering::SeqCst) {
            eprintln!("interrupted: stopping now");
            std::process::exit(130);
        }
        promoml_core::interrupt::request();
        eprintln!("interrupted: finishing the trial log, then stopping (interrupt again to stop at once)");
    });
    if let Err(e) = installed {
        tracing::warn!("no interrupt handler ({e}): an interrupt ends the run at once");
    }
}

fn run_error(message: String) -> PipelineError {
    PipelineError::Run(promoml_core::Error::data(message))
}

/// `promoml study list|show|export`.
fn study_command(action: StudyAction) -> Result<(), String> {
    // A closed pipe (`promoml study show ... | head`) ends the listing quietly.
    match study_listing(action) {
        Err(e) if e == BROKEN_PIPE => Ok(()),
        other => other,
    }
}

const BROKEN_PIPE: &str = "broken pipe";

fn study_listing(action: StudyAction) -> Result<(), String> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let io = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::BrokenPipe { BROKEN_PIPE.to_string() } else { e.to_string() }
    };
    use promoml_pipeline::study::open_store;
    use promoml_pipeline::study::shared::SharedStore;
    let open = |url: &str| -> Result<Box<dyn SharedStore>, String> {
        // A run's own OUT/study.db may be named as a path.
        let url =
            if url.contains("://") || url.starts_with("sqlite:") { url.to_string() } else { format!("sqlite:{url}") };
        if let Some(path) = url.strip_prefix("sqlite:").map(|p| p.trim_start_matches("//"))
            && !Path::new(path).is_file()
        {
            return Err(format!("--storage {url}: no such study database"));
        }
        open_store(&url).map_err(|e| e.to_string())
    };
    let pick = |store: &mut dyn SharedStore, id: Option<i64>| {
        let studies = store.studies().map_err(|e| e.to_string())?;
        match id {
            Some(id) => studies.into_iter().find(|s| s.id == id).ok_or_else(|| format!("--study {id}: no such study")),
            None => studies.into_iter().next().ok_or_else(|| "the storage holds no study".to_string()),
        }
    };
    match action {
        StudyAction::List { storage } => {
            let mut store = open(&storage)?;
            writeln!(
                out,
                "{:>5}  {:<28} {:<9} {:>7} {:>9}  {:<12} best",
                "id", "pipeline", "state", "trials", "finished", "fingerprint"
            )
            .map_err(io)?;
            for s in store.studies().map_err(|e| e.to_string())? {
                let trials = store.trials(s.id).map_err(|e| e.to_string())?;
                let best = best_line(&trials, &s.header.settings);
                writeln!(
                    out,
                    "{:>5}  {:<28} {:<9} {:>7} {:>9}  {:<12} {best}",
                    s.id,
                    s.pipeline,
                    s.state,
                    s.n_trials,
                    s.n_finished,
                    &s.fingerprint[..12.min(s.fingerprint.len())]
                )
                .map_err(io)?;
            }
            Ok(())
        }
        StudyAction::Show { storage, study } => {
            let mut store = open(&storage)?;
            let s = pick(store.as_mut(), study)?;
            let trials = store.trials(s.id).map_err(|e| e.to_string())?;
            writeln!(out, "study {} of pipeline `{}` ({}), seed {}", s.id, s.pipeline, s.state, s.header.seed)
                .map_err(io)?;
            writeln!(out, "fingerprint {} (data sha256 {})", s.fingerprint, s.header.data_sha256).map_err(io)?;
            writeln!(
                out,
                "promoml {}; {} trial(s), {} finished; best: {}",
                s.header.promoml_version,
                s.n_trials,
                s.n_finished,
                best_line(&trials, &s.header.settings)
            )
            .map_err(io)?;
            writeln!(
                out,
                "{:<28} {:>6} {:<9} {:>10} {:>8} {:>8}  worker / note",
                "model", "trial", "state", "score", "seconds", "attempts"
            )
            .map_err(io)?;
            for t in &trials {
                let score = t.record.as_ref().and_then(|r| r.trial.score).map_or("-".into(), |v| format!("{v:.5}"));
                let secs = t.record.as_ref().map_or("-".into(), |r| format!("{:.1}", r.trial.seconds));
                let note = t.note.as_deref().map(|n| format!("; {}", n.replace('\n', "; "))).unwrap_or_default();
                writeln!(
                    out,
                    "{:<28} {:>6} {:<9} {:>10} {:>8} {:>8}  {}{note}",
                    t.model,
                    t.number,
                    t.state.as_str(),
                    score,
                    secs,
                    t.attempts,
                    t.worker.as_deref().unwrap_or("-")
                )
                .map_err(io)?;
            }
            Ok(())
        }
        StudyAction::Export { storage, study, output } => {
            let mut store = open(&storage)?;
            let s = pick(store.as_mut(), study)?;
            let mut text = serde_json::to_string(&s.header).map_err(|e| e.to_string())? + "\n";
            for t in store.trials(s.id).map_err(|e| e.to_string())? {
                if let Some(r) = t.record {
                    text += &(serde_json::to_string(&r).map_err(|e| e.to_string())? + "\n");
                }
            }
            match output {
                Some(path) => std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display())),
                None => out.write_all(text.as_bytes()).map_err(io),
            }
        }
    }
}

/// The best finished trial of a study, as `model #n score`, judged by the study's metric.
fn best_line(
    trials: &[promoml_pipeline::study::shared::SharedTrial],
    settings: &std::collections::BTreeMap<String, String>,
) -> String {
    // The study's metric: its setting, else the task's default (rmse for regression, lower is
    // better; roc_auc / accuracy otherwise, higher is better).
    let lower_better = match settings.get("search.metric") {
        Some(m) => promoml_core::Metric::from_name(m.trim_matches('"')).is_ok_and(|m| !m.higher_is_better()),
        None => settings.get("pipeline.task").is_some_and(|t| t.trim_matches('"') == "regression"),
    };
    let mut best: Option<(&str, usize, f64)> = None;
    for t in trials {
        if let Some(r) = &t.record
            && let (Some(v), false, None) = (r.trial.score, r.trial.pruned, &r.trial.error)
            && best.is_none_or(|(_, _, b)| if lower_better { v < b } else { v > b })
        {
            best = Some((&t.model, t.number, v));
        }
    }
    match best {
        Some((m, n, v)) => format!("{m} #{n} {v:.5}"),
        None => "-".into(),
    }
}

/// What `promoml run` was asked to do: the pipeline file, the output folder, the overrides
/// (`--set`/`--unset`, as [`with_unsets`] joins them), the registry and the flags.
#[derive(Clone, Copy)]
struct RunCall<'a> {
    path: &'a Path,
    out: &'a Path,
    set: &'a [String],
    registry: &'a Registry,
    quiet: bool,
    resume: bool,
}

fn run(call: &RunCall<'_>, shared: Option<promoml_pipeline::SharedOptions>) -> Result<(), PipelineError> {
    let RunCall { path, out, set, registry, quiet, resume } = *call;
    let pipeline = Pipeline::load(path, set, registry)?;
    promoml_pipeline::data::check_header(&pipeline)?;
    if let Some(device) = pipeline.unused_device() {
        tracing::warn!(
            "device \"{device}\" is set (pipeline.device or --device) but no candidate model uses a device; \
             every model runs on the CPU"
        );
    }
    if let Some(k) = pipeline.outer_folds {
        if shared.is_some() {
            return Err(run_error(
                "--storage shares one study, but `evaluation.outer_folds` runs one study per fold: run the folds \
                 without --storage"
                    .into(),
            ));
        }
        return run_folds(&pipeline, k, call);
    }
    let dir = OutDir::acquire(out, path).map_err(run_error)?;
    // A shared study resumes from its database, not from OUT.
    dir.prepare(resume && shared.is_none()).map_err(run_error)?;
    let report = run_in(&pipeline, &dir, call, shared)?;
    publish(dir, out, 0, &report, quiet)
}

/// Publish the staged outputs of `dir` into `out`, remove fold folders of an earlier run that
/// are not among this run's `folds` (0 without outer folds), and print the summary and what was
/// written unless `quiet`.
fn publish(
    dir: OutDir,
    out: &Path,
    folds: usize,
    report: &promoml_report::Report,
    quiet: bool,
) -> Result<(), PipelineError> {
    let written = dir.publish().map_err(run_error)?;
    outdir::remove_stale_folds(out, folds).map_err(run_error)?;
    if !quiet {
        println!("{}", summary(report));
        for w in written {
            println!("wrote {}", w.display());
        }
        if folds > 0 {
            println!(
                "wrote each fold's outputs into {} .. {}",
                out.join("fold-0").display(),
                out.join(format!("fold-{}", folds - 1)).display()
            );
        }
    }
    Ok(())
}

/// Remove the outputs of `dir`'s previous run after a failed one (a failure to do so is said,
/// not fatal: the run's own error is the one to report).
fn discard_previous(dir: &OutDir) {
    if let Err(d) = dir.discard_previous() {
        eprintln!("error: could not remove the previous run's outputs: {d}");
    }
}

/// Run `pipeline` into the staging folder of `dir` (reports, model, trial log); on failure
/// remove the outputs of `dir`'s previous run and say how to resume (`promoml run PATH --out
/// OUT ... --resume`).
fn run_in(
    pipeline: &Pipeline,
    dir: &OutDir,
    call: &RunCall<'_>,
    shared: Option<promoml_pipeline::SharedOptions>,
) -> Result<promoml_report::Report, PipelineError> {
    let RunCall { path, out, set, registry, quiet, resume } = *call;
    GRACEFUL_STOP.store(
        matches!(
            pipeline.task,
            promoml_core::Task::Binary | promoml_core::Task::Multiclass | promoml_core::Task::Regression
        ),
        Ordering::SeqCst,
    );
    let logged_before = dir.logged_trials();
    let artifact = promoml_pipeline::artifact::for_task(pipeline, dir.staging(), registry);
    let opts = promoml_pipeline::RunOptions {
        trial_log: Some(dir.trial_log()),
        study_db: Some(dir.study_db()),
        resume,
        artifact,
        shared,
    };
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        b
    });
    let progress = Progress { bar };
    let result = promoml_pipeline::run_with(pipeline, &progress, &opts);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            discard_previous(dir);
            let logged = dir.logged_trials();
            if logged > logged_before {
                let again: Vec<String> = set
                    .iter()
                    .map(|s| match s.strip_prefix('!') {
                        Some(k) => format!(" --unset '{k}'"),
                        None => format!(" --set '{s}'"),
                    })
                    .collect();
                eprintln!(
                    "{logged} finished trial(s) are logged in {}. Continue with: promoml run {} --out {}{} --resume",
                    dir.trial_log().display(),
                    path.display(),
                    out.display(),
                    again.concat()
                );
            }
            return Err(e.into());
        }
    };
    promoml_pipeline::write_report(&report, &pipeline.formats, dir.staging())?;
    Ok(report)
}

/// `[evaluation] outer_folds = K`: run the whole pipeline on each fold r of K (a modulo split,
/// remainder r) into `OUT/fold-r/`, then write into `OUT` the last fold's report with the
/// `folds` section added, and the last fold's model.
fn run_folds(pipeline: &Pipeline, k: usize, call: &RunCall<'_>) -> Result<(), PipelineError> {
    let RunCall { path, out, registry, quiet, resume, .. } = *call;
    // Every fold's pipeline is built (and so validated) before the first one runs.
    let folds: Vec<Pipeline> = (0..k).map(|r| pipeline.outer_fold(r, registry)).collect::<Result<_, _>>()?;
    let dir = OutDir::acquire(out, path).map_err(run_error)?;
    dir.prepare(false).map_err(run_error)?;
    let mut reports = Vec::new();
    for (r, fold) in folds.iter().enumerate() {
        if !quiet {
            eprintln!("outer fold {r} of {k}: test rows are those with i % {k} == {r}");
        }
        let fold_out = out.join(format!("fold-{r}"));
        let fold_dir = OutDir::acquire(&fold_out, path).map_err(run_error)?;
        // --resume continues the folds that logged a study and starts the others afresh.
        let logged = [fold_dir.trial_log(), fold_dir.study_db()]
            .iter()
            .chain(&[fold_out.join(outdir::TRIAL_LOG), fold_out.join(outdir::STUDY_DB)])
            .any(|p| p.is_file());
        let fold_resume = resume && logged;
        fold_dir.prepare(fold_resume).map_err(run_error)?;
        let report = match run_in(fold, &fold_dir, &RunCall { resume: fold_resume, ..*call }, None) {
            Ok(report) => report,
            Err(e) => {
                discard_previous(&dir);
                return Err(e);
            }
        };
        fold_dir.publish().map_err(run_error)?;
        reports.push(report);
    }
    let mut report = reports.last().expect("at least two folds").clone();
    report.folds = Some(promoml_report::FoldsSection::from_reports(&reports));
    promoml_pipeline::write_report(&report, &pipeline.formats, dir.staging())?;
    let model = out.join(format!("fold-{}", k - 1)).join("model.promoml");
    if model.is_file() {
        let to = dir.staging().join("model.promoml");
        std::fs::copy(&model, &to).map_err(|e| run_error(format!("{}: {e}", to.display())))?;
    }
    publish(dir, out, k, &report, quiet)
}

/// A short leaderboard for the terminal.
pub fn summary(r: &promoml_report::Report) -> String {
    let mut s = format!("{} ({}): final model {}\n", r.pipeline, r.task, r.final_model);
    s.push_str(&format!(
        "{:<32} {:>12} {:>12} {:>8}\n",
        "model",
        format!("cv {}", r.metric),
        format!("test {}", r.metric),
        "fit s"
    ));
    for e in &r.leaderboard {
        s.push_str(&format!(
            "{:<32} {:>12.4} {:>12.4} {:>8.2}\n",
            e.name,
            e.cv.get(&r.metric).copied().unwrap_or(f64::NAN),
            e.test.get(&r.metric).copied().unwrap_or(f64::NAN),
            e.fit_s
        ));
    }
    for f in &r.failures {
        s.push_str(&format!("{:<32} failed: {}\n", f.model, f.error));
    }
    if let Some(f) = &r.folds {
        s.push_str(&format!("outer folds: {} (the rows above are fold {}'s)\n", f.k, f.k - 1));
        for c in &f.candidates {
            if let (Some(v), Some(m), Some(sd)) = (c.values.get(&f.metric), c.mean.get(&f.metric), c.sd.get(&f.metric))
            {
                let per: Vec<String> = v.iter().map(|x| format!("{x:.4}")).collect();
                s.push_str(&format!(
                    "{:<32} test {} per fold {}: mean {m:.4}, sd {sd:.4}\n",
                    c.name,
                    f.metric,
                    per.join(" ")
                ));
            }
        }
        for p in &f.paired {
            let m = &p.summary;
            s.push_str(&format!(
                "{} − {}: mean {:+.4}, 95 % interval [{:+.4}, {:+.4}]\n",
                p.first, p.second, m.mean, m.low, m.high
            ));
        }
    }
    s.push_str(&format!("total {:.1} s", r.timing.total_s));
    s
}

/// Every registered component as JSON.
pub fn plugins_json(r: &Registry) -> serde_json::Value {
    let models: Vec<serde_json::Value> = r
        .models()
        .map(|m| {
            serde_json::json!({
                "kind": m.kind(),
                "description": m.description(),
                "tasks": m.tasks().iter().map(|t| t.name()).collect::<Vec<_>>(),
                "params": m.space().params,
            })
        })
        .collect();
    let steps = |it: Vec<(String, String, Vec<promoml_core::SettingDoc>)>| -> Vec<serde_json::Value> {
        it.into_iter().map(|(k, d, s)| serde_json::json!({"kind": k, "description": d, "settings": s})).collect()
    };
    serde_json::json!({
        "models": models,
        "cleaners": steps(r.cleaners().map(|c| (c.kind().to_string(), c.description().to_string(), c.settings())).collect()),
        "features": steps(r.features().map(|c| (c.kind().to_string(), c.description().to_string(), c.settings())).collect()),
        "optimizers": r.optimizers().map(|o| serde_json::json!({"kind": o.kind(), "description": o.description()})).collect::<Vec<_>>(),
        "anomaly_detectors": r.detectors().map(|d| serde_json::json!({"kind": d.kind(), "description": d.description(), "params": d.space().params})).collect::<Vec<_>>(),
    })
}

/// Every registered component as text.
pub fn plugins_text(r: &Registry) -> String {
    let mut s = String::from("MODELS\n");
    for m in r.models() {
        let tasks: Vec<&str> = m.tasks().iter().map(|t| t.name()).collect();
        s.push_str(&format!("  {}  [{}]\n    {}\n", m.kind(), tasks.join(", "), m.description()));
        for p in m.space().params {
            let searched = p.search.as_ref().map(|d| format!("; searched: {d}")).unwrap_or_default();
            let cond = p.condition.as_ref().map(|(k, v)| format!("; only when {k} = {v}")).unwrap_or_default();
            s.push_str(&format!("      {} = {}  ({}{searched}{cond})  {}\n", p.name, p.default, p.valid, p.doc));
        }
    }
    let mut steps = |title: &str, items: Vec<(String, String, Vec<promoml_core::SettingDoc>)>| {
        s.push_str(&format!("{title}\n"));
        for (k, d, settings) in items {
            s.push_str(&format!("  {k}\n    {d}\n"));
            for st in settings {
                s.push_str(&format!("      {} = {}  ({})  {}\n", st.name, st.default, st.accepts, st.doc));
            }
        }
    };
    steps(
        "CLEANERS",
        r.cleaners().map(|c| (c.kind().to_string(), c.description().to_string(), c.settings())).collect(),
    );
    steps(
        "FEATURES",
        r.features().map(|c| (c.kind().to_string(), c.description().to_string(), c.settings())).collect(),
    );
    s.push_str("OPTIMIZERS\n");
    for o in r.optimizers() {
        s.push_str(&format!("  {}\n    {}\n", o.kind(), o.description()));
    }
    s.push_str("ANOMALY DETECTORS\n");
    let detectors: Vec<_> = r.detectors().collect();
    if detectors.is_empty() {
        s.push_str("  (none registered)\n");
    }
    for d in detectors {
        s.push_str(&format!("  {}\n    {}\n", d.kind(), d.description()));
    }
    s
}

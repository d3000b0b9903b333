//! The `promoml` command line, as a library so that a team can build its own binary with its
//! own plugins added: `promoml_cli::main_with(&[my_plugin::register])`.

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use promoml_core::Registry;
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
#[command(name = "promoml", version, about = "AutoML and ensembles for personalised promotions, from one TOML file")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a pipeline and write its report into a folder.
    Run {
        /// The pipeline TOML file.
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
    },
    /// Check a pipeline without running it.
    Validate {
        /// The pipeline TOML file.
        pipeline: PathBuf,
        /// Overrides, as for `run`.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Keys to remove, as for `run`.
        #[arg(long = "unset", value_name = "KEY")]
        unset: Vec<String>,
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
        Command::Run { pipeline, out, set, unset, quiet, resume, device } => {
            let mut set = with_unsets(&unset, set);
            init_logging(quiet);
            install_interrupt_handler();
            if let Some(d) = device {
                set.push(format!("pipeline.device={d:?}"));
            }
            match run(&pipeline, &out, &set, &registry, quiet, resume) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&e),
            }
        }
        Command::Validate { pipeline, set, unset } => {
            match Pipeline::load(&pipeline, &with_unsets(&unset, set), &registry)
                .and_then(|p| promoml_pipeline::data::check_header(&p).map(|()| p))
            {
                Ok(p) => {
                    println!(
                        "{}: valid ({} task, {} candidate model(s), {} cleaner(s), {} feature step(s))",
                        pipeline.display(),
                        p.task.name(),
                        p.candidates.len(),
                        p.cleaners.len(),
                        p.features.len()
                    );
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
    }
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

fn run(
    path: &Path,
    out: &Path,
    set: &[String],
    registry: &Registry,
    quiet: bool,
    resume: bool,
) -> Result<(), PipelineError> {
    let pipeline = Pipeline::load(path, set, registry)?;
    promoml_pipeline::data::check_header(&pipeline)?;
    if let Some(device) = pipeline.unused_device() {
        tracing::warn!(
            "device \"{device}\" is set (pipeline.device or --device) but no candidate model uses a device; \
             every model runs on the CPU"
        );
    }
    let dir = OutDir::acquire(out, path).map_err(run_error)?;
    dir.prepare(resume).map_err(run_error)?;
    GRACEFUL_STOP.store(
        matches!(
            pipeline.task,
            promoml_core::Task::Binary | promoml_core::Task::Multiclass | promoml_core::Task::Regression
        ),
        Ordering::SeqCst,
    );
    let logged_before = dir.logged_trials();
    let artifact = promoml_pipeline::artifact::for_task(&pipeline, dir.staging(), registry);
    let opts = promoml_pipeline::RunOptions { trial_log: Some(dir.trial_log()), resume, artifact };
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {wide_msg}")
                .expect("valid template"),
        );
        b
    });
    let progress = Progress { bar };
    let result = promoml_pipeline::run_with(&pipeline, &progress, &opts);
    if let Some(b) = &progress.bar {
        b.finish_and_clear();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            if let Err(d) = dir.discard_previous() {
                eprintln!("error: could not remove the previous run's outputs: {d}");
            }
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
    let written = dir.publish().map_err(run_error)?;
    if !quiet {
        println!("{}", summary(&report));
        for w in written {
            println!("wrote {}", w.display());
        }
    }
    Ok(())
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

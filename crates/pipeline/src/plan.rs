//! A validated pipeline: every kind resolved in the registry, every parameter checked, every
//! path resolved relative to the pipeline file. Built once from a [`PipelineSpec`].

use crate::error::Result;
use crate::limits;
use crate::spec::{PipelineSpec, RangeSpec, Source};
use promoml_core::io::{CsvOptions, ReadOptions};
use promoml_core::{
    Cleaner, Domain, Error, FeatureExtractor, Metric, Model, OptimizerFactory, ParamValue, Params, Registry,
    SearchSpace, Task,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A configured step with its kind.
pub struct Step<T: ?Sized> {
    /// Registered kind.
    pub kind: String,
    /// The configured step.
    pub step: Box<T>,
}

/// A candidate model and how to search it.
pub struct Candidate {
    /// Leaderboard name.
    pub name: String,
    /// The model kind.
    pub model: Arc<dyn Model>,
    /// Parameters fixed in TOML, validated.
    pub fixed: Params,
    /// The space searched: defaults and fixed values applied, TOML ranges applied.
    pub space: SearchSpace,
    /// Trials to run.
    pub trials: usize,
}

/// How train and test rows are obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// The built-in `synthetic.promotion` source, cut by a split rule.
    Synthetic {
        /// The price-sensitivity variant (`synthetic.price`): arms are discount levels.
        price: bool,
        /// Rows to generate.
        rows: usize,
        /// Treatment arms.
        arms: usize,
        /// How to cut it.
        split: SplitRule,
    },
    /// One file cut by a split rule.
    File {
        /// The file.
        path: PathBuf,
        /// How to cut it.
        split: SplitRule,
    },
    /// Separate train and test files.
    TrainTest {
        /// Training file.
        train: PathBuf,
        /// Test file.
        test: PathBuf,
    },
}

/// How one table is cut into train and test.
#[derive(Debug, Clone, PartialEq)]
pub enum SplitRule {
    /// Uniformly random test rows.
    Random {
        /// Share of test rows.
        test_fraction: f64,
        /// Seed.
        seed: u64,
    },
    /// Random within each class of the target (classification).
    Stratified {
        /// Share of test rows.
        test_fraction: f64,
        /// Seed.
        seed: u64,
    },
    /// Row `i` is a test row when `i % modulo == remainder` (the benchmark splits' rule).
    Modulo {
        /// Divisor.
        modulo: usize,
        /// Remainder marking test rows.
        remainder: usize,
        /// When set, this integer column's value replaces the row number.
        column: Option<String>,
    },
    /// No split: every row is fitted on and scored (`kind = "none"`; anomaly tasks only, whose
    /// detectors never see the label: the unsupervised protocol of ODDS/PyOD benchmarks).
    All,
}

/// The validated `[data]` section.
#[derive(Debug, Clone)]
pub struct DataPlan {
    /// Where rows come from.
    pub source: DataSource,
    /// Target column.
    pub target: String,
    /// Positive class label (binary).
    pub positive: Option<String>,
    /// Identifier column kept out of features.
    pub id: Option<String>,
    /// Columns removed at load.
    pub drop: Vec<String>,
    /// How files are read.
    pub read: ReadOptions,
    /// `[data.events]`: the file is an event log turned into one example per entity.
    pub events: Option<crate::sequence::EventsPlan>,
    /// `[data] memory_limit`: bytes the query engine's operators may hold before spilling.
    pub memory_limit: usize,
    /// `[data] derive`: (column, SQL expression), in key order.
    pub derive: Vec<(String, String)>,
    /// Every text value and key of the pipeline file: a column named anywhere in it (in
    /// `types`, a step's `columns`, `policy.key`, ...) is never left out as an identifier.
    pub named: std::collections::BTreeSet<String>,
}

/// Every string value and every key of a TOML document (see [`DataPlan::named`]).
fn named_in(text: &str) -> std::collections::BTreeSet<String> {
    fn walk(v: &toml::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            toml::Value::String(s) => {
                out.insert(s.clone());
            }
            toml::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            toml::Value::Table(t) => {
                for (k, x) in t {
                    out.insert(k.clone());
                    walk(x, out);
                }
            }
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    if let Ok(t) = toml::from_str::<toml::Table>(text) {
        walk(&toml::Value::Table(t), &mut out);
    }
    out
}

/// The validated `[search]` section.
pub struct SearchPlan {
    /// Optimiser kind name.
    pub optimizer_kind: String,
    /// Optimiser factory.
    pub optimizer: Arc<dyn OptimizerFactory>,
    /// Random trials first, for model-based optimisers.
    pub startup_trials: usize,
    /// CV folds.
    pub cv_folds: usize,
    /// Ranking metric.
    pub metric: Metric,
    /// Wall-clock budget of the run.
    pub time_budget: Option<Duration>,
    /// Trials asked and run together.
    pub parallel_trials: usize,
    /// When to stop a trial early.
    pub pruner: Pruner,
    /// Binary tasks: how the decision threshold behind `accuracy` and `f1` is chosen.
    pub threshold: Threshold,
}

/// The decision threshold of a binary classifier (`search.threshold`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Threshold {
    /// Maximum F1 on the model's out-of-fold predictions of the training rows (the default).
    MaxF1,
    /// A fixed positive-class probability.
    Fixed(f64),
}

/// When a trial stops before its last fold.
#[derive(Debug, Clone, PartialEq)]
pub enum Pruner {
    /// Never.
    None,
    /// When its running mean after a fold is worse than the median of the candidate's completed
    /// trials at that fold (Optuna's `MedianPruner`).
    Median {
        /// Completed trials needed before pruning starts.
        startup_trials: usize,
        /// Folds a trial always runs before it can be pruned.
        warmup_folds: usize,
    },
}

/// How the candidates' out-of-fold predictions are combined.
#[derive(Debug, Clone, PartialEq)]
pub enum EnsembleKind {
    /// A meta-learner with non-negative weights: a log-linear pool of class probabilities
    /// (logistic regression on logits for binary tasks) or non-negative ridge (regression).
    Stacking {
        /// L2 penalty of the meta-learner.
        l2: f64,
        /// 1 or 2 layers.
        layers: usize,
        /// Candidates refitted in layer 2.
        layer2_models: usize,
    },
    /// Greedy ensemble selection with replacement (Caruana et al. 2004).
    Greedy {
        /// Selection rounds.
        size: usize,
    },
}

/// The validated `[ensemble]` section.
#[derive(Debug, Clone, PartialEq)]
pub struct EnsemblePlan {
    /// Leaderboard name.
    pub name: String,
    /// How to combine.
    pub kind: EnsembleKind,
    /// Most candidates used.
    pub max_members: usize,
}

/// A pipeline ready to run.
pub struct Pipeline {
    /// The file it came from.
    pub source: Source,
    /// Name.
    pub name: String,
    /// Task.
    pub task: Task,
    /// Seed.
    pub seed: u64,
    /// Data.
    pub data: DataPlan,
    /// Cleaners, in order.
    pub cleaners: Vec<Step<dyn Cleaner>>,
    /// Feature steps, in order.
    pub features: Vec<Step<dyn FeatureExtractor>>,
    /// Candidate models.
    pub candidates: Vec<Candidate>,
    /// Search settings.
    pub search: SearchPlan,
    /// Compute device given to every fit and step (parsed once, from `pipeline.device`).
    pub device: promoml_core::Device,
    /// Report formats.
    pub formats: Vec<String>,
    /// Shuffles per feature for permutation importance (0 = off).
    pub importance_repeats: usize,
    /// Time the permutation importance may take (fewer shuffles when needed).
    pub importance_budget: Duration,
    /// The ensemble, if any.
    pub ensemble: Option<EnsemblePlan>,
    /// Treatment, meta-learners and policy of an uplift task.
    pub uplift: Option<crate::uplift::UpliftPlan>,
    /// The detectors of an anomaly task.
    pub anomaly: Option<crate::anomaly::AnomalyPlan>,
    /// `[evaluation] outer_folds`: the number of outer folds the whole pipeline runs on (see
    /// [`Pipeline::outer_fold`]); `None` for one run on the configured split.
    pub outer_folds: Option<usize>,
}

fn toml_to_param(v: &toml::Value) -> Option<ParamValue> {
    Some(match v {
        toml::Value::Integer(i) => ParamValue::Int(*i),
        toml::Value::Float(f) => ParamValue::Float(*f),
        toml::Value::Boolean(b) => ParamValue::Bool(*b),
        toml::Value::String(s) => ParamValue::Str(s.clone()),
        _ => return None,
    })
}

/// The folder relative paths of the pipeline file at `base` are resolved against (`.` for a
/// file given without a folder).
fn pipeline_folder(base: &Path) -> &Path {
    match base.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// `p` relative to the pipeline file's folder, normalised for messages (`./train.csv` reads
/// `train.csv`, `pipelines/../data/x.csv` reads `data/x.csv`) when that names the same file.
fn resolve_path(base: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    let joined = if p.is_absolute() { p.to_path_buf() } else { pipeline_folder(base).join(p) };
    let short = lexical(&joined);
    // `a/link/../b` is not `a/b` when `link` is a symbolic link: keep the joined path then.
    match (joined.canonicalize(), short.canonicalize()) {
        (Ok(a), Ok(b)) if a != b => joined,
        _ => short,
    }
}

/// `path` with `.` removed and `..` applied to the part before it, lexically (a leading `..`
/// stays).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // Above the root is the root.
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() { PathBuf::from(".") } else { out }
}

/// `path` made absolute (against the working directory) with `.` and `..` removed lexically,
/// for error messages that must say exactly which file was looked for.
fn absolute_display(path: &Path) -> PathBuf {
    lexical(&std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()))
}

/// What a path that exists but is not a regular file is, in words.
fn file_kind(t: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a named pipe";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a directory" } else { "not a regular file" }
}

/// Check that the data file `given` (the value of a path setting, relative to the folder of the
/// pipeline file `base` unless absolute) is a regular file, or with `dataset` (an event log) a
/// directory (of Parquet files); returns its resolved path. The message says what is wrong: no
/// such file (with the resolved absolute path and the folder a relative path was resolved
/// against), not a regular file (a directory, a device, ...), or unreadable metadata.
fn check_data_file(base: &Path, given: &str, dataset: bool) -> std::result::Result<PathBuf, String> {
    let path = resolve_path(base, given);
    let relative = !Path::new(given).is_absolute();
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => Ok(path),
        Ok(m) if m.is_dir() && dataset => Ok(path),
        Ok(m) if m.is_dir() => Err(format!(
            "{given} is not a regular file (a directory); a directory of Parquet files is read only as an \
             event log (`[data.events]`), a table is one file"
        )),
        Ok(m) => {
            let kind = file_kind(m.file_type());
            let what = if kind == "not a regular file" { String::new() } else { format!(" ({kind})") };
            Err(format!("{given} is not a regular file{what}"))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(if relative {
            format!(
                "no file {given} (resolved to {}, relative to the pipeline's folder {})",
                absolute_display(&path).display(),
                absolute_display(pipeline_folder(base)).display()
            )
        } else {
            format!("no file {given}")
        }),
        Err(e) => Err(format!("cannot read {given} (resolved to {}): {e}", absolute_display(&path).display())),
    }
}

impl Pipeline {
    /// The device when it is not the CPU yet no candidate model or detector takes a `device`
    /// parameter, so that setting it changes nothing (`promoml run` warns).
    pub fn unused_device(&self) -> Option<promoml_core::Device> {
        if self.device.is_cpu() {
            return None;
        }
        let takes = |s: SearchSpace| s.params.iter().any(|p| p.name == "device");
        let used = self.candidates.iter().any(|c| takes(c.model.space()))
            || self.anomaly.iter().flat_map(|a| &a.detectors).any(|d| takes(d.detector.space()));
        (!used).then_some(self.device)
    }
    /// The context of one fit: `seed`, no deadline, the pipeline's device, all cores.
    pub fn fit_context(&self, seed: u64) -> promoml_core::FitContext {
        promoml_core::FitContext { device: self.device, ..promoml_core::FitContext::new(seed) }
    }
    /// Fold `r` of the pipeline's outer folds: the same file and overrides, with the split
    /// replaced by a modulo split (`modulo = K`, `remainder = r`; row `i`, or the value of
    /// `split.column`, is a test row when it is `r` modulo `K`) and no outer folds: exactly the
    /// pipeline of `--set data.split.kind=modulo --set data.split.modulo=K
    /// --set data.split.remainder=r`.
    pub fn outer_fold(&self, r: usize, registry: &Registry) -> Result<Pipeline> {
        let k = self.outer_folds.ok_or_else(|| {
            crate::error::PipelineError::Run(Error::config("evaluation.outer_folds", "the pipeline has no outer folds"))
        })?;
        let mut overrides: Vec<String> = self.source.overrides.iter().map(|o| o.arg.clone()).collect();
        overrides.extend(fold_overrides(k, r));
        let src = Source::from_text(&self.source.path, self.source.file_text.clone(), &overrides)?;
        let spec = src.parse()?;
        Pipeline::from_spec(src, spec, registry)
    }

    /// Load, parse and validate a pipeline file with `--set` overrides.
    pub fn load(path: &Path, overrides: &[String], registry: &Registry) -> Result<Pipeline> {
        let src = Source::load(path, overrides)?;
        let spec = src.parse()?;
        Pipeline::from_spec(src, spec, registry)
    }

    /// Validate a parsed spec against the registry.
    pub fn from_spec(src: Source, spec: PipelineSpec, registry: &Registry) -> Result<Pipeline> {
        let task = match spec.pipeline.task.as_str() {
            "binary" => Task::Binary,
            "multiclass" => Task::Multiclass,
            "regression" => Task::Regression,
            "uplift" => Task::Uplift,
            "anomaly" => Task::Anomaly,
            other => {
                let hint = promoml_core::did_you_mean(other, Task::NAMES)
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                return Err(src.error_at(
                    "pipeline.task",
                    format!("unknown task \"{other}\" (known: {}){hint}", Task::NAMES.join(", ")),
                ));
            }
        };
        let seed = spec.pipeline.seed;
        let device = match spec.pipeline.device.as_deref() {
            None => promoml_core::Device::Cpu,
            Some(name) => promoml_core::Device::parse(name).map_err(|m| src.error_at("pipeline.device", m))?,
        };
        let data = data_plan(&src, &spec, task, seed)?;
        let outer_folds = outer_folds(&src, &spec, &data)?;
        let uplift = if task == Task::Uplift {
            Some(crate::uplift::config::build(&src, &spec, registry)?)
        } else {
            for (present, key) in [
                (spec.data.treatment.is_some(), "data.treatment"),
                (spec.uplift.is_some(), "uplift"),
                (spec.policy.is_some(), "policy"),
            ] {
                if present {
                    return Err(src.error_at(key, format!("only an uplift task uses `{key}` (task = \"uplift\")")));
                }
            }
            None
        };
        // Base models of an uplift task are fitted for the outcome: binary or regression.
        let model_task = uplift.as_ref().map_or(task, |u| u.outcome);
        let mut cleaners = Vec::new();
        for (i, table) in spec.clean.iter().enumerate() {
            let (kind, settings) = split_kind(&src, table, &format!("clean[{i}]"))?;
            let factory = registry.cleaner(&kind).map_err(|e| relocate(&src, &format!("clean[{i}].kind"), e))?;
            let step =
                factory.build_with(&settings, registry).map_err(|e| relocate(&src, &format!("clean[{i}]"), e))?;
            cleaners.push(Step { kind, step });
        }
        let mut features = Vec::new();
        for (i, table) in spec.features.iter().enumerate() {
            let (kind, settings) = split_kind(&src, table, &format!("features[{i}]"))?;
            let factory = registry.feature(&kind).map_err(|e| relocate(&src, &format!("features[{i}].kind"), e))?;
            let step =
                factory.build_with(&settings, registry).map_err(|e| relocate(&src, &format!("features[{i}]"), e))?;
            features.push(Step { kind, step });
        }
        let s = &spec.search;
        let count = |key: &str, v: usize, min: usize, max: usize| -> Result<usize> {
            limits::count(v, min, max).map_err(|m| src.error_at(key, m))
        };
        count("search.trials", s.trials, 1, limits::MAX_TRIALS)?;
        count("search.cv_folds", s.cv_folds, 2, limits::MAX_FOLDS)?;
        let startup_trials = count("search.startup_trials", s.startup_trials.unwrap_or(10), 0, limits::MAX_TRIALS)?;
        let metric = match &s.metric {
            // Uplift metrics (qini_auc, ...) were checked with the uplift plan.
            Some(m) if uplift.is_none() => Metric::from_name(m).map_err(|e| relocate(&src, "search.metric", e))?,
            _ => Metric::default_for(model_task),
        };
        if uplift.is_none() && !metric.applies_to(task) {
            return Err(src.error_at(
                "search.metric",
                format!(
                    "`{}` does not apply to a {} task (use one of: {})",
                    metric.name(),
                    task.name(),
                    Metric::for_task(task).iter().map(|m| m.name()).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let optimizer = registry.optimizer(&s.optimizer).map_err(|e| relocate(&src, "search.optimizer", e))?.clone();
        let time_budget = s
            .time_budget_s
            .map(|t| limits::seconds(t).map_err(|m| src.error_at("search.time_budget_s", m)))
            .transpose()?;
        if spec.models.is_empty() {
            return Err(src.error_at("models", "no [[models]]: add at least one candidate (see `promoml plugins`)"));
        }
        // An anomaly task's [[models]] name detectors, planned by the anomaly runner.
        let anomaly = if task == Task::Anomaly { Some(crate::anomaly::plan(&src, &spec, registry)?) } else { None };
        let mut candidates: Vec<Candidate> = Vec::new();
        for (i, m) in spec.models.iter().enumerate().filter(|_| anomaly.is_none()) {
            let key = format!("models[{i}]");
            let model = registry.model(&m.kind).map_err(|e| relocate(&src, &format!("{key}.kind"), e))?.clone();
            // In an uplift task a model of effects (tasks include uplift) is a candidate too.
            let of_effects = task == Task::Uplift && crate::uplift::config::models_effects(model.as_ref());
            if !model.tasks().contains(&model_task) && !of_effects {
                return Err(src.error_at(
                    &format!("{key}.kind"),
                    format!(
                        "`{}` does not support the {} task (it supports: {})",
                        m.kind,
                        model_task.name(),
                        model.tasks().iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
            let mut given = Params::new();
            for (k, v) in &m.params {
                let pv = toml_to_param(v)
                    .ok_or_else(|| src.error_at(&format!("{key}.params.{k}"), "expected a number, string or bool"))?;
                given.insert(k.clone(), pv);
            }
            let base = model.space();
            base.resolve(&given, &format!("{key}.params")).map_err(|e| relocate(&src, "", e))?;
            let mut space = base.clone();
            for p in &mut space.params {
                if let Some(v) = given.get(&p.name) {
                    p.default = base.get(&p.name).expect("declared").valid.check(v).expect("validated above");
                    p.search = None;
                }
            }
            for (name, range) in &m.search {
                let rkey = format!("{key}.search.{name}");
                if given.contains_key(name) {
                    return Err(src.error_at(&rkey, format!("`{name}` is both fixed in params and searched")));
                }
                let Some(p) = space.params.iter_mut().find(|p| &p.name == name) else {
                    let hint = promoml_core::did_you_mean(name, base.params.iter().map(|p| p.name.as_str()))
                        .map(|s| format!("; did you mean `{s}`?"))
                        .unwrap_or_default();
                    return Err(src.error_at(&rkey, format!("`{}` has no parameter `{name}`{hint}", m.kind)));
                };
                let d = range_domain(range).map_err(|msg| src.error_at(&rkey, msg))?;
                if !p.valid.contains_domain(&d) {
                    return Err(src.error_at(&rkey, format!("range {d} is outside the valid {}", p.valid)));
                }
                p.search = Some(d);
                if let Some(when) = &range.when {
                    let wkey = format!("{rkey}.when");
                    let mut entries = when.iter();
                    let (Some((other, value)), None) = (entries.next(), entries.next()) else {
                        return Err(src.error_at(&wkey, "give exactly one `parameter = value` entry"));
                    };
                    let Some(dep) = base.params.iter().find(|q| &q.name == other && &q.name != name) else {
                        return Err(src.error_at(&wkey, format!("`{}` has no other parameter `{other}`", m.kind)));
                    };
                    let v = toml_to_param(value)
                        .ok_or_else(|| src.error_at(&wkey, "the value must be a number, string or boolean"))?;
                    let v = dep.valid.check(&v).map_err(|msg| src.error_at(&wkey, format!("`{other}`: {msg}")))?;
                    let p = space.params.iter_mut().find(|p| &p.name == name).expect("found above");
                    p.condition = Some((other.clone(), v));
                }
            }
            let name = m.name.clone().unwrap_or_else(|| m.kind.clone());
            if candidates.iter().any(|c| c.name == name) {
                return Err(src.error_at(
                    &format!("{key}.kind"),
                    format!("two candidates are called `{name}`: give one a `name`"),
                ));
            }
            let trials = match m.trials {
                Some(t) => count(&format!("{key}.trials"), t, 1, limits::MAX_TRIALS)?,
                None => s.trials,
            };
            candidates.push(Candidate { name, model, fixed: given, space, trials });
        }
        for f in &spec.report.formats {
            if !["json", "md", "html"].contains(&f.as_str()) {
                return Err(src.error_at("report.formats", format!("unknown format \"{f}\" (known: json, md, html)")));
            }
        }
        let importance_budget = limits::seconds(spec.report.importance_budget_s.unwrap_or(120.0))
            .map_err(|m| src.error_at("report.importance_budget_s", m))?;
        let importance_repeats = count(
            "report.importance_repeats",
            spec.report.importance_repeats.unwrap_or(5),
            0,
            limits::MAX_IMPORTANCE_REPEATS,
        )?;
        let parallel_trials =
            count("search.parallel_trials", s.parallel_trials.unwrap_or(4), 1, limits::MAX_PARALLEL_TRIALS)?;
        let pruner_startup =
            count("search.pruner_startup_trials", s.pruner_startup_trials.unwrap_or(5), 0, limits::MAX_TRIALS)?;
        let warmup_folds =
            count("search.pruner_warmup_folds", s.pruner_warmup_folds.unwrap_or(2), 0, limits::MAX_FOLDS)?;
        let threshold = match &s.threshold {
            None => Threshold::MaxF1,
            Some(toml::Value::String(r)) if r == "max_f1" => Threshold::MaxF1,
            Some(v) => match v.as_float().or_else(|| v.as_integer().map(|i| i as f64)) {
                Some(t) if t > 0.0 && t < 1.0 => Threshold::Fixed(t),
                _ => {
                    return Err(src.error_at(
                        "search.threshold",
                        format!("{v} is not a threshold: \"max_f1\" or a probability between 0 and 1"),
                    ));
                }
            },
        };
        if s.threshold.is_some() && task != Task::Binary {
            return Err(src.error_at("search.threshold", "a decision threshold applies to binary tasks only"));
        }
        let pruner = match s.pruner.as_deref().unwrap_or("median") {
            "median" => Pruner::Median { startup_trials: pruner_startup, warmup_folds },
            "none" => Pruner::None,
            other => {
                return Err(src.error_at("search.pruner", format!("unknown pruner \"{other}\" (known: median, none)")));
            }
        };
        let ensemble = match &spec.ensemble {
            None => None,
            Some(e) => Some(ensemble_plan(&src, e, &candidates)?),
        };
        // Behaviour sequences are built only when a candidate reads them: they cost as much
        // memory as the whole per-entity table (a 20 M-event log's weekly bins: 230 MB), and
        // every fold's datasets carry a copy of their rows' sequences.
        let mut data = data;
        if let Some(ev) = &mut data.events
            && !candidates.iter().any(|c| c.model.input() == promoml_core::InputKind::Sequence)
        {
            ev.encoding = crate::sequence::Encoding::None;
        }
        Ok(Pipeline {
            name: spec.pipeline.name.clone(),
            task,
            seed,
            data,
            cleaners,
            features,
            candidates,
            search: SearchPlan {
                optimizer_kind: s.optimizer.clone(),
                optimizer,
                startup_trials,
                cv_folds: s.cv_folds,
                metric,
                time_budget,
                parallel_trials,
                pruner,
                threshold,
            },
            ensemble,
            uplift,
            anomaly,
            device,
            formats: spec.report.formats.clone(),
            importance_repeats,
            importance_budget,
            outer_folds,
            source: src,
        })
    }
}

fn ensemble_plan(src: &Source, e: &crate::spec::EnsembleSpec, candidates: &[Candidate]) -> Result<EnsemblePlan> {
    let positive = |key: &str, v: Option<usize>, default: usize, max: usize| -> Result<usize> {
        limits::count(v.unwrap_or(default), 1, max).map_err(|m| src.error_at(&format!("ensemble.{key}"), m))
    };
    let kind = match e.kind.as_str() {
        "stacking" => {
            let l2 =
                limits::real(e.l2.unwrap_or(1e-3), 0.0, limits::MAX_L2).map_err(|m| src.error_at("ensemble.l2", m))?;
            let layers = positive("layers", e.layers, 1, 2)?;
            let layer2_models = positive("layer2_models", e.layer2_models, 3, limits::MAX_MEMBERS)?;
            EnsembleKind::Stacking { l2, layers, layer2_models }
        }
        "greedy" => {
            for (key, given) in
                [("l2", e.l2.is_some()), ("layers", e.layers.is_some()), ("layer2_models", e.layer2_models.is_some())]
            {
                if given {
                    return Err(
                        src.error_at(&format!("ensemble.{key}"), "only a `stacking` ensemble takes this setting")
                    );
                }
            }
            EnsembleKind::Greedy { size: positive("size", e.size, 50, limits::MAX_GREEDY_ROUNDS)? }
        }
        other => {
            let hint = promoml_core::did_you_mean(other, ["stacking", "greedy"])
                .or_else(|| ["stacking", "greedy"].into_iter().find(|k| !other.is_empty() && k.starts_with(other)))
                .map(|s| format!("; did you mean `{s}`?"))
                .unwrap_or_default();
            return Err(src.error_at(
                "ensemble.kind",
                format!("unknown ensemble kind \"{other}\" (known: stacking, greedy){hint}"),
            ));
        }
    };
    if matches!(kind, EnsembleKind::Stacking { .. }) && e.size.is_some() {
        return Err(src.error_at("ensemble.size", "only a `greedy` ensemble takes this setting"));
    }
    if candidates.len() < 2 {
        return Err(src.error_at("ensemble", "an ensemble needs at least two [[models]]"));
    }
    let name = e.name.clone().unwrap_or_else(|| "ensemble".into());
    if candidates.iter().any(|c| c.name == name) {
        return Err(src.error_at("ensemble.name", format!("a candidate model is already called `{name}`")));
    }
    Ok(EnsemblePlan { name, kind, max_members: positive("max_members", e.max_members, 10, limits::MAX_MEMBERS)? })
}

/// Re-home a core error at a TOML key: config errors get `prefix.key` and a line:col.
fn relocate(src: &Source, prefix: &str, e: Error) -> crate::PipelineError {
    match e {
        Error::Config { key, message } => {
            let full = match (prefix.is_empty(), key.is_empty() || key == "kind") {
                (true, _) => key,
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{key}"),
            };
            src.error_at(&full, message)
        }
        other => src.error_at(prefix, other.to_string()),
    }
}

fn split_kind(src: &Source, table: &toml::Table, key: &str) -> Result<(String, serde_json::Value)> {
    let mut t = table.clone();
    let kind = match t.remove("kind") {
        Some(toml::Value::String(s)) => s,
        Some(_) => return Err(src.error_at(&format!("{key}.kind"), "`kind` must be a string")),
        None => return Err(src.error_at(key, "missing `kind` (run `promoml plugins` to list the kinds)")),
    };
    let json = serde_json::to_value(&t).map_err(|e| src.error_at(key, e.to_string()))?;
    Ok((kind, json))
}

fn range_domain(r: &RangeSpec) -> std::result::Result<Domain, String> {
    let given = usize::from(r.float.is_some()) + usize::from(r.int.is_some()) + usize::from(r.choice.is_some());
    if given != 1 {
        return Err("give exactly one of `float = [low, high]`, `int = [low, high]`, `choice = [...]`".into());
    }
    let check_log =
        |low: f64| if r.log && low <= 0.0 { Err("a log-scaled range needs low > 0".to_string()) } else { Ok(()) };
    if let Some([low, high]) = r.float {
        if low.partial_cmp(&high) != Some(std::cmp::Ordering::Less) {
            return Err(format!("empty range [{low}, {high}]"));
        }
        check_log(low)?;
        return Ok(Domain::Float { low, high, log: r.log });
    }
    if let Some([low, high]) = r.int {
        if low > high {
            return Err(format!("empty range [{low}, {high}]"));
        }
        check_log(low as f64)?;
        return Ok(Domain::Int { low, high, log: r.log });
    }
    let opts = r.choice.as_ref().expect("counted above");
    if opts.is_empty() {
        return Err("`choice` is empty".into());
    }
    let strings: Option<Vec<String>> = opts.iter().map(|v| v.as_str().map(str::to_string)).collect();
    match strings {
        Some(s) => Ok(Domain::Categorical(s)),
        None if opts.iter().all(toml::Value::is_bool) => Ok(Domain::Bool),
        None => Err("`choice` takes strings (or true/false); use `int`/`float` ranges for numbers".into()),
    }
}

/// The validated `[evaluation] outer_folds`: 2 to [`limits::MAX_OUTER_FOLDS`], and only for one
/// table cut by a split rule (a file or a built-in source), which the folds replace.
fn outer_folds(src: &Source, spec: &PipelineSpec, data: &DataPlan) -> Result<Option<usize>> {
    let key = "evaluation.outer_folds";
    let Some(k) = spec.evaluation.as_ref().and_then(|e| e.outer_folds) else { return Ok(None) };
    limits::count(k, 2, limits::MAX_OUTER_FOLDS).map_err(|m| src.error_at(key, m))?;
    match &data.source {
        DataSource::TrainTest { .. } => Err(src.error_at(
            key,
            "outer folds cut one table: give `[data] path` (its `split` is replaced by fold r of K: row i is a test \
             row when i % K == r), not separate `train` and `test` files",
        )),
        DataSource::File { split: SplitRule::All, .. } | DataSource::Synthetic { split: SplitRule::All, .. } => {
            Err(src.error_at(
                key,
                "outer folds hold test rows out, but this pipeline fits and scores every row (an anomaly task \
                 without `data.split`, or `kind = \"none\"`); give a split that holds rows out, e.g. \
                 `split = { kind = \"modulo\" }`, which the folds then replace",
            ))
        }
        _ => Ok(Some(k)),
    }
}

/// The `--set` overrides that make fold `r` of `k` out of a pipeline: a modulo split (its
/// `column`, if any, kept) with `modulo = k` and `remainder = r`, and no outer folds of its own.
pub fn fold_overrides(k: usize, r: usize) -> Vec<String> {
    vec![
        "data.split.kind=\"modulo\"".to_string(),
        format!("data.split.modulo={k}"),
        format!("data.split.remainder={r}"),
        "!evaluation.outer_folds".to_string(),
    ]
}

fn data_plan(src: &Source, spec: &PipelineSpec, task: Task, seed: u64) -> Result<DataPlan> {
    let d = &spec.data;
    let base = &src.path;
    let split = |s: &Option<crate::spec::SplitSpec>| -> Result<SplitRule> {
        let Some(s) = s else {
            return Ok(if task == Task::Anomaly {
                SplitRule::All
            } else if task.is_classification() {
                SplitRule::Stratified { test_fraction: 0.2, seed }
            } else {
                SplitRule::Random { test_fraction: 0.2, seed }
            });
        };
        let frac = s.test_fraction.unwrap_or(0.2);
        if !(frac > 0.0 && frac < 1.0) {
            return Err(src.error_at("data.split.test_fraction", format!("{frac} is not in (0, 1)")));
        }
        let kind =
            s.kind.clone().unwrap_or_else(|| if task.is_classification() { "stratified" } else { "random" }.into());
        Ok(match kind.as_str() {
            "random" => SplitRule::Random { test_fraction: frac, seed: s.seed.unwrap_or(seed) },
            "stratified" if task.is_classification() => {
                SplitRule::Stratified { test_fraction: frac, seed: s.seed.unwrap_or(seed) }
            }
            "stratified" => return Err(src.error_at("data.split.kind", "stratified splits need a classification task")),
            "none" if task == Task::Anomaly => SplitRule::All,
            "none" => return Err(src.error_at("data.split.kind", "only anomaly tasks fit and score the same rows")),
            "modulo" => {
                let m = limits::count(s.modulo.unwrap_or(5), 2, limits::MAX_MODULO)
                    .map_err(|msg| src.error_at("data.split.modulo", msg))?;
                let r = s.remainder.unwrap_or(m - 1);
                if r >= m {
                    return Err(src.error_at(
                        "data.split.remainder",
                        format!("{r} is out of range: allowed 0 to {} (below modulo = {m})", m - 1),
                    ));
                }
                SplitRule::Modulo { modulo: m, remainder: r, column: s.column.clone() }
            }
            other => {
                let known = ["random", "stratified", "modulo"];
                let hint = promoml_core::did_you_mean(other, known)
                    .map(|s| format!("; did you mean \"{s}\"?"))
                    .unwrap_or_default();
                return Err(src.error_at(
                    "data.split.kind",
                    format!("unknown split \"{other}\" (known: random, stratified, modulo){hint}"),
                ));
            }
        })
    };
    // An event log may be a directory of Parquet files (a dataset, in Hive partitions or flat).
    let dataset = d.events.is_some() && d.train.is_none();
    let file = |key: &str, p: &str| -> Result<PathBuf> {
        check_data_file(base, p, dataset && key == "data.path").map_err(|m| src.error_at(key, m))
    };
    let source = match (&d.source, &d.path, &d.train, &d.test) {
        (Some(s), None, None, None) => {
            if s != "synthetic.promotion" && s != "synthetic.price" {
                let hint = promoml_core::did_you_mean(s, ["synthetic.promotion", "synthetic.price"])
                    .map(|x| format!("; did you mean \"{x}\"?"))
                    .unwrap_or_default();
                return Err(src.error_at(
                    "data.source",
                    format!("unknown source \"{s}\" (known: synthetic.promotion, synthetic.price){hint}"),
                ));
            }
            let rows = limits::count(d.rows.unwrap_or(5000), 50, limits::MAX_SYNTHETIC_ROWS)
                .map_err(|m| src.error_at("data.rows", m))?;
            let price = s == "synthetic.price";
            let arms = limits::count(d.arms.unwrap_or(if price { 2 } else { 1 }), 1, limits::MAX_SYNTHETIC_ARMS)
                .map_err(|m| src.error_at("data.arms", m))?;
            DataSource::Synthetic { price, rows, arms, split: split(&d.split)? }
        }
        (None, Some(p), None, None) => DataSource::File { path: file("data.path", p)?, split: split(&d.split)? },
        (None, None, Some(tr), Some(te)) => {
            if d.split.is_some() {
                return Err(src.error_at(
                    "data.split",
                    "`split` applies to `path` or `source`, not to separate train/test files",
                ));
            }
            DataSource::TrainTest { train: file("data.train", tr)?, test: file("data.test", te)? }
        }
        _ => {
            return Err(src.error_at(
                "data",
                "give exactly one of: `source = \"synthetic.promotion\"`, `path` (with an optional `split`), or `train` and `test`",
            ));
        }
    };
    let delimiter = match d.delimiter.as_deref() {
        None | Some("auto") => None,
        Some(",") => Some(b','),
        Some(";") => Some(b';'),
        Some("tab") | Some("\t") => Some(b'\t'),
        Some("|") => Some(b'|'),
        Some("whitespace") | Some(" ") => Some(b' '),
        Some(other) => {
            return Err(src.error_at(
                "data.delimiter",
                format!("unknown delimiter \"{other}\" (known: auto , ; tab | whitespace)"),
            ));
        }
    };
    // An anomaly task's `target` is an optional label column, used only to score detectors.
    if d.target.trim().is_empty() && task != Task::Anomaly {
        return Err(src.error_at("data.target", "the target column name is empty"));
    }
    if let Some(c) = d.split.as_ref().and_then(|s| s.column.as_ref())
        && !matches!(
            source,
            DataSource::File { split: SplitRule::Modulo { .. }, .. }
                | DataSource::Synthetic { split: SplitRule::Modulo { .. }, .. }
        )
    {
        return Err(
            src.error_at("data.split.column", format!("`column = \"{c}\"` applies only to `kind = \"modulo\"`"))
        );
    }
    let mut bad_as_missing = std::collections::BTreeSet::new();
    for (col, action) in &d.on_bad_value {
        match action.as_str() {
            "missing" => {
                bad_as_missing.insert(col.clone());
            }
            "error" => {}
            other => {
                return Err(src.error_at(
                    &format!("data.on_bad_value.{col}"),
                    format!("unknown action \"{other}\" (known: \"error\", \"missing\")"),
                ));
            }
        }
    }
    let mut types = d.types.clone();
    let mut id = d.id.clone();
    let events = match &d.events {
        None => None,
        Some(ev) => {
            if !matches!(source, DataSource::File { .. }) {
                return Err(
                    src.error_at("data.events", "an event log is read from one file: use `path` (with `split`)")
                );
            }
            let plan = crate::sequence::EventsPlan::from_spec(ev, d.timestamp_format.as_deref())
                .map_err(|(k, m)| src.error_at(&format!("data.events.{k}"), m))?;
            types.entry(plan.time.clone()).or_insert(promoml_core::ColumnType::Timestamp);
            match &id {
                Some(i) if *i != plan.entity => {
                    return Err(src.error_at(
                        "data.id",
                        format!("with `data.events`, the id is the entity column `{}`", plan.entity),
                    ));
                }
                _ => id = Some(plan.entity.clone()),
            }
            Some(plan)
        }
    };
    let memory_limit = match &d.memory_limit {
        None => crate::data::engine::DEFAULT_MEMORY_LIMIT,
        Some(v) => crate::data::engine::parse_memory_limit(v).map_err(|m| src.error_at("data.memory_limit", m))?,
    };
    let mut derive = Vec::new();
    for (name, expr) in &d.derive {
        let key = format!("data.derive.{name}");
        if name.trim().is_empty() {
            return Err(src.error_at("data.derive", "a derived column needs a name"));
        }
        crate::data::engine::check_expression(expr).map_err(|m| src.error_at(&key, m))?;
        derive.push((name.clone(), expr.clone()));
    }
    Ok(DataPlan {
        memory_limit,
        derive,
        source,
        target: d.target.clone(),
        positive: d.positive.clone(),
        id,
        drop: d.drop.clone(),
        events,
        named: named_in(&src.text),
        read: ReadOptions {
            csv: CsvOptions {
                delimiter,
                header: d.header.unwrap_or(true),
                types: Default::default(),
                timestamp_format: d.timestamp_format.clone(),
                missing: d.missing.clone(),
                bad_as_missing,
            },
            types,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_are_printed_normalised() {
        assert_eq!(lexical(Path::new("./train.csv")), Path::new("train.csv"));
        assert_eq!(lexical(Path::new("pipelines/../../shared/x.csv")), Path::new("../shared/x.csv"));
        assert_eq!(lexical(Path::new("/a/b/../c")), Path::new("/a/c"));
        assert_eq!(lexical(Path::new("../../x")), Path::new("../../x"));
        assert_eq!(lexical(Path::new("/..")), Path::new("/"));
        assert_eq!(resolve_path(Path::new("bad.toml"), "train.csv"), Path::new("train.csv"));
    }
}

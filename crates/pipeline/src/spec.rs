//! The raw pipeline file as written by a user: serde structs that reject unknown keys.
//! [`crate::Pipeline::from_spec`] turns a [`PipelineSpec`] into a validated pipeline.

use crate::error::{Located, PipelineError, Result};
use crate::locate::{line_col, locate, place_at, position_of};
use promoml_core::ColumnType;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A whole pipeline file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// `[pipeline]`: name, task, seed.
    pub pipeline: PipelineSection,
    /// `[data]`: where the data comes from and what the target is.
    pub data: DataSpec,
    /// `[[clean]]` steps, in order.
    #[serde(default)]
    pub clean: Vec<toml::Table>,
    /// `[[features]]` steps, in order.
    #[serde(default)]
    pub features: Vec<toml::Table>,
    /// `[[models]]`: the candidate models.
    #[serde(default)]
    pub models: Vec<ModelSpec>,
    /// `[search]`: budget, CV and metric.
    #[serde(default)]
    pub search: SearchSpec,
    /// `[report]`: output formats.
    #[serde(default)]
    pub report: ReportSpec,
    /// `[ensemble]`: how the best candidates are combined (absent: no ensemble).
    pub ensemble: Option<EnsembleSpec>,
    /// `[uplift]`: meta-learners, metrics and KPIs of an uplift task.
    pub uplift: Option<crate::uplift::spec::UpliftSpec>,
    /// `[policy]`: values, costs and budget of the promotion policy (uplift tasks).
    pub policy: Option<crate::uplift::spec::PolicySpec>,
    /// `[evaluation]`: how the whole pipeline is evaluated (outer folds).
    pub evaluation: Option<EvaluationSpec>,
}

/// `[evaluation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvaluationSpec {
    /// Run the whole pipeline (search, ensemble, test evaluation) once per fold of the one data
    /// file: fold `r` of `K` tests on the rows with `i % K == r` (a modulo split), and report
    /// each fold's test metrics, their mean, standard deviation and paired comparisons.
    pub outer_folds: Option<usize>,
}

/// `[ensemble]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleSpec {
    /// `stacking` (a meta-learner on out-of-fold predictions) or `greedy` (Caruana et al. 2004
    /// ensemble selection with replacement).
    pub kind: String,
    /// Leaderboard name (default `ensemble`).
    pub name: Option<String>,
    /// At most this many candidates, best by cross-validation first (default 10).
    pub max_members: Option<usize>,
    /// Greedy: selection rounds (default 50).
    pub size: Option<usize>,
    /// Stacking: L2 penalty of the meta-learner (default 0.001).
    pub l2: Option<f64>,
    /// Stacking: 1, or 2 for a second layer of models that see the original features plus the
    /// first layer's out-of-fold predictions (default 1).
    pub layers: Option<usize>,
    /// Stacking with 2 layers: how many of the best candidates are refitted in layer 2
    /// (default 3).
    pub layer2_models: Option<usize>,
}

/// `[pipeline]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSection {
    /// Name shown in reports.
    pub name: String,
    /// `binary`, `multiclass` or `regression`.
    pub task: String,
    /// Seed of every random choice in the run.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Compute device for models that can choose (the burn models): `cpu` (default), `cuda`
    /// or `cuda:N` (needs a build with the `cuda` feature).
    pub device: Option<String>,
    /// Free text.
    pub description: Option<String>,
}

fn default_seed() -> u64 {
    42
}

/// `[data]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// A built-in source instead of files: `synthetic.promotion`.
    pub source: Option<String>,
    /// Rows of a synthetic source.
    pub rows: Option<usize>,
    /// Treatment arms of a synthetic source (besides control).
    pub arms: Option<usize>,
    /// One data file, cut by `split`.
    pub path: Option<String>,
    /// How to cut `path` (or a synthetic source) into train and test.
    pub split: Option<SplitSpec>,
    /// Training file (with `test`).
    pub train: Option<String>,
    /// Test file (with `train`).
    pub test: Option<String>,
    /// The column to predict (for `task = "anomaly"`: an optional label column that only scores
    /// the detectors).
    #[serde(default)]
    pub target: String,
    /// For binary targets: the label of the positive class, as text (`"TRUE"`, `"yes"`) or as
    /// the value itself (`positive = 1` for a 0/1 column, `positive = true` for a boolean one).
    #[serde(default, deserialize_with = "label")]
    pub positive: Option<String>,
    /// An identifier column: kept out of the features.
    pub id: Option<String>,
    /// Columns removed before anything else (e.g. outcomes that would leak).
    #[serde(default)]
    pub drop: Vec<String>,
    /// Declared column types, overriding inference.
    #[serde(default)]
    pub types: BTreeMap<String, ColumnType>,
    /// CSV delimiter: `auto` (default), `,`, `;`, `tab`, `|` or `whitespace`.
    pub delimiter: Option<String>,
    /// Whether CSV files have a header line (default true).
    pub header: Option<bool>,
    /// Format of timestamp columns, e.g. `%Y%m%d`.
    pub timestamp_format: Option<String>,
    /// Extra text values meaning "missing".
    #[serde(default)]
    pub missing: Vec<String>,
    /// Per column, what to do with a value that does not fit the column's type (a word in a
    /// numeric column): `"error"` (the default: the run stops naming file, line and value) or
    /// `"missing"` (read as missing, counted in the report's `data.bad_values_as_missing`).
    #[serde(default)]
    pub on_bad_value: BTreeMap<String, String>,
    /// `[data.events]`: the file is an event log; build one example per entity from it.
    pub events: Option<crate::sequence::EventsSpec>,
    /// Memory the query engine's operators may hold before they spill to disk: bytes, or text
    /// such as `"512MB"` or `"2GB"` (default [`crate::data::engine::DEFAULT_MEMORY_LIMIT`]).
    pub memory_limit: Option<toml::Value>,
    /// Derived columns: name = SQL expression over the table's columns, evaluated by the query
    /// engine (`derive = { transacted = "trans_after > 0" }`).
    #[serde(default)]
    pub derive: BTreeMap<String, String>,
    /// Uplift tasks: `{ column, control, arms }`, the treatment column and its control value.
    pub treatment: Option<crate::uplift::spec::TreatmentSpec>,
}

/// A class label written as a string, an integer, a float or a boolean, as the reader prints
/// that value (`1`, `2.5`, `TRUE`).
fn label<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Label {
        Text(String),
        Int(i64),
        Float(f64),
        Bool(bool),
    }
    Ok(Some(
        match Label::deserialize(d)
            .map_err(|_| serde::de::Error::custom("expected a class label: a string, a number or a boolean"))?
        {
            Label::Text(s) => s,
            Label::Int(i) => i.to_string(),
            Label::Float(f) => promoml_core::frame::format_number(f),
            Label::Bool(b) => if b { "TRUE" } else { "FALSE" }.to_string(),
        },
    ))
}

/// `[data.split]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitSpec {
    /// `stratified` (default for classification), `random`, or `modulo`.
    pub kind: Option<String>,
    /// Share of rows in the test split (random and stratified).
    pub test_fraction: Option<f64>,
    /// Seed of the split (the pipeline seed when absent).
    pub seed: Option<u64>,
    /// For `modulo`: row `i` (0-based) is a test row when `i % modulo == remainder`.
    pub modulo: Option<usize>,
    /// For `modulo`: see `modulo`.
    pub remainder: Option<usize>,
    /// For `modulo`: use this integer column's value instead of the row number (e.g. a customer id).
    pub column: Option<String>,
}

/// One `[[models]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// Registered model kind, e.g. `forest.random_forest`.
    pub kind: String,
    /// Name on the leaderboard (the kind when absent).
    pub name: Option<String>,
    /// Fixed hyper-parameters (not searched).
    #[serde(default)]
    pub params: BTreeMap<String, toml::Value>,
    /// Search ranges overriding the model's default search space.
    #[serde(default)]
    pub search: BTreeMap<String, RangeSpec>,
    /// Trials for this model (overrides `search.trials`).
    pub trials: Option<usize>,
}

/// A search range: exactly one of `float`, `int`, `choice`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeSpec {
    /// Real range `[low, high]`.
    pub float: Option<[f64; 2]>,
    /// Integer range `[low, high]`.
    pub int: Option<[i64; 2]>,
    /// Options.
    pub choice: Option<Vec<toml::Value>>,
    /// Sample on a log scale.
    #[serde(default)]
    pub log: bool,
    /// Conditional parameter: only active when another parameter has this value, e.g.
    /// `when = { kernel = "rbf" }` (one entry).
    pub when: Option<toml::Table>,
}

/// `[search]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchSpec {
    /// Optimiser kind (`random`, or any registered one).
    #[serde(default = "default_optimizer")]
    pub optimizer: String,
    /// Trials per model; the first trial always uses the model's defaults and fixed params.
    #[serde(default = "default_trials")]
    pub trials: usize,
    /// Random trials before a model-based optimiser starts modelling.
    pub startup_trials: Option<usize>,
    /// Folds of cross-validation on the training split.
    #[serde(default = "default_folds")]
    pub cv_folds: usize,
    /// Metric that ranks candidates (default: roc_auc for classification, rmse for regression).
    pub metric: Option<String>,
    /// Wall-clock budget of the whole run, in seconds.
    pub time_budget_s: Option<f64>,
    /// Trials asked together and run in parallel (default 4). A setting, not the core count,
    /// so that the same seed gives the same trials on every machine.
    pub parallel_trials: Option<usize>,
    /// `median` (stop a trial after a fold when it cannot beat the median; the default) or `none`.
    pub pruner: Option<String>,
    /// Completed trials of a candidate before the pruner acts (default 5).
    pub pruner_startup_trials: Option<usize>,
    /// Folds every trial runs before the pruner may stop it (default 2).
    pub pruner_warmup_folds: Option<usize>,
    /// Binary tasks: the decision threshold behind `accuracy` and `f1`: `"max_f1"` (the
    /// default: maximum F1 on each model's out-of-fold predictions) or a probability in (0, 1).
    pub threshold: Option<toml::Value>,
}

impl Default for SearchSpec {
    fn default() -> Self {
        SearchSpec {
            optimizer: default_optimizer(),
            trials: default_trials(),
            startup_trials: None,
            cv_folds: default_folds(),
            metric: None,
            time_budget_s: None,
            parallel_trials: None,
            pruner: None,
            pruner_startup_trials: None,
            pruner_warmup_folds: None,
            threshold: None,
        }
    }
}

fn default_optimizer() -> String {
    "random".into()
}
fn default_trials() -> usize {
    1
}
fn default_folds() -> usize {
    5
}

/// `[report]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportSpec {
    /// Files to write: `json` (always written), `md` and `html` (all three by default).
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Shuffles per feature for the final model's permutation feature importance on the test
    /// rows (default 5; 0 = do not compute it).
    pub importance_repeats: Option<usize>,
    /// Seconds the permutation importance may take (default 120): fewer shuffles (one at
    /// least) when `importance_repeats` would take longer.
    pub importance_budget_s: Option<f64>,
}

impl Default for ReportSpec {
    fn default() -> Self {
        ReportSpec { formats: default_formats(), importance_repeats: None, importance_budget_s: None }
    }
}

fn default_formats() -> Vec<String> {
    vec!["json".into(), "md".into(), "html".into()]
}

/// A pipeline file's text (after `--set` overrides) and where it came from.
///
/// Errors name the place of the key they are about: `file:line:col` for keys written in the
/// file, or the `--set KEY=VALUE` argument for keys an override wrote.
#[derive(Debug, Clone)]
pub struct Source {
    /// Path of the file as given.
    pub path: PathBuf,
    /// The TOML text the spec was parsed from (the file with the overrides applied; for a RON
    /// file, its TOML rendering with the overrides applied).
    pub text: String,
    /// The file's own text (TOML or RON), before overrides: where the keys of the file are
    /// located.
    pub file_text: String,
    /// The `--set` overrides applied, in order.
    pub overrides: Vec<Override>,
    /// The file's language: TOML, or RON converted into the TOML of `text`.
    pub format: Format,
}

/// The language of a pipeline file, from its extension: `.ron` is RON, anything else TOML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TOML, the reference format.
    Toml,
    /// RON (Rusty Object Notation), read as the same document (see [`crate::ron_file`]).
    Ron,
}

impl Format {
    /// The format of the file at `path`.
    pub fn of(path: &Path) -> Format {
        if crate::ron_file::is_ron(path) { Format::Ron } else { Format::Toml }
    }
}

/// One `--set KEY=VALUE` argument and what it wrote into the pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// The argument as given, e.g. `search.trials=20`, or `!data.train` for `--unset data.train`.
    pub arg: String,
    /// The dotted key it sets, e.g. `search.trials`.
    pub key: String,
    /// How many leading segments of `key` name what the override wrote: the first segment the
    /// pipeline did not have yet (the override created it and everything below it), or all of
    /// them when it replaced an existing value. Keys at or below that prefix come from it.
    pub claims: usize,
}

impl Override {
    /// The command-line flag as the user wrote it: `--set KEY=VALUE` or `--unset KEY`.
    pub fn flag(&self) -> String {
        match self.arg.strip_prefix('!') {
            Some(key) => format!("--unset {key}"),
            None => format!("--set {}", self.arg),
        }
    }
}

impl Source {
    /// Read `path` and apply `key=value` overrides (an entry `!KEY` removes KEY: `--unset`).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Source> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            PipelineError::Config(Located {
                file: path.display().to_string(),
                at: None,
                key: None,
                message: format!("cannot read the pipeline file: {e}"),
            })
        })?;
        Source::from_text(path, text, overrides)
    }

    /// Use `text` as the content of `path` (TOML, or RON for a `.ron` path) and apply overrides.
    pub fn from_text(path: &Path, text: String, overrides: &[String]) -> Result<Source> {
        let format = Format::of(path);
        let toml_text = match format {
            Format::Toml => text.clone(),
            Format::Ron => crate::ron_file::to_toml(&text).map_err(|e| {
                PipelineError::Config(Located {
                    file: path.display().to_string(),
                    at: Some(e.at),
                    key: None,
                    message: e.message,
                })
            })?,
        };
        let mut src =
            Source { path: path.to_path_buf(), text: toml_text, file_text: text, overrides: Vec::new(), format };
        if !overrides.is_empty() {
            let (text, applied) = apply_overrides(&src, overrides)?;
            src.text = text;
            src.overrides = applied;
        }
        Ok(src)
    }

    /// The override that wrote `key` (the most specific one; the later one of equals), if any.
    pub fn override_of(&self, key: &str) -> Option<&Override> {
        let mut found: Option<&Override> = None;
        for o in &self.overrides {
            if crate::locate::is_within(key, &o.key, o.claims) && found.is_none_or(|f| o.claims >= f.claims) {
                found = Some(o);
            }
        }
        found
    }

    /// A configuration error at `key`: located at its `file:line:col` when the file wrote it,
    /// or naming the `--set` argument that did.
    pub fn error_at(&self, key: &str, message: impl Into<String>) -> PipelineError {
        let (file, at) = match self.override_of(key) {
            Some(o) => (o.flag(), None),
            None => (self.path.display().to_string(), self.locate(key)),
        };
        PipelineError::Config(Located { file, at, key: Some(key.to_string()), message: message.into() })
    }

    /// Line and column of dotted `key` in the file's own text (TOML or RON).
    pub fn locate(&self, key: &str) -> Option<(usize, usize)> {
        match self.format {
            Format::Toml => locate(&self.file_text, key),
            Format::Ron => crate::ron_file::locate(&self.file_text, key),
        }
    }

    /// Line and column in the file's own text of a place found in [`Source::text`].
    fn position_in_file(&self, place: &crate::locate::Place) -> Option<(usize, usize)> {
        match self.format {
            Format::Toml => position_of(&self.file_text, place),
            Format::Ron => crate::ron_file::position_of(&self.file_text, place),
        }
    }

    /// The pipeline (with its overrides) as a TOML or RON text, e.g. for `validate --emit`.
    /// Comments are not carried over into the other format.
    pub fn emit(&self, format: Format) -> Result<String> {
        match (format, self.format, self.overrides.is_empty()) {
            (Format::Toml, Format::Toml, true) => Ok(self.file_text.clone()),
            (Format::Toml, _, _) => Ok(self.text.clone()),
            (Format::Ron, _, _) => crate::ron_file::from_toml(&self.text).map_err(|m| {
                PipelineError::Config(Located {
                    file: self.path.display().to_string(),
                    at: None,
                    key: None,
                    message: m,
                })
            }),
        }
    }

    /// Parse into a [`PipelineSpec`]; errors carry line and column (or the `--set` argument
    /// responsible) and a "did you mean".
    pub fn parse(&self) -> Result<PipelineSpec> {
        toml::from_str(&self.text).map_err(|e| {
            let message = with_suggestion(e.message());
            if self.overrides.is_empty() && self.format == Format::Toml {
                let at = e.span().map(|s| line_col(&self.text, s.start));
                return PipelineError::Config(Located {
                    file: self.path.display().to_string(),
                    at,
                    key: None,
                    message,
                });
            }
            // The text was re-rendered with the overrides (or converted from RON): name the
            // entry the error is about, then blame its override or find the entry in the file's
            // own text.
            let place = e.span().and_then(|s| place_at(&self.text, s.start));
            match place.as_ref().and_then(|p| self.override_of(&p.path).map(|o| (o, p))) {
                Some((o, p)) => {
                    PipelineError::Config(Located { file: o.flag(), at: None, key: Some(p.path.clone()), message })
                }
                None => PipelineError::Config(Located {
                    file: self.path.display().to_string(),
                    at: place.as_ref().and_then(|p| self.position_in_file(p)),
                    key: None,
                    message,
                }),
            }
        })
    }
}

/// Add "did you mean" to serde's `unknown field `x`, expected one of `a`, `b`` and
/// `unknown variant` messages.
pub fn with_suggestion(message: &str) -> String {
    let msg = message.trim().to_string();
    let Some(start) = msg.find("unknown field `").or_else(|| msg.find("unknown variant `")) else { return msg };
    let rest = &msg[start..];
    let Some(open) = rest.find('`') else { return msg };
    let Some(close) = rest[open + 1..].find('`') else { return msg };
    let word = &rest[open + 1..open + 1 + close];
    let expected: Vec<&str> = rest.split('`').skip(3).step_by(2).collect();
    match promoml_core::did_you_mean(word, expected.iter().copied()) {
        Some(s) => format!("{msg}; did you mean `{s}`?"),
        None => msg,
    }
}

/// Apply `a.b[0].c=value` overrides to the TOML text (values parse as TOML, else as strings);
/// returns the new text and what each override wrote.
fn apply_overrides(src: &Source, overrides: &[String]) -> Result<(String, Vec<Override>)> {
    use toml_edit::{DocumentMut, Item, Table, Value};
    let cli_err = |o: &str, m: String| {
        PipelineError::Config(Located { file: format!("--set {o}"), at: None, key: None, message: m })
    };
    let mut doc: DocumentMut = src.text.parse().map_err(|e: toml_edit::TomlError| {
        PipelineError::Config(Located {
            file: src.path.display().to_string(),
            at: e.span().map(|s| line_col(&src.text, s.start)),
            key: None,
            message: e.message().to_string(),
        })
    })?;
    let mut applied = Vec::new();
    for o in overrides {
        if let Some(key) = o.strip_prefix('!') {
            let unset_err = |m: String| {
                PipelineError::Config(Located { file: format!("--unset {key}"), at: None, key: None, message: m })
            };
            unset(doc.as_table_mut(), key.trim()).map_err(unset_err)?;
            applied.push(Override {
                arg: o.clone(),
                key: key.trim().to_string(),
                claims: crate::locate::segments(key.trim()).len(),
            });
            continue;
        }
        let (key, raw) = o.split_once('=').ok_or_else(|| cli_err(o, "expected KEY=VALUE".into()))?;
        let key = key.trim();
        let total = crate::locate::segments(key).len();
        if total == 0 {
            return Err(cli_err(o, "no key before `=` (e.g. `search.trials=20`)".into()));
        }
        let value: Value = raw.trim().parse().unwrap_or_else(|_| Value::from(raw.trim()));
        let claims = (crate::locate::existing_segments(doc.as_table(), key) + 1).min(total);
        let parts: Vec<&str> = key.split('.').collect();
        let mut item: &mut Item = doc.as_item_mut();
        for (i, part) in parts.iter().enumerate() {
            let (name, index) = match part.find('[') {
                Some(p) => (&part[..p], part[p + 1..].trim_end_matches(']').parse::<usize>().ok()),
                None => (*part, None),
            };
            let last = i + 1 == parts.len() && index.is_none();
            let table =
                item.as_table_like_mut().ok_or_else(|| cli_err(o, format!("`{name}` is not inside a table")))?;
            if last {
                table.insert(name, Item::Value(value.clone()));
                break;
            }
            if table.get(name).is_none() {
                table.insert(name, Item::Table(Table::new()));
            }
            item = table.get_mut(name).expect("just inserted");
            if let Some(ix) = index {
                let Item::ArrayOfTables(a) = item else {
                    return Err(cli_err(o, format!("`{name}` is not an array of tables")));
                };
                let n = a.len();
                let t = a.get_mut(ix).ok_or_else(|| cli_err(o, format!("`{name}` has {n} entries")))?;
                set_in_table(t, &parts[i + 1..], value.clone()).map_err(|m| cli_err(o, m))?;
                break;
            }
        }
        applied.push(Override { arg: o.clone(), key: key.to_string(), claims });
    }
    Ok((doc.to_string(), applied))
}

/// Remove the dotted `key` (`data.train`, `models[0].params.n_trees`) from `root`; an error
/// names the missing part, with a "did you mean".
fn unset(root: &mut toml_edit::Table, key: &str) -> std::result::Result<(), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, head) = parts.split_last().filter(|(l, _)| !l.is_empty()).ok_or("no key to unset")?;
    let mut table: &mut dyn toml_edit::TableLike = root;
    for part in head {
        let (name, index) = match part.find('[') {
            Some(p) => (&part[..p], Some(part[p + 1..].trim_end_matches(']'))),
            None => (*part, None),
        };
        let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
        let item = table.get_mut(name).ok_or_else(|| missing(name, &keys))?;
        table = match (index, item) {
            (None, item) => item.as_table_like_mut().ok_or(format!("`{name}` is not a table"))?,
            (Some(ix), toml_edit::Item::ArrayOfTables(a)) => {
                let n = a.len();
                let i: usize = ix.parse().map_err(|_| format!("`{part}`: `{ix}` is not an index"))?;
                a.get_mut(i).ok_or(format!("`{name}` has {n} entries"))?
            }
            (Some(_), _) => return Err(format!("`{name}` is not an array of tables")),
        };
    }
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
    table.remove(last).map(|_| ()).ok_or_else(|| missing(last, &keys))
}

fn missing(name: &str, keys: &[String]) -> String {
    let hint = promoml_core::did_you_mean(name, keys.iter().map(String::as_str))
        .map(|s| format!("; did you mean `{s}`?"))
        .unwrap_or_default();
    format!("the pipeline has no key `{name}` to remove (there: {}){hint}", keys.join(", "))
}

fn set_in_table(t: &mut toml_edit::Table, path: &[&str], value: toml_edit::Value) -> std::result::Result<(), String> {
    use toml_edit::{Item, Table};
    let Some((last, head)) = path.split_last() else { return Err("nothing to set".into()) };
    let mut table: &mut dyn toml_edit::TableLike = t;
    for name in head {
        if table.get(name).is_none() {
            table.insert(name, Item::Table(Table::new()));
        }
        table =
            table.get_mut(name).and_then(Item::as_table_like_mut).ok_or_else(|| format!("`{name}` is not a table"))?;
    }
    table.insert(last, Item::Value(value));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: &str = "[pipeline]\nname = \"t\"\ntask = \"binary\"\n\n[data]\nsource = \"synthetic.promotion\"\ntarget = \"purchase\"\n\n[[models]]\nkind = \"a\"\n\n[search]\ntrials = 3\n";

    #[test]
    fn unknown_key_is_located_with_suggestion() {
        let src = Source::from_text(Path::new("p.toml"), format!("{MIN}cv_fold = 3\n"), &[]).unwrap();
        let e = src.parse().unwrap_err().to_string();
        assert!(e.starts_with("p.toml:14:1: unknown field `cv_fold`"), "{e}");
        assert!(e.contains("did you mean `cv_folds`?"), "{e}");
    }

    #[test]
    fn overrides_set_nested_values() {
        let src = Source::from_text(
            Path::new("p.toml"),
            MIN.to_string(),
            &["search.trials=20".into(), "models[0].params.n_trees=7".into(), "pipeline.seed=9".into()],
        )
        .unwrap();
        let spec = src.parse().unwrap();
        assert_eq!(spec.search.trials, 20);
        assert_eq!(spec.pipeline.seed, 9);
        assert_eq!(spec.models[0].params["n_trees"], toml::Value::Integer(7));
        let e = Source::from_text(Path::new("p.toml"), MIN.to_string(), &["search.trials".into()]).unwrap_err();
        assert!(e.to_string().contains("expected KEY=VALUE"));
    }
}

//! Pipeline steps built on any registered anomaly detector.
//!
//! * `anomaly.filter` (cleaner): fits a detector on the numeric and boolean training columns and
//!   drops the most abnormal training rows; rows to predict pass untouched.
//! * `anomaly.score` (feature): adds the detector's score as a column on every frame.
//! * `anomaly.corrupt` (cleaner, for robustness experiments): corrupts a seeded share of the
//!   training rows (extreme values, flipped labels) and records which.
//!
//! The detector kind is a setting, resolved in the registry when the pipeline is validated
//! ([`StepFactory::build_with`]), so detectors of any plugin join without code here.

use ndarray::Array2;
use promoml_core::{
    AnomalyDetector, Cleaner, ColumnData, ColumnType, Error, FeatureExtractor, FittedCleaner, FittedDetector,
    FittedFeatures, Frame, ParamValue, Params, Registry, Result, SettingDoc, StepContext, StepFactory,
};
use rand::{Rng as _, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;

const DEFAULT_DETECTOR: &str = "anomaly.isolation_forest";

fn default_detector() -> String {
    DEFAULT_DETECTOR.into()
}

/// Deserialize step settings; an unknown key becomes a config error on that key.
fn parse<T: serde::de::DeserializeOwned>(v: &Value) -> Result<T> {
    serde_json::from_value(v.clone()).map_err(|e| {
        let msg = e.to_string();
        let key = msg.split('`').nth(1).filter(|_| msg.contains("unknown field")).unwrap_or("").to_string();
        Error::config(key, msg)
    })
}

fn needs_registry(kind: &str) -> Error {
    Error::config("kind", format!("`{kind}` names a detector: build it through a pipeline (with the registry)"))
}

/// A detector resolved in the registry, with validated parameters.
#[derive(Clone)]
struct DetectorChoice {
    detector: Arc<dyn AnomalyDetector>,
    params: Params,
}

impl DetectorChoice {
    fn resolve(registry: &Registry, kind: &str, params: &BTreeMap<String, Value>) -> Result<DetectorChoice> {
        let detector = registry.detector(kind).map_err(|e| match e {
            Error::Config { message, .. } => Error::config("detector", message),
            other => other,
        })?;
        let mut given = Params::new();
        for (k, v) in params {
            let pv = match v {
                Value::Bool(b) => ParamValue::Bool(*b),
                Value::Number(n) if n.is_i64() => ParamValue::Int(n.as_i64().expect("checked")),
                Value::Number(n) => ParamValue::Float(n.as_f64().unwrap_or(f64::NAN)),
                Value::String(s) => ParamValue::Str(s.clone()),
                _ => return Err(Error::config(format!("params.{k}"), "expected a number, string or bool")),
            };
            given.insert(k.clone(), pv);
        }
        let params = detector.space().resolve(&given, "params")?;
        Ok(DetectorChoice { detector: detector.clone(), params })
    }

    fn kind(&self) -> &str {
        self.detector.kind()
    }

    fn contamination(&self) -> Option<f64> {
        match self.params.get("contamination") {
            Some(ParamValue::Float(c)) => Some(*c),
            _ => None,
        }
    }
}

/// Which columns feed the detector, and the training medians that stand in for missing values.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Inputs {
    columns: Vec<String>,
    fill: Vec<f64>,
}

impl Inputs {
    fn fit(frame: &Frame, listed: &Option<Vec<String>>, ctx: &StepContext) -> Result<Inputs> {
        let usable = |t: ColumnType| matches!(t, ColumnType::Numeric | ColumnType::Boolean);
        let columns: Vec<String> = match listed {
            Some(cols) => {
                for c in cols {
                    let t = frame.require(c, "listed")?.data.column_type();
                    if !usable(t) {
                        return Err(Error::config(
                            "columns",
                            format!(
                                "column `{c}` is {t:?}; detectors read numeric or boolean columns (one-hot categories first)"
                            ),
                        ));
                    }
                    if ctx.protected.contains(c) {
                        return Err(Error::config(
                            "columns",
                            format!("column `{c}` is the target, treatment or id: detectors never see labels"),
                        ));
                    }
                }
                cols.clone()
            }
            None => frame
                .columns()
                .iter()
                .filter(|c| usable(c.data.column_type()) && !ctx.protected.contains(&c.name))
                .map(|c| c.name.clone())
                .collect(),
        };
        if columns.is_empty() {
            return Err(Error::data("no numeric or boolean columns to score (besides the target)"));
        }
        let mut fill = Vec::with_capacity(columns.len());
        for c in &columns {
            let data = &frame.require(c, "detector input")?.data;
            let mut v: Vec<f64> = (0..data.len()).map(|i| data.value_f64(i)).filter(|v| v.is_finite()).collect();
            if v.is_empty() {
                return Err(Error::data(format!("column `{c}` has no values in the training rows")));
            }
            v.sort_by(f64::total_cmp);
            fill.push(v[v.len() / 2]);
        }
        Ok(Inputs { columns, fill })
    }

    fn matrix(&self, frame: &Frame) -> Result<Array2<f64>> {
        let n = frame.n_rows();
        let mut x = Array2::zeros((n, self.columns.len()));
        for (j, c) in self.columns.iter().enumerate() {
            let data = &frame.require(c, "detector input (present in the training rows)")?.data;
            for i in 0..n {
                let v = data.value_f64(i);
                x[[i, j]] = if v.is_finite() { v } else { self.fill[j] };
            }
        }
        Ok(x)
    }
}

/// Quantiles of scores, for reports.
fn score_summary(scores: &[f64]) -> Value {
    let mut s: Vec<f64> = scores.to_vec();
    s.sort_by(f64::total_cmp);
    let q = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
    json!({ "min": q(0.0), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "max": q(1.0) })
}

/// How `anomaly.filter` decides which training rows are abnormal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rule {
    /// Drop this share of the training rows, the highest scores first.
    Contamination(f64),
    /// Drop rows scoring above this value.
    Score(f64),
    /// Drop rows scoring above `median + k · 1.4826 · MAD` of the training scores (a robust
    /// z-score of `k`); no labels, no share to guess.
    Auto(f64),
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Rule::Contamination(_) => "contamination",
            Rule::Score(_) => "score",
            Rule::Auto(_) => "auto",
        }
    }
}

/// Which rows `rule` flags among `scores`, and the threshold it drew (rows scoring above it are
/// flagged; for a contamination share, the lowest flagged score). Deterministic: ties at a
/// contamination cut go to the earlier row.
pub fn flag(scores: &[f64], rule: Rule) -> (Vec<bool>, f64) {
    let n = scores.len();
    match rule {
        Rule::Contamination(c) => {
            let k = ((c * n as f64).round() as usize).min(n);
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
            let mut flags = vec![false; n];
            for &i in &idx[..k] {
                flags[i] = true;
            }
            let threshold = if k == 0 { f64::INFINITY } else { scores[idx[k - 1]] };
            (flags, threshold)
        }
        Rule::Score(t) => (scores.iter().map(|&s| s > t).collect(), t),
        Rule::Auto(k) => {
            let mut s = scores.to_vec();
            s.sort_by(f64::total_cmp);
            let median = s[n / 2];
            let mut dev: Vec<f64> = s.iter().map(|v| (v - median).abs()).collect();
            dev.sort_by(f64::total_cmp);
            let mut sigma = 1.4826 * dev[n / 2];
            if sigma == 0.0 {
                // Over half the scores tie: the mean absolute deviation (× sqrt(pi/2)) instead.
                sigma = 1.2533 * dev.iter().sum::<f64>() / n as f64;
            }
            let t = if sigma == 0.0 { f64::INFINITY } else { median + k * sigma };
            (scores.iter().map(|&s| s > t).collect(), t)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// anomaly.filter

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum ThresholdSetting {
    Score(f64),
    Named(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterSettings {
    #[serde(default = "default_detector")]
    detector: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    columns: Option<Vec<String>>,
    contamination: Option<f64>,
    threshold: Option<ThresholdSetting>,
    auto_k: Option<f64>,
}

/// Factory of the `anomaly.filter` cleaner.
#[derive(Debug, Clone, Copy, Default)]
pub struct FilterFactory;

fn detector_docs(default_columns: &'static str) -> Vec<SettingDoc> {
    vec![
        SettingDoc {
            name: "detector",
            accepts: "a registered detector kind (see `promoml plugins`)",
            default: "\"anomaly.isolation_forest\"",
            doc: "the detector fitted on the training rows (labels removed)",
        },
        SettingDoc {
            name: "params",
            accepts: "table of the detector's parameters",
            default: "the detector's defaults",
            doc: "e.g. { n_trees = 200 }",
        },
        SettingDoc {
            name: "columns",
            accepts: "list of numeric or boolean column names",
            default: default_columns,
            doc: "what the detector reads; missing values read as the training median",
        },
    ]
}

impl StepFactory<dyn Cleaner> for FilterFactory {
    fn kind(&self) -> &str {
        "anomaly.filter"
    }
    fn description(&self) -> &str {
        "drop the most abnormal TRAINING rows by an anomaly detector's score (share, threshold or automatic); every row is kept at predict time"
    }
    fn settings(&self) -> Vec<SettingDoc> {
        let mut s = detector_docs("every numeric and boolean column but the target");
        s.extend([
            SettingDoc {
                name: "contamination",
                accepts: "float in (0, 0.5]",
                default: "the detector's `contamination` (0.1 for the built-in ones)",
                doc: "share of training rows to drop, highest scores first",
            },
            SettingDoc {
                name: "threshold",
                accepts: "number | \"auto\"",
                default: "none",
                doc: "instead of a share: drop rows scoring above the number, or above median + auto_k · 1.4826 · MAD of the training scores (\"auto\"); the threshold drawn goes into the report",
            },
            SettingDoc {
                name: "auto_k",
                accepts: "float > 0",
                default: "3.0",
                doc: "robust z-score of the automatic threshold",
            },
        ]);
        s
    }
    fn build(&self, _settings: &Value) -> Result<Box<dyn Cleaner>> {
        Err(needs_registry(self.kind()))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedCleaner>> {
        load_training_only("anomaly.filter", bytes)
    }
    fn build_with(&self, settings: &Value, registry: &Registry) -> Result<Box<dyn Cleaner>> {
        let s: FilterSettings = parse(settings)?;
        let choice = DetectorChoice::resolve(registry, &s.detector, &s.params)?;
        if s.auto_k.is_some() && !matches!(&s.threshold, Some(ThresholdSetting::Named(n)) if n == "auto") {
            return Err(Error::config("auto_k", "applies only with threshold = \"auto\""));
        }
        let rule = match (s.contamination, &s.threshold) {
            (Some(_), Some(_)) => {
                return Err(Error::config("threshold", "give `contamination` or `threshold`, not both"));
            }
            (Some(c), None) => {
                if !(c > 0.0 && c <= 0.5) {
                    return Err(Error::config("contamination", format!("{c} is not in (0, 0.5]")));
                }
                Rule::Contamination(c)
            }
            (None, Some(ThresholdSetting::Score(t))) => {
                if !t.is_finite() {
                    return Err(Error::config("threshold", "must be a finite number or \"auto\""));
                }
                Rule::Score(*t)
            }
            (None, Some(ThresholdSetting::Named(n))) if n == "auto" => {
                let k = s.auto_k.unwrap_or(3.0);
                if !(k > 0.0 && k.is_finite()) {
                    return Err(Error::config("auto_k", format!("{k} is not a positive number")));
                }
                Rule::Auto(k)
            }
            (None, Some(ThresholdSetting::Named(n))) => {
                return Err(Error::config("threshold", format!("\"{n}\" is neither a number nor \"auto\"")));
            }
            (None, None) => Rule::Contamination(choice.contamination().unwrap_or(0.1)),
        };
        Ok(Box::new(Filter { choice, columns: s.columns, rule }))
    }
}

/// The configured `anomaly.filter` cleaner.
struct Filter {
    choice: DetectorChoice,
    columns: Option<Vec<String>>,
    rule: Rule,
}

impl Cleaner for Filter {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let inputs = Inputs::fit(train, &self.columns, ctx)?;
        let x = inputs.matrix(train)?;
        let fitted = self.choice.detector.fit(&x, &self.choice.params, &ctx.fit_context("anomaly.filter"))?;
        let scores = fitted.score(&x)?;
        let (flags, threshold) = flag(&scores, self.rule);
        let keep: Vec<usize> = (0..flags.len()).filter(|&i| !flags[i]).collect();
        if keep.len() < 2 {
            return Err(Error::data(format!(
                "anomaly.filter would keep {} of {} training rows (threshold {threshold}); lower the share or raise the threshold",
                keep.len(),
                flags.len()
            )));
        }
        let summary = json!({
            "kind": "anomaly.filter",
            "detector": self.choice.kind(),
            "columns": inputs.columns,
            "rule": self.rule.name(),
            "threshold": if threshold.is_finite() { json!(threshold) } else { Value::Null },
            "rows_in": flags.len(),
            "dropped": flags.len() - keep.len(),
            "dropped_rows": (0..flags.len()).filter(|&i| flags[i]).collect::<Vec<_>>(),
            "train_scores": score_summary(&scores),
        });
        Ok(Box::new(FittedFilter { rows: train.n_rows(), keep, summary }))
    }
}

struct FittedFilter {
    rows: usize,
    keep: Vec<usize>,
    summary: Value,
}

impl FittedCleaner for FittedFilter {
    fn apply_train(&self, frame: Frame) -> Result<Frame> {
        if frame.n_rows() != self.rows {
            return Err(Error::data(format!(
                "anomaly.filter was fitted on {} training rows and applied to {}",
                self.rows,
                frame.n_rows()
            )));
        }
        Ok(frame.take(&self.keep))
    }
    fn apply_predict(&self, frame: Frame) -> Result<Frame> {
        Ok(frame)
    }
    fn summary(&self) -> Option<Value> {
        Some(self.summary.clone())
    }
    fn save(&self) -> Result<Vec<u8>> {
        save_training_only("anomaly.filter")
    }
}

/// What a reloaded `anomaly.filter` or `anomaly.corrupt` is: both change training rows only,
/// so an artifact keeps no state of theirs (no dropped or corrupted row) and rows to predict
/// pass untouched.
struct PassThrough {
    kind: &'static str,
}

/// The saved state of a training-only cleaner: its kind, nothing fitted.
fn save_training_only(kind: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(&json!({ "kind": kind, "predict": "rows pass untouched" }))
        .map_err(|e| Error::data(format!("{kind}: {e}")))
}

fn load_training_only(kind: &'static str, bytes: &[u8]) -> Result<Box<dyn FittedCleaner>> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|e| Error::data(format!("{kind}: saved state is corrupt: {e}")))?;
    if v.get("kind").and_then(Value::as_str) != Some(kind) {
        return Err(Error::data(format!("{kind}: saved state belongs to another step: {v}")));
    }
    Ok(Box::new(PassThrough { kind }))
}

impl FittedCleaner for PassThrough {
    fn apply_train(&self, _frame: Frame) -> Result<Frame> {
        Err(Error::data(format!(
            "{} was reloaded from a model artifact: it passes rows to predict through and cannot clean training rows",
            self.kind
        )))
    }
    fn apply_predict(&self, frame: Frame) -> Result<Frame> {
        Ok(frame)
    }
    fn save(&self) -> Result<Vec<u8>> {
        save_training_only(self.kind)
    }
}

// ---------------------------------------------------------------------------------------------
// anomaly.score

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScoreSettings {
    #[serde(default = "default_detector")]
    detector: String,
    #[serde(default)]
    params: BTreeMap<String, Value>,
    columns: Option<Vec<String>>,
    #[serde(default = "default_score_name")]
    name: String,
}

fn default_score_name() -> String {
    "anomaly_score".into()
}

/// Factory of the `anomaly.score` feature step.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScoreFactory;

impl StepFactory<dyn FeatureExtractor> for ScoreFactory {
    fn kind(&self) -> &str {
        "anomaly.score"
    }
    fn description(&self) -> &str {
        "add an anomaly detector's score (fitted on training rows) as a column of every row"
    }
    fn settings(&self) -> Vec<SettingDoc> {
        let mut s = detector_docs("every numeric and boolean column but the target");
        s.push(SettingDoc {
            name: "name",
            accepts: "column name",
            default: "\"anomaly_score\"",
            doc: "the new column",
        });
        s
    }
    fn build(&self, _settings: &Value) -> Result<Box<dyn FeatureExtractor>> {
        Err(needs_registry(self.kind()))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedFeatures>> {
        load_score(bytes)
    }
    fn build_with(&self, settings: &Value, registry: &Registry) -> Result<Box<dyn FeatureExtractor>> {
        let s: ScoreSettings = parse(settings)?;
        if s.name.trim().is_empty() {
            return Err(Error::config("name", "the column name is empty"));
        }
        let choice = DetectorChoice::resolve(registry, &s.detector, &s.params)?;
        Ok(Box::new(Score { choice, columns: s.columns, name: s.name }))
    }
}

struct Score {
    choice: DetectorChoice,
    columns: Option<Vec<String>>,
    name: String,
}

impl FeatureExtractor for Score {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>> {
        if train.column(&self.name).is_some() {
            return Err(Error::config("name", format!("a column `{}` exists already", self.name)));
        }
        let inputs = Inputs::fit(train, &self.columns, ctx)?;
        let x = inputs.matrix(train)?;
        let detector = self.choice.detector.fit(&x, &self.choice.params, &ctx.fit_context("anomaly.score"))?;
        let scores = detector.score(&x)?;
        let summary = json!({
            "kind": "anomaly.score",
            "detector": self.choice.kind(),
            "column": self.name,
            "columns": inputs.columns,
            "train_scores": score_summary(&scores),
        });
        Ok(Box::new(FittedScore { detector, inputs, name: self.name.clone(), summary }))
    }
}

struct FittedScore {
    detector: Box<dyn FittedDetector>,
    inputs: Inputs,
    name: String,
    summary: Value,
}

impl FittedFeatures for FittedScore {
    fn transform(&self, mut frame: Frame) -> Result<Frame> {
        let x = self.inputs.matrix(&frame)?;
        let scores = self.detector.score(&x)?;
        frame.set(&self.name, ColumnData::Numeric(scores))?;
        Ok(frame)
    }
    fn summary(&self) -> Option<Value> {
        Some(self.summary.clone())
    }
    /// Layout: header length (`u32` little endian), the header (JSON: detector kind, inputs,
    /// column name), then the detector's own saved bytes.
    fn save(&self) -> Result<Vec<u8>> {
        let kind = self.summary["detector"].as_str().unwrap_or_default().to_string();
        let header =
            serde_json::to_vec(&ScoreHeader { detector: kind, inputs: self.inputs.clone(), name: self.name.clone() })
                .map_err(|e| Error::data(format!("anomaly.score: {e}")))?;
        let detector = self.detector.save()?;
        let mut out = Vec::with_capacity(4 + header.len() + detector.len());
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(&detector);
        Ok(out)
    }
}

#[derive(Serialize, Deserialize)]
struct ScoreHeader {
    detector: String,
    inputs: Inputs,
    name: String,
}

/// Reload a fitted `anomaly.score`. Its detector must be one of this plugin's (the step cannot
/// reach the registry when it is reloaded).
fn load_score(bytes: &[u8]) -> Result<Box<dyn FittedFeatures>> {
    let corrupt = |what: &str| Error::data(format!("anomaly.score: saved state is corrupt: {what}"));
    let len = bytes.get(..4).ok_or_else(|| corrupt("too short"))?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let header = bytes.get(4..4 + len).ok_or_else(|| corrupt("header cut short"))?;
    let h: ScoreHeader = serde_json::from_slice(header).map_err(|e| corrupt(&e.to_string()))?;
    let rest = &bytes[4 + len..];
    let detector: Box<dyn FittedDetector> = match h.detector.as_str() {
        "anomaly.isolation_forest" => Box::new(crate::iforest::FittedIsolationForest::from_bytes(&h.detector, rest)?),
        "anomaly.ecod" => Box::new(crate::ecod::FittedEcod::from_bytes(&h.detector, rest)?),
        other => {
            return Err(Error::data(format!(
                "anomaly.score with detector `{other}` cannot be reloaded from an artifact (only anomaly.isolation_forest and anomaly.ecod)"
            )));
        }
    };
    let summary =
        json!({ "kind": "anomaly.score", "detector": h.detector, "column": h.name, "columns": h.inputs.columns });
    Ok(Box::new(FittedScore { detector, inputs: h.inputs, name: h.name, summary }))
}

// ---------------------------------------------------------------------------------------------
// anomaly.corrupt

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorruptSettings {
    #[serde(default = "default_share")]
    share: f64,
    seed: Option<u64>,
    columns: Option<Vec<String>>,
    #[serde(default = "default_magnitude")]
    magnitude: f64,
    #[serde(default = "default_true")]
    flip_labels: bool,
}

fn default_share() -> f64 {
    0.05
}
fn default_magnitude() -> f64 {
    3.0
}
fn default_true() -> bool {
    true
}

/// Factory of the `anomaly.corrupt` cleaner (robustness experiments only).
#[derive(Debug, Clone, Copy, Default)]
pub struct CorruptFactory;

impl StepFactory<dyn Cleaner> for CorruptFactory {
    fn kind(&self) -> &str {
        "anomaly.corrupt"
    }
    fn description(&self) -> &str {
        "ROBUSTNESS EXPERIMENTS ONLY: corrupt a seeded share of TRAINING rows (extreme values, flipped binary labels) and record them; rows to predict are untouched"
    }
    fn settings(&self) -> Vec<SettingDoc> {
        vec![
            SettingDoc {
                name: "share",
                accepts: "float in (0, 0.5]",
                default: "0.05",
                doc: "share of training rows corrupted",
            },
            SettingDoc { name: "seed", accepts: "integer", default: "the pipeline seed", doc: "which rows and values" },
            SettingDoc {
                name: "columns",
                accepts: "list of numeric column names",
                default: "every numeric column but the target",
                doc: "columns that may get extreme values (each with probability 1/3 per corrupted row, at least one)",
            },
            SettingDoc {
                name: "magnitude",
                accepts: "float > 0",
                default: "3.0",
                doc: "an extreme value is max + u · magnitude · (max - min) of the training column, u uniform in [0.5, 1]",
            },
            SettingDoc {
                name: "flip_labels",
                accepts: "bool",
                default: "true",
                doc: "swap the two classes of a binary target on corrupted rows",
            },
        ]
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedCleaner>> {
        load_training_only("anomaly.corrupt", bytes)
    }
    fn build(&self, settings: &Value) -> Result<Box<dyn Cleaner>> {
        let s: CorruptSettings = parse(settings)?;
        if !(s.share > 0.0 && s.share <= 0.5) {
            return Err(Error::config("share", format!("{} is not in (0, 0.5]", s.share)));
        }
        if !(s.magnitude > 0.0 && s.magnitude.is_finite()) {
            return Err(Error::config("magnitude", format!("{} is not a positive number", s.magnitude)));
        }
        Ok(Box::new(s))
    }
}

impl Cleaner for CorruptSettings {
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>> {
        let n = train.n_rows();
        let columns: Vec<String> = match &self.columns {
            Some(cols) => {
                for c in cols {
                    let t = train.require(c, "listed")?.data.column_type();
                    if t != ColumnType::Numeric || ctx.protected.contains(c) {
                        return Err(Error::config("columns", format!("column `{c}` is not a numeric feature")));
                    }
                }
                cols.clone()
            }
            None => train
                .columns()
                .iter()
                .filter(|c| c.data.column_type() == ColumnType::Numeric && !ctx.protected.contains(&c.name))
                .map(|c| c.name.clone())
                .collect(),
        };
        if columns.is_empty() && !self.flip_labels {
            return Err(Error::config("columns", "nothing to corrupt: no numeric columns and flip_labels = false"));
        }
        let seed = self.seed.unwrap_or(ctx.seed);
        let mut rng = promoml_core::Rng::seed_from_u64(seed);
        let k = ((self.share * n as f64).round() as usize).clamp(1, n);
        let mut rows = rand::seq::index::sample(&mut rng, n, k).into_vec();
        rows.sort_unstable();
        let mut frame = train.clone();
        let mut values = 0usize;
        // Extreme values: per corrupted row, each listed column with probability 1/3 (at least one).
        let ranges: Vec<(f64, f64)> = columns
            .iter()
            .map(|c| {
                let d = &train.require(c, "corrupted")?.data;
                let (lo, hi) = (0..n)
                    .map(|i| d.value_f64(i))
                    .filter(|v| v.is_finite())
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                Ok(if lo.is_finite() { (lo, hi) } else { (0.0, 0.0) })
            })
            .collect::<Result<_>>()?;
        let mut new_cols: Vec<Vec<f64>> = columns
            .iter()
            .map(|c| (0..n).map(|i| train.require(c, "corrupted").map(|col| col.data.value_f64(i))).collect())
            .collect::<Result<_>>()?;
        if !columns.is_empty() {
            for &r in &rows {
                let forced = rng.random_range(0..columns.len());
                for (j, col) in new_cols.iter_mut().enumerate() {
                    if j == forced || rng.random_bool(1.0 / 3.0) {
                        let (lo, hi) = ranges[j];
                        let span = if hi > lo { hi - lo } else { 1.0 };
                        col[r] = hi + rng.random_range(0.5..=1.0) * self.magnitude * span;
                        values += 1;
                    }
                }
            }
        }
        for (c, v) in columns.iter().zip(new_cols) {
            frame.set(c, ColumnData::Numeric(v))?;
        }
        let mut flipped = 0usize;
        // An anomaly task removes its label before cleaning: nothing to flip then.
        if self.flip_labels
            && let Some(target) = ctx.target.as_ref().filter(|t| train.column(t).is_some())
        {
            let data = train.require(target, "target")?.data.clone();
            let flipped_data = flip(&data, &rows, target)?;
            flipped = rows.len();
            frame.set(target, flipped_data)?;
        }
        let summary = json!({
            "kind": "anomaly.corrupt",
            "seed": seed,
            "share": self.share,
            "rows_in": n,
            "corrupted": rows.len(),
            "extreme_values": values,
            "labels_flipped": flipped,
            "columns": columns,
            "rows": rows,
        });
        Ok(Box::new(FittedCorrupt { rows: n, corrupted: frame, summary }))
    }
}

/// Swap the two classes of a binary column on `rows`.
fn flip(data: &ColumnData, rows: &[usize], target: &str) -> Result<ColumnData> {
    let not_binary = |what: String| Error::config("flip_labels", format!("target `{target}` is not binary: {what}"));
    Ok(match data {
        ColumnData::Boolean(v) => {
            let mut v = v.clone();
            for &r in rows {
                v[r] = v[r].map(|b| !b);
            }
            ColumnData::Boolean(v)
        }
        ColumnData::Categorical { levels, codes } => {
            if levels.len() != 2 {
                return Err(not_binary(format!("{} levels", levels.len())));
            }
            let mut codes = codes.clone();
            for &r in rows {
                codes[r] = codes[r].map(|c| 1 - c);
            }
            ColumnData::Categorical { levels: levels.clone(), codes }
        }
        ColumnData::Numeric(v) => {
            let mut distinct: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if distinct.len() != 2 {
                return Err(not_binary(format!("{} distinct values", distinct.len())));
            }
            let mut v = v.clone();
            for &r in rows {
                if !v[r].is_nan() {
                    v[r] = if v[r] == distinct[0] { distinct[1] } else { distinct[0] };
                }
            }
            ColumnData::Numeric(v)
        }
        ColumnData::Timestamp(_) => return Err(not_binary("a timestamp".into())),
    })
}

struct FittedCorrupt {
    rows: usize,
    corrupted: Frame,
    summary: Value,
}

impl FittedCleaner for FittedCorrupt {
    fn apply_train(&self, frame: Frame) -> Result<Frame> {
        if frame.n_rows() != self.rows {
            return Err(Error::data(format!(
                "anomaly.corrupt was fitted on {} training rows and applied to {}",
                self.rows,
                frame.n_rows()
            )));
        }
        Ok(self.corrupted.clone())
    }
    fn apply_predict(&self, frame: Frame) -> Result<Frame> {
        Ok(frame)
    }
    fn summary(&self) -> Option<Value> {
        Some(self.summary.clone())
    }
    fn save(&self) -> Result<Vec<u8>> {
        save_training_only("anomaly.corrupt")
    }
}

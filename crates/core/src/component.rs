//! The plugin surface: small, object-safe traits that the [`Registry`](crate::Registry) holds.

use crate::{Dataset, Frame, Params, Predictions, Result, SearchSpace, Task};
use ndarray::Array2;
use rand::SeedableRng;
use std::time::Instant;

/// The random generator every component uses; always seeded from the pipeline's seed, never
/// from a global source, so a run is reproducible.
pub type Rng = rand_chacha::ChaCha8Rng;

/// Everything a model may need while fitting besides data and parameters.
#[derive(Debug, Clone)]
pub struct FitContext {
    /// Seed for this fit; derive every random choice from it.
    pub seed: u64,
    /// Stop (with [`Error::Budget`](crate::Error::Budget)) when past this instant.
    pub deadline: Option<Instant>,
    /// Compute device (models that have no choice ignore it).
    pub device: crate::Device,
    /// Worker threads the model may use (0 = all cores).
    pub threads: usize,
    /// What this fit is, for progress lines in the log (e.g. `lstm trial 3 fold 2/5`, `lstm
    /// refit`); empty when the caller names none. Long fits log under the `promoml_progress`
    /// target (see [`PROGRESS_TARGET`](crate::PROGRESS_TARGET)).
    pub label: String,
}

impl FitContext {
    /// A context with a seed, no deadline, CPU and all cores.
    pub fn new(seed: u64) -> FitContext {
        FitContext { seed, deadline: None, device: crate::Device::Cpu, threads: 0, label: String::new() }
    }
    /// A generator seeded from this context's seed.
    pub fn rng(&self) -> Rng {
        Rng::seed_from_u64(self.seed)
    }
    /// An error when the deadline has passed, or when the user interrupted the run
    /// ([`crate::interrupt`]); call it between iterations of long fits.
    pub fn check_deadline(&self, who: &str) -> Result<()> {
        if crate::interrupt::requested() {
            return Err(crate::Error::Interrupted(format!("while fitting `{who}`")));
        }
        match self.deadline {
            Some(d) if Instant::now() > d => Err(crate::Error::Budget(format!("while fitting `{who}`"))),
            _ => Ok(()),
        }
    }
}

/// The kind of input a model consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    /// The tabular matrix [`Dataset::x`].
    Tabular,
    /// The padded sequences [`Dataset::sequences`].
    Sequence,
}

/// A model family that can be fitted with hyper-parameters (like a scikit-learn estimator
/// class). The registry holds one instance per kind.
pub trait Model: Send + Sync {
    /// Registry name, `plugin.model` (e.g. `smartcore.logistic_regression`).
    fn kind(&self) -> &str;
    /// One line on what it is.
    fn description(&self) -> &str;
    /// Tasks it can fit.
    fn tasks(&self) -> &[Task];
    /// Hyper-parameters with defaults, valid ranges and default search ranges.
    fn space(&self) -> SearchSpace;
    /// Fit on `data` with validated `params`.
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>>;
    /// The input it reads.
    fn input(&self) -> InputKind {
        InputKind::Tabular
    }
    /// Whether a fit honours row weights ([`Dataset::weights`]): a weighted loss or weighted
    /// sampling, so that a row of weight 2 counts as two. Learners whose estimate depends on
    /// weights (the R-learner's weighted effect regression) refuse a model that ignores them.
    /// The default is `false`: a model declares it when it reads the weights.
    fn honours_weights(&self) -> bool {
        false
    }
    /// Rough work of one fit on `rows` × `features` with `params` (missing ones take their
    /// defaults), in floating-point operations. A search with a time budget scores every
    /// candidate's defaults cheapest first, so that a slow model cannot starve the cheap ones;
    /// only the order matters, so an estimate within a few times is enough. The default is a
    /// linear model's: 100 passes over the data.
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        let _ = params;
        100.0 * rows as f64 * features.max(1) as f64
    }
    /// Rebuild a fitted model from the bytes its [`FittedModel::save`] wrote (for artifacts).
    /// The default refuses: a plugin that supports artifacts overrides both.
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let _ = bytes;
        Err(crate::Error::model(self.kind(), "this model cannot be loaded from an artifact"))
    }
}

/// A fitted model: predicts new rows.
pub trait FittedModel: Send + Sync {
    /// Probabilities (classification) or values (regression), one per row of `data`.
    fn predict(&self, data: &Dataset) -> Result<Predictions>;
    /// Which inputs the fitted model reads. Permutation importance skips the ones it does not
    /// (a sequence model fitted with `use_tabular = false` reads no tabular feature). The
    /// default, both, is always safe.
    fn reads(&self) -> Reads {
        Reads::ALL
    }
    /// Fitted parameters only (never training rows), as bytes that [`Model::load`] of the same
    /// kind reads back; predictions after a round trip must be bit-identical.
    fn save(&self) -> Result<Vec<u8>> {
        Err(crate::Error::model("fitted model", "this model cannot be saved into an artifact"))
    }
    /// The number of probability columns [`FittedModel::predict`] returns: the class count of
    /// a classifier, `Some(0)` for a regressor (one value per row), `None` when the model does
    /// not say. A model artifact checks it against its class list after loading and before
    /// predicting, so that a corrupt count in saved parameters is refused, never allocated.
    fn n_classes(&self) -> Option<usize> {
        None
    }
    /// Exact per-feature explanations of the rows of `data` in the model's raw output space
    /// (see [`crate::explain`]): TreeSHAP for tree ensembles, `w_j (x_j - baseline_j)` for
    /// linear models. Binary classifiers explain the positive class; multiclass models are
    /// not explained exactly. `baseline` is a typical row (per-feature training medians) for
    /// the methods that need one. `None` when the model has no exact method: callers then
    /// use the [sampling estimator](crate::explain::sampling).
    fn explain(&self, data: &Dataset, baseline: &[f64]) -> Option<Result<crate::explain::Explanations>> {
        let _ = (data, baseline);
        None
    }
}

/// The inputs a fitted model reads (see [`FittedModel::reads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reads {
    /// The tabular features ([`Dataset::x`]).
    pub tabular: bool,
    /// The behaviour sequences ([`Dataset::sequences`]).
    pub sequences: bool,
}

impl Reads {
    /// Both inputs.
    pub const ALL: Reads = Reads { tabular: true, sequences: true };
    /// What either of two models reads.
    pub fn union(self, other: Reads) -> Reads {
        Reads { tabular: self.tabular || other.tabular, sequences: self.sequences || other.sequences }
    }
}

/// Facts about the frame a cleaner or feature step is fitted on.
#[derive(Debug, Clone, Default)]
pub struct StepContext {
    /// The target column; steps leave it alone unless they say otherwise.
    pub target: Option<String>,
    /// Columns that are not features (target, treatment, ids); steps never encode them.
    pub protected: Vec<String>,
    /// Seed for steps with randomness.
    pub seed: u64,
    /// The pipeline's compute device, for steps that fit models (e.g. `anomaly.filter`).
    pub device: crate::Device,
    /// The run's deadline, for steps that fit models: they stop when it has passed.
    pub deadline: Option<Instant>,
}

impl StepContext {
    /// The context of a model fitted inside a step: the step's seed, device and deadline.
    pub fn fit_context(&self, label: &str) -> FitContext {
        FitContext {
            deadline: self.deadline,
            device: self.device,
            label: label.to_string(),
            ..FitContext::new(self.seed)
        }
    }
}

/// A data cleaner (impute, drop duplicates, clip outliers, ...): fitted on the training frame.
pub trait Cleaner: Send + Sync {
    /// Learn what is needed (medians, bounds, ...) from the training frame.
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedCleaner>>;
}

/// A fitted cleaner.
pub trait FittedCleaner: Send + Sync {
    /// Clean training rows; may drop rows (duplicates, filters).
    fn apply_train(&self, frame: Frame) -> Result<Frame> {
        self.apply_predict(frame)
    }
    /// Clean rows to predict; never drops a row.
    fn apply_predict(&self, frame: Frame) -> Result<Frame>;
    /// What the fit decided, for the report (e.g. an anomaly filter's threshold and the training
    /// rows it drops); `None` for steps with nothing worth reporting.
    fn summary(&self) -> Option<serde_json::Value> {
        None
    }
    /// Fitted state (never training rows) as bytes that [`StepFactory::load`] of the same kind
    /// reads back, for artifacts. The default refuses: a step that supports artifacts
    /// overrides both.
    fn save(&self) -> Result<Vec<u8>> {
        Err(crate::Error::data("this fitted cleaner cannot be saved into an artifact"))
    }
}

/// A feature step (encode, scale, date parts, ...): fitted on the training frame.
pub trait FeatureExtractor: Send + Sync {
    /// Learn encodings or scales from the training frame.
    fn fit(&self, train: &Frame, ctx: &StepContext) -> Result<Box<dyn FittedFeatures>>;
}

/// A fitted feature step; transforms training and new rows alike.
pub trait FittedFeatures: Send + Sync {
    /// Transform a frame (same number of rows out as in).
    fn transform(&self, frame: Frame) -> Result<Frame>;
    /// What the fit decided, for the report; `None` for steps with nothing worth reporting.
    fn summary(&self) -> Option<serde_json::Value> {
        None
    }
    /// Fitted state (never training rows) as bytes that [`StepFactory::load`] of the same kind
    /// reads back, for artifacts. The default refuses.
    fn save(&self) -> Result<Vec<u8>> {
        Err(crate::Error::data("this fitted feature step cannot be saved into an artifact"))
    }
}

/// A step trait ([`Cleaner`] or [`FeatureExtractor`]) paired with its fitted counterpart, so
/// that [`StepFactory::load`] returns the right fitted type.
pub trait StepKind {
    /// The fitted step.
    type Fitted: ?Sized;
}

impl StepKind for dyn Cleaner {
    type Fitted = dyn FittedCleaner;
}

impl StepKind for dyn FeatureExtractor {
    type Fitted = dyn FittedFeatures;
}

/// Documentation of one setting of a cleaner or feature step, for `promoml plugins`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SettingDoc {
    /// Key in the TOML table.
    pub name: &'static str,
    /// Accepted values, e.g. `"mean" | "median"` or `list of column names`.
    pub accepts: &'static str,
    /// Default, as TOML.
    pub default: &'static str,
    /// What it does.
    pub doc: &'static str,
}

/// Builds a configured step from its TOML table (converted to JSON values).
pub trait StepFactory<T: ?Sized>: Send + Sync {
    /// Registry name (e.g. `impute`).
    fn kind(&self) -> &str;
    /// One line on what it does.
    fn description(&self) -> &str;
    /// Its settings.
    fn settings(&self) -> Vec<SettingDoc>;
    /// Build from the settings table (the `kind` key removed). Unknown keys are errors.
    fn build(&self, settings: &serde_json::Value) -> Result<Box<T>>;
    /// Build with the whole registry at hand, for steps that use other registered components
    /// (an anomaly filter names any registered detector). Pipelines call this one; the default
    /// ignores the registry.
    fn build_with(&self, settings: &serde_json::Value, registry: &crate::Registry) -> Result<Box<T>> {
        let _ = registry;
        self.build(settings)
    }
    /// Rebuild a fitted step from the bytes its `save` wrote (for artifacts). The default
    /// refuses: a step kind that supports artifacts overrides it and its fitted step's `save`.
    fn load(&self, bytes: &[u8]) -> Result<Box<T::Fitted>>
    where
        T: StepKind,
    {
        let _ = bytes;
        Err(crate::Error::config("kind", format!("step `{}` cannot be loaded from an artifact", self.kind())))
    }
}

/// An ask/tell hyper-parameter optimiser. It minimises; callers negate metrics to maximise.
pub trait Optimizer: Send {
    /// Propose the next parameters to try.
    fn ask(&mut self, space: &SearchSpace, rng: &mut Rng) -> Params;
    /// Report the value obtained with `params` (`None` when the trial failed or was pruned).
    fn tell(&mut self, params: &Params, value: Option<f64>);
}

/// Builds optimisers by name (e.g. `random`, `tpe`).
pub trait OptimizerFactory: Send + Sync {
    /// Registry name.
    fn kind(&self) -> &str;
    /// One line on what it does.
    fn description(&self) -> &str;
    /// A fresh optimiser; `startup_trials` random trials come first where that matters.
    fn build(&self, startup_trials: usize) -> Box<dyn Optimizer>;
}

/// An unsupervised anomaly detector: fitted without labels, scores any rows (higher = more
/// abnormal).
pub trait AnomalyDetector: Send + Sync {
    /// Registry name.
    fn kind(&self) -> &str;
    /// One line on what it is.
    fn description(&self) -> &str;
    /// Hyper-parameters.
    fn space(&self) -> SearchSpace;
    /// Fit on rows of `x`.
    fn fit(&self, x: &Array2<f64>, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedDetector>>;
    /// Rebuild a fitted detector from the bytes its [`FittedDetector::save`] wrote.
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedDetector>> {
        let _ = bytes;
        Err(crate::Error::model(self.kind(), "this detector cannot be loaded from an artifact"))
    }
}

/// A fitted anomaly detector.
pub trait FittedDetector: Send + Sync {
    /// One score per row, higher = more abnormal.
    fn score(&self, x: &Array2<f64>) -> Result<Vec<f64>>;
    /// Fitted parameters as bytes that [`AnomalyDetector::load`] reads back.
    fn save(&self) -> Result<Vec<u8>> {
        Err(crate::Error::model("fitted detector", "this detector cannot be saved into an artifact"))
    }
}

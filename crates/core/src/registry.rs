//! The registry: every component kind by name, filled by each plugin's `register`.

use crate::component::{AnomalyDetector, Cleaner, FeatureExtractor, Model, OptimizerFactory, StepFactory};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Factory of cleaners, as stored in the registry.
pub type CleanerFactory = dyn StepFactory<dyn Cleaner>;
/// Factory of feature steps, as stored in the registry.
pub type FeatureFactory = dyn StepFactory<dyn FeatureExtractor>;

/// All component kinds known to a binary. The binary calls each plugin's
/// `register(&mut Registry)` from one explicit list; nothing registers itself.
#[derive(Default, Clone)]
pub struct Registry {
    models: BTreeMap<String, Arc<dyn Model>>,
    cleaners: BTreeMap<String, Arc<CleanerFactory>>,
    features: BTreeMap<String, Arc<FeatureFactory>>,
    optimizers: BTreeMap<String, Arc<dyn OptimizerFactory>>,
    detectors: BTreeMap<String, Arc<dyn AnomalyDetector>>,
}

fn lookup<'a, T: ?Sized>(map: &'a BTreeMap<String, Arc<T>>, what: &str, name: &str) -> Result<&'a Arc<T>> {
    map.get(name).ok_or_else(|| {
        let hint = crate::did_you_mean(name, map.keys().map(String::as_str))
            .map(|s| format!("; did you mean `{s}`?"))
            .unwrap_or_default();
        Error::config("kind", format!("unknown {what} kind `{name}`{hint} (run `promoml plugins` to list them)"))
    })
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }
    /// Add a model kind (replacing one of the same name).
    pub fn add_model(&mut self, m: impl Model + 'static) {
        self.models.insert(m.kind().to_string(), Arc::new(m));
    }
    /// Add a cleaner kind.
    pub fn add_cleaner(&mut self, f: impl StepFactory<dyn Cleaner> + 'static) {
        self.cleaners.insert(f.kind().to_string(), Arc::new(f));
    }
    /// Add a feature-step kind.
    pub fn add_feature(&mut self, f: impl StepFactory<dyn FeatureExtractor> + 'static) {
        self.features.insert(f.kind().to_string(), Arc::new(f));
    }
    /// Add an optimiser kind.
    pub fn add_optimizer(&mut self, f: impl OptimizerFactory + 'static) {
        self.optimizers.insert(f.kind().to_string(), Arc::new(f));
    }
    /// Add an anomaly-detector kind.
    pub fn add_detector(&mut self, d: impl AnomalyDetector + 'static) {
        self.detectors.insert(d.kind().to_string(), Arc::new(d));
    }
    /// The model kind `name`, or an error with a suggestion.
    pub fn model(&self, name: &str) -> Result<&Arc<dyn Model>> {
        lookup(&self.models, "model", name)
    }
    /// The cleaner kind `name`.
    pub fn cleaner(&self, name: &str) -> Result<&Arc<CleanerFactory>> {
        lookup(&self.cleaners, "cleaner", name)
    }
    /// The feature kind `name`.
    pub fn feature(&self, name: &str) -> Result<&Arc<FeatureFactory>> {
        lookup(&self.features, "feature", name)
    }
    /// The optimiser kind `name`.
    pub fn optimizer(&self, name: &str) -> Result<&Arc<dyn OptimizerFactory>> {
        lookup(&self.optimizers, "optimizer", name)
    }
    /// The anomaly-detector kind `name`.
    pub fn detector(&self, name: &str) -> Result<&Arc<dyn AnomalyDetector>> {
        lookup(&self.detectors, "anomaly detector", name)
    }
    /// All model kinds, sorted by name.
    pub fn models(&self) -> impl Iterator<Item = &Arc<dyn Model>> {
        self.models.values()
    }
    /// All cleaner kinds.
    pub fn cleaners(&self) -> impl Iterator<Item = &Arc<CleanerFactory>> {
        self.cleaners.values()
    }
    /// All feature kinds.
    pub fn features(&self) -> impl Iterator<Item = &Arc<FeatureFactory>> {
        self.features.values()
    }
    /// All optimiser kinds.
    pub fn optimizers(&self) -> impl Iterator<Item = &Arc<dyn OptimizerFactory>> {
        self.optimizers.values()
    }
    /// All anomaly-detector kinds.
    pub fn detectors(&self) -> impl Iterator<Item = &Arc<dyn AnomalyDetector>> {
        self.detectors.values()
    }
}

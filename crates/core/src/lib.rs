//! promoml-core: the shared vocabulary of promoml.
//!
//! [`Frame`] holds typed columns from a data source; [`Dataset`] is what models see; the
//! component traits ([`Model`], [`Cleaner`], [`FeatureExtractor`], [`Optimizer`],
//! [`AnomalyDetector`]) are the plugin surface; the [`Registry`] names every component; the
//! [`metrics`] module is the one place scores are computed. The core depends on no plugin.
//!
//! ```
//! use promoml_core::{Metric, Predictions};
//! let auc = Metric::RocAuc.score(&[0.0, 1.0, 1.0], &Predictions::binary([0.2, 0.7, 0.9])).unwrap();
//! assert_eq!(auc, 1.0);
//! ```

pub mod codec;
pub mod component;
pub mod dataset;
pub mod device;
pub mod error;
pub mod explain;
pub mod frame;
pub mod guard;
pub mod interrupt;

/// The `tracing` target of progress lines from long fits (one per epoch of a network, say). The
/// CLI shows them in the log and hides them under its progress bar on a terminal.
pub const PROGRESS_TARGET: &str = "promoml_progress";
pub mod io;
pub mod metrics;
pub mod model_util;
pub mod params;
pub mod registry;
pub mod search;
pub mod synthetic;
#[cfg(feature = "testing")]
pub mod testing;

pub use component::{
    AnomalyDetector, Cleaner, FeatureExtractor, FitContext, FittedCleaner, FittedDetector, FittedFeatures, FittedModel,
    InputKind, Model, Optimizer, OptimizerFactory, Reads, Rng, SettingDoc, StepContext, StepFactory, StepKind,
};
pub use dataset::{Dataset, Predictions, Sequences, Task};
pub use device::Device;
pub use error::{Error, Result, did_you_mean};
pub use frame::{Column, ColumnData, ColumnType, Frame, Origin};
pub use metrics::Metric;
pub use params::{Domain, ParamSpec, ParamValue, Params, ParamsExt, SearchSpace};
pub use registry::{CleanerFactory, FeatureFactory, Registry};

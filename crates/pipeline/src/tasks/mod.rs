//! The three kinds of task, each in its module: what it loads and prepares, the objective its
//! trials score in the one search loop ([`crate::search`]), and how it finishes (refit,
//! ensemble, report section, artifact).
//!
//! * [`supervised`]: binary, multiclass and regression.
//! * [`uplift`]: the effect of each treatment arm, and the policy.
//! * [`anomaly`]: detectors fitted without labels.

pub mod anomaly;
pub mod supervised;
pub mod uplift;

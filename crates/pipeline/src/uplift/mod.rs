//! Uplift (promotion effect) modelling and promotion-policy optimisation, for
//! `task = "uplift"` pipelines.
//!
//! * [`spec`]: the `[data] treatment`, `[uplift]` and `[policy]` sections as written;
//!   [`config`]: validated into an [`UpliftPlan`].
//! * [`learners`]: S-, T-, X-learners and class transformation over any registered model.
//! * [`metrics`]: Qini and uplift curves, `qini_auc`, `uplift_auc`, `uplift_at_k` as
//!   scikit-uplift defines them, average treatment effects.
//! * [`policy`]: budgeted assignment of one arm (or none) per customer, valued off-policy by
//!   inverse-propensity weighting and doubly robust estimates.
//! * [`model`]: the fitted final model (learners, control model, policy rule) as one scorer,
//!   shared by the run and the model artifact.
//!
//! The run itself (search by cross-validated Qini, refit, test, report) is
//! [`crate::tasks::uplift`].

pub mod config;
pub mod learners;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod spec;

pub use config::{LearnerKind, UpliftPlan};

//! Helpers shared by the linfa models: task and target checks and standardisation.

pub(crate) use promoml_core::model_util::{Standardizer, check_features, check_task, class_targets, value_targets};

#[cfg(test)]
pub(crate) use promoml_core::testing as testutil;

//! The plan of `task = "anomaly"`: every `[[models]]` entry names a registered anomaly
//! detector with fixed parameters. [`crate::tasks::anomaly`] runs it.

use crate::spec::{PipelineSpec, Source};
use promoml_core::{AnomalyDetector, Error, ParamValue, Params, Registry};
use std::sync::Arc;

/// One detector of an anomaly task.
pub struct DetectorCandidate {
    /// Leaderboard name (the kind unless `name` is given).
    pub name: String,
    /// The detector kind.
    pub detector: Arc<dyn AnomalyDetector>,
    /// Validated parameters (defaults filled in).
    pub params: Params,
}

/// The detectors of an anomaly task, in declaration order.
pub struct AnomalyPlan {
    /// Detectors to fit.
    pub detectors: Vec<DetectorCandidate>,
}

fn toml_param(v: &toml::Value) -> Option<ParamValue> {
    Some(match v {
        toml::Value::Integer(i) => ParamValue::Int(*i),
        toml::Value::Float(f) => ParamValue::Float(*f),
        toml::Value::Boolean(b) => ParamValue::Bool(*b),
        toml::Value::String(s) => ParamValue::Str(s.clone()),
        _ => return None,
    })
}

/// Resolve the `[[models]]` of an anomaly task as detectors.
pub fn plan(src: &Source, spec: &PipelineSpec, registry: &Registry) -> crate::Result<AnomalyPlan> {
    let mut detectors: Vec<DetectorCandidate> = Vec::new();
    for (i, m) in spec.models.iter().enumerate() {
        let key = format!("models[{i}]");
        let detector = registry.detector(&m.kind).map_err(|e| match e {
            Error::Config { message, .. } => src.error_at(&format!("{key}.kind"), message),
            other => src.error_at(&format!("{key}.kind"), other.to_string()),
        })?;
        if !m.search.is_empty() || m.trials.is_some() {
            return Err(src.error_at(
                &format!("{key}.search"),
                "anomaly detectors are not searched (there is no label to search on): fix their `params`",
            ));
        }
        let mut given = Params::new();
        for (k, v) in &m.params {
            let pv = toml_param(v)
                .ok_or_else(|| src.error_at(&format!("{key}.params.{k}"), "expected a number, string or bool"))?;
            given.insert(k.clone(), pv);
        }
        let params = detector.space().resolve(&given, &format!("{key}.params")).map_err(|e| match e {
            Error::Config { key, message } => src.error_at(&key, message),
            other => src.error_at(&key, other.to_string()),
        })?;
        let name = m.name.clone().unwrap_or_else(|| m.kind.clone());
        if detectors.iter().any(|d| d.name == name) {
            return Err(
                src.error_at(&format!("{key}.kind"), format!("two detectors are called `{name}`: give one a `name`"))
            );
        }
        detectors.push(DetectorCandidate { name, detector: detector.clone(), params });
    }
    Ok(AnomalyPlan { detectors })
}

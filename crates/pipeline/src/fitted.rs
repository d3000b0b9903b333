//! A run's final model, fitted and in memory: one candidate or an ensemble, an uplift model or
//! an anomaly detector, and the scores it gave the test rows (what a reloaded artifact must
//! reproduce). [`crate::artifact`] saves and reloads it; [`crate::explain`] explains it.

use crate::ensemble::Combiner;
use crate::uplift::model::{UpliftModel, UpliftScores};
use promoml_core::{Error, FittedDetector, FittedModel, Predictions, Result};

/// The final model of a run, fitted.
pub enum FinalModel {
    /// One candidate.
    Single {
        /// Leaderboard name.
        name: String,
        /// Registry kind.
        kind: String,
        /// The model refitted on all training rows.
        model: Box<dyn FittedModel>,
    },
    /// An ensemble: layer-1 members, for a 2-layer stack the layer-2 models (fitted on the
    /// features plus the layer-1 predictions), and the combiner over the last layer.
    Ensemble {
        /// Leaderboard name.
        name: String,
        /// Layer-1 members: (name, kind, model), in the order the combiner or layer 2 reads them.
        layer1: Vec<(String, String, Box<dyn FittedModel>)>,
        /// Layer-2 models (empty for one layer).
        layer2: Vec<(String, String, Box<dyn FittedModel>)>,
        /// Weights and intercepts over the last layer.
        combiner: Combiner,
    },
}

impl FinalModel {
    /// The inputs the final model reads: its model's, or what any ensemble member reads (a
    /// layer-2 model also reads the tabular features beside the layer-1 predictions).
    pub fn reads(&self) -> promoml_core::Reads {
        match self {
            FinalModel::Single { model, .. } => model.reads(),
            FinalModel::Ensemble { layer1, layer2, .. } => layer1
                .iter()
                .chain(layer2)
                .map(|m| m.2.reads())
                .reduce(promoml_core::Reads::union)
                .unwrap_or(promoml_core::Reads::ALL),
        }
    }
    /// Predictions for a prepared dataset, exactly as the run computed its test predictions.
    pub fn predict(&self, ds: &promoml_core::Dataset) -> Result<Predictions> {
        match self {
            FinalModel::Single { kind, model, .. } => {
                let p = model.predict(ds)?;
                p.check(ds.n_rows(), kind)?;
                Ok(p)
            }
            FinalModel::Ensemble { name, layer1, layer2, combiner } => {
                // One layer: members the combiner gives weight 0 are not predicted (they do not
                // change the result); one that is stands in for them.
                let needed: Vec<bool> = if layer2.is_empty() {
                    let used: Vec<bool> = combiner.weights.iter().map(|&w| w != 0.0).collect();
                    if used.iter().any(|&u| u) { used } else { (0..layer1.len()).map(|i| i == 0).collect() }
                } else {
                    vec![true; layer1.len()]
                };
                let computed: Vec<Option<Predictions>> = layer1
                    .iter()
                    .zip(&needed)
                    .map(|((_, kind, m), &need)| {
                        if !need {
                            return Ok(None);
                        }
                        let p = m.predict(ds)?;
                        p.check(ds.n_rows(), kind)?;
                        Ok(Some(p))
                    })
                    .collect::<Result<_>>()?;
                let stand_in = computed.iter().flatten().next().expect("at least one member is predicted").clone();
                let first: Vec<Predictions> =
                    computed.into_iter().map(|p| p.unwrap_or_else(|| stand_in.clone())).collect();
                let last = if layer2.is_empty() {
                    first
                } else {
                    let names: Vec<String> = layer1.iter().map(|(n, _, _)| n.clone()).collect();
                    let refs: Vec<&Predictions> = first.iter().collect();
                    let ds2 = crate::ensemble::with_predictions(ds, &names, &refs, None);
                    layer2
                        .iter()
                        .map(|(_, kind, m)| {
                            let p = m.predict(&ds2)?;
                            p.check(ds2.n_rows(), kind)?;
                            Ok(p)
                        })
                        .collect::<Result<_>>()?
                };
                // The combiner reads every member as the first one: same kind, same width.
                let shape = |p: &Predictions| match p {
                    Predictions::Proba(a) => (true, a.ncols()),
                    Predictions::Values(_) => (false, 0),
                };
                if last.iter().any(|p| shape(p) != shape(&last[0])) {
                    return Err(Error::model(name, "its members predict different kinds or numbers of columns"));
                }
                if combiner.weights.len() != last.len() {
                    return Err(Error::model(
                        name,
                        format!("its combiner has {} weights for {} members", combiner.weights.len(), last.len()),
                    ));
                }
                let refs: Vec<&Predictions> = last.iter().collect();
                let p = combiner.combine(&refs);
                p.check(ds.n_rows(), name)?;
                Ok(p)
            }
        }
    }
    /// Leaderboard name.
    pub fn name(&self) -> &str {
        match self {
            FinalModel::Single { name, .. } | FinalModel::Ensemble { name, .. } => name,
        }
    }
}

/// The fitted final model an artifact holds.
pub enum Fitted {
    /// A classifier or regressor (one candidate or an ensemble).
    Model(FinalModel),
    /// An uplift model (effects per arm, and the policy's choice when it has one).
    Uplift(UpliftModel),
    /// An anomaly detector (the final one of an anomaly task).
    Anomaly(AnomalyModel),
}

/// The final detector of an anomaly task, fitted.
pub struct AnomalyModel {
    /// Leaderboard name.
    pub name: String,
    /// Registry kind of the detector.
    pub kind: String,
    /// The fitted detector.
    pub detector: Box<dyn FittedDetector>,
    /// Score above which a row is flagged (the training scores' `1 - contamination` quantile),
    /// when the detector has a contamination share.
    pub threshold: Option<f64>,
}

impl Fitted {
    pub(crate) fn name(&self) -> &str {
        match self {
            Fitted::Model(m) => m.name(),
            Fitted::Uplift(u) => &u.name,
            Fitted::Anomaly(a) => &a.name,
        }
    }
}

/// What an artifact computes for rows to score.
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    /// Class probabilities or values (classification, regression).
    Model(Predictions),
    /// Effects per treatment arm and, with a policy, the chosen arms.
    Uplift(UpliftScores),
    /// Anomaly scores (higher = more abnormal) and, with a threshold, the flagged rows.
    Anomaly {
        /// One score per row.
        scores: Vec<f64>,
        /// Whether each row's score is above the threshold.
        flagged: Option<Vec<bool>>,
    },
}

impl Scored {
    /// Anomaly scores, flagged above `threshold` when there is one.
    pub fn anomaly(scores: Vec<f64>, threshold: Option<f64>) -> Scored {
        let flagged = threshold.map(|t| scores.iter().map(|&s| s > t).collect());
        Scored::Anomaly { scores, flagged }
    }

    /// Every value's bits, so that scores compare bit for bit (NaN included).
    pub fn bits(&self) -> Vec<u64> {
        match self {
            Scored::Model(p) => bits(p),
            Scored::Uplift(u) => {
                let mut v: Vec<u64> = u.tau.iter().flatten().map(|x| x.to_bits()).collect();
                if let Some((arm, gain)) = &u.policy {
                    v.extend(arm.iter().map(|&a| a as u64));
                    v.extend(gain.iter().map(|x| x.to_bits()));
                }
                v
            }
            Scored::Anomaly { scores, flagged } => {
                let mut v: Vec<u64> = scores.iter().map(|x| x.to_bits()).collect();
                v.extend(flagged.iter().flatten().map(|&f| u64::from(f)));
                v
            }
        }
    }
}

/// Every value's bits, so that predictions compare bit for bit (NaN included).
pub fn bits(p: &Predictions) -> Vec<u64> {
    match p {
        Predictions::Proba(a) => a.iter().map(|v| v.to_bits()).collect(),
        Predictions::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
    }
}

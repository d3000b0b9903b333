//! The model-ready view of data: a numeric matrix plus target, treatment, weights and sequences.

use ndarray::{Array2, Array3, Axis};
use serde::{Deserialize, Serialize};

/// What a pipeline predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Two classes; the second class (index 1) is the positive one.
    Binary,
    /// Three or more classes.
    Multiclass,
    /// A real-valued target.
    Regression,
    /// The effect of a treatment (promotion) on an outcome: meta-learners over base models.
    Uplift,
    /// Unsupervised anomaly detection: detectors fitted without labels; a label column, when
    /// given, only scores them.
    Anomaly,
}

impl Task {
    /// All tasks, as written in TOML.
    pub const NAMES: [&'static str; 5] = ["binary", "multiclass", "regression", "uplift", "anomaly"];
    /// The TOML name of the task.
    pub fn name(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
            Task::Regression => "regression",
            Task::Uplift => "uplift",
            Task::Anomaly => "anomaly",
        }
    }
    /// Whether the target is a class.
    pub fn is_classification(self) -> bool {
        matches!(self, Task::Binary | Task::Multiclass)
    }
}

/// Padded behaviour sequences, one per row: `data[row, step, channel]`, valid for
/// `step < lengths[row]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sequences {
    /// Values, zero-padded after each row's length.
    pub data: Array3<f32>,
    /// Number of valid steps per row.
    pub lengths: Vec<usize>,
    /// One name per channel (the last axis).
    pub channels: Vec<String>,
}

/// Model input: every row is an example. Built by the pipeline from a cleaned, featurised
/// [`Frame`](crate::Frame); models see only this.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Tabular features, rows × columns, all finite.
    pub x: Array2<f64>,
    /// One name per column of `x`.
    pub feature_names: Vec<String>,
    /// Target: class index (0..k) for classification, value for regression. `None` at predict time.
    pub y: Option<Vec<f64>>,
    /// Class labels by index (empty for regression).
    pub classes: Vec<String>,
    /// Treatment arm per row (0 = control), for uplift tasks.
    pub treatment: Option<Vec<usize>>,
    /// Behaviour sequences per row, for sequence models.
    pub sequences: Option<Sequences>,
    /// Row weights (1 when absent).
    pub weights: Option<Vec<f64>>,
}

impl Dataset {
    /// A dataset of features only.
    pub fn from_x(x: Array2<f64>, feature_names: Vec<String>) -> Dataset {
        Dataset { x, feature_names, y: None, classes: Vec::new(), treatment: None, sequences: None, weights: None }
    }
    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.x.nrows()
    }
    /// Number of feature columns.
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }
    /// Number of classes (0 for regression).
    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }
    /// The target, or an error for the model `who` when the dataset has none.
    pub fn target(&self, who: &str) -> crate::Result<&[f64]> {
        self.y.as_deref().ok_or_else(|| crate::Error::model(who, "the training data has no target"))
    }
    /// Class indices as `usize` (classification only).
    pub fn class_indices(&self, who: &str) -> crate::Result<Vec<usize>> {
        Ok(self.target(who)?.iter().map(|&v| v as usize).collect())
    }
    /// A new dataset with the rows at `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let pick = |v: &Vec<f64>| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
        Dataset {
            x: self.x.select(Axis(0), idx),
            feature_names: self.feature_names.clone(),
            y: self.y.as_ref().map(pick),
            classes: self.classes.clone(),
            treatment: self.treatment.as_ref().map(|t| idx.iter().map(|&i| t[i]).collect()),
            sequences: self.sequences.as_ref().map(|s| Sequences {
                data: s.data.select(Axis(0), idx),
                lengths: idx.iter().map(|&i| s.lengths[i]).collect(),
                channels: s.channels.clone(),
            }),
            weights: self.weights.as_ref().map(pick),
        }
    }
}

/// What a fitted model returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Class probabilities, rows × classes; rows sum to 1.
    Proba(Array2<f64>),
    /// Real values (regression).
    Values(Vec<f64>),
}

impl Predictions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Predictions::Proba(p) => p.nrows(),
            Predictions::Values(v) => v.len(),
        }
    }
    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// One score per row: the positive-class probability for binary tasks, the value for
    /// regression, the most likely class index for multiclass.
    pub fn scores(&self) -> Vec<f64> {
        match self {
            Predictions::Values(v) => v.clone(),
            Predictions::Proba(p) if p.ncols() == 2 => p.column(1).to_vec(),
            Predictions::Proba(p) => p
                .rows()
                .into_iter()
                .map(|r| {
                    r.iter().enumerate().fold((0, f64::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as f64
                })
                .collect(),
        }
    }
    /// Binary probabilities from positive-class scores.
    pub fn binary(p1: impl IntoIterator<Item = f64>) -> Predictions {
        let p1: Vec<f64> = p1.into_iter().map(|p| p.clamp(0.0, 1.0)).collect();
        let mut a = Array2::zeros((p1.len(), 2));
        for (i, p) in p1.iter().enumerate() {
            a[[i, 0]] = 1.0 - p;
            a[[i, 1]] = *p;
        }
        Predictions::Proba(a)
    }
    /// Check shape and values: `rows` rows, finite numbers, probabilities in [0, 1].
    pub fn check(&self, rows: usize, who: &str) -> crate::Result<()> {
        if self.len() != rows {
            return Err(crate::Error::model(who, format!("returned {} predictions for {rows} rows", self.len())));
        }
        let ok = match self {
            Predictions::Proba(p) => p.iter().all(|v| v.is_finite() && (-1e-9..=1.0 + 1e-9).contains(v)),
            Predictions::Values(v) => v.iter().all(|x| x.is_finite()),
        };
        if !ok {
            return Err(crate::Error::model(who, "returned NaN, infinite or out-of-range predictions"));
        }
        Ok(())
    }
}

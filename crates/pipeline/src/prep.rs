//! Fitting cleaners and feature steps on training rows and turning frames into model-ready
//! [`Dataset`]s. The same fitted preparation transforms validation, test and new rows.

use crate::features::OneHot;
use crate::plan::Pipeline;
use crate::sequence::ROW_ID;
use ndarray::{Array2, Axis};
use promoml_core::{
    ColumnData, Dataset, Error, FeatureExtractor as _, FittedCleaner, FittedFeatures, Frame, Result, Sequences,
    StepContext, Task,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Fitted cleaners, feature steps and encodings.
pub struct Prepared {
    pub(crate) cleaners: Vec<Box<dyn FittedCleaner>>,
    pub(crate) features: Vec<Box<dyn FittedFeatures>>,
    pub(crate) target: String,
    pub(crate) task: Task,
    pub(crate) classes: Vec<String>,
    pub(crate) feature_names: Vec<String>,
    pub(crate) sequences: Option<Arc<Sequences>>,
}

/// How the target is encoded, decided once on all training rows so every fold agrees.
#[derive(Debug, Clone)]
pub struct TargetEncoding {
    /// Target column.
    pub column: String,
    /// Task.
    pub task: Task,
    /// Class labels by index (classification).
    pub classes: Vec<String>,
}

impl Prepared {
    /// Fit every step on `train` (which may lose rows to cleaners) and build its dataset.
    /// Returns the preparation, the training dataset and the number of rows cleaners dropped.
    pub fn fit(p: &Pipeline, target: &TargetEncoding, train: Frame) -> Result<(Prepared, Dataset, usize)> {
        Prepared::fit_with(p, target, train, None)
    }

    /// [`Prepared::fit`] for rows that carry behaviour sequences: `sequences` is the table of an
    /// event-log source, indexed by the rows' hidden [`ROW_ID`] column. Every dataset this
    /// preparation builds (training, validation, test) gets the sequences of its rows, in row
    /// order, whatever cleaners dropped.
    pub fn fit_with(
        p: &Pipeline,
        target: &TargetEncoding,
        train: Frame,
        sequences: Option<Arc<Sequences>>,
    ) -> Result<(Prepared, Dataset, usize)> {
        Prepared::fit_until(p, target, train, sequences, None)
    }

    /// [`Prepared::fit_with`] within a run's deadline: steps that fit models (`anomaly.filter`,
    /// `anomaly.score`) get it, with the pipeline's device, in their [`StepContext`].
    pub fn fit_until(
        p: &Pipeline,
        target: &TargetEncoding,
        train: Frame,
        sequences: Option<Arc<Sequences>>,
        deadline: Option<std::time::Instant>,
    ) -> Result<(Prepared, Dataset, usize)> {
        let ctx = StepContext {
            target: Some(target.column.clone()),
            protected: vec![target.column.clone(), ROW_ID.to_string()],
            seed: p.seed,
            device: p.device,
            deadline,
        };
        let rows_in = train.n_rows();
        let mut frame = train;
        let mut cleaners = Vec::new();
        for s in &p.cleaners {
            let fitted = s.step.fit(&frame, &ctx).map_err(|e| in_step("clean", &s.kind, e))?;
            frame = fitted.apply_train(frame).map_err(|e| in_step("clean", &s.kind, e))?;
            cleaners.push(fitted);
        }
        let dropped = rows_in - frame.n_rows();
        let mut features = Vec::new();
        for s in &p.features {
            let fitted = s.step.fit(&frame, &ctx).map_err(|e| in_step("features", &s.kind, e))?;
            frame = fitted.transform(frame).map_err(|e| in_step("features", &s.kind, e))?;
            features.push(fitted);
        }
        // Categorical columns no step encoded: one-hot them (20 most frequent levels).
        if frame.columns().iter().any(|c| matches!(c.data, ColumnData::Categorical { .. }) && c.name != target.column) {
            let auto = OneHot { columns: None, max_levels: 20, min_frequency: 1 };
            let fitted = auto.fit(&frame, &ctx)?;
            frame = fitted.transform(frame)?;
            features.push(fitted);
        }
        let feature_names: Vec<String> =
            frame.names().into_iter().filter(|n| *n != target.column && *n != ROW_ID).map(str::to_string).collect();
        if feature_names.is_empty() {
            return Err(Error::data("no feature columns are left after cleaning (only the target remains)"));
        }
        let prepared = Prepared {
            cleaners,
            features,
            target: target.column.clone(),
            task: target.task,
            classes: target.classes.clone(),
            feature_names,
            sequences,
        };
        let ds = prepared.encode(&frame, "training", prepared.sequences.as_deref())?;
        Ok((prepared, ds, dropped))
    }

    /// Clean, transform and encode rows to predict (never drops a row). The target is encoded
    /// when the frame has it.
    pub fn transform(&self, frame: Frame, what: &str) -> Result<Dataset> {
        self.transform_with(frame, what, self.sequences.as_deref())
    }

    /// [`Prepared::transform`] for rows whose [`ROW_ID`] indexes `sequences` (rather than the
    /// sequences this preparation was fitted with): new entities of a model artifact.
    pub fn transform_with(&self, frame: Frame, what: &str, sequences: Option<&Sequences>) -> Result<Dataset> {
        let mut frame = frame;
        for c in &self.cleaners {
            frame = c.apply_predict(frame)?;
        }
        for f in &self.features {
            frame = f.transform(frame)?;
        }
        self.encode(&frame, what, sequences)
    }

    /// Names of the model features, in column order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// What the fitted cleaners and feature steps reported about their fit (e.g. an anomaly
    /// filter's threshold and dropped rows), in pipeline order; steps with nothing to say are
    /// left out.
    pub fn step_summaries(&self) -> Vec<serde_json::Value> {
        let cleaners = self.cleaners.iter().filter_map(|c| c.summary());
        cleaners.chain(self.features.iter().filter_map(|f| f.summary())).collect()
    }

    fn encode(&self, frame: &Frame, what: &str, sequences: Option<&Sequences>) -> Result<Dataset> {
        let n = frame.n_rows();
        let mut x = Array2::zeros((n, self.feature_names.len()));
        for (j, name) in self.feature_names.iter().enumerate() {
            let col = frame.column(name).ok_or_else(|| {
                Error::data(format!("the {what} rows have no column `{name}` (the training rows had it)"))
            })?;
            let mut missing = 0;
            let mut first = 0;
            for i in 0..n {
                let v = match &col.data {
                    ColumnData::Timestamp(t) => t[i].map_or(f64::NAN, |t| t as f64 / 86_400.0),
                    ColumnData::Categorical { .. } => {
                        return Err(Error::data(format!(
                            "column `{name}` is still categorical: encode it with a `one_hot` or `ordinal` feature step"
                        )));
                    }
                    d => d.value_f64(i),
                };
                if !v.is_finite() {
                    if missing == 0 {
                        first = i;
                    }
                    missing += 1;
                }
                x[[i, j]] = v;
            }
            if missing > 0 {
                return Err(Error::data(format!(
                    "column `{name}` has {missing} missing or non-finite values in the {what} rows (first: {}); add a cleaner such as [[clean]] kind = \"impute\"",
                    frame.row_place(first)
                )));
            }
        }
        let y = match frame.column(&self.target) {
            None => None,
            Some(c) if self.task.is_classification() => {
                let index: HashMap<&str, usize> =
                    self.classes.iter().enumerate().map(|(i, l)| (l.as_str(), i)).collect();
                let mut y = Vec::with_capacity(n);
                for i in 0..n {
                    let label = c.data.value_string(i).ok_or_else(|| {
                        Error::data(format!(
                            "target `{}` is missing in the {what} rows at {}",
                            self.target,
                            frame.row_place(i)
                        ))
                    })?;
                    let k = index.get(label.as_str()).ok_or_else(|| {
                        Error::data(format!(
                            "target `{}` has class \"{label}\" in {what} row {} that the training rows do not have (classes: {})",
                            self.target,
                            i + 1,
                            self.classes.join(", ")
                        ))
                    })?;
                    y.push(*k as f64);
                }
                Some(y)
            }
            Some(c) => {
                let y: Vec<f64> = (0..n).map(|i| c.data.value_f64(i)).collect();
                if let Some(i) = y.iter().position(|v| !v.is_finite()) {
                    return Err(Error::data(format!("target `{}` is missing in {what} row {}", self.target, i + 1)));
                }
                Some(y)
            }
        };
        let mut ds = Dataset::from_x(x, self.feature_names.clone());
        ds.y = y;
        ds.classes = self.classes.clone();
        ds.sequences = gather_sequences(sequences, frame, what)?;
        Ok(ds)
    }
}

/// The sequences of `frame`'s rows, found in `all` through their [`ROW_ID`].
fn gather_sequences(all: Option<&Sequences>, frame: &Frame, what: &str) -> Result<Option<Sequences>> {
    let Some(all) = all else { return Ok(None) };
    let col = frame.column(ROW_ID).ok_or_else(|| {
        Error::data(format!("the {what} rows lost the hidden `{ROW_ID}` column that aligns them with their sequences"))
    })?;
    let n = all.lengths.len();
    let idx: Vec<usize> = (0..frame.n_rows())
        .map(|i| {
            let v = col.data.value_f64(i);
            if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && (v as usize) < n {
                Ok(v as usize)
            } else {
                Err(Error::data(format!("{what} row {} has no sequence (`{ROW_ID}` = {v})", i + 1)))
            }
        })
        .collect::<Result<_>>()?;
    Ok(Some(Sequences {
        data: all.data.select(Axis(0), &idx),
        lengths: idx.iter().map(|&i| all.lengths[i]).collect(),
        channels: all.channels.clone(),
    }))
}

fn in_step(section: &str, kind: &str, e: Error) -> Error {
    match e {
        Error::Config { key, message } => Error::config(
            if key.is_empty() { section.to_string() } else { format!("{section}.{key}") },
            format!("{kind}: {message}"),
        ),
        Error::Data(m) => Error::Data(format!("{section} step `{kind}`: {m}")),
        // A model fitted inside a step (`anomaly.filter`'s detector): say which step.
        Error::Model { model, message } => {
            Error::Model { model, message: format!("{message} (in {section} step `{kind}`)") }
        }
        other => other,
    }
}

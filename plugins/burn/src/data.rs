//! Host-side preparation of model inputs: scaling learnt on training rows, f32 buffers, and
//! mini-batches turned into tensors on the training device.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use ndarray::Array2;
use promoml_core::{Dataset, Error, Result, Sequences};
use serde::{Deserialize, Serialize};

/// Signed `ln(1 + |v|)`: tames heavy-tailed counts and amounts, keeps sign and zero.
fn signed_log(v: f64) -> f64 {
    v.signum() * v.abs().ln_1p()
}

/// Per-column centring and scaling (after an optional signed log), learnt on training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ColumnScaler {
    /// Apply [`signed_log`] before centring.
    pub log: bool,
    /// Mean per column.
    pub mean: Vec<f64>,
    /// Standard deviation per column (1 for constant columns).
    pub sd: Vec<f64>,
}

impl ColumnScaler {
    /// Fit on columns whose values are streamed as `(column, value)` pairs.
    fn fit(width: usize, log: bool, values: impl Iterator<Item = (usize, f64)> + Clone) -> ColumnScaler {
        let t = |v: f64| if log { signed_log(v) } else { v };
        let mut n = vec![0.0f64; width];
        let mut sum = vec![0.0f64; width];
        for (j, v) in values.clone() {
            n[j] += 1.0;
            sum[j] += t(v);
        }
        let mean: Vec<f64> = (0..width).map(|j| if n[j] > 0.0 { sum[j] / n[j] } else { 0.0 }).collect();
        let mut ss = vec![0.0f64; width];
        for (j, v) in values {
            let d = t(v) - mean[j];
            ss[j] += d * d;
        }
        let sd = (0..width)
            .map(|j| {
                let sd = if n[j] > 0.0 { (ss[j] / n[j]).sqrt() } else { 0.0 };
                if sd.is_finite() && sd > 1e-12 * (1.0 + mean[j].abs()) { sd } else { 1.0 }
            })
            .collect();
        ColumnScaler { log, mean, sd }
    }
    /// Scaled value of column `j`, as f32 (clamped so that absurd inputs stay finite).
    fn apply(&self, j: usize, v: f64) -> f32 {
        let v = if self.log { signed_log(v) } else { v };
        (((v - self.mean[j]) / self.sd[j]).clamp(-1e6, 1e6)) as f32
    }
}

/// How raw inputs become network inputs; saved with a fitted model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct InputScaler {
    /// Sequence shape seen in training: steps and channels (`None` when sequences are unused).
    pub seq_shape: Option<(usize, usize)>,
    /// Per-channel scaling of valid sequence steps.
    pub seq: Option<ColumnScaler>,
    /// Per-column scaling of the tabular features (`None` when the tabular input is unused).
    pub tab: Option<ColumnScaler>,
}

impl InputScaler {
    /// Learn the scaling from training rows. `use_seq` / `use_tab` say which inputs the
    /// network reads.
    pub fn fit(data: &Dataset, use_seq: bool, use_tab: bool, log: bool, who: &str) -> Result<InputScaler> {
        let (seq_shape, seq) = if use_seq {
            let s = sequences(data, who)?;
            let (_, steps, channels) = s.data.dim();
            let values = (0..s.lengths.len()).flat_map(move |i| {
                (0..s.lengths[i].min(steps))
                    .flat_map(move |t| (0..channels).map(move |c| (c, s.data[[i, t, c]] as f64)))
            });
            (Some((steps, channels)), Some(ColumnScaler::fit(channels, log, values)))
        } else {
            (None, None)
        };
        let tab = if use_tab && data.n_features() > 0 {
            let x = &data.x;
            let values = x.indexed_iter().map(|((_, j), &v)| (j, v));
            Some(ColumnScaler::fit(x.ncols(), log, values))
        } else {
            None
        };
        Ok(InputScaler { seq_shape, seq, tab })
    }

    /// Number of tabular inputs the network reads.
    pub fn tab_width(&self) -> usize {
        self.tab.as_ref().map_or(0, |t| t.mean.len())
    }

    /// Whether the scaling fits the inputs of a network of shape `spec`: sequence scaling of its
    /// steps and channels when it reads sequences, column scaling of its tabular inputs when it
    /// has any, each with one mean and one standard deviation per column.
    pub fn check(&self, spec: &crate::net::NetSpec) -> std::result::Result<(), String> {
        let fits = |sc: &ColumnScaler, n: usize| sc.mean.len() == n && sc.sd.len() == n;
        let seq_fits = match (&self.seq_shape, &self.seq) {
            (Some(shape), Some(sc)) => {
                spec.arch.reads_sequences() && *shape == (spec.steps, spec.channels) && fits(sc, spec.channels)
            }
            (None, None) => !spec.arch.reads_sequences(),
            _ => false,
        };
        let tab_fits = match &self.tab {
            Some(sc) => fits(sc, spec.tab_in),
            None => spec.tab_in == 0,
        };
        if seq_fits && tab_fits { Ok(()) } else { Err("its input scaling does not fit the network's inputs".into()) }
    }

    /// Scaled inputs of every row of `data`, checked against the training shapes.
    pub fn transform(&self, data: &Dataset, who: &str) -> Result<Inputs> {
        let n = data.n_rows();
        let seq = match (&self.seq_shape, &self.seq) {
            (Some((steps, channels)), Some(sc)) => {
                let s = sequences(data, who)?;
                let (rows, st, ch) = s.data.dim();
                if rows != n || s.lengths.len() != n {
                    return Err(Error::model(
                        who,
                        format!("{rows} sequences and {} lengths for {n} rows", s.lengths.len()),
                    ));
                }
                if (st, ch) != (*steps, *channels) {
                    return Err(Error::model(
                        who,
                        format!("was fitted on sequences of {steps} steps x {channels} channels but got {st} x {ch}"),
                    ));
                }
                let mut values = vec![0.0f32; n * st * ch];
                let mut last = vec![0.0f32; n * st];
                let mut valid = vec![0.0f32; n * st];
                for i in 0..n {
                    let len = s.lengths[i].min(st);
                    for t in 0..len {
                        for c in 0..ch {
                            let v = s.data[[i, t, c]] as f64;
                            if !v.is_finite() {
                                return Err(Error::model(
                                    who,
                                    format!("sequence row {i}, step {t}, channel `{}` is {v}", s.channels[c]),
                                ));
                            }
                            values[(i * st + t) * ch + c] = sc.apply(c, v);
                        }
                        valid[i * st + t] = 1.0;
                    }
                    if len > 0 {
                        last[i * st + len - 1] = 1.0;
                    } else {
                        // An empty history: the transformer attends to the (zero) first step so
                        // that its softmax is defined; the recurrent models read a zero state.
                        valid[i * st] = 1.0;
                    }
                }
                Some(SeqInputs { steps: st, channels: ch, values, last, valid })
            }
            _ => None,
        };
        let tab = match &self.tab {
            Some(sc) => {
                promoml_core::model_util::check_features(who, sc.mean.len(), data)?;
                let x: &Array2<f64> = &data.x;
                let mut out = Vec::with_capacity(n * x.ncols());
                for ((i, j), &v) in x.indexed_iter() {
                    if !v.is_finite() {
                        return Err(Error::model(
                            who,
                            format!("feature `{}` of row {i} is {v}", data.feature_names[j]),
                        ));
                    }
                    out.push(sc.apply(j, v));
                }
                Some(out)
            }
            None => None,
        };
        Ok(Inputs { n, seq, tab, tab_width: self.tab_width() })
    }
}

/// The sequences of `data`, or an error naming the model that needs them.
pub(crate) fn sequences<'a>(data: &'a Dataset, who: &str) -> Result<&'a Sequences> {
    let s = data.sequences.as_ref().ok_or_else(|| {
        Error::model(
            who,
            "reads behaviour sequences but the data has none; use an event-log source with a sequence \
             encoding (see `[data.sequence]`)",
        )
    })?;
    let (rows, steps, channels) = s.data.dim();
    if rows != data.n_rows() || s.lengths.len() != rows {
        return Err(Error::model(
            who,
            format!("{rows} sequences and {} lengths for {} rows", s.lengths.len(), data.n_rows()),
        ));
    }
    if steps == 0 || channels == 0 {
        return Err(Error::model(
            who,
            format!("sequences have {steps} steps x {channels} channels; need at least 1 x 1"),
        ));
    }
    Ok(s)
}

/// Scaled sequence inputs, row-major `[row, step, channel]`.
#[derive(Debug, Clone)]
pub(crate) struct SeqInputs {
    pub steps: usize,
    pub channels: usize,
    pub values: Vec<f32>,
    /// One-hot of the last valid step per row (all zero for an empty history).
    pub last: Vec<f32>,
    /// 1 for valid steps (the first step of an empty history counts as valid).
    pub valid: Vec<f32>,
}

/// Scaled inputs of a set of rows.
#[derive(Debug, Clone)]
pub(crate) struct Inputs {
    pub n: usize,
    pub seq: Option<SeqInputs>,
    pub tab: Option<Vec<f32>>,
    pub tab_width: usize,
}

/// Targets per row, as the loss reads them: one column (binary 0/1, standardised regression
/// value) or `k` one-hot columns (multiclass) or the inputs themselves (autoencoder).
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    pub width: usize,
    pub values: Vec<f32>,
    pub weights: Vec<f32>,
}

/// Network inputs of one mini-batch, on a device.
#[derive(Debug, Clone)]
pub(crate) struct BatchInputs<B: Backend> {
    /// `[batch, steps, channels]` with `last` `[batch, steps]`, `valid` `[batch, steps]` and
    /// `pad` (true where padded) `[batch, steps]`.
    pub seq: Option<SeqBatch<B>>,
    /// `[batch, features]`.
    pub tab: Option<Tensor<B, 2>>,
}

/// Sequence tensors of one mini-batch.
#[derive(Debug, Clone)]
pub(crate) struct SeqBatch<B: Backend> {
    pub values: Tensor<B, 3>,
    pub last: Tensor<B, 2>,
    pub valid: Tensor<B, 2>,
    pub pad: Tensor<B, 2, Bool>,
}

fn gather(src: &[f32], width: usize, idx: &[usize]) -> Vec<f32> {
    let mut out = Vec::with_capacity(idx.len() * width);
    for &i in idx {
        out.extend_from_slice(&src[i * width..(i + 1) * width]);
    }
    out
}

impl Inputs {
    /// The rows `idx` as tensors on `device`.
    pub fn batch<B: Backend>(&self, idx: &[usize], device: &B::Device) -> BatchInputs<B> {
        let b = idx.len();
        let seq = self.seq.as_ref().map(|s| {
            let values = gather(&s.values, s.steps * s.channels, idx);
            let last = gather(&s.last, s.steps, idx);
            let valid = gather(&s.valid, s.steps, idx);
            let pad: Vec<bool> = valid.iter().map(|v| *v == 0.0).collect();
            SeqBatch {
                values: Tensor::from_data(TensorData::new(values, [b, s.steps, s.channels]), device),
                last: Tensor::from_data(TensorData::new(last, [b, s.steps]), device),
                valid: Tensor::from_data(TensorData::new(valid, [b, s.steps]), device),
                pad: Tensor::from_data(TensorData::new(pad, [b, s.steps]), device),
            }
        });
        let tab = self
            .tab
            .as_ref()
            .map(|t| Tensor::from_data(TensorData::new(gather(t, self.tab_width, idx), [b, self.tab_width]), device));
        BatchInputs { seq, tab }
    }
}

impl Targets {
    /// Target and weight tensors of rows `idx`: `[batch, width]` and `[batch]`.
    pub fn batch<B: Backend>(&self, idx: &[usize], device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 1>) {
        let b = idx.len();
        let y = Tensor::from_data(TensorData::new(gather(&self.values, self.width, idx), [b, self.width]), device);
        let w = Tensor::from_data(TensorData::new(gather(&self.weights, 1, idx), [b]), device);
        (y, w)
    }
}

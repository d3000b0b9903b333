//! The one training loop of the plugin, shared by every model and the autoencoder detector:
//! Adam on seeded mini-batches, per-parameter gradient-norm clipping, early stopping on a
//! seeded validation fold (the best epoch's weights are kept), and the fit deadline.

use crate::data::{Inputs, Targets};
use crate::net::{Arch, Net, NetSpec};
use burn::grad_clipping::GradientClippingConfig;
use burn::module::{AutodiffModule, Module, ModuleVisitor, Param};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{AdamConfig, GradientsParams, Optimizer};
use burn::tensor::Tensor;
use burn::tensor::activation::{log_sigmoid, log_softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use promoml_core::{Error, FitContext, Result};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use std::sync::Mutex;
use std::time::Instant;

/// Burn's backends draw initial weights (and burn's own dropout layers their masks) from one
/// process-wide generator; a fit holds this lock from seeding until it draws nothing more from
/// it (after initialisation, or for a transformer with dropout to the end of training), so
/// concurrent fits (the search runs folds and trials in parallel) cannot interleave their
/// draws and every fit is reproducible.
static BACKEND_RNG: Mutex<()> = Mutex::new(());

/// A freshly initialised network, built under the generator lock so that it does not take
/// draws from a fit running at the same time (used before loading saved weights).
pub(crate) fn fresh_net<B: Backend>(spec: &NetSpec, device: &B::Device) -> Net<B> {
    let _guard = BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner());
    materialized(spec.init(device))
}

/// Forces burn's lazily initialised parameters to draw their values now (while the caller
/// holds [`BACKEND_RNG`]) rather than at their first use.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

fn materialized<B: Backend>(net: Net<B>) -> Net<B> {
    net.visit(&mut Materialize);
    net
}

/// The loss a network is trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Loss {
    /// Binary cross-entropy on one logit column.
    Bce,
    /// Cross-entropy on `k` logit columns against one-hot targets.
    CrossEntropy,
    /// Mean squared error over the output columns (regression, reconstruction).
    Mse,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrainConfig {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub weight_decay: f64,
    pub patience: usize,
    pub clip_norm: f64,
    pub valid_fraction: f64,
    pub loss: Loss,
}

/// What happened during training.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainLog {
    /// Epochs run.
    pub epochs: usize,
    /// Epoch (1-based) whose weights were kept.
    pub best_epoch: usize,
    /// Validation loss of the kept weights (training loss when there was no validation fold).
    pub best_loss: f64,
    /// Rows used to fit and to validate.
    pub rows: (usize, usize),
    /// Training stopped because the fit's deadline passed.
    pub stopped_by_deadline: bool,
    /// Training throughput in rows (sequences) per second.
    pub rows_per_second: f64,
}

/// Per-row loss `[batch]` of `out` against `y`.
fn row_loss<B: Backend>(loss: Loss, out: Tensor<B, 2>, y: Tensor<B, 2>) -> Tensor<B, 1> {
    let [b, _] = out.dims();
    match loss {
        Loss::Bce => {
            // -(y log σ(z) + (1 - y) log σ(-z)), stable for large |z|.
            let pos = log_sigmoid(out.clone()) * y.clone();
            let neg = log_sigmoid(out.neg()) * (y.neg() + 1.0);
            (pos + neg).neg().reshape([b])
        }
        Loss::CrossEntropy => (log_softmax(out, 1) * y).sum_dim(1).neg().reshape([b]),
        Loss::Mse => {
            let d = out - y;
            (d.clone() * d).mean_dim(1).reshape([b])
        }
    }
}

/// Weighted mean loss of a batch.
fn batch_loss<B: Backend>(loss: Loss, out: Tensor<B, 2>, y: Tensor<B, 2>, w: Tensor<B, 1>) -> Tensor<B, 1> {
    let total = w.clone().sum().clamp_min(1e-12);
    (row_loss(loss, out, y) * w).sum() / total
}

/// Weighted mean loss of `net` over rows `idx`, without gradients.
fn evaluate<B: Backend>(
    net: &Net<B>,
    inputs: &Inputs,
    targets: &Targets,
    idx: &[usize],
    cfg: &TrainConfig,
    device: &B::Device,
) -> f64 {
    let (mut sum, mut weight) = (0.0f64, 0.0f64);
    for chunk in idx.chunks(cfg.batch_size.max(512)) {
        let (y, w) = targets.batch::<B>(chunk, device);
        let out = net.forward(inputs.batch::<B>(chunk, device));
        let l: f64 = (row_loss(cfg.loss, out, y) * w.clone()).sum().into_scalar().elem();
        let ws: f64 = w.sum().into_scalar().elem();
        sum += l;
        weight += ws;
    }
    if weight > 0.0 { sum / weight } else { f64::NAN }
}

use burn::tensor::ElementConversion;

/// Train a network of shape `spec` on all rows of `inputs`/`targets` and return the best
/// epoch's weights (on the inference backend) with a log. Seeds the backend from `ctx.seed`.
pub(crate) fn train<B: AutodiffBackend>(
    who: &str,
    spec: &NetSpec,
    inputs: &Inputs,
    targets: &Targets,
    cfg: &TrainConfig,
    ctx: &FitContext,
    device: &B::Device,
) -> Result<(Net<B::InnerBackend>, TrainLog)> {
    let n = inputs.n;
    if n == 0 {
        return Err(Error::model(who, "no training rows"));
    }
    // Initial weights come from the backend's process-wide generator, under its lock. Dropout
    // masks come from the fit's own generator (`Net::forward_train`), so a recurrent or dense
    // network releases the lock once initialised and fits train side by side (the search's
    // folds and trials in parallel); the transformer encoder's internal dropout draws from the
    // backend, so its fits keep the lock to the end.
    let mut guard = Some(BACKEND_RNG.lock().unwrap_or_else(|e| e.into_inner()));
    B::seed(device, ctx.seed);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(ctx.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut noise = rand_chacha::ChaCha8Rng::seed_from_u64(ctx.seed ^ 0xd1b5_4a32_d192_ed03);

    // Seeded validation fold; too few rows (or valid_fraction 0) means fixed epochs, no fold.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut rng);
    let n_valid = if n >= 20 { ((n as f64 * cfg.valid_fraction).round() as usize).min(n - 10) } else { 0 };
    let (valid_idx, fit_idx) = order.split_at(n_valid);
    let (valid_idx, mut fit_idx) = (valid_idx.to_vec(), fit_idx.to_vec());

    let mut optim_cfg = AdamConfig::new();
    if cfg.weight_decay > 0.0 {
        optim_cfg = optim_cfg.with_weight_decay(Some(WeightDecayConfig::new(cfg.weight_decay as f32)));
    }
    if cfg.clip_norm > 0.0 {
        optim_cfg = optim_cfg.with_grad_clipping(Some(GradientClippingConfig::Norm(cfg.clip_norm as f32)));
    }
    let mut optim = optim_cfg.init::<B, Net<B>>();
    let mut net: Net<B> = materialized(spec.init(device));
    if spec.arch != Arch::Transformer || spec.dropout == 0.0 {
        guard.take();
    }

    let mut best: Option<(Net<B::InnerBackend>, f64, usize)> = None;
    let mut since_best = 0usize;
    let mut epochs = 0usize;
    let mut stopped_by_deadline = false;
    let started = Instant::now();
    let mut rows_seen = 0usize;
    let past = |d: Option<Instant>| d.is_some_and(|d| Instant::now() > d);
    // Progress for a log reader: a line per epoch, and one every 10 s inside a long epoch.
    let name = if ctx.label.is_empty() { who.to_string() } else { format!("{who} ({})", ctx.label) };
    let mut last_line = Instant::now();
    let batches = fit_idx.len().div_ceil(cfg.batch_size.max(1));
    'epochs: for epoch in 1..=cfg.max_epochs {
        fit_idx.shuffle(&mut rng);
        let (mut train_sum, mut train_w) = (0.0f64, 0.0f64);
        for (bi, chunk) in fit_idx.chunks(cfg.batch_size.max(1)).enumerate() {
            if last_line.elapsed().as_secs_f64() >= 10.0 {
                tracing::info!(
                    target: promoml_core::PROGRESS_TARGET,
                    "{name}: epoch {epoch}/{}: batch {bi}/{batches}, train loss so far {:.4}, {:.0} s",
                    cfg.max_epochs,
                    train_sum / train_w.max(1.0),
                    started.elapsed().as_secs_f64()
                );
                last_line = Instant::now();
            }
            if past(ctx.deadline) {
                if best.is_none() {
                    return Err(Error::Budget(format!("while fitting `{who}` (no epoch finished)")));
                }
                stopped_by_deadline = true;
                break 'epochs;
            }
            let batch = inputs.batch::<B>(chunk, device);
            let (y, w) = targets.batch::<B>(chunk, device);
            let out = net.forward_train(batch, &mut noise);
            let loss = batch_loss(cfg.loss, out, y, w);
            let value: f64 = loss.clone().into_scalar().elem();
            if !value.is_finite() {
                return Err(Error::model(
                    who,
                    format!("training diverged in epoch {epoch} (loss {value}); lower learning_rate or clip_norm"),
                ));
            }
            train_sum += value * chunk.len() as f64;
            train_w += chunk.len() as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(cfg.learning_rate, net, grads);
            rows_seen += chunk.len();
        }
        epochs = epoch;
        let score = if valid_idx.is_empty() {
            train_sum / train_w.max(1.0)
        } else {
            evaluate(&net.valid(), inputs, targets, &valid_idx, cfg, device)
        };
        if !score.is_finite() {
            return Err(Error::model(who, format!("validation loss is {score} after epoch {epoch}")));
        }
        let valid_text =
            if valid_idx.is_empty() { "no validation rows".to_string() } else { format!("validation loss {score:.4}") };
        tracing::info!(
            target: promoml_core::PROGRESS_TARGET,
            "{name}: epoch {epoch}/{}: train loss {:.4}, {valid_text}, {:.1} s",
            cfg.max_epochs,
            train_sum / train_w.max(1.0),
            started.elapsed().as_secs_f64()
        );
        last_line = Instant::now();
        if best.as_ref().is_none_or(|(_, b, _)| score < *b - 1e-7 * b.abs().max(1e-12)) {
            best = Some((net.valid(), score, epoch));
            since_best = 0;
        } else {
            since_best += 1;
            if !valid_idx.is_empty() && since_best >= cfg.patience {
                break;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (net, best_loss, best_epoch) = best.ok_or_else(|| Error::model(who, "no training epoch ran"))?;
    let log = TrainLog {
        epochs,
        best_epoch,
        best_loss,
        rows: (fit_idx.len(), valid_idx.len()),
        stopped_by_deadline,
        rows_per_second: if elapsed > 0.0 { rows_seen as f64 / elapsed } else { 0.0 },
    };
    Ok((net, log))
}

/// Outputs of `net` for every row of `inputs`, row-major `[rows, out]`, in f32.
pub(crate) fn predict<B: Backend>(net: &Net<B>, inputs: &Inputs, device: &B::Device) -> Result<Vec<f32>> {
    let idx: Vec<usize> = (0..inputs.n).collect();
    let mut out = Vec::new();
    for chunk in idx.chunks(2048) {
        let o = net.forward(inputs.batch::<B>(chunk, device));
        let data = o.into_data();
        out.extend(data.iter::<f32>());
    }
    Ok(out)
}

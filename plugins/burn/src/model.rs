//! The model kinds `burn.lstm`, `burn.gru`, `burn.transformer` and `burn.mlp`.

use crate::backend::{Device, Trained};
use crate::data::{InputScaler, Targets};
use crate::net::{Arch, NetSpec, Positional};
use crate::train::{Loss, TrainConfig, TrainLog};
use ndarray::Array2;
use promoml_core::model_util::{class_targets, task_of, value_targets};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, InputKind, Model, ParamSpec, ParamValue, Params, ParamsExt, Predictions,
    Result, SearchSpace, Task,
};
use serde::{Deserialize, Serialize};

/// Device choices offered by the `device` parameter; `context` follows the pipeline's device.
pub(crate) const DEVICES: [&str; 6] = ["context", "cpu", "cuda:0", "cuda:1", "cuda:2", "cuda:3"];

/// A neural-network model kind.
#[derive(Debug, Clone)]
pub struct BurnModel {
    arch: Arch,
}

impl BurnModel {
    /// `burn.lstm`.
    pub fn lstm() -> BurnModel {
        BurnModel { arch: Arch::Lstm }
    }
    /// `burn.gru`.
    pub fn gru() -> BurnModel {
        BurnModel { arch: Arch::Gru }
    }
    /// `burn.transformer`.
    pub fn transformer() -> BurnModel {
        BurnModel { arch: Arch::Transformer }
    }
    /// `burn.mlp`.
    pub fn mlp() -> BurnModel {
        BurnModel { arch: Arch::Mlp }
    }
    /// [`Model::fit`] returning the concrete fitted type, whose [`FittedNet::log`] tells how
    /// training went.
    pub fn fit_net(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<FittedNet> {
        let who = self.kind();
        let p = self.space().resolve(params, &format!("{who}.params"))?;
        fit_network(who, self.arch, data, &p, ctx)
    }
}

/// The parameters every network trainer shares (learning rate, batches, epochs, ...).
pub(crate) fn training_params(batch_size: i64, epochs: i64, patience: i64) -> Vec<ParamSpec> {
    vec![
        ParamSpec::float("learning_rate", "Adam step size", 1e-3, 1e-6, 1.0).search_float(3e-4, 1e-2, true),
        ParamSpec::int("batch_size", "rows per mini-batch", batch_size, 1, 65_536).search_int(32, 512, true),
        ParamSpec::int(
            "epochs",
            "most passes over the training rows; early stopping usually ends sooner",
            epochs,
            1,
            100_000,
        )
        .search_int(10, 60, true),
        ParamSpec::float("weight_decay", "L2 penalty added to the gradients (0 = none)", 0.0, 0.0, 1.0)
            .search_float(1e-7, 1e-3, true),
        ParamSpec::int(
            "patience",
            "epochs without improvement of the validation loss before training stops",
            patience,
            1,
            10_000,
        )
        .search_int(2, 10, false),
        ParamSpec::float(
            "valid_fraction",
            "share of the training rows held out (seeded) for early stopping; 0 trains all epochs on every row",
            0.15,
            0.0,
            0.5,
        ),
        ParamSpec::float(
            "clip_norm",
            "gradient clipping: largest L2 norm of each parameter's gradient (0 = no clipping)",
            1.0,
            0.0,
            1e6,
        ),
        ParamSpec::choice(
            "device",
            "compute device: \"context\" follows the pipeline's device setting; \"cuda:N\" needs the `cuda` build",
            "context",
            &DEVICES,
        ),
    ]
}

/// Training settings from validated parameters.
pub(crate) fn train_config(p: &Params, loss: Loss) -> Result<TrainConfig> {
    Ok(TrainConfig {
        learning_rate: p.f64("learning_rate")?,
        batch_size: p.usize("batch_size")?,
        max_epochs: p.usize("epochs")?,
        weight_decay: p.f64("weight_decay")?,
        patience: p.usize("patience")?,
        clip_norm: p.f64("clip_norm")?,
        valid_fraction: p.f64("valid_fraction")?,
        loss,
    })
}

/// The device a fit runs on: the `device` parameter, or the context's when it says `context`.
pub(crate) fn device_of(p: &Params, ctx: &FitContext, who: &str) -> Result<Device> {
    match p.str("device")? {
        "context" => crate::backend::available(ctx.device, who),
        other => crate::backend::parse_device(other, who),
    }
}

impl Model for BurnModel {
    fn kind(&self) -> &str {
        match self.arch {
            Arch::Lstm => "burn.lstm",
            Arch::Gru => "burn.gru",
            Arch::Transformer => "burn.transformer",
            Arch::Mlp | Arch::Autoencoder => "burn.mlp",
        }
    }
    fn description(&self) -> &str {
        match self.arch {
            Arch::Lstm => "LSTM over behaviour sequences (last valid state) + tabular features, dense head (burn)",
            Arch::Gru => "GRU over behaviour sequences (last valid state) + tabular features, dense head (burn)",
            Arch::Transformer => {
                "transformer encoder over behaviour sequences (masked mean pooling) + tabular features (burn)"
            }
            Arch::Mlp | Arch::Autoencoder => "multi-layer perceptron on standardised tabular features (burn)",
        }
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass, Task::Regression]
    }
    fn honours_weights(&self) -> bool {
        true
    }
    fn input(&self) -> InputKind {
        if self.arch.reads_sequences() { InputKind::Sequence } else { InputKind::Tabular }
    }
    fn space(&self) -> SearchSpace {
        let mut params = Vec::new();
        match self.arch {
            Arch::Mlp | Arch::Autoencoder => {
                params.push(
                    ParamSpec::int("hidden_size", "units per hidden layer", 64, 1, 4096).search_int(16, 256, true),
                );
                params.push(ParamSpec::int("layers", "hidden layers", 2, 0, 8).search_int(1, 3, false));
            }
            arch => {
                let doc = if arch == Arch::Transformer {
                    "model width (rounded up to a multiple of heads); also the width of the dense head layers"
                } else {
                    "recurrent hidden state size; also the width of the dense head layers"
                };
                params.push(ParamSpec::int("hidden_size", doc, 32, 1, 1024).search_int(8, 96, true));
                let doc = if arch == Arch::Transformer { "encoder layers" } else { "stacked recurrent layers" };
                params.push(ParamSpec::int("layers", doc, 1, 1, 8).search_int(1, 2, false));
                params.push(
                    ParamSpec::int(
                        "head_layers",
                        "dense ReLU layers between the pooled sequence (+ tabular features) and the output",
                        1,
                        0,
                        4,
                    )
                    .search_int(0, 2, false),
                );
                params.push(ParamSpec::flag(
                    "use_tabular",
                    "concatenate the (standardised) tabular features to the pooled sequence before the head",
                    true,
                ));
                if arch == Arch::Transformer {
                    params.push(ParamSpec::int("heads", "attention heads", 2, 1, 16).search_int(1, 4, false));
                    params.push(ParamSpec::choice(
                        "positional",
                        "positional encoding: fixed sinusoids or one learnt vector per step",
                        "sinusoidal",
                        &["sinusoidal", "learned"],
                    ));
                }
            }
        }
        params.push(
            ParamSpec::float("dropout", "dropout probability between layers while training", 0.1, 0.0, 0.9)
                .search_float(0.0, 0.5, false),
        );
        params.push(ParamSpec::flag(
            "log_inputs",
            "apply sign(v)·ln(1+|v|) to inputs before standardising (tames heavy-tailed counts and amounts)",
            true,
        ));
        let batch = if self.arch.reads_sequences() { 128 } else { 256 };
        params.extend(training_params(batch, 40, 5));
        SearchSpace::new(params)
    }
    fn cost(&self, rows: usize, features: usize, params: &Params) -> f64 {
        // Forward and backward passes of every layer over every row (and, for a sequence model,
        // every time step; about 50 for a behaviour log) per epoch.
        let space = self.space();
        let hidden = space.number(params, "hidden_size", 32.0);
        let layers = space.number(params, "layers", 1.0).max(1.0);
        let steps = if self.arch.reads_sequences() { 50.0 } else { 1.0 };
        let per_row = (features.max(1) as f64 * hidden + layers * hidden * hidden) * steps * 6.0;
        space.number(params, "epochs", 10.0) * rows as f64 * per_row
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        Ok(Box::new(self.fit_net(data, params, ctx)?))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let fitted = FittedNet::from_bytes(self.kind(), bytes)?;
        if fitted.meta.kind != self.kind() {
            return Err(Error::model(
                self.kind(),
                format!("the artifact holds a `{}` model, not `{}`", fitted.meta.kind, self.kind()),
            ));
        }
        Ok(Box::new(fitted))
    }
}

/// How outputs become predictions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Head {
    /// One logit; sigmoid.
    Binary,
    /// `k` logits; softmax.
    Multiclass(usize),
    /// One standardised value.
    Regression { mean: f64, sd: f64 },
}

/// Everything about a fitted network except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Meta {
    pub kind: String,
    pub spec: NetSpec,
    pub scaler: InputScaler,
    pub head: Head,
    pub device: String,
    pub log: TrainLog,
}

impl Meta {
    /// Whether the head, the network's output width and the input scaling agree with each
    /// other (before the network is built from the spec).
    fn check(&self) -> std::result::Result<(), String> {
        let spec = &self.spec;
        let head_fits = match &self.head {
            Head::Binary => spec.out == 1,
            Head::Multiclass(k) => *k >= 2 && spec.out == *k,
            Head::Regression { mean, sd } => spec.out == 1 && mean.is_finite() && sd.is_finite(),
        };
        if !head_fits {
            return Err(format!("its head does not fit an output of width {}", spec.out));
        }
        self.scaler.check(spec)
    }
}

/// A fitted network model.
#[derive(Debug)]
pub struct FittedNet {
    meta: Meta,
    trained: Trained,
}

/// Magic bytes opening a saved network (format version 1).
const MAGIC: &[u8; 8] = b"PMLBURN1";

/// `MAGIC`, the metadata's JSON length (u64, little-endian), the JSON, then burn's record.
pub(crate) fn pack<M: Serialize>(meta: &M, weights: &[u8], who: &str) -> Result<Vec<u8>> {
    let json = serde_json::to_vec(meta).map_err(|e| Error::model(who, format!("could not serialise: {e}")))?;
    let mut out = Vec::with_capacity(16 + json.len() + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(weights);
    Ok(out)
}

/// The metadata and weights of [`pack`]ed bytes.
pub(crate) fn unpack<'a, M: for<'de> Deserialize<'de>>(bytes: &'a [u8], who: &str) -> Result<(M, &'a [u8])> {
    let bad = |m: &str| Error::model(who, format!("not a promoml-burn artifact: {m}"));
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad("missing the PMLBURN1 header"));
    }
    let len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
    let end = 16usize.checked_add(len).filter(|e| *e <= bytes.len()).ok_or_else(|| bad("truncated metadata"))?;
    let meta = serde_json::from_slice(&bytes[16..end]).map_err(|e| bad(&format!("metadata: {e}")))?;
    Ok((meta, &bytes[end..]))
}

impl FittedNet {
    /// What training did (epochs, best epoch, validation loss, throughput).
    pub fn log(&self) -> &TrainLog {
        &self.meta.log
    }
    /// The network's shape.
    pub fn spec(&self) -> &NetSpec {
        &self.meta.spec
    }
    fn from_bytes(who: &str, bytes: &[u8]) -> Result<FittedNet> {
        let (meta, weights): (Meta, &[u8]) = unpack(bytes, who)?;
        meta.check().map_err(|e| Error::model(who, format!("the saved network is corrupt: {e}")))?;
        // Artifacts trained on a GPU load onto it when this build has CUDA, else onto the CPU.
        let device = crate::backend::parse_device(&meta.device, who).unwrap_or(Device::Cpu);
        let trained = Trained::from_bytes(&meta.spec, weights, device, who)?;
        Ok(FittedNet { meta, trained })
    }
}

impl FittedModel for FittedNet {
    fn reads(&self) -> promoml_core::Reads {
        let s = &self.meta.scaler;
        promoml_core::Reads { tabular: s.tab.is_some(), sequences: s.seq_shape.is_some() }
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        let who = self.meta.kind.as_str();
        let inputs = self.meta.scaler.transform(data, who)?;
        let out = self.trained.outputs(&inputs)?;
        let n = inputs.n;
        let pred = match &self.meta.head {
            Head::Binary => Predictions::binary(out.iter().map(|&z| promoml_core::model_util::sigmoid(z as f64))),
            Head::Multiclass(k) => {
                let mut p = Array2::zeros((n, *k));
                for (i, mut row) in p.rows_mut().into_iter().enumerate() {
                    let mut v: Vec<f64> = out[i * k..(i + 1) * k].iter().map(|&z| z as f64).collect();
                    promoml_core::model_util::softmax(&mut v);
                    for (j, x) in v.into_iter().enumerate() {
                        row[j] = x;
                    }
                }
                Predictions::Proba(p)
            }
            Head::Regression { mean, sd } => Predictions::Values(out.iter().map(|&z| z as f64 * sd + mean).collect()),
        };
        pred.check(n, who)?;
        Ok(pred)
    }
    fn save(&self) -> Result<Vec<u8>> {
        let who = self.meta.kind.as_str();
        pack(&self.meta, &self.trained.to_bytes(who)?, who)
    }
    fn n_classes(&self) -> Option<usize> {
        Some(match self.meta.head {
            Head::Binary => 2,
            Head::Multiclass(k) => k,
            Head::Regression { .. } => 0,
        })
    }
}

/// Check the task and the inputs a model of `arch` needs.
fn check_data(who: &str, arch: Arch, data: &Dataset) -> Result<Task> {
    if data.n_classes() == 1 {
        return Err(Error::model(who, "the target has a single class; classification needs at least two"));
    }
    if data.n_rows() == 0 {
        return Err(Error::model(who, "no training rows"));
    }
    if arch.reads_sequences() {
        crate::data::sequences(data, who)?;
    } else if data.n_features() == 0 {
        return Err(Error::model(who, "needs at least one tabular feature, got none"));
    }
    Ok(task_of(data))
}

/// Fit a network model of `arch` with resolved parameters `p`.
pub(crate) fn fit_network(who: &str, arch: Arch, data: &Dataset, p: &Params, ctx: &FitContext) -> Result<FittedNet> {
    let task = check_data(who, arch, data)?;
    let device = device_of(p, ctx, who)?;
    let n = data.n_rows();
    let use_tab = match arch {
        Arch::Mlp | Arch::Autoencoder => true,
        _ => p.bool("use_tabular")?,
    };
    let scaler = InputScaler::fit(data, arch.reads_sequences(), use_tab, p.bool("log_inputs")?, who)?;
    let inputs = scaler.transform(data, who)?;
    let weights: Vec<f32> = match &data.weights {
        Some(w) if w.len() == n => w.iter().map(|&v| if v.is_finite() && v > 0.0 { v as f32 } else { 0.0 }).collect(),
        Some(w) => return Err(Error::model(who, format!("{} row weights for {n} rows", w.len()))),
        None => vec![1.0; n],
    };
    let (head, loss, targets) = match task {
        Task::Binary => {
            let y = class_targets(who, data)?;
            let values = y.iter().map(|&c| c as f32).collect();
            (Head::Binary, Loss::Bce, Targets { width: 1, values, weights })
        }
        Task::Multiclass => {
            let y = class_targets(who, data)?;
            let k = data.n_classes();
            let mut values = vec![0.0f32; n * k];
            for (i, &c) in y.iter().enumerate() {
                values[i * k + c] = 1.0;
            }
            (Head::Multiclass(k), Loss::CrossEntropy, Targets { width: k, values, weights })
        }
        Task::Regression => {
            let y = value_targets(who, data)?;
            let mean = y.iter().sum::<f64>() / n as f64;
            let sd = (y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64).sqrt();
            let sd = if sd.is_finite() && sd > 1e-12 * (1.0 + mean.abs()) { sd } else { 1.0 };
            let values = y.iter().map(|v| ((v - mean) / sd) as f32).collect();
            (Head::Regression { mean, sd }, Loss::Mse, Targets { width: 1, values, weights })
        }
        other => return Err(Error::model(who, format!("does not support {} tasks", other.name()))),
    };
    let hidden = p.usize("hidden_size")?;
    let (steps, channels) = scaler.seq_shape.unwrap_or((0, 0));
    let (layers, dense) = match arch {
        Arch::Mlp | Arch::Autoencoder => (0, vec![hidden; p.usize("layers")?]),
        _ => (p.usize("layers")?, vec![hidden; p.usize("head_layers")?]),
    };
    let spec = NetSpec {
        arch,
        steps,
        channels,
        tab_in: scaler.tab_width(),
        hidden,
        layers,
        heads: if arch == Arch::Transformer { p.usize("heads")? } else { 1 },
        positional: match p.get("positional") {
            Some(ParamValue::Str(s)) if s == "learned" => Positional::Learned,
            _ => Positional::Sinusoidal,
        },
        dense,
        out: targets.width,
        dropout: p.f64("dropout")?,
    };
    let cfg = train_config(p, loss)?;
    let (trained, log) = crate::backend::train(who, device, &spec, &inputs, &targets, &cfg, ctx)?;
    Ok(FittedNet { meta: Meta { kind: who.to_string(), spec, scaler, head, device: device.name(), log }, trained })
}

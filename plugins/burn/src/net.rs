//! The networks: one burn module whose parts are present or absent by architecture.

use crate::data::BatchInputs;
use burn::module::{Initializer, Module, Param};
use burn::nn::transformer::{TransformerEncoder, TransformerEncoderConfig, TransformerEncoderInput};
use burn::nn::{
    Dropout, DropoutConfig, Gru, GruConfig, Linear, LinearConfig, Lstm, LstmConfig, PositionalEncoding,
    PositionalEncodingConfig,
};
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng as _;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Network families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Stacked LSTM over the sequence, last valid hidden state pooled.
    Lstm,
    /// Stacked GRU over the sequence, last valid hidden state pooled.
    Gru,
    /// Transformer encoder over the sequence, masked mean pooling.
    Transformer,
    /// Dense layers over the tabular features.
    Mlp,
    /// Dense encoder-decoder reconstructing the tabular features.
    Autoencoder,
}

impl Arch {
    /// Whether the network reads the sequences.
    pub fn reads_sequences(self) -> bool {
        matches!(self, Arch::Lstm | Arch::Gru | Arch::Transformer)
    }
}

/// Positional encoding of the transformer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Positional {
    /// Fixed sinusoids (Vaswani et al.).
    Sinusoidal,
    /// One learnt vector per step.
    Learned,
}

/// Everything needed to build a network of the right shape (saved with fitted models).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSpec {
    /// Family.
    pub arch: Arch,
    /// Sequence steps and channels (sequence models).
    pub steps: usize,
    /// Channels per step (sequence models).
    pub channels: usize,
    /// Tabular inputs concatenated before the dense layers (0 for none).
    pub tab_in: usize,
    /// Recurrent hidden size or transformer model width.
    pub hidden: usize,
    /// Recurrent or encoder layers.
    pub layers: usize,
    /// Attention heads (transformer).
    pub heads: usize,
    /// Positional encoding (transformer).
    pub positional: Positional,
    /// Widths of the dense layers between the pooled representation (or the tabular input)
    /// and the output layer.
    pub dense: Vec<usize>,
    /// Output width: 1 (binary logit, regression value), classes, or features (autoencoder).
    pub out: usize,
    /// Dropout probability between layers while training.
    pub dropout: f64,
}

/// The network. Parts not used by the architecture are empty.
#[derive(Module, Debug)]
pub struct Net<B: Backend> {
    lstm: Vec<Lstm<B>>,
    gru: Vec<Gru<B>>,
    proj: Option<Linear<B>>,
    sinusoids: Option<PositionalEncoding<B>>,
    learned_pos: Option<Param<Tensor<B, 2>>>,
    encoder: Option<TransformerEncoder<B>>,
    dense: Vec<Linear<B>>,
    head: Linear<B>,
    dropout: Dropout,
}

impl NetSpec {
    /// Width of the transformer's model dimension: `hidden` rounded up to a multiple of `heads`.
    pub fn d_model(&self) -> usize {
        self.hidden.div_ceil(self.heads.max(1)) * self.heads.max(1)
    }

    /// Check the spec of a saved network against `bytes`, the size of its saved weights, before
    /// anything is allocated: every width the architecture uses is at least 1, dropout is a
    /// probability, and the weight matrices it implies fit in the bytes (at least 4 bytes per
    /// weight at full precision). The error says what does not fit.
    pub(crate) fn check_saved(&self, bytes: usize) -> Result<(), String> {
        let m = |a: usize, b: usize| (a as u128).saturating_mul(b as u128);
        if !(0.0..1.0).contains(&self.dropout) {
            return Err(format!("dropout {} is not a probability below 1", self.dropout));
        }
        if self.out == 0 || self.dense.contains(&0) {
            return Err("a dense layer or the output has width 0".into());
        }
        let h = self.hidden;
        let mut weights: u128 = 0;
        let pooled = if self.arch.reads_sequences() {
            if self.channels == 0 || self.steps == 0 || h == 0 || self.layers == 0 || self.heads == 0 {
                return Err("a sequence network with 0 steps, channels, hidden units, layers or heads".into());
            }
            let gates: u128 = match self.arch {
                Arch::Lstm => 4,
                Arch::Gru => 3,
                _ => 0,
            };
            if gates > 0 {
                let first = m(self.channels, h).saturating_add(m(h, h));
                let rest = m(h, h).saturating_mul(2).saturating_mul(self.layers as u128 - 1);
                weights = gates.saturating_mul(first.saturating_add(rest));
                h
            } else {
                let d = self.d_model();
                // Projection, learnt positions (fixed sinusoids are computed, not saved),
                // attention (4·d²) and feed-forward (2·d·2d) weights of every layer.
                let positions = if self.positional == Positional::Learned { m(self.steps, d) } else { 0 };
                weights = m(self.channels, d)
                    .saturating_add(positions)
                    .saturating_add(m(d, d).saturating_mul(8).saturating_mul(self.layers as u128));
                d
            }
        } else {
            if self.tab_in == 0 {
                return Err("a dense network without inputs".into());
            }
            0
        };
        let mut width = pooled.saturating_add(self.tab_in);
        for &w in &self.dense {
            weights = weights.saturating_add(m(width, w));
            width = w;
        }
        weights = weights.saturating_add(m(width, self.out));
        if weights.saturating_mul(4) > bytes as u128 {
            return Err(format!(
                "its shape implies at least {weights} weights, more than {bytes} bytes of weights hold"
            ));
        }
        Ok(())
    }

    /// Build a freshly initialised network on `device` (random weights from the backend's
    /// generator: seed it first).
    pub(crate) fn init<B: Backend>(&self, device: &B::Device) -> Net<B> {
        let h = self.hidden;
        let mut lstm = Vec::new();
        let mut gru = Vec::new();
        let (mut proj, mut sinusoids, mut learned_pos, mut encoder) = (None, None, None, None);
        let pooled = match self.arch {
            Arch::Lstm => {
                for l in 0..self.layers {
                    let d_in = if l == 0 { self.channels } else { h };
                    lstm.push(LstmConfig::new(d_in, h, true).init(device));
                }
                h
            }
            Arch::Gru => {
                for l in 0..self.layers {
                    let d_in = if l == 0 { self.channels } else { h };
                    gru.push(GruConfig::new(d_in, h, true).init(device));
                }
                h
            }
            Arch::Transformer => {
                let d = self.d_model();
                proj = Some(LinearConfig::new(self.channels, d).init(device));
                match self.positional {
                    Positional::Sinusoidal => {
                        sinusoids = Some(
                            PositionalEncodingConfig::new(d).with_max_sequence_size(self.steps.max(1)).init(device),
                        )
                    }
                    Positional::Learned => {
                        learned_pos =
                            Some(Initializer::Normal { mean: 0.0, std: 0.02 }.init([self.steps.max(1), d], device))
                    }
                }
                encoder = Some(
                    TransformerEncoderConfig::new(d, 2 * d, self.heads.max(1), self.layers)
                        .with_dropout(self.dropout)
                        .with_norm_first(true)
                        .init(device),
                );
                d
            }
            Arch::Mlp | Arch::Autoencoder => 0,
        };
        let mut width = pooled + self.tab_in;
        let mut dense = Vec::new();
        for &w in &self.dense {
            dense.push(LinearConfig::new(width, w).init(device));
            width = w;
        }
        Net {
            lstm,
            gru,
            proj,
            sinusoids,
            learned_pos,
            encoder,
            dense,
            head: LinearConfig::new(width, self.out).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

impl<B: Backend> Net<B> {
    /// Output scores `[batch, out]` (logits, standardised values or reconstructions), without
    /// dropout (inference and validation).
    pub(crate) fn forward(&self, input: BatchInputs<B>) -> Tensor<B, 2> {
        self.forward_with(input, None)
    }

    /// Output scores while training: dropout between layers with masks drawn from `noise`, the
    /// fit's own seeded generator (not the backend's process-wide one, so fits of recurrent and
    /// dense networks can run side by side and stay reproducible). The transformer encoder's
    /// internal dropout still draws from the backend (its fits hold the generator lock).
    pub(crate) fn forward_train(&self, input: BatchInputs<B>, noise: &mut ChaCha8Rng) -> Tensor<B, 2> {
        self.forward_with(input, Some(noise))
    }

    /// `x` with each element zeroed with the dropout probability and the rest scaled by
    /// `1 / (1 − p)` (inverted dropout), when training (`noise` given) and `p > 0`.
    fn drop<const D: usize>(&self, x: Tensor<B, D>, noise: &mut Option<&mut ChaCha8Rng>) -> Tensor<B, D> {
        let p = self.dropout.prob;
        let Some(rng) = noise.as_deref_mut() else { return x };
        if p <= 0.0 {
            return x;
        }
        let shape = x.shape();
        let keep = (1.0 / (1.0 - p)) as f32;
        let mask: Vec<f32> =
            (0..shape.num_elements()).map(|_| if rng.random::<f64>() < p { 0.0 } else { keep }).collect();
        let device = x.device();
        x * Tensor::from_data(TensorData::new(mask, shape), &device)
    }

    /// [`Self::drop`] for a sequence `[batch, steps, width]`, with the mask's values drawn step by
    /// step (each step's `[batch, width]` in row order), as the per-step passes draw them: the
    /// same seed gives the same masks whichever pass runs.
    fn drop_steps(&self, x: Tensor<B, 3>, noise: &mut Option<&mut ChaCha8Rng>) -> Tensor<B, 3> {
        let p = self.dropout.prob;
        let Some(rng) = noise.as_deref_mut() else { return x };
        if p <= 0.0 {
            return x;
        }
        let [b, t, w] = x.dims();
        let keep = (1.0 / (1.0 - p)) as f32;
        let mut mask = vec![0.0f32; b * t * w];
        for s in 0..t {
            for r in 0..b {
                for m in &mut mask[(r * t + s) * w..(r * t + s + 1) * w] {
                    *m = if rng.random::<f64>() < p { 0.0 } else { keep };
                }
            }
        }
        let device = x.device();
        x * Tensor::from_data(TensorData::new(mask, [b, t, w]), &device)
    }

    fn forward_with(&self, input: BatchInputs<B>, mut noise: Option<&mut ChaCha8Rng>) -> Tensor<B, 2> {
        let mut parts: Vec<Tensor<B, 2>> = Vec::with_capacity(2);
        if let Some(seq) = input.seq {
            let [b, _, _] = seq.values.dims();
            let [_, steps, _] = seq.values.dims();
            let fused = steps > 0
                && self.lstm.iter().all(crate::fused::lstm_supported)
                && self.gru.iter().all(crate::fused::gru_supported);
            let n_layers = self.lstm.len() + self.gru.len();
            let whole_layers = steps > 0
                && n_layers > 0
                && self.lstm.iter().all(crate::fused::lstm_layer_supported)
                && self.gru.iter().all(crate::fused::gru_layer_supported);
            let pooled = if whole_layers {
                // Each recurrent layer as one operation over the whole sequence (crate::layer).
                let mut x = seq.values;
                for l in 0..n_layers {
                    let out = match self.lstm.get(l) {
                        Some(m) => crate::fused::lstm_layer_forward(m, x),
                        None => crate::fused::gru_layer_forward(&self.gru[l], x),
                    };
                    x = if l + 1 < n_layers { self.drop_steps(out, &mut noise) } else { out };
                }
                // Last valid hidden state: the one-hot `last` mask picks step `length - 1`.
                let [_, _, h] = x.dims();
                (x * seq.last.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, h])
            } else if fused && (!self.lstm.is_empty() || !self.gru.is_empty()) {
                // The sequence as one tensor per step through every layer (crate::fused).
                let mut xs = crate::fused::steps_of(seq.values);
                let n_layers = self.lstm.len() + self.gru.len();
                for l in 0..n_layers {
                    let out = match self.lstm.get(l) {
                        Some(m) => crate::fused::lstm_steps(m, xs, None).0,
                        None => crate::fused::gru_steps(&self.gru[l], xs, None),
                    };
                    xs = if l + 1 < n_layers {
                        out.into_iter().map(|h| self.drop(h, &mut noise)).collect()
                    } else {
                        out
                    };
                }
                // Last valid hidden state: Σ_t h_t ⊙ last[:, t], the one-hot `last` mask
                // picking step `length - 1`.
                let mut pooled: Option<Tensor<B, 2>> = None;
                for (s, hs) in xs.into_iter().enumerate() {
                    let term = hs * seq.last.clone().slice([0..b, s..s + 1]);
                    pooled = Some(match pooled {
                        Some(p) => p + term,
                        None => term,
                    });
                }
                pooled.expect("at least one step")
            } else if !self.lstm.is_empty() || !self.gru.is_empty() {
                let mut x = seq.values;
                let n_layers = self.lstm.len() + self.gru.len();
                for l in 0..n_layers {
                    let out = match self.lstm.get(l) {
                        Some(m) => m.forward(x, None).0,
                        None => self.gru[l].forward(x, None),
                    };
                    x = if l + 1 < n_layers { self.drop(out, &mut noise) } else { out };
                }
                // Last valid hidden state: the one-hot `last` mask picks step `length - 1`.
                let [_, _, h] = x.dims();
                (x * seq.last.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, h])
            } else {
                let proj = self.proj.as_ref().expect("transformer parts");
                let encoder = self.encoder.as_ref().expect("transformer parts");
                let mut x = proj.forward(seq.values);
                if let Some(pe) = &self.sinusoids {
                    x = pe.forward(x);
                }
                if let Some(pos) = &self.learned_pos {
                    x = x + pos.val().unsqueeze_dim::<3>(0);
                }
                let x = encoder.forward(TransformerEncoderInput::new(x).mask_pad(seq.pad));
                let [_, _, d] = x.dims();
                let valid = seq.valid;
                let count = valid.clone().sum_dim(1).clamp_min(1.0);
                (x * valid.unsqueeze_dim::<3>(2)).sum_dim(1).reshape([b, d]) / count
            };
            parts.push(self.drop(pooled, &mut noise));
        }
        if let Some(tab) = input.tab {
            parts.push(tab);
        }
        let mut z = if parts.len() == 1 { parts.pop().expect("one part") } else { Tensor::cat(parts, 1) };
        for layer in &self.dense {
            z = self.drop(relu(layer.forward(z)), &mut noise);
        }
        self.head.forward(z)
    }
}

/// burn's recurrent modules loaded with weights in PyTorch's layout (for the reference test).
pub mod reference {
    use burn::module::Param;
    use burn::nn::{GateController, Gru, GruConfig, Lstm, LstmConfig};
    use burn::tensor::backend::Backend;
    use burn::tensor::{Tensor, TensorData};

    /// Load gate `g` of PyTorch's stacked `weight_ih [G·H, I]`, `weight_hh [G·H, H]`,
    /// `bias_ih`, `bias_hh [G·H]` into a burn gate (whose linear layers are `x · W + b` with
    /// `W` of shape `[in, out]`, so PyTorch's block is transposed).
    fn set_gate<B: Backend>(
        gate: &mut GateController<B>,
        g: usize,
        w_ih: &[Vec<f32>],
        w_hh: &[Vec<f32>],
        b_ih: &[f32],
        b_hh: &[f32],
        device: &B::Device,
    ) {
        let h = w_hh[0].len();
        let block = |w: &[Vec<f32>]| {
            let cols = w[0].len();
            // Transposed block: [cols, h].
            let mut t = vec![0.0f32; cols * h];
            for r in 0..h {
                for c in 0..cols {
                    t[c * h + r] = w[g * h + r][c];
                }
            }
            Tensor::<B, 2>::from_data(TensorData::new(t, [cols, h]), device)
        };
        let bias = |b: &[f32]| Tensor::<B, 1>::from_data(TensorData::new(b[g * h..(g + 1) * h].to_vec(), [h]), device);
        gate.input_transform.weight = Param::from_tensor(block(w_ih));
        gate.hidden_transform.weight = Param::from_tensor(block(w_hh));
        gate.input_transform.bias = Some(Param::from_tensor(bias(b_ih)));
        gate.hidden_transform.bias = Some(Param::from_tensor(bias(b_hh)));
    }

    /// A burn LSTM with PyTorch's weights (gate blocks in the order input, forget, cell, output).
    pub fn lstm_from_pytorch<B: Backend>(
        w_ih: &[Vec<f32>],
        w_hh: &[Vec<f32>],
        b_ih: &[f32],
        b_hh: &[f32],
        device: &B::Device,
    ) -> Lstm<B> {
        let (h, i) = (w_hh[0].len(), w_ih[0].len());
        let mut m = LstmConfig::new(i, h, true).init::<B>(device);
        set_gate(&mut m.input_gate, 0, w_ih, w_hh, b_ih, b_hh, device);
        set_gate(&mut m.forget_gate, 1, w_ih, w_hh, b_ih, b_hh, device);
        set_gate(&mut m.cell_gate, 2, w_ih, w_hh, b_ih, b_hh, device);
        set_gate(&mut m.output_gate, 3, w_ih, w_hh, b_ih, b_hh, device);
        m
    }

    /// A burn GRU with PyTorch's weights (gate blocks in the order reset, update, new); burn's
    /// default `reset_after = true` is PyTorch's formulation `n = tanh(W_in x + b_in + r ⊙
    /// (W_hn h + b_hn))`.
    pub fn gru_from_pytorch<B: Backend>(
        w_ih: &[Vec<f32>],
        w_hh: &[Vec<f32>],
        b_ih: &[f32],
        b_hh: &[f32],
        device: &B::Device,
    ) -> Gru<B> {
        let (h, i) = (w_hh[0].len(), w_ih[0].len());
        let mut m = GruConfig::new(i, h, true).init::<B>(device);
        set_gate(&mut m.reset_gate, 0, w_ih, w_hh, b_ih, b_hh, device);
        set_gate(&mut m.update_gate, 1, w_ih, w_hh, b_ih, b_hh, device);
        set_gate(&mut m.new_gate, 2, w_ih, w_hh, b_ih, b_hh, device);
        m
    }
}

//! Faster forward passes for burn's [`Lstm`] and [`Gru`] modules, with the same parameters and
//! equations.
//!
//! burn 0.21's `Lstm::forward` computes, at every time step, each of the four gates as two
//! linear layers (input and hidden) plus their sum, and writes the step's hidden state into a
//! `[batch, steps, hidden]` tensor with a slice assignment. On the CPU each of those is a
//! separate tensor operation on small tensors and a node of the autodiff graph, and the backward
//! pass of every per-step slice or slice assignment of a `[batch, steps, ·]` tensor touches the
//! whole tensor, so a layer costs O(steps²) in its backward pass. Here:
//!
//! * per step, **one** matmul of the step's input with the gates' input weights side by side
//!   (`[batch, in] × [in, G·hidden]`) and **one** of the hidden state with their hidden weights,
//!   biases of both linear layers added as one row, then split into the gates;
//! * a layer takes and returns the sequence as a list of per-step `[batch, ·]` tensors, so
//!   stacked layers and the pooling never slice a `[batch, steps, ·]` tensor that autodiff
//!   tracks (only the data's own input is sliced, which has no gradient).
//!
//! (Computing every step's input projection as one matmul before the recurrence, as cuDNN does,
//! was measured slower here: slicing the projected `[batch, steps, G·hidden]` tensor per step
//! costs the whole tensor in the backward pass.) The parameters stay burn's records (gate by
//! gate), so saved models and artifacts are unchanged; the PyTorch reference test
//! (`tests/rnn_reference.rs`) checks every pass.

use burn::nn::activation::Activation;
use burn::nn::{GateController, Gru, Lstm, LstmState};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The gates' input weights side by side `[in, G·hidden]`, hidden weights `[hidden, G·hidden]`,
/// and the sum of input and hidden biases as a row `[1, G·hidden]` (when the gates have any).
type Stacked<B> = (Tensor<B, 2>, Tensor<B, 2>, Option<Tensor<B, 2>>);

fn stack_gates<B: Backend>(gates: &[&GateController<B>]) -> Stacked<B> {
    let w_ih = Tensor::cat(gates.iter().map(|g| g.input_transform.weight.val()).collect(), 1);
    let w_hh = Tensor::cat(gates.iter().map(|g| g.hidden_transform.weight.val()).collect(), 1);
    let b_ih = bias_row(gates, |g| g.input_transform.bias.as_ref().map(|p| p.val()));
    let b_hh = bias_row(gates, |g| g.hidden_transform.bias.as_ref().map(|p| p.val()));
    let b = match (b_ih, b_hh) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    (w_ih, w_hh, b)
}

/// The gates' biases picked by `pick`, side by side as a row `[1, G·hidden]`, when every gate
/// has one.
fn bias_row<B: Backend>(
    gates: &[&GateController<B>],
    pick: impl Fn(&GateController<B>) -> Option<Tensor<B, 1>>,
) -> Option<Tensor<B, 2>> {
    let v: Vec<Tensor<B, 1>> = gates.iter().filter_map(|g| pick(g)).collect();
    (v.len() == gates.len()).then(|| Tensor::cat(v, 0).unsqueeze_dim::<2>(0))
}

/// `x` `[batch, steps, in]` as one `[batch, in]` tensor per step.
pub fn steps_of<B: Backend>(x: Tensor<B, 3>) -> Vec<Tensor<B, 2>> {
    let [b, t, c] = x.dims();
    (0..t).map(|s| x.clone().slice([0..b, s..s + 1, 0..c]).reshape([b, c])).collect()
}

/// Whether [`lstm_steps`] computes this module's equations (batch first, forward direction,
/// separate input and forget gates: what the networks build).
pub fn lstm_supported<B: Backend>(lstm: &Lstm<B>) -> bool {
    lstm.batch_first && !lstm.reverse && !lstm.input_forget
}

/// The hidden state after every step and the final state of `lstm` over `inputs` (one
/// `[batch, in]` tensor per step, at least one), as `lstm.forward` computes them; `lstm` must be
/// [`lstm_supported`].
pub fn lstm_steps<B: Backend>(
    lstm: &Lstm<B>,
    inputs: Vec<Tensor<B, 2>>,
    state: Option<LstmState<B, 2>>,
) -> (Vec<Tensor<B, 2>>, LstmState<B, 2>) {
    let h = lstm.d_hidden;
    // Gate order along the stacked axis: input, forget, cell, output.
    let (w_ih, w_hh, bias) = stack_gates(&[&lstm.input_gate, &lstm.forget_gate, &lstm.cell_gate, &lstm.output_gate]);
    let (mut cell, mut hidden) = match state {
        Some(s) => (s.cell, s.hidden),
        None => {
            let [b, _] = inputs[0].dims();
            let device = inputs[0].device();
            (Tensor::zeros([b, h], &device), Tensor::zeros([b, h], &device))
        }
    };
    let mut outputs = Vec::with_capacity(inputs.len());
    // Burn's default activations and no clipping: the step is one operation
    // (crate::cell::lstm_step) that carries the state as `[h | c]`.
    let fused = lstm.clip.is_none()
        && matches!(lstm.gate_activation, Activation::Sigmoid(_))
        && matches!(lstm.cell_activation, Activation::Tanh(_))
        && matches!(lstm.hidden_activation, Activation::Tanh(_));
    if fused {
        let [b, _] = inputs[0].dims();
        let bias = bias.unwrap_or_else(|| Tensor::zeros([1, 4 * h], &inputs[0].device()));
        let mut hc = Tensor::cat(vec![hidden.clone(), cell], 1);
        for x in inputs {
            let zx = x.matmul(w_ih.clone());
            let zh = hidden.matmul(w_hh.clone());
            hc = crate::cell::lstm_step(zx, zh, bias.clone(), hc);
            hidden = hc.clone().slice([0..b, 0..h]);
            outputs.push(hidden.clone());
        }
        cell = hc.slice([0..b, h..2 * h]);
        return (outputs, LstmState::new(cell, hidden));
    }
    for x in inputs {
        let mut z = x.matmul(w_ih.clone()) + hidden.matmul(w_hh.clone());
        if let Some(bias) = &bias {
            z = z + bias.clone();
        }
        let mut parts = z.split(h, 1).into_iter();
        let (Some(zi), Some(zf), Some(zc), Some(zo)) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            unreachable!("four gates of width {h}")
        };
        let input = lstm.gate_activation.forward(zi);
        let forget = lstm.gate_activation.forward(zf);
        let candidate = lstm.cell_activation.forward(zc);
        let output = lstm.gate_activation.forward(zo);
        cell = forget * cell + input * candidate;
        if let Some(clip) = lstm.clip {
            cell = cell.clamp(-clip, clip);
        }
        hidden = output * lstm.hidden_activation.forward(cell.clone());
        outputs.push(hidden.clone());
    }
    (outputs, LstmState::new(cell, hidden))
}

/// Whether [`lstm_layer_forward`] runs `lstm` as one operation on backend `B`: the CPU
/// backends, burn's default activations, no clipping, what [`lstm_supported`] accepts.
pub fn lstm_layer_supported<B: Backend>(lstm: &Lstm<B>) -> bool {
    crate::layer::available::<B>()
        && lstm_supported(lstm)
        && lstm.clip.is_none()
        && matches!(lstm.gate_activation, Activation::Sigmoid(_))
        && matches!(lstm.cell_activation, Activation::Tanh(_))
        && matches!(lstm.hidden_activation, Activation::Tanh(_))
}

/// The hidden state after every step `[batch, steps, hidden]` of `lstm` over `x` `[batch, steps,
/// in]` from a zero state, as `lstm.forward(x, None).0` computes it, as one operation
/// ([`crate::layer::lstm_layer`]); `lstm` must be [`lstm_layer_supported`], `x` must have steps.
pub fn lstm_layer_forward<B: Backend>(lstm: &Lstm<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let (w_ih, w_hh, bias) = stack_gates(&[&lstm.input_gate, &lstm.forget_gate, &lstm.cell_gate, &lstm.output_gate]);
    let bias = bias.unwrap_or_else(|| Tensor::zeros([1, 4 * lstm.d_hidden], &x.device()));
    crate::layer::lstm_layer(x, w_ih, w_hh, bias).expect("a supported backend and at least one step")
}

/// The output `[batch, steps, hidden]` and final state of `lstm` over `x` `[batch, steps, in]`
/// (batch first), as `lstm.forward(x, state)` computes it, through [`lstm_steps`] (or
/// `lstm.forward` itself for a module [`lstm_supported`] refuses, or no steps).
pub fn lstm_forward<B: Backend>(
    lstm: &Lstm<B>,
    x: Tensor<B, 3>,
    state: Option<LstmState<B, 2>>,
) -> (Tensor<B, 3>, LstmState<B, 2>) {
    if !lstm_supported(lstm) || x.dims()[1] == 0 {
        return lstm.forward(x, state);
    }
    let (outputs, state) = lstm_steps(lstm, steps_of(x), state);
    (Tensor::stack(outputs, 1), state)
}

/// Whether [`gru_steps`] computes this module's equations (the reset gate applied after the
/// hidden matmul: burn's default, PyTorch's equations).
pub fn gru_supported<B: Backend>(gru: &Gru<B>) -> bool {
    gru.reset_after
}

/// The hidden state after every step of `gru` over `inputs` (one `[batch, in]` tensor per step,
/// at least one): `z = σ(x·W_z + h·U_z + b)`, `r = σ(x·W_r + h·U_r + b)`,
/// `n = tanh(x·W_n + b_in + r ⊙ (h·U_n + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`, as `gru.forward`
/// computes them; `gru` must be [`gru_supported`].
pub fn gru_steps<B: Backend>(
    gru: &Gru<B>,
    inputs: Vec<Tensor<B, 2>>,
    state: Option<Tensor<B, 2>>,
) -> Vec<Tensor<B, 2>> {
    let h = gru.d_hidden;
    let gates = [&gru.update_gate, &gru.reset_gate, &gru.new_gate];
    // The new gate's hidden bias sits inside the reset product, so biases stay apart here.
    let w_ih = Tensor::cat(gates.iter().map(|g| g.input_transform.weight.val()).collect(), 1);
    let w_hh = Tensor::cat(gates.iter().map(|g| g.hidden_transform.weight.val()).collect(), 1);
    let b_ih = bias_row(&gates, |g| g.input_transform.bias.as_ref().map(|p| p.val()));
    let b_hh = bias_row(&gates, |g| g.hidden_transform.bias.as_ref().map(|p| p.val()));
    let mut hidden = state.unwrap_or_else(|| {
        let [b, _] = inputs[0].dims();
        Tensor::zeros([b, h], &inputs[0].device())
    });
    let mut outputs = Vec::with_capacity(inputs.len());
    // Burn's default activations and no clipping: the step is one operation
    // (crate::cell::gru_step).
    let fused = gru.clip.is_none()
        && matches!(gru.gate_activation, Activation::Sigmoid(_))
        && matches!(gru.hidden_activation, Activation::Tanh(_));
    for x in inputs {
        let mut zx = x.matmul(w_ih.clone());
        if let Some(bias) = &b_ih {
            zx = zx + bias.clone();
        }
        let mut zh = hidden.clone().matmul(w_hh.clone());
        if let Some(bias) = &b_hh {
            zh = zh + bias.clone();
        }
        if fused {
            hidden = crate::cell::gru_step(zx, zh, hidden);
            outputs.push(hidden.clone());
            continue;
        }
        let mut xs = zx.split(h, 1).into_iter();
        let mut hs = zh.split(h, 1).into_iter();
        let (Some(xu), Some(xr), Some(xn), Some(hu), Some(hr), Some(hn)) =
            (xs.next(), xs.next(), xs.next(), hs.next(), hs.next(), hs.next())
        else {
            unreachable!("three gates of width {h}")
        };
        let update = gru.gate_activation.forward(xu + hu);
        let reset = gru.gate_activation.forward(xr + hr);
        let candidate = gru.hidden_activation.forward(xn + reset * hn);
        let one_minus_z = update.clone().neg().add_scalar(1.0);
        hidden = candidate * one_minus_z + update * hidden;
        if let Some(clip) = gru.clip {
            hidden = hidden.clamp(-clip, clip);
        }
        outputs.push(hidden.clone());
    }
    outputs
}

/// Whether [`gru_layer_forward`] runs `gru` as one operation on backend `B`: the CPU backends,
/// burn's default activations, no clipping, what [`gru_supported`] accepts.
pub fn gru_layer_supported<B: Backend>(gru: &Gru<B>) -> bool {
    crate::layer::available::<B>()
        && gru_supported(gru)
        && gru.clip.is_none()
        && matches!(gru.gate_activation, Activation::Sigmoid(_))
        && matches!(gru.hidden_activation, Activation::Tanh(_))
}

/// The hidden state after every step `[batch, steps, hidden]` of `gru` over `x` `[batch, steps,
/// in]` from a zero state, as `gru.forward(x, None)` computes it, as one operation
/// ([`crate::layer::gru_layer`]); `gru` must be [`gru_layer_supported`], `x` must have steps.
pub fn gru_layer_forward<B: Backend>(gru: &Gru<B>, x: Tensor<B, 3>) -> Tensor<B, 3> {
    let h = gru.d_hidden;
    let gates = [&gru.update_gate, &gru.reset_gate, &gru.new_gate];
    let w_ih = Tensor::cat(gates.iter().map(|g| g.input_transform.weight.val()).collect(), 1);
    let w_hh = Tensor::cat(gates.iter().map(|g| g.hidden_transform.weight.val()).collect(), 1);
    let device = x.device();
    let zeros = || Tensor::zeros([1, 3 * h], &device);
    let b_ih = bias_row(&gates, |g| g.input_transform.bias.as_ref().map(|p| p.val())).unwrap_or_else(zeros);
    let b_hh = bias_row(&gates, |g| g.hidden_transform.bias.as_ref().map(|p| p.val())).unwrap_or_else(zeros);
    crate::layer::gru_layer(x, [w_ih, w_hh, b_ih, b_hh]).expect("a supported backend and at least one step")
}

/// The output `[batch, steps, hidden]` of `gru` over `x` `[batch, steps, in]`, as
/// `gru.forward(x, state)` computes it, through [`gru_steps`] (or `gru.forward` itself for a
/// module [`gru_supported`] refuses, or no steps).
pub fn gru_forward<B: Backend>(gru: &Gru<B>, x: Tensor<B, 3>, state: Option<Tensor<B, 2>>) -> Tensor<B, 3> {
    if !gru_supported(gru) || x.dims()[1] == 0 {
        return gru.forward(x, state);
    }
    Tensor::stack(gru_steps(gru, steps_of(x), state), 1)
}

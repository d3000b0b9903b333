//! Faster forward passes for burn's [`Lstm`] and [`Gru`] modules, with the same parameters and
//! equations.
//!
//! burn 0.21's `Lstm::forward` computes, at every time step, each of the four gates as two
//! linear layers (input and hidden) plus their sum, and writes the step's hidden state into a
//! `[batch, steps, hidden]` tensor with a slice assignment. On the CPU each of those is a
//! separate tensor operation on small tensors (and a node of the autodiff graph), so per-op
//! overhead dominates training. [`lstm_forward`] computes what PyTorch's fused kernel does:
//!
//! * the input projection of every step for all four gates as **one** matmul before the
//!   recurrence (`[batch·steps, in] × [in, 4·hidden]`, biases of both linear layers added once);
//! * per step, **one** matmul of the hidden state with the four gates' hidden weights side by
//!   side (`[batch, hidden] × [hidden, 4·hidden]`), split into the gates;
//! * the hidden states stacked once at the end instead of assigned step by step.
//!
//! [`gru_forward`] does the same for the GRU (three gates; the reset gate applied after the
//! hidden matmul, burn's default and PyTorch's equations). The parameters stay burn's records
//! (gate by gate), so saved models and artifacts are unchanged; the PyTorch reference test
//! (`tests/rnn_reference.rs`) checks every pass.

use burn::nn::{GateController, Gru, Lstm, LstmState};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

/// The output `[batch, steps, hidden]` and final state of `lstm` over `x` `[batch, steps, in]`
/// (batch first), as `lstm.forward(x, state)` computes it. Configurations this pass does not
/// cover (sequence-first input, reverse direction, coupled input and forget gates) go through
/// `lstm.forward` itself.
pub fn lstm_forward<B: Backend>(
    lstm: &Lstm<B>,
    x: Tensor<B, 3>,
    state: Option<LstmState<B, 2>>,
) -> (Tensor<B, 3>, LstmState<B, 2>) {
    let [b, t, c] = x.dims();
    if !lstm.batch_first || lstm.reverse || lstm.input_forget || t == 0 {
        return lstm.forward(x, state);
    }
    let h = lstm.d_hidden;
    let device = x.device();
    // Gate order along the stacked axis: input, forget, cell, output.
    let (w_ih, w_hh, b_ih, b_hh) =
        stack_gates(&[&lstm.input_gate, &lstm.forget_gate, &lstm.cell_gate, &lstm.output_gate]);
    let mut xp = x.reshape([b * t, c]).matmul(w_ih);
    // Both linear layers' biases, added once.
    for bias in [b_ih, b_hh].into_iter().flatten() {
        xp = xp + bias.unsqueeze_dim::<2>(0);
    }
    let xp = xp.reshape([b, t, 4 * h]);
    let (mut cell, mut hidden) = match state {
        Some(s) => (s.cell, s.hidden),
        None => (Tensor::zeros([b, h], &device), Tensor::zeros([b, h], &device)),
    };
    let mut outputs = Vec::with_capacity(t);
    for s in 0..t {
        let z = xp.clone().slice([0..b, s..s + 1, 0..4 * h]).reshape([b, 4 * h]) + hidden.matmul(w_hh.clone());
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
    (Tensor::stack(outputs, 1), LstmState::new(cell, hidden))
}

/// The gates' input weights side by side `[in, G·hidden]`, hidden weights `[hidden, G·hidden]`,
/// and (when every gate has them) input and hidden biases `[G·hidden]`.
type Stacked<B> = (Tensor<B, 2>, Tensor<B, 2>, Option<Tensor<B, 1>>, Option<Tensor<B, 1>>);

fn stack_gates<B: Backend>(gates: &[&GateController<B>]) -> Stacked<B> {
    let w_ih = Tensor::cat(gates.iter().map(|g| g.input_transform.weight.val()).collect(), 1);
    let w_hh = Tensor::cat(gates.iter().map(|g| g.hidden_transform.weight.val()).collect(), 1);
    let bias = |pick: &dyn Fn(&GateController<B>) -> Option<Tensor<B, 1>>| {
        let v: Vec<Tensor<B, 1>> = gates.iter().filter_map(|g| pick(g)).collect();
        (v.len() == gates.len()).then(|| Tensor::cat(v, 0))
    };
    let b_ih = bias(&|g| g.input_transform.bias.as_ref().map(|p| p.val()));
    let b_hh = bias(&|g| g.hidden_transform.bias.as_ref().map(|p| p.val()));
    (w_ih, w_hh, b_ih, b_hh)
}

/// The output `[batch, steps, hidden]` of `gru` over `x` `[batch, steps, in]`, as
/// `gru.forward(x, state)` computes it: `z = σ(x·W_z + h·U_z + b)`, `r = σ(x·W_r + h·U_r + b)`,
/// `n = tanh(x·W_n + b_in + r ⊙ (h·U_n + b_hn))`, `h' = (1 − z) ⊙ n + z ⊙ h`. A GRU with the
/// reset gate applied before the hidden matmul (`reset_after = false`) goes through
/// `gru.forward` itself.
pub fn gru_forward<B: Backend>(gru: &Gru<B>, x: Tensor<B, 3>, state: Option<Tensor<B, 2>>) -> Tensor<B, 3> {
    let [b, t, c] = x.dims();
    if !gru.reset_after || t == 0 {
        return gru.forward(x, state);
    }
    let h = gru.d_hidden;
    let device = x.device();
    let (w_ih, w_hh, b_ih, b_hh) = stack_gates(&[&gru.update_gate, &gru.reset_gate, &gru.new_gate]);
    let mut xp = x.reshape([b * t, c]).matmul(w_ih);
    if let Some(bias) = b_ih {
        xp = xp + bias.unsqueeze_dim::<2>(0);
    }
    let xp = xp.reshape([b, t, 3 * h]);
    let b_hh = b_hh.map(|bias| bias.unsqueeze_dim::<2>(0));
    let mut hidden = state.unwrap_or_else(|| Tensor::zeros([b, h], &device));
    let mut outputs = Vec::with_capacity(t);
    for s in 0..t {
        let zx = xp.clone().slice([0..b, s..s + 1, 0..3 * h]).reshape([b, 3 * h]);
        let mut zh = hidden.clone().matmul(w_hh.clone());
        if let Some(bias) = &b_hh {
            zh = zh + bias.clone();
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
    Tensor::stack(outputs, 1)
}

//! The LSTM and GRU steps as **one** autodiff operation each, with hand-written backward passes.
//!
//! Composed from tensor operations, one LSTM step after the gates' matmuls is about fifteen
//! nodes of burn's autodiff graph (bias and hidden sums, four slices, three sigmoids, two tanh,
//! products and sums), and burn recomputes every activation in the backward pass (its sigmoid is
//! `exp(−log(1 + exp(−x)))`, three transcendental functions, computed twice). On the CPU, with
//! `[batch, hidden]` tensors of a few thousand values, that bookkeeping and those recomputations
//! are most of a training step. Here a step is one node: the forward pass computes the gates
//! (`σ(x) = 1 / (1 + exp(−x))`, `tanh(x) = 1 − 2 / (exp(2x) + 1)`) and the new state and keeps
//! the activations; the backward pass computes the gradients of the pre-activations, of the bias
//! and of the previous state from them. For the LSTM (`c = f ⊙ c₀ + i ⊙ g`, `h = o ⊙ tanh(c)`):
//!
//! ```text
//! dc  = dc' + dh ⊙ o ⊙ (1 − tanh(c)²)
//! dzi = dc ⊙ g ⊙ i ⊙ (1 − i)      dzf = dc ⊙ c₀ ⊙ f ⊙ (1 − f)
//! dzg = dc ⊙ i ⊙ (1 − g²)          dzo = dh ⊙ tanh(c) ⊙ o ⊙ (1 − o)
//! dc₀ = dc ⊙ f
//! ```
//!
//! and for the GRU (`u = σ(xu + hu)`, `r = σ(xr + hr)`, `n = tanh(xn + r ⊙ hn)`,
//! `h = (1 − u) ⊙ n + u ⊙ h₀`, PyTorch's equations):
//!
//! ```text
//! dzn = dh ⊙ (1 − u) ⊙ (1 − n²)    dzu = dh ⊙ (h₀ − n) ⊙ u ⊙ (1 − u)
//! dzr = dzn ⊙ hn ⊙ r ⊙ (1 − r)      dh₀ = dh ⊙ u
//! d(x-part) = [dzu | dzr | dzn]     d(h-part) = [dzu | dzr | dzn ⊙ r]
//! ```
//!
//! Each operation is written once over burn's `Autodiff<B>` for any inner backend `B`, so the
//! CUDA build gains too. On the CPU backend both passes are one loop over the raw values instead
//! of some twenty-five tensor operations each (every one a separate allocation and pass over
//! memory), with an `exp` that the compiler vectorises; elsewhere they are tensor operations.
//! [`lstm_step`] and [`gru_step`] use the operation when the tensors are on one of the plugin's
//! training backends and the forward pass alone otherwise (inference, other backends).

use crate::backend::{Cpu, CpuTrain};
use crate::layer::{tensor, values};
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{FloatDType, Slice, Tensor, TensorMetadata, TensorPrimitive};
use std::any::{Any, TypeId};
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Element-wise functions on raw values (the CPU loops).

/// `exp(x)` for `f32`, branch-free so that loops over it vectorise: Cody–Waite range reduction
/// `x = n·ln 2 + r` and Cephes' degree-6 polynomial for `exp(r)` (relative error about 2e-7 on
/// `[-87, 88]`, where the argument is clamped: the results below and above are 0 and ∞ to f32
/// precision in the functions that use it).
#[inline(always)]
fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // 1.5·2²³: adding it rounds to an integer in the low mantissa bits.
    const SHIFT: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4_f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // 2ⁿ from n's bits in t (n = bits(t) − bits(SHIFT)).
    let two_n = f32::from_bits((t.to_bits().wrapping_sub(SHIFT.to_bits()).wrapping_add(127)) << 23);
    e * two_n
}

/// `1 / (1 + exp(−x))`.
#[inline(always)]
pub(crate) fn sigmoid1(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// `1 − 2 / (exp(2x) + 1)`.
#[inline(always)]
pub(crate) fn tanh1(x: f32) -> f32 {
    1.0 - 2.0 / (exp(2.0 * x) + 1.0)
}

// ---------------------------------------------------------------------------------------------
// The same functions as tensor operations (any backend).

/// `sigmoid(x) = 1 / (1 + exp(−x))` on the inner backend.
fn sigmoid<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_recip(B::float_add_scalar(B::float_exp(B::float_neg(x)), 1.0f32.into()))
}

/// `tanh(x) = 1 − 2 / (exp(2x) + 1)` on the inner backend: one `exp` instead of the C
/// library's `tanh` (which the profile showed at a quarter of the training time on the CPU); at
/// most a few ulp from `tanh` in absolute terms, and ±1 without overflow for large `|x|`.
fn tanh<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let e = B::float_exp(B::float_mul_scalar(x, 2.0f32.into()));
    B::float_add_scalar(
        B::float_mul_scalar(B::float_recip(B::float_add_scalar(e, 1.0f32.into())), (-2.0f32).into()),
        1.0f32.into(),
    )
}

/// Columns `from..to` of a `[batch, ·]` tensor.
fn cols<B: Backend>(x: FloatTensor<B>, from: usize, to: usize) -> FloatTensor<B> {
    B::float_slice(x, &[Slice::full(), Slice::new(from as isize, Some(to as isize), 1)])
}

/// `1 − x`.
fn one_minus<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    B::float_add_scalar(B::float_neg(x), 1.0f32.into())
}

/// `x ⊙ (1 − x)`: the derivative of the sigmoid from its value.
fn d_sigmoid<B: Backend>(s: FloatTensor<B>) -> FloatTensor<B> {
    B::float_mul(s.clone(), one_minus::<B>(s))
}

/// Zeros shaped like `x`.
fn zeros_like<B: Backend>(x: &FloatTensor<B>) -> FloatTensor<B> {
    B::float_zeros(x.shape(), &B::float_device(x), FloatDType::from(x.dtype()))
}

// ---------------------------------------------------------------------------------------------
// Raw values of CPU tensors.

/// Whether `B` is the CPU backend, whose steps run as loops over raw values.
fn is_cpu<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<Cpu>()
}

/// Column sums of a row-major `[rows, width]` matrix.
pub(crate) fn column_sums(m: &[f32], width: usize) -> Vec<f32> {
    let mut s = vec![0.0f32; width];
    for row in m.chunks_exact(width) {
        for (a, v) in s.iter_mut().zip(row) {
            *a += v;
        }
    }
    s
}

/// The activations a backward pass needs: raw values (CPU loops) or tensors.
#[derive(Debug, Clone)]
enum Saved<B: Backend> {
    /// Row-major, one block of values per batch row (layout set by the step).
    Values(Arc<Vec<f32>>),
    /// The step's tensors (layout set by the step).
    Tensors(Vec<FloatTensor<B>>),
}

/// A step's kept activations with the batch size and the hidden width.
type State<B> = (Saved<B>, usize, usize);

/// `[t0, t1, t2, t3]` as tensors of backend `T`, when `B` is `T`.
fn cast<B: Backend, T: Backend, const N: usize>(x: [Tensor<B, 2>; N]) -> Result<[Tensor<T, 2>; N], [Tensor<B, 2>; N]> {
    match (Box::new(x) as Box<dyn Any>).downcast::<[Tensor<T, 2>; N]>() {
        Ok(t) => Ok(*t),
        Err(b) => Err(*b.downcast::<[Tensor<B, 2>; N]>().expect("the same type back")),
    }
}

/// A tensor of backend `T` as one of `B` (`B` must be `T`).
fn uncast<T: Backend, B: Backend>(x: Tensor<T, 2>) -> Tensor<B, 2> {
    *(Box::new(x) as Box<dyn Any>).downcast::<Tensor<B, 2>>().expect("the types are equal")
}

// ---------------------------------------------------------------------------------------------
// LSTM.

/// The LSTM step's forward pass on backend `B`: `[h | c]` `[batch, 2·hidden]` from the input
/// and hidden projections `zx`, `zh` `[batch, 4·hidden]` (gates input, forget, candidate,
/// output), the bias row `[1, 4·hidden]` and the previous state `[h₀ | c₀]`, and what the
/// backward pass keeps: the four gates after activation, `c₀` and `tanh(c)`.
fn lstm_forward<B: Backend>(
    zx: FloatTensor<B>,
    zh: FloatTensor<B>,
    bias: FloatTensor<B>,
    hc0: FloatTensor<B>,
    loops: bool,
) -> (Saved<B>, FloatTensor<B>) {
    let [b, h2] = hc0.shape().dims();
    let h = h2 / 2;
    if loops {
        let (zx, zh, bias, hc0) = (values::<B, 2>(zx), values::<B, 2>(zh), values::<B, 2>(bias), values::<B, 2>(hc0));
        let mut hc = vec![0.0f32; b * 2 * h];
        // Per row: i, f, g, o, c₀, tanh(c).
        let mut saved = vec![0.0f32; b * 6 * h];
        let (bi, rest) = bias.split_at(h);
        let (bf, rest) = rest.split_at(h);
        let (bg, bo) = rest.split_at(h);
        for r in 0..b {
            let x = &zx[r * 4 * h..(r + 1) * 4 * h];
            let y = &zh[r * 4 * h..(r + 1) * 4 * h];
            let c0 = &hc0[r * 2 * h + h..(r + 1) * 2 * h];
            let (oh, oc) = hc[r * 2 * h..(r + 1) * 2 * h].split_at_mut(h);
            let s = &mut saved[r * 6 * h..(r + 1) * 6 * h];
            let (si, s) = s.split_at_mut(h);
            let (sf, s) = s.split_at_mut(h);
            let (sg, s) = s.split_at_mut(h);
            let (so, s) = s.split_at_mut(h);
            let (sc, st) = s.split_at_mut(h);
            for k in 0..h {
                let i = sigmoid1(x[k] + y[k] + bi[k]);
                let f = sigmoid1(x[h + k] + y[h + k] + bf[k]);
                let g = tanh1(x[2 * h + k] + y[2 * h + k] + bg[k]);
                let o = sigmoid1(x[3 * h + k] + y[3 * h + k] + bo[k]);
                let c = f * c0[k] + i * g;
                let tc = tanh1(c);
                oh[k] = o * tc;
                oc[k] = c;
                (si[k], sf[k], sg[k], so[k], sc[k], st[k]) = (i, f, g, o, c0[k], tc);
            }
        }
        return (Saved::Values(Arc::new(saved)), tensor::<B, 2>(hc, [b, 2 * h]));
    }
    let z = B::float_add(B::float_add(zx, zh), bias);
    let c0 = cols::<B>(hc0, h, 2 * h);
    let i = sigmoid::<B>(cols::<B>(z.clone(), 0, h));
    let f = sigmoid::<B>(cols::<B>(z.clone(), h, 2 * h));
    let g = tanh::<B>(cols::<B>(z.clone(), 2 * h, 3 * h));
    let o = sigmoid::<B>(cols::<B>(z, 3 * h, 4 * h));
    let c = B::float_add(B::float_mul(f.clone(), c0.clone()), B::float_mul(i.clone(), g.clone()));
    let tc = tanh::<B>(c.clone());
    let hh = B::float_mul(o.clone(), tc.clone());
    (Saved::Tensors(vec![i, f, g, o, c0, tc]), B::float_cat(vec![hh, c], 1))
}

/// The LSTM step's gradients from the gradient of `[h | c]`: of the pre-activations
/// `[batch, 4·hidden]` (the same for both projections), of the bias `[1, 4·hidden]` and of the
/// previous state `[h₀ | c₀]` (zero for `h₀`, which reaches the step through `zh` only).
fn lstm_backward<B: Backend>(grad: FloatTensor<B>, saved: Saved<B>, b: usize, h: usize) -> [FloatTensor<B>; 3] {
    match saved {
        Saved::Values(saved) => {
            let grad = values::<B, 2>(grad);
            let mut dz = vec![0.0f32; b * 4 * h];
            let mut dhc0 = vec![0.0f32; b * 2 * h];
            for r in 0..b {
                let (dh, dcn) = grad[r * 2 * h..(r + 1) * 2 * h].split_at(h);
                let s = &saved[r * 6 * h..(r + 1) * 6 * h];
                let (si, s) = s.split_at(h);
                let (sf, s) = s.split_at(h);
                let (sg, s) = s.split_at(h);
                let (so, s) = s.split_at(h);
                let (sc, st) = s.split_at(h);
                let d = &mut dz[r * 4 * h..(r + 1) * 4 * h];
                let (di, d) = d.split_at_mut(h);
                let (df, d) = d.split_at_mut(h);
                let (dg, d_o) = d.split_at_mut(h);
                let dc0 = &mut dhc0[r * 2 * h + h..(r + 1) * 2 * h];
                for k in 0..h {
                    let (i, f, g, o, c0, tc) = (si[k], sf[k], sg[k], so[k], sc[k], st[k]);
                    let dc = dcn[k] + dh[k] * o * (1.0 - tc * tc);
                    di[k] = dc * g * i * (1.0 - i);
                    df[k] = dc * c0 * f * (1.0 - f);
                    dg[k] = dc * i * (1.0 - g * g);
                    d_o[k] = dh[k] * tc * o * (1.0 - o);
                    dc0[k] = dc * f;
                }
            }
            let dbias = column_sums(&dz, 4 * h);
            [tensor::<B, 2>(dz, [b, 4 * h]), tensor::<B, 2>(dbias, [1, 4 * h]), tensor::<B, 2>(dhc0, [b, 2 * h])]
        }
        Saved::Tensors(t) => {
            let [i, f, g, o, c0, tc]: [FloatTensor<B>; 6] = t.try_into().expect("six saved tensors");
            let dh = cols::<B>(grad.clone(), 0, h);
            let dc_next = cols::<B>(grad, h, 2 * h);
            let d_tanh = one_minus::<B>(B::float_mul(tc.clone(), tc.clone()));
            let dc = B::float_add(dc_next, B::float_mul(B::float_mul(dh.clone(), o.clone()), d_tanh));
            let dzi = B::float_mul(B::float_mul(dc.clone(), g.clone()), d_sigmoid::<B>(i.clone()));
            let dzf = B::float_mul(B::float_mul(dc.clone(), c0), d_sigmoid::<B>(f.clone()));
            let dzg = B::float_mul(B::float_mul(dc.clone(), i), one_minus::<B>(B::float_mul(g.clone(), g)));
            let dzo = B::float_mul(B::float_mul(dh, tc), d_sigmoid::<B>(o));
            let dz = B::float_cat(vec![dzi, dzf, dzg, dzo], 1);
            let dbias = B::float_sum_dim(dz.clone(), 0);
            let dc0 = B::float_mul(dc, f);
            let dhc0 = B::float_cat(vec![zeros_like::<B>(&dc0), dc0], 1);
            [dz, dbias, dhc0]
        }
    }
}

#[derive(Debug)]
struct LstmStepOp;

impl<B: Backend> Backward<B, 4> for LstmStepOp {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (saved, b, h) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let [dz, dbias, dhc0] = lstm_backward::<B>(grad, saved, b, h);
        let [zx, zh, bias, hc0] = ops.parents;
        for node in [zx, zh].into_iter().flatten() {
            grads.register::<B>(node.id, dz.clone());
        }
        if let Some(node) = bias {
            grads.register::<B>(node.id, dbias);
        }
        if let Some(node) = hc0 {
            grads.register::<B>(node.id, dhc0);
        }
    }
}

/// The LSTM step on `Autodiff<B, C>`, one node of the graph (`loops`: the passes as loops
/// over raw values, `B` must be [`Cpu`]).
fn lstm_autodiff<B: Backend, C: CheckpointStrategy>(
    t: [Tensor<Autodiff<B, C>, 2>; 4],
    loops: bool,
) -> Tensor<Autodiff<B, C>, 2> {
    let [b, h2] = t[3].dims();
    let t = t.map(|x| x.into_primitive().tensor());
    let nodes = t.clone().map(|x| x.node);
    let [zx, zh, bias, hc0] = t.map(|x| x.primitive);
    let (saved, out) = lstm_forward::<B>(zx, zh, bias, hc0, loops);
    let result = match LstmStepOp.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((saved, b, h2 / 2), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(result))
}

/// One LSTM step with burn's equations (sigmoid gates, tanh candidate and output): the input
/// projection `zx = x·W_ih` and hidden projection `zh = h₀·W_hh`, both `[batch, 4·hidden]` with
/// the gates in the order input, forget, candidate, output, the bias row `[1, 4·hidden]` (input
/// and hidden biases summed) and the previous state `[h₀ | c₀]` `[batch, 2·hidden]` give the new
/// state `[h | c]`. One autodiff node on the plugin's training backends.
pub fn lstm_step<B: Backend>(
    zx: Tensor<B, 2>,
    zh: Tensor<B, 2>,
    bias: Tensor<B, 2>,
    hc0: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let t = [zx, zh, bias, hc0];
    let t = match cast::<B, CpuTrain, 4>(t) {
        Ok(t) => return uncast(lstm_autodiff(t, true)),
        Err(t) => t,
    };
    #[cfg(feature = "cuda")]
    let t = match cast::<B, crate::backend::GpuTrain, 4>(t) {
        Ok(t) => return uncast(lstm_autodiff(t, false)),
        Err(t) => t,
    };
    let [zx, zh, bias, hc0] = t.map(|x| x.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(lstm_forward::<B>(zx, zh, bias, hc0, is_cpu::<B>()).1))
}

// ---------------------------------------------------------------------------------------------
// GRU.

/// The GRU step's forward pass on backend `B`: `h` `[batch, hidden]` from the input projection
/// `zx` (input biases included) and hidden projection `zh` (hidden biases included), both
/// `[batch, 3·hidden]` with the gates in the order update, reset, new, and the previous state
/// `h₀`; and what the backward pass keeps: `u`, `r`, `n`, the new gate's hidden part `hn` and
/// `h₀`.
fn gru_forward<B: Backend>(
    zx: FloatTensor<B>,
    zh: FloatTensor<B>,
    h0: FloatTensor<B>,
    loops: bool,
) -> (Saved<B>, FloatTensor<B>) {
    let [b, h] = h0.shape().dims();
    if loops {
        let (zx, zh, h0) = (values::<B, 2>(zx), values::<B, 2>(zh), values::<B, 2>(h0));
        let mut out = vec![0.0f32; b * h];
        // Per row: u, r, n, hn, h₀.
        let mut saved = vec![0.0f32; b * 5 * h];
        for r in 0..b {
            let x = &zx[r * 3 * h..(r + 1) * 3 * h];
            let y = &zh[r * 3 * h..(r + 1) * 3 * h];
            let hp = &h0[r * h..(r + 1) * h];
            let o = &mut out[r * h..(r + 1) * h];
            let s = &mut saved[r * 5 * h..(r + 1) * 5 * h];
            let (su, s) = s.split_at_mut(h);
            let (sr, s) = s.split_at_mut(h);
            let (sn, s) = s.split_at_mut(h);
            let (shn, sh0) = s.split_at_mut(h);
            for k in 0..h {
                let u = sigmoid1(x[k] + y[k]);
                let rr = sigmoid1(x[h + k] + y[h + k]);
                let hn = y[2 * h + k];
                let n = tanh1(x[2 * h + k] + rr * hn);
                o[k] = (1.0 - u) * n + u * hp[k];
                (su[k], sr[k], sn[k], shn[k], sh0[k]) = (u, rr, n, hn, hp[k]);
            }
        }
        return (Saved::Values(Arc::new(saved)), tensor::<B, 2>(out, [b, h]));
    }
    let u = sigmoid::<B>(B::float_add(cols::<B>(zx.clone(), 0, h), cols::<B>(zh.clone(), 0, h)));
    let r = sigmoid::<B>(B::float_add(cols::<B>(zx.clone(), h, 2 * h), cols::<B>(zh.clone(), h, 2 * h)));
    let hn = cols::<B>(zh, 2 * h, 3 * h);
    let n = tanh::<B>(B::float_add(cols::<B>(zx, 2 * h, 3 * h), B::float_mul(r.clone(), hn.clone())));
    let out = B::float_add(B::float_mul(one_minus::<B>(u.clone()), n.clone()), B::float_mul(u.clone(), h0.clone()));
    (Saved::Tensors(vec![u, r, n, hn, h0]), out)
}

/// The GRU step's gradients from the gradient of `h`: of the input projection, of the hidden
/// projection (both `[batch, 3·hidden]`) and of `h₀` (its direct path; the path through `zh`
/// goes back through the hidden matmul).
fn gru_backward<B: Backend>(grad: FloatTensor<B>, saved: Saved<B>, b: usize, h: usize) -> [FloatTensor<B>; 3] {
    match saved {
        Saved::Values(saved) => {
            let grad = values::<B, 2>(grad);
            let mut dx = vec![0.0f32; b * 3 * h];
            let mut dy = vec![0.0f32; b * 3 * h];
            let mut dh0 = vec![0.0f32; b * h];
            for r in 0..b {
                let dh = &grad[r * h..(r + 1) * h];
                let s = &saved[r * 5 * h..(r + 1) * 5 * h];
                let (su, s) = s.split_at(h);
                let (sr, s) = s.split_at(h);
                let (sn, s) = s.split_at(h);
                let (shn, sh0) = s.split_at(h);
                let x = &mut dx[r * 3 * h..(r + 1) * 3 * h];
                let (xu, x) = x.split_at_mut(h);
                let (xr, xn) = x.split_at_mut(h);
                let y = &mut dy[r * 3 * h..(r + 1) * 3 * h];
                let (yu, y) = y.split_at_mut(h);
                let (yr, yn) = y.split_at_mut(h);
                let d0 = &mut dh0[r * h..(r + 1) * h];
                for k in 0..h {
                    let (u, rr, n, hn, hp) = (su[k], sr[k], sn[k], shn[k], sh0[k]);
                    let dzn = dh[k] * (1.0 - u) * (1.0 - n * n);
                    let dzu = dh[k] * (hp - n) * u * (1.0 - u);
                    let dzr = dzn * hn * rr * (1.0 - rr);
                    (xu[k], xr[k], xn[k]) = (dzu, dzr, dzn);
                    (yu[k], yr[k], yn[k]) = (dzu, dzr, dzn * rr);
                    d0[k] = dh[k] * u;
                }
            }
            [tensor::<B, 2>(dx, [b, 3 * h]), tensor::<B, 2>(dy, [b, 3 * h]), tensor::<B, 2>(dh0, [b, h])]
        }
        Saved::Tensors(t) => {
            let [u, r, n, hn, h0]: [FloatTensor<B>; 5] = t.try_into().expect("five saved tensors");
            let dn = B::float_mul(grad.clone(), one_minus::<B>(u.clone()));
            let dzn = B::float_mul(dn, one_minus::<B>(B::float_mul(n.clone(), n.clone())));
            let du = B::float_mul(grad.clone(), B::float_sub(h0, n));
            let dzu = B::float_mul(du, d_sigmoid::<B>(u.clone()));
            let dzr = B::float_mul(B::float_mul(dzn.clone(), hn), d_sigmoid::<B>(r.clone()));
            let dx = B::float_cat(vec![dzu.clone(), dzr.clone(), dzn.clone()], 1);
            let dy = B::float_cat(vec![dzu, dzr, B::float_mul(dzn, r)], 1);
            [dx, dy, B::float_mul(grad, u)]
        }
    }
}

#[derive(Debug)]
struct GruStepOp;

impl<B: Backend> Backward<B, 3> for GruStepOp {
    type State = State<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (saved, b, h) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let [dx, dy, dh0] = gru_backward::<B>(grad, saved, b, h);
        let [zx, zh, h0] = ops.parents;
        for (node, g) in [(zx, dx), (zh, dy), (h0, dh0)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

/// The GRU step on `Autodiff<B, C>`, one node of the graph (`loops` as for the LSTM).
fn gru_autodiff<B: Backend, C: CheckpointStrategy>(
    t: [Tensor<Autodiff<B, C>, 2>; 3],
    loops: bool,
) -> Tensor<Autodiff<B, C>, 2> {
    let [b, h] = t[2].dims();
    let t = t.map(|x| x.into_primitive().tensor());
    let nodes = t.clone().map(|x| x.node);
    let [zx, zh, h0] = t.map(|x| x.primitive);
    let (saved, out) = gru_forward::<B>(zx, zh, h0, loops);
    let result = match GruStepOp.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish((saved, b, h), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(result))
}

/// One GRU step with PyTorch's equations (the reset gate applied after the hidden matmul,
/// burn's default): the input projection `zx = x·W_ih + b_ih` and hidden projection
/// `zh = h₀·W_hh + b_hh`, both `[batch, 3·hidden]` with the gates in the order update, reset,
/// new, and the previous state `h₀` `[batch, hidden]` give the new state. One autodiff node on
/// the plugin's training backends.
pub fn gru_step<B: Backend>(zx: Tensor<B, 2>, zh: Tensor<B, 2>, h0: Tensor<B, 2>) -> Tensor<B, 2> {
    let t = [zx, zh, h0];
    let t = match cast::<B, CpuTrain, 3>(t) {
        Ok(t) => return uncast(gru_autodiff(t, true)),
        Err(t) => t,
    };
    #[cfg(feature = "cuda")]
    let t = match cast::<B, crate::backend::GpuTrain, 3>(t) {
        Ok(t) => return uncast(gru_autodiff(t, false)),
        Err(t) => t,
    };
    let [zx, zh, h0] = t.map(|x| x.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(gru_forward::<B>(zx, zh, h0, is_cpu::<B>()).1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    /// The LSTM step composed of burn's own tensor operations (each a node of the graph, burn's
    /// activations), the reference for values and gradients.
    fn lstm_reference<B: Backend>(
        zx: Tensor<B, 2>,
        zh: Tensor<B, 2>,
        bias: Tensor<B, 2>,
        hc0: Tensor<B, 2>,
    ) -> Tensor<B, 2> {
        let [b, h2] = hc0.dims();
        let h = h2 / 2;
        let z = zx + zh + bias;
        let c0 = hc0.slice([0..b, h..h2]);
        let gate = |k: usize| z.clone().slice([0..b, k * h..(k + 1) * h]);
        let (i, f, g, o) = (
            burn::tensor::activation::sigmoid(gate(0)),
            burn::tensor::activation::sigmoid(gate(1)),
            gate(2).tanh(),
            burn::tensor::activation::sigmoid(gate(3)),
        );
        let c = f * c0 + i * g;
        Tensor::cat(vec![o * c.clone().tanh(), c], 1)
    }

    /// The GRU step composed of burn's tensor operations.
    fn gru_reference<B: Backend>(zx: Tensor<B, 2>, zh: Tensor<B, 2>, h0: Tensor<B, 2>) -> Tensor<B, 2> {
        let [b, h] = h0.dims();
        let part = |t: &Tensor<B, 2>, k: usize| t.clone().slice([0..b, k * h..(k + 1) * h]);
        let u = burn::tensor::activation::sigmoid(part(&zx, 0) + part(&zh, 0));
        let r = burn::tensor::activation::sigmoid(part(&zx, 1) + part(&zh, 1));
        let n = (part(&zx, 2) + r * part(&zh, 2)).tanh();
        u.clone().neg().add_scalar(1.0) * n + u * h0
    }

    fn random(shape: [usize; 2], std: f64) -> Tensor<Cpu, 2> {
        Tensor::random(shape, Distribution::Normal(0.0, std), &Default::default())
    }

    fn assert_close(x: TensorData, y: TensorData, what: &str) {
        let (x, y) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
        assert_eq!(x.len(), y.len(), "{what}: lengths");
        for (k, (p, q)) in x.iter().zip(&y).enumerate() {
            assert!((p - q).abs() < 2e-5, "{what} [{k}]: fused {p}, reference {q}");
        }
    }

    /// Values and gradients of every input, through a loss that weighs each output differently,
    /// of `step` and of `reference` on the same random inputs (the first `n_big` drawn wide so
    /// that the gates saturate).
    fn check<const N: usize>(
        shapes: [[usize; 2]; N],
        step: impl Fn([Tensor<CpuTrain, 2>; N]) -> Tensor<CpuTrain, 2>,
        reference: impl Fn([Tensor<CpuTrain, 2>; N]) -> Tensor<CpuTrain, 2>,
        what: &str,
    ) {
        let inputs: [Tensor<Cpu, 2>; N] = shapes.map(|s| random(s, 2.0));
        let run = |f: &dyn Fn([Tensor<CpuTrain, 2>; N]) -> Tensor<CpuTrain, 2>, w: &Tensor<Cpu, 2>| {
            let t = inputs.clone().map(|x| Tensor::<CpuTrain, 2>::from_inner(x).require_grad());
            let out = f(t.clone());
            let loss = (out.clone() * Tensor::from_inner(w.clone())).sum();
            let grads = loss.backward();
            (out.inner().into_data(), t.map(|x| x.grad(&grads).unwrap().into_data()))
        };
        let [b, _] = shapes[N - 1];
        let width = reference(inputs.clone().map(Tensor::from_inner)).dims()[1];
        let w = random([b, width], 1.0);
        let (a, ga) = run(&step, &w);
        let (r, gr) = run(&reference, &w);
        assert_close(a, r, &format!("{what}: output"));
        for (k, (x, y)) in ga.into_iter().zip(gr).enumerate() {
            assert_close(x, y, &format!("{what}: gradient of input {k}"));
        }
    }

    /// The LSTM step's values and gradients (of both projections, the bias and the previous
    /// state), as loops over raw values (the CPU) and as tensor operations (what the CUDA backend
    /// runs), equal those of burn's own operations; so does the forward pass alone.
    #[test]
    fn the_lstm_step_matches_burns_operations_with_its_gradients() {
        let shapes = [[5, 12], [5, 12], [1, 12], [5, 6]];
        let reference = |[a, b, c, d]: [Tensor<CpuTrain, 2>; 4]| lstm_reference(a, b, c, d);
        check(shapes, |[a, b, c, d]| lstm_step(a, b, c, d), reference, "lstm, loops");
        check(shapes, |t| lstm_autodiff(t, false), reference, "lstm, tensor operations");
        let t = shapes.map(|s| random(s, 2.0));
        let [a, b, c, d] = t.clone();
        let [e, f, g, h] = t;
        assert_close(lstm_step(a, b, c, d).into_data(), lstm_reference(e, f, g, h).into_data(), "lstm, inference");
    }

    /// The GRU step's values and gradients, as loops and as tensor operations, equal those of
    /// burn's own operations; so does the forward pass alone.
    #[test]
    fn the_gru_step_matches_burns_operations_with_its_gradients() {
        let shapes = [[5, 9], [5, 9], [5, 3]];
        let reference = |[a, b, c]: [Tensor<CpuTrain, 2>; 3]| gru_reference(a, b, c);
        check(shapes, |[a, b, c]| gru_step(a, b, c), reference, "gru, loops");
        check(shapes, |t| gru_autodiff(t, false), reference, "gru, tensor operations");
        let t = shapes.map(|s| random(s, 2.0));
        let [a, b, c] = t.clone();
        let [e, f, g] = t;
        assert_close(gru_step(a, b, c).into_data(), gru_reference(e, f, g).into_data(), "gru, inference");
    }

    /// The `exp` of the loops is within 3e-7 (relative) of the C library's over the range the
    /// gates see.
    #[test]
    fn the_vectorised_exp_is_accurate() {
        let mut worst = 0.0f64;
        for k in -80_000..=80_000 {
            let x = k as f32 / 1000.0;
            let (ours, libm) = (exp(x) as f64, (x as f64).exp());
            worst = worst.max(((ours - libm) / libm).abs());
        }
        assert!(worst < 3e-7, "largest relative error {worst:e}");
        assert!(exp(-1000.0) < 1e-37);
        assert!(exp(1000.0) > 1e38);
    }
}

//! A whole LSTM or GRU layer over a sequence as **one** autodiff operation on the CPU, with
//! backpropagation through time written by hand, as cuDNN and PyTorch's CPU kernels organise it.
//!
//! With one operation per step ([`crate::cell::lstm_step`]) every step still costs the autodiff
//! graph two matmuls, a slice and the step itself, and each step's weight gradients are two
//! small matmuls plus two additions into the accumulated gradient. Here, for `x` `[batch, steps,
//! in]`:
//!
//! * forward: the input projection of **every** step as one matrix product
//!   (`[batch·steps, in] × [in, 4·hidden]`), then per step one product of the previous hidden
//!   state with the hidden weights and one loop over the gates (the cell's equations of
//!   [`crate::cell`]), writing the hidden state straight into the `[batch, steps, hidden]`
//!   output;
//! * backward: per step (last to first) one loop for the gates' gradients and one product for the
//!   gradient of the previous hidden state; then **one** product each for the gradients of the
//!   input weights, the hidden weights and the input (`[batch·steps, 4·hidden]` with the saved
//!   inputs and hidden states), and one column sum for the bias.
//!
//! The GRU layer is organised the same way (its gradient of the previous hidden state adds
//! the direct path `dh ⊙ u` to the product). The products are ndarray's (`matrixmultiply`'s sgemm, the kernel burn's ndarray backend
//! itself calls). Other backends (CUDA) keep the per-step operations.

use crate::backend::{Cpu, CpuTrain};
use crate::cell::{column_sums, sigmoid1, tanh1};
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};
use std::any::{Any, TypeId};
use std::sync::Arc;

/// `c = a·b` (`beta = 0`) or `c += a·b` (`beta = 1`) for `a` `[m, k]` and `b` `[k, n]` given
/// as slices with their (row, column) strides, `c` `[m, n]` row-major with row stride `rsc`.
/// ndarray's product: `matrixmultiply`'s sgemm on strided views, the kernel burn's ndarray backend
/// calls.
fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: (&[f32], usize, usize),
    b: (&[f32], usize, usize),
    beta: f32,
    (c, rsc): (&mut [f32], usize),
) {
    use ndarray::{ArrayView2, ArrayViewMut2, ShapeBuilder};
    if m == 0 || n == 0 {
        return;
    }
    let av = ArrayView2::from_shape((m, k).strides((a.1, a.2)), a.0).expect("gemm: a in bounds");
    let bv = ArrayView2::from_shape((k, n).strides((b.1, b.2)), b.0).expect("gemm: b in bounds");
    let mut cv = ArrayViewMut2::from_shape((m, n).strides((rsc, 1)), c).expect("gemm: c in bounds");
    ndarray::linalg::general_mat_mul(1.0, &av, &bv, beta, &mut cv);
}

/// The values of a CPU tensor (`B` must be [`Cpu`]); no copy when the tensor owns them alone.
pub(crate) fn values<B: Backend, const D: usize>(x: FloatTensor<B>) -> Vec<f32> {
    let x = (Box::new(x) as Box<dyn Any>).downcast::<FloatTensor<Cpu>>().expect("the CPU backend");
    Tensor::<Cpu, D>::from_primitive(TensorPrimitive::Float(*x)).into_data().into_vec::<f32>().expect("f32 values")
}

/// A CPU tensor of `v` with `shape` (`B` must be [`Cpu`]), without a copy.
pub(crate) fn tensor<B: Backend, const D: usize>(v: Vec<f32>, shape: [usize; D]) -> FloatTensor<B> {
    let t = Tensor::<Cpu, D>::from_data(TensorData::new(v, shape), &Default::default()).into_primitive().tensor();
    *(Box::new(t) as Box<dyn Any>).downcast::<FloatTensor<B>>().expect("the CPU backend")
}

/// Sizes of one layer's pass.
#[derive(Debug, Clone, Copy)]
struct Dims {
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
}

/// What the backward pass keeps: the input `[batch·steps, in]`, the weights, every step's
/// previous hidden state `[batch·steps, hidden]` (zero at the first step) and the activations
/// `[batch·steps, 6·hidden]` (input, forget, candidate and output gates, the previous cell and
/// `tanh` of the new cell), rows in (batch, step) order.
#[derive(Debug, Clone)]
struct Saved {
    dims: Dims,
    x: Arc<Vec<f32>>,
    w_ih: Arc<Vec<f32>>,
    w_hh: Arc<Vec<f32>>,
    h_prev: Arc<Vec<f32>>,
    acts: Arc<Vec<f32>>,
}

/// `f` applied to every value of `v` (a loop the compiler vectorises: `f` is branch-free).
#[inline(always)]
fn map(v: &mut [f32], f: impl Fn(f32) -> f32) {
    for x in v {
        *x = f(*x);
    }
}

/// `v[k] += w[k]`.
#[inline(always)]
fn add(v: &mut [f32], w: &[f32]) {
    for (x, y) in v.iter_mut().zip(w) {
        *x += y;
    }
}

/// `[x₀ | x₁ | …]`: `v` cut into `N` consecutive slices of `h` values.
fn parts<const N: usize>(v: &[f32], h: usize) -> [&[f32]; N] {
    std::array::from_fn(|k| &v[k * h..(k + 1) * h])
}

/// The mutable counterpart of [`parts`].
fn parts_mut<const N: usize>(v: &mut [f32], h: usize) -> [&mut [f32]; N] {
    let mut rest = &mut v[..N * h];
    std::array::from_fn(|_| {
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(h);
        rest = tail;
        head
    })
}

/// Rows `[b·t, width]` in (batch, step) order, each plus `row`.
fn add_row(m: &mut [f32], row: &[f32]) {
    for r in m.chunks_exact_mut(row.len()) {
        add(r, row);
    }
}

/// Every step's previous hidden state `[batch·steps, hidden]` (zero at the first step) from the
/// hidden states `out` `[batch·steps, hidden]`, rows in (batch, step) order.
fn previous_states(out: &[f32], b: usize, t: usize, h: usize) -> Vec<f32> {
    let mut h_prev = vec![0.0f32; b * t * h];
    for r in 0..b {
        let block = r * t * h;
        h_prev[block + h..block + t * h].copy_from_slice(&out[block..block + (t - 1) * h]);
    }
    h_prev
}

impl Saved {
    /// What the backward pass keeps of a layer's forward pass: its input, its weights
    /// `[w_ih, w_hh]`, every step's previous hidden state (from the output `out`) and `acts`.
    fn new(dims: Dims, x: Vec<f32>, [w_ih, w_hh]: [Vec<f32>; 2], out: &[f32], acts: Vec<f32>) -> Saved {
        let h_prev = previous_states(out, dims.batch, dims.steps, dims.hidden);
        let arc = Arc::new;
        Saved { dims, x: arc(x), w_ih: arc(w_ih), w_hh: arc(w_hh), h_prev: arc(h_prev), acts: arc(acts) }
    }

    /// The gradients a layer's whole sequence gives at once from the gradients of its gates'
    /// pre-activations `[batch·steps, G·hidden]` (rows in (batch, step) order): through the
    /// input projection `dz_in` and through the hidden projection `dz_hidden` (the same for the
    /// LSTM). Returns the input's gradient (when `want_x`), the input weights' `xᵀ·dz_in` and the
    /// hidden weights' `h₀ᵀ·dz_hidden`.
    fn sequence_gradients(
        &self,
        dz_in: &[f32],
        dz_hidden: &[f32],
        want_x: bool,
    ) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>) {
        let Dims { batch: b, steps: t, input: n_in, hidden: h } = self.dims;
        let (rows, g) = (b * t, self.w_hh.len() / h.max(1));
        let mut dw_ih = vec![0.0f32; n_in * g];
        gemm(n_in, rows, g, (&self.x, 1, n_in), (dz_in, g, 1), 0.0, (&mut dw_ih, g));
        let mut dw_hh = vec![0.0f32; h * g];
        gemm(h, rows, g, (&self.h_prev, 1, h), (dz_hidden, g, 1), 0.0, (&mut dw_hh, g));
        let dx = want_x.then(|| {
            let mut dx = vec![0.0f32; rows * n_in];
            gemm(rows, g, n_in, (dz_in, g, 1), (&self.w_ih, 1, g), 0.0, (&mut dx, n_in));
            dx
        });
        (dx, dw_ih, dw_hh)
    }
}

/// The LSTM layer's forward pass on raw values: the hidden states `[batch, steps, hidden]` and
/// what the backward pass keeps.
fn lstm_forward(d: Dims, x: Vec<f32>, w_ih: Vec<f32>, w_hh: Vec<f32>, bias: Vec<f32>) -> (Vec<f32>, Saved) {
    let Dims { batch: b, steps: t, input: n_in, hidden: h } = d;
    let g = 4 * h;
    // Every step's input projection plus the bias, rows in (batch, step) order.
    let mut zx = vec![0.0f32; b * t * g];
    gemm(b * t, n_in, g, (&x, n_in, 1), (&w_ih, g, 1), 0.0, (&mut zx, g));
    add_row(&mut zx, &bias);
    let mut out = vec![0.0f32; b * t * h];
    let mut acts = vec![0.0f32; b * t * 6 * h];
    let mut cell = vec![0.0f32; b * h];
    let mut z = vec![0.0f32; b * g];
    for s in 0..t {
        // This step's pre-activations: its input projection plus h₀·W_hh.
        for r in 0..b {
            let row = r * t + s;
            z[r * g..(r + 1) * g].copy_from_slice(&zx[row * g..(row + 1) * g]);
        }
        if s > 0 {
            // The previous step's hidden states: rows `r·steps + s − 1` of the output.
            gemm(b, h, g, (&out[(s - 1) * h..], t * h, 1), (&w_hh, g, 1), 1.0, (&mut z, g));
        }
        for r in 0..b {
            let row = r * t + s;
            let zr = &mut z[r * g..(r + 1) * g];
            map(&mut zr[..2 * h], sigmoid1);
            map(&mut zr[2 * h..3 * h], tanh1);
            map(&mut zr[3 * h..], sigmoid1);
            let a = &mut acts[row * 6 * h..(row + 1) * 6 * h];
            a[..g].copy_from_slice(zr);
            let [i, f, gg, o] = parts::<4>(zr, h);
            let [_, _, _, _, ac, at] = parts_mut::<6>(a, h);
            let c = &mut cell[r * h..(r + 1) * h];
            ac.copy_from_slice(c);
            for (((c, i), f), gg) in c.iter_mut().zip(i).zip(f).zip(gg) {
                *c = f * *c + i * gg;
            }
            for (tc, c) in at.iter_mut().zip(c.iter()) {
                *tc = tanh1(*c);
            }
            for ((y, o), tc) in out[row * h..(row + 1) * h].iter_mut().zip(o).zip(at.iter()) {
                *y = o * tc;
            }
        }
    }
    let saved = Saved::new(d, x, [w_ih, w_hh], &out, acts);
    (out, saved)
}

/// The LSTM layer's gradients from the gradient of its output `[batch, steps, hidden]`: of the
/// input `[batch, steps, in]` (when `want_x`), the input weights `[in, 4·hidden]`, the hidden
/// weights `[hidden, 4·hidden]` and the bias `[4·hidden]`.
fn lstm_backward(s: &Saved, dout: &[f32], want_x: bool) -> (Option<Vec<f32>>, Vec<f32>, Vec<f32>, Vec<f32>) {
    let Dims { batch: b, steps: t, hidden: h, .. } = s.dims;
    let g = 4 * h;
    let mut dz = vec![0.0f32; b * t * g];
    let mut dh_next = vec![0.0f32; b * h];
    let mut dc = vec![0.0f32; b * h];
    for st in (0..t).rev() {
        for r in 0..b {
            let row = r * t + st;
            let [i, f, gg, o, c0, tc] = parts::<6>(&s.acts[row * 6 * h..(row + 1) * 6 * h], h);
            // dh: the output's gradient plus the next step's (through its hidden product).
            let dh = &mut dh_next[r * h..(r + 1) * h];
            add(dh, &dout[row * h..(row + 1) * h]);
            // dc = dc' + dh ⊙ o ⊙ (1 − tanh(c)²), where dc' = dc_next ⊙ f_next is in `dc`.
            let dc = &mut dc[r * h..(r + 1) * h];
            for (((dc, dh), o), tc) in dc.iter_mut().zip(dh.iter()).zip(o).zip(tc) {
                *dc += dh * o * (1.0 - tc * tc);
            }
            let [di, df, dg, d_o] = parts_mut::<4>(&mut dz[row * g..(row + 1) * g], h);
            for (((di, dc), gg), i) in di.iter_mut().zip(dc.iter()).zip(gg).zip(i) {
                *di = dc * gg * i * (1.0 - i);
            }
            for (((df, dc), c0), f) in df.iter_mut().zip(dc.iter()).zip(c0).zip(f) {
                *df = dc * c0 * f * (1.0 - f);
            }
            for (((dg, dc), i), gg) in dg.iter_mut().zip(dc.iter()).zip(i).zip(gg) {
                *dg = dc * i * (1.0 - gg * gg);
            }
            for (((d_o, dh), tc), o) in d_o.iter_mut().zip(dh.iter()).zip(tc).zip(o) {
                *d_o = dh * tc * o * (1.0 - o);
            }
            // The previous cell's gradient, carried to the previous step.
            for (dc, f) in dc.iter_mut().zip(f) {
                *dc *= f;
            }
        }
        // dh₀ = dz · W_hhᵀ over this step's rows (zero before the first step).
        if st > 0 {
            gemm(b, g, h, (&dz[st * g..], t * g, 1), (&s.w_hh, 1, g), 0.0, (&mut dh_next, h));
        }
    }
    let (dx, dw_ih, dw_hh) = s.sequence_gradients(&dz, &dz, want_x);
    (dx, dw_ih, dw_hh, column_sums(&dz, g))
}

#[derive(Debug)]
struct LstmLayerOp;

impl<B: Backend> Backward<B, 4> for LstmLayerOp {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 4>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let Dims { batch: b, steps: t, input: n_in, hidden: h } = s.dims;
        let dout = values::<B, 3>(grads.consume::<B>(&ops.node));
        let [x, w_ih, w_hh, bias] = ops.parents;
        let (dx, dw_ih, dw_hh, dbias) = lstm_backward(&s, &dout, x.is_some());
        if let (Some(node), Some(dx)) = (x, dx) {
            grads.register::<B>(node.id, tensor::<B, 3>(dx, [b, t, n_in]));
        }
        if let Some(node) = w_ih {
            grads.register::<B>(node.id, tensor::<B, 2>(dw_ih, [n_in, 4 * h]));
        }
        if let Some(node) = w_hh {
            grads.register::<B>(node.id, tensor::<B, 2>(dw_hh, [h, 4 * h]));
        }
        if let Some(node) = bias {
            grads.register::<B>(node.id, tensor::<B, 2>(dbias, [1, 4 * h]));
        }
    }
}

/// The layer on `Autodiff<B, C>` (`B` must be [`Cpu`]), one node of the graph.
fn layer_autodiff<B: Backend, C: CheckpointStrategy>(
    x: Tensor<Autodiff<B, C>, 3>,
    w: [Tensor<Autodiff<B, C>, 2>; 3],
) -> Tensor<Autodiff<B, C>, 3> {
    let [b, t, n_in] = x.dims();
    let h = w[1].dims()[0];
    let d = Dims { batch: b, steps: t, input: n_in, hidden: h };
    let x = x.into_primitive().tensor();
    let w = w.map(|w| w.into_primitive().tensor());
    let nodes = [x.node.clone(), w[0].node.clone(), w[1].node.clone(), w[2].node.clone()];
    let [w_ih, w_hh, bias] = w.map(|w| values::<B, 2>(w.primitive));
    let (out, saved) = lstm_forward(d, values::<B, 3>(x.primitive), w_ih, w_hh, bias);
    let out = tensor::<B, 3>(out, [b, t, h]);
    let result = match LstmLayerOp.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(result))
}

/// Whether [`lstm_layer`] runs on backend `B` (the CPU backends).
pub fn available<B: Backend>() -> bool {
    TypeId::of::<B>() == TypeId::of::<CpuTrain>() || TypeId::of::<B>() == TypeId::of::<Cpu>()
}

/// The hidden state after every step `[batch, steps, hidden]` of an LSTM layer (burn's
/// equations: sigmoid gates, tanh candidate and output, zero initial state) over `x` `[batch,
/// steps, in]`, with the gates' input weights side by side `w_ih` `[in, 4·hidden]`, hidden
/// weights `w_hh` `[hidden, 4·hidden]` and summed biases `bias` `[1, 4·hidden]` (gate order
/// input, forget, candidate, output): one autodiff operation on the CPU training backend, the
/// forward pass alone on the CPU inference backend; `None` on other backends (the caller runs
/// the per-step operations there) or without steps.
pub fn lstm_layer<B: Backend>(
    x: Tensor<B, 3>,
    w_ih: Tensor<B, 2>,
    w_hh: Tensor<B, 2>,
    bias: Tensor<B, 2>,
) -> Option<Tensor<B, 3>> {
    let [b, t, n_in] = x.dims();
    if t == 0 || b == 0 {
        return None;
    }
    if TypeId::of::<B>() == TypeId::of::<CpuTrain>() {
        let cast2 =
            |w: Tensor<B, 2>| *(Box::new(w) as Box<dyn Any>).downcast::<Tensor<CpuTrain, 2>>().expect("the same type");
        let x = *(Box::new(x) as Box<dyn Any>).downcast::<Tensor<CpuTrain, 3>>().expect("the same type");
        let out = layer_autodiff(x, [cast2(w_ih), cast2(w_hh), cast2(bias)]);
        return Some(*(Box::new(out) as Box<dyn Any>).downcast::<Tensor<B, 3>>().expect("the same type"));
    }
    if TypeId::of::<B>() == TypeId::of::<Cpu>() {
        let h = w_hh.dims()[0];
        let d = Dims { batch: b, steps: t, input: n_in, hidden: h };
        let v2 = |w: Tensor<B, 2>| values::<B, 2>(w.into_primitive().tensor());
        let (out, _) = lstm_forward(d, values::<B, 3>(x.into_primitive().tensor()), v2(w_ih), v2(w_hh), v2(bias));
        return Some(Tensor::from_primitive(TensorPrimitive::Float(tensor::<B, 3>(out, [b, t, h]))));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// GRU.

/// The GRU layer's forward pass on raw values (PyTorch's equations, the reset gate applied
/// after the hidden product): the hidden states `[batch, steps, hidden]` and what the backward
/// pass keeps (activations per row: `u`, `r`, `n`, the new gate's hidden part `hn` and `h₀`).
fn gru_forward(d: Dims, x: Vec<f32>, w: [Vec<f32>; 2], b_ih: Vec<f32>, b_hh: Vec<f32>) -> (Vec<f32>, Saved) {
    let Dims { batch: b, steps: t, input: n_in, hidden: h } = d;
    let [w_ih, w_hh] = w;
    let g = 3 * h;
    let mut zx = vec![0.0f32; b * t * g];
    gemm(b * t, n_in, g, (&x, n_in, 1), (&w_ih, g, 1), 0.0, (&mut zx, g));
    add_row(&mut zx, &b_ih);
    let mut out = vec![0.0f32; b * t * h];
    let mut acts = vec![0.0f32; b * t * 5 * h];
    let mut zh = vec![0.0f32; b * g];
    let zero = vec![0.0f32; h];
    for s in 0..t {
        // h₀·W_hh + b_hh (just b_hh at the first step, whose h₀ is zero).
        for r in 0..b {
            zh[r * g..(r + 1) * g].copy_from_slice(&b_hh);
        }
        if s > 0 {
            gemm(b, h, g, (&out[(s - 1) * h..], t * h, 1), (&w_hh, g, 1), 1.0, (&mut zh, g));
        }
        for r in 0..b {
            let row = r * t + s;
            let [xu, xr, xn] = parts::<3>(&zx[row * g..(row + 1) * g], h);
            let [yu, yr, yn] = parts::<3>(&zh[r * g..(r + 1) * g], h);
            let [au, ar, an, ahn, ah0] = parts_mut::<5>(&mut acts[row * 5 * h..(row + 1) * 5 * h], h);
            for ((u, x), y) in au.iter_mut().zip(xu).zip(yu) {
                *u = sigmoid1(x + y);
            }
            for ((rr, x), y) in ar.iter_mut().zip(xr).zip(yr) {
                *rr = sigmoid1(x + y);
            }
            ahn.copy_from_slice(yn);
            for (((n, x), rr), hn) in an.iter_mut().zip(xn).zip(ar.iter()).zip(yn) {
                *n = tanh1(x + rr * hn);
            }
            let (done, rest) = out.split_at_mut(row * h);
            let h0 = if s > 0 { &done[(row - 1) * h..] } else { &zero[..] };
            ah0.copy_from_slice(&h0[..h]);
            for (((y, u), n), h0) in rest[..h].iter_mut().zip(au.iter()).zip(an.iter()).zip(ah0.iter()) {
                *y = (1.0 - u) * n + u * h0;
            }
        }
    }
    let saved = Saved::new(d, x, [w_ih, w_hh], &out, acts);
    (out, saved)
}

/// The GRU layer's gradients from the gradient of its output: of the input (when `want_x`),
/// the input and hidden weights, and the input and hidden biases.
fn gru_backward(s: &Saved, dout: &[f32], want_x: bool) -> (Option<Vec<f32>>, [Vec<f32>; 4]) {
    let Dims { batch: b, steps: t, hidden: h, .. } = s.dims;
    let g = 3 * h;
    let mut dzx = vec![0.0f32; b * t * g];
    let mut dzh = vec![0.0f32; b * t * g];
    let mut dh_next = vec![0.0f32; b * h];
    for st in (0..t).rev() {
        for r in 0..b {
            let row = r * t + st;
            let [u, rr, n, hn, h0] = parts::<5>(&s.acts[row * 5 * h..(row + 1) * 5 * h], h);
            let dh = &mut dh_next[r * h..(r + 1) * h];
            add(dh, &dout[row * h..(row + 1) * h]);
            let [xu, xr, xn] = parts_mut::<3>(&mut dzx[row * g..(row + 1) * g], h);
            let [yu, yr, yn] = parts_mut::<3>(&mut dzh[row * g..(row + 1) * g], h);
            for ((((xn, dh), u), n), yn) in xn.iter_mut().zip(dh.iter()).zip(u).zip(n).zip(yn.iter_mut()) {
                *xn = dh * (1.0 - u) * (1.0 - n * n);
                *yn = *xn;
            }
            for (((((xu, dh), u), n), h0), yu) in xu.iter_mut().zip(dh.iter()).zip(u).zip(n).zip(h0).zip(yu.iter_mut())
            {
                *xu = dh * (h0 - n) * u * (1.0 - u);
                *yu = *xu;
            }
            for ((((xr, xn), hn), rr), yr) in xr.iter_mut().zip(xn.iter()).zip(hn).zip(rr).zip(yr.iter_mut()) {
                *xr = xn * hn * rr * (1.0 - rr);
                *yr = *xr;
            }
            for (yn, rr) in yn.iter_mut().zip(rr) {
                *yn *= rr;
            }
            // The direct path h₀ → h; the path through the hidden product is added below.
            for (dh, u) in dh.iter_mut().zip(u) {
                *dh *= u;
            }
        }
        if st > 0 {
            gemm(b, g, h, (&dzh[st * g..], t * g, 1), (&s.w_hh, 1, g), 1.0, (&mut dh_next, h));
        }
    }
    let (dx, dw_ih, dw_hh) = s.sequence_gradients(&dzx, &dzh, want_x);
    (dx, [dw_ih, dw_hh, column_sums(&dzx, g), column_sums(&dzh, g)])
}

#[derive(Debug)]
struct GruLayerOp;

impl<B: Backend> Backward<B, 5> for GruLayerOp {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, _: &mut Checkpointer) {
        let s = ops.state;
        let Dims { batch: b, steps: t, input: n_in, hidden: h } = s.dims;
        let dout = values::<B, 3>(grads.consume::<B>(&ops.node));
        let [x, w_ih, w_hh, b_ih, b_hh] = ops.parents;
        let (dx, [dw_ih, dw_hh, db_ih, db_hh]) = gru_backward(&s, &dout, x.is_some());
        if let (Some(node), Some(dx)) = (x, dx) {
            grads.register::<B>(node.id, tensor::<B, 3>(dx, [b, t, n_in]));
        }
        for (node, v, rows) in [(w_ih, dw_ih, n_in), (w_hh, dw_hh, h), (b_ih, db_ih, 1), (b_hh, db_hh, 1)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, tensor::<B, 2>(v, [rows, 3 * h]));
            }
        }
    }
}

/// The GRU layer on `Autodiff<B, C>` (`B` must be [`Cpu`]), one node of the graph.
fn gru_autodiff<B: Backend, C: CheckpointStrategy>(
    x: Tensor<Autodiff<B, C>, 3>,
    w: [Tensor<Autodiff<B, C>, 2>; 4],
) -> Tensor<Autodiff<B, C>, 3> {
    let [b, t, n_in] = x.dims();
    let h = w[1].dims()[0];
    let d = Dims { batch: b, steps: t, input: n_in, hidden: h };
    let x = x.into_primitive().tensor();
    let w = w.map(|w| w.into_primitive().tensor());
    let nodes = [x.node.clone(), w[0].node.clone(), w[1].node.clone(), w[2].node.clone(), w[3].node.clone()];
    let [w_ih, w_hh, b_ih, b_hh] = w.map(|w| values::<B, 2>(w.primitive));
    let (out, saved) = gru_forward(d, values::<B, 3>(x.primitive), [w_ih, w_hh], b_ih, b_hh);
    let out = tensor::<B, 3>(out, [b, t, h]);
    let result = match GruLayerOp.prepare::<C>(nodes).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(saved, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(result))
}

/// The hidden state after every step `[batch, steps, hidden]` of a GRU layer (PyTorch's
/// equations, zero initial state) over `x` `[batch, steps, in]`, with the gates' input weights
/// `w_ih` `[in, 3·hidden]` and hidden weights `w_hh` `[hidden, 3·hidden]` side by side and their
/// biases `b_ih`, `b_hh` `[1, 3·hidden]` (gate order update, reset, new): one autodiff operation
/// on the CPU training backend, the forward pass alone on the CPU inference backend; `None` on
/// other backends or without steps.
pub fn gru_layer<B: Backend>(x: Tensor<B, 3>, w: [Tensor<B, 2>; 4]) -> Option<Tensor<B, 3>> {
    let [b, t, n_in] = x.dims();
    if t == 0 || b == 0 {
        return None;
    }
    if TypeId::of::<B>() == TypeId::of::<CpuTrain>() {
        let cast2 =
            |w: Tensor<B, 2>| *(Box::new(w) as Box<dyn Any>).downcast::<Tensor<CpuTrain, 2>>().expect("the same type");
        let x = *(Box::new(x) as Box<dyn Any>).downcast::<Tensor<CpuTrain, 3>>().expect("the same type");
        let out = gru_autodiff(x, w.map(cast2));
        return Some(*(Box::new(out) as Box<dyn Any>).downcast::<Tensor<B, 3>>().expect("the same type"));
    }
    if TypeId::of::<B>() == TypeId::of::<Cpu>() {
        let h = w[1].dims()[0];
        let d = Dims { batch: b, steps: t, input: n_in, hidden: h };
        let [w_ih, w_hh, b_ih, b_hh] = w.map(|w| values::<B, 2>(w.into_primitive().tensor()));
        let (out, _) = gru_forward(d, values::<B, 3>(x.into_primitive().tensor()), [w_ih, w_hh], b_ih, b_hh);
        return Some(Tensor::from_primitive(TensorPrimitive::Float(tensor::<B, 3>(out, [b, t, h]))));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::{gru_step, lstm_step};
    use burn::tensor::Distribution;

    /// The same layer as per-step operations ([`lstm_step`], itself checked against burn's
    /// operations), the reference.
    fn per_step<B: Backend>(
        x: Tensor<B, 3>,
        w_ih: Tensor<B, 2>,
        w_hh: Tensor<B, 2>,
        bias: Tensor<B, 2>,
    ) -> Tensor<B, 3> {
        let [b, t, n_in] = x.dims();
        let h = w_hh.dims()[0];
        let mut hc: Tensor<B, 2> = Tensor::zeros([b, 2 * h], &x.device());
        let mut hidden: Tensor<B, 2> = Tensor::zeros([b, h], &x.device());
        let mut outs = Vec::new();
        for s in 0..t {
            let xs = x.clone().slice([0..b, s..s + 1, 0..n_in]).reshape([b, n_in]);
            hc = lstm_step(xs.matmul(w_ih.clone()), hidden.matmul(w_hh.clone()), bias.clone(), hc);
            hidden = hc.clone().slice([0..b, 0..h]);
            outs.push(hidden.clone());
        }
        Tensor::stack(outs, 1)
    }

    /// The LSTM layer's output and the gradients of its input, weights and bias equal the per-step
    /// operations', through a loss that weighs every output differently; the inference pass
    /// gives the same output.
    #[test]
    fn the_layer_matches_the_per_step_operations_with_its_gradients() {
        let (b, t, n_in, h) = (4, 7, 3, 5);
        let dev = Default::default();
        let r = |shape: [usize; 2]| Tensor::<Cpu, 2>::random(shape, Distribution::Normal(0.0, 0.8), &dev);
        let x0 = Tensor::<Cpu, 3>::random([b, t, n_in], Distribution::Normal(0.0, 1.5), &dev);
        let w0 = [r([n_in, 4 * h]), r([h, 4 * h]), r([1, 4 * h])];
        let weigh = Tensor::<Cpu, 3>::random([b, t, h], Distribution::Normal(0.0, 1.0), &dev);
        let run = |layer: bool| {
            let x = Tensor::<CpuTrain, 3>::from_inner(x0.clone()).require_grad();
            let w = w0.clone().map(|w| Tensor::<CpuTrain, 2>::from_inner(w).require_grad());
            let [a, bb, c] = w.clone();
            let out =
                if layer { lstm_layer(x.clone(), a, bb, c).expect("the CPU") } else { per_step(x.clone(), a, bb, c) };
            let grads = (out.clone() * Tensor::from_inner(weigh.clone())).sum().backward();
            let mut all = vec![out.inner().into_data(), x.grad(&grads).unwrap().into_data()];
            all.extend(w.map(|w| w.grad(&grads).unwrap().into_data()));
            all
        };
        let (got, want) = (run(true), run(false));
        let names = ["output", "gradient of x", "gradient of w_ih", "gradient of w_hh", "gradient of the bias"];
        for ((g, w), name) in got.into_iter().zip(want).zip(names) {
            let (g, w) = (g.to_vec::<f32>().unwrap(), w.to_vec::<f32>().unwrap());
            assert_eq!(g.len(), w.len(), "{name}: lengths");
            for (k, (p, q)) in g.iter().zip(&w).enumerate() {
                assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{name} [{k}]: layer {p}, per step {q}");
            }
        }
        let [a, bb, c] = w0;
        let inference = lstm_layer(x0.clone(), a.clone(), bb.clone(), c.clone()).expect("the CPU");
        let reference = per_step(x0, a, bb, c);
        let (p, q) = (inference.into_data().to_vec::<f32>().unwrap(), reference.into_data().to_vec::<f32>().unwrap());
        assert!(p.iter().zip(&q).all(|(p, q)| (p - q).abs() <= 1e-6), "inference output");
    }

    /// The same GRU layer as per-step operations ([`gru_step`], itself checked against burn's
    /// operations).
    fn gru_per_step<B: Backend>(x: Tensor<B, 3>, w: [Tensor<B, 2>; 4]) -> Tensor<B, 3> {
        let [b, t, n_in] = x.dims();
        let [w_ih, w_hh, b_ih, b_hh] = w;
        let h = w_hh.dims()[0];
        let mut hidden: Tensor<B, 2> = Tensor::zeros([b, h], &x.device());
        let mut outs = Vec::new();
        for s in 0..t {
            let xs = x.clone().slice([0..b, s..s + 1, 0..n_in]).reshape([b, n_in]);
            let zx = xs.matmul(w_ih.clone()) + b_ih.clone();
            let zh = hidden.clone().matmul(w_hh.clone()) + b_hh.clone();
            hidden = gru_step(zx, zh, hidden);
            outs.push(hidden.clone());
        }
        Tensor::stack(outs, 1)
    }

    /// The GRU layer's output and the gradients of its input, weights and biases equal the
    /// per-step operations'; the inference pass gives the same output.
    #[test]
    fn the_gru_layer_matches_the_per_step_operations_with_its_gradients() {
        let (b, t, n_in, h) = (4, 7, 3, 5);
        let dev = Default::default();
        let r = |shape: [usize; 2]| Tensor::<Cpu, 2>::random(shape, Distribution::Normal(0.0, 0.8), &dev);
        let x0 = Tensor::<Cpu, 3>::random([b, t, n_in], Distribution::Normal(0.0, 1.5), &dev);
        let w0 = [r([n_in, 3 * h]), r([h, 3 * h]), r([1, 3 * h]), r([1, 3 * h])];
        let weigh = Tensor::<Cpu, 3>::random([b, t, h], Distribution::Normal(0.0, 1.0), &dev);
        let run = |layer: bool| {
            let x = Tensor::<CpuTrain, 3>::from_inner(x0.clone()).require_grad();
            let w = w0.clone().map(|w| Tensor::<CpuTrain, 2>::from_inner(w).require_grad());
            let out = if layer {
                gru_layer(x.clone(), w.clone()).expect("the CPU")
            } else {
                gru_per_step(x.clone(), w.clone())
            };
            let grads = (out.clone() * Tensor::from_inner(weigh.clone())).sum().backward();
            let mut all = vec![out.inner().into_data(), x.grad(&grads).unwrap().into_data()];
            all.extend(w.map(|w| w.grad(&grads).unwrap().into_data()));
            all
        };
        let (got, want) = (run(true), run(false));
        let names =
            ["output", "gradient of x", "gradient of w_ih", "gradient of w_hh", "gradient of b_ih", "gradient of b_hh"];
        for ((g, w), name) in got.into_iter().zip(want).zip(names) {
            let (g, w) = (g.to_vec::<f32>().unwrap(), w.to_vec::<f32>().unwrap());
            assert_eq!(g.len(), w.len(), "{name}: lengths");
            for (k, (p, q)) in g.iter().zip(&w).enumerate() {
                assert!((p - q).abs() <= 1e-5 * (1.0 + q.abs()), "{name} [{k}]: layer {p}, per step {q}");
            }
        }
        let inference = gru_layer(x0.clone(), w0.clone()).expect("the CPU");
        let reference = gru_per_step(x0, w0);
        let (p, q) = (inference.into_data().to_vec::<f32>().unwrap(), reference.into_data().to_vec::<f32>().unwrap());
        assert!(p.iter().zip(&q).all(|(p, q)| (p - q).abs() <= 1e-6), "inference output");
    }
}

//! The LSTM cell as **one** autodiff operation with a hand-written backward pass.
//!
//! Composed from tensor operations, one LSTM step after the gates' matmuls is about fifteen
//! nodes of burn's autodiff graph (four slices, three sigmoids, two tanh, products and sums),
//! and burn recomputes every activation in the backward pass (its sigmoid is
//! `exp(−log(1 + exp(−x)))`, three transcendental functions, computed twice). On the CPU, with
//! `[batch, hidden]` tensors of a few thousand values, that bookkeeping and those recomputations
//! are most of a training step. Here the cell is one node: the forward pass computes the gates
//! (`σ(x) = 1 / (1 + exp(−x))`, `tanh(x) = 1 − 2 / (exp(2x) + 1)`), the new cell `c = f ⊙ c₀ + i ⊙ g` and the hidden state
//! `h = o ⊙ tanh(c)` on the inner backend and keeps the activations; the backward pass computes
//! the gradients of the pre-activations and of `c₀` from them:
//!
//! ```text
//! dc  = dc' + dh ⊙ o ⊙ (1 − tanh(c)²)
//! dzi = dc ⊙ g ⊙ i ⊙ (1 − i)      dzf = dc ⊙ c₀ ⊙ f ⊙ (1 − f)
//! dzg = dc ⊙ i ⊙ (1 − g²)          dzo = dh ⊙ tanh(c) ⊙ o ⊙ (1 − o)
//! dc₀ = dc ⊙ f
//! ```
//!
//! The operation is written once over burn's `Autodiff<B>` for any inner backend `B`, so the
//! CUDA build gains too. [`lstm_cell`] uses it when the tensors are on one of the plugin's
//! training backends and composes the same equations from tensor operations otherwise
//! (inference, other backends).

use crate::backend::CpuTrain;
use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Slice, Tensor, TensorPrimitive};
use std::any::Any;

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

#[derive(Debug)]
struct LstmCellOp;

/// What the backward pass needs: the four gates after activation (input, forget, candidate,
/// output), the previous cell and `tanh` of the new cell, each `[batch, hidden]`, and `hidden`.
type CellState<B> = ([FloatTensor<B>; 6], usize);

impl<B: Backend> Backward<B, 2> for LstmCellOp {
    type State = CellState<B>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let ([i, f, g, o, c0, tc], hidden) = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let dh = cols::<B>(grad.clone(), 0, hidden);
        let dc_next = cols::<B>(grad, hidden, 2 * hidden);
        let d_tanh = one_minus::<B>(B::float_mul(tc.clone(), tc.clone()));
        let dc = B::float_add(dc_next, B::float_mul(B::float_mul(dh.clone(), o.clone()), d_tanh));
        let [z_node, c_node] = ops.parents;
        if let Some(node) = z_node {
            let d_sig = |s: FloatTensor<B>| B::float_mul(s.clone(), one_minus::<B>(s));
            let dzi = B::float_mul(B::float_mul(dc.clone(), g.clone()), d_sig(i.clone()));
            let dzf = B::float_mul(B::float_mul(dc.clone(), c0), d_sig(f.clone()));
            let dzg = B::float_mul(B::float_mul(dc.clone(), i), one_minus::<B>(B::float_mul(g.clone(), g)));
            let dzo = B::float_mul(B::float_mul(dh, tc), d_sig(o));
            grads.register::<B>(node.id, B::float_cat(vec![dzi, dzf, dzg, dzo], 1));
        }
        if let Some(node) = c_node {
            grads.register::<B>(node.id, B::float_mul(dc, f));
        }
    }
}

/// The cell's forward pass on backend `B`: `[h | c]` and the activations the backward pass
/// keeps (input, forget, candidate and output gates, the previous cell, `tanh(c)`).
fn cell_forward<B: Backend>(z: FloatTensor<B>, c0: FloatTensor<B>, hidden: usize) -> CellForward<B> {
    let i = sigmoid::<B>(cols::<B>(z.clone(), 0, hidden));
    let f = sigmoid::<B>(cols::<B>(z.clone(), hidden, 2 * hidden));
    let g = tanh::<B>(cols::<B>(z.clone(), 2 * hidden, 3 * hidden));
    let o = sigmoid::<B>(cols::<B>(z, 3 * hidden, 4 * hidden));
    let c = B::float_add(B::float_mul(f.clone(), c0.clone()), B::float_mul(i.clone(), g.clone()));
    let tc = tanh::<B>(c.clone());
    let h = B::float_mul(o.clone(), tc.clone());
    ([i, f, g, o, c0, tc], B::float_cat(vec![h, c], 1))
}

/// What [`cell_forward`] returns: the kept activations and `[h | c]`.
type CellForward<B> = ([FloatTensor<B>; 6], FloatTensor<B>);

/// The cell on `Autodiff<B, C>`: pre-activations `z` `[batch, 4·hidden]` (gates in the order
/// input, forget, candidate, output) and the previous cell `c0` `[batch, hidden]` give
/// `[h | c]` `[batch, 2·hidden]`.
fn cell_autodiff<B: Backend, C: CheckpointStrategy>(
    z: Tensor<Autodiff<B, C>, 2>,
    c0: Tensor<Autodiff<B, C>, 2>,
) -> Tensor<Autodiff<B, C>, 2> {
    let hidden = c0.dims()[1];
    let z = z.into_primitive().tensor();
    let c0 = c0.into_primitive().tensor();
    let ([i, f, g, o, _, tc], out) = cell_forward::<B>(z.primitive.clone(), c0.primitive.clone(), hidden);
    let state = ([i, f, g, o, c0.primitive.clone(), tc], hidden);
    let result = match LstmCellOp.prepare::<C>([z.node.clone(), c0.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    Tensor::from_primitive(TensorPrimitive::Float(result))
}

/// The cell on any backend, the same forward pass (on an autodiff backend other than the
/// plugin's, each of its operations is a node of the graph).
fn cell_composed<B: Backend>(z: Tensor<B, 2>, c0: Tensor<B, 2>) -> Tensor<B, 2> {
    let hidden = c0.dims()[1];
    let (_, out) = cell_forward::<B>(z.into_primitive().tensor(), c0.into_primitive().tensor(), hidden);
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// `Some(x)` as a tensor of backend `T` when `B` is `T`.
fn cast<B: Backend, T: Backend>(x: Tensor<B, 2>) -> Option<Tensor<T, 2>> {
    (Box::new(x) as Box<dyn Any>).downcast::<Tensor<T, 2>>().ok().map(|b| *b)
}

/// One LSTM cell: pre-activations `z` `[batch, 4·hidden]` (input, forget, candidate, output
/// gates, biases included) and the previous cell `c0` `[batch, hidden]` give the hidden state
/// and the new cell as `[h | c]` `[batch, 2·hidden]`, with burn's LSTM equations (sigmoid
/// gates, tanh candidate and output). One autodiff node on the plugin's training backends.
pub fn lstm_cell<B: Backend>(z: Tensor<B, 2>, c0: Tensor<B, 2>) -> Tensor<B, 2> {
    if std::any::TypeId::of::<B>() == std::any::TypeId::of::<CpuTrain>() {
        let (Some(z), Some(c0)) = (cast::<B, CpuTrain>(z.clone()), cast::<B, CpuTrain>(c0.clone())) else {
            unreachable!("the types are equal")
        };
        return cast::<CpuTrain, B>(cell_autodiff(z, c0)).expect("the types are equal");
    }
    #[cfg(feature = "cuda")]
    if std::any::TypeId::of::<B>() == std::any::TypeId::of::<crate::backend::GpuTrain>() {
        use crate::backend::GpuTrain;
        let (Some(z), Some(c0)) = (cast::<B, GpuTrain>(z.clone()), cast::<B, GpuTrain>(c0.clone())) else {
            unreachable!("the types are equal")
        };
        return cast::<GpuTrain, B>(cell_autodiff(z, c0)).expect("the types are equal");
    }
    cell_composed(z, c0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use burn::tensor::{Distribution, TensorData};

    /// The fused cell's values and gradients (of the pre-activations and of the previous cell,
    /// through a loss that weighs `h` and `c` differently) equal the composed cell's.
    #[test]
    fn the_fused_cell_matches_the_composed_one_with_its_gradients() {
        let device = Default::default();
        let z0: Tensor<Cpu, 2> = Tensor::random([5, 12], Distribution::Normal(0.0, 2.0), &device);
        let c00: Tensor<Cpu, 2> = Tensor::random([5, 3], Distribution::Normal(0.0, 1.0), &device);
        let w: Tensor<Cpu, 2> = Tensor::random([5, 6], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let z = Tensor::<CpuTrain, 2>::from_inner(z0.clone()).require_grad();
            let c0 = Tensor::<CpuTrain, 2>::from_inner(c00.clone()).require_grad();
            let out = if fused { lstm_cell(z.clone(), c0.clone()) } else { cell_composed(z.clone(), c0.clone()) };
            let loss = (out.clone() * Tensor::from_inner(w.clone())).sum();
            let grads = loss.backward();
            (out.inner().into_data(), z.grad(&grads).unwrap().into_data(), c0.grad(&grads).unwrap().into_data())
        };
        let (a, b) = (run(true), run(false));
        let close = |x: &TensorData, y: &TensorData, what: &str| {
            let (x, y) = (x.to_vec::<f32>().unwrap(), y.to_vec::<f32>().unwrap());
            for (k, (p, q)) in x.iter().zip(&y).enumerate() {
                assert!((p - q).abs() < 1e-5, "{what} [{k}]: fused {p}, composed {q}");
            }
        };
        close(&a.0, &b.0, "output");
        close(&a.1, &b.1, "gradient of z");
        close(&a.2, &b.2, "gradient of c0");
    }
}

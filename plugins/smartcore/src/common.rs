//! Helpers shared by the smartcore models: task and target checks, standardisation, matrix
//! conversion, seeds and thread pools.

use ndarray::Array2;
use promoml_core::{Error, Result};
use smartcore::error::Failed;
use smartcore::linalg::basic::matrix::DenseMatrix;

pub(crate) use promoml_core::model_util::{
    Standardizer, check_features, check_task, class_targets, sigmoid, value_targets,
};

/// A smartcore matrix holding the same values as `x`.
pub(crate) fn to_dense(kind: &str, x: &Array2<f64>) -> Result<DenseMatrix<f64>> {
    let values: Vec<f64> = x.iter().copied().collect();
    DenseMatrix::new(x.nrows(), x.ncols(), values, false).map_err(sc_err(kind))
}

/// Converts a smartcore failure into a model error for `kind`.
pub(crate) fn sc_err(kind: &str) -> impl Fn(Failed) -> Error + '_ {
    move |e| Error::model(kind, format!("smartcore: {e}"))
}

/// A well-mixed 64-bit seed for sub-stream `stream` of `seed` (SplitMix64), so that per-tree or
/// per-fold seeds do not depend on scheduling.
pub(crate) fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Run `f` on a rayon pool of `threads` workers (0 = the global pool).
pub(crate) fn in_pool<R: Send>(kind: &str, threads: usize, f: impl FnOnce() -> R + Send) -> Result<R> {
    if threads == 0 {
        return Ok(f());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::model(kind, format!("cannot start {threads} worker threads: {e}")))?;
    Ok(pool.install(f))
}

#[cfg(test)]
pub(crate) use promoml_core::testing as testutil;

//! promoml plugin: gradient-boosted trees from two pure-Rust crates.
//!
//! * `gbm.perpetual`: [perpetual](https://docs.rs/perpetual)'s self-generalising booster. One
//!   parameter, `budget`, sets how hard it fits; it picks the learning rate, tree sizes and the
//!   number of rounds itself. Binary and multiclass classification (one booster per class, or
//!   perpetual's native multiclass on small problems) and regression.
//! * `gbm.forust`: [forust-ml](https://docs.rs/forust-ml)'s XGBoost-style booster with the usual
//!   knobs (learning rate, depth, leaves, rounds, row and column subsampling, L2, minimum leaf
//!   weight) and early stopping on a seeded internal validation split. Binary classification and
//!   regression only: the crate has no multiclass objective.
//!
//! Both take the tabular matrix as is (missing values as NaN are routed by the trees), use
//! sample weights when the dataset has them, draw every random choice from the fit's seed,
//! run on `FitContext::threads` worker threads, and save fitted boosters as JSON (with
//! round-trip floats) for artifacts.
//!
//! ```
//! use promoml_core::{Dataset, FitContext, Params, Predictions, Registry};
//! use ndarray::Array2;
//!
//! let mut registry = Registry::new();
//! promoml_gbm::register(&mut registry);
//! let model = registry.model("gbm.forust").unwrap();
//! let x = Array2::from_shape_fn((40, 1), |(i, _)| i as f64);
//! let mut data = Dataset::from_x(x, vec!["x".into()]);
//! data.y = Some((0..40).map(|i| f64::from(u8::from(i >= 20))).collect());
//! data.classes = vec!["no".into(), "yes".into()];
//! let params = model.space().resolve(&Params::new(), "params").unwrap();
//! let fitted = model.fit(&data, &params, &FitContext::new(7)).unwrap();
//! let Predictions::Proba(p) = fitted.predict(&data).unwrap() else { unreachable!() };
//! assert!(p[[39, 1]] > 0.5 && p[[0, 1]] < 0.5);
//! ```

mod forust;
mod perpetual;

#[cfg(test)]
mod tests;

pub use crate::forust::{FittedForust, Forust, ForustConfig, fit_forust};
pub use crate::perpetual::{FittedPerpetual, Perpetual, PerpetualConfig, fit_perpetual};

use ndarray::Array2;
use promoml_core::{Error, Registry, Result};

/// Register `gbm.perpetual` and `gbm.forust`.
pub fn register(registry: &mut Registry) {
    registry.add_model(Perpetual);
    registry.add_model(Forust);
}

/// The values of `x` in column-major order, the layout both crates' `Matrix` reads.
pub(crate) fn column_major(x: &Array2<f64>) -> Vec<f64> {
    x.t().iter().copied().collect()
}

/// An error when `x` holds an infinite value: both crates bin features by value and treat only
/// NaN as missing, so an infinity would silently become an extreme bin edge.
pub(crate) fn check_values(kind: &str, x: &Array2<f64>) -> Result<()> {
    if let Some(((i, j), v)) = x.indexed_iter().find(|(_, v)| v.is_infinite()) {
        return Err(Error::model(kind, format!("row {i}, feature {j}: value {v} is infinite (use NaN for missing)")));
    }
    Ok(())
}

/// Most worker threads a saved booster may ask for; more is a corrupt artifact, not a pool to start.
pub(crate) const MAX_SAVED_THREADS: usize = 1024;

/// Check one saved tree before a booster walks it: `nodes` lists `(number, is_leaf, split
/// feature, [left, right, missing])` per node; the root is node 0 and every child is a node
/// numbered after its parent (so a walk ends), and splits read one of the `n_features` columns.
pub(crate) fn check_tree(
    kind: &str,
    tree: usize,
    n_features: usize,
    nodes: impl Iterator<Item = (usize, bool, usize, [usize; 3])>,
    has_node: impl Fn(usize) -> bool,
) -> Result<()> {
    let bad = |what: String| Error::model(kind, format!("cannot read the saved model: tree {tree} {what}"));
    if !has_node(0) {
        return Err(bad("has no root node".into()));
    }
    for (num, leaf, feature, children) in nodes {
        if leaf {
            continue;
        }
        if feature >= n_features {
            return Err(bad(format!("node {num} splits on feature {feature} of {n_features}")));
        }
        if let Some(c) = children.iter().find(|&&c| c <= num || !has_node(c)) {
            return Err(bad(format!("node {num} points to node {c}, not a later node of the tree")));
        }
    }
    Ok(())
}

/// Run `f` on a rayon pool of `threads` workers (0 = the current pool).
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

/// Run third-party fitting code, turning a panic inside it into a model error for `kind`
/// (the crates assert on inputs they consider impossible rather than returning errors).
pub(crate) fn guarded<R>(kind: &str, what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    promoml_core::guard::catch_panic(kind, &format!("{what} inside the booster crate"), f)
}

/// Seconds left before the fit's deadline (`None` without one); an error when it has passed.
pub(crate) fn seconds_left(kind: &str, ctx: &promoml_core::FitContext) -> Result<Option<f32>> {
    ctx.check_deadline(kind)?;
    Ok(ctx.deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()).as_secs_f32()))
}

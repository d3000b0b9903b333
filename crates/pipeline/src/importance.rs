//! Permutation feature importance (Breiman 2001; scikit-learn's `permutation_importance`):
//! shuffle one feature's values across the test rows, predict again with the final model
//! (a single candidate or the whole ensemble), and measure how much the metric worsens.
//! Model-agnostic: it needs only a prediction function. Behaviour sequences count as one
//! feature, `(sequence)`: whole sequences are shuffled between rows.

use crate::cv::derive_seed;
use promoml_core::{Dataset, Metric, Predictions, Result};
use promoml_report::{FeatureImportance, PermutationImportance};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;

/// Name of the pseudo-feature that stands for the behaviour sequences.
pub const SEQUENCE_FEATURE: &str = "(sequence)";

/// Something that scores rows: the final model of a run.
pub type Predictor<'a> = dyn Fn(&Dataset) -> Result<Predictions> + Sync + 'a;

/// Permutation importance of every feature of `test` (and of its sequences, when it has any)
/// for `predict`, measured with `metric` against `y` over `repeats` seeded shuffles each.
/// Importance is oriented so that larger is more important whatever the metric's direction.
///
/// With a `budget`, the number of shuffles is lowered (to one at least) when the unshuffled
/// prediction's time says that `repeats` shuffles of every feature would take longer on the
/// available cores; the report's `repeats` says how many were made.
#[allow(clippy::too_many_arguments)]
pub fn permutation_importance(
    model: &str,
    predict: &Predictor<'_>,
    test: &Dataset,
    y: &[f64],
    metric: Metric,
    repeats: usize,
    seed: u64,
    budget: Option<std::time::Duration>,
) -> Result<PermutationImportance> {
    let started = std::time::Instant::now();
    let baseline = metric.score(y, &predict(test)?)?;
    let one_prediction_s = started.elapsed().as_secs_f64();
    let worsening = |s: f64| if metric.higher_is_better() { baseline - s } else { s - baseline };
    let n = test.n_rows();
    let mut targets: Vec<Option<usize>> = (0..test.n_features()).map(Some).collect();
    if test.sequences.is_some() {
        targets.push(None);
    }
    let repeats = match budget {
        Some(b) => {
            let per_round_s = one_prediction_s * targets.len() as f64 / rayon::current_num_threads() as f64;
            let fit = (b.as_secs_f64() / per_round_s.max(1e-9)).floor() as usize;
            let fit = fit.clamp(1, repeats.max(1));
            if fit < repeats {
                tracing::info!(
                    "permutation importance: {fit} shuffle(s) per feature instead of {repeats} to stay within {:.0} s",
                    b.as_secs_f64()
                );
            }
            fit.min(repeats)
        }
        None => repeats,
    };
    let mut features: Vec<FeatureImportance> = targets
        .par_iter()
        .enumerate()
        .map(|(t, target)| {
            let drops: Vec<f64> = (0..repeats)
                .map(|r| {
                    let mut order: Vec<usize> = (0..n).collect();
                    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, &[t as u64, r as u64]));
                    order.shuffle(&mut rng);
                    let shuffled = shuffle(test, *target, &order);
                    Ok(worsening(metric.score(y, &predict(&shuffled)?)?))
                })
                .collect::<Result<_>>()?;
            let mean = drops.iter().sum::<f64>() / repeats as f64;
            let var = drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / repeats as f64;
            let feature = match target {
                Some(j) => test.feature_names[*j].clone(),
                None => SEQUENCE_FEATURE.to_string(),
            };
            Ok(FeatureImportance { feature, importance: mean, std: var.sqrt() })
        })
        .collect::<Result<_>>()?;
    features.sort_by(|a, b| b.importance.total_cmp(&a.importance).then_with(|| a.feature.cmp(&b.feature)));
    Ok(PermutationImportance { model: model.to_string(), metric: metric.name().to_string(), repeats, features })
}

/// `test` with column `target` (or, for `None`, the sequences) reordered: row `i` gets the
/// value of row `order[i]`.
fn shuffle(test: &Dataset, target: Option<usize>, order: &[usize]) -> Dataset {
    let mut out = test.clone();
    match target {
        Some(j) => {
            let col = test.x.column(j);
            for (i, &src) in order.iter().enumerate() {
                out.x[[i, j]] = col[src];
            }
        }
        None => {
            let seq = test.sequences.as_ref().expect("sequence target only when there are sequences");
            let s = out.sequences.as_mut().expect("cloned");
            s.data = seq.data.select(ndarray::Axis(0), order);
            s.lengths = order.iter().map(|&i| seq.lengths[i]).collect();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// A "model" that uses feature 0 strongly, feature 1 weakly and ignores feature 2.
    fn predict(ds: &Dataset) -> Result<Predictions> {
        let p = Array2::from_shape_fn((ds.n_rows(), 2), |(i, c)| {
            let z = 3.0 * ds.x[[i, 0]] + 0.5 * ds.x[[i, 1]];
            let q = 1.0 / (1.0 + (-z).exp());
            if c == 1 { q } else { 1.0 - q }
        });
        Ok(Predictions::Proba(p))
    }

    fn fixture() -> (Dataset, Vec<f64>) {
        let n = 400;
        let x = Array2::from_shape_fn((n, 3), |(i, j)| (((i * 7919 + j * 104_729) % 1000) as f64 / 500.0) - 1.0);
        let y: Vec<f64> = (0..n)
            .map(|i| f64::from(u8::from(3.0 * x[[i, 0]] + 0.5 * x[[i, 1]] + 0.3 * ((i % 5) as f64 - 2.0) > 0.0)))
            .collect();
        (Dataset::from_x(x, vec!["strong".into(), "weak".into(), "unused".into()]), y)
    }

    #[test]
    fn ranks_features_by_how_much_the_model_uses_them() {
        let (ds, y) = fixture();
        let imp = permutation_importance("m", &predict, &ds, &y, Metric::RocAuc, 5, 7, None).unwrap();
        let names: Vec<&str> = imp.features.iter().map(|f| f.feature.as_str()).collect();
        assert_eq!(names, ["strong", "weak", "unused"]);
        assert!(imp.features[0].importance > 0.2, "{:?}", imp.features[0]);
        // An ignored feature cannot change a single prediction.
        assert_eq!(imp.features[2].importance, 0.0);
        assert_eq!(imp.features[2].std, 0.0);
        assert_eq!(imp.repeats, 5);
        // Seeded: the same call gives the same numbers.
        assert_eq!(imp, permutation_importance("m", &predict, &ds, &y, Metric::RocAuc, 5, 7, None).unwrap());
        // A budget no prediction fits in leaves one shuffle per feature, and says so.
        let tight = Some(std::time::Duration::from_nanos(1));
        let one = permutation_importance("m", &predict, &ds, &y, Metric::RocAuc, 5, 7, tight).unwrap();
        assert_eq!(one.repeats, 1);
        assert_eq!(one.features[0].feature, "strong");
        assert_eq!(one.features[0].std, 0.0);
    }

    #[test]
    fn loss_metrics_are_oriented_so_that_larger_is_more_important() {
        let (ds, y) = fixture();
        let imp = permutation_importance("m", &predict, &ds, &y, Metric::LogLoss, 3, 1, None).unwrap();
        assert_eq!(imp.features[0].feature, "strong");
        assert!(imp.features[0].importance > 0.0);
    }

    #[test]
    fn sequences_are_one_feature_shuffled_between_rows() {
        let (mut ds, y) = fixture();
        let n = ds.n_rows();
        // The sequence carries feature 0's sign in its first step; the model reads only it.
        let data =
            ndarray::Array3::from_shape_fn((n, 2, 1), |(i, t, _)| if t == 0 { ds.x[[i, 0]] as f32 } else { 0.0 });
        ds.sequences = Some(promoml_core::Sequences { data, lengths: vec![2; n], channels: vec!["signal".into()] });
        let from_sequence = |d: &Dataset| -> Result<Predictions> {
            let s = d.sequences.as_ref().unwrap();
            let p = Array2::from_shape_fn((d.n_rows(), 2), |(i, c)| {
                let q = 1.0 / (1.0 + (-3.0 * f64::from(s.data[[i, 0, 0]])).exp());
                if c == 1 { q } else { 1.0 - q }
            });
            Ok(Predictions::Proba(p))
        };
        let imp = permutation_importance("m", &from_sequence, &ds, &y, Metric::RocAuc, 3, 1, None).unwrap();
        assert_eq!(imp.features[0].feature, SEQUENCE_FEATURE);
        assert!(imp.features[0].importance > 0.2);
        assert!(imp.features[1..].iter().all(|f| f.importance == 0.0));
    }
}

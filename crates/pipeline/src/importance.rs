//! Permutation feature importance (Breiman 2001; scikit-learn's `permutation_importance`):
//! shuffle one feature's values across the test rows, predict again with the final model
//! (a single candidate or the whole ensemble), and measure how much the metric worsens.
//! Model-agnostic: it needs only a prediction function. Behaviour sequences count as one
//! feature, `(sequence)`: whole sequences are shuffled between rows. A deadline bounds it: the
//! clock is checked before every shuffle.

use crate::cv::derive_seed;
use promoml_core::{Dataset, Metric, Predictions, Result};
use promoml_report::{FeatureImportance, PermutationImportance};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use std::time::{Duration, Instant};

/// Name of the pseudo-feature that stands for the behaviour sequences.
pub const SEQUENCE_FEATURE: &str = "(sequence)";

/// Something that scores rows: the final model of a run.
pub type Predictor<'a> = dyn Fn(&Dataset) -> Result<Predictions> + Sync + 'a;

/// Permutation importance of every feature of `test` (and of its sequences, when it has any)
/// that the model `reads`, for `predict`, measured with `metric` against `y` over `repeats` seeded shuffles each.
/// Importance is oriented so that larger is more important whatever the metric's direction.
///
/// Shuffles run in rounds: round `r` shuffles every feature once (features in parallel), so
/// every feature gets its first shuffle before any gets its second. With a `deadline` (the
/// run's time budget or importance's own, whichever ends first) the clock is checked before
/// every shuffle: a round that would not finish in time (judged by the previous round's
/// duration) is not started, a later round cut short is dropped (every reported feature has
/// exactly the report's `repeats` shuffles), and features the first round did not reach before
/// the deadline are listed as `unmeasured` instead of ranked. A deadline already past costs
/// only the unshuffled prediction.
#[allow(clippy::too_many_arguments)]
pub fn permutation_importance(
    model: &str,
    predict: &Predictor<'_>,
    test: &Dataset,
    y: &[f64],
    metric: Metric,
    repeats: usize,
    seed: u64,
    deadline: Option<Instant>,
    reads: promoml_core::Reads,
) -> Result<PermutationImportance> {
    let baseline = metric.score(y, &predict(test)?)?;
    let worsening = |s: f64| if metric.higher_is_better() { baseline - s } else { s - baseline };
    let n = test.n_rows();
    // Inputs the model never reads are not shuffled (their importance is 0 by construction).
    let mut targets: Vec<Option<usize>> =
        if reads.tabular { (0..test.n_features()).map(Some).collect() } else { Vec::new() };
    if test.sequences.is_some() && reads.sequences {
        targets.push(None);
    }
    let expired = || deadline.is_some_and(|d| Instant::now() >= d);
    // Drops of each target, one per complete round (the first round may leave some empty).
    let mut drops: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
    let mut done = 0;
    let mut last_round: Option<Duration> = None;
    for r in 0..repeats.max(1) {
        if let (Some(d), Some(last)) = (deadline, last_round)
            && Instant::now() + last > d
        {
            break;
        }
        let started = Instant::now();
        let round: Vec<Option<f64>> = targets
            .par_iter()
            .enumerate()
            .map(|(t, target)| {
                if expired() {
                    return Ok(None);
                }
                let mut order: Vec<usize> = (0..n).collect();
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(derive_seed(seed, &[t as u64, r as u64]));
                order.shuffle(&mut rng);
                let shuffled = shuffle(test, *target, &order);
                Ok(Some(worsening(metric.score(y, &predict(&shuffled)?)?)))
            })
            .collect::<Result<_>>()?;
        let complete = round.iter().all(Option::is_some);
        if !complete && (r > 0 || round.iter().all(Option::is_none)) {
            break;
        }
        for (d, v) in drops.iter_mut().zip(round) {
            d.extend(v);
        }
        done = r + 1;
        last_round = Some(started.elapsed());
        if !complete {
            break;
        }
    }
    if done < repeats.max(1) || drops.iter().any(Vec::is_empty) {
        let measured = drops.iter().filter(|d| !d.is_empty()).count();
        tracing::info!(
            "permutation importance stopped at its deadline: {done} of {repeats} shuffle round(s), {measured} of {} features measured",
            targets.len()
        );
    }
    let name = |target: &Option<usize>| match target {
        Some(j) => test.feature_names[*j].clone(),
        None => SEQUENCE_FEATURE.to_string(),
    };
    let mut features = Vec::new();
    let mut unmeasured = Vec::new();
    for (target, d) in targets.iter().zip(&drops) {
        if d.is_empty() {
            unmeasured.push(name(target));
            continue;
        }
        let mean = d.iter().sum::<f64>() / d.len() as f64;
        let var = d.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / d.len() as f64;
        features.push(FeatureImportance { feature: name(target), importance: mean, std: var.sqrt() });
    }
    features.sort_by(|a, b| b.importance.total_cmp(&a.importance).then_with(|| a.feature.cmp(&b.feature)));
    Ok(PermutationImportance {
        model: model.to_string(),
        metric: metric.name().to_string(),
        repeats: done.min(repeats),
        features,
        unmeasured,
    })
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
    use promoml_core::Reads;
    use std::sync::atomic::{AtomicUsize, Ordering};

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
        let imp = permutation_importance("m", &predict, &ds, &y, Metric::RocAuc, 5, 7, None, Reads::ALL).unwrap();
        let names: Vec<&str> = imp.features.iter().map(|f| f.feature.as_str()).collect();
        assert_eq!(names, ["strong", "weak", "unused"]);
        assert!(imp.features[0].importance > 0.2, "{:?}", imp.features[0]);
        // An ignored feature cannot change a single prediction.
        assert_eq!(imp.features[2].importance, 0.0);
        assert_eq!(imp.features[2].std, 0.0);
        assert_eq!(imp.repeats, 5);
        // Seeded: the same call gives the same numbers.
        assert_eq!(
            imp,
            permutation_importance("m", &predict, &ds, &y, Metric::RocAuc, 5, 7, None, Reads::ALL).unwrap()
        );
        assert!(imp.unmeasured.is_empty());
    }

    /// The predictor of [`predict`], counting its calls.
    fn counting(calls: &AtomicUsize) -> impl Fn(&Dataset) -> Result<Predictions> + Sync + '_ {
        move |ds| {
            calls.fetch_add(1, Ordering::SeqCst);
            predict(ds)
        }
    }

    #[test]
    fn importance_with_a_deadline_already_past_shuffles_nothing() {
        let (ds, y) = fixture();
        let calls = AtomicUsize::new(0);
        let past = Instant::now().checked_sub(Duration::from_secs(1));
        let imp =
            permutation_importance("m", &counting(&calls), &ds, &y, Metric::RocAuc, 5, 7, past, Reads::ALL).unwrap();
        // Only the unshuffled prediction: not one shuffle, let alone five per feature.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(imp.repeats, 0);
        assert!(imp.features.is_empty());
        assert_eq!(imp.unmeasured, ["strong", "weak", "unused"]);
    }

    #[test]
    fn importance_deadline_during_the_first_round_stops_after_at_most_one_shuffle_per_feature() {
        let (ds, y) = fixture();
        let calls = AtomicUsize::new(0);
        // The first shuffle outlasts the deadline: no feature may get a second shuffle,
        // however the features of the first round are scheduled.
        let slow = |d: &Dataset| {
            if calls.fetch_add(1, Ordering::SeqCst) == 1 {
                std::thread::sleep(Duration::from_millis(400));
            }
            predict(d)
        };
        let deadline = Some(Instant::now() + Duration::from_millis(300));
        let imp = permutation_importance("m", &slow, &ds, &y, Metric::RocAuc, 5, 7, deadline, Reads::ALL).unwrap();
        let n = ds.n_features();
        assert!(calls.load(Ordering::SeqCst) <= 1 + n, "{} predictions", calls.load(Ordering::SeqCst));
        assert!(imp.repeats <= 1);
        assert_eq!(imp.features.len() + imp.unmeasured.len(), n);
        assert!(imp.features.iter().all(|f| f.std == 0.0), "one shuffle has no spread: {imp:?}");
    }

    #[test]
    fn inputs_the_model_does_not_read_are_not_shuffled() {
        let (ds, y) = fixture();
        let calls = AtomicUsize::new(0);
        let no_tabular = Reads { tabular: false, sequences: true };
        let imp =
            permutation_importance("m", &counting(&calls), &ds, &y, Metric::RocAuc, 3, 7, None, no_tabular).unwrap();
        // No sequences and no tabular feature read: only the unshuffled prediction.
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(imp.features.is_empty() && imp.unmeasured.is_empty(), "{imp:?}");
    }

    #[test]
    fn loss_metrics_are_oriented_so_that_larger_is_more_important() {
        let (ds, y) = fixture();
        let imp = permutation_importance("m", &predict, &ds, &y, Metric::LogLoss, 3, 1, None, Reads::ALL).unwrap();
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
        let imp = permutation_importance("m", &from_sequence, &ds, &y, Metric::RocAuc, 3, 1, None, Reads::ALL).unwrap();
        assert_eq!(imp.features[0].feature, SEQUENCE_FEATURE);
        assert!(imp.features[0].importance > 0.2);
        assert!(imp.features[1..].iter().all(|f| f.importance == 0.0));
    }
}

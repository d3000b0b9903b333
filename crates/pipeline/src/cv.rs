//! Splits and cross-validation folds: the one place rows are assigned to train, validation and
//! test. Everything is seeded; the same seed gives the same rows.

use promoml_core::Rng;
use rand::SeedableRng;
use rand::seq::SliceRandom;

/// Mix a seed with a path of integers (SplitMix64), so that every fold, trial and model gets
/// its own independent, reproducible seed.
pub fn derive_seed(seed: u64, parts: &[u64]) -> u64 {
    let mut z = seed;
    for &p in parts {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15).wrapping_add(p.wrapping_mul(0xBF58_476D_1CE4_E5B9));
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}

/// A stable 64-bit number for a name (FNV-1a of its UTF-8 bytes), to derive seeds that follow a
/// component's name rather than its position in the pipeline file:
/// `derive_seed(seed, &[tag, name_seed(name)])`. The same name gives the same number on every
/// platform and in every version.
pub fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xCBF2_9CE4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3))
}

/// Assign each of `n` rows to one of `k` folds; with `labels`, each class is spread evenly over
/// the folds (stratified). Returns the validation rows of each fold, sorted.
pub fn folds(n: usize, k: usize, labels: Option<&[usize]>, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng::seed_from_u64(seed);
    let mut out = vec![Vec::new(); k];
    let mut groups = by_label(n, labels);
    let mut offset = 0;
    for g in &mut groups {
        g.shuffle(&mut rng);
        for &i in g.iter() {
            out[offset % k].push(i);
            offset += 1;
        }
    }
    for f in &mut out {
        f.sort_unstable();
    }
    out
}

/// Rows grouped by class label (one group of all rows without labels).
fn by_label(n: usize, labels: Option<&[usize]>) -> Vec<Vec<usize>> {
    match labels {
        Some(l) => {
            let classes = l.iter().copied().max().map_or(0, |m| m + 1);
            let mut g = vec![Vec::new(); classes];
            for (i, &c) in l.iter().enumerate() {
                g[c].push(i);
            }
            g
        }
        None => vec![(0..n).collect()],
    }
}

/// The rows not in `val`, sorted.
pub fn complement(n: usize, val: &[usize]) -> Vec<usize> {
    let mut mask = vec![true; n];
    for &i in val {
        mask[i] = false;
    }
    (0..n).filter(|&i| mask[i]).collect()
}

/// Random (or stratified, with `labels`) train/test split: returns (train, test) rows, sorted.
pub fn holdout(n: usize, test_fraction: f64, labels: Option<&[usize]>, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let mut rng = Rng::seed_from_u64(seed);
    let mut test = Vec::new();
    let groups = by_label(n, labels);
    for mut g in groups {
        g.shuffle(&mut rng);
        let take = ((g.len() as f64) * test_fraction).round() as usize;
        test.extend_from_slice(&g[..take.min(g.len())]);
    }
    test.sort_unstable();
    (complement(n, &test), test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_folds_partition_rows_and_balance_classes() {
        let labels: Vec<usize> = (0..103).map(|i| usize::from(i % 5 == 0)).collect();
        let f = folds(103, 5, Some(&labels), 1);
        let mut all: Vec<usize> = f.concat();
        all.sort_unstable();
        assert_eq!(all, (0..103).collect::<Vec<_>>());
        for fold in &f {
            let pos = fold.iter().filter(|&&i| labels[i] == 1).count();
            assert!((4..=5).contains(&pos), "{pos} positives");
        }
        assert_eq!(f, folds(103, 5, Some(&labels), 1));
        assert_ne!(f, folds(103, 5, Some(&labels), 2));
    }

    #[test]
    fn holdout_fraction_and_disjointness() {
        let (tr, te) = holdout(1000, 0.2, None, 3);
        assert_eq!(te.len(), 200);
        assert_eq!(tr.len(), 800);
        assert!(te.iter().all(|i| tr.binary_search(i).is_err()));
        assert_ne!(derive_seed(1, &[2, 3]), derive_seed(1, &[3, 2]));
    }

    #[test]
    fn name_seeds_are_fixed_and_distinct() {
        // FNV-1a's published test vectors: the seed of a name never changes.
        assert_eq!(name_seed(""), 0xCBF2_9CE4_8422_2325);
        assert_eq!(name_seed("a"), 0xAF63_DC4C_8601_EC8C);
        assert_ne!(name_seed("anomaly.ecod"), name_seed("anomaly.isolation_forest"));
    }
}

//! Parzen estimators: mixtures of truncated Gaussians (numerical parameters) and smoothed
//! histograms (categorical parameters), built the way Optuna 5.0's `_ParzenEstimator` builds
//! them (the same bandwidth rule for univariate and multivariate TPE).
//!
//! All numbers here live in the *internal* scale: the logarithm of the value for log-scaled
//! parameters, the value itself otherwise, and the option index for categorical parameters.

use promoml_core::Rng;
use rand::Rng as _;
use rand_distr::{Distribution, StandardNormal};

const SQRT_2PI: f64 = 2.506_628_274_631_000_7;
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_7;
const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// Settings shared by every estimator of one optimiser.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KernelRules {
    /// Weight of the prior kernel (relative to an observation of weight 1).
    pub prior_weight: f64,
    /// Optuna's "magic clip": bandwidths at least `range / min(100, 1 + kernels)`.
    pub magic_clip: bool,
    /// Let the outermost observations' bandwidths reach the domain's ends.
    pub consider_endpoints: bool,
}

/// A numerical dimension in the internal scale: `[low, high]`, on a grid of `step` (0 for
/// continuous parameters, 1 for linear integers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NumDomain {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
    /// Grid step, 0 when continuous.
    pub step: f64,
}

impl NumDomain {
    /// Lower end of the truncation interval (half a step below `low` on a grid).
    fn lo(&self) -> f64 {
        self.low - self.step / 2.0
    }
    /// Upper end of the truncation interval.
    fn hi(&self) -> f64 {
        self.high + self.step / 2.0
    }
    /// `high - low + step`, the scale of every bandwidth rule.
    fn width(&self) -> f64 {
        self.high - self.low + self.step
    }
}

/// The kernels of one dimension of a mixture.
#[derive(Debug, Clone)]
pub(crate) enum Dim {
    /// Truncated Gaussians.
    Num {
        /// Domain in the internal scale.
        dom: NumDomain,
        /// Kernel centres.
        mu: Vec<f64>,
        /// `1 / sigma` per kernel.
        inv_sigma: Vec<f64>,
        /// Per kernel: its weight times `1 / (sigma sqrt(2 pi) Z)` (continuous) or `1 / Z`
        /// (grid), where `Z` is the kernel's mass inside the domain.
        coef: Vec<f64>,
        /// `ln(coef / weight)` per kernel, for joint (log-space) densities; empty in a
        /// one-dimensional mixture, which sums densities directly.
        ln_norm: Vec<f64>,
    },
    /// Smoothed histograms over `n` options.
    Cat {
        /// Number of options.
        n: usize,
        /// The observed option per kernel; `None` for the (uniform) prior kernel.
        obs: Vec<Option<usize>>,
        /// Probability of the observed option of an observation kernel.
        p_hit: f64,
        /// Probability of any other option of an observation kernel.
        p_miss: f64,
    },
}

/// The observations of one dimension and its kind, to build a [`Dim`] from.
#[derive(Debug, Clone, Copy)]
pub(crate) enum DimKind {
    /// Numerical, in the internal scale.
    Num(NumDomain),
    /// Categorical with this many options.
    Cat(usize),
}

/// The observations of one dimension: values in trial order and the permutation that sorts
/// them (ties by position).
#[derive(Debug, Clone, Default)]
pub(crate) struct Obs {
    /// Values in trial order, in the internal scale.
    pub values: Vec<f64>,
    /// Positions into `values`, ascending by value.
    pub order: Vec<u32>,
}

#[cfg(test)]
impl Obs {
    /// Observations from values, sorting them.
    pub(crate) fn sorted(values: Vec<f64>) -> Obs {
        let mut order: Vec<u32> = (0..values.len() as u32).collect();
        order.sort_by(|&a, &b| values[a as usize].total_cmp(&values[b as usize]).then(a.cmp(&b)));
        Obs { values, order }
    }
}

/// A mixture whose kernel `k` is the product over dimensions of each dimension's kernel `k`.
#[derive(Debug, Clone)]
pub(crate) struct Mixture {
    /// Normalised kernel weights (the prior kernel last).
    w: Vec<f64>,
    /// Cumulative weights, to pick a kernel.
    cum: Vec<f64>,
    dims: Vec<Dim>,
}

/// Optuna's `default_weights`: the 25 most recent observations weigh 1, older ones ramp up
/// linearly from `1/n`. `n` observations in trial order.
pub(crate) fn default_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let start = 1.0 / n as f64;
    let mut w: Vec<f64> = (0..ramp)
        .map(|i| if ramp == 1 { start } else { start + (1.0 - start) * i as f64 / (ramp - 1) as f64 })
        .collect();
    w.extend(std::iter::repeat_n(1.0, 25));
    w
}

/// Probability that a standard normal lies in `[a, b]`, accurate in both tails.
pub(crate) fn gauss_mass(a: f64, b: f64) -> f64 {
    if a >= b {
        return 0.0;
    }
    if a >= 0.0 {
        0.5 * (libm::erfc(a * FRAC_1_SQRT_2) - libm::erfc(b * FRAC_1_SQRT_2))
    } else if b <= 0.0 {
        0.5 * (libm::erfc(-b * FRAC_1_SQRT_2) - libm::erfc(-a * FRAC_1_SQRT_2))
    } else {
        1.0 - 0.5 * libm::erfc(-a * FRAC_1_SQRT_2) - 0.5 * libm::erfc(b * FRAC_1_SQRT_2)
    }
}

/// `exp(x)` to about 1e-14 relative, written without branches or calls so the kernel sums
/// vectorise. Arguments are clamped to `[-700, 700]`: `exp(-700)` is 0 for every sum here.
#[inline(always)]
pub(crate) fn fast_exp(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    let x = x.clamp(-700.0, 700.0);
    let k = x * std::f64::consts::LOG2_E + MAGIC;
    let n = k - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    // Taylor series of exp on |r| <= ln(2)/2: the remainder is below 1e-14 relative.
    let mut p = 1.0 / 39_916_800.0;
    p = p * r + 1.0 / 3_628_800.0;
    p = p * r + 1.0 / 362_880.0;
    p = p * r + 1.0 / 40_320.0;
    p = p * r + 1.0 / 5_040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    let ni = k.to_bits().wrapping_sub(MAGIC.to_bits());
    let scale = f64::from_bits(ni.wrapping_add(1023) << 52);
    p * scale
}

/// Independent partial sums in the kernel loops (two SSE2 vectors of two lanes).
const LANES: usize = 4;

/// `sum(a)` in [`LANES`] partial sums (a single running sum cannot be vectorised).
fn lane_sum(a: &[f64]) -> f64 {
    let mut acc = [0.0f64; LANES];
    let mut chunks = a.chunks_exact(LANES);
    for c in &mut chunks {
        for l in 0..LANES {
            acc[l] += c[l];
        }
    }
    chunks.remainder().iter().sum::<f64>() + acc.iter().sum::<f64>()
}

impl Mixture {
    /// Build the estimator from `cols` (one per dimension, each with one value per observation
    /// in trial order, all in the internal scale and inside the domains). A prior kernel is
    /// added last; with no observation the prior is the only kernel.
    pub(crate) fn build(cols: &[Obs], kinds: &[DimKind], rules: KernelRules) -> Mixture {
        let n = cols.first().map_or(0, |c| c.values.len());
        let mut w = default_weights(n);
        if n == 0 {
            w = vec![1.0];
        } else {
            w.push(rules.prior_weight);
        }
        let total: f64 = w.iter().sum();
        w.iter_mut().for_each(|x| *x /= total);
        let mut cum = Vec::with_capacity(w.len());
        let mut acc = 0.0;
        for x in &w {
            acc += x;
            cum.push(acc);
        }
        let dims = kinds
            .iter()
            .zip(cols)
            .map(|(kind, col)| match *kind {
                DimKind::Num(dom) => num_dim(col, dom, rules, &w, kinds.len() > 1),
                DimKind::Cat(n_opts) => cat_dim(&col.values, n_opts, rules),
            })
            .collect();
        Mixture { w, cum, dims }
    }

    /// Draw `count` points: pick a kernel by weight, then every dimension from that kernel.
    /// Returns one row per point.
    pub(crate) fn sample(&self, rng: &mut Rng, count: usize) -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                let u: f64 = rng.random::<f64>() * self.cum[self.cum.len() - 1];
                let k = self.cum.partition_point(|&c| c <= u).min(self.w.len() - 1);
                self.dims.iter().map(|d| d.sample_kernel(k, rng)).collect()
            })
            .collect()
    }

    /// `ln p(x)` of each point.
    pub(crate) fn log_pdf(&self, points: &[Vec<f64>]) -> Vec<f64> {
        if let [dim] = self.dims.as_slice() {
            // One dimension: sum densities directly (the prior kernel keeps the sum positive).
            // Candidates often repeat (integers, options): each distinct value is summed once.
            let mut seen: Vec<(f64, f64)> = Vec::new();
            let mut buf = Vec::new();
            return points
                .iter()
                .map(|p| match seen.iter().find(|(x, _)| *x == p[0]) {
                    Some(&(_, l)) => l,
                    None => {
                        let l = dim.mixture_pdf(&self.w, p[0], &mut buf).ln();
                        seen.push((p[0], l));
                        l
                    }
                })
                .collect();
        }
        let ln_w: Vec<f64> = self.w.iter().map(|x| x.ln()).collect();
        let mut acc = vec![0.0; self.w.len()];
        points
            .iter()
            .map(|p| {
                acc.copy_from_slice(&ln_w);
                for (d, &x) in self.dims.iter().zip(p) {
                    d.add_kernel_log_pdf(x, &mut acc);
                }
                let m = acc.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if m == f64::NEG_INFINITY {
                    return m;
                }
                acc.iter_mut().for_each(|a| *a = fast_exp(*a - m));
                m + lane_sum(&acc).ln()
            })
            .collect()
    }
}

fn num_dim(obs: &Obs, dom: NumDomain, rules: KernelRules, w: &[f64], logs: bool) -> Dim {
    let col = &obs.values;
    let width = dom.width();
    let mut sigma = neighbour_sigmas(obs, dom, rules.consider_endpoints);
    let max_sigma = width;
    // Optuna counts the prior among the kernels here: `min(100, 1 + (n + 1))`.
    let min_sigma = if rules.magic_clip { width / (100f64).min(2.0 + col.len() as f64) } else { 1e-12 };
    sigma.iter_mut().for_each(|s| *s = s.clamp(min_sigma, max_sigma));
    let mut mu = col.to_vec();
    mu.push(0.5 * (dom.low + dom.high));
    sigma.push(max_sigma);
    let (lo, hi) = (dom.lo(), dom.hi());
    let grid = dom.step > 0.0;
    // 1 / (kernel normaliser); most bandwidths sit at the clip, so their logs are shared.
    let norm: Vec<f64> = mu
        .iter()
        .zip(&sigma)
        .map(|(&m, &s)| {
            let (a, b) = ((lo - m) / s, (hi - m) / s);
            let z = if a < -9.0 && b > 9.0 { 1.0 } else { gauss_mass(a, b) };
            if grid { 1.0 / z } else { 1.0 / (s * SQRT_2PI * z) }
        })
        .collect();
    let coef = norm.iter().zip(w).map(|(c, w)| c * w).collect();
    let ln_norm = if logs {
        let mut last = (f64::NAN, f64::NAN);
        norm.iter()
            .map(|&c| {
                if c != last.0 {
                    last = (c, c.ln());
                }
                last.1
            })
            .collect()
    } else {
        Vec::new()
    };
    Dim::Num { dom, mu, inv_sigma: sigma.iter().map(|s| 1.0 / s).collect(), coef, ln_norm }
}

/// Optuna's bandwidths: each observation's larger gap to its sorted neighbours, the ends of the
/// domain (widened by half a step on a grid) acting as neighbours of the outermost ones. Unless
/// `consider_endpoints`, the outermost observations use their inner gap only (when there are
/// at least two). Ties keep a gap of zero, which the clip then raises.
fn neighbour_sigmas(obs: &Obs, dom: NumDomain, consider_endpoints: bool) -> Vec<f64> {
    let n = obs.values.len();
    let (values, order) = (&obs.values, &obs.order);
    // Position i in [lo, sorted..., hi].
    let at = |i: usize| -> f64 {
        if i == 0 {
            dom.lo()
        } else if i == n + 1 {
            dom.hi()
        } else {
            values[order[i - 1] as usize]
        }
    };
    let mut sigma = vec![0.0; n];
    for (s, &idx) in order.iter().enumerate() {
        let i = s + 1;
        let mut v = (at(i) - at(i - 1)).max(at(i + 1) - at(i));
        if !consider_endpoints && n >= 2 {
            if s == 0 {
                v = at(2) - at(1);
            } else if s == n - 1 {
                v = at(n) - at(n - 1);
            }
        }
        sigma[idx as usize] = v;
    }
    sigma
}

fn cat_dim(col: &[f64], n_opts: usize, rules: KernelRules) -> Dim {
    let mut obs: Vec<Option<usize>> = col.iter().map(|&c| Some(c as usize)).collect();
    obs.push(None);
    // Optuna: each observation's row is `prior_weight / kernels` everywhere plus 1 on the
    // observed option, normalised; the prior row is uniform.
    let base = rules.prior_weight / obs.len() as f64;
    let row = base * n_opts as f64 + 1.0;
    Dim::Cat { n: n_opts, obs, p_hit: (base + 1.0) / row, p_miss: base / row }
}

impl Dim {
    fn sample_kernel(&self, k: usize, rng: &mut Rng) -> f64 {
        match self {
            Dim::Num { dom, mu, inv_sigma, .. } => {
                let (m, s) = (mu[k], 1.0 / inv_sigma[k]);
                let (lo, hi) = (dom.lo(), dom.hi());
                // Rejection: every centre lies in the domain and sigma <= width, so at least a
                // third of the kernel's mass is inside and this loop ends after a few draws.
                let mut x = m;
                for _ in 0..256 {
                    let z: f64 = StandardNormal.sample(rng);
                    let c = m + s * z;
                    if (lo..=hi).contains(&c) {
                        x = c;
                        break;
                    }
                }
                if dom.step > 0.0 {
                    (((x - dom.low) / dom.step).round() * dom.step + dom.low).clamp(dom.low, dom.high)
                } else {
                    x.clamp(dom.low, dom.high)
                }
            }
            Dim::Cat { n, obs, p_hit, p_miss } => match obs[k] {
                None => rng.random_range(0..*n) as f64,
                Some(c) => {
                    let u: f64 = rng.random();
                    let mut acc = 0.0;
                    for j in 0..*n {
                        acc += if j == c { *p_hit } else { *p_miss };
                        if u < acc {
                            return j as f64;
                        }
                    }
                    (*n - 1) as f64
                }
            },
        }
    }

    /// `sum_k w_k p_k(x)`; `buf` is scratch space.
    fn mixture_pdf(&self, w: &[f64], x: f64, buf: &mut Vec<f64>) -> f64 {
        match self {
            Dim::Num { dom, mu, inv_sigma, coef, .. } if dom.step == 0.0 => {
                // Hot loop of univariate TPE, in element-wise passes without a running sum so
                // the compiler vectorises the branch-free exp.
                buf.clear();
                buf.extend(mu.iter().zip(inv_sigma).map(|(&m, &is)| {
                    let z = (x - m) * is;
                    -0.5 * z * z
                }));
                buf.iter_mut().zip(coef).for_each(|(v, &c)| *v = c * fast_exp(*v));
                lane_sum(buf)
            }
            Dim::Num { dom, mu, inv_sigma, coef, .. } => {
                let (xl, xh) = ((x - dom.step / 2.0).max(dom.lo()), (x + dom.step / 2.0).min(dom.hi()));
                let mut s = 0.0;
                for ((&m, &is), &c) in mu.iter().zip(inv_sigma).zip(coef) {
                    let (a, b) = ((xl - m) * is, (xh - m) * is);
                    // Beyond 38 standard deviations the mass underflows anyway: skip the erfc.
                    if a < 38.0 && b > -38.0 {
                        s += c * gauss_mass(a, b);
                    }
                }
                s
            }
            Dim::Cat { n, obs, p_hit, p_miss } => {
                let c = x as usize;
                obs.iter()
                    .zip(w)
                    .map(|(o, wk)| {
                        wk * match o {
                            None => 1.0 / *n as f64,
                            Some(j) if *j == c => *p_hit,
                            Some(_) => *p_miss,
                        }
                    })
                    .sum()
            }
        }
    }

    /// Add `ln p_k(x)` to `acc[k]` for every kernel `k`.
    fn add_kernel_log_pdf(&self, x: f64, acc: &mut [f64]) {
        match self {
            Dim::Num { dom, mu, inv_sigma, ln_norm, .. } if dom.step == 0.0 => {
                for (((a, &m), &is), &ln) in acc.iter_mut().zip(mu).zip(inv_sigma).zip(ln_norm) {
                    let z = (x - m) * is;
                    *a += -0.5 * z * z + ln;
                }
            }
            Dim::Num { dom, mu, inv_sigma, ln_norm, .. } => {
                let (xl, xh) = ((x - dom.step / 2.0).max(dom.lo()), (x + dom.step / 2.0).min(dom.hi()));
                for (((a, &m), &is), &ln) in acc.iter_mut().zip(mu).zip(inv_sigma).zip(ln_norm) {
                    let mass = gauss_mass((xl - m) * is, (xh - m) * is);
                    *a += if mass > 0.0 {
                        mass.ln() + ln
                    } else {
                        // Far tail: ln of the Gaussian density at the nearer edge times the step.
                        let z = ((xl - m) * is).abs().min(((xh - m) * is).abs());
                        -0.5 * z * z - LN_SQRT_2PI + (dom.step * is).ln() + ln
                    };
                }
            }
            Dim::Cat { n, obs, p_hit, p_miss } => {
                let c = x as usize;
                let (lh, lm, lu) = (p_hit.ln(), p_miss.ln(), -(*n as f64).ln());
                for (a, o) in acc.iter_mut().zip(obs) {
                    *a += match o {
                        None => lu,
                        Some(j) if *j == c => lh,
                        Some(_) => lm,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_matches_std() {
        for i in 0..=7000 {
            let x = -(i as f64) * 0.1 - 1e-3 * (i % 7) as f64;
            let (a, b) = (fast_exp(x), x.exp());
            assert!((a - b).abs() <= 2e-14 * b, "x={x}: {a} vs {b}");
        }
        assert_eq!(fast_exp(0.0), 1.0);
    }

    #[test]
    fn weights_follow_optuna() {
        assert_eq!(default_weights(3), vec![1.0; 3]);
        let w = default_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-15 && (w[4] - 1.0).abs() < 1e-15 && w[1] < w[2]);
        assert_eq!(default_weights(26)[0], 1.0 / 26.0);
    }

    #[test]
    fn gauss_mass_is_accurate_in_tails() {
        assert!((gauss_mass(-1.0, 1.0) - 0.682_689_492_137_085_9).abs() < 1e-15);
        let t = gauss_mass(10.0, 11.0);
        assert!(t > 0.0 && (t - 7.619_661_958_203_077e-24).abs() < 1e-36, "{t}");
        assert_eq!(gauss_mass(1.0, 1.0), 0.0);
    }

    #[test]
    fn neighbour_bandwidths_match_optuna() {
        // Optuna 5.0, low=0, high=10, observations [1, 6, 2]: sorted [1, 2, 6] in [0, 10] ->
        // gaps give [1, 4, 4], and without endpoints the ends use their inner gaps: [1, 4, 4].
        let dom = NumDomain { low: 0.0, high: 10.0, step: 0.0 };
        assert_eq!(neighbour_sigmas(&Obs::sorted(vec![1.0, 6.0, 2.0]), dom, false), vec![1.0, 4.0, 4.0]);
        // With endpoints the outermost observations see the domain's ends 3 and 5 away.
        assert_eq!(neighbour_sigmas(&Obs::sorted(vec![5.0, 3.0, 4.0]), dom, true), vec![5.0, 3.0, 1.0]);
        assert_eq!(neighbour_sigmas(&Obs::sorted(vec![5.0, 3.0, 4.0]), dom, false), vec![1.0, 1.0, 1.0]);
        // One observation: the larger distance to an end, on a grid widened by half a step.
        let grid = NumDomain { low: 1.0, high: 9.0, step: 1.0 };
        assert_eq!(neighbour_sigmas(&Obs::sorted(vec![2.0]), grid, false), vec![7.5]);
        assert!(neighbour_sigmas(&Obs::default(), grid, false).is_empty());
    }

    #[test]
    fn densities_integrate_to_one() {
        let rules = KernelRules { prior_weight: 1.0, magic_clip: true, consider_endpoints: false };
        let obs = vec![0.1, 0.15, 0.9, 0.5, 0.52];
        let dom = NumDomain { low: 0.0, high: 1.0, step: 0.0 };
        let m = Mixture::build(&[Obs::sorted(obs.clone())], &[DimKind::Num(dom)], rules);
        let n = 20_000;
        let pts: Vec<Vec<f64>> = (0..n).map(|i| vec![(i as f64 + 0.5) / n as f64]).collect();
        let total: f64 = m.log_pdf(&pts).iter().map(|l| l.exp()).sum::<f64>() / n as f64;
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        // The multivariate path (log-sum-exp over kernels) agrees with the direct sum.
        let m2 = Mixture::build(
            &[Obs::sorted(obs.clone()), Obs::sorted(vec![0.0, 1.0, 1.0, 2.0, 0.0])],
            &[DimKind::Num(dom), DimKind::Cat(3)],
            rules,
        );
        let p: f64 = (0..3)
            .map(|c| {
                let pts: Vec<Vec<f64>> = (0..n).map(|i| vec![(i as f64 + 0.5) / n as f64, c as f64]).collect();
                m2.log_pdf(&pts).iter().map(|l| l.exp()).sum::<f64>() / n as f64
            })
            .sum();
        assert!((p - 1.0).abs() < 1e-6, "{p}");
        // Integer grid: masses over the grid sum to one.
        let dom = NumDomain { low: 1.0, high: 9.0, step: 1.0 };
        let m = Mixture::build(&[Obs::sorted(vec![2.0, 2.0, 9.0, 5.0])], &[DimKind::Num(dom)], rules);
        let pts: Vec<Vec<f64>> = (1..=9).map(|i| vec![i as f64]).collect();
        let total: f64 = m.log_pdf(&pts).iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-12, "{total}");
    }
}

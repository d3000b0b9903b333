//! Budgeted treatment policies: assign each customer one arm (or none) to maximise expected
//! incremental value, and estimate any policy's value off-policy on logged (randomised) data.
//!
//! A customer's expected net gain from arm `a` versus control is
//! `value_a * mu_a(x) - cost_a - value_0 * mu_0(x)`, where `mu_a` is the predicted outcome under
//! `a` (the control prediction plus the predicted effect). Without a budget each customer gets
//! the arm with the largest positive gain. With a budget (a share of customers treated or a total
//! cost) the assignment maximises total gain by a Lagrangian relaxation: each customer takes the
//! arm maximising `gain - lambda * weight` (weight = cost, or 1 for the treated share), and
//! `lambda` is the smallest value, found by bisection, that keeps the policy within budget.

use super::config::Budget;

/// The inputs of an assignment for `n` customers and `arms + 1` arms (control = 0).
pub struct Gains {
    /// `gain[row][a]`: expected net gain of arm `a` versus control (`gain[row][0] = 0`).
    pub gain: Vec<Vec<f64>>,
    /// Cost of each arm per customer.
    pub cost: Vec<f64>,
}

/// An assignment and what it spends.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// Arm per customer (0 = control, no treatment).
    pub arm: Vec<usize>,
    /// The Lagrange multiplier of the budget (0 when the budget does not bind).
    pub lambda: f64,
}

fn choose(g: &Gains, lambda: f64, weight: &dyn Fn(usize) -> f64) -> Vec<usize> {
    g.gain
        .iter()
        .map(|row| {
            let mut best = (0, 0.0);
            for (a, &v) in row.iter().enumerate().skip(1) {
                let net = v - lambda * weight(a);
                if net > best.1 {
                    best = (a, net);
                }
            }
            best.0
        })
        .collect()
}

fn usage(arm: &[usize], weight: &dyn Fn(usize) -> f64) -> f64 {
    arm.iter().map(|&a| weight(a)).sum()
}

/// Assign arms to maximise total expected gain within `budget` (over these `n` customers).
pub fn optimise(g: &Gains, budget: Budget) -> Assignment {
    let n = g.gain.len();
    let (limit, weight): (f64, Box<dyn Fn(usize) -> f64>) = match budget {
        Budget::None => return Assignment { arm: choose(g, 0.0, &|_| 0.0), lambda: 0.0 },
        Budget::TreatedShare(s) => ((s * n as f64).floor(), Box::new(|a| f64::from(u8::from(a > 0)))),
        Budget::TotalCost(c) => (c, Box::new(|a| g.cost[a])),
    };
    let free = choose(g, 0.0, weight.as_ref());
    if usage(&free, weight.as_ref()) <= limit {
        return Assignment { arm: free, lambda: 0.0 };
    }
    let max_gain = g.gain.iter().flatten().fold(0.0f64, |m, &v| m.max(v));
    let min_weight = (1..g.cost.len()).map(&weight).filter(|&w| w > 0.0).fold(f64::INFINITY, f64::min);
    let (mut lo, mut hi) = (0.0, if min_weight.is_finite() { 2.0 * max_gain / min_weight + 1.0 } else { 1.0 });
    for _ in 0..100 {
        let mid = (lo + hi) / 2.0;
        if usage(&choose(g, mid, weight.as_ref()), weight.as_ref()) <= limit {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    let mut arm = choose(g, hi, weight.as_ref());
    // Fill what the relaxation leaves of the budget: best remaining gain per weight first.
    let mut left = limit - usage(&arm, weight.as_ref());
    let mut upgrades: Vec<(f64, usize, usize, f64)> = Vec::new();
    for (i, row) in g.gain.iter().enumerate() {
        let cur = arm[i];
        for a in 1..row.len() {
            let extra_w = weight(a) - weight(cur);
            let extra_g = row[a] - row[cur];
            if extra_g > 0.0 && extra_w > 0.0 {
                upgrades.push((extra_g / extra_w, i, a, extra_w));
            }
        }
    }
    upgrades.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut touched = vec![false; n];
    for (_, i, a, w) in upgrades {
        if !touched[i] && w <= left + 1e-9 {
            left -= w;
            arm[i] = a;
            touched[i] = true;
        }
    }
    Assignment { arm, lambda: hi }
}

/// Logged data to evaluate a policy on.
pub struct Logged<'a> {
    /// Arm each customer received (0 = control).
    pub arm: &'a [usize],
    /// Observed outcome.
    pub y: &'a [f64],
    /// `propensity[row][a]`: probability the logging policy gave arm `a`.
    pub propensity: &'a [Vec<f64>],
    /// Value per unit of outcome, by arm.
    pub value: &'a [f64],
    /// Cost per customer, by arm.
    pub cost: &'a [f64],
    /// `mu[a][row]`: an outcome model's prediction under arm `a`, for the doubly robust estimate.
    pub mu: Option<&'a [Vec<f64>]>,
}

/// Off-policy estimates of a policy's mean net value per customer (value of the outcome minus
/// the cost of the arm given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Inverse-propensity weighted.
    pub ipw: f64,
    /// Doubly robust (when an outcome model exists).
    pub dr: Option<f64>,
}

/// Estimate the value of `policy` on the rows `rows` of `log` (with repetitions, for bootstrap).
pub fn evaluate(log: &Logged<'_>, policy: &[usize], rows: &[usize]) -> Estimate {
    let n = rows.len() as f64;
    let (mut ipw, mut dr) = (0.0, 0.0);
    for &i in rows {
        let a = policy[i];
        let cost = log.cost[a];
        let matched = log.arm[i] == a;
        let w = if matched { 1.0 / log.propensity[i][a] } else { 0.0 };
        ipw += w * log.value[a] * log.y[i] - cost;
        if let Some(mu) = log.mu {
            let m = mu[a][i];
            dr += log.value[a] * (m + w * (log.y[i] - m)) - cost;
        }
    }
    Estimate { ipw: ipw / n, dr: log.mu.map(|_| dr / n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gains() -> Gains {
        Gains {
            gain: vec![vec![0.0, 5.0, 1.0], vec![0.0, -1.0, 2.0], vec![0.0, 1.0, 4.0], vec![0.0, -3.0, -1.0]],
            cost: vec![0.0, 1.0, 2.0],
        }
    }

    #[test]
    fn unconstrained_takes_every_positive_gain() {
        let a = optimise(&gains(), Budget::None);
        assert_eq!(a.arm, [1, 2, 2, 0]);
    }

    #[test]
    fn budgets_bind_and_keep_the_best_customers() {
        let by_share = optimise(&gains(), Budget::TreatedShare(0.5));
        assert_eq!(by_share.arm, [1, 0, 2, 0]);
        let by_cost = optimise(&gains(), Budget::TotalCost(3.0));
        assert!(by_cost.arm.iter().map(|&a| gains().cost[a]).sum::<f64>() <= 3.0);
        assert_eq!(by_cost.arm, [1, 0, 2, 0]);
    }

    #[test]
    fn ipw_and_dr_estimates_of_a_known_logging_policy() {
        // Two arms, propensity 1/2; treat-all's IPW value is twice the mean treated outcome / 2.
        let arm = [0, 1, 0, 1];
        let y = [1.0, 3.0, 0.0, 1.0];
        let prop = vec![vec![0.5, 0.5]; 4];
        let mu = vec![vec![0.5; 4], vec![2.0; 4]];
        let log = Logged { arm: &arm, y: &y, propensity: &prop, value: &[1.0, 1.0], cost: &[0.0, 0.5], mu: Some(&mu) };
        let rows: Vec<usize> = (0..4).collect();
        let all = evaluate(&log, &[1, 1, 1, 1], &rows);
        assert!((all.ipw - ((3.0 + 1.0) * 2.0 / 4.0 - 0.5)).abs() < 1e-12);
        assert!((all.dr.unwrap() - (2.0 + (2.0 * 1.0 - 2.0 * 1.0) / 4.0 - 0.5)).abs() < 1e-12);
        let none = evaluate(&log, &[0, 0, 0, 0], &rows);
        assert!((none.ipw - 0.5).abs() < 1e-12);
    }
}

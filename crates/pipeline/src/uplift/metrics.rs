//! Uplift metrics with the definitions of scikit-uplift (`sklift.metrics`): the Qini and uplift
//! curves, `qini_auc_score`, `uplift_auc_score` (both normalised by the perfect curve after
//! removing the random baseline) and `uplift_at_k` with the `overall` strategy.
//!
//! Rows are ranked by predicted uplift, highest first; ties are ordered as numpy's
//! `argsort(kind="mergesort")[::-1]` orders them (the later row first), and the curves take one
//! point per distinct score, so the figures match scikit-uplift's to rounding. The fixture in
//! `tests/fixtures/sklift_metrics.json` (written by `scripts/sklift_check.py` with scikit-uplift)
//! pins this. `treatment` is 1 for the treated rows and 0 for control.

use promoml_core::{Error, Result};

fn check(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Result<()> {
    if y.len() != uplift.len() || y.len() != treatment.len() {
        return Err(Error::data(format!(
            "uplift metrics need as many outcomes ({}), scores ({}) and treatment flags ({})",
            y.len(),
            uplift.len(),
            treatment.len()
        )));
    }
    let treated = treatment.iter().filter(|&&t| t == 1).count();
    if treated == 0 || treated == treatment.len() {
        return Err(Error::data("uplift metrics need both treated and control rows"));
    }
    if uplift.iter().any(|u| !u.is_finite()) {
        return Err(Error::data("uplift scores must be finite"));
    }
    Ok(())
}

/// Row order by descending score, ties broken as numpy's stable argsort reversed (later row
/// first).
fn order(uplift: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..uplift.len()).collect();
    // `partial_cmp`, not `total_cmp`: numpy ranks -0.0 and 0.0 as equal (scores are finite).
    idx.sort_by(|&a, &b| uplift[a].partial_cmp(&uplift[b]).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
    idx.reverse();
    idx
}

/// Cumulative counts at each distinct-score threshold: (rows, treated, treated outcome sum,
/// control outcome sum).
fn cumulative(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Vec<(f64, f64, f64, f64)> {
    let idx = order(uplift);
    let mut out = Vec::new();
    let (mut nt, mut yt, mut yc) = (0.0, 0.0, 0.0);
    for (pos, &i) in idx.iter().enumerate() {
        if treatment[i] == 1 {
            nt += 1.0;
            yt += y[i];
        } else {
            yc += y[i];
        }
        let last = pos + 1 == idx.len();
        if last || uplift[idx[pos + 1]] != uplift[i] {
            out.push(((pos + 1) as f64, nt, yt, yc));
        }
    }
    out
}

fn start_at_origin(mut x: Vec<f64>, mut v: Vec<f64>) -> (Vec<f64>, Vec<f64>) {
    if x.is_empty() || v[0] != 0.0 || x[0] != 0.0 {
        x.insert(0, 0.0);
        v.insert(0, 0.0);
    }
    (x, v)
}

/// The Qini curve: at each cut, treated responders minus control responders scaled by the ratio
/// of treated to control rows. Returns (rows targeted, curve value), starting at (0, 0).
pub fn qini_curve(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Result<(Vec<f64>, Vec<f64>)> {
    check(y, uplift, treatment)?;
    let (x, v) = cumulative(y, uplift, treatment)
        .into_iter()
        .map(|(n, nt, yt, yc)| {
            let nc = n - nt;
            (n, yt - if nc != 0.0 { yc * nt / nc } else { 0.0 })
        })
        .unzip();
    Ok(start_at_origin(x, v))
}

/// The uplift curve: at each cut, the difference of mean outcomes (treated minus control)
/// times the rows targeted. Returns (rows targeted, curve value), starting at (0, 0).
pub fn uplift_curve(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Result<(Vec<f64>, Vec<f64>)> {
    check(y, uplift, treatment)?;
    let (x, v) = cumulative(y, uplift, treatment)
        .into_iter()
        .map(|(n, nt, yt, yc)| {
            let nc = n - nt;
            let mt = if nt != 0.0 { yt / nt } else { 0.0 };
            let mc = if nc != 0.0 { yc / nc } else { 0.0 };
            (n, (mt - mc) * n)
        })
        .unzip();
    Ok(start_at_origin(x, v))
}

/// Trapezoidal area under a curve (sklearn's `auc`).
fn area(x: &[f64], v: &[f64]) -> f64 {
    x.windows(2).zip(v.windows(2)).map(|(x, v)| (x[1] - x[0]) * (v[0] + v[1]) / 2.0).sum()
}

fn normalised(actual: (Vec<f64>, Vec<f64>), perfect: (Vec<f64>, Vec<f64>)) -> Result<f64> {
    let (xp, vp) = perfect;
    let (xl, vl) = (*xp.last().expect("non-empty"), *vp.last().expect("non-empty"));
    let baseline = xl * vl / 2.0;
    let best = area(&xp, &vp) - baseline;
    if best == 0.0 || !best.is_finite() {
        return Err(Error::data("the perfect uplift curve has no area above random: the score is undefined"));
    }
    Ok((area(&actual.0, &actual.1) - baseline) / best)
}

/// `sklift.metrics.qini_auc_score(y, uplift, treatment, negative_effect=True)`: the area between
/// the Qini curve and the random line, divided by that of the perfect Qini curve. The outcome
/// may be binary or continuous (scikit-uplift accepts binary outcomes only; the formula is the
/// same).
pub fn qini_auc_score(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Result<f64> {
    let actual = qini_curve(y, uplift, treatment)?;
    let perfect_scores: Vec<f64> = y.iter().zip(treatment).map(|(&y, &t)| if t == 1 { y } else { -y }).collect();
    let perfect = qini_curve(y, &perfect_scores, treatment)?;
    normalised(actual, perfect)
}

/// `sklift.metrics.uplift_auc_score(y, uplift, treatment)`: the area between the uplift curve
/// and the random line, divided by that of the perfect uplift curve. Binary outcomes only.
pub fn uplift_auc_score(y: &[f64], uplift: &[f64], treatment: &[u8]) -> Result<f64> {
    if y.iter().any(|&v| v != 0.0 && v != 1.0) {
        return Err(Error::data("uplift_auc_score needs a binary (0/1) outcome"));
    }
    let actual = uplift_curve(y, uplift, treatment)?;
    let control_responders = y.iter().zip(treatment).filter(|&(&y, &t)| y == 1.0 && t == 0).count();
    let treated_non_responders = y.iter().zip(treatment).filter(|&(&y, &t)| y == 0.0 && t == 1).count();
    let perfect_scores: Vec<f64> = y
        .iter()
        .zip(treatment)
        .map(|(&y, &t)| {
            let summand = if control_responders > treated_non_responders { y } else { f64::from(t) };
            2.0 * f64::from(u8::from(y == f64::from(t))) + summand
        })
        .collect();
    let perfect = uplift_curve(y, &perfect_scores, treatment)?;
    normalised(actual, perfect)
}

/// `sklift.metrics.uplift_at_k(y, uplift, treatment, strategy="overall", k)`: among the
/// `int(n * k)` rows with the highest predicted uplift, mean outcome of the treated minus mean
/// outcome of the control rows.
pub fn uplift_at_k(y: &[f64], uplift: &[f64], treatment: &[u8], k: f64) -> Result<f64> {
    check(y, uplift, treatment)?;
    if !(k > 0.0 && k < 1.0) {
        return Err(Error::data(format!("uplift_at_k needs 0 < k < 1, got {k}")));
    }
    let size = (y.len() as f64 * k) as usize;
    let idx = order(uplift);
    let (mut nt, mut yt, mut nc, mut yc) = (0.0, 0.0, 0.0, 0.0);
    for &i in &idx[..size] {
        if treatment[i] == 1 {
            nt += 1.0;
            yt += y[i];
        } else {
            nc += 1.0;
            yc += y[i];
        }
    }
    if nt == 0.0 || nc == 0.0 {
        return Err(Error::data(format!(
            "the top {size} rows by predicted uplift hold {nt} treated and {nc} control rows: uplift@k is undefined"
        )));
    }
    Ok(yt / nt - yc / nc)
}

/// Observed average treatment effect: mean outcome of treated rows minus that of control rows.
pub fn ate(y: &[f64], treatment: &[u8]) -> Result<f64> {
    let (mut nt, mut yt, mut nc, mut yc) = (0.0, 0.0, 0.0, 0.0);
    for (&v, &t) in y.iter().zip(treatment) {
        if t == 1 {
            nt += 1.0;
            yt += v;
        } else {
            nc += 1.0;
            yc += v;
        }
    }
    if nt == 0.0 || nc == 0.0 {
        return Err(Error::data("the average treatment effect needs treated and control rows"));
    }
    Ok(yt / nt - yc / nc)
}

/// A curve cut down to at most `points` points (always keeping the first and the last), as
/// `[x, y]` pairs for the report.
pub fn thin(x: &[f64], v: &[f64], points: usize) -> Vec<[f64; 2]> {
    let n = x.len();
    if n <= points.max(2) {
        return x.iter().zip(v).map(|(&a, &b)| [a, b]).collect();
    }
    let mut out: Vec<[f64; 2]> = Vec::with_capacity(points);
    for j in 0..points {
        let i = (j * (n - 1)) / (points - 1);
        if out.last().is_none_or(|l| l[0] != x[i]) {
            out.push([x[i], v[i]]);
        }
    }
    out
}

/// Percentile (linear interpolation, as numpy's default) of sorted values.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perfect_ranking_scores_one_and_reverse_scores_below_zero() {
        // Treated responders first, control responders last: the perfect Qini order.
        let y = [1., 1., 0., 0., 0., 1., 0., 1.];
        let t = [1, 1, 1, 0, 1, 0, 0, 0];
        let perfect: Vec<f64> = y.iter().zip(&t).map(|(&y, &t)| if t == 1 { y } else { -y }).collect();
        assert!((qini_auc_score(&y, &perfect, &t).unwrap() - 1.0).abs() < 1e-12);
        let reversed: Vec<f64> = perfect.iter().map(|v| -v).collect();
        assert!(qini_auc_score(&y, &reversed, &t).unwrap() < 0.0);
        assert_eq!(ate(&y, &t).unwrap(), 0.5 - 0.5);
        assert!(uplift_at_k(&y, &[0.0; 8], &t, 0.5).is_ok());
        assert!(qini_auc_score(&y, &perfect, &[1; 8]).is_err());
        assert!(uplift_auc_score(&[0.5; 8], &perfect, &t).is_err());
    }

    #[test]
    fn matches_scikit_uplift_fixture() {
        let v: serde_json::Value = serde_json::from_str(include_str!("sklift_fixture.json")).unwrap();
        let cases = v["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 4);
        let nums = |c: &serde_json::Value, k: &str| -> Vec<f64> {
            c[k].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect()
        };
        for (i, c) in cases.iter().enumerate() {
            let (y, u) = (nums(c, "y"), nums(c, "uplift"));
            let t: Vec<u8> = nums(c, "treatment").iter().map(|&x| x as u8).collect();
            for (name, ours) in [
                ("qini_auc", qini_auc_score(&y, &u, &t).unwrap()),
                ("uplift_auc", uplift_auc_score(&y, &u, &t).unwrap()),
                ("uplift_at_30", uplift_at_k(&y, &u, &t, 0.3).unwrap()),
            ] {
                let theirs = c[name].as_f64().unwrap();
                assert!((ours - theirs).abs() < 1e-12, "case {i} {name}: ours {ours}, scikit-uplift {theirs}");
            }
        }
    }

    #[test]
    fn thin_keeps_ends() {
        let x: Vec<f64> = (0..1000).map(f64::from).collect();
        let v = x.clone();
        let c = thin(&x, &v, 11);
        assert_eq!(c.len(), 11);
        assert_eq!(c[0], [0.0, 0.0]);
        assert_eq!(c[10], [999.0, 999.0]);
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }
}

//! The supervised objective: a candidate model fitted on a fold's training rows and scored on
//! its validation rows by every metric of the task; a fold leaves its validation predictions,
//! which the task puts back together as out-of-fold predictions for the ensemble and the
//! decision threshold.

use crate::plan::Pipeline;
use crate::search::{self, Found, Objective, fold_context, score_all};
use ndarray::Array2;
use promoml_core::{Dataset, Metric, Params, Predictions, Result, SearchSpace};
use promoml_report::Scores;
use std::time::Instant;

/// One cross-validation fold, prepared: fitted on its training rows only.
pub struct Fold {
    /// The fold's training rows, cleaned and featurised.
    pub train: Dataset,
    /// Its validation rows, transformed by the fold's preparation.
    pub valid: Dataset,
    /// Indices of the validation rows among the training split's rows.
    pub rows: Vec<usize>,
}

/// The candidates of a supervised pipeline on its prepared folds.
pub struct Supervised<'a> {
    p: &'a Pipeline,
    folds: &'a [Fold],
    metrics: Vec<Metric>,
    /// Rows and features of a fold's training rows, for cost estimates.
    shape: (usize, usize),
}

impl<'a> Supervised<'a> {
    /// The objective of `p` on `folds`.
    pub fn new(p: &'a Pipeline, folds: &'a [Fold]) -> Supervised<'a> {
        let shape = folds.first().map_or((1, 1), |f| (f.train.n_rows(), f.train.n_features()));
        Supervised { p, folds, metrics: Metric::for_task(p.task), shape }
    }
}

impl Objective for Supervised<'_> {
    type Output = Predictions;

    fn candidates(&self) -> usize {
        self.p.candidates.len()
    }
    fn name(&self, ci: usize) -> &str {
        &self.p.candidates[ci].name
    }
    fn trials(&self, ci: usize) -> usize {
        self.p.candidates[ci].trials
    }
    fn space(&self, ci: usize) -> &SearchSpace {
        &self.p.candidates[ci].space
    }
    fn cost(&self, ci: usize, params: &Params) -> f64 {
        self.p.candidates[ci].model.cost(self.shape.0, self.shape.1, params)
    }
    fn folds(&self) -> usize {
        self.folds.len()
    }
    fn ranking(&self) -> (&str, bool) {
        (self.p.search.metric.name(), self.p.search.metric.higher_is_better())
    }
    fn fit_fold(
        &self,
        ci: usize,
        number: usize,
        f: usize,
        params: &Params,
        deadline: Option<Instant>,
    ) -> Result<(Scores, Predictions)> {
        let (p, cand, fold) = (self.p, &self.p.candidates[ci], &self.folds[f]);
        let ctx = fold_context(p, &cand.name, (ci, number, f, self.folds.len()), deadline);
        let fitted = cand.model.fit(&fold.train, params, &ctx)?;
        let pred = fitted.predict(&fold.valid)?;
        pred.check(fold.valid.n_rows(), cand.model.kind())?;
        let scores = score_all(&self.metrics, fold.valid.target("validation")?, &pred)?;
        Ok((scores, pred))
    }
}

/// A supervised candidate's best trial, with its out-of-fold predictions once assembled.
pub type Best = Found<Predictions>;

/// Out-of-fold predictions: each fold's validation predictions put back at their rows.
pub fn assemble_oof(n: usize, folds: &[Fold], preds: &[Predictions]) -> Predictions {
    match &preds[0] {
        Predictions::Proba(first) => {
            let mut out = Array2::zeros((n, first.ncols()));
            for (fold, pred) in folds.iter().zip(preds) {
                if let Predictions::Proba(p) = pred {
                    for (r, &i) in fold.rows.iter().enumerate() {
                        out.row_mut(i).assign(&p.row(r));
                    }
                }
            }
            Predictions::Proba(out)
        }
        Predictions::Values(_) => {
            let mut out = vec![0.0; n];
            for (fold, pred) in folds.iter().zip(preds) {
                if let Predictions::Values(v) = pred {
                    for (r, &i) in fold.rows.iter().enumerate() {
                        out[i] = v[r];
                    }
                }
            }
            Predictions::Values(out)
        }
    }
}

/// `best`'s out-of-fold predictions on the `n` training rows, refitting its folds with the
/// trial's own seeds when the search did not keep them (a replayed trial, or one another
/// process ran).
pub fn out_of_fold(p: &Pipeline, ci: usize, best: &mut Best, folds: &[Fold], n: usize) -> Result<Predictions> {
    search::recompute(&Supervised::new(p, folds), ci, best)?;
    Ok(assemble_oof(n, folds, best.outputs.as_ref().expect("recomputed")))
}

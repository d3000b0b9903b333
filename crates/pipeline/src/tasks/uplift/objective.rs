//! The uplift objective: every meta-learner of `[uplift] learners` over every candidate base
//! model is one candidate of the search (`s-learner/forust`, ...), fitted on a fold's training
//! rows and scored on its held-out rows by the uplift metrics (Qini, uplift AUC, uplift at k),
//! averaged over the treatment arms. A fold leaves its predicted effects, which the ensemble
//! and the policy's calibration use.

use super::{Part, metric_key, score, with_outcomes};
use crate::plan::Pipeline;
use crate::search::{Objective, fold_context};
use crate::uplift::config::{LearnerKind, UpliftPlan, models_effects};
use crate::uplift::learners::{self, Effects};
use crate::uplift::model::PolicyRule;
use promoml_core::{Params, Result, SearchSpace};
use promoml_report::Scores;
use std::time::Instant;

/// One cross-validation fold of an uplift task.
pub(crate) struct Fold {
    pub(crate) train: Part,
    pub(crate) valid: Part,
}

/// A meta-learner over a base model: one candidate of the uplift search.
pub(crate) struct Pair {
    pub(crate) learner: LearnerKind,
    /// Index of the base model among the pipeline's candidates.
    pub(crate) ci: usize,
    /// `<learner>-learner/<model>`.
    pub(crate) name: String,
}

/// The uplift candidates of `p` on its prepared folds.
pub(crate) struct Uplift<'a> {
    p: &'a Pipeline,
    u: &'a UpliftPlan,
    folds: &'a [Fold],
    n_arms: usize,
    key: String,
    pub(crate) pairs: Vec<Pair>,
    /// Rows and features of a fold's training rows, for cost estimates.
    shape: (usize, usize),
    /// The policy rule (effect levels uncalibrated) scoring `policy_value`, with a `[policy]`.
    pub(crate) rule: Option<PolicyRule>,
}

impl<'a> Uplift<'a> {
    /// Learner-major order (every model under the first learner, then the second, ...), so that
    /// a pair's index (which seeds its trials) is the same as before the one search loop.
    pub(crate) fn new(
        p: &'a Pipeline,
        u: &'a UpliftPlan,
        folds: &'a [Fold],
        n_arms: usize,
        rule: Option<PolicyRule>,
    ) -> Uplift<'a> {
        // Models of effects (tasks include uplift) are candidates of their own, after the
        // meta-learner pairs.
        let direct = |ci: &usize| models_effects(p.candidates[*ci].model.as_ref());
        let base: Vec<usize> = (0..p.candidates.len()).filter(|ci| !direct(ci)).collect();
        let mut pairs: Vec<Pair> = u
            .learners
            .iter()
            .flat_map(|&learner| {
                base.iter().map(move |&ci| Pair {
                    learner,
                    ci,
                    name: format!("{}-learner/{}", learner.name(), p.candidates[ci].name),
                })
            })
            .collect();
        pairs.extend((0..p.candidates.len()).filter(direct).map(|ci| Pair {
            learner: LearnerKind::Direct,
            ci,
            name: p.candidates[ci].name.clone(),
        }));
        let shape = folds.first().map_or((1, 1), |f| (f.train.ds.n_rows(), f.train.ds.n_features()));
        Uplift { p, u, folds, n_arms, key: metric_key(u.metric, u.k), pairs, shape, rule }
    }
}

impl Objective for Uplift<'_> {
    type Output = Effects;

    fn candidates(&self) -> usize {
        self.pairs.len()
    }
    fn name(&self, ci: usize) -> &str {
        &self.pairs[ci].name
    }
    fn trials(&self, ci: usize) -> usize {
        self.p.candidates[self.pairs[ci].ci].trials
    }
    fn space(&self, ci: usize) -> &SearchSpace {
        &self.p.candidates[self.pairs[ci].ci].space
    }
    fn cost(&self, ci: usize, params: &Params) -> f64 {
        let pair = &self.pairs[ci];
        let one = self.p.candidates[pair.ci].model.cost(self.shape.0, self.shape.1, params);
        // Base models a learner fits: one (S, class transformation), one per arm with control
        // (T), and as many again on imputed effects (X); the DR-learner fits three rotations of its
        // models, each on a third of the rows.
        let models = match pair.learner {
            LearnerKind::S | LearnerKind::ClassTransformation | LearnerKind::Direct => 1,
            LearnerKind::T => self.n_arms + 1,
            LearnerKind::X => 2 * (self.n_arms + 1),
            // Three rotations of (control and arm outcome models, effect regressor), each on a
            // third of the rows.
            LearnerKind::Dr => 1 + 2 * self.n_arms,
            // Five outcome models on four fifths of the rows, then one effect model per arm.
            LearnerKind::R => 4 + self.n_arms,
        };
        one * models as f64
    }
    fn folds(&self) -> usize {
        self.folds.len()
    }
    fn ranking(&self) -> (&str, bool) {
        (&self.key, true)
    }
    fn fit_fold(
        &self,
        ci: usize,
        number: usize,
        f: usize,
        params: &Params,
        deadline: Option<Instant>,
    ) -> Result<(Scores, Effects)> {
        let (p, u, pair, fold) = (self.p, self.u, &self.pairs[ci], &self.folds[f]);
        let ctx = fold_context(p, &pair.name, (ci, number, f, self.folds.len()), deadline);
        let model = p.candidates[pair.ci].model.as_ref();
        let train = fold.train.view(self.n_arms);
        let fitted = learners::fit(pair.learner, model, params, u.outcome, &train, &ctx)?;
        let eff = with_outcomes(fitted.effects(&fold.valid.ds)?, (model, params), u, &train, &fold.valid.ds, &ctx)?;
        let y = fold.valid.ds.target("validation")?;
        Ok((score(&eff, y, (&fold.valid.arm, &fold.valid.propensity), u, self.rule.as_ref())?, eff))
    }
}

//! The fitted final model of an uplift pipeline as one scorer: its meta-learner(s), the outcome
//! model the policy needs when the learners have none, and the policy rule. The run scores its
//! test rows with these functions and the model artifact reloads them, so `promoml predict`
//! gives exactly the run's effects and assignments.

use super::config::Budget;
use super::learners::{self, Effects, FittedLearner};
use super::policy::{self, Gains};
use promoml_core::{Dataset, Error, FittedModel, Result};
use serde::{Deserialize, Serialize};

/// How the policy turns predicted outcomes into one arm per customer: value per unit of
/// outcome and cost per customer by arm (control first), the budget, and the calibration of
/// effect levels per treatment arm (`intercept + slope * effect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRule {
    /// Value per unit of outcome, by arm (control first).
    pub value: Vec<f64>,
    /// Cost per customer, by arm (control first).
    pub cost: Vec<f64>,
    /// The budget, applied to each batch of customers scored together.
    pub budget: Budget,
    /// `(intercept, slope)` per treatment arm; `(0, 1)` leaves effects as predicted.
    pub calibration: Vec<(f64, f64)>,
}

impl PolicyRule {
    /// Outcomes with calibrated effects: `mu_0 + intercept + slope * (mu_a - mu_0)` per
    /// treatment arm, control unchanged.
    pub fn calibrated(&self, mu: &[Vec<f64>]) -> Vec<Vec<f64>> {
        let mut out = mu.to_vec();
        for a in 1..mu.len() {
            let (c0, c1) = self.calibration[a - 1];
            for i in 0..mu[0].len() {
                out[a][i] = mu[0][i] + c0 + c1 * (mu[a][i] - mu[0][i]);
            }
        }
        out
    }

    /// Net gain of every arm versus control per customer, for outcomes `mu[arm][row]`:
    /// `value_a * mu_a - cost_a - value_0 * mu_0`.
    pub fn gains(&self, mu: &[Vec<f64>]) -> Gains {
        let n = mu.first().map_or(0, Vec::len);
        let (value, cost) = (&self.value, &self.cost);
        Gains {
            gain: (0..n)
                .map(|i| (0..value.len()).map(|a| value[a] * mu[a][i] - cost[a] - value[0] * mu[0][i]).collect())
                .collect(),
            cost: cost.clone(),
        }
    }

    /// The assignment (arm per customer, 0 = control) under the budget over these customers,
    /// and each customer's expected net gain from its arm, for calibrated outcomes `mu`
    /// ([`PolicyRule::calibrated`]).
    pub fn choose(&self, mu: &[Vec<f64>]) -> (policy::Assignment, Vec<f64>) {
        let g = self.gains(mu);
        let assignment = policy::optimise(&g, self.budget);
        let gain = assignment.arm.iter().enumerate().map(|(i, &a)| g.gain[i][a]).collect();
        (assignment, gain)
    }

    /// [`PolicyRule::choose`] from uncalibrated outcomes `mu`: the arms and their gains.
    pub fn assign(&self, mu: &[Vec<f64>]) -> (Vec<usize>, Vec<f64>) {
        let (assignment, gain) = self.choose(&self.calibrated(mu));
        (assignment.arm, gain)
    }
}

/// What an uplift model predicts for some customers.
#[derive(Debug, Clone, PartialEq)]
pub struct UpliftScores {
    /// `tau[a][row]`: predicted effect of treatment arm `a + 1` versus control.
    pub tau: Vec<Vec<f64>>,
    /// With a policy: the chosen arm per customer (0 = control) and its expected net gain.
    pub policy: Option<(Vec<usize>, Vec<f64>)>,
}

/// The final model of an uplift pipeline, fitted.
pub struct UpliftModel {
    /// Leaderboard name.
    pub name: String,
    /// Arm names, control first.
    pub arms: Vec<String>,
    /// The meta-learners whose effects are averaged (one for a single learner), each with the
    /// registry kind of its base models.
    pub members: Vec<(String, FittedLearner)>,
    /// Control outcome model (registry kind, model), fitted when the learners have no outcome
    /// model and the policy needs outcome levels.
    pub control: Option<(String, Box<dyn FittedModel>)>,
    /// The policy rule, for pipelines with a `[policy]`.
    pub policy: Option<PolicyRule>,
}

impl UpliftModel {
    /// The members' effects on `ds` (their mean for an ensemble).
    pub fn effects(&self, ds: &Dataset) -> Result<Effects> {
        let all: Vec<Effects> = self.members.iter().map(|(_, m)| m.effects(ds)).collect::<Result<_>>()?;
        Ok(combine(all))
    }

    /// Outcomes under every arm (control first): the learners' outcome model, or the control
    /// model plus the effects.
    pub fn outcomes(&self, eff: &Effects, ds: &Dataset) -> Result<Vec<Vec<f64>>> {
        if let Some(m) = &eff.mu {
            return Ok(m.clone());
        }
        let (_, control) = self.control.as_ref().ok_or_else(|| {
            Error::model(&self.name, "the learners have no outcome model and no control outcome model was fitted")
        })?;
        Ok(with_control(learners::predict_control(control.as_ref(), ds)?, eff))
    }

    /// Effects and, with a policy, the chosen arms for `ds`'s customers.
    pub fn score(&self, ds: &Dataset) -> Result<UpliftScores> {
        let eff = self.effects(ds)?;
        let policy = match &self.policy {
            Some(rule) => Some(rule.assign(&self.outcomes(&eff, ds)?)),
            None => None,
        };
        Ok(UpliftScores { tau: eff.tau, policy })
    }
}

/// One learner's effects as they are; several averaged ([`Effects::average`]).
pub fn combine(mut all: Vec<Effects>) -> Effects {
    if all.len() == 1 { all.pop().expect("one") } else { Effects::average(&all.iter().collect::<Vec<_>>()) }
}

/// Outcomes under every arm from control outcomes `mu0` and effects: `[mu0, mu0 + tau_1, ...]`.
pub fn with_control(mu0: Vec<f64>, eff: &Effects) -> Vec<Vec<f64>> {
    let mut v = vec![mu0.clone()];
    for t in &eff.tau {
        v.push(mu0.iter().zip(t).map(|(a, b)| a + b).collect());
    }
    v
}

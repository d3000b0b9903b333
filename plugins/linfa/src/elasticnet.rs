//! `linfa.elastic_net`: least squares with L1 and L2 penalties, from linfa-elasticnet.

use crate::common::{Standardizer, check_features, check_task, value_targets};
use linfa::prelude::*;
use linfa_elasticnet::ElasticNet as LinfaNet;
use ndarray::Array1;
use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Result, SearchSpace,
    Task,
};

const KIND: &str = "linfa.elastic_net";

/// Elastic net regression (linfa-elasticnet, coordinate descent) on standardised features.
///
/// It minimises `|y - b - X w|^2 / (2 n) + penalty * (l1_ratio |w|_1 + (1 - l1_ratio)/2 |w|^2)`.
/// linfa takes the intercept as the mean of `y` without centring `X`, which is only right for
/// centred features: the internal standardisation provides that.
#[derive(Debug, Clone, Copy, Default)]
pub struct ElasticNet;

impl Model for ElasticNet {
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let mut d = Decoder::new(bytes, KIND)?;
        let st = Standardizer::decode(&mut d)?;
        let w = Array1::from(d.f64s("coefficients")?);
        let b = d.f64("intercept")?;
        d.finish()?;
        if w.len() != st.n_features() {
            return Err(d_err());
        }
        Ok(Box::new(FittedNet { st, w, b }))
    }
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "elastic net regression (linfa, coordinate descent) on standardised features"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Regression]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::float("penalty", "overall strength of the penalty (alpha)", 0.01, 0.0, 1e4)
                .search_float(1e-4, 10.0, true),
            ParamSpec::float("l1_ratio", "share of the L1 penalty: 1 = lasso, 0 = ridge", 0.5, 0.0, 1.0)
                .search_float(0.0, 1.0, false),
            ParamSpec::int("max_iterations", "maximum coordinate-descent sweeps", 1000, 2, 1_000_000),
            ParamSpec::float(
                "tolerance",
                "stopping tolerance (relative to |y|^2 for the duality gap)",
                1e-4,
                1e-12,
                1.0,
            ),
        ])
    }
    fn fit(&self, data: &Dataset, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        check_task(KIND, self.tasks(), data)?;
        let y = value_targets(KIND, data)?;
        let st = Standardizer::fit(&data.x);
        let ds = linfa::Dataset::new(st.transform(&data.x), Array1::from(y));
        let hp = LinfaNet::<f64>::params()
            .penalty(params.f64("penalty")?)
            .l1_ratio(params.f64("l1_ratio")?)
            .max_iterations(params.usize("max_iterations")?.min(u32::MAX as usize) as u32)
            .tolerance(params.f64("tolerance")?)
            .with_intercept(true);
        ctx.check_deadline(KIND)?;
        let m = hp.fit(&ds).map_err(|e| Error::model(KIND, format!("linfa: {e}")))?;
        let w = m.hyperplane().clone();
        let b = m.intercept();
        if !b.is_finite() || w.iter().any(|v| !v.is_finite()) {
            return Err(Error::model(KIND, "coordinate descent diverged (non-finite coefficients)"));
        }
        Ok(Box::new(FittedNet { st, w, b }))
    }
}

fn d_err() -> promoml_core::Error {
    promoml_core::Error::model(KIND, "saved parameters are corrupt: shapes do not agree")
}

struct FittedNet {
    st: Standardizer,
    w: Array1<f64>,
    b: f64,
}

impl FittedModel for FittedNet {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(KIND);
        self.st.encode(&mut e);
        e.f64s(&self.w.to_vec());
        e.f64(self.b);
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        check_features(KIND, self.st.n_features(), data)?;
        let z = self.st.transform(&data.x);
        Ok(Predictions::Values(z.dot(&self.w).iter().map(|v| v + self.b).collect()))
    }
    fn n_classes(&self) -> Option<usize> {
        Some(0)
    }
    /// Exact: the prediction is linear in the features.
    fn explain(&self, data: &Dataset, baseline: &[f64]) -> Option<Result<promoml_core::explain::Explanations>> {
        let w = self.w.as_slice()?;
        self.st.explain_linear(data, w, self.b, baseline, promoml_core::explain::Space::Value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::testutil::*;
    use promoml_core::{Metric, ParamValue};

    #[test]
    fn hold_out_quality_sparsity_and_determinism() {
        let mut ds = linear(500, 8, 0.5, 1);
        ds.x.column_mut(7).fill(3.0); // constant column
        ds.x.column_mut(6).mapv_inplace(|v| v * 1000.0 + 50.0); // irrelevant, large scale
        let (train, test) = split(&ds, 0.75);
        let pred = fit_predict(&ElasticNet, &train, &test, &Params::new(), 1);
        let r2 = score(Metric::R2, &test, &pred);
        assert!(r2 > 0.95, "r2 {r2}");
        assert!(score(Metric::Rmse, &test, &pred) < 0.7);
        assert_eq!(pred, fit_predict(&ElasticNet, &train, &test, &Params::new(), 1));
        // A strong lasso keeps only the big coefficients.
        let p = ElasticNet
            .space()
            .resolve(&params(&[("penalty", ParamValue::Float(0.8)), ("l1_ratio", ParamValue::Float(1.0))]), "m")
            .unwrap();
        let hp = LinfaNet::<f64>::params().penalty(0.8).l1_ratio(1.0);
        let st = Standardizer::fit(&train.x);
        let m = hp.fit(&linfa::Dataset::new(st.transform(&train.x), Array1::from(train.y.clone().unwrap()))).unwrap();
        assert_eq!(m.hyperplane().iter().filter(|w| w.abs() > 1e-9).count(), 2, "{}", m.hyperplane());
        assert!(ElasticNet.fit(&train, &p, &FitContext::new(0)).is_ok());
    }

    #[test]
    fn params_checked_and_task() {
        check_space(&ElasticNet);
        rejects(&ElasticNet, "l1_ratio", ParamValue::Float(1.5));
        rejects(&ElasticNet, "penalty", ParamValue::Float(-1.0));
        rejects(&ElasticNet, "max_iterations", ParamValue::Int(1));
        let e = ElasticNet.fit(&blobs(30, 2, 2, 1.0, 1), &ElasticNet.space().defaults(), &FitContext::new(0));
        assert!(e.err().unwrap().to_string().contains("does not support binary"));
    }
}

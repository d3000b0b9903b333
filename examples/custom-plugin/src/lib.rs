//! An example third-party promoml plugin: a Gaussian naive Bayes classifier.
//!
//! A team adding its own model writes a crate like this one: implement
//! [`promoml_core::Model`] and [`promoml_core::FittedModel`], expose `register`, and build a
//! binary that adds it to the stock plugins (see `src/main.rs`, one line). Nothing is loaded
//! dynamically; the model then appears in `promoml-example plugins` and runs from TOML as
//! `kind = "example.gaussian_nb"`.

use promoml_core::codec::{Decoder, Encoder};
use promoml_core::{
    Dataset, Error, FitContext, FittedModel, Model, ParamSpec, Params, ParamsExt, Predictions, Registry, Result,
    SearchSpace, Task,
};
use stats::column_stats;

/// Register the example model.
pub fn register(registry: &mut Registry) {
    registry.add_model(GaussianNb);
}

/// Gaussian naive Bayes: per class, independent normal features.
#[derive(Debug, Clone, Copy)]
pub struct GaussianNb;

const KIND: &str = "example.gaussian_nb";

impl Model for GaussianNb {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "example plugin: Gaussian naive Bayes (class priors × independent normal likelihoods)"
    }
    fn tasks(&self) -> &[Task] {
        &[Task::Binary, Task::Multiclass]
    }
    fn space(&self) -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::float(
                "var_smoothing",
                "share of the largest feature variance added to every variance",
                1e-9,
                0.0,
                1.0,
            )
            .search_float(1e-12, 1e-1, true),
        ])
    }
    fn fit(&self, data: &Dataset, params: &Params, _ctx: &FitContext) -> Result<Box<dyn FittedModel>> {
        let y = data.class_indices(KIND)?;
        let k = data.n_classes();
        let smoothing = params.f64("var_smoothing")?;
        let (n, d) = data.x.dim();
        if n == 0 {
            return Err(Error::model(KIND, "no training rows"));
        }
        let max_var = (0..d).map(|j| column_stats(data.x.column(j).iter().copied()).1).fold(0.0, f64::max);
        let eps = smoothing * max_var.max(1e-12);
        let mut classes = Vec::with_capacity(k);
        for c in 0..k {
            let rows: Vec<usize> = (0..n).filter(|&i| y[i] == c).collect();
            if rows.is_empty() {
                return Err(Error::model(KIND, format!("class \"{}\" has no training rows", data.classes[c])));
            }
            let stats: Vec<(f64, f64)> =
                (0..d).map(|j| column_stats(rows.iter().map(|&i| data.x[[i, j]]))).map(|(m, v)| (m, v + eps)).collect();
            classes.push(((rows.len() as f64 / n as f64).ln(), stats));
        }
        Ok(Box::new(FittedNb { classes }))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedModel>> {
        let mut d = Decoder::new(bytes, KIND)?;
        let k = d.usize("class count")?;
        let mut classes = Vec::new();
        for c in 0..k {
            let prior = d.f64("log prior")?;
            let means = d.f64s("means")?;
            let vars = d.f64s("variances")?;
            if vars.len() != means.len() || classes.first().is_some_and(|(_, s): &(f64, Vec<_>)| s.len() != means.len())
            {
                return Err(d.corrupt(format!("class {c} has another number of features")));
            }
            classes.push((prior, means.into_iter().zip(vars).collect()));
        }
        d.finish()?;
        Ok(Box::new(FittedNb { classes }))
    }
}

struct FittedNb {
    /// Per class: log prior and (mean, variance) per feature.
    classes: Vec<(f64, Vec<(f64, f64)>)>,
}

impl FittedModel for FittedNb {
    fn save(&self) -> Result<Vec<u8>> {
        let mut e = Encoder::new(KIND);
        e.usize(self.classes.len());
        for (prior, stats) in &self.classes {
            e.f64(*prior);
            e.f64s(&stats.iter().map(|s| s.0).collect::<Vec<_>>());
            e.f64s(&stats.iter().map(|s| s.1).collect::<Vec<_>>());
        }
        Ok(e.finish())
    }
    fn predict(&self, data: &Dataset) -> Result<Predictions> {
        let n = data.n_rows();
        let k = self.classes.len();
        let mut p = ndarray::Array2::zeros((n, k));
        for i in 0..n {
            let logs: Vec<f64> = self
                .classes
                .iter()
                .map(|(prior, stats)| {
                    prior
                        + stats
                            .iter()
                            .enumerate()
                            .map(|(j, (m, v))| {
                                -0.5 * ((2.0 * std::f64::consts::PI * v).ln() + (data.x[[i, j]] - m).powi(2) / v)
                            })
                            .sum::<f64>()
                })
                .collect();
            let max = logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let total: f64 = logs.iter().map(|l| (l - max).exp()).sum();
            for (c, l) in logs.iter().enumerate() {
                p[[i, c]] = (l - max).exp() / total;
            }
        }
        Ok(Predictions::Proba(p))
    }
}

mod stats {
    /// Mean and population variance of a sequence.
    pub fn column_stats(values: impl Iterator<Item = f64> + Clone) -> (f64, f64) {
        let n = values.clone().count().max(1) as f64;
        let mean = values.clone().sum::<f64>() / n;
        (mean, values.map(|v| (v - mean).powi(2)).sum::<f64>() / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Dataset {
        let x = ndarray::Array2::from_shape_fn((n, 3), |(i, j)| ((i * 7 + j * 13) % 17) as f64 + (i % 3) as f64 * 4.0);
        let mut ds = Dataset::from_x(x, vec!["a".into(), "b".into(), "c".into()]);
        ds.y = Some((0..n).map(|i| (i % 3) as f64).collect());
        ds.classes = vec!["x".into(), "y".into(), "z".into()];
        ds
    }

    #[test]
    fn save_load_round_trip_is_bit_identical() {
        let (train, test) = (data(90), data(40));
        let fitted = GaussianNb.fit(&train, &GaussianNb.space().defaults(), &FitContext::new(1)).unwrap();
        let bytes = fitted.save().unwrap();
        let loaded = GaussianNb.load(&bytes).unwrap();
        let bits = |p: Predictions| match p {
            Predictions::Proba(a) => a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            Predictions::Values(v) => v.iter().map(|v| v.to_bits()).collect(),
        };
        assert_eq!(bits(fitted.predict(&test).unwrap()), bits(loaded.predict(&test).unwrap()));
        let e = GaussianNb.load(&bytes[..bytes.len() - 4]).err().unwrap().to_string();
        assert!(e.contains("truncated") && e.contains(KIND), "{e}");
    }
}

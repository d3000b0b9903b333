//! `burn.autoencoder`: a dense autoencoder anomaly detector. Rows are standardised, the network
//! learns to reconstruct them through a narrow code layer (trained by the plugin's one training
//! loop), and a row's score is its mean squared reconstruction error: higher = more abnormal.

use crate::backend::Trained;
use crate::data::{InputScaler, Targets};
use crate::model::{device_of, pack, train_config, training_params, unpack};
use crate::net::{Arch, NetSpec, Positional};
use crate::train::{Loss, TrainLog};
use ndarray::Array2;
use promoml_core::{
    AnomalyDetector, Dataset, Error, FitContext, FittedDetector, ParamSpec, Params, ParamsExt, Result, SearchSpace,
};
use serde::{Deserialize, Serialize};

const KIND: &str = "burn.autoencoder";

/// The autoencoder detector kind.
#[derive(Debug, Clone, Default)]
pub struct Autoencoder;

/// Everything about a fitted autoencoder except its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AeMeta {
    spec: NetSpec,
    scaler: InputScaler,
    device: String,
    log: TrainLog,
}

/// A fitted autoencoder.
#[derive(Debug)]
pub struct FittedAutoencoder {
    meta: AeMeta,
    trained: Trained,
}

impl FittedAutoencoder {
    /// What training did.
    pub fn log(&self) -> &TrainLog {
        &self.meta.log
    }
}

fn dataset(x: &Array2<f64>) -> Dataset {
    Dataset::from_x(x.clone(), (0..x.ncols()).map(|j| format!("column {j}")).collect())
}

impl AnomalyDetector for Autoencoder {
    fn kind(&self) -> &str {
        KIND
    }
    fn description(&self) -> &str {
        "dense autoencoder on standardised rows; score = mean squared reconstruction error (burn)"
    }
    fn space(&self) -> SearchSpace {
        let mut params = vec![
            ParamSpec::int("hidden_size", "units of the encoder's and decoder's hidden layers", 32, 1, 4096)
                .search_int(8, 128, true),
            ParamSpec::int("layers", "hidden layers on each side of the code layer", 1, 0, 4).search_int(0, 2, false),
            ParamSpec::int("code_size", "units of the code (bottleneck) layer", 4, 1, 1024).search_int(2, 16, true),
            ParamSpec::float("dropout", "dropout probability between layers while training", 0.0, 0.0, 0.9)
                .search_float(0.0, 0.3, false),
            ParamSpec::flag(
                "log_inputs",
                "apply sign(v)·ln(1+|v|) before standardising (off by default: it hides extreme values)",
                false,
            ),
        ];
        params.extend(training_params(128, 100, 8));
        SearchSpace::new(params)
    }
    fn fit(&self, x: &Array2<f64>, params: &Params, ctx: &FitContext) -> Result<Box<dyn FittedDetector>> {
        let p = self.space().resolve(params, &format!("{KIND}.params"))?;
        if x.nrows() == 0 || x.ncols() == 0 {
            return Err(Error::model(
                KIND,
                format!("needs at least one row and one column, got {}x{}", x.nrows(), x.ncols()),
            ));
        }
        let data = dataset(x);
        let device = device_of(&p, ctx, KIND)?;
        let scaler = InputScaler::fit(&data, false, true, p.bool("log_inputs")?, KIND)?;
        let inputs = scaler.transform(&data, KIND)?;
        let width = scaler.tab_width();
        let targets =
            Targets { width, values: inputs.tab.clone().expect("tabular inputs"), weights: vec![1.0; x.nrows()] };
        let (hidden, layers) = (p.usize("hidden_size")?, p.usize("layers")?);
        let mut dense = vec![hidden; layers];
        dense.push(p.usize("code_size")?);
        dense.extend(std::iter::repeat_n(hidden, layers));
        let spec = NetSpec {
            arch: Arch::Autoencoder,
            steps: 0,
            channels: 0,
            tab_in: width,
            hidden,
            layers: 0,
            heads: 1,
            positional: Positional::Sinusoidal,
            dense,
            out: width,
            dropout: p.f64("dropout")?,
        };
        let cfg = train_config(&p, Loss::Mse)?;
        let (trained, log) = crate::backend::train(KIND, device, &spec, &inputs, &targets, &cfg, ctx)?;
        Ok(Box::new(FittedAutoencoder { meta: AeMeta { spec, scaler, device: device.name(), log }, trained }))
    }
    fn load(&self, bytes: &[u8]) -> Result<Box<dyn FittedDetector>> {
        let (meta, weights): (AeMeta, &[u8]) = unpack(bytes, KIND)?;
        if meta.spec.arch != Arch::Autoencoder {
            return Err(Error::model(KIND, "the artifact holds a model, not an autoencoder detector"));
        }
        if meta.spec.out != meta.spec.tab_in {
            return Err(Error::model(KIND, "the saved network is corrupt: it does not reconstruct its inputs"));
        }
        meta.scaler.check(&meta.spec).map_err(|e| Error::model(KIND, format!("the saved network is corrupt: {e}")))?;
        let device = crate::backend::parse_device(&meta.device, KIND).unwrap_or(crate::backend::Device::Cpu);
        let trained = Trained::from_bytes(&meta.spec, weights, device, KIND)?;
        Ok(Box::new(FittedAutoencoder { meta, trained }))
    }
}

impl FittedDetector for FittedAutoencoder {
    fn score(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        let inputs = self.meta.scaler.transform(&dataset(x), KIND)?;
        let out = self.trained.outputs(&inputs)?;
        let input = inputs.tab.as_ref().expect("tabular inputs");
        let w = inputs.tab_width;
        Ok((0..inputs.n)
            .map(|i| {
                let row = i * w..(i + 1) * w;
                input[row.clone()].iter().zip(&out[row]).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / w as f64
            })
            .collect())
    }
    fn save(&self) -> Result<Vec<u8>> {
        pack(&self.meta, &self.trained.to_bytes(KIND)?, KIND)
    }
}

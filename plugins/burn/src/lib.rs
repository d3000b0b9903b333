//! promoml plugin: neural networks on [burn](https://burn.dev) 0.21.
//!
//! * `burn.lstm`, `burn.gru`: stacked recurrent layers over the behaviour sequences
//!   ([`Dataset::sequences`](promoml_core::Dataset)); the hidden state at each row's last valid
//!   step (its length − 1) is the sequence's summary.
//! * `burn.transformer`: a pre-norm transformer encoder with sinusoidal or learnt positional
//!   encoding, padded steps masked out of attention and of the mean pooling.
//! * `burn.mlp`: dense ReLU layers over the tabular features.
//! * `burn.autoencoder` (an anomaly detector): a dense autoencoder; score = reconstruction error.
//!
//! Sequence models concatenate the standardised tabular features (e.g. RFM summaries) to the
//! pooled sequence before their dense head (`use_tabular`). Every model has a binary head
//! (sigmoid, cross-entropy), a multiclass head (softmax) and a regression head (MSE on the
//! standardised target). One training loop serves all of them: Adam, seeded mini-batches,
//! gradient-norm clipping, early stopping on a seeded validation fold keeping the best epoch,
//! and the fit deadline. Fits are deterministic on the CPU under the seed.
//!
//! Devices: burn's ndarray backend on the CPU by default; with the `cuda` cargo feature,
//! `device = "cuda:N"` (the model parameter, or the pipeline's device through the fit
//! context) trains on CubeCL's CUDA backend.
//!
//! ```
//! use promoml_core::{Dataset, FitContext, Params, Predictions, Registry};
//! use ndarray::array;
//!
//! let mut registry = Registry::new();
//! promoml_burn::register(&mut registry);
//! let model = registry.model("burn.mlp").unwrap();
//! let mut data = Dataset::from_x(array![[0.0], [1.0], [2.0], [3.0]], vec!["x".into()]);
//! data.y = Some(vec![0.0, 0.0, 1.0, 1.0]);
//! data.classes = vec!["no".into(), "yes".into()];
//! let mut given = Params::new();
//! given.insert("epochs".into(), promoml_core::ParamValue::Int(200));
//! given.insert("learning_rate".into(), promoml_core::ParamValue::Float(0.01));
//! let params = model.space().resolve(&given, "params").unwrap();
//! let fitted = model.fit(&data, &params, &FitContext::new(7)).unwrap();
//! let Predictions::Proba(p) = fitted.predict(&data).unwrap() else { unreachable!() };
//! assert!(p[[3, 1]] > 0.5 && p[[0, 1]] < 0.5);
//! ```

mod backend;
mod cell;
mod data;
mod detector;
mod fused;
mod layer;
mod model;
mod net;
mod train;

#[cfg(test)]
mod tests;

pub use backend::Device;
pub use detector::{Autoencoder, FittedAutoencoder};
pub use model::{BurnModel, FittedNet};
pub use net::{Arch, NetSpec, Positional};
pub use train::TrainLog;

use promoml_core::Registry;

/// Register `burn.lstm`, `burn.gru`, `burn.transformer`, `burn.mlp` and the detector
/// `burn.autoencoder`.
pub fn register(registry: &mut Registry) {
    registry.add_model(BurnModel::lstm());
    registry.add_model(BurnModel::gru());
    registry.add_model(BurnModel::transformer());
    registry.add_model(BurnModel::mlp());
    registry.add_detector(Autoencoder);
}

/// Test support: burn's LSTM and GRU modules with weights given in PyTorch's layout, for
/// checking the forward pass against an independent reference.
#[doc(hidden)]
pub mod reference {
    pub use crate::backend::Cpu;
    pub use crate::fused::{
        gru_forward, gru_layer_forward, gru_layer_supported, lstm_forward, lstm_layer_forward, lstm_layer_supported,
    };
    pub use crate::net::reference::{gru_from_pytorch, lstm_from_pytorch};
}

//! Compute devices: burn's ndarray backend on the CPU, CubeCL CUDA with the `cuda` feature.

use crate::data::{Inputs, Targets};
use crate::net::{Net, NetSpec};
use crate::train::{self, TrainConfig, TrainLog};
use burn::module::{Module, ModuleVisitor, Param};
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::Tensor;
use burn::tensor::backend::Backend;
use promoml_core::guard::catch_panic;
use promoml_core::{Error, FitContext, Result};

/// The CPU inference backend.
pub type Cpu = burn::backend::NdArray<f32>;
/// The CPU training backend.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// The CUDA inference backend.
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32, i32>;
/// The CUDA training backend.
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;

pub use promoml_core::Device;

/// Parse a device name (the one grammar of [`Device::parse`]) and check that this build can
/// use it; `who` names the model in errors.
pub fn parse_device(name: &str, who: &str) -> Result<Device> {
    let device = Device::parse(name).map_err(|m| Error::model(who, m))?;
    available(device, who)
}

/// `device`, when this build can train on it: CUDA needs the `cuda` feature.
pub fn available(device: Device, who: &str) -> Result<Device> {
    if let Device::Cuda(_) = device
        && !cfg!(feature = "cuda")
    {
        return Err(Error::model(
            who,
            format!(
                "device \"{device}\" needs CUDA support, but this promoml was built without it; rebuild \
                 with `cargo build --release --features cuda` (needs the CUDA toolkit) or use device \"cpu\""
            ),
        ));
    }
    Ok(device)
}

/// A trained network on the backend it was trained on.
#[derive(Debug)]
pub(crate) enum Trained {
    Cpu(Net<Cpu>),
    #[cfg(feature = "cuda")]
    Cuda(Net<Gpu>, burn::backend::cuda::CudaDevice),
}

/// Train on `device`.
pub(crate) fn train(
    who: &str,
    device: Device,
    spec: &NetSpec,
    inputs: &Inputs,
    targets: &Targets,
    cfg: &TrainConfig,
    ctx: &FitContext,
) -> Result<(Trained, TrainLog)> {
    match device {
        Device::Cpu => {
            let (net, log) = train::train::<CpuTrain>(who, spec, inputs, targets, cfg, ctx, &Default::default())?;
            Ok((Trained::Cpu(net), log))
        }
        #[cfg(feature = "cuda")]
        Device::Cuda(i) => {
            let d = burn::backend::cuda::CudaDevice::new(i);
            let (net, log) = train::train::<GpuTrain>(who, spec, inputs, targets, cfg, ctx, &d)?;
            Ok((Trained::Cuda(net, d), log))
        }
        #[cfg(not(feature = "cuda"))]
        Device::Cuda(_) => Err(Error::model(who, "CUDA support is not compiled in")),
    }
}

fn to_bytes<B: Backend>(net: &Net<B>, who: &str) -> Result<Vec<u8>> {
    BinBytesRecorder::<FullPrecisionSettings>::default()
        .record(net.clone().into_record(), ())
        .map_err(|e| Error::model(who, format!("could not serialise the network weights: {e}")))
}

/// The shape of every float parameter of a network, in visiting order.
fn param_shapes<B: Backend>(net: &Net<B>) -> Vec<Vec<usize>> {
    struct Shapes(Vec<Vec<usize>>);
    impl<B: Backend> ModuleVisitor<B> for Shapes {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
            self.0.push(param.val().dims().to_vec());
        }
    }
    let mut v = Shapes(Vec::new());
    net.visit(&mut v);
    v.0
}

/// Rebuild a network of shape `spec` (checked with [`NetSpec::check_saved`]) from its saved
/// record. burn's recorder trusts its input, so it only gets bytes of exactly the length a
/// network of this shape records; a panic inside it is still an error, and the loaded weights
/// must have the shapes of a fresh network of the spec.
fn from_bytes<B: Backend>(spec: &NetSpec, bytes: &[u8], device: &B::Device, who: &str) -> Result<Net<B>> {
    let bad = |what: String| Error::model(who, format!("could not read the network weights of the artifact: {what}"));
    spec.check_saved(bytes.len()).map_err(bad)?;
    let fresh = train::fresh_net::<B>(spec, device);
    let shapes = param_shapes(&fresh);
    let template = to_bytes(&fresh, who)?;
    if template.len() != bytes.len() {
        return Err(bad(format!("{} bytes, a network of this shape records {}", bytes.len(), template.len())));
    }
    let net = catch_panic(who, "reading the network weights of the artifact", || {
        let record = BinBytesRecorder::<FullPrecisionSettings>::default()
            .load(bytes.to_vec(), device)
            .map_err(|e| bad(e.to_string()))?;
        Ok(fresh.load_record(record))
    })?;
    if param_shapes(&net) != shapes {
        return Err(bad("the weights do not have the shapes of the network".into()));
    }
    Ok(net)
}

impl Trained {
    /// Network outputs for every row, row-major.
    pub fn outputs(&self, inputs: &Inputs) -> Result<Vec<f32>> {
        match self {
            Trained::Cpu(net) => train::predict(net, inputs, &Default::default()),
            #[cfg(feature = "cuda")]
            Trained::Cuda(net, d) => train::predict(net, inputs, d),
        }
    }
    /// The weights as bytes (burn's binary record, full precision).
    pub fn to_bytes(&self, who: &str) -> Result<Vec<u8>> {
        match self {
            Trained::Cpu(net) => to_bytes(net, who),
            #[cfg(feature = "cuda")]
            Trained::Cuda(net, _) => to_bytes(net, who),
        }
    }
    /// Rebuild from [`Trained::to_bytes`] on `device` (the CPU when CUDA is not compiled in).
    pub fn from_bytes(spec: &NetSpec, bytes: &[u8], device: Device, who: &str) -> Result<Trained> {
        match device {
            #[cfg(feature = "cuda")]
            Device::Cuda(i) => {
                let d = burn::backend::cuda::CudaDevice::new(i);
                Ok(Trained::Cuda(from_bytes::<Gpu>(spec, bytes, &d, who)?, d))
            }
            _ => Ok(Trained::Cpu(from_bytes::<Cpu>(spec, bytes, &Default::default(), who)?)),
        }
    }
}

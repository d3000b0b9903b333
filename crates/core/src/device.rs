//! The compute device: parsed once, from `pipeline.device` or `--device`, and carried in every
//! fit and step context ([`crate::FitContext::device`], [`crate::StepContext::device`]).

use std::fmt;
use std::str::FromStr;

/// A compute device. Models that cannot choose ignore it; the burn models train on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Device {
    /// The CPU (the default).
    #[default]
    Cpu,
    /// The CUDA device with this index (needs a build with the `cuda` feature).
    Cuda(usize),
}

impl Device {
    /// Parse `cpu`, `cuda` (device 0) or `cuda:N`; the error says what is accepted.
    pub fn parse(name: &str) -> Result<Device, String> {
        match name.trim() {
            "cpu" => Ok(Device::Cpu),
            "cuda" => Ok(Device::Cuda(0)),
            other => match other.strip_prefix("cuda:").map(str::parse::<usize>) {
                Some(Ok(i)) => Ok(Device::Cuda(i)),
                _ => Err(format!("unknown device \"{other}\" (known: \"cpu\", \"cuda\", \"cuda:N\")")),
            },
        }
    }

    /// The name written in reports and artifacts (`cpu`, `cuda:N`).
    pub fn name(self) -> String {
        self.to_string()
    }

    /// Whether this is the CPU.
    pub fn is_cpu(self) -> bool {
        self == Device::Cpu
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Device::Cpu => write!(f, "cpu"),
            Device::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Device, String> {
        Device::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_grammar_round_trips() {
        for (s, d) in [("cpu", Device::Cpu), ("cuda", Device::Cuda(0)), ("cuda:3", Device::Cuda(3))] {
            assert_eq!(Device::parse(s).unwrap(), d);
            assert_eq!(Device::parse(&d.name()).unwrap(), d);
        }
        for bad in ["gpu0", "tpu", "cuda:", "cuda:x", ""] {
            let e = Device::parse(bad).unwrap_err();
            assert!(e.contains("cuda:N"), "{bad}: {e}");
        }
    }
}

//! Hyper-parameters: values, their valid domains, default search ranges and validation.
//!
//! Every model declares a [`SearchSpace`]: one [`ParamSpec`] per parameter with its default,
//! the domain of *valid* values (checked for every value a user writes in TOML) and the
//! narrower domain it is *searched* over by default.

use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// One hyper-parameter value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A choice among named options.
    Str(String),
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(b) => write!(f, "{b}"),
            ParamValue::Int(i) => write!(f, "{i}"),
            ParamValue::Float(x) => write!(f, "{x}"),
            ParamValue::Str(s) => write!(f, "\"{s}\""),
        }
    }
}

/// Parameter values by name, ordered so reports and logs are stable.
pub type Params = BTreeMap<String, ParamValue>;

/// The set of values a parameter may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// A real number in `[low, high]`, sampled on a log scale when `log`.
    Float {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (inclusive).
        high: f64,
        /// Sample on a log scale (both bounds > 0).
        log: bool,
    },
    /// An integer in `[low, high]`, sampled on a log scale when `log`.
    Int {
        /// Lower bound (inclusive).
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
        /// Sample on a log scale (both bounds > 0).
        log: bool,
    },
    /// One of these options.
    Categorical(Vec<String>),
    /// `true` or `false`.
    Bool,
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = |log: &bool| if *log { ", log" } else { "" };
        match self {
            Domain::Float { low, high, log } => write!(f, "float in [{low}, {high}{}]", l(log)),
            Domain::Int { low, high, log } => write!(f, "int in [{low}, {high}{}]", l(log)),
            Domain::Categorical(o) => {
                write!(f, "one of {}", o.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", "))
            }
            Domain::Bool => write!(f, "bool"),
        }
    }
}

impl Domain {
    /// Check `v` against the domain; integers are accepted where floats are expected.
    pub fn check(&self, v: &ParamValue) -> std::result::Result<ParamValue, String> {
        match (self, v) {
            (Domain::Float { low, high, .. }, ParamValue::Float(x)) if x >= low && x <= high => Ok(v.clone()),
            (Domain::Float { low, high, .. }, ParamValue::Int(i)) if (*i as f64) >= *low && (*i as f64) <= *high => {
                Ok(ParamValue::Float(*i as f64))
            }
            (Domain::Int { low, high, .. }, ParamValue::Int(i)) if i >= low && i <= high => Ok(v.clone()),
            (Domain::Categorical(opts), ParamValue::Str(s)) if opts.contains(s) => Ok(v.clone()),
            (Domain::Categorical(opts), ParamValue::Str(s)) => {
                let hint = crate::did_you_mean(s, opts.iter().map(String::as_str))
                    .map(|x| format!("; did you mean \"{x}\"?"))
                    .unwrap_or_default();
                Err(format!("\"{s}\" is not {self}{hint}"))
            }
            (Domain::Bool, ParamValue::Bool(_)) => Ok(v.clone()),
            _ => Err(format!("{v} is not {self}")),
        }
    }
    /// Whether `inner` lies within this domain (used to check declared search ranges).
    pub fn contains_domain(&self, inner: &Domain) -> bool {
        match (self, inner) {
            (Domain::Float { low, high, .. }, Domain::Float { low: l, high: h, .. }) => l >= low && h <= high,
            (Domain::Float { low, high, .. }, Domain::Int { low: l, high: h, .. }) => {
                (*l as f64) >= *low && (*h as f64) <= *high
            }
            (Domain::Int { low, high, .. }, Domain::Int { low: l, high: h, .. }) => l >= low && h <= high,
            (Domain::Categorical(a), Domain::Categorical(b)) => b.iter().all(|x| a.contains(x)),
            (Domain::Bool, Domain::Bool) => true,
            _ => false,
        }
    }
}

/// One hyper-parameter of a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Name as written in TOML.
    pub name: String,
    /// What it does, for `promoml plugins`.
    pub doc: String,
    /// The value used when neither TOML nor a search sets it.
    pub default: ParamValue,
    /// All values the component accepts.
    pub valid: Domain,
    /// The range searched by default; `None` keeps the parameter at its default while searching.
    pub search: Option<Domain>,
    /// Only active when another parameter has this value (e.g. `gamma` only for an RBF kernel).
    pub condition: Option<(String, ParamValue)>,
}

impl ParamSpec {
    fn new(name: &str, doc: &str, default: ParamValue, valid: Domain) -> ParamSpec {
        ParamSpec { name: name.into(), doc: doc.into(), default, valid, search: None, condition: None }
    }
    /// A real-valued parameter valid in `[low, high]`.
    pub fn float(name: &str, doc: &str, default: f64, low: f64, high: f64) -> ParamSpec {
        ParamSpec::new(name, doc, ParamValue::Float(default), Domain::Float { low, high, log: false })
    }
    /// An integer parameter valid in `[low, high]`.
    pub fn int(name: &str, doc: &str, default: i64, low: i64, high: i64) -> ParamSpec {
        ParamSpec::new(name, doc, ParamValue::Int(default), Domain::Int { low, high, log: false })
    }
    /// A choice among `options`.
    pub fn choice(name: &str, doc: &str, default: &str, options: &[&str]) -> ParamSpec {
        let opts: Vec<String> = options.iter().map(|s| s.to_string()).collect();
        ParamSpec::new(name, doc, ParamValue::Str(default.into()), Domain::Categorical(opts))
    }
    /// A boolean parameter.
    pub fn flag(name: &str, doc: &str, default: bool) -> ParamSpec {
        ParamSpec::new(name, doc, ParamValue::Bool(default), Domain::Bool)
    }
    /// Search this parameter over `[low, high]` (floats), log-scaled when `log`.
    pub fn search_float(mut self, low: f64, high: f64, log: bool) -> ParamSpec {
        self.search = Some(Domain::Float { low, high, log });
        self
    }
    /// Search this parameter over `[low, high]` (integers), log-scaled when `log`.
    pub fn search_int(mut self, low: i64, high: i64, log: bool) -> ParamSpec {
        self.search = Some(Domain::Int { low, high, log });
        self
    }
    /// Search this parameter over all its options.
    pub fn searched(mut self) -> ParamSpec {
        self.search = Some(self.valid.clone());
        self
    }
    /// Make the parameter active only when `param` equals `value`.
    pub fn when(mut self, param: &str, value: ParamValue) -> ParamSpec {
        self.condition = Some((param.into(), value));
        self
    }
}

/// All hyper-parameters of a component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The parameters, in declaration order.
    pub params: Vec<ParamSpec>,
}

impl SearchSpace {
    /// A space from its parameters.
    pub fn new(params: Vec<ParamSpec>) -> SearchSpace {
        SearchSpace { params }
    }
    /// The parameter called `name`.
    pub fn get(&self, name: &str) -> Option<&ParamSpec> {
        self.params.iter().find(|p| p.name == name)
    }
    /// The defaults of every parameter.
    pub fn defaults(&self) -> Params {
        self.params.iter().map(|p| (p.name.clone(), p.default.clone())).collect()
    }
    /// `name`'s numeric value in `params`, or its default here when `params` lacks it; `fallback`
    /// for an unknown name or a value that is not a number. For cost estimates
    /// ([`crate::Model::cost`]), which must not fail.
    pub fn number(&self, params: &Params, name: &str, fallback: f64) -> f64 {
        let value = params.get(name).or_else(|| self.get(name).map(|p| &p.default));
        match value {
            Some(ParamValue::Float(x)) => *x,
            Some(ParamValue::Int(i)) => *i as f64,
            _ => fallback,
        }
    }
    /// Validate user-given values and fill in defaults. `key` is the dotted TOML path of the
    /// table holding them, used in error messages.
    pub fn resolve(&self, given: &Params, key: &str) -> Result<Params> {
        let mut out = self.defaults();
        for (name, v) in given {
            let spec = self.get(name).ok_or_else(|| {
                let hint = crate::did_you_mean(name, self.params.iter().map(|p| p.name.as_str()))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Error::config(
                    format!("{key}.{name}"),
                    format!(
                        "unknown parameter (known: {}){hint}",
                        self.params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?;
            let v = spec.valid.check(v).map_err(|m| Error::config(format!("{key}.{name}"), m))?;
            out.insert(name.clone(), v);
        }
        Ok(out)
    }
    /// Whether parameter `p` is active under `params` (its condition, if any, holds).
    pub fn is_active(&self, p: &ParamSpec, params: &Params) -> bool {
        p.condition.as_ref().is_none_or(|(name, val)| params.get(name) == Some(val))
    }
}

/// Typed access to validated parameters. Errors only when a component reads a parameter that
/// its own space does not declare (a plugin bug), never on user input.
pub trait ParamsExt {
    /// A real value (integers are widened).
    fn f64(&self, name: &str) -> Result<f64>;
    /// A non-negative integer.
    fn usize(&self, name: &str) -> Result<usize>;
    /// A choice.
    fn str(&self, name: &str) -> Result<&str>;
    /// A flag.
    fn bool(&self, name: &str) -> Result<bool>;
}

impl ParamsExt for Params {
    fn f64(&self, name: &str) -> Result<f64> {
        match self.get(name) {
            Some(ParamValue::Float(x)) => Ok(*x),
            Some(ParamValue::Int(i)) => Ok(*i as f64),
            other => Err(Error::config(name, format!("expected a number, found {other:?}"))),
        }
    }
    fn usize(&self, name: &str) -> Result<usize> {
        match self.get(name) {
            Some(ParamValue::Int(i)) if *i >= 0 => Ok(*i as usize),
            other => Err(Error::config(name, format!("expected a non-negative integer, found {other:?}"))),
        }
    }
    fn str(&self, name: &str) -> Result<&str> {
        match self.get(name) {
            Some(ParamValue::Str(s)) => Ok(s),
            other => Err(Error::config(name, format!("expected a string, found {other:?}"))),
        }
    }
    fn bool(&self, name: &str) -> Result<bool> {
        match self.get(name) {
            Some(ParamValue::Bool(b)) => Ok(*b),
            other => Err(Error::config(name, format!("expected true or false, found {other:?}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> SearchSpace {
        SearchSpace::new(vec![
            ParamSpec::int("n_trees", "trees", 100, 1, 10_000).search_int(50, 1000, true),
            ParamSpec::float("c", "penalty", 1.0, 1e-6, 1e6).search_float(1e-3, 1e3, true),
            ParamSpec::choice("kernel", "kernel", "rbf", &["linear", "rbf"]),
        ])
    }

    #[test]
    fn resolve_fills_defaults_and_widens_ints() {
        let mut given = Params::new();
        given.insert("c".into(), ParamValue::Int(3));
        let p = space().resolve(&given, "models[0].params").unwrap();
        assert_eq!(p["c"], ParamValue::Float(3.0));
        assert_eq!(p["n_trees"], ParamValue::Int(100));
        assert_eq!(p.usize("n_trees").unwrap(), 100);
    }

    #[test]
    fn resolve_rejects_out_of_range_unknown_and_typos() {
        let mut given = Params::new();
        given.insert("n_tres".into(), ParamValue::Int(3));
        let e = space().resolve(&given, "m").unwrap_err().to_string();
        assert!(e.contains("`m.n_tres`") && e.contains("did you mean `n_trees`"), "{e}");
        let mut given = Params::new();
        given.insert("n_trees".into(), ParamValue::Int(0));
        let e = space().resolve(&given, "m").unwrap_err().to_string();
        assert!(e.contains("0 is not int in [1, 10000]"), "{e}");
        let mut given = Params::new();
        given.insert("kernel".into(), ParamValue::Str("rbff".into()));
        let e = space().resolve(&given, "m").unwrap_err().to_string();
        assert!(e.contains("did you mean \"rbf\""), "{e}");
    }
}

//! Model artifacts: the fitted preparation and final model of a run in one file, and batch
//! prediction from it (`promoml predict`): classifiers and regressors (one candidate or an
//! ensemble), uplift models (learners, control model, policy rule), anomaly detectors, and for
//! event-log pipelines the plan that turns a raw event log into entity rows and sequences.
//!
//! Layout: the magic bytes [`MAGIC`], the format version ([`FORMAT_VERSION`], `u32` little
//! endian), the manifest length and the payload length (`u64` each), the SHA-256 digest of
//! manifest and payload (32 bytes; versions 1 and 2 had a 64-bit FNV-1a checksum there), then the
//! manifest (JSON: task, target, classes, how to read
//! input files, the columns the model needs, every step and model with the kind that reloads
//! it) and the payload (the bytes each fitted step and model saved, concatenated). Steps are
//! reloaded through [`StepFactory::load`](promoml_core::StepFactory::load), models through
//! `Registry::model(kind)?.load(bytes)`. An artifact holds fitted parameters only, never the
//! training rows (models whose parameters are training rows say so when saved: see
//! [`Artifact::notes`]).
//!
//! Reading never trusts a count: the header's lengths are checked against the file size, the
//! manifest's items against the payload and against each other (a binary task has exactly two
//! classes, an ensemble's combiner one weight per member, ...), each reloaded model's class count
//! against the manifest's class list before anything is predicted, and a panic inside a
//! third-party decoder or model becomes an error naming the artifact (the plugins check lengths
//! first; this is the last line of defence).

use crate::codec::quote;
use crate::ensemble::Combiner;
use crate::explain::{Explained, Inputs};
pub use crate::fitted::{AnomalyModel, FinalModel, Fitted, Scored, bits};
use crate::plan::Pipeline;
use crate::prep::Prepared;
use crate::sequence::EventsPlan;
use crate::uplift::LearnerKind;
use crate::uplift::learners::FittedLearner;
use crate::uplift::model::{PolicyRule, UpliftModel};
use promoml_core::explain::SamplingSettings;
use promoml_core::guard::catch_panic;
use promoml_core::io::{CsvOptions, ReadOptions, read_csv_str, read_file};
use promoml_core::{
    ColumnData, ColumnType, Error, FittedCleaner, FittedFeatures, FittedModel, Frame, Predictions, Registry, Result,
    Sequences, Task,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// First bytes of every artifact.
pub const MAGIC: &[u8; 16] = b"PROMOML-ARTIFACT";
/// Version of the artifact layout and manifest that this promoml writes. Version 3 replaced the
/// FNV-1a checksum by a SHA-256 digest; version 2 added uplift, anomaly and event-log artifacts;
/// versions 1 and 2 (verified with their FNV-1a checksum) are still read. Other versions are
/// refused.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format version this promoml reads.
pub const OLDEST_READABLE_VERSION: u32 = 1;
/// Header length of versions 1 and 2: magic, version, two lengths, a `u64` FNV-1a checksum.
const HEADER_FNV: usize = 16 + 4 + 8 + 8 + 8;
/// Header length from version 3 on: magic, version, two lengths, a 32-byte SHA-256 digest.
const HEADER: usize = 16 + 4 + 8 + 8 + 32;

/// SHA-256 of manifest and payload, as stored in the header (format version 3 on).
fn sha256(manifest: &[u8], payload: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(manifest);
    h.update(payload);
    h.finalize().into()
}

/// The checksum of format versions 1 and 2 (still verified when reading them).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// Where one saved item lies in the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Blob {
    offset: u64,
    len: u64,
}

/// A saved step or model: its registry kind and its bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Saved {
    /// Leaderboard name (models) or kind (steps).
    name: String,
    kind: String,
    blob: Blob,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum SavedModel {
    Single {
        name: String,
        model: Saved,
    },
    Ensemble {
        name: String,
        layer1: Vec<Saved>,
        layer2: Vec<Saved>,
        combiner: Combiner,
    },
    Uplift {
        name: String,
        /// Arm names, control first.
        arms: Vec<String>,
        /// Meta-learners whose effects are averaged.
        members: Vec<SavedLearner>,
        /// Control outcome model for the policy, when the learners have no outcome model.
        control: Option<Saved>,
        policy: Option<PolicyRule>,
    },
    Anomaly {
        name: String,
        detector: Saved,
        threshold: Option<f64>,
    },
}

/// A fitted meta-learner: its kind, the outcome task of its base models, and their bytes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SavedLearner {
    learner: String,
    /// `binary` or `regression`.
    outcome: String,
    blend: Vec<f64>,
    models: Vec<Saved>,
}

/// How input files are read: the training file's options and column types.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ReadSpec {
    delimiter: Option<u8>,
    header: bool,
    timestamp_format: Option<String>,
    missing: Vec<String>,
    types: BTreeMap<String, ColumnType>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    promoml_version: String,
    pipeline: String,
    task: String,
    target: String,
    classes: Vec<String>,
    /// `data.id`: copied to the output when the input has it.
    id: Option<String>,
    /// `data.drop`: removed from the input when present.
    drop: Vec<String>,
    read: ReadSpec,
    /// Input columns the preparation needs (the training columns but the target).
    columns: Vec<String>,
    cleaners: Vec<Saved>,
    features: Vec<Saved>,
    feature_names: Vec<String>,
    model: SavedModel,
    notes: Vec<String>,
    /// Event-log pipelines: how an event log becomes one row (and sequence) per entity; the
    /// input is then an event log with the `columns` listed.
    #[serde(default)]
    events: Option<EventsPlan>,
    /// A typical model-input row (per-feature training medians, never a training row): the
    /// reference of linear and sampling explanations. Absent from artifacts written before
    /// explanations.
    #[serde(default)]
    baseline: Option<Vec<f64>>,
    /// `[data] memory_limit` of the training run: what the query engine may hold while it turns
    /// an event log into entity rows at predict time. Absent from older artifacts (the default
    /// limit then applies).
    #[serde(default)]
    memory_limit: Option<usize>,
    /// `[data] derive` columns the model reads: computed from the input at predict time by the
    /// query engine, as the run computed them. Absent from older artifacts.
    #[serde(default)]
    derive: Vec<Derived>,
    /// Input columns read only to derive others (`columns` lists them; the model does not read
    /// them): removed once the derived columns are computed.
    #[serde(default)]
    derive_only: Vec<String>,
}

/// One `[data] derive` column of an artifact: its name and SQL expression.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Derived {
    name: String,
    sql: String,
}

/// A loaded (or freshly built) artifact: the fitted preparation and final model.
pub struct Artifact {
    manifest: Manifest,
    prepared: Prepared,
    model: Fitted,
}

/// What `promoml run` asks for: where to write the artifact, and the registry that reloads it
/// (the run checks that the reloaded artifact predicts the test rows bit for bit like the
/// in-process model).
#[derive(Clone)]
pub struct ArtifactRequest {
    /// The artifact file to write.
    pub path: PathBuf,
    /// Registry with every plugin of the run.
    pub registry: Registry,
}

impl std::fmt::Debug for ArtifactRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactRequest").field("path", &self.path).finish_non_exhaustive()
    }
}

fn corrupt(source: &str, what: impl std::fmt::Display) -> Error {
    Error::data(format!("model artifact {source}: {what}"))
}

/// Checks the manifest's counts against its task and against each other before anything is
/// loaded: a binary task lists two classes, a multiclass task at least two, a regression or uplift
/// task none; an ensemble has members and a combiner that fits them; an uplift model has a control
/// and a treatment arm, a learner, and a policy with one value and cost per arm.
fn check_manifest(m: &Manifest) -> std::result::Result<(), String> {
    let k = m.classes.len();
    let outputs = match m.task.as_str() {
        "binary" if k != 2 => return Err(format!("a binary task lists {k} classes, not 2")),
        "multiclass" if k < 2 => return Err(format!("a multiclass task lists {k} classes")),
        "regression" | "uplift" if k != 0 => return Err(format!("a {} task lists {k} classes", m.task)),
        "binary" | "multiclass" => k,
        _ => 0,
    };
    if let Some(plan) = &m.events {
        plan.check_saved(m.feature_names.len()).map_err(|e| format!("its event-log plan has {e}"))?;
    }
    match &m.model {
        SavedModel::Ensemble { layer1, layer2, combiner, .. } => {
            if layer1.is_empty() {
                return Err("the ensemble has no member".into());
            }
            let last = if layer2.is_empty() { layer1.len() } else { layer2.len() };
            combiner.check(last, outputs).map_err(|e| format!("the ensemble's combiner {e}"))?;
        }
        SavedModel::Uplift { arms, members, policy, .. } => {
            let policy_fits = policy.as_ref().is_none_or(|r| {
                r.value.len() == arms.len() && r.cost.len() == arms.len() && r.calibration.len() + 1 == arms.len()
            });
            if arms.len() < 2 || !policy_fits {
                return Err("the uplift model's arms and policy do not agree".into());
            }
            if members.is_empty() {
                return Err("the uplift model has no learner".into());
            }
        }
        SavedModel::Single { .. } | SavedModel::Anomaly { .. } => {}
    }
    Ok(())
}

/// What a model or detector keeps of the training data as parameters, when it keeps any.
fn keeps_training_values(kind: &str) -> Option<&'static str> {
    match kind {
        "smartcore.svm_rbf" => Some("standardised training rows (its support vectors)"),
        "anomaly.ecod" => Some("each feature's sorted training values (its empirical distributions; not whole rows)"),
        _ => None,
    }
}

impl Artifact {
    /// Build an artifact from a run's fitted preparation and final model. `train` is the frame
    /// the preparation was fitted on (only its column names and types are kept): as loaded,
    /// without the label of an anomaly task, without the treatment, KPI and key columns of an
    /// uplift task (so new customers need neither an arm nor an outcome).
    pub fn new(p: &Pipeline, mut prepared: Prepared, train: &Frame, model: Fitted) -> Result<Artifact> {
        // Event-log pipelines read an event log at predict time: its columns and declared
        // types, and the plan that turns it into entity rows (sequence length pinned to what
        // the models were trained on). The training sequences are not kept.
        let events = match &p.data.events {
            Some(plan) => {
                let steps = prepared.sequences.as_ref().map(|s| s.data.shape()[1]);
                Some(plan.for_scoring(steps, None, None, "data.events")?)
            }
            None => None,
        };
        let baseline = baseline_row(&prepared, train);
        prepared.sequences = None;
        // Derived columns the model reads are computed again from the input: the input needs
        // the columns their expressions read instead of them.
        let model_columns: Vec<String> =
            train.names().into_iter().filter(|n| *n != p.data.target).map(str::to_string).collect();
        let derive: Vec<Derived> = p
            .data
            .derive
            .iter()
            .filter(|(name, _)| model_columns.contains(name))
            .map(|(name, sql)| Derived { name: name.clone(), sql: sql.clone() })
            .collect();
        let mut reads: Vec<String> = Vec::new();
        for d in &derive {
            let cols = crate::data::engine::expression_columns(&d.sql)
                .map_err(|m| Error::config(format!("data.derive.{}", d.name), m))?;
            for c in cols {
                if !reads.contains(&c) {
                    reads.push(c);
                }
            }
        }
        let derive_only: Vec<String> = reads.iter().filter(|c| !model_columns.contains(c)).cloned().collect();
        let (types, columns): (BTreeMap<String, ColumnType>, Vec<String>) = match &events {
            Some(ev) => {
                let mut cols = vec![ev.entity.clone(), ev.time.clone()];
                cols.extend(ev.values.iter().cloned());
                (p.data.read.types.clone(), cols)
            }
            None => {
                // Trained types for the columns read as they are; a column read only by an
                // expression (or replaced by one) keeps its declared type, if any.
                let derived = |c: &str| derive.iter().any(|d| d.name == c);
                let mut types: BTreeMap<String, ColumnType> = train
                    .columns()
                    .iter()
                    .filter(|c| !derived(&c.name))
                    .map(|c| (c.name.clone(), c.data.column_type()))
                    .collect();
                let mut columns: Vec<String> = model_columns.iter().filter(|c| !derived(c)).cloned().collect();
                for c in &reads {
                    if let Some(t) = p.data.read.types.get(c) {
                        types.insert(c.clone(), *t);
                    }
                    if !columns.contains(c) {
                        columns.push(c.clone());
                    }
                }
                (types, columns)
            }
        };
        let mut notes = Vec::new();
        let mut kinds: Vec<&str> = Vec::new();
        match &model {
            Fitted::Model(FinalModel::Single { kind, .. }) => kinds.push(kind),
            Fitted::Model(FinalModel::Ensemble { layer1, layer2, .. }) => {
                kinds.extend(layer1.iter().chain(layer2).map(|m| m.1.as_str()))
            }
            Fitted::Uplift(u) => {
                kinds.extend(u.members.iter().map(|m| m.0.as_str()));
                kinds.extend(u.control.iter().map(|c| c.0.as_str()));
            }
            Fitted::Anomaly(a) => kinds.push(&a.kind),
        }
        for k in kinds {
            if let Some(what) = keeps_training_values(k) {
                notes.push(format!("`{k}` keeps {what} as parameters"));
            }
        }
        let manifest = Manifest {
            promoml_version: env!("CARGO_PKG_VERSION").to_string(),
            pipeline: p.name.clone(),
            task: p.task.name().to_string(),
            target: p.data.target.clone(),
            classes: prepared.classes.clone(),
            // Uplift pipelines name customers by `policy.key` when they have no `data.id`.
            id: p.data.id.clone().or_else(|| p.uplift.as_ref().and_then(|u| u.policy.as_ref()?.key.clone())),
            drop: p.data.drop.clone(),
            read: ReadSpec {
                delimiter: p.data.read.csv.delimiter,
                header: p.data.read.csv.header,
                timestamp_format: p.data.read.csv.timestamp_format.clone(),
                missing: p.data.read.csv.missing.clone(),
                types,
            },
            columns,
            cleaners: Vec::new(),
            features: Vec::new(),
            feature_names: prepared.feature_names.clone(),
            model: SavedModel::Single {
                name: String::new(),
                model: Saved { name: String::new(), kind: String::new(), blob: Blob { offset: 0, len: 0 } },
            },
            notes,
            events,
            baseline,
            memory_limit: Some(p.data.memory_limit),
            derive,
            derive_only,
        };
        let mut a = Artifact { manifest, prepared, model };
        // Kinds of the fitted steps: the pipeline's, then the automatic one-hot encoder.
        let mut cleaners = Vec::new();
        for s in &p.cleaners {
            cleaners.push(s.kind.clone());
        }
        let mut features: Vec<String> = p.features.iter().map(|s| s.kind.clone()).collect();
        if a.prepared.features.len() == features.len() + 1 {
            features.push("one_hot".into());
        }
        if cleaners.len() != a.prepared.cleaners.len() || features.len() != a.prepared.features.len() {
            return Err(Error::data("model artifact: the fitted steps do not match the pipeline's steps"));
        }
        a.manifest.cleaners =
            cleaners.into_iter().map(|k| Saved { name: k.clone(), kind: k, blob: no_blob() }).collect();
        a.manifest.features =
            features.into_iter().map(|k| Saved { name: k.clone(), kind: k, blob: no_blob() }).collect();
        Ok(a)
    }

    /// Notes on what the artifact holds (e.g. models whose parameters are training rows).
    pub fn notes(&self) -> &[String] {
        &self.manifest.notes
    }

    /// The task the artifact predicts for.
    pub fn task(&self) -> &str {
        &self.manifest.task
    }

    /// Whether the artifact scores an event log (an event-log pipeline) rather than rows.
    pub fn reads_event_log(&self) -> bool {
        self.manifest.events.is_some()
    }

    /// The artifact as bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut payload = Vec::new();
        let mut put = |bytes: Vec<u8>| {
            let blob = Blob { offset: payload.len() as u64, len: bytes.len() as u64 };
            payload.extend_from_slice(&bytes);
            blob
        };
        let mut m = self.manifest.clone();
        for (s, c) in m.cleaners.iter_mut().zip(&self.prepared.cleaners) {
            s.blob = put(c.save().map_err(|e| Error::data(format!("cleaner `{}`: {e}", s.kind)))?);
        }
        for (s, f) in m.features.iter_mut().zip(&self.prepared.features) {
            s.blob = put(f.save().map_err(|e| Error::data(format!("feature step `{}`: {e}", s.kind)))?);
        }
        let mut save = |name: &str, kind: &str, model: &dyn FittedModel| -> Result<Saved> {
            let bytes = model.save().map_err(|e| {
                Error::model(kind, format!("ensemble member `{name}` cannot go into the model artifact: {e}"))
            })?;
            Ok(Saved { name: name.to_string(), kind: kind.to_string(), blob: put(bytes) })
        };
        m.model = match &self.model {
            Fitted::Model(FinalModel::Single { name, kind, model }) => {
                SavedModel::Single { name: name.clone(), model: save(name, kind, model.as_ref())? }
            }
            Fitted::Model(FinalModel::Ensemble { name, layer1, layer2, combiner }) => SavedModel::Ensemble {
                name: name.clone(),
                layer1: layer1.iter().map(|(n, k, f)| save(n, k, f.as_ref())).collect::<Result<_>>()?,
                layer2: layer2.iter().map(|(n, k, f)| save(n, k, f.as_ref())).collect::<Result<_>>()?,
                combiner: combiner.clone(),
            },
            Fitted::Uplift(u) => {
                let mut members = Vec::new();
                for (base, l) in &u.members {
                    let who = format!("{}-learner/{base}", l.kind().name());
                    members.push(SavedLearner {
                        learner: l.kind().name().to_string(),
                        outcome: l.outcome().name().to_string(),
                        blend: l.blend().to_vec(),
                        models: l.models().iter().map(|f| save(&who, base, f.as_ref())).collect::<Result<_>>()?,
                    });
                }
                SavedModel::Uplift {
                    name: u.name.clone(),
                    arms: u.arms.clone(),
                    members,
                    control: match &u.control {
                        Some((kind, f)) => Some(save("control outcome model", kind, f.as_ref())?),
                        None => None,
                    },
                    policy: u.policy.clone(),
                }
            }
            Fitted::Anomaly(a) => {
                let bytes = a.detector.save().map_err(|e| {
                    Error::model(&a.kind, format!("detector `{}` cannot go into the model artifact: {e}", a.name))
                })?;
                SavedModel::Anomaly {
                    name: a.name.clone(),
                    detector: Saved { name: a.name.clone(), kind: a.kind.clone(), blob: put(bytes) },
                    threshold: a.threshold,
                }
            }
        };
        let manifest = serde_json::to_vec(&m).map_err(|e| Error::data(format!("model artifact manifest: {e}")))?;
        let mut out = Vec::with_capacity(HEADER + manifest.len() + payload.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&sha256(&manifest, &payload));
        out.extend_from_slice(&manifest);
        out.extend_from_slice(&payload);
        Ok(out)
    }

    /// Write the artifact to `path`.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = self.to_bytes()?;
        std::fs::write(path, bytes).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })
    }

    /// Read an artifact file, reloading every step and model through `registry`.
    pub fn read(path: &Path, registry: &Registry) -> Result<Artifact> {
        let bytes = std::fs::read(path).map_err(|e| Error::Io { path: path.to_path_buf(), source: e })?;
        Artifact::from_bytes(&bytes, &path.display().to_string(), registry)
    }

    /// Parse artifact bytes (`source` names them in errors).
    pub fn from_bytes(bytes: &[u8], source: &str, registry: &Registry) -> Result<Artifact> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(corrupt(source, "not a promoml model artifact (no PROMOML-ARTIFACT header)"));
        }
        if bytes.len() < HEADER_FNV {
            return Err(corrupt(
                source,
                format!("truncated: {} bytes, shorter than the {HEADER_FNV}-byte header", bytes.len()),
            ));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
        let version = u32::from_le_bytes(bytes[16..20].try_into().expect("4 bytes"));
        if !(OLDEST_READABLE_VERSION..=FORMAT_VERSION).contains(&version) {
            return Err(corrupt(
                source,
                format!(
                    "artifact format version {version}, but this promoml {} reads versions {OLDEST_READABLE_VERSION} to {FORMAT_VERSION}; re-run `promoml run` to rebuild it",
                    env!("CARGO_PKG_VERSION")
                ),
            ));
        }
        let header = if version >= 3 { HEADER } else { HEADER_FNV };
        if bytes.len() < header {
            return Err(corrupt(
                source,
                format!("truncated: {} bytes, shorter than the {header}-byte header", bytes.len()),
            ));
        }
        let (mlen, plen) = (u64_at(20), u64_at(28));
        let expected = (header as u64).saturating_add(mlen).saturating_add(plen);
        if (bytes.len() as u64) < expected {
            return Err(corrupt(source, format!("truncated: {} bytes, the header announces {expected}", bytes.len())));
        }
        if (bytes.len() as u64) > expected {
            return Err(corrupt(source, format!("corrupt: {} bytes, the header announces {expected}", bytes.len())));
        }
        // Both lengths fit in the file (checked just above), hence in usize.
        let manifest_bytes = &bytes[header..header + mlen as usize];
        let payload = &bytes[header + mlen as usize..];
        let intact = if version >= 3 {
            sha256(manifest_bytes, payload)[..] == bytes[36..68]
        } else {
            fnv1a(&[manifest_bytes, payload]) == u64_at(36)
        };
        if !intact {
            return Err(corrupt(source, "corrupt: checksum mismatch (the file was modified or damaged)"));
        }
        let m: Manifest =
            serde_json::from_slice(manifest_bytes).map_err(|e| corrupt(source, format!("corrupt manifest: {e}")))?;
        check_manifest(&m).map_err(|what| corrupt(source, format!("corrupt manifest: {what}")))?;
        let blob = |b: &Blob| -> Result<&[u8]> {
            let end = b.offset.checked_add(b.len).filter(|&e| e <= payload.len() as u64);
            end.map(|e| &payload[b.offset as usize..e as usize])
                .ok_or_else(|| corrupt(source, "corrupt: an item lies outside the payload"))
        };
        // The task the preparation encodes the target for (uplift outcomes are numbers).
        let task = match m.task.as_str() {
            "binary" => Task::Binary,
            "multiclass" => Task::Multiclass,
            "regression" | "uplift" => Task::Regression,
            "anomaly" => Task::Anomaly,
            t => return Err(corrupt(source, format!("unknown task `{t}`"))),
        };
        let in_artifact = |e: Error| corrupt(source, e);
        // Third-party decoders get bytes whose lengths were checked; a panic inside one is
        // still an error naming the artifact, never a crash.
        let cleaners: Vec<Box<dyn FittedCleaner>> = m
            .cleaners
            .iter()
            .map(|s| {
                let bytes = blob(&s.blob)?;
                catch_panic(&s.kind, "loading the fitted step", || registry.cleaner(&s.kind)?.load(bytes))
            })
            .collect::<Result<_>>()
            .map_err(in_artifact)?;
        let features: Vec<Box<dyn FittedFeatures>> = m
            .features
            .iter()
            .map(|s| {
                let bytes = blob(&s.blob)?;
                catch_panic(&s.kind, "loading the fitted step", || registry.feature(&s.kind)?.load(bytes))
            })
            .collect::<Result<_>>()
            .map_err(in_artifact)?;
        // Models are reloaded, then their class count is checked against what the manifest
        // says they predict (`classes`: the class count, 0 for values) before any prediction.
        let load = |s: &Saved, classes: &[usize]| -> Result<(String, String, Box<dyn FittedModel>)> {
            let bytes = blob(&s.blob)?;
            let f = catch_panic(&s.kind, "loading the saved model", || registry.model(&s.kind)?.load(bytes))?;
            if let Some(k) = f.n_classes().filter(|k| !classes.contains(k)) {
                let want: Vec<String> = classes.iter().map(|c| c.to_string()).collect();
                return Err(Error::model(
                    &s.kind,
                    format!(
                        "model `{}` predicts {k} classes, the artifact expects {} (0 = values)",
                        s.name,
                        want.join(" or ")
                    ),
                ));
            }
            Ok((s.name.clone(), s.kind.clone(), f))
        };
        let outputs = [if task.is_classification() { m.classes.len() } else { 0 }];
        let model = match &m.model {
            SavedModel::Single { name, model } => {
                let (_, kind, f) = load(model, &outputs).map_err(in_artifact)?;
                Fitted::Model(FinalModel::Single { name: name.clone(), kind, model: f })
            }
            SavedModel::Ensemble { name, layer1, layer2, combiner } => Fitted::Model(FinalModel::Ensemble {
                name: name.clone(),
                layer1: layer1.iter().map(|s| load(s, &outputs)).collect::<Result<_>>().map_err(in_artifact)?,
                layer2: layer2.iter().map(|s| load(s, &outputs)).collect::<Result<_>>().map_err(in_artifact)?,
                combiner: combiner.clone(),
            }),
            SavedModel::Uplift { name, arms, members, control, policy } => {
                let mut learners = Vec::new();
                for l in members {
                    let kind = LearnerKind::from_name(&l.learner)
                        .ok_or_else(|| corrupt(source, format!("unknown meta-learner \"{}\"", l.learner)))?;
                    let outcome = match l.outcome.as_str() {
                        "binary" => Task::Binary,
                        "regression" => Task::Regression,
                        o => return Err(corrupt(source, format!("unknown uplift outcome \"{o}\""))),
                    };
                    // Outcome models predict the outcome; an X-learner's effect models values; a
                    // model of effects one outcome rate per arm.
                    let outputs: &[usize] = if kind == LearnerKind::Direct { &[arms.len()] } else { &[0, 2] };
                    let models = l
                        .models
                        .iter()
                        .map(|s| load(s, outputs).map(|x| x.2))
                        .collect::<Result<_>>()
                        .map_err(in_artifact)?;
                    let base = l.models.first().map(|s| s.kind.clone()).unwrap_or_default();
                    let learner = FittedLearner::from_parts(kind, outcome, arms.len() - 1, models, l.blend.clone());
                    learners.push((base, learner.map_err(in_artifact)?));
                }
                let control = match control {
                    Some(s) => {
                        let (_, kind, f) = load(s, &[0, 2]).map_err(in_artifact)?;
                        Some((kind, f))
                    }
                    None => None,
                };
                Fitted::Uplift(UpliftModel {
                    name: name.clone(),
                    arms: arms.clone(),
                    members: learners,
                    control,
                    policy: policy.clone(),
                })
            }
            SavedModel::Anomaly { name, detector, threshold } => {
                let loaded = blob(&detector.blob).and_then(|bytes| {
                    catch_panic(&detector.kind, "loading the saved detector", || {
                        registry.detector(&detector.kind)?.load(bytes)
                    })
                });
                Fitted::Anomaly(AnomalyModel {
                    name: name.clone(),
                    kind: detector.kind.clone(),
                    detector: loaded.map_err(in_artifact)?,
                    threshold: *threshold,
                })
            }
        };
        let prepared = Prepared {
            cleaners,
            features,
            target: m.target.clone(),
            task,
            classes: m.classes.clone(),
            feature_names: m.feature_names.clone(),
            sequences: None,
        };
        Ok(Artifact { manifest: m, prepared, model })
    }

    /// Predictions for raw rows (as read from a file with [`Artifact::read_input`]) of a
    /// classification or regression model; the target column, when present, is ignored.
    /// Uplift and anomaly artifacts score with [`Artifact::score_frame`].
    pub fn predict_frame(&self, frame: Frame, what: &str) -> Result<Predictions> {
        match self.score_frame(frame, what)? {
            Scored::Model(p) => Ok(p),
            Scored::Uplift(_) | Scored::Anomaly { .. } => Err(Error::data(format!(
                "pipeline `{}` is an {} model: score it with `score_frame`",
                self.manifest.pipeline, self.manifest.task
            ))),
        }
    }

    /// Scores for raw rows (as read from a file with [`Artifact::read_input`]): predictions,
    /// effects per arm (and chosen arms) for an uplift model, or anomaly scores (and flags). The
    /// target column, when present, is ignored.
    pub fn score_frame(&self, frame: Frame, what: &str) -> Result<Scored> {
        self.score_with(frame, what, None)
    }

    /// Scores for rows whose hidden row ids index `sequences` (event-log pipelines).
    fn score_with(&self, frame: Frame, what: &str, sequences: Option<&Sequences>) -> Result<Scored> {
        Ok(self.score_explain_with(frame, what, sequences, None)?.0)
    }

    /// Scores and, when asked, explanations of raw rows (as [`Artifact::score_frame`] reads
    /// them); see [`crate::explain`] for how each model is explained.
    pub fn score_explain(
        &self,
        frame: Frame,
        what: &str,
        explain: Option<&ExplainOptions>,
    ) -> Result<(Scored, Option<Explained>)> {
        self.score_explain_with(frame, what, None, explain)
    }

    /// [`Artifact::score_explain`] for rows whose hidden row ids index `sequences`.
    fn score_explain_with(
        &self,
        mut frame: Frame,
        what: &str,
        sequences: Option<&Sequences>,
        explain: Option<&ExplainOptions>,
    ) -> Result<(Scored, Option<Explained>)> {
        frame.remove(&self.manifest.target);
        let ds = self.prepared.transform_with(frame, what, sequences)?;
        let scored = self.score_ds(&ds)?;
        let explained = match explain {
            Some(o) => Some(self.explain_ds(&ds, o)?),
            None => None,
        };
        Ok((scored, explained))
    }

    /// Explanations of a prepared dataset's rows for the final model.
    fn explain_ds(&self, ds: &promoml_core::Dataset, o: &ExplainOptions) -> Result<Explained> {
        let inputs = Inputs::new(&self.manifest.feature_names, &self.manifest.columns, o.group_one_hot);
        let binary = self.manifest.task == "binary";
        catch_panic(self.model.name(), "explaining", || {
            crate::explain::explain(&self.model, ds, self.manifest.baseline.as_deref(), &inputs, binary, o.sampling)
        })
    }

    /// Scores of a prepared dataset.
    fn score_ds(&self, ds: &promoml_core::Dataset) -> Result<Scored> {
        // Models are third-party code run on parameters that were checked when loaded; a panic
        // is still an error, never a crash.
        let name = self.model.name();
        match &self.model {
            Fitted::Model(m) => {
                let p = catch_panic(name, "predicting", || m.predict(ds))?;
                let width = match &p {
                    Predictions::Proba(a) => a.ncols(),
                    Predictions::Values(_) => 0,
                };
                let want = if self.prepared.task.is_classification() { self.manifest.classes.len() } else { 0 };
                if width != want {
                    return Err(Error::model(name, format!("predicts {width} classes, the artifact lists {want}")));
                }
                Ok(Scored::Model(p))
            }
            Fitted::Uplift(u) => Ok(Scored::Uplift(catch_panic(name, "scoring", || u.score(ds))?)),
            Fitted::Anomaly(a) => {
                let scores = catch_panic(name, "scoring", || a.detector.score(&ds.x))?;
                if scores.len() != ds.n_rows() {
                    return Err(Error::model(&a.kind, format!("{} scores for {} rows", scores.len(), ds.n_rows())));
                }
                Ok(Scored::anomaly(scores, a.threshold))
            }
        }
    }

    /// Read an input file with the training file's options and column types. Errors name the
    /// file and every column the model needs that it lacks.
    pub fn read_input(&self, input: &Path) -> Result<Frame> {
        let csv = self.csv_options();
        let plain = ReadOptions { csv: csv.clone(), types: BTreeMap::new() };
        // Column names first: declared types may only name columns the file has. A text file's
        // first two lines are enough (read through the decompressor of a `.gz`/`.zst` file).
        let names: Vec<String> = if promoml_core::io::is_parquet_file(input) {
            read_file(input, &plain)?.names().into_iter().map(str::to_string).collect()
        } else {
            use std::io::BufRead;
            let mut reader = promoml_core::io::open_text(input)?;
            let mut head = String::new();
            for _ in 0..2 {
                let read = reader
                    .read_line(&mut head)
                    .map_err(|e| Error::data(format!("{}: cannot read its header: {e}", input.display())))?;
                if read == 0 {
                    break;
                }
            }
            read_csv_str(&head, &input.display().to_string(), &csv)?.names().into_iter().map(str::to_string).collect()
        };
        self.select_input(names, &input.display().to_string(), |opts| read_file(input, &opts), csv)
    }

    /// Read CSV text (a request body) as [`Artifact::read_input`] reads a CSV file; `source`
    /// names it in errors.
    pub fn read_input_str(&self, text: &str, source: &str) -> Result<Frame> {
        self.read_text(text, source, self.csv_options())
    }

    /// Read CSV text with options `csv` (types and column checks as for an input file).
    fn read_text(&self, text: &str, source: &str, csv: CsvOptions) -> Result<Frame> {
        let head: String = text.lines().take(2).collect::<Vec<_>>().join("\n");
        let names: Vec<String> = read_csv_str(&head, source, &csv)?.names().into_iter().map(str::to_string).collect();
        let read = |opts: ReadOptions| {
            let mut csv = opts.csv;
            csv.types.extend(opts.types);
            read_csv_str(text, source, &csv)
        };
        self.select_input(names, source, read, csv)
    }

    /// The training file's CSV options (no declared types).
    fn csv_options(&self) -> CsvOptions {
        let r = &self.manifest.read;
        CsvOptions {
            delimiter: r.delimiter,
            header: r.header,
            types: BTreeMap::new(),
            timestamp_format: r.timestamp_format.clone(),
            missing: r.missing.clone(),
            ..CsvOptions::default()
        }
    }

    /// Check that an input with columns `names` has every column the model needs, read it with
    /// the trained types (`read`), and keep only the columns the model reads and the id.
    fn select_input(
        &self,
        names: Vec<String>,
        source: &str,
        read: impl FnOnce(ReadOptions) -> Result<Frame>,
        csv: CsvOptions,
    ) -> Result<Frame> {
        let r = &self.manifest.read;
        let missing: Vec<&String> = self.manifest.columns.iter().filter(|c| !names.contains(c)).collect();
        if !missing.is_empty() {
            let list: Vec<String> = missing.iter().map(|c| format!("`{c}`")).collect();
            return Err(Error::data(format!(
                "{}: missing column{} {} that the model needs (it was trained on: {})",
                source,
                if missing.len() > 1 { "s" } else { "" },
                list.join(", "),
                self.manifest.columns.join(", ")
            )));
        }
        // Declared types apply to the columns the model reads (and the id) only: a target or
        // other column the input happens to carry is dropped unparsed, whatever its values.
        let used = |c: &String| self.manifest.columns.contains(c) || self.manifest.id.as_ref() == Some(c);
        let types =
            r.types.iter().filter(|(c, _)| names.contains(c) && used(c)).map(|(c, t)| (c.clone(), *t)).collect();
        let mut frame = read(ReadOptions { csv, types })?;
        // Only the columns the model needs (and the id) go on: an uplift input may carry its
        // treatment or KPI columns, any input columns the pipeline dropped.
        for name in names {
            if !self.manifest.columns.contains(&name) && self.manifest.id.as_ref() != Some(&name) {
                frame.remove(&name);
            }
        }
        self.with_derived(frame, source)
    }

    /// `frame` with the derived columns the model reads (`[data] derive`) computed by the query
    /// engine, and without the columns read only to derive them (unless one is the id).
    fn with_derived(&self, frame: Frame, source: &str) -> Result<Frame> {
        let m = &self.manifest;
        if m.derive.is_empty() {
            return Ok(frame);
        }
        let derive: Vec<(String, String)> = m.derive.iter().map(|d| (d.name.clone(), d.sql.clone())).collect();
        let limit = m.memory_limit.unwrap_or(crate::data::engine::DEFAULT_MEMORY_LIMIT);
        let mut frame = crate::data::engine::derive(frame, &derive, limit).map_err(|e| match e {
            Error::Config { key, message } => Error::data(format!("{source}: {key}: {message}")),
            other => other,
        })?;
        // (An event log's entity table keeps its columns: the entity names the rows.)
        for c in m.derive_only.iter().filter(|_| m.events.is_none()) {
            if m.id.as_ref() != Some(c) {
                frame.remove(c);
            }
        }
        Ok(frame)
    }

    /// Score `input` and write `output` (CSV): the id column when the pipeline has `data.id`
    /// and the input has it, then `score` (binary: positive-class probability), one
    /// `score_<class>` column per class (multiclass), `prediction` (regression), or for an
    /// uplift model one `uplift_<arm>` column per treatment arm (predicted effect versus
    /// control) and, with a policy, `arm` (the chosen arm, the control's name for none) and
    /// `expected_gain` (its expected net value versus control), or for an anomaly model
    /// `anomaly_score` and, with a threshold, `is_anomaly`. Returns the number of rows scored.
    pub fn predict_file(&self, input: &Path, output: &Path) -> Result<usize> {
        self.predict_file_at(input, output, None)
    }

    /// [`Artifact::predict_file`] with, for an event-log pipeline, the end of the input window
    /// (`cutoff`: ISO date or time, or the data's timestamp format; default the training
    /// cutoff). The input is then an event log; every entity with an event in the window gets
    /// one row of scores, named by the entity column. Errors when `cutoff` is given for another
    /// pipeline.
    pub fn predict_file_at(&self, input: &Path, output: &Path, cutoff: Option<&str>) -> Result<usize> {
        self.predict_file_explained(input, output, cutoff, None)
    }

    /// [`Artifact::predict_file_at`] with, when `explain` is `Some(k)`, each row's explanation
    /// after its scores: `base_value`, then `feature_i` and `contribution_i` for its `k`
    /// largest contributions (largest magnitude first; empty when it has fewer inputs), then
    /// `rest` (the sum of the others), so that `base_value + Σ contribution_i + rest` is the
    /// raw output (see [`crate::explain`]).
    pub fn predict_file_explained(
        &self,
        input: &Path,
        output: &Path,
        cutoff: Option<&str>,
        explain: Option<usize>,
    ) -> Result<usize> {
        let what = format!("input ({})", input.display());
        let opts = ExplainOptions::default();
        let batch = if self.manifest.events.is_some() {
            self.score_event_log(input, &what, cutoff, explain.map(|_| &opts))?
        } else {
            let frame = self.read_input(input)?;
            self.score_input(frame, &what, cutoff, explain.map(|_| &opts))?
        };
        let mut text = self.scores_csv(batch.ids.as_ref().map(|(n, d)| (n.as_str(), d)), &batch.scored, batch.n);
        if let (Some(k), Some(e)) = (explain, &batch.explained) {
            text = with_explanations(&text, e, k);
        }
        std::fs::write(output, text).map_err(|e| Error::Io { path: output.to_path_buf(), source: e })?;
        Ok(batch.n)
    }

    /// Score (and explain) a frame read from an input: rows as they are, or for an event-log
    /// pipeline the entities of the event log (`cutoff`: the end of the input window).
    pub fn score_input(
        &self,
        frame: Frame,
        what: &str,
        cutoff: Option<&str>,
        explain: Option<&ExplainOptions>,
    ) -> Result<ScoredBatch> {
        let mut frame = frame;
        if self.manifest.events.is_none() && cutoff.is_some() {
            return Err(Error::data(format!(
                "--cutoff applies to event-log pipelines only; pipeline `{}` scores rows as they are",
                self.manifest.pipeline
            )));
        }
        if self.manifest.events.is_some() {
            let (ids, n, (scored, explained)) = self.score_events_explained(frame, cutoff, what, explain)?;
            return Ok(ScoredBatch { ids: Some(ids), n, scored, explained });
        }
        let ids = match &self.manifest.id {
            Some(id) => frame.remove(id).map(|c| (id.clone(), c.data)),
            None => None,
        };
        let n = frame.n_rows();
        let (scored, explained) = self.score_explain(frame, what, explain)?;
        Ok(ScoredBatch { ids, n, scored, explained })
    }

    /// Scores of the entities of an event log (event-log pipelines): their ids (the entity
    /// column), their number and their scores.
    pub fn score_events(
        &self,
        events: Frame,
        cutoff: Option<&str>,
        what: &str,
    ) -> Result<((String, ColumnData), usize, Scored)> {
        let (ids, n, (scored, _)) = self.score_events_explained(events, cutoff, what, None)?;
        Ok((ids, n, scored))
    }

    /// Score (and explain) the entities of the event log in the file `input` (event-log
    /// pipelines) on the query engine: the log is streamed and only the columns the plan reads
    /// are parsed, so memory holds the per-entity rows, not the log (within the training run's
    /// `[data] memory_limit`; the engine spills its sort to disk beyond it). `cutoff` ends the
    /// input window as in [`Artifact::score_input`].
    pub fn score_event_log(
        &self,
        input: &Path,
        what: &str,
        cutoff: Option<&str>,
        explain: Option<&ExplainOptions>,
    ) -> Result<ScoredBatch> {
        let plan = self.scoring_plan(cutoff)?;
        let r = &self.manifest.read;
        let read = ReadOptions { csv: self.csv_options(), types: r.types.clone() };
        let limit = self.manifest.memory_limit.unwrap_or(crate::data::engine::DEFAULT_MEMORY_LIMIT);
        let built = crate::data::events::build_file(input, &read, &plan, &self.manifest.target, limit)?;
        let (ids, n, (scored, explained)) = self.score_table(built.table, &plan, what, explain)?;
        Ok(ScoredBatch { ids: Some(ids), n, scored, explained })
    }

    /// The event plan for scoring, its input window ending at `cutoff` when given.
    fn scoring_plan(&self, cutoff: Option<&str>) -> Result<EventsPlan> {
        let plan =
            self.manifest.events.as_ref().ok_or_else(|| {
                Error::data(format!("pipeline `{}` does not read an event log", self.manifest.pipeline))
            })?;
        plan.for_scoring(None, cutoff, self.manifest.read.timestamp_format.as_deref(), "--cutoff")
    }

    /// [`Artifact::score_events`] with explanations when asked.
    #[allow(clippy::type_complexity)]
    fn score_events_explained(
        &self,
        events: Frame,
        cutoff: Option<&str>,
        what: &str,
        explain: Option<&ExplainOptions>,
    ) -> Result<((String, ColumnData), usize, (Scored, Option<Explained>))> {
        let plan = self.scoring_plan(cutoff)?;
        let table = crate::sequence::build(&events, &plan, &self.manifest.target)
            .map_err(|e| Error::data(format!("{what} (data.events): {e}")))?;
        self.score_table(table, &plan, what, explain)
    }

    /// Score (and explain) the rows of an entity table built with `plan`.
    #[allow(clippy::type_complexity)]
    fn score_table(
        &self,
        table: crate::sequence::EntityTable,
        plan: &EventsPlan,
        what: &str,
        explain: Option<&ExplainOptions>,
    ) -> Result<((String, ColumnData), usize, (Scored, Option<Explained>))> {
        let mut frame = self.with_derived(table.frame, what)?;
        let ids = frame.remove(&plan.entity).map(|c| (plan.entity.clone(), c.data)).expect("the table has its entity");
        for d in &self.manifest.drop {
            frame.remove(d);
        }
        let n = frame.n_rows();
        let scored = self.score_explain_with(frame, what, table.sequences.as_ref(), explain)?;
        Ok((ids, n, scored))
    }

    /// The score columns of `scored` (see [`Artifact::predict_file`]) and the cells of row `i`.
    pub fn score_columns<'a>(&'a self, scored: &'a Scored) -> (Vec<String>, RowCells<'a>) {
        let binary = |a: &ndarray::Array2<f64>| a.ncols() == 2 && self.manifest.task == "binary";
        let arms: &[String] = match &self.manifest.model {
            SavedModel::Uplift { arms, .. } => arms,
            _ => &[],
        };
        match scored {
            Scored::Model(Predictions::Values(v)) => {
                (vec!["prediction".into()], Box::new(|i| vec![Cell::Number(v[i])]))
            }
            Scored::Model(Predictions::Proba(a)) if binary(a) => {
                (vec!["score".into()], Box::new(|i| vec![Cell::Number(a[[i, 1]])]))
            }
            Scored::Model(Predictions::Proba(a)) => (
                self.manifest.classes.iter().map(|c| format!("score_{c}")).collect(),
                Box::new(|i| a.row(i).iter().map(|&v| Cell::Number(v)).collect()),
            ),
            Scored::Uplift(u) => {
                let mut names: Vec<String> = arms.iter().skip(1).map(|a| format!("uplift_{a}")).collect();
                if u.policy.is_some() {
                    names.extend(["arm".to_string(), "expected_gain".to_string()]);
                }
                let cells = move |i: usize| {
                    let mut row: Vec<Cell> = u.tau.iter().map(|t| Cell::Number(t[i])).collect();
                    if let Some((arm, gain)) = &u.policy {
                        row.push(Cell::Text(arms.get(arm[i]).cloned().unwrap_or_default()));
                        row.push(Cell::Number(gain[i]));
                    }
                    row
                };
                (names, Box::new(cells))
            }
            Scored::Anomaly { scores, flagged } => {
                let mut names = vec!["anomaly_score".to_string()];
                names.extend(flagged.iter().map(|_| "is_anomaly".to_string()));
                let cells = move |i: usize| {
                    let mut row = vec![Cell::Number(scores[i])];
                    row.extend(flagged.iter().map(|f| Cell::Bool(f[i])));
                    row
                };
                (names, Box::new(cells))
            }
        }
    }

    /// The scores file: the id column (when given), then the score columns of `scored`.
    fn scores_csv(&self, ids: Option<(&str, &ColumnData)>, scored: &Scored, n: usize) -> String {
        let (names, cells) = self.score_columns(scored);
        let mut header: Vec<String> = ids.iter().map(|(name, _)| quote(name)).collect();
        header.extend(names.iter().map(|c| quote(c)));
        let mut out = header.join(",");
        out.push('\n');
        for i in 0..n {
            let mut row: Vec<String> = Vec::new();
            if let Some((_, d)) = ids {
                row.push(d.value_string(i).map(|s| quote(&s)).unwrap_or_default());
            }
            row.extend(cells(i).iter().map(Cell::to_csv));
            out.push_str(&row.join(","));
            out.push('\n');
        }
        out
    }

    /// A batch's rows as JSON objects: the id (when given), the score columns and, with
    /// explanations, `base_value`, the `k` largest `contributions` (`feature`,
    /// `contribution`) and `rest` (see [`crate::explain::RowExplanation`]).
    pub fn rows_json(&self, batch: &ScoredBatch, k: usize) -> Vec<serde_json::Value> {
        let (names, cells) = self.score_columns(&batch.scored);
        (0..batch.n)
            .map(|i| {
                let mut o = serde_json::Map::new();
                if let Some((name, d)) = &batch.ids {
                    o.insert(name.clone(), id_json(d, i));
                }
                for (n, c) in names.iter().zip(cells(i)) {
                    o.insert(n.clone(), c.to_json());
                }
                if let Some(e) = &batch.explained {
                    let r = e.row(i, k);
                    o.insert("base_value".into(), json_number(r.base_value));
                    let list = r
                        .contributions
                        .iter()
                        .map(|c| serde_json::json!({"feature": c.feature, "contribution": json_number(c.contribution)}))
                        .collect();
                    o.insert("contributions".into(), serde_json::Value::Array(list));
                    o.insert("rest".into(), json_number(r.rest));
                }
                serde_json::Value::Object(o)
            })
            .collect()
    }

    /// Score (and explain) rows given as JSON objects (a scoring request), read with the
    /// trained column types; errors name the row index, the column and the value.
    pub fn score_json_rows(&self, rows: &[serde_json::Value], explain: Option<&ExplainOptions>) -> Result<ScoredBatch> {
        if self.manifest.events.is_some() {
            return Err(Error::data(format!(
                "pipeline `{}` scores an event log: send `events` (and optionally `cutoff`), not `rows`",
                self.manifest.pipeline
            )));
        }
        let schema = crate::rows::RowSchema {
            columns: &self.manifest.columns,
            id: self.manifest.id.as_deref(),
            types: &self.manifest.read.types,
            missing: &self.manifest.read.missing,
            timestamp_format: self.manifest.read.timestamp_format.as_deref(),
        };
        let (frame, ids) = crate::rows::frame_from_json(rows, &schema)?;
        let frame = self.with_derived(frame, "request")?;
        // An id that is also a model input stays in the frame; its values are echoed as given.
        let ids = match (&self.manifest.id, ids) {
            (Some(name), Some(v)) => Some((name.clone(), IdColumn::Json(v))),
            (Some(name), None) if self.manifest.columns.contains(name) => {
                frame.column(name).map(|c| (name.clone(), IdColumn::Data(c.data.clone())))
            }
            _ => None,
        };
        let n = frame.n_rows();
        let (scored, explained) = self.score_explain(frame, "request", explain)?;
        Ok(ScoredBatch { ids: ids.map(|(n, c)| (n, c.into_data())), n, scored, explained })
    }

    /// Score (and explain) an event log given as JSON objects (event-log pipelines), read as
    /// an event-log file would be; `cutoff` ends the input window as for `predict --cutoff`.
    pub fn score_json_events(
        &self,
        events: &[serde_json::Value],
        cutoff: Option<&str>,
        explain: Option<&ExplainOptions>,
    ) -> Result<ScoredBatch> {
        if self.manifest.events.is_none() {
            return Err(Error::data(format!(
                "pipeline `{}` scores rows: send `rows`, not `events`",
                self.manifest.pipeline
            )));
        }
        let text = crate::rows::events_csv(events)?;
        // Comma-separated whatever the training file's delimiter; its other options hold.
        let csv = CsvOptions { delimiter: Some(b','), header: true, ..self.csv_options() };
        let frame = self.read_text(&text, "request events", csv)?;
        self.score_input(frame, "request events", cutoff, explain)
    }

    /// What the artifact serves, for a service's model endpoint: pipeline, task, final model,
    /// the input columns with their types, the id column, classes or arms, the score columns,
    /// the model features and notes.
    pub fn describe(&self) -> serde_json::Value {
        let m = &self.manifest;
        let inputs: Vec<serde_json::Value> = m
            .columns
            .iter()
            .map(|c| {
                let t = m.read.types.get(c).map(|t| format!("{t:?}").to_lowercase());
                serde_json::json!({"name": c, "type": t})
            })
            .collect();
        let arms = match &m.model {
            SavedModel::Uplift { arms, .. } => arms.clone(),
            _ => Vec::new(),
        };
        serde_json::json!({
            "pipeline": m.pipeline,
            "task": m.task,
            "model": self.model.name(),
            "promoml_version": m.promoml_version,
            "reads": if m.events.is_some() { "events" } else { "rows" },
            "inputs": inputs,
            "id": m.id,
            "target": m.target,
            "classes": m.classes,
            "arms": arms,
            "features": m.feature_names,
            "derived": m.derive.iter().map(|d| serde_json::json!({"name": d.name, "sql": d.sql})).collect::<Vec<_>>(),
            "notes": m.notes,
        })
    }
}

/// Scores of a batch of rows (or event-log entities), with their ids and explanations.
pub struct ScoredBatch {
    /// The id column (name, values) when the input had it.
    pub ids: Option<(String, ColumnData)>,
    /// Rows (entities) scored.
    pub n: usize,
    /// Their scores.
    pub scored: Scored,
    /// Their explanations, when asked.
    pub explained: Option<Explained>,
}

/// Ids of request rows: the JSON values as given, or the typed column of an id that is an input.
enum IdColumn {
    Json(Vec<serde_json::Value>),
    Data(ColumnData),
}

impl IdColumn {
    /// As a column: numbers when every id is a number, else labels.
    fn into_data(self) -> ColumnData {
        match self {
            IdColumn::Data(d) => d,
            IdColumn::Json(v) if v.iter().all(|x| x.is_number()) => {
                ColumnData::Numeric(v.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
            }
            IdColumn::Json(v) => ColumnData::categorical_from(v.iter().map(|x| match x {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                x => Some(x.to_string()),
            })),
        }
    }
}

/// An id value as JSON: a number for numeric ids (an integer when it is one), else its text.
fn id_json(d: &ColumnData, i: usize) -> serde_json::Value {
    match d {
        ColumnData::Numeric(v) if v[i].fract() == 0.0 && v[i].abs() < 9.0e15 => (v[i] as i64).into(),
        ColumnData::Numeric(v) => json_number(v[i]),
        _ => d.value_string(i).map_or(serde_json::Value::Null, serde_json::Value::String),
    }
}

/// A number as JSON (`null` for NaN or an infinity, which JSON cannot hold).
fn json_number(x: f64) -> serde_json::Value {
    serde_json::Number::from_f64(x).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// What to explain and how (see [`crate::explain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainOptions {
    /// Add the one-hot features of a column into one contribution named after it (default on).
    pub group_one_hot: bool,
    /// Settings of the sampling estimator, for models without an exact method.
    pub sampling: SamplingSettings,
}

impl Default for ExplainOptions {
    fn default() -> Self {
        ExplainOptions { group_one_hot: true, sampling: SamplingSettings::default() }
    }
}

/// One output cell: a number, a label or a flag.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A score.
    Number(f64),
    /// An arm name.
    Text(String),
    /// A flag (`is_anomaly`).
    Bool(bool),
}

impl Cell {
    /// As a CSV field, as `predict` writes it.
    pub fn to_csv(&self) -> String {
        match self {
            Cell::Number(x) => x.to_string(),
            Cell::Text(s) => quote(s),
            Cell::Bool(b) => b.to_string(),
        }
    }
    /// As a JSON value (`null` for a NaN score).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Cell::Number(x) => json_number(*x),
            Cell::Text(s) => serde_json::Value::String(s.clone()),
            Cell::Bool(b) => serde_json::Value::Bool(*b),
        }
    }
}

/// The scores file with each row's explanation appended (see
/// [`Artifact::predict_file_explained`]).
fn with_explanations(scores: &str, e: &Explained, k: usize) -> String {
    let mut lines = scores.lines();
    let mut header = lines.next().unwrap_or_default().to_string();
    header.push_str(",base_value");
    for j in 1..=k {
        header.push_str(&format!(",feature_{j},contribution_{j}"));
    }
    header.push_str(",rest\n");
    let mut out = header;
    for (i, line) in lines.enumerate() {
        let r = e.row(i, k);
        out.push_str(line);
        out.push_str(&format!(",{}", r.base_value));
        for j in 0..k {
            match r.contributions.get(j) {
                Some(c) => out.push_str(&format!(",{},{}", quote(&c.feature), c.contribution)),
                None => out.push_str(",,"),
            }
        }
        out.push_str(&format!(",{}\n", r.rest));
    }
    out
}

/// The score cells of one output row, by row index.
pub type RowCells<'a> = Box<dyn Fn(usize) -> Vec<Cell> + 'a>;

/// Per-feature medians of the training rows as the model sees them (missing values left out;
/// 0 for a feature with none): the baseline of linear and sampling explanations. `None` when
/// the training rows cannot be prepared again (explanations that need a baseline then say so).
fn baseline_row(prepared: &Prepared, train: &Frame) -> Option<Vec<f64>> {
    let ds = match prepared.transform_with(train.clone(), "training", prepared.sequences.as_deref()) {
        Ok(ds) => ds,
        Err(e) => {
            tracing::debug!("no explanation baseline in the artifact: {e}");
            return None;
        }
    };
    Some(crate::explain::feature_medians(&ds.x))
}

fn no_blob() -> Blob {
    Blob { offset: 0, len: 0 }
}

/// The `promoml run` hook: build the artifact of the final model, write it to `req.path`,
/// reload it through the registry and check that it scores the test rows bit for bit like the
/// in-process model did (`expected`: predictions, uplift effects and assignments, or anomaly
/// scores).
pub fn write_for_run(
    req: &ArtifactRequest,
    p: &Pipeline,
    prepared: Prepared,
    train: &Frame,
    test: &Frame,
    model: Fitted,
    expected: &Scored,
) -> Result<()> {
    // Event-log pipelines: the test rows' hidden row ids index the run's sequences.
    let sequences = prepared.sequences.clone();
    // A model that cannot be saved leaves the run without an artifact, not without a report.
    let built = Artifact::new(p, prepared, train, model).and_then(|a| a.to_bytes().map(|b| (a, b)));
    let (artifact, bytes) = match built {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("no model artifact written: {e}");
            return Ok(());
        }
    };
    for note in artifact.notes() {
        tracing::warn!("model artifact: {note}");
    }
    if let Some(dir) = req.path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io { path: dir.to_path_buf(), source: e })?;
    }
    let reloaded = Artifact::from_bytes(&bytes, &req.path.display().to_string(), &req.registry)?;
    let again = reloaded.score_with(test.clone(), "test", sequences.as_deref())?;
    if again.bits() != expected.bits() {
        return Err(Error::model(
            artifact.model.name(),
            "the reloaded model artifact does not reproduce the in-process test predictions bit for bit",
        ));
    }
    std::fs::write(&req.path, bytes).map_err(|e| Error::Io { path: req.path.clone(), source: e })
}

/// File name of the artifact `promoml run` writes into its output folder.
pub const FILE_NAME: &str = "model.promoml";

/// The artifact request of `promoml run` for pipeline `p` writing into `out` (every task).
pub fn for_task(_p: &Pipeline, out: &Path, registry: &Registry) -> Option<ArtifactRequest> {
    Some(ArtifactRequest { path: out.join(FILE_NAME), registry: registry.clone() })
}

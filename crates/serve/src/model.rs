//! The serving model and its hot reload: a request takes the current model (an `Arc`) and
//! keeps it until it answers, so a reload that swaps in a new one never disturbs requests in
//! flight. A new artifact is read and checked before the swap (its digest, manifest and every
//! model are checked as it loads, and it must serve the same task); one that fails is refused
//! and the old model stays.

use promoml_core::{Registry, Result};
use promoml_pipeline::artifact::Artifact;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

/// A loaded artifact and where it came from.
pub struct Loaded {
    /// The artifact.
    pub artifact: Artifact,
    /// 1 for the model loaded at start, +1 per successful reload.
    pub generation: u64,
    /// The file it was read from.
    pub path: PathBuf,
    /// When it was loaded.
    pub loaded_at: SystemTime,
}

/// The current model, swapped atomically by [`ModelSlot::reload`].
pub struct ModelSlot {
    current: RwLock<Arc<Loaded>>,
    registry: Registry,
    path: PathBuf,
    /// Serialises reloads (a second waits for the first, then reads the file again).
    reloading: Mutex<()>,
}

impl ModelSlot {
    /// Load the artifact at `path` (generation 1).
    pub fn open(path: &Path, registry: Registry) -> Result<ModelSlot> {
        let artifact = Artifact::read(path, &registry)?;
        let loaded = Loaded { artifact, generation: 1, path: path.to_path_buf(), loaded_at: SystemTime::now() };
        Ok(ModelSlot {
            current: RwLock::new(Arc::new(loaded)),
            registry,
            path: path.to_path_buf(),
            reloading: Mutex::new(()),
        })
    }

    /// The model to answer a request with (kept by the request until it is answered).
    pub fn current(&self) -> Arc<Loaded> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Read the artifact file again and, when it loads and serves the same task, swap it in;
    /// returns the new generation. On error the old model stays.
    pub fn reload(&self) -> Result<u64> {
        let _one_at_a_time = self.reloading.lock().unwrap_or_else(|e| e.into_inner());
        let artifact = Artifact::read(&self.path, &self.registry)?;
        let old = self.current();
        if artifact.task() != old.artifact.task() || artifact.reads_event_log() != old.artifact.reads_event_log() {
            return Err(promoml_core::Error::data(format!(
                "{}: the new artifact is a {} model{}, the serving one a {} model{}; restart the service to change \
                 what it serves",
                self.path.display(),
                artifact.task(),
                if artifact.reads_event_log() { " of an event log" } else { "" },
                old.artifact.task(),
                if old.artifact.reads_event_log() { " of an event log" } else { "" },
            )));
        }
        let generation = old.generation + 1;
        let loaded = Loaded { artifact, generation, path: self.path.clone(), loaded_at: SystemTime::now() };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded);
        Ok(generation)
    }
}

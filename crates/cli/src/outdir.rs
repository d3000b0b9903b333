//! The output folder of `promoml run`, held by one run at a time and updated whole.
//!
//! - **One run at a time.** The run holds an exclusive lock on `OUT/.promoml.lock` (an OS file
//!   lock, released when the process ends however it ends); a second run into the same folder is
//!   refused, naming the holder (pid, pipeline, start time).
//! - **Whole runs only.** The run writes everything (reports, model, trial log, assignments) into
//!   `OUT/.promoml-run/` and, once it succeeded, moves each file into `OUT`, removing the files of
//!   earlier runs that this run did not write (a model that could not be saved this time does not
//!   leave the previous run's `model.promoml` behind). A run that fails or is interrupted after it
//!   started removes the previous run's outputs ([`OutDir::discard_previous`]): `OUT` then holds
//!   nothing that a CI job could mistake for this run's result, never a mix of two runs. Its
//!   trial log stays in `OUT/.promoml-run/` for `--resume`. (An invalid pipeline file is refused
//!   before the run starts and leaves `OUT` untouched.)

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the output folder.
pub const LOCK_FILE: &str = ".promoml.lock";
/// Name of the folder a run writes into before it publishes.
pub const STAGING_DIR: &str = ".promoml-run";
/// Name of the file listing what the last published run wrote.
pub const PUBLISHED_LIST: &str = ".promoml-files";
/// The trial log's file name (an export of the study database).
pub const TRIAL_LOG: &str = "trials.jsonl";
/// The study database's file name (SQLite): what `--resume` continues.
pub const STUDY_DB: &str = "study.db";
/// Files a run of any promoml version may have written into `OUT` (removed when a later run
/// does not write them, even when no list of published files exists yet).
const KNOWN_OUTPUTS: [&str; 7] =
    ["report.json", "report.md", "report.html", "model.promoml", TRIAL_LOG, STUDY_DB, "assignments.csv"];

/// An output folder held by this process for one run.
pub struct OutDir {
    out: PathBuf,
    staging: PathBuf,
    /// Holds the OS lock for as long as the run lives.
    _lock: File,
}

fn io_err(path: &Path, e: std::io::Error) -> String {
    format!("{}: {e}", path.display())
}

impl OutDir {
    /// Create `out` if needed and take its lock; refused when another run holds it. `pipeline`
    /// is recorded in the lock file so that a refused run can name the holder.
    pub fn acquire(out: &Path, pipeline: &Path) -> Result<OutDir, String> {
        if out.exists() && !out.is_dir() {
            return Err(format!("--out {}: exists and is not a folder", out.display()));
        }
        std::fs::create_dir_all(out).map_err(|e| io_err(out, e))?;
        let lock_path = out.join(LOCK_FILE);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "another promoml run".to_string() } else { holder.to_string() };
                return Err(format!(
                    "--out {} is in use by {holder}; wait for that run to finish or choose another --out",
                    out.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io_err(&lock_path, e)),
        }
        let since =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
        let who = format!(
            "promoml run (pid {}, pipeline {}, started at unix time {since})",
            std::process::id(),
            pipeline.display()
        );
        lock.set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(who.as_bytes()))
            .map_err(|e| io_err(&lock_path, e))?;
        let staging = out.join(STAGING_DIR);
        Ok(OutDir { out: out.to_path_buf(), staging, _lock: lock })
    }

    /// The folder the run writes into.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The trial log the run writes (inside the staging folder).
    pub fn trial_log(&self) -> PathBuf {
        self.staging.join(TRIAL_LOG)
    }

    /// The study database the run writes (inside the staging folder).
    pub fn study_db(&self) -> PathBuf {
        self.staging.join(STUDY_DB)
    }

    /// Make an empty staging folder. With `resume`, it starts with the study to continue (the
    /// study database and its trial-log export): that of an unfinished run (left in the
    /// staging folder) if there is one, else the last published run's. Outputs of a promoml
    /// without study databases resume from their trial log alone.
    pub fn prepare(&self, resume: bool) -> Result<(), String> {
        let mut carried: Vec<(&str, Vec<u8>)> = Vec::new();
        if resume {
            let from = if self.trial_log().is_file() || self.study_db().is_file() { &self.staging } else { &self.out };
            for name in [STUDY_DB, TRIAL_LOG] {
                let path = from.join(name);
                if path.is_file() {
                    carried.push((name, std::fs::read(&path).map_err(|e| io_err(&path, e))?));
                }
            }
            if carried.is_empty() {
                return Err(format!(
                    "--resume: no study at {} (run once without --resume first)",
                    self.out.join(STUDY_DB).display()
                ));
            }
        }
        if self.staging.exists() {
            std::fs::remove_dir_all(&self.staging).map_err(|e| io_err(&self.staging, e))?;
        }
        std::fs::create_dir_all(&self.staging).map_err(|e| io_err(&self.staging, e))?;
        for (name, bytes) in carried {
            let to = self.staging.join(name);
            std::fs::write(&to, bytes).map_err(|e| io_err(&to, e))?;
        }
        Ok(())
    }

    /// Number of trials in the staging folder's trial log (its lines after the header).
    pub fn logged_trials(&self) -> usize {
        std::fs::read_to_string(self.trial_log())
            .map(|t| t.lines().skip(1).filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    }

    /// The run failed or was interrupted: remove what earlier runs published (reports, model,
    /// trial log, listed files), so that nothing in `OUT` passes for this run's result. The
    /// staging folder (this run's trial log) stays for `--resume`.
    pub fn discard_previous(&self) -> Result<(), String> {
        let list = self.out.join(PUBLISHED_LIST);
        let previous = std::fs::read_to_string(&list).unwrap_or_default();
        remove_outputs(&self.out, previous.lines().map(str::trim).chain(KNOWN_OUTPUTS), &[])?;
        match std::fs::remove_file(&list) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_err(&list, e)),
            _ => Ok(()),
        }
    }

    /// Move every file the run wrote into the output folder, remove the files of earlier runs
    /// that this run did not write, and drop the staging folder. Returns the published paths.
    pub fn publish(self) -> Result<Vec<PathBuf>, String> {
        let mut names: Vec<String> = Vec::new();
        for entry in std::fs::read_dir(&self.staging).map_err(|e| io_err(&self.staging, e))? {
            let entry = entry.map_err(|e| io_err(&self.staging, e))?;
            if entry.file_type().map_err(|e| io_err(&entry.path(), e))?.is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        names.sort();
        let list = self.out.join(PUBLISHED_LIST);
        let previous = std::fs::read_to_string(&list).unwrap_or_default();
        remove_outputs(&self.out, previous.lines().map(str::trim).chain(KNOWN_OUTPUTS), &names)?;
        let mut published = Vec::new();
        for name in &names {
            let (from, to) = (self.staging.join(name), self.out.join(name));
            std::fs::rename(&from, &to).map_err(|e| io_err(&to, e))?;
            published.push(to);
        }
        let tmp = self.staging.join(PUBLISHED_LIST);
        std::fs::write(&tmp, names.join("\n") + "\n")
            .and_then(|()| std::fs::rename(&tmp, &list))
            .map_err(|e| io_err(&list, e))?;
        std::fs::remove_dir_all(&self.staging).map_err(|e| io_err(&self.staging, e))?;
        Ok(published)
    }
}

/// Remove the fold folders `OUT/fold-r` with `r >= keep` that an earlier run with outer folds
/// published (they hold its list of published files), so that `OUT` never shows folds of
/// another run beside this run's report. Other folders are left alone.
pub fn remove_stale_folds(out: &Path, keep: usize) -> Result<(), String> {
    let Ok(entries) = std::fs::read_dir(out) else { return Ok(()) };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(r) = name.strip_prefix("fold-").and_then(|r| r.parse::<usize>().ok()) else { continue };
        let path = entry.path();
        if r >= keep && path.is_dir() && path.join(PUBLISHED_LIST).is_file() {
            std::fs::remove_dir_all(&path).map_err(|e| io_err(&path, e))?;
        }
    }
    Ok(())
}

/// Remove the files `names` from `out`, except those in `keep` (missing ones are fine).
fn remove_outputs<'a>(out: &Path, names: impl Iterator<Item = &'a str>, keep: &[String]) -> Result<(), String> {
    // Only plain names: the list is ours, but never let it reach outside the folder.
    let stale =
        names.filter(|n| !n.is_empty() && !n.contains(['/', '\\']) && *n != ".." && !keep.iter().any(|m| m == n));
    for name in stale {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_folds_of_an_earlier_run_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        for d in ["fold-0", "fold-3", "fold-4", "fold-x", "mine"] {
            std::fs::create_dir(out.join(d)).unwrap();
            std::fs::write(out.join(d).join(PUBLISHED_LIST), "report.json\n").unwrap();
        }
        std::fs::create_dir(out.join("fold-5")).unwrap();
        remove_stale_folds(out, 3).unwrap();
        let mut left: Vec<String> =
            std::fs::read_dir(out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        // fold-5 was not written by promoml (no list): the user's.
        assert_eq!(left, ["fold-0", "fold-5", "fold-x", "mine"]);
        remove_stale_folds(out, 0).unwrap();
        assert!(!out.join("fold-0").exists());
    }

    #[test]
    fn second_holder_is_refused_naming_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutDir::acquire(dir.path(), Path::new("a.toml")).unwrap();
        let e = OutDir::acquire(dir.path(), Path::new("b.toml")).err().unwrap();
        assert!(e.contains("in use by promoml run") && e.contains("a.toml"), "{e}");
        assert!(e.contains(&format!("pid {}", std::process::id())), "{e}");
        drop(first);
        OutDir::acquire(dir.path(), Path::new("b.toml")).unwrap();
    }

    #[test]
    fn publish_replaces_the_previous_run_whole() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        // An earlier run: report, model, trial log and an extra file it listed.
        for f in ["report.json", "model.promoml", "trials.jsonl", "extra.csv"] {
            std::fs::write(out.join(f), "old").unwrap();
        }
        std::fs::write(out.join(PUBLISHED_LIST), "report.json\nmodel.promoml\ntrials.jsonl\nextra.csv\n").unwrap();
        std::fs::write(out.join("mine.txt"), "the user's").unwrap();
        let d = OutDir::acquire(out, Path::new("p.toml")).unwrap();
        d.prepare(false).unwrap();
        // This run writes no model.
        std::fs::write(d.staging().join("report.json"), "new").unwrap();
        std::fs::write(d.trial_log(), "header\n").unwrap();
        let published = d.publish().unwrap();
        assert_eq!(published.len(), 2);
        assert_eq!(std::fs::read_to_string(out.join("report.json")).unwrap(), "new");
        assert!(!out.join("model.promoml").exists(), "the earlier run's model is gone");
        assert!(!out.join("extra.csv").exists());
        assert!(out.join("mine.txt").exists(), "files promoml never wrote stay");
        assert!(!out.join(STAGING_DIR).exists());
    }

    #[test]
    fn a_failed_run_leaves_no_earlier_result_and_its_log_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        // --resume without an unfinished run continues the published log.
        std::fs::write(out.join(TRIAL_LOG), "old log\n").unwrap();
        let d = OutDir::acquire(out, Path::new("p.toml")).unwrap();
        d.prepare(true).unwrap();
        assert_eq!(std::fs::read_to_string(d.trial_log()).unwrap(), "old log\n");
        drop(d);
        std::fs::write(out.join("report.json"), "old").unwrap();
        std::fs::write(out.join("model.promoml"), "old").unwrap();
        {
            let d = OutDir::acquire(out, Path::new("p.toml")).unwrap();
            d.prepare(false).unwrap();
            std::fs::write(d.trial_log(), "new log\ntrial\n").unwrap();
            assert_eq!(d.logged_trials(), 1);
            // The run fails here.
            d.discard_previous().unwrap();
        }
        for f in ["report.json", "model.promoml", TRIAL_LOG] {
            assert!(!out.join(f).exists(), "{f} of the earlier run is gone");
        }
        // --resume continues the unfinished run's log.
        let d = OutDir::acquire(out, Path::new("p.toml")).unwrap();
        d.prepare(true).unwrap();
        assert_eq!(std::fs::read_to_string(d.trial_log()).unwrap(), "new log\ntrial\n");
        // The study database travels with it.
        std::fs::write(d.study_db(), "db").unwrap();
        drop(d);
        let d = OutDir::acquire(out, Path::new("p.toml")).unwrap();
        d.prepare(true).unwrap();
        assert_eq!(std::fs::read_to_string(d.study_db()).unwrap(), "db");
        // Without any study, a clear refusal.
        let empty = tempfile::tempdir().unwrap();
        let d = OutDir::acquire(empty.path(), Path::new("p.toml")).unwrap();
        let e = d.prepare(true).unwrap_err();
        assert!(e.contains("no study") && e.contains("study.db"), "{e}");
    }
}

//! Panics inside third-party code (decoders, model crates) turned into errors: the last line of
//! defence behind the length and shape checks that come first. [`catch_panic`] runs a closure
//! and turns a panic into an [`Error::Model`](crate::Error::Model); [`quiet_caught_panics`]
//! installs a panic hook that stays silent for the panics it catches (the error says what went
//! wrong) and prints every other panic as before.

use crate::{Error, Result};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

thread_local! {
    /// How many [`catch_panic`] calls are running on this thread.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// Panics that [`catch_panic`] turned into errors in this process.
static CAUGHT: AtomicUsize = AtomicUsize::new(0);

/// Leaves the guarded section when dropped (also while unwinding).
struct Depth;

impl Depth {
    fn enter() -> Depth {
        DEPTH.with(|d| d.set(d.get() + 1));
        Depth
    }
}

impl Drop for Depth {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// Run `f`; a panic inside it becomes the error "`who`: `what` failed: message" instead of
/// unwinding further. Only for code whose inputs were already checked: a panic caught here is a
/// defect of that check, kept from crashing the process.
pub fn catch_panic<R>(who: &str, what: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let depth = Depth::enter();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    drop(depth);
    result.unwrap_or_else(|payload| {
        CAUGHT.fetch_add(1, Ordering::Relaxed);
        let msg = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        Err(Error::model(who, format!("{what} failed: {msg}")))
    })
}

/// Install a panic hook that says nothing for panics [`catch_panic`] catches on the panicking
/// thread (they come back as errors) and hands every other panic to the previous hook.
pub fn quiet_caught_panics() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if DEPTH.with(Cell::get) == 0 {
            previous(info);
        }
    }));
}

/// How many panics [`catch_panic`] has turned into errors in this process so far.
pub fn caught_panics() -> usize {
    CAUGHT.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_error_and_is_counted() {
        let before = caught_panics();
        let e = catch_panic::<()>("x.model", "loading", || panic!("index out of bounds")).unwrap_err().to_string();
        assert!(e.contains("x.model") && e.contains("loading failed: index out of bounds"), "{e}");
        assert_eq!(caught_panics(), before + 1);
        assert_eq!(catch_panic("x.model", "loading", || Ok(3)).unwrap(), 3);
        assert_eq!(DEPTH.with(Cell::get), 0);
    }
}

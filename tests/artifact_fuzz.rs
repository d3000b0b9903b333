//! Crafted model artifacts: structure-aware mutations of every artifact kind, with the SHA-256
//! digest recomputed so that each mutation reaches the decoders. None may panic, abort on a huge
//! allocation or be accepted with a crafted class count.

use promoml_core::Registry;
use promoml_pipeline::artifact::{Artifact, ArtifactRequest, FILE_NAME};
use promoml_pipeline::{Pipeline, RunOptions, Silent};
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Largest single allocation a crafted artifact may cause (its file is a few hundred KiB).
const MAX_ALLOCATION: usize = 256 << 20;
static REFUSED: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, refusing (and counting) any single request above [`MAX_ALLOCATION`]:
/// a length that was not checked fails here instead of exhausting memory.
struct Bounded;

// SAFETY: forwards to the system allocator; a refused request returns null, as allowed.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() > MAX_ALLOCATION {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: same layout as given.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: allocated by `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > MAX_ALLOCATION {
            REFUSED.fetch_add(1, Ordering::Relaxed);
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

const HEADER: usize = 16 + 4 + 8 + 8 + 32;

/// One artifact kind: its bytes and the input it scores.
struct Kind {
    name: &'static str,
    bytes: Vec<u8>,
    input: PathBuf,
}

fn write_rows(path: &Path, task: &str, rows: usize) {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut text = String::from("id,a,b,c,y\n");
    for i in 0..rows {
        let (a, b) = (next() * 4.0 - 2.0, next() * 4.0 - 2.0);
        let c = ["x", "y", "z"][(next() * 3.0) as usize % 3];
        let y = match task {
            "binary" => format!("{}", u8::from(a + 0.5 * b + next() > 0.5)),
            "multiclass" => ["lo", "mid", "hi"][((a + 2.0) / 4.0 * 3.0) as usize % 3].to_string(),
            _ => format!("{:.4}", 2.0 * a - b + next()),
        };
        text.push_str(&format!("{i},{a:.4},{b:.4},{c},{y}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn write_event_log(path: &Path, customers: u32) {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |m: u32| {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % u64::from(m)) as u32
    };
    let mut text = String::from("customer_id date n value\n");
    for k in 1..=customers {
        let visits = 1 + next(6);
        let mut last = 1;
        for _ in 0..visits {
            let month = 1 + next(9);
            last = last.max(month);
            text.push_str(&format!("{k:05} 1997{month:02}{:02} {} {}.50\n", 1 + next(28), 1 + next(3), 5 + next(40)));
        }
        if next(12) < visits + last {
            text.push_str(&format!("{k:05} 1998{:02}15 1 20.00\n", 1 + next(6)));
        }
    }
    std::fs::write(path, text).unwrap();
}

/// Run `toml` in `dir` and return the artifact it wrote.
fn build(dir: &Path, name: &str, toml: &str, registry: &Registry) -> Vec<u8> {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap();
    let p = Pipeline::load(&path, &[], registry).unwrap_or_else(|e| panic!("{name}: {e}"));
    let out = dir.join(name);
    let opts = RunOptions {
        trial_log: None,
        resume: false,
        artifact: Some(ArtifactRequest { path: out.join(FILE_NAME), registry: registry.clone() }),
        ..RunOptions::default()
    };
    promoml_pipeline::run_with(&p, &Silent, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    std::fs::read(out.join(FILE_NAME)).unwrap_or_else(|e| panic!("{name}: no artifact: {e}"))
}

/// A candidate model: its kind and its TOML parameters.
type Candidate = (&'static str, &'static str);

fn tabular(task: &str, data: &Path, models: &[(&str, &str)], ensemble: bool) -> String {
    let mut t = format!(
        "[pipeline]\nname = \"fuzz\"\ntask = \"{task}\"\nseed = 1\n[data]\npath = \"{}\"\ntarget = \"y\"\nid = \"id\"\n\
         split = {{ kind = \"modulo\", modulo = 4, remainder = 3 }}\n[[features]]\nkind = \"one_hot\"\n",
        data.display()
    );
    for (kind, params) in models {
        t.push_str(&format!("[[models]]\nkind = \"{kind}\"\nparams = {{ {params} }}\n"));
    }
    t.push_str("[search]\ntrials = 1\ncv_folds = 2\n[report]\nimportance_repeats = 0\n");
    if ensemble {
        t.push_str("[ensemble]\nkind = \"stacking\"\n");
    }
    t
}

/// Every artifact kind, built small.
fn kinds(dir: &Path, registry: &Registry) -> Vec<Kind> {
    let mut kinds = Vec::new();
    for task in ["binary", "multiclass", "regression"] {
        let (data, input) = (dir.join(format!("{task}.csv")), dir.join(format!("{task}-in.csv")));
        write_rows(&data, task, 240);
        write_rows(&input, task, 12);
        let (single, members): (&[Candidate], &[Candidate]) = match task {
            "binary" => (
                &[("smartcore.logistic_regression", "")],
                &[
                    ("forest.random_forest", "n_trees = 8"),
                    ("gbm.forust", "n_estimators = 10"),
                    ("smartcore.svm_rbf", ""),
                    ("linfa.decision_tree", ""),
                ],
            ),
            "multiclass" => (
                &[("linfa.logistic_regression", "")],
                &[("gbm.perpetual", "budget = 0.3"), ("forest.extra_trees", "n_trees = 8")],
            ),
            _ => (
                &[("smartcore.ridge", "")],
                &[("linfa.elastic_net", ""), ("gbm.perpetual", "budget = 0.3"), ("gbm.forust", "n_estimators = 10")],
            ),
        };
        let bytes = build(dir, &format!("{task}-single"), &tabular(task, &data, single, false), registry);
        kinds.push(Kind { name: leak(format!("{task} single")), bytes, input: input.clone() });
        let bytes = build(dir, &format!("{task}-ensemble"), &tabular(task, &data, members, true), registry);
        kinds.push(Kind { name: leak(format!("{task} ensemble")), bytes, input });
    }
    // Uplift with a policy (two learners over a forest, a control outcome model where needed).
    let uplift = "[pipeline]\nname = \"fuzz-uplift\"\ntask = \"uplift\"\nseed = 2\n[data]\nsource = \"synthetic.price\"\n\
        rows = 600\narms = 2\nsplit = { kind = \"random\", test_fraction = 0.3 }\ntarget = \"purchase\"\n\
        treatment = { column = \"promotion\", control = \"control\" }\n[uplift]\nlearners = [\"t\", \"x\"]\n\
        outcome = \"binary\"\n[policy]\nvalue_per_outcome = { control = 40.0, discount_10 = 30.0, discount_20 = 20.0 }\n\
        key = \"customer_id\"\n[[features]]\nkind = \"one_hot\"\n[[models]]\nkind = \"forest.random_forest\"\n\
        params = { n_trees = 6 }\n[search]\noptimizer = \"random\"\ntrials = 1\ncv_folds = 2\nmetric = \"qini_auc\"\n\
        [report]\nimportance_repeats = 0\n";
    let bytes = build(dir, "uplift", uplift, registry);
    let input = dir.join("uplift-in.csv");
    write_uplift_input(&input);
    kinds.push(Kind { name: "uplift with policy", bytes, input });
    // Anomaly: an isolation forest on tabular rows.
    let (data, input) = (dir.join("anomaly.csv"), dir.join("anomaly-in.csv"));
    write_rows(&data, "binary", 240);
    write_rows(&input, "binary", 12);
    let anomaly = format!(
        "[pipeline]\nname = \"fuzz-anomaly\"\ntask = \"anomaly\"\nseed = 3\n[data]\npath = \"{}\"\ntarget = \"y\"\n\
         drop = [\"c\", \"id\"]\n[[models]]\nkind = \"anomaly.isolation_forest\"\nparams = {{ n_trees = 10 }}\n\
         [report]\nimportance_repeats = 0\n",
        data.display()
    );
    kinds.push(Kind { name: "anomaly", bytes: build(dir, "anomaly", &anomaly, registry), input });
    // Event log with a burn sequence model.
    let (log, small) = (dir.join("events.txt"), dir.join("events-in.txt"));
    write_event_log(&log, 200);
    write_event_log(&small, 15);
    let events = format!(
        "[pipeline]\nname = \"fuzz-events\"\ntask = \"binary\"\nseed = 3\n[data]\npath = \"{}\"\ndelimiter = \"whitespace\"\n\
         timestamp_format = \"%Y%m%d\"\ntypes = {{ customer_id = \"numeric\", date = \"timestamp\" }}\n\
         target = \"buys_again\"\npositive = \"TRUE\"\nsplit = {{ kind = \"modulo\", modulo = 5, remainder = 4, column = \"customer_id\" }}\n\
         [data.events]\nentity = \"customer_id\"\ntime = \"date\"\nvalues = [\"n\", \"value\"]\nstart = \"1997-01-01\"\n\
         cutoff = \"1997-09-30\"\nhorizon_end = \"1998-06-30\"\nbin = \"month\"\n[[models]]\nkind = \"burn.gru\"\n\
         params = {{ hidden_size = 4, epochs = 2, batch_size = 64, patience = 1 }}\n[search]\ntrials = 1\ncv_folds = 2\n\
         [report]\nimportance_repeats = 0\n",
        log.display()
    );
    kinds.push(Kind { name: "event log (burn.gru)", bytes: build(dir, "events", &events, registry), input: small });
    kinds
}

/// Rows of new customers for the uplift artifact: a few rows of the synthetic source, as CSV.
fn write_uplift_input(path: &Path) {
    let source =
        promoml_core::synthetic::SyntheticPromotion { rows: 12, seed: 9, arms: 2, missing_rate: 0.0, price: true };
    let frame = source.generate_price().unwrap();
    let cols = frame.columns();
    let mut text = frame.names().join(",") + "\n";
    for i in 0..frame.n_rows() {
        let row: Vec<String> = cols.iter().map(|c| c.data.value_string(i).unwrap_or_default()).collect();
        text.push_str(&(row.join(",") + "\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn split(bytes: &[u8]) -> (Value, Vec<u8>) {
    let mlen = u64::from_le_bytes(bytes[20..28].try_into().unwrap()) as usize;
    (serde_json::from_slice(&bytes[HEADER..HEADER + mlen]).unwrap(), bytes[HEADER + mlen..].to_vec())
}

/// An artifact of format 3 with a correct digest around `manifest` and `payload`.
fn assemble(manifest: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut out = b"PROMOML-ARTIFACT".to_vec();
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&(manifest.len() as u64).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&Sha256::new().chain_update(manifest).chain_update(payload).finalize());
    out.extend_from_slice(manifest);
    out.extend_from_slice(payload);
    out
}

/// Values a crafted number takes: zero, one, boundaries, huge counts and overflowing sizes.
const ABSURD: &[f64] = &[0.0, 1.0, 2.0, 3.0, -1.0, 255.0, 1e6, 2.8e9, 4_294_967_296.0, 4.611_686_018_427_388e18, 1e300];
const ABSURD_U64: &[u64] = &[0, 1, 2, 3, 255, 1_000_000, 2_800_000_000, 1 << 32, 1 << 62, u64::MAX, u64::MAX / 8 + 1];

/// Every number in a JSON value, as a mutable reference.
fn numbers(v: &mut Value, out: &mut Vec<*mut Value>) {
    match v {
        Value::Number(_) => out.push(v as *mut Value),
        Value::Array(a) => a.iter_mut().for_each(|x| numbers(x, out)),
        Value::Object(o) => o.values_mut().for_each(|x| numbers(x, out)),
        _ => {}
    }
}

fn arrays(v: &mut Value, out: &mut Vec<*mut Value>) {
    if v.is_array() {
        out.push(v as *mut Value);
    }
    match v {
        Value::Array(a) => a.iter_mut().for_each(|x| arrays(x, out)),
        Value::Object(o) => o.values_mut().for_each(|x| arrays(x, out)),
        _ => {}
    }
}

#[allow(unsafe_code)]
fn unsafe_deref<'a>(p: *mut Value) -> &'a mut Value {
    // SAFETY: the pointers come from one walk of a value that outlives their single use, and
    // only one is dereferenced at a time.
    unsafe { &mut *p }
}

/// Shift the payload blobs of `manifest` for `delta` bytes inserted (or removed) at `at`.
fn shift_blobs(v: &mut Value, at: u64, delta: i64) {
    match v {
        Value::Object(o) if o.contains_key("offset") && o.contains_key("len") => {
            let (off, len) = (o["offset"].as_u64().unwrap_or(0), o["len"].as_u64().unwrap_or(0));
            if off > at {
                o.insert("offset".into(), Value::from((off as i64 + delta) as u64));
            } else if at < off + len || (at == off + len && delta > 0 && len == 0) {
                o.insert("len".into(), Value::from((len as i64 + delta).max(0) as u64));
            }
        }
        Value::Object(o) => o.values_mut().for_each(|x| shift_blobs(x, at, delta)),
        Value::Array(a) => a.iter_mut().for_each(|x| shift_blobs(x, at, delta)),
        _ => {}
    }
}

/// One structure-aware mutation of `bytes`, described for the report; the digest is recomputed.
fn mutate(bytes: &[u8], rng: &mut rand_chacha::ChaCha8Rng) -> (String, Vec<u8>) {
    let (mut manifest, mut payload) = split(bytes);
    let what;
    match rng.random_range(0..7) {
        // A byte of the payload flipped.
        0 if !payload.is_empty() => {
            let i = rng.random_range(0..payload.len());
            let x = rng.random_range(1..=255u8);
            payload[i] ^= x;
            what = format!("payload byte {i} ^= {x:#04x}");
        }
        // A little-endian u64 in the payload (a length prefix, a count) set to an absurd value.
        1 | 2 if payload.len() >= 8 => {
            let candidates: Vec<usize> = (0..=payload.len() - 8)
                .filter(|&i| u64::from_le_bytes(payload[i..i + 8].try_into().unwrap()) < 1 << 20)
                .collect();
            let i = if candidates.is_empty() {
                rng.random_range(0..=payload.len() - 8)
            } else {
                candidates[rng.random_range(0..candidates.len())]
            };
            let old = u64::from_le_bytes(payload[i..i + 8].try_into().unwrap());
            let v = match rng.random_range(0..4) {
                0 => old.wrapping_add(1),
                1 => old.wrapping_sub(1),
                2 => old.wrapping_mul(2),
                _ => ABSURD_U64[rng.random_range(0..ABSURD_U64.len())],
            };
            payload[i..i + 8].copy_from_slice(&v.to_le_bytes());
            what = format!("payload u64 at {i}: {old} -> {v}");
        }
        // A number inside the payload's JSON (step states, booster dumps, network metadata).
        3 => {
            let runs: Vec<(usize, usize)> = {
                let mut v = Vec::new();
                let mut i = 0;
                while i < payload.len() {
                    if payload[i].is_ascii_digit() && (i == 0 || !payload[i - 1].is_ascii_alphanumeric()) {
                        let start = i;
                        while i < payload.len() && payload[i].is_ascii_digit() {
                            i += 1;
                        }
                        if i >= payload.len() || !payload[i].is_ascii_alphabetic() {
                            v.push((start, i));
                        }
                    }
                    i += 1;
                }
                v
            };
            if runs.is_empty() {
                return mutate(bytes, rng);
            }
            let (s, e) = runs[rng.random_range(0..runs.len())];
            let new = match rng.random_range(0..3) {
                0 => ABSURD_U64[rng.random_range(0..ABSURD_U64.len())].to_string(),
                1 => ["-1", "1e6", "4611686018427387904", "2800000000", "0"][rng.random_range(0..5)].to_string(),
                _ => (std::str::from_utf8(&payload[s..e]).unwrap().parse::<u128>().unwrap_or(0) + 1).to_string(),
            };
            what = format!("payload number at {s}: {} -> {new}", String::from_utf8_lossy(&payload[s..e]));
            let delta = new.len() as i64 - (e - s) as i64;
            payload.splice(s..e, new.into_bytes());
            shift_blobs(&mut manifest, s as u64, delta);
        }
        // A manifest number (class counts live in arrays; offsets, lengths, thresholds).
        4 => {
            let mut nums = Vec::new();
            numbers(&mut manifest, &mut nums);
            if nums.is_empty() {
                return mutate(bytes, rng);
            }
            let v = ABSURD[rng.random_range(0..ABSURD.len())];
            let target = unsafe_deref(nums[rng.random_range(0..nums.len())]);
            what = format!("manifest number {target} -> {v}");
            *target = if v.fract() == 0.0 && (0.0..1.8e19).contains(&v) {
                Value::from(v as u64)
            } else if v == -1.0 {
                Value::from(-1)
            } else {
                Value::from(v)
            };
        }
        // A manifest array grown, emptied or cut (classes, feature names, arms, members).
        5 => {
            let mut arrs = Vec::new();
            arrays(&mut manifest, &mut arrs);
            let Value::Array(a) = unsafe_deref(arrs[rng.random_range(0..arrs.len())]) else { unreachable!() };
            match rng.random_range(0..3) {
                0 => {
                    what = format!("manifest array of {} emptied", a.len());
                    a.clear();
                }
                1 if !a.is_empty() => {
                    what = format!("manifest array of {} cut by one", a.len());
                    a.pop();
                }
                _ => {
                    let extra = a.first().cloned().unwrap_or(Value::from("x"));
                    what = format!("manifest array of {} grown by one", a.len());
                    a.push(extra);
                }
            }
        }
        // The payload truncated (its blob lengths left as they were, or cut with it).
        _ => {
            let keep = rng.random_range(0..=payload.len());
            what = format!("payload truncated to {keep} of {} bytes", payload.len());
            payload.truncate(keep);
        }
    }
    let m = serde_json::to_vec(&manifest).unwrap();
    (what, assemble(&m, &payload))
}

/// Parse `bytes` and, when they parse, score the rows of `input`.
fn exercise(bytes: &[u8], input: &Path, registry: &Registry) {
    let Ok(a) = Artifact::from_bytes(bytes, "fuzz", registry) else { return };
    let Ok(frame) = a.read_input(input) else { return };
    if a.reads_event_log() {
        let _ = a.score_events(frame, None, "fuzz");
    } else {
        let _ = a.score_frame(frame, "fuzz");
    }
}

#[test]
fn artifact_fuzz_no_panic() {
    let registry = promoml_cli::registry_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let built = Instant::now();
    let kinds = kinds(dir.path(), &registry);
    println!("built {} artifact kinds in {:.1} s", kinds.len(), built.elapsed().as_secs_f64());
    // FUZZ_LOUD=1 prints the panics the guards catch too.
    if std::env::var_os("FUZZ_LOUD").is_none() {
        promoml_core::guard::quiet_caught_panics();
    }
    let start = Instant::now();
    let per_kind = 22_000usize.div_ceil(kinds.len());
    let guarded_before = promoml_core::guard::caught_panics();
    let mut panics: Vec<String> = Vec::new();
    let mut cases = 0usize;
    // FUZZ_TRACE=1 names each mutation before it runs (to find one that aborts the process).
    let trace = std::env::var_os("FUZZ_TRACE").is_some();
    for (k, kind) in kinds.iter().enumerate() {
        // Unmutated, each artifact scores its input.
        let a =
            Artifact::from_bytes(&kind.bytes, kind.name, &registry).unwrap_or_else(|e| panic!("{}: {e}", kind.name));
        assert!(a.read_input(&kind.input).is_ok(), "{}: reads its input", kind.name);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5eed + k as u64);
        let guarded_before_kind = promoml_core::guard::caught_panics();
        for _ in 0..per_kind {
            let (what, bytes) = mutate(&kind.bytes, &mut rng);
            cases += 1;
            if trace {
                eprintln!("{}: {what}", kind.name);
            }
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&bytes, &kind.input, &registry)));
            if r.is_err() {
                panics.push(format!("{}: {what}", kind.name));
            }
        }
        let caught = promoml_core::guard::caught_panics() - guarded_before_kind;
        println!("  {}: {per_kind} mutations, {caught} panics inside third-party decoders caught", kind.name);
        if !kind.name.contains("burn") {
            assert_eq!(caught, 0, "{}: every length is checked before a decoder sees it", kind.name);
        }
    }
    let guarded = promoml_core::guard::caught_panics() - guarded_before;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "artifact fuzz: {cases} mutations of {} artifact kinds in {secs:.1} s; {} escaped panics, {guarded} caught by the guards, {} oversized allocations refused",
        kinds.len(),
        panics.len(),
        REFUSED.load(Ordering::Relaxed)
    );
    assert!(cases >= 20_000);
    assert!(panics.is_empty(), "{} mutations panicked, first: {:#?}", panics.len(), &panics[..panics.len().min(8)]);
    assert_eq!(REFUSED.load(Ordering::Relaxed), 0, "a crafted artifact asked for more than {MAX_ALLOCATION} bytes");
}

/// The byte offset of the class count in a saved logistic regression (after the kind tag and
/// the standardiser's means, scales and constant flags).
fn class_count_offset(blob: &[u8]) -> usize {
    let u = |at: usize| u64::from_le_bytes(blob[at..at + 8].try_into().unwrap()) as usize;
    let mut at = 8 + u(0);
    at += 8 + 8 * u(at); // means
    at += 8 + 8 * u(at); // scales
    at + 8 + u(at) // flags
}

#[test]
fn crafted_artifact_class_count_is_refused() {
    let registry = promoml_cli::registry_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("binary.csv");
    write_rows(&data, "binary", 200);
    let toml = tabular("binary", &data, &[("smartcore.logistic_regression", "")], false);
    let bytes = build(dir.path(), "lr", &toml, &registry);
    let (manifest, payload) = split(&bytes);
    let blob = &manifest["model"]["model"]["blob"];
    let (off, len) = (blob["offset"].as_u64().unwrap() as usize, blob["len"].as_u64().unwrap() as usize);
    let at = off + class_count_offset(&payload[off..off + len]);
    assert_eq!(u64::from_le_bytes(payload[at..at + 8].try_into().unwrap()), 2, "the class count of a binary model");
    // The reproducers (a 4.5 TB allocation, an ndarray panic, a 60 s run), each with a
    // valid SHA-256 digest: refused before anything is allocated.
    for k in [2_818_572_290u64, 1 << 62, 1_000_000, 3, 1, 0] {
        let mut p = payload.clone();
        p[at..at + 8].copy_from_slice(&k.to_le_bytes());
        let crafted = assemble(&serde_json::to_vec(&manifest).unwrap(), &p);
        let e = Artifact::from_bytes(&crafted, "crafted.promoml", &registry).err().unwrap().to_string();
        // Counts below two already disagree with the model's own class indices.
        let why = if k < 2 { "saved parameters are corrupt" } else { "classes, the artifact expects 2" };
        assert!(e.contains("crafted.promoml") && e.contains(why), "class count {k}: {e}");
    }
    // A binary manifest must list exactly two classes.
    let mut m = manifest.clone();
    m["classes"] = serde_json::json!(["0", "1", "2"]);
    let crafted = assemble(&serde_json::to_vec(&m).unwrap(), &payload);
    let e = Artifact::from_bytes(&crafted, "crafted.promoml", &registry).err().unwrap().to_string();
    assert!(e.contains("a binary task lists 3 classes"), "{e}");
    // The shared reproducers (format 2, FNV checksum) are refused the same way.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/checks/fixtures/hardening");
    for name in ["huge-class-count", "overflow-class-count"] {
        let path = fixtures.join(format!("{name}.promoml"));
        let e = Artifact::read(&path, &registry).err().unwrap().to_string();
        assert!(e.contains("classes, the artifact expects 2"), "{name}: {e}");
    }
}

#[test]
fn artifacts_of_format_2_with_an_fnv_checksum_are_still_read() {
    let registry = promoml_cli::registry_with(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("regression.csv");
    write_rows(&data, "regression", 120);
    let bytes = build(dir.path(), "ridge", &tabular("regression", &data, &[("smartcore.ridge", "")], false), &registry);
    assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 3, "new artifacts are format 3 (SHA-256)");
    let (manifest, payload) = split(&bytes);
    let m = serde_json::to_vec(&manifest).unwrap();
    let mut fnv: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in m.iter().chain(&payload) {
        fnv = (fnv ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut old = b"PROMOML-ARTIFACT".to_vec();
    old.extend_from_slice(&2u32.to_le_bytes());
    old.extend_from_slice(&(m.len() as u64).to_le_bytes());
    old.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    old.extend_from_slice(&fnv.to_le_bytes());
    old.extend_from_slice(&m);
    old.extend_from_slice(&payload);
    let input = dir.path().join("in.csv");
    write_rows(&input, "regression", 5);
    let a = Artifact::from_bytes(&old, "v2.promoml", &registry).unwrap();
    let b = Artifact::from_bytes(&bytes, "v3.promoml", &registry).unwrap();
    let score = |a: &Artifact| a.score_frame(a.read_input(&input).unwrap(), "in").unwrap().bits();
    assert_eq!(score(&a), score(&b));
    // One changed byte: the digest (SHA-256 for format 3, FNV for format 2) refuses it.
    for (mut v, name) in [(old, "v2"), (bytes, "v3")] {
        let last = v.len() - 1;
        v[last] ^= 1;
        let e = Artifact::from_bytes(&v, name, &registry).err().unwrap().to_string();
        assert!(e.contains("checksum mismatch"), "{name}: {e}");
    }
}

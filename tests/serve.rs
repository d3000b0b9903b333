//! `promoml serve` as a process: the address it prints, SIGHUP reloads (a bad artifact is
//! refused and the old model stays), SIGTERM shuts it down cleanly.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One request on a fresh connection; the status and body.
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn generation(addr: &str) -> u64 {
    let (status, body) = http(addr, "GET", "/v1/model", "");
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["generation"].as_u64().unwrap()
}

/// Fit a small GBM on seeded rows into `out` (seed `seed`).
fn fit(dir: &Path, out: &Path, seed: u64) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("id,a,b,y\n");
    for i in 0..600 {
        let (a, b) = (next() * 2.0 - 1.0, next() * 2.0 - 1.0);
        csv.push_str(&format!("{i},{a:.4},{b:.4},{}\n", u8::from(a + 0.5 * b + 0.3 * (next() - 0.5) > 0.0)));
    }
    std::fs::write(dir.join("rows.csv"), csv).unwrap();
    let toml = format!(
        "[pipeline]\nname = \"served\"\ntask = \"binary\"\nseed = {seed}\n[data]\npath = \"rows.csv\"\nid = \"id\"\ntarget = \"y\"\n\
         [[models]]\nkind = \"gbm.forust\"\nparams = {{ n_estimators = 30 }}\n[search]\ntrials = 1\ncv_folds = 2\n\
         [report]\nimportance_repeats = 0\n"
    );
    std::fs::write(dir.join("p.toml"), toml).unwrap();
    run_pipeline(&dir.join("p.toml"), out, &[]);
}

fn signal(pid: u32, sig: &str) {
    assert!(Command::new("kill").args([sig, &pid.to_string()]).status().unwrap().success());
}

#[test]
fn sighup_reloads_refuses_a_bad_artifact_and_sigterm_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (dir.path().join("first"), dir.path().join("second"));
    fit(dir.path(), &first, 1);
    fit(dir.path(), &second, 2);
    let served = dir.path().join("served.promoml");
    std::fs::copy(first.join("model.promoml"), &served).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--model", served.to_str().unwrap(), "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().rsplit("http://").next().unwrap().to_string();
    assert!(line.starts_with("serving ") && addr.starts_with("127.0.0.1:"), "{line}");
    assert_eq!(generation(&addr), 1);
    let wait_for = |want: u64| {
        let t = Instant::now();
        while generation(&addr) != want && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
        generation(&addr)
    };
    // A new artifact, then SIGHUP.
    std::fs::copy(second.join("model.promoml"), dir.path().join("tmp.promoml")).unwrap();
    std::fs::rename(dir.path().join("tmp.promoml"), &served).unwrap();
    signal(child.id(), "-HUP");
    assert_eq!(wait_for(2), 2);
    // A damaged one: refused, generation 2 keeps serving.
    std::fs::write(&served, b"not an artifact").unwrap();
    signal(child.id(), "-HUP");
    std::thread::sleep(Duration::from_millis(500));
    let (status, metrics) = http(&addr, "GET", "/metrics", "");
    assert_eq!(status, 200);
    assert!(metrics.contains("promoml_model_reload_failures_total 1"), "{metrics}");
    assert_eq!(generation(&addr), 2);
    let (status, body) =
        http(&addr, "POST", "/v1/predict", r#"{"rows": [{"id": 1, "a": 0.5, "b": -0.2}], "explain": 2}"#);
    assert_eq!(status, 200, "{body}");
    // SIGTERM: a clean exit.
    signal(child.id(), "-TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "promoml serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

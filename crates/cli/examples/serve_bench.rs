//! Load test of the scoring service on loopback: single-row and 1,000-row `POST /v1/predict`
//! requests from 1, 8 and 64 kept-alive connections, each cell for a bounded time; prints a
//! Markdown table of throughput and p50/p99 latency.
//!
//! ```text
//! cargo run --release -p promoml --example serve_bench -- --label GBM --model OUT/model.promoml \
//!     --rows test.csv [--url 127.0.0.1:PORT] [--seconds 3] [--connections 1,8,64] [--batches 1,1000]
//! ```
//! With `--model` the service runs in this process (`promoml_serve::spawn`, the stock plugins);
//! with `--url` the requests go to a service already listening there (e.g. the FastAPI peer of
//! `scripts/serve_peer_lightgbm.py`), with the same JSON body `{"rows": [...]}`. `--rows` is a
//! CSV file whose rows (numbers as JSON numbers, other cells as strings; the target column
//! `--drop` left out) fill the requests, cycling.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    label: String,
    model: Option<String>,
    url: Option<String>,
    rows: String,
    drop: Vec<String>,
    seconds: f64,
    connections: Vec<usize>,
    batches: Vec<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        label: "model".into(),
        model: None,
        url: None,
        rows: String::new(),
        drop: Vec::new(),
        seconds: 3.0,
        connections: vec![1, 8, 64],
        batches: vec![1, 1000],
    };
    let mut it = std::env::args().skip(1);
    let list = |s: String| -> Result<Vec<usize>, String> {
        s.split(',').map(|x| x.trim().parse::<usize>().map_err(|e| format!("{x}: {e}"))).collect()
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--label" => a.label = v()?,
            "--model" => a.model = Some(v()?),
            "--url" => a.url = Some(v()?),
            "--rows" => a.rows = v()?,
            "--drop" => a.drop.push(v()?),
            "--seconds" => a.seconds = v()?.parse().map_err(|e| format!("--seconds: {e}"))?,
            "--connections" => a.connections = list(v()?)?,
            "--batches" => a.batches = list(v()?)?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.rows.is_empty() || a.model.is_none() == a.url.is_none() {
        return Err("usage: serve_bench --label L (--model ARTIFACT | --url HOST:PORT) --rows CSV [--drop COL] \
                    [--seconds S] [--connections 1,8,64] [--batches 1,1000]"
            .into());
    }
    Ok(a)
}

/// The CSV's rows as JSON objects (a naive split: the benchmark files have no quoted commas).
fn json_rows(path: &str, drop: &[String]) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().ok_or("empty rows file")?.split(',').collect();
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut o = serde_json::Map::new();
            for (k, v) in header.iter().zip(l.split(',')) {
                if drop.iter().any(|d| d == k) {
                    continue;
                }
                let value = match v.parse::<f64>() {
                    Ok(x) if x.is_finite() => serde_json::json!(x),
                    _ => serde_json::json!(v),
                };
                o.insert(k.to_string(), value);
            }
            serde_json::Value::Object(o)
        })
        .collect())
}

/// One kept-alive connection: send `body`, read one answer; the status and the latency.
struct Conn {
    stream: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        Ok(Conn { stream: BufReader::new(s), addr })
    }
    fn post(&mut self, body: &[u8]) -> std::io::Result<u16> {
        let head = format!(
            "POST /v1/predict HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut line = String::new();
        self.stream.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        loop {
            line.clear();
            self.stream.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut buf = vec![0; length];
        self.stream.read_exact(&mut buf)?;
        Ok(status)
    }
}

struct Cell {
    requests: usize,
    errors: usize,
    seconds: f64,
    latencies: Vec<f64>,
}

/// `connections` clients each sending `bodies` (cycling) for `seconds`.
fn run_cell(addr: SocketAddr, bodies: Arc<Vec<Vec<u8>>>, connections: usize, seconds: f64) -> Cell {
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|c| {
            let bodies = bodies.clone();
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut errors = 0;
                let Ok(mut conn) = Conn::open(addr) else { return (lat, 1) };
                let mut i = c;
                while Instant::now() < until {
                    let t = Instant::now();
                    match conn.post(&bodies[i % bodies.len()]) {
                        Ok(200) => lat.push(t.elapsed().as_secs_f64()),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            match Conn::open(addr) {
                                Ok(c) => conn = c,
                                Err(_) => break,
                            }
                        }
                    }
                    i += connections;
                }
                (lat, errors)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (l, e) = t.join().unwrap_or_default();
        latencies.extend(l);
        errors += e;
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Cell { requests: latencies.len(), errors, seconds, latencies }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let rows = json_rows(&args.rows, &args.drop)?;
    if rows.is_empty() {
        return Err("no rows".into());
    }
    let (addr, _server) = match (&args.model, &args.url) {
        (Some(model), _) => {
            let opts = promoml_serve::ServeOptions::new(model.into(), "127.0.0.1:0".parse()?);
            let running = promoml_serve::spawn(opts, promoml_cli::registry_with(&[]), false)?;
            (running.addr, Some(running))
        }
        (None, Some(url)) => (url.to_socket_addrs()?.next().ok_or("no address")?, None),
        _ => unreachable!("checked by parse_args"),
    };
    for &batch in &args.batches {
        // Distinct bodies so that no answer can be cached: windows of the rows, cycling.
        let bodies: Vec<Vec<u8>> = (0..16)
            .map(|k| {
                let chunk: Vec<&serde_json::Value> = (0..batch).map(|i| &rows[(k * batch + i) % rows.len()]).collect();
                serde_json::json!({ "rows": chunk }).to_string().into_bytes()
            })
            .collect();
        let bodies = Arc::new(bodies);
        // Warm up (connections, caches, the allocator).
        let _ = run_cell(addr, bodies.clone(), 2, 0.3);
        for &c in &args.connections {
            let cell = run_cell(addr, bodies.clone(), c, args.seconds);
            let rps = cell.requests as f64 / cell.seconds;
            println!(
                "| {} | {batch} | {c} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
                args.label,
                rps,
                rps * batch as f64,
                quantile(&cell.latencies, 0.5) * 1e3,
                quantile(&cell.latencies, 0.99) * 1e3,
                cell.errors
            );
        }
    }
    Ok(())
}

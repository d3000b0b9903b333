//! The HTTP routes: scoring, model description, health, metrics and reload.

use crate::State;
use axum::body::Bytes;
use axum::extract::State as Ctx;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use promoml_pipeline::artifact::{ExplainOptions, ScoredBatch};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Instant;

/// A JSON scoring request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    /// Rows to score (column → value objects).
    rows: Option<Vec<serde_json::Value>>,
    /// An event log to score (event-log pipelines).
    events: Option<Vec<serde_json::Value>>,
    /// End of the input window for `events`.
    cutoff: Option<String>,
    /// Explain each row with its K largest contributions.
    explain: Option<usize>,
    /// Keep one-hot features apart instead of adding them up per column (default: grouped).
    group_one_hot: Option<bool>,
}

/// An error answer: `{"error": message}` with a status.
pub(crate) struct Failure(pub StatusCode, pub String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.1}).to_string();
        (self.0, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// The status of a scoring error: the request's fault (400) unless reading or running the
/// model failed.
fn status_of(e: &promoml_core::Error) -> StatusCode {
    use promoml_core::Error as E;
    match e {
        E::Data(_) | E::DataAt { .. } | E::Config { .. } => StatusCode::BAD_REQUEST,
        E::Model { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        E::Budget(_) | E::Interrupted(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// `POST /v1/predict`: JSON (`rows` or `events`, optional `cutoff` and `explain`) or CSV
/// (`text/csv`, `?explain=K`). Answers `{"predictions": [...]}` with the columns `predict`
/// writes per row.
pub(crate) async fn predict(Ctx(state): Ctx<Arc<State>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    let answer = match state.in_flight.clone().try_acquire_owned() {
        Err(_) => Failure(
            StatusCode::TOO_MANY_REQUESTS,
            format!("more than {} requests in flight; retry later", state.options.max_in_flight),
        )
        .into_response(),
        Ok(permit) => {
            state.metrics.in_flight(true);
            let s = state.clone();
            let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let query = uri.query().unwrap_or("").to_string();
            // Scoring is CPU work: off the reactor, and a panic in it is an answer, not a crash.
            let done = tokio::task::spawn_blocking(move || score(&s, &ctype, &query, &body)).await;
            drop(permit);
            state.metrics.in_flight(false);
            match done {
                Ok(Ok(r)) => r,
                Ok(Err(f)) => f.into_response(),
                Err(e) => {
                    tracing::error!("scoring failed: {e}");
                    Failure(StatusCode::INTERNAL_SERVER_ERROR, "internal error while scoring".into()).into_response()
                }
            }
        }
    };
    state.metrics.record("/v1/predict", answer.status().as_u16(), started.elapsed());
    answer
}

fn score(state: &State, ctype: &str, query: &str, body: &[u8]) -> Result<Response, Failure> {
    let bad = |m: String| Failure(StatusCode::BAD_REQUEST, m);
    let model = state.slot.current();
    let a = &model.artifact;
    let media = ctype.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (batch, k) = if media == "text/csv" {
        let k = query_explain(query).map_err(bad)?;
        let text = std::str::from_utf8(body).map_err(|e| bad(format!("request body: not valid UTF-8 ({e})")))?;
        too_many(state, text.lines().count().saturating_sub(1), k.is_some())?;
        let opts = ExplainOptions::default();
        let frame = a.read_input_str(text, "request body").map_err(|e| Failure(status_of(&e), e.to_string()))?;
        let b: ScoredBatch = a
            .score_input(frame, "request body", None, k.map(|_| &opts))
            .map_err(|e| Failure(status_of(&e), e.to_string()))?;
        (b, k)
    } else if media == "application/json" || media.is_empty() {
        let req: PredictRequest =
            serde_json::from_slice(body).map_err(|e| bad(format!("request body: invalid JSON request: {e}")))?;
        let opts = ExplainOptions { group_one_hot: req.group_one_hot.unwrap_or(true), ..ExplainOptions::default() };
        let explain = req.explain.map(|_| &opts);
        let b = match (&req.rows, &req.events) {
            (Some(rows), None) => {
                if req.cutoff.is_some() {
                    return Err(bad("`cutoff` applies to `events` only".into()));
                }
                too_many(state, rows.len(), req.explain.is_some())?;
                a.score_json_rows(rows, explain)
            }
            (None, Some(events)) => a.score_json_events(events, req.cutoff.as_deref(), explain),
            _ => return Err(bad("the request needs exactly one of `rows` and `events`".into())),
        };
        (b.map_err(|e| Failure(status_of(&e), e.to_string()))?, req.explain)
    } else {
        return Err(Failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type `{ctype}`: send application/json or text/csv"),
        ));
    };
    state.metrics.add_rows(batch.n);
    let mut out = serde_json::json!({
        "model": {"pipeline": a.describe()["pipeline"], "generation": model.generation},
        "predictions": a.rows_json(&batch, k.unwrap_or(0)),
    });
    if let Some(e) = &batch.explained {
        out["explanation"] = serde_json::json!({"space": e.space.name(), "method": e.method, "output": e.output});
    }
    Ok(json(StatusCode::OK, &out))
}

/// 413 for a request with more rows than the service takes at once (fewer with explanations).
fn too_many(state: &State, rows: usize, explain: bool) -> Result<(), Failure> {
    let o = &state.options;
    if rows > o.max_rows {
        return Err(Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{rows} rows in one request; at most {} (--max-rows)", o.max_rows),
        ));
    }
    if explain && rows > o.max_explain_rows {
        return Err(Failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{rows} rows to explain in one request; at most {} (--max-explain-rows)", o.max_explain_rows),
        ));
    }
    Ok(())
}

/// `explain=K` from a query string.
fn query_explain(query: &str) -> Result<Option<usize>, String> {
    let mut explain = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("explain", v) => {
                explain = Some(v.parse().map_err(|_| format!("query `explain={v}`: expected a whole number"))?);
            }
            (other, _) => return Err(format!("unknown query parameter `{other}` (known: explain)")),
        }
    }
    Ok(explain)
}

/// `GET /healthz`: the process answers: 200 with an empty body and `Connection: close`, since
/// health probes are one-off requests (a client that polls on one connection and never reads
/// the answer, as Python's `http.client` does when it checks only the status, then goes on
/// on a fresh connection).
pub(crate) async fn healthz(Ctx(state): Ctx<Arc<State>>) -> Response {
    let started = Instant::now();
    let r = (StatusCode::OK, [(header::CONNECTION, "close")]).into_response();
    state.metrics.record("/healthz", 200, started.elapsed());
    r
}

/// `GET /readyz`: a model is loaded and the service is not shutting down.
pub(crate) async fn readyz(Ctx(state): Ctx<Arc<State>>) -> Response {
    let started = Instant::now();
    let r = if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
        Failure(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()).into_response()
    } else {
        StatusCode::OK.into_response()
    };
    state.metrics.record("/readyz", r.status().as_u16(), started.elapsed());
    r
}

/// `GET /v1/model`: what is served, its generation and the report's metrics when the report
/// lies beside the artifact.
pub(crate) async fn model(Ctx(state): Ctx<Arc<State>>) -> Response {
    let started = Instant::now();
    let m = state.slot.current();
    let mut d = m.artifact.describe();
    d["generation"] = m.generation.into();
    d["path"] = m.path.display().to_string().into();
    d["loaded_at_unix_s"] =
        m.loaded_at.duration_since(std::time::UNIX_EPOCH).map(|t| t.as_secs()).unwrap_or_default().into();
    d["metrics"] = report_metrics(&m.path);
    let r = json(StatusCode::OK, &d);
    state.metrics.record("/v1/model", 200, started.elapsed());
    r
}

/// The final model's metrics from `report.json` beside the artifact (`null` without one).
fn report_metrics(artifact: &std::path::Path) -> serde_json::Value {
    let Some(dir) = artifact.parent() else { return serde_json::Value::Null };
    let Ok(text) = std::fs::read_to_string(dir.join("report.json")) else { return serde_json::Value::Null };
    let Ok(r) = serde_json::from_str::<serde_json::Value>(&text) else { return serde_json::Value::Null };
    serde_json::json!({
        "final_model": r.get("final_model"),
        "metric": r.get("metric"),
        "test": r.get("test"),
    })
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics(Ctx(state): Ctx<Arc<State>>) -> Response {
    let started = Instant::now();
    let text = state.metrics.render(state.slot.current().generation);
    let r = (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response();
    state.metrics.record("/metrics", 200, started.elapsed());
    r
}

/// `POST /admin/reload`: read the artifact again and swap it in (see [`crate::model`]).
pub(crate) async fn reload(Ctx(state): Ctx<Arc<State>>) -> Response {
    let started = Instant::now();
    let s = state.clone();
    let done = tokio::task::spawn_blocking(move || crate::reload_now(&s)).await;
    let r = match done {
        Ok(Ok(generation)) => json(StatusCode::OK, &serde_json::json!({"generation": generation})),
        Ok(Err(e)) => {
            Failure(StatusCode::CONFLICT, format!("reload refused, the old model stays: {e}")).into_response()
        }
        Err(_) => {
            Failure(StatusCode::INTERNAL_SERVER_ERROR, "reload failed; the old model stays".into()).into_response()
        }
    };
    state.metrics.record("/admin/reload", r.status().as_u16(), started.elapsed());
    r
}

/// Any other path.
pub(crate) async fn not_found(Ctx(state): Ctx<Arc<State>>, uri: Uri) -> Response {
    state.metrics.record("other", 404, std::time::Duration::ZERO);
    Failure(
        StatusCode::NOT_FOUND,
        format!(
            "no route {}; routes: POST /v1/predict, GET /v1/model, /healthz, /readyz, /metrics, POST /admin/reload",
            uri.path()
        ),
    )
    .into_response()
}

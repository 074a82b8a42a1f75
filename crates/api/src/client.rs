//! [`HttpExecution`]: the task-execution operations over HTTP, for a remote worker, with
//! failover between API servers.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;
use updraft_store::{
    ClaimRequest, ClaimedTask, FinishReport, JobHeartbeat, LogAppend, LogChunk, Result, StoreError,
    TaskExecution, TransitionResult, XCom,
};

use crate::wire::{
    ClaimBody, ErrorBody, HeartbeatBody, HeartbeatReply, MAX_LEASE_SECS, MAX_WAIT_MS,
};
use crate::ApiError;

/// Timeouts and the claim's wait.
#[derive(Debug, Clone)]
pub struct HttpExecutionOptions {
    /// How long a claim may wait on the server for work when none is queued (long poll; the
    /// server caps it at 30 s). Zero: claims answer at once.
    pub claim_wait: Duration,
    /// How long connecting to a server may take before the next one is tried.
    pub connect_timeout: Duration,
    /// How long a request may take (a claim: its wait plus this) before the next server is
    /// tried.
    pub request_timeout: Duration,
}

impl Default for HttpExecutionOptions {
    fn default() -> Self {
        HttpExecutionOptions {
            claim_wait: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// The task-execution operations of a remote worker, sent to API servers over HTTP.
///
/// Requests go to the current server; a connection error, a timeout or a 5xx answer moves on
/// to the next server in the list (round robin), each tried at most once per call, after
/// which the call fails with [`StoreError::Unavailable`] (worth retrying later). The server
/// that answered becomes the current one. 401 is [`StoreError::Unauthorized`], 404
/// [`StoreError::NotFound`], any other refusal [`StoreError::Corrupt`] with the server's
/// reason.
pub struct HttpExecution {
    servers: Vec<Url>,
    client: reqwest::Client,
    authorization: HeaderValue,
    current: AtomicUsize,
    options: HttpExecutionOptions,
}

impl std::fmt::Debug for HttpExecution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpExecution")
            .field("servers", &self.servers)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HttpExecution {
    /// A client of the API servers at `servers` (base URLs such as `http://api-1:8080`; a
    /// path is kept as a prefix), presenting `token`.
    pub fn new(
        servers: Vec<String>,
        token: String,
        options: HttpExecutionOptions,
    ) -> Result<Self, ApiError> {
        if servers.is_empty() {
            return Err(ApiError::NoServers);
        }
        let servers = servers
            .iter()
            .map(|server| parse_server(server))
            .collect::<Result<Vec<_>, _>>()?;
        if token.trim().is_empty() {
            return Err(ApiError::EmptyToken);
        }
        let mut authorization = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
            .map_err(|_| ApiError::InvalidToken)?;
        authorization.set_sensitive(true);
        let client = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.request_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("updraft-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Client(error_chain(&e)))?;
        Ok(HttpExecution {
            servers,
            client,
            authorization,
            current: AtomicUsize::new(0),
            options,
        })
    }

    /// Whether claims wait on the server for work (long poll): a worker then claims again as
    /// soon as a claim answers, without sleeping in between.
    pub fn long_polls(&self) -> bool {
        !self.options.claim_wait.is_zero()
    }

    /// The base URLs of the API servers, in failover order.
    pub fn servers(&self) -> &[Url] {
        &self.servers
    }

    fn claim_wait(&self) -> Duration {
        self.options
            .claim_wait
            .min(Duration::from_millis(MAX_WAIT_MS))
    }

    /// Sends one request, failing over between servers; answers the body of the answer.
    async fn call(
        &self,
        method: Method,
        path: &[&str],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>> {
        let count = self.servers.len();
        let start = self.current.load(Ordering::Relaxed) % count;
        let mut failures = Vec::with_capacity(count);
        for step in 0..count {
            let index = (start + step) % count;
            let server = &self.servers[index];
            let url = endpoint(server, path)?;
            let mut request = self
                .client
                .request(method.clone(), url)
                .header(AUTHORIZATION, self.authorization.clone())
                .timeout(timeout);
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                    .body(body.clone());
            }
            match attempt(request).await {
                Attempt::Answered(result) => {
                    if step > 0 {
                        tracing::info!(server = %server, "failed over to API server");
                    }
                    self.current.store(index, Ordering::Relaxed);
                    return result;
                }
                Attempt::TryNext(reason) => {
                    tracing::warn!(server = %server, path = ?path, %reason, "API server failed");
                    failures.push(format!("{server}: {reason}"));
                }
            }
        }
        // Start the next call with the server after the one that began this call.
        self.current.store((start + 1) % count, Ordering::Relaxed);
        Err(StoreError::Unavailable(format!(
            "no API server answered /{}: {}",
            path.join("/"),
            failures.join("; ")
        )))
    }

    async fn get<T: DeserializeOwned>(&self, path: &[&str]) -> Result<T> {
        let bytes = self
            .call(Method::GET, path, None, self.options.request_timeout)
            .await?;
        decode(path, &bytes)
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &[&str],
        body: &B,
        timeout: Duration,
    ) -> Result<T> {
        let bytes = self
            .call(Method::POST, path, Some(encode(body)?), timeout)
            .await?;
        decode(path, &bytes)
    }
}

/// What became of a request to one server.
enum Attempt {
    /// The server gave an answer that stands (success, or a refusal another server would
    /// repeat).
    Answered(Result<Vec<u8>>),
    /// The server could not be reached or failed: try the next one.
    TryNext(String),
}

async fn attempt(request: reqwest::RequestBuilder) -> Attempt {
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return Attempt::TryNext(error_chain(&e)),
    };
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => return Attempt::TryNext(error_chain(&e)),
    };
    if status.is_success() {
        return Attempt::Answered(Ok(bytes));
    }
    let detail = detail(&bytes);
    if status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        return Attempt::TryNext(format!("HTTP {}: {detail}", status.as_u16()));
    }
    Attempt::Answered(Err(match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => StoreError::Unauthorized(detail),
        // The server says "<what> not found"; `NotFound` adds " not found" itself.
        StatusCode::NOT_FOUND => StoreError::NotFound(
            detail
                .strip_suffix(" not found")
                .unwrap_or(&detail)
                .to_string(),
        ),
        _ => StoreError::Corrupt(format!(
            "the API server refused the request (HTTP {}): {detail}",
            status.as_u16()
        )),
    }))
}

/// The `detail` of an error answer, or its start when it is not the API's error shape.
fn detail(bytes: &[u8]) -> String {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(bytes) {
        return body.detail;
    }
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "no detail given".to_string();
    }
    text.chars().take(300).collect()
}

fn encode<B: Serialize>(body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| StoreError::Corrupt(format!("cannot encode request: {e}")))
}

fn decode<T: DeserializeOwned>(path: &[&str], bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| {
        StoreError::Corrupt(format!(
            "unexpected answer of the API server to /{}: {e}",
            path.join("/")
        ))
    })
}

/// An error with its causes, which say what actually failed (refused, timed out, …).
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn parse_server(server: &str) -> Result<Url, ApiError> {
    let invalid = |reason: &str| ApiError::InvalidServerUrl {
        url: server.to_string(),
        reason: reason.to_string(),
    };
    let url = Url::parse(server.trim()).map_err(|e| invalid(&e.to_string()))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.cannot_be_a_base() || url.host().is_none() {
        return Err(invalid("not a server address"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid("a server address has no query or fragment"));
    }
    Ok(url)
}

/// `server` + `/execution/v1/` + `path`, each segment percent-encoded.
fn endpoint(server: &Url, path: &[&str]) -> Result<Url> {
    let mut url = server.clone();
    {
        let mut segments = url.path_segments_mut().map_err(|()| {
            StoreError::Corrupt(format!("{server} cannot be the base of an API address"))
        })?;
        segments
            .pop_if_empty()
            .extend(["execution", "v1"])
            .extend(path);
    }
    Ok(url)
}

/// A lease end as a duration from this host's clock, in whole seconds (rounded up, at least
/// 1): the server adds it to its own clock.
fn lease_secs(lease_until: DateTime<Utc>) -> u64 {
    let millis = (lease_until - Utc::now()).num_milliseconds();
    let secs = u64::try_from(millis.max(0)).unwrap_or(0).div_ceil(1000);
    secs.clamp(1, MAX_LEASE_SECS)
}

#[async_trait]
impl TaskExecution for HttpExecution {
    async fn claim(&self, request: ClaimRequest) -> Result<Vec<ClaimedTask>> {
        let wait = self.claim_wait();
        let body = ClaimBody {
            worker_id: request.worker_id,
            hostname: request.hostname,
            queues: request.queues,
            dag_run_id: request.dag_run_id,
            limit: request.limit,
            lease_secs: lease_secs(request.lease_until),
            wait_ms: u64::try_from(wait.as_millis()).unwrap_or(MAX_WAIT_MS),
        };
        let timeout = wait + self.options.request_timeout;
        self.post(&["claim"], &body, timeout).await
    }

    async fn heartbeat(
        &self,
        claim_ids: &[String],
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<String>> {
        if claim_ids.is_empty() {
            return Ok(Vec::new());
        }
        let body = HeartbeatBody {
            claim_ids: claim_ids.to_vec(),
            lease_secs: lease_secs(lease_until),
        };
        let reply: HeartbeatReply = self
            .post(&["heartbeat"], &body, self.options.request_timeout)
            .await?;
        Ok(reply.lost)
    }

    async fn finish(&self, reports: Vec<FinishReport>) -> Result<Vec<TransitionResult>> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let results: Vec<TransitionResult> = self
            .post(&["finish"], &reports, self.options.request_timeout)
            .await?;
        if results.len() != reports.len() {
            return Err(StoreError::Corrupt(format!(
                "the API server answered {} results for {} finish reports",
                results.len(),
                reports.len()
            )));
        }
        Ok(results)
    }

    async fn append_log(&self, chunk: LogChunk) -> Result<LogAppend> {
        self.post(&["logs"], &chunk, self.options.request_timeout)
            .await
    }

    async fn dag_version(
        &self,
        dag_id: &str,
        version: i64,
    ) -> Result<std::sync::Arc<updraft_model::Dag>> {
        let version = version.to_string();
        let dag: updraft_model::Dag = self.get(&["dags", dag_id, "versions", &version]).await?;
        Ok(std::sync::Arc::new(dag))
    }

    async fn xcoms_for_run(&self, dag_run_id: i64) -> Result<Vec<XCom>> {
        let dag_run_id = dag_run_id.to_string();
        self.get(&["runs", &dag_run_id, "xcoms"]).await
    }

    async fn variables(&self) -> Result<Vec<(String, String)>> {
        self.get(&["variables"]).await
    }

    async fn triggering_asset_events(
        &self,
        dag_run_id: i64,
    ) -> Result<Vec<updraft_store::AssetEvent>> {
        let dag_run_id = dag_run_id.to_string();
        self.get(&["runs", &dag_run_id, "triggering-asset-events"])
            .await
    }

    async fn connections(&self) -> Result<Vec<updraft_store::ConnectionRecord>> {
        self.get(&["connections"]).await
    }

    async fn dag_source(&self, dag_id: &str, version: i64) -> Result<updraft_store::DagSource> {
        let version = version.to_string();
        self.get(&["dags", dag_id, "versions", &version, "source"])
            .await
    }

    async fn set_variable(&self, key: &str, value: &str) -> Result<()> {
        let body = crate::wire::VariableBody {
            key: key.to_string(),
            value: value.to_string(),
        };
        self.call(
            Method::POST,
            &["variables"],
            Some(encode(&body)?),
            self.options.request_timeout,
        )
        .await
        .map(|_| ())
    }

    async fn trigger_dag_run(
        &self,
        request: updraft_store::TriggerDagRunRequest,
    ) -> Result<updraft_store::TriggerDagRunOutcome> {
        self.post(&["dag-runs"], &request, self.options.request_timeout)
            .await
    }

    async fn dag_run_state(
        &self,
        dag_id: &str,
        run_id: &str,
    ) -> Result<updraft_model::DagRunState> {
        let body: crate::wire::DagRunStateBody =
            self.get(&["dag-runs", dag_id, run_id, "state"]).await?;
        Ok(body.state)
    }

    async fn worker_heartbeat(&self, beat: JobHeartbeat) -> Result<()> {
        self.call(
            Method::POST,
            &["workers", "heartbeat"],
            Some(encode(&beat)?),
            self.options.request_timeout,
        )
        .await
        .map(drop)
    }

    fn ships_logs(&self) -> bool {
        true
    }

    fn claims_wait(&self) -> bool {
        self.long_polls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_the_prefix_and_encode_segments() {
        let server = parse_server("http://api:8080/updraft/").unwrap();
        let url = endpoint(&server, &["dags", "a b/c", "versions", "3"]).unwrap();
        assert_eq!(
            url.as_str(),
            "http://api:8080/updraft/execution/v1/dags/a%20b%2Fc/versions/3"
        );
        let server = parse_server("https://api").unwrap();
        assert_eq!(
            endpoint(&server, &["claim"]).unwrap().as_str(),
            "https://api/execution/v1/claim"
        );
    }

    #[test]
    fn bad_server_addresses_are_refused() {
        for bad in ["", "api:8080", "ftp://api", "mailto:x@y", "http://api/?q=1"] {
            assert!(parse_server(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn empty_tokens_and_server_lists_are_refused() {
        let options = HttpExecutionOptions::default;
        assert!(matches!(
            HttpExecution::new(vec![], "t".into(), options()),
            Err(ApiError::NoServers)
        ));
        assert!(matches!(
            HttpExecution::new(vec!["http://api".into()], " ".into(), options()),
            Err(ApiError::EmptyToken)
        ));
        assert!(matches!(
            HttpExecution::new(vec!["http://api".into()], "a\nb".into(), options()),
            Err(ApiError::InvalidToken)
        ));
    }

    #[test]
    fn leases_become_whole_seconds_from_now() {
        assert_eq!(lease_secs(Utc::now() - chrono::TimeDelta::seconds(5)), 1);
        let secs = lease_secs(Utc::now() + chrono::TimeDelta::milliseconds(59_500));
        assert!((59..=60).contains(&secs), "{secs}");
        assert_eq!(
            lease_secs(Utc::now() + chrono::TimeDelta::days(400)),
            MAX_LEASE_SECS
        );
    }

    #[test]
    fn details_come_from_the_error_shape_or_the_text() {
        assert_eq!(detail(br#"{"detail":"nope"}"#), "nope");
        assert_eq!(detail(b"plain"), "plain");
        assert_eq!(detail(b""), "no detail given");
    }
}

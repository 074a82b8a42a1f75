//! HTTP tasks (`operator: http`, Airflow's `HttpOperator`): one request to an endpoint of an
//! `http` connection, made by the worker itself (no process), its response body (or the part a
//! JSON pointer picks) as the XCom. As Airflow's `HttpHook`: the base URL is the connection's
//! host (`schema://host:port`, `http` when it names no schema), its login and password are
//! basic auth, its extra's string values are headers; a `GET` sends `data` as its query, a
//! `HEAD` sends none, the other methods send it as the body; a status of 400 or more fails
//! the try unless `expected_status` says otherwise.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use updraft_model::{Dag, HttpCall, HttpData, Task};
use updraft_secrets::Masker;
use updraft_store::ClaimedTask;
use updraft_template::TemplateConnection;

use super::super::LocalWorker;
use super::try_log::TryLog;
use crate::waiting::{after, cancelled};

/// The most of a response body written to the task log.
const MAX_LOGGED_BODY: usize = 32 * 1024;

/// Extra keys that configure `requests`' session in Airflow's hook rather than name headers.
const SESSION_KEYS: [&str; 9] = [
    "stream",
    "verify",
    "proxies",
    "cert",
    "max_redirects",
    "trust_env",
    "timeout",
    "allow_redirects",
    "check_response",
];

/// A rendered request, ready to send.
pub(in crate::local) struct HttpTry {
    call: HttpCall,
    url: String,
    basic_auth: Option<(String, Option<String>)>,
    headers: Vec<(String, String)>,
    masks: Vec<Masker>,
}

/// How an HTTP try ended: its XCom when it succeeded, why not otherwise.
pub(in crate::local) enum HttpOutcome {
    Success(Option<Value>),
    Failed(String),
    /// The server answered with a status the call does not accept (an HTTP sensor pokes
    /// again after a 404, as Airflow's `HttpSensor`).
    Refused(u16, String),
    TimedOut(Duration),
    Cancelled,
}

impl LocalWorker {
    /// Renders the call's templates and finds its connection.
    pub(in crate::local) async fn prepare_http(
        &self,
        claimed: &ClaimedTask,
        dag: &Dag,
        task: &Task,
        call: &HttpCall,
    ) -> Result<HttpTry, String> {
        let mut templates: Vec<&str> = vec![&call.endpoint];
        match &call.data {
            Some(HttpData::Text(text)) => templates.push(text),
            Some(HttpData::Form(form)) => templates.extend(form.values().map(String::as_str)),
            None => {}
        }
        templates.extend(call.headers.values().map(String::as_str));
        let (ctx, template_mask) = self
            .template_context(claimed, dag, task, templates.into_iter())
            .await?;
        let render = |what: &str, t: &str| self.render_field(&ctx, what, t);
        let mut rendered = call.clone();
        rendered.endpoint = render("endpoint", &call.endpoint)?;
        rendered.data = match &call.data {
            Some(HttpData::Text(text)) => Some(HttpData::Text(render("data", text)?)),
            Some(HttpData::Form(form)) => Some(HttpData::Form(
                form.iter()
                    .map(|(k, v)| Ok((k.clone(), render(&format!("data {k}"), v)?)))
                    .collect::<Result<_, String>>()?,
            )),
            None => None,
        };
        for (key, value) in rendered.headers.iter_mut() {
            *value = render(&format!("header {key}"), value)?;
        }
        let connections = crate::secrets::template_connections(self.execution.as_ref())
            .await
            .map_err(|e| format!("cannot read the connections: {e}"))?;
        let connection = connections
            .get(&call.http_conn_id)
            .or_else(|| {
                connections
                    .iter()
                    .find(|(id, _)| id.eq_ignore_ascii_case(&call.http_conn_id))
                    .map(|(_, c)| c)
            })
            .ok_or_else(|| format!("the connection `{}` is not defined", call.http_conn_id))?;
        let mut secrets: Vec<String> = connection.password.iter().cloned().collect();
        if let Some(extra) = &connection.extra {
            secrets.extend(self.config.sensitive_names.secret_values(extra));
        }
        let masks = template_mask
            .into_iter()
            .chain(Masker::new(secrets, updraft_secrets::MIN_MASKED_LENGTH))
            .collect();
        let mut headers = extra_headers(connection)?;
        headers.extend(rendered.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The called service's spans join the try's, as a process's do; a task's own
        // `traceparent` header wins.
        if let Some((_, traceparent)) = self.traceparent(claimed) {
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("traceparent"))
            {
                headers.push(("traceparent".into(), traceparent));
            }
        }
        Ok(HttpTry {
            url: join_url(&base_url(connection), &rendered.endpoint),
            basic_auth: connection
                .login
                .clone()
                .filter(|login| !login.is_empty())
                .map(|login| (login, connection.password.clone())),
            headers,
            call: rendered,
            masks,
        })
    }
}

impl HttpTry {
    /// The rendered templated fields, in Airflow's order (`endpoint`, `data`, `headers`), as
    /// `tasks render` prints them; secrets masked.
    pub(in crate::local) fn fields(&self) -> Vec<(String, String)> {
        let data = match &self.call.data {
            None => "None".to_owned(),
            Some(HttpData::Text(text)) => text.clone(),
            Some(HttpData::Form(form)) => serde_json::to_string_pretty(form).unwrap_or_default(),
        };
        let headers = if self.call.headers.is_empty() {
            "None".to_owned()
        } else {
            serde_json::to_string_pretty(&self.call.headers).unwrap_or_default()
        };
        [
            ("endpoint", self.call.endpoint.clone()),
            ("data", data),
            ("headers", headers),
        ]
        .into_iter()
        .map(|(field, value)| {
            let mut value = value;
            for mask in &self.masks {
                value = mask.mask(&value).into_owned();
            }
            (field.to_owned(), value)
        })
        .collect()
    }

    /// Sends the request, logging to `log_path`, within `timeout`, unless `cancel` turns true.
    pub(in crate::local) async fn run(
        self,
        log_path: &Path,
        timeout: Option<Duration>,
        mut cancel: watch::Receiver<bool>,
    ) -> HttpOutcome {
        let log = TryLog::open(log_path, "http", self.masks.clone());
        let request = self.send(&log);
        let outcome = tokio::select! {
            outcome = request => outcome,
            () = after(timeout) => {
                let limit = timeout.unwrap_or_default();
                log.line(&format!("timed out after {limit:?}"));
                HttpOutcome::TimedOut(limit)
            }
            () = cancelled(&mut cancel) => {
                log.line("cancelled");
                HttpOutcome::Cancelled
            }
        };
        if let HttpOutcome::Failed(why) | HttpOutcome::Refused(_, why) = &outcome {
            log.line(why);
        }
        outcome
    }

    async fn send(&self, log: &TryLog) -> HttpOutcome {
        let call = &self.call;
        let method = match reqwest::Method::from_bytes(call.method.as_bytes()) {
            Ok(method) => method,
            Err(_) => return HttpOutcome::Failed(format!("bad HTTP method {:?}", call.method)),
        };
        log.line(&format!("Calling HTTP method {} {}", call.method, self.url));
        let client = match reqwest::Client::builder().build() {
            Ok(client) => client,
            Err(e) => return HttpOutcome::Failed(format!("cannot make an HTTP client: {e}")),
        };
        let mut request = client.request(method.clone(), &self.url);
        for (key, value) in &self.headers {
            request = request.header(key, value);
        }
        if let Some((login, password)) = &self.basic_auth {
            request = request.basic_auth(login, password.as_ref());
        }
        request = match (&call.data, method.as_str()) {
            (_, "HEAD") | (None, _) => request,
            (Some(HttpData::Form(form)), "GET") => request.query(form),
            (Some(HttpData::Text(text)), "GET") => {
                let url = if self.url.contains('?') {
                    format!("{}&{text}", self.url)
                } else {
                    format!("{}?{text}", self.url)
                };
                let mut again = client.request(method.clone(), url);
                for (key, value) in &self.headers {
                    again = again.header(key, value);
                }
                if let Some((login, password)) = &self.basic_auth {
                    again = again.basic_auth(login, password.as_ref());
                }
                again
            }
            (Some(HttpData::Form(form)), _) => request.form(form),
            (Some(HttpData::Text(text)), _) => request.body(text.clone()),
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return HttpOutcome::Failed(format!("the request failed: {e}")),
        };
        let status = response.status();
        let body = match response.text().await {
            Ok(body) => body,
            Err(e) => {
                return HttpOutcome::Failed(format!("cannot read the response ({status}): {e}"))
            }
        };
        log.line(&format!("Response: {status}"));
        if call.log_response || !call.accepts(status.as_u16()) {
            log.line(&capped(&body));
        }
        if !call.accepts(status.as_u16()) {
            return HttpOutcome::Refused(
                status.as_u16(),
                format!(
                    "HTTP error: {}{}",
                    status.as_u16(),
                    status
                        .canonical_reason()
                        .map(|r| format!(":{r}"))
                        .unwrap_or_default()
                ),
            );
        }
        match &call.response_filter {
            None => HttpOutcome::Success(Some(Value::String(body))),
            Some(pointer) => match serde_json::from_str::<Value>(&body) {
                Ok(json) => match json.pointer(pointer) {
                    Some(value) => HttpOutcome::Success(Some(value.clone())),
                    None => HttpOutcome::Failed(format!(
                        "response_filter {pointer:?} finds nothing in the response"
                    )),
                },
                Err(e) => HttpOutcome::Failed(format!(
                    "response_filter {pointer:?} needs a JSON response: {e}"
                )),
            },
        }
    }
}

/// Airflow's `HttpHook` base URL of a connection.
pub(crate) fn base_url(connection: &TemplateConnection) -> String {
    let host = connection.host.clone().unwrap_or_default();
    let mut base = if host.contains("://") {
        host
    } else {
        let schema = connection
            .schema
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "http".to_owned());
        format!("{schema}://{host}")
    };
    if let Some(port) = connection.port {
        base.push_str(&format!(":{port}"));
    }
    base
}

/// The endpoint joined to the base URL with one `/` between them.
pub(crate) fn join_url(base: &str, endpoint: &str) -> String {
    if !base.is_empty()
        && !base.ends_with('/')
        && !endpoint.is_empty()
        && !endpoint.starts_with('/')
    {
        format!("{base}/{endpoint}")
    } else {
        format!("{base}{endpoint}")
    }
}

/// The connection extra's string values, as headers (the keys that configure the session in
/// Airflow's hook are not headers).
fn extra_headers(connection: &TemplateConnection) -> Result<Vec<(String, String)>, String> {
    let Some(extra) = connection.extra.as_deref().filter(|e| !e.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let value: Value = serde_json::from_str(extra).map_err(|e| {
        format!(
            "the extra of connection `{}` is not JSON: {e}",
            connection.conn_id
        )
    })?;
    Ok(value
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(key, _)| !SESSION_KEYS.contains(&key.as_str()))
        .filter_map(|(key, value)| Some((key.clone(), value.as_str()?.to_owned())))
        .collect())
}

fn capped(body: &str) -> String {
    if body.len() <= MAX_LOGGED_BODY {
        return body.to_owned();
    }
    let mut end = MAX_LOGGED_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… ({} more bytes not logged)",
        &body[..end],
        body.len() - end
    )
}

/// The try's log: lines with the time, secrets masked.
#[cfg(test)]
mod tests {
    use super::*;

    fn connection(host: &str, schema: Option<&str>, port: Option<i32>) -> TemplateConnection {
        TemplateConnection {
            conn_id: "api".into(),
            conn_type: "http".into(),
            description: None,
            host: Some(host.into()),
            login: None,
            password: None,
            port,
            schema: schema.map(str::to_owned),
            extra: None,
            uri: String::new(),
        }
    }

    #[test]
    fn the_base_url_is_airflows() {
        assert_eq!(
            base_url(&connection("example.com", None, None)),
            "http://example.com"
        );
        assert_eq!(
            base_url(&connection("example.com", Some("https"), Some(8443))),
            "https://example.com:8443"
        );
        assert_eq!(
            base_url(&connection("https://api.example.com/v1", None, None)),
            "https://api.example.com/v1"
        );
        assert_eq!(join_url("http://h", "items"), "http://h/items");
        assert_eq!(join_url("http://h/", "items"), "http://h/items");
        assert_eq!(join_url("http://h", "/items"), "http://h/items");
        assert_eq!(join_url("http://h", ""), "http://h");
    }

    #[test]
    fn string_extras_are_headers_except_session_settings() {
        let mut c = connection("h", None, None);
        c.extra = Some(r#"{"X-Api-Key": "k", "verify": "false", "n": 3}"#.into());
        assert_eq!(
            extra_headers(&c).expect("JSON"),
            vec![("X-Api-Key".to_owned(), "k".to_owned())]
        );
        c.extra = Some("not json".into());
        assert!(extra_headers(&c).is_err());
    }
}

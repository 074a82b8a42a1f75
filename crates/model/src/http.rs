//! An HTTP task (Airflow's `HttpOperator` of the `http` provider): one request to an endpoint
//! of an `http` connection, its response body as the task's XCom.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The connection an HTTP task uses when it names none (Airflow's default).
pub const DEFAULT_HTTP_CONN_ID: &str = "http_default";

/// What an HTTP task sends and what it accepts. Text fields are templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpCall {
    #[serde(default = "default_conn_id")]
    pub http_conn_id: String,
    /// Upper case; Airflow's default is `POST`.
    #[serde(default = "default_method")]
    pub method: String,
    /// Joined to the connection's base URL.
    #[serde(default)]
    pub endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<HttpData>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// A JSON pointer (RFC 6901, `/items/0/id`) into the JSON response: the XCom is that value
    /// instead of the body's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_filter: Option<String>,
    /// The statuses that succeed; empty: any below 400 (Airflow's `check_response`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected_status: Vec<u16>,
    /// Write the response body to the task log.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_response: bool,
}

/// The request's data: as Airflow's hook sends it, the query string of a `GET`, else the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HttpData {
    /// Sent as it is.
    Text(String),
    /// Form-encoded (`key=value&...`), as `requests` sends a dict.
    Form(BTreeMap<String, String>),
}

/// The methods an HTTP task may use.
pub const HTTP_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

fn default_conn_id() -> String {
    DEFAULT_HTTP_CONN_ID.to_owned()
}

fn default_method() -> String {
    "POST".to_owned()
}

impl HttpCall {
    /// `METHOD endpoint (connection)`, as a task's command is shown.
    pub fn summary(&self) -> String {
        format!("{} {} ({})", self.method, self.endpoint, self.http_conn_id)
    }

    /// Whether `status` counts as success.
    pub fn accepts(&self, status: u16) -> bool {
        if self.expected_status.is_empty() {
            status < 400
        } else {
            self.expected_status.contains(&status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_status_below_400_succeeds_unless_the_task_names_its_own() {
        let mut call: HttpCall =
            serde_json::from_value(serde_json::json!({"endpoint": "x"})).expect("a call");
        assert_eq!(call.method, "POST");
        assert_eq!(call.http_conn_id, DEFAULT_HTTP_CONN_ID);
        assert!(call.accepts(200) && call.accepts(302) && !call.accepts(404));
        call.expected_status = vec![404];
        assert!(call.accepts(404) && !call.accepts(200));
    }

    #[test]
    fn data_is_text_or_a_form() {
        let text: HttpData = serde_json::from_value(serde_json::json!("{\"a\": 1}")).expect("text");
        assert_eq!(text, HttpData::Text("{\"a\": 1}".into()));
        let form: HttpData = serde_json::from_value(serde_json::json!({"a": "1"})).expect("form");
        assert_eq!(form, HttpData::Form([("a".into(), "1".into())].into()));
    }
}

//! Webhook and Slack deliveries: one JSON `POST` each.

use std::collections::BTreeMap;

use updraft_template::TemplateConnection;

pub(super) use crate::local::operator::{base_url, join_url};

use super::DeliveryError;

/// Where Slack's incoming webhooks live: a connection's password may be the part after it.
const SLACK_WEBHOOKS: &str = "https://hooks.slack.com/services";

/// POSTs `body`; a 2xx answer delivers it, 5xx, 429 and network errors may pass, anything
/// else (a 4xx) will not.
pub(super) async fn post_json(
    http: &reqwest::Client,
    url: &str,
    headers: &BTreeMap<String, String>,
    body: &serde_json::Value,
) -> Result<(), DeliveryError> {
    let mut request = http.post(url).json(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| DeliveryError::Transient(format!("POST {url}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let text: String = text.chars().take(200).collect();
    let message = format!("POST {url} answered {status}: {text}");
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(DeliveryError::Transient(message))
    } else {
        Err(DeliveryError::Permanent(message))
    }
}

/// The webhook URL of a Slack connection, as Airflow's `SlackWebhookHook` reads it: the
/// password is the URL, or its token part under the host (`https://hooks.slack.com/services`
/// when the connection has none).
pub(super) fn slack_url(connection: &TemplateConnection) -> Result<String, DeliveryError> {
    let token = connection
        .password
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            DeliveryError::Permanent(format!(
                "the Slack connection `{}` has no webhook (its password)",
                connection.conn_id
            ))
        })?;
    if token.starts_with("http://") || token.starts_with("https://") {
        return Ok(token.to_string());
    }
    let base = match connection.host.as_deref().filter(|h| !h.is_empty()) {
        Some(_) => base_url(connection),
        None => SLACK_WEBHOOKS.to_string(),
    };
    Ok(join_url(&base, token))
}

//! Airflow's two text forms of a connection: the URI
//! (`conn-type://login:password@host:port/schema?key=value`, percent-encoded; an `extra`
//! that is not a flat object of strings goes whole as `__extra__`), and the JSON object
//! (`{"conn_type": …, "host": …, "extra": {…}}`), read and written as Airflow does, so
//! values written for Airflow (`AIRFLOW_CONN_*`, exported files) mean the same here.

use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{Map, Value};
use updraft_store::ConnectionRecord;

/// The query key that carries a whole `extra` in a URI.
const EXTRA_KEY: &str = "__extra__";

/// What Python's `quote(s, safe="")` leaves alone: letters, digits and `_.-~`.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'.')
    .remove(b'-')
    .remove(b'~');

/// Why a connection's text form cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectionFormError {
    #[error("invalid connection URI: {0}")]
    Uri(String),
    #[error("invalid connection port {0:?}: expected a number from 0 to 65535")]
    Port(String),
    #[error("invalid connection JSON: {0}")]
    Json(String),
}

/// Reads a connection from either form: JSON when it starts with `{`, else a URI (as
/// Airflow's secrets backends decide).
pub fn parse(conn_id: &str, text: &str) -> Result<ConnectionRecord, ConnectionFormError> {
    if text.trim_start().starts_with('{') {
        from_json(conn_id, text)
    } else {
        from_uri(conn_id, text)
    }
}

/// Airflow's conn_type spelling: `postgresql` is `postgres`, dashes become underscores.
pub fn normalize_conn_type(conn_type: &str) -> String {
    if conn_type == "postgresql" {
        return "postgres".into();
    }
    conn_type.replace('-', "_")
}

/// Reads the URI form.
pub fn from_uri(conn_id: &str, uri: &str) -> Result<ConnectionRecord, ConnectionFormError> {
    // As Python's urlsplit: surrounding spaces and any tab or line break do not count.
    let uri: String = uri
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let invalid = || ConnectionFormError::Uri(mask_password(&uri));
    let (scheme, rest) = match uri.strip_prefix("//") {
        Some(rest) => ("", rest),
        None => uri.split_once("://").ok_or_else(invalid)?,
    };
    if !scheme.is_empty() && !is_scheme(scheme) {
        return Err(invalid());
    }
    // `conn-type://protocol://host…` keeps the protocol in the host (http hooks use it).
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (protocol, rest) = match rest.split_once("://").filter(|(p, _)| p.len() < netloc_end) {
        Some((protocol, after)) => {
            if protocol.contains(['@', ':']) || !is_scheme(protocol) {
                return Err(invalid());
            }
            (Some(protocol.to_ascii_lowercase()), after)
        }
        None => (None, rest),
    };
    let parts = split_url(rest);
    let (login, password) = match parts.userinfo {
        Some(userinfo) => match userinfo.split_once(':') {
            Some((login, password)) => (Some(decode(login)), Some(decode(password))),
            None => (Some(decode(userinfo)), None),
        },
        None => (None, None),
    };
    let port = match parts.port {
        "" => None,
        text if text.bytes().all(|b| b.is_ascii_digit()) => match text.parse::<i32>() {
            Ok(port) if port <= 65535 => Some(port),
            _ => return Err(ConnectionFormError::Port(text.into())),
        },
        text => return Err(ConnectionFormError::Port(text.into())),
    };
    let host = host_of(&parts);
    let host = match (protocol, host.is_empty()) {
        (Some(protocol), _) => Some(format!("{protocol}://{host}")),
        (None, true) => None,
        (None, false) => Some(host),
    };
    let schema = parts.path.strip_prefix('/').unwrap_or(parts.path);
    let extra = match parts.query {
        Some(query) if !query.is_empty() => {
            let pairs = parse_query(query);
            match pairs.iter().find(|(k, _)| k == EXTRA_KEY) {
                Some((_, extra)) => Some(extra.clone()),
                None => {
                    let mut object = Map::new();
                    for (k, v) in pairs {
                        object.insert(k, Value::String(v));
                    }
                    Some(Value::Object(object).to_string())
                }
            }
        }
        _ => None,
    };
    Ok(ConnectionRecord {
        conn_id: conn_id.to_string(),
        conn_type: normalize_conn_type(&scheme.to_ascii_lowercase()),
        description: None,
        host,
        schema: (!schema.is_empty()).then(|| decode(schema)),
        login,
        password,
        port,
        extra,
    })
}

/// Writes the URI form (Airflow's `Connection.get_uri()`).
pub fn to_uri(connection: &ConnectionRecord) -> String {
    write_uri(connection, false)
}

/// [`to_uri`] with the password (if any) as `***`, for messages.
pub fn to_uri_redacted(connection: &ConnectionRecord) -> String {
    write_uri(connection, true)
}

fn write_uri(connection: &ConnectionRecord, redact_password: bool) -> String {
    let mut uri = if connection.conn_type.is_empty() {
        "//".to_string()
    } else {
        format!(
            "{}://",
            connection.conn_type.to_lowercase().replace('_', "-")
        )
    };
    let (protocol, host) = match connection.host.as_deref() {
        Some(host) => match host.split_once("://") {
            Some((protocol, host)) => (Some(protocol), host),
            None => (None, host),
        },
        None => (None, ""),
    };
    if let Some(protocol) = protocol {
        uri.push_str(protocol);
        uri.push_str("://");
    }
    let mut authority = String::new();
    if let Some(login) = &connection.login {
        authority.push_str(&encode(login));
    }
    if let Some(password) = &connection.password {
        authority.push(':');
        if redact_password {
            authority.push_str(crate::REDACTED);
        } else {
            authority.push_str(&encode(password));
        }
    }
    if !authority.is_empty() {
        uri.push_str(&authority);
        uri.push('@');
    }
    let mut host_block = encode(host);
    if let Some(port) = connection.port.filter(|p| *p != 0) {
        if host_block.is_empty() && authority.is_empty() {
            // Without it the port would read as the host.
            host_block.push('@');
        }
        host_block.push_str(&format!(":{port}"));
    }
    let schema = connection.schema.as_deref().unwrap_or_default();
    if !schema.is_empty() {
        host_block.push('/');
        host_block.push_str(&encode(schema));
    }
    uri.push_str(&host_block);
    if let Some(extra) = connection.extra.as_deref().filter(|e| !e.is_empty()) {
        uri.push_str(if schema.is_empty() { "/?" } else { "?" });
        uri.push_str(&extra_query(extra));
    }
    uri
}

/// `extra` as a query: a flat object of strings as its pairs, anything else whole under
/// `__extra__` (what would not read back the same).
fn extra_query(extra: &str) -> String {
    if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(extra) {
        if !object.is_empty() && object.values().all(Value::is_string) {
            return object
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        encode_plus(k),
                        encode_plus(v.as_str().unwrap_or_default())
                    )
                })
                .collect::<Vec<_>>()
                .join("&");
        }
    }
    format!("{EXTRA_KEY}={}", encode_plus(extra))
}

/// Reads the JSON form: `conn_type`, `description`, `host`, `login`, `password`, `schema`,
/// `port` (a number or a numeric string) and `extra` (an object or its text).
pub fn from_json(conn_id: &str, text: &str) -> Result<ConnectionRecord, ConnectionFormError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ConnectionFormError::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(ConnectionFormError::Json("expected an object".into()));
    };
    from_json_object(conn_id, &object)
}

/// [`from_json`] on an object already parsed (an entry of an imported file).
pub fn from_json_object(
    conn_id: &str,
    object: &Map<String, Value>,
) -> Result<ConnectionRecord, ConnectionFormError> {
    let mut connection = ConnectionRecord {
        conn_id: conn_id.to_string(),
        ..ConnectionRecord::default()
    };
    for (key, value) in object {
        let text = || match value {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s.clone())),
            other => Err(ConnectionFormError::Json(format!(
                "{key} must be a string, not {other}"
            ))),
        };
        match key.as_str() {
            "conn_type" => connection.conn_type = normalize_conn_type(&text()?.unwrap_or_default()),
            "description" => connection.description = text()?,
            "host" => connection.host = text()?,
            "login" => connection.login = text()?,
            "password" => connection.password = text()?,
            "schema" => connection.schema = text()?,
            "port" => connection.port = json_port(value)?,
            "extra" | "extra_dejson" => {
                connection.extra = match value {
                    Value::Null => None,
                    Value::String(s) if s.is_empty() => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                }
            }
            "conn_id" | "connection_id" => {
                if value.as_str() != Some(conn_id) {
                    return Err(ConnectionFormError::Json(format!(
                        "{key} {value} differs from the connection's id {conn_id:?}"
                    )));
                }
            }
            other => {
                return Err(ConnectionFormError::Json(format!(
                    "unknown field {other:?}"
                )))
            }
        }
    }
    Ok(connection)
}

fn json_port(value: &Value) -> Result<Option<i32>, ConnectionFormError> {
    let port = match value {
        Value::Null => return Ok(None),
        Value::Number(n) => n.as_i64(),
        Value::String(s) if s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    match port {
        // Port 0 means none, as in Airflow.
        Some(0) => Ok(None),
        Some(p) if (1..=65535).contains(&p) => Ok(i32::try_from(p).ok()),
        _ => Err(ConnectionFormError::Port(value.to_string())),
    }
}

/// Writes the JSON form (Airflow's `Connection.to_json()`): fields that are not set are
/// left out, and `extra` is an object when it is JSON.
pub fn to_json(connection: &ConnectionRecord) -> Value {
    let mut object = Map::new();
    object.insert(
        "conn_type".into(),
        Value::String(connection.conn_type.clone()),
    );
    let fields = [
        ("description", &connection.description),
        ("host", &connection.host),
        ("login", &connection.login),
        ("password", &connection.password),
        ("schema", &connection.schema),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            object.insert(name.into(), Value::String(value.clone()));
        }
    }
    if let Some(port) = connection.port {
        object.insert("port".into(), Value::from(port));
    }
    if let Some(extra) = connection.extra.as_deref().filter(|e| !e.is_empty()) {
        let extra = serde_json::from_str(extra).unwrap_or_else(|_| Value::String(extra.into()));
        object.insert("extra".into(), extra);
    }
    Value::Object(object)
}

/// The pieces of `[userinfo@]host[:port][/path][?query][#fragment]`, as Python's urlsplit
/// cuts them.
struct UrlParts<'a> {
    netloc: &'a str,
    userinfo: Option<&'a str>,
    hostinfo: &'a str,
    port: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn split_url(rest: &str) -> UrlParts<'_> {
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, after) = rest.split_at(netloc_end);
    let after = after.split('#').next().unwrap_or_default();
    let (path, query) = match after.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (after, None),
    };
    let (userinfo, hostport) = match netloc.rsplit_once('@') {
        Some((userinfo, hostport)) => (Some(userinfo), hostport),
        None => (None, netloc),
    };
    let (hostinfo, port) = match hostport.strip_prefix('[') {
        Some(bracketed) => match bracketed.split_once(']') {
            Some((host, after)) => (host, after.split_once(':').map_or("", |(_, p)| p)),
            None => (bracketed, ""),
        },
        None => match hostport.split_once(':') {
            Some((host, port)) => (host, port),
            None => (hostport, ""),
        },
    };
    UrlParts {
        netloc,
        userinfo,
        hostinfo,
        port,
        path,
        query,
    }
}

/// The host as Airflow reads it: lower-cased before any `%` (Python's `hostname`), then
/// percent-decoded; a host that decodes to a path (a socket) is taken as written.
fn host_of(parts: &UrlParts<'_>) -> String {
    let hostname = match parts.hostinfo.split_once('%') {
        Some((before, after)) => format!("{}%{after}", before.to_lowercase()),
        None => parts.hostinfo.to_lowercase(),
    };
    let host = decode(&hostname);
    if !host.contains('/') {
        return host;
    }
    let mut raw = parts.netloc;
    if let Some((_, after)) = raw.rsplit_once('@') {
        raw = after;
    }
    if let Some((before, _)) = raw.split_once(':') {
        raw = before;
    }
    decode(raw)
}

/// `application/x-www-form-urlencoded` pairs (Python's `parse_qsl` keeping blank values);
/// a repeated key keeps its last value.
fn parse_query(query: &str) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
        let (key, value) = (decode_plus(key), decode_plus(value));
        match pairs.iter_mut().find(|(k, _)| *k == key) {
            Some(pair) => pair.1 = value,
            None => pairs.push((key, value)),
        }
    }
    pairs
}

fn is_scheme(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_alphabetic())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn decode(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

fn decode_plus(text: &str) -> String {
    decode(&text.replace('+', " "))
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

fn encode_plus(text: &str) -> String {
    encode(text).replace("%20", "+")
}

/// A URI for an error message, with its password (if any) hidden.
fn mask_password(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return uri.to_string();
    };
    let netloc_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (netloc, after) = rest.split_at(netloc_end);
    match netloc.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((login, _)) => format!("{scheme}://{login}:***@{host}{after}"),
            None => uri.to_string(),
        },
        None => uri.to_string(),
    }
}

#[cfg(test)]
mod tests;

//! `operator: http` (Airflow's `HttpOperator`): the request under the task's `http:` key.

use std::collections::BTreeMap;

use updraft_model::http::{DEFAULT_HTTP_CONN_ID, HTTP_METHODS};
use updraft_model::{HttpCall, HttpData, Operator};

use super::value::{get, Ctx};
use crate::diagnostic::Pos;
use crate::document::{Entry, NodeKind};

/// The keys of `http:`.
const HTTP_KEYS: &[&str] = &[
    "http_conn_id",
    "method",
    "endpoint",
    "data",
    "headers",
    "response_filter",
    "expected_status",
    "log_response",
];

/// Reads `http:` of a task with `operator: http`.
pub(super) fn read_http(
    entries: &[Entry],
    operator_pos: Option<Pos>,
    label: &str,
    ctx: &mut Ctx,
) -> Option<Operator> {
    let Some(http) = get(entries, "http") else {
        ctx.error(
            operator_pos,
            format!("{label}operator `http` needs `http:` (with at least `endpoint`)"),
        );
        return None;
    };
    let fields = ctx.map(&http.value, label, "http")?;
    ctx.check_keys(fields, HTTP_KEYS, &format!("{label}http: "));
    let text = |ctx: &mut Ctx, key: &str| match get(fields, key) {
        Some(e) => ctx.opt_string(&e.value, label, &format!("http.{key}")),
        None => Some(None),
    };
    let http_conn_id = text(ctx, "http_conn_id")?.unwrap_or_else(|| DEFAULT_HTTP_CONN_ID.into());
    let method = text(ctx, "method")?
        .unwrap_or_else(|| "POST".into())
        .to_ascii_uppercase();
    if !HTTP_METHODS.contains(&method.as_str()) {
        ctx.error(
            get(fields, "method").and_then(|e| e.value.pos),
            format!(
                "{label}unknown HTTP method `{method}`; allowed: {}",
                HTTP_METHODS.join(", ")
            ),
        );
        return None;
    }
    let endpoint = text(ctx, "endpoint")?.unwrap_or_default();
    let data = match get(fields, "data") {
        None => None,
        Some(e) => match &e.value.kind {
            NodeKind::Null => None,
            NodeKind::Map(pairs) => {
                Some(HttpData::Form(string_map(pairs, label, "http.data", ctx)?))
            }
            _ => Some(HttpData::Text(ctx.scalar_text(
                &e.value,
                label,
                "http.data",
            )?)),
        },
    };
    let headers = match get(fields, "headers") {
        None => BTreeMap::new(),
        Some(e) => {
            let pairs = ctx.map(&e.value, label, "http.headers")?;
            string_map(pairs, label, "http.headers", ctx)?
        }
    };
    let response_filter = text(ctx, "response_filter")?;
    if let Some(pointer) = &response_filter {
        if !pointer.is_empty() && !pointer.starts_with('/') {
            ctx.error(
                get(fields, "response_filter").and_then(|e| e.value.pos),
                format!(
                    "{label}`http.response_filter` is a JSON pointer such as `/items/0/id` \
                     (it starts with `/`), not {pointer:?}"
                ),
            );
            return None;
        }
    }
    let expected_status = match get(fields, "expected_status") {
        None => Vec::new(),
        Some(e) => match &e.value.kind {
            NodeKind::Seq(items) => {
                let mut codes = Vec::with_capacity(items.len());
                for item in items {
                    codes.push(status(ctx, item, label)?);
                }
                codes
            }
            _ => vec![status(ctx, &e.value, label)?],
        },
    };
    let log_response = match get(fields, "log_response") {
        Some(e) => ctx.bool(&e.value, label, "http.log_response")?,
        None => false,
    };
    Some(Operator::Http(HttpCall {
        http_conn_id,
        method,
        endpoint,
        data,
        headers,
        response_filter,
        expected_status,
        log_response,
    }))
}

fn status(ctx: &mut Ctx, node: &crate::document::Node, label: &str) -> Option<u16> {
    let code = ctx.int_in(node, label, "http.expected_status", 100..=599)?;
    u16::try_from(code).ok()
}

fn string_map(
    pairs: &[Entry],
    label: &str,
    key: &str,
    ctx: &mut Ctx,
) -> Option<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for pair in pairs {
        let value = ctx.scalar_text(&pair.value, label, &format!("{key}.{}", pair.key))?;
        map.insert(pair.key.clone(), value);
    }
    Some(map)
}

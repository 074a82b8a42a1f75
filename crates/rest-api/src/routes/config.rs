//! `GET /config` and `GET /config/section/{section}/option/{option}`: the configuration in
//! force, as JSON (Airflow's `Config`) or as `text/plain` (INI), only when
//! `api.expose_config` is on. The binary hands over the configuration with its secrets
//! already hidden ([`crate::RestConfig::config`]).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Access, Action, Resource};
use crate::extract::{PathParams, QueryParams};
use crate::{RestError, RestState};

pub(crate) const PERMISSIONS: super::Permissions = &[
    (
        "get_config",
        Access::Require(Action::Read, Resource::Config),
    ),
    (
        "get_config_value",
        Access::Require(Action::Read, Resource::Config),
    ),
];

pub(crate) fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::new()
        .routes(routes!(get_config))
        .routes(routes!(get_config_value))
}

/// What a secret of the configuration shows as, as Airflow shows it.
pub const HIDDEN: &str = "< hidden >";

/// Airflow's `Config`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Config {
    pub sections: Vec<ConfigSection>,
}

/// Airflow's `ConfigSection`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigSection {
    pub name: String,
    pub options: Vec<ConfigOption>,
}

/// Airflow's `ConfigOption`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConfigOption {
    pub key: String,
    pub value: String,
}

/// Options that are secret by name beyond the audit log's words (which already hide
/// `*token*`, `*secret*`, `*password*`, …): the Fernet key and database URLs, which hold a
/// password.
const SECRET_OPTIONS: &[(&str, &str)] = &[
    ("*", "fernet_key"),
    ("*", "sql_alchemy_conn"),
    ("database", "url"),
];

/// The configuration `{section: {option: value}}` with every secret shown as [`HIDDEN`], as
/// `GET /config` must show it (the binary calls this before handing the configuration over).
pub fn hide_config_secrets(config: &Value) -> Value {
    let Some(sections) = config.as_object() else {
        return config.clone();
    };
    let secret = |section: &str, option: &str| {
        crate::audit::is_sensitive(option)
            || SECRET_OPTIONS
                .iter()
                .any(|(s, o)| (*s == "*" || *s == section) && *o == option)
    };
    Value::Object(
        sections
            .iter()
            .map(|(section, options)| {
                let options = match options.as_object() {
                    Some(options) => Value::Object(
                        options
                            .iter()
                            .map(|(option, value)| {
                                let value = if secret(section, option) {
                                    Value::String(HIDDEN.into())
                                } else {
                                    value.clone()
                                };
                                (option.clone(), value)
                            })
                            .collect(),
                    ),
                    None => options.clone(),
                };
                (section.clone(), options)
            })
            .collect(),
    )
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConfigParams {
    /// Only this section.
    pub section: Option<String>,
}

fn refused() -> RestError {
    RestError::forbidden(
        "The administrator chose not to expose the configuration (api.expose_config), \
         most likely for security reasons.",
    )
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The sections of the configuration in force, each option as text.
fn sections(state: &RestState) -> Vec<ConfigSection> {
    let Some(config) = state.config().config.as_object() else {
        return Vec::new();
    };
    config
        .iter()
        .map(|(name, options)| ConfigSection {
            name: name.clone(),
            options: options
                .as_object()
                .map(|options| {
                    options
                        .iter()
                        .map(|(key, value)| ConfigOption {
                            key: key.clone(),
                            value: text(value),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect()
}

fn wants_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/plain") && !accept.contains("json"))
}

/// The answer in the asked form: JSON, or INI text.
fn answer(config: Config, headers: &HeaderMap) -> Response {
    if !wants_text(headers) {
        return Json(config).into_response();
    }
    let mut out = String::new();
    for section in &config.sections {
        out.push_str(&format!("[{}]\n", section.name));
        for option in &section.options {
            out.push_str(&format!("{} = {}\n", option.key, option.value));
        }
        out.push('\n');
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], out).into_response()
}

/// The configuration (one section with `section`).
#[utoipa::path(get, path = "/config", operation_id = "get_config", tag = "Config",
    params(ConfigParams),
    responses((status = 200, content((Config = "application/json"), (String = "text/plain"))),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn get_config(
    State(state): State<RestState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<ConfigParams>,
) -> Result<Response, RestError> {
    if !state.config().expose_config {
        return Err(refused());
    }
    let mut sections = sections(&state);
    if let Some(wanted) = &params.section {
        sections.retain(|s| &s.name == wanted);
        if sections.is_empty() {
            return Err(RestError::not_found(format!("Section {wanted} not found.")));
        }
    }
    Ok(answer(Config { sections }, &headers))
}

/// One option of the configuration.
#[utoipa::path(get, path = "/config/section/{section}/option/{option}",
    operation_id = "get_config_value", tag = "Config",
    params(("section" = String, Path), ("option" = String, Path)),
    responses((status = 200, content((Config = "application/json"), (String = "text/plain"))),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
async fn get_config_value(
    State(state): State<RestState>,
    headers: HeaderMap,
    PathParams((section, option)): PathParams<(String, String)>,
) -> Result<Response, RestError> {
    if !state.config().expose_config {
        return Err(refused());
    }
    let found = sections(&state)
        .into_iter()
        .find(|s| s.name == section)
        .and_then(|s| s.options.into_iter().find(|o| o.key == option))
        .ok_or_else(|| RestError::not_found(format!("Option [{section}/{option}] not found.")))?;
    Ok(answer(
        Config {
            sections: vec![ConfigSection {
                name: section,
                options: vec![found],
            }],
        },
        &headers,
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_of_the_configuration_are_hidden() {
        let hidden = hide_config_secrets(&json!({
            "api": {"worker_token": "w", "jwt_secret": "j", "port": 8080},
            "core": {"fernet_key": "f", "dags_folder": "/dags"},
            "database": {"url": "postgres://u:pw@db/updraft"},
        }));
        assert_eq!(hidden["api"]["worker_token"], HIDDEN);
        assert_eq!(hidden["api"]["jwt_secret"], HIDDEN);
        assert_eq!(hidden["core"]["fernet_key"], HIDDEN);
        assert_eq!(hidden["database"]["url"], HIDDEN);
        assert_eq!(hidden["api"]["port"], 8080);
        assert_eq!(hidden["core"]["dags_folder"], "/dags");
    }
}

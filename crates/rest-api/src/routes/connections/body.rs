//! Airflow's `ConnectionBody`: what creating, changing and bulk-writing a connection take,
//! its checks, and how a change applies to a stored connection.

use serde::{Deserialize, Deserializer};
use serde_json::Value;
use updraft_secrets::{SensitiveNames, REDACTED};
use updraft_store::ConnectionRecord;

use crate::RestError;

/// A field that may be absent, `null` or set: a change touches only the fields it has.
type Field<T> = Option<Option<T>>;

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Field<T>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// The longest connection id Airflow accepts.
const MAX_ID_LENGTH: usize = 200;
const MAX_TEAM_LENGTH: usize = 50;

/// Airflow's `ConnectionBody`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectionBody {
    /// Letters, digits, `_`, `.` and `-`; at most 200 characters.
    pub connection_id: String,
    pub conn_type: String,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Field<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub host: Field<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub login: Field<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub schema: Field<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i32>)]
    pub port: Field<i32>,
    /// Sent back as `***` (as answers show it), the stored password is kept.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub password: Field<String>,
    /// A JSON object, as text; values sent back as `***` keep the stored ones.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub extra: Field<String>,
    /// Accepted for compatibility; updraft has no teams.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub team_name: Field<String>,
}

/// The fields a change may name in `update_mask`.
const FIELDS: &[&str] = &[
    "conn_type",
    "description",
    "host",
    "login",
    "schema",
    "port",
    "password",
    "extra",
];

/// Reads `update_mask` (repeated or comma-separated); `None` when it names nothing. The id
/// cannot change, so naming it changes nothing; an unknown name is a 400.
pub(crate) fn mask_fields(mask: &[String]) -> Result<Option<Vec<String>>, RestError> {
    let names: Vec<String> = mask
        .iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(unknown) = names.iter().find(|n| {
        !FIELDS.contains(&n.as_str())
            && !matches!(n.as_str(), "connection_id" | "conn_id" | "team_name")
    }) {
        return Err(RestError::bad_request(format!(
            "update_mask names an unknown field: {unknown}"
        )));
    }
    Ok((!names.is_empty()).then_some(names))
}

impl ConnectionBody {
    /// Airflow's checks of the body, as 422s naming the field under `location`.
    pub(crate) fn validate(&self, location: &[&str]) -> Result<(), RestError> {
        let at = |field: &str| {
            let mut at = location.to_vec();
            at.push(field);
            at.into_iter().map(str::to_string).collect::<Vec<_>>()
        };
        let invalid = |field: &str, message: &str| {
            let at = at(field);
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            RestError::invalid(&at, message)
        };
        let id = &self.connection_id;
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(invalid(
                "connection_id",
                "must consist of letters, digits, '_', '.' and '-' only",
            ));
        }
        if id.chars().count() > MAX_ID_LENGTH {
            return Err(invalid(
                "connection_id",
                &format!("at most {MAX_ID_LENGTH} characters"),
            ));
        }
        if let Some(Some(extra)) = &self.extra {
            if !extra.is_empty()
                && !matches!(serde_json::from_str::<Value>(extra), Ok(Value::Object(_)))
            {
                return Err(invalid(
                    "extra",
                    r#"The `extra` field must be a valid JSON object (e.g., {"key": "value"})"#,
                ));
            }
        }
        if let Some(Some(port)) = self.port {
            if !(0..=65535).contains(&port) {
                return Err(invalid("port", "must be between 0 and 65535"));
            }
        }
        if let Some(Some(team)) = &self.team_name {
            if team.chars().count() > MAX_TEAM_LENGTH {
                return Err(invalid(
                    "team_name",
                    &format!("at most {MAX_TEAM_LENGTH} characters"),
                ));
            }
        }
        Ok(())
    }

    /// The connection this body describes in full.
    pub(crate) fn record(&self) -> ConnectionRecord {
        let get = |f: &Field<String>| f.clone().flatten();
        ConnectionRecord {
            conn_id: self.connection_id.clone(),
            conn_type: self.conn_type.clone(),
            description: get(&self.description),
            host: get(&self.host),
            schema: get(&self.schema),
            login: get(&self.login),
            password: get(&self.password),
            port: self.port.flatten(),
            extra: get(&self.extra).filter(|e| !e.is_empty()),
        }
    }

    /// `current` with this body's change: the fields `mask` names, or (without one) the
    /// fields the body has. A password or extra value sent back as `***` keeps what is stored.
    pub(crate) fn apply(
        &self,
        mut current: ConnectionRecord,
        mask: Option<&[String]>,
        names: &SensitiveNames,
    ) -> ConnectionRecord {
        let changes = |field: &str, present: bool| match mask {
            Some(mask) => mask.iter().any(|m| m == field),
            None => present,
        };
        let set = |target: &mut Option<String>, field: &str, value: &Field<String>| {
            if changes(field, value.is_some()) {
                *target = value.clone().flatten();
            }
        };
        if changes("conn_type", true) {
            current.conn_type = self.conn_type.clone();
        }
        set(&mut current.description, "description", &self.description);
        set(&mut current.host, "host", &self.host);
        set(&mut current.login, "login", &self.login);
        set(&mut current.schema, "schema", &self.schema);
        if changes("port", self.port.is_some()) {
            current.port = self.port.flatten();
        }
        if changes("password", self.password.is_some()) {
            let sent = self.password.clone().flatten();
            if sent.as_deref() != Some(REDACTED) {
                current.password = sent;
            }
        }
        if changes("extra", self.extra.is_some()) {
            let sent = self.extra.clone().flatten().filter(|e| !e.is_empty());
            current.extra = match (sent, current.extra.as_deref()) {
                (Some(sent), Some(stored)) => Some(restore_redacted(&sent, stored, names)),
                (sent, _) => sent,
            };
        }
        current
    }
}

/// `sent` with every `***` under a secret-looking key replaced by the stored value at the
/// same place, so writing back a redacted answer does not overwrite the secret.
fn restore_redacted(sent: &str, stored: &str, names: &SensitiveNames) -> String {
    fn walk(sent: &mut Value, stored: &Value, secret: bool, names: &SensitiveNames) {
        if secret && sent.as_str() == Some(REDACTED) {
            *sent = stored.clone();
            return;
        }
        match (sent, stored) {
            (Value::Object(sent), Value::Object(stored)) => {
                for (key, value) in sent.iter_mut() {
                    if let Some(old) = stored.get(key) {
                        walk(value, old, secret || names.is_sensitive(key), names);
                    }
                }
            }
            (Value::Array(sent), Value::Array(stored)) => {
                for (value, old) in sent.iter_mut().zip(stored) {
                    walk(value, old, secret, names);
                }
            }
            _ => {}
        }
    }
    if !sent.contains(REDACTED) {
        return sent.to_string();
    }
    let (Ok(mut sent_value), Ok(stored_value)) = (
        serde_json::from_str::<Value>(sent),
        serde_json::from_str::<Value>(stored),
    ) else {
        return sent.to_string();
    };
    walk(&mut sent_value, &stored_value, false, names);
    sent_value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_extra_values_keep_the_stored_secrets() {
        let names = SensitiveNames::default();
        let stored = r#"{"region":"eu","api_key":"k-123","auth":{"token":"t-9","n":3}}"#;
        let sent = r#"{"region":"us","api_key":"***","auth":{"token":"***","n":4},"new":"x"}"#;
        let merged: Value = serde_json::from_str(&restore_redacted(sent, stored, &names)).unwrap();
        assert_eq!(
            merged,
            serde_json::json!({"region":"us","api_key":"k-123","auth":{"token":"t-9","n":4},"new":"x"})
        );
        // `***` under a plain key is a value like any other.
        let merged = restore_redacted(r#"{"region":"***"}"#, r#"{"region":"eu"}"#, &names);
        assert_eq!(merged, r#"{"region":"***"}"#);
    }

    #[test]
    fn a_change_touches_only_what_it_has_or_what_the_mask_names() {
        let names = SensitiveNames::default();
        let current = ConnectionRecord {
            conn_id: "c".into(),
            conn_type: "postgres".into(),
            host: Some("old-host".into()),
            login: Some("old-login".into()),
            password: Some("old-pw".into()),
            port: Some(5432),
            ..ConnectionRecord::default()
        };
        let body: ConnectionBody = serde_json::from_value(serde_json::json!({
            "connection_id": "c", "conn_type": "postgres", "host": "new-host",
            "password": "***", "login": null}))
        .unwrap();
        let updated = body.apply(current.clone(), None, &names);
        assert_eq!(updated.host.as_deref(), Some("new-host"));
        assert_eq!(updated.login, None);
        assert_eq!(updated.password.as_deref(), Some("old-pw"));
        assert_eq!(updated.port, Some(5432));
        let mask = vec!["port".to_string()];
        let updated = body.apply(current.clone(), Some(&mask), &names);
        assert_eq!(updated.port, None);
        assert_eq!(updated.host.as_deref(), Some("old-host"));
    }
}

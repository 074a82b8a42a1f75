//! Which names look secret (Airflow's `sensitive_var_conn_names`), and hiding their values.

use serde_json::Value;

/// What a hidden value is shown as.
pub const REDACTED: &str = "***";

/// Airflow's built-in sensitive names: a variable or an `extra` key whose name contains one
/// of them (case-insensitively) is secret.
pub const DEFAULT_SENSITIVE_NAMES: &[&str] = &[
    "access_token",
    "api_key",
    "apikey",
    "authorization",
    "passphrase",
    "passwd",
    "password",
    "private_key",
    "secret",
    "token",
    "keyfile_dict",
    "service_account",
];

/// The built-in sensitive names and the configured extra ones (`core.sensitive_var_conn_names`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensitiveNames {
    names: Vec<String>,
}

impl Default for SensitiveNames {
    fn default() -> Self {
        SensitiveNames::new("")
    }
}

impl SensitiveNames {
    /// The built-in names and `extra`, a comma-separated list as the configuration gives it.
    pub fn new(extra: &str) -> SensitiveNames {
        let mut names: Vec<String> = DEFAULT_SENSITIVE_NAMES
            .iter()
            .map(|n| n.to_string())
            .collect();
        for name in extra.split(',') {
            let name = name.trim().to_lowercase();
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        SensitiveNames { names }
    }

    /// Whether `name` contains a sensitive name, ignoring case and surrounding spaces (as
    /// Airflow decides it: `api_key_prod` and `DB_PASSWORD` are secret).
    pub fn is_sensitive(&self, name: &str) -> bool {
        let name = name.trim().to_lowercase();
        self.names.iter().any(|s| name.contains(s.as_str()))
    }

    /// A variable's value as the API shows it: `***` when its key looks secret; a JSON
    /// object's values under secret-looking keys hidden; anything else as it is.
    pub fn redact_variable(&self, key: &str, value: &str) -> String {
        if self.is_sensitive(key) {
            return REDACTED.to_string();
        }
        self.redact_json_text(value, 1)
    }

    /// A connection's `extra` as the API shows it: values under secret-looking keys hidden.
    /// Text that is not JSON is shown as it is (it has no keys to judge by).
    pub fn redact_extra(&self, extra: &str) -> String {
        self.redact_json_text(extra, usize::MAX)
    }

    /// The strings under secret-looking keys of a JSON text (a connection's `extra`), at
    /// any depth: what a log must not show.
    pub fn secret_values(&self, json: &str) -> Vec<String> {
        fn all_strings(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::String(s) => out.push(s.clone()),
                Value::Object(map) => map.values().for_each(|v| all_strings(v, out)),
                Value::Array(items) => items.iter().for_each(|v| all_strings(v, out)),
                _ => {}
            }
        }
        fn walk(names: &SensitiveNames, value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        if names.is_sensitive(k) {
                            all_strings(v, out);
                        } else {
                            walk(names, v, out);
                        }
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(names, v, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Ok(value) = serde_json::from_str::<Value>(json) {
            walk(self, &value, &mut out);
        }
        out
    }

    fn redact_json_text(&self, text: &str, max_depth: usize) -> String {
        match serde_json::from_str::<Value>(text) {
            Ok(value @ (Value::Object(_) | Value::Array(_))) => {
                let redacted = redact_json(self, &value, max_depth);
                if redacted == value {
                    text.to_string()
                } else {
                    redacted.to_string()
                }
            }
            _ => text.to_string(),
        }
    }
}

/// `value` with every value under a secret-looking key hidden, looking `max_depth` levels of
/// objects deep. Under a secret key every string, however deep, becomes `***`; numbers and
/// booleans stay (as Airflow leaves them).
pub fn redact_json(names: &SensitiveNames, value: &Value, max_depth: usize) -> Value {
    fn walk(names: &SensitiveNames, value: &Value, depth: usize, max_depth: usize) -> Value {
        match value {
            Value::Object(map) if depth < max_depth => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let v = if names.is_sensitive(k) {
                            hide_all(v)
                        } else {
                            walk(names, v, depth + 1, max_depth)
                        };
                        (k.clone(), v)
                    })
                    .collect(),
            ),
            Value::Array(items) if depth < max_depth => Value::Array(
                items
                    .iter()
                    .map(|v| walk(names, v, depth, max_depth))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    fn hide_all(value: &Value) -> Value {
        match value {
            Value::String(_) => Value::String(REDACTED.into()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), hide_all(v))).collect())
            }
            Value::Array(items) => Value::Array(items.iter().map(hide_all).collect()),
            other => other.clone(),
        }
    }
    walk(names, value, 0, max_depth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_containing_a_sensitive_word_are_secret_whatever_their_case() {
        let names = SensitiveNames::default();
        for secret in [
            "password",
            "DB_PASSWORD",
            " my_api_key ",
            "GitHubToken",
            "aws_secret_access_key",
            "gcp_keyfile_dict",
            "Authorization",
        ] {
            assert!(names.is_sensitive(secret), "{secret}");
        }
        for plain in ["host", "username", "bucket", "pass", "key"] {
            assert!(!names.is_sensitive(plain), "{plain}");
        }
        let extended = SensitiveNames::new(" Cookie, ,pin");
        assert!(extended.is_sensitive("session_cookie"));
        assert!(extended.is_sensitive("PIN_CODE"));
        assert!(!names.is_sensitive("session_cookie"));
    }

    #[test]
    fn variables_with_secret_names_are_hidden_and_json_objects_lose_secret_keys() {
        let names = SensitiveNames::default();
        assert_eq!(names.redact_variable("db_password", "hunter22"), "***");
        assert_eq!(names.redact_variable("db_password", "12345"), "***");
        assert_eq!(names.redact_variable("bucket", "my-bucket"), "my-bucket");
        let shown: Value = serde_json::from_str(
            &names.redact_variable("settings", r#"{"user":"u","token":"t","n":{"secret":"s"}}"#),
        )
        .unwrap();
        // One level deep, as Airflow redacts variables.
        assert_eq!(
            shown,
            json!({"user": "u", "token": "***", "n": {"secret": "s"}})
        );
        // Untouched text keeps its exact form.
        assert_eq!(names.redact_variable("x", r#"{"a": 1}"#), r#"{"a": 1}"#);
    }

    #[test]
    fn extras_hide_values_under_secret_keys_at_any_depth() {
        let names = SensitiveNames::default();
        let shown: Value = serde_json::from_str(&names.redact_extra(
            r#"{"region":"eu","auth":{"api_key":"k","nested":[{"password":"p"}]},"private_key":{"a":"b","n":3}}"#,
        ))
        .unwrap();
        assert_eq!(
            shown,
            json!({"region":"eu","auth":{"api_key":"***","nested":[{"password":"***"}]},"private_key":{"a":"***","n":3}})
        );
        assert_eq!(names.redact_extra("not json"), "not json");
        let mut found = names.secret_values(
            r#"{"region":"eu","auth":{"api_key":"k1","list":[{"token":"t1"}]},"secret":{"a":"s1","n":3}}"#,
        );
        found.sort();
        assert_eq!(found, ["k1", "s1", "t1"]);
        assert!(names.secret_values("not json").is_empty());
    }
}

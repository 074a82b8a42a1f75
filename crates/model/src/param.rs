//! A DAG's `params` as Airflow's `Param` specs: a default value plus the subset of JSON Schema
//! (type, enum, bounds, lengths, format) that a trigger form is generated from and that a run's
//! `conf` is checked against.
//!
//! In a DAG file a param is either a plain value (its default, any type accepted) or a spec: a
//! mapping with a `type` or a `default` key, whose other keys are among [`SPEC_KEYS`]. An object
//! default is therefore written `{type: object, default: {...}}`.

use chrono::{DateTime, NaiveDate, NaiveTime};
use serde_json::{Map, Value};

/// The keys a param spec may have.
pub const SPEC_KEYS: &[&str] = &[
    "type",
    "default",
    "description",
    "title",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "format",
];

/// One of a DAG's params.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub name: String,
    /// `None`: the param has no default, so a run must provide it.
    pub default: Option<Value>,
    /// The accepted JSON types; empty accepts any value.
    pub types: Vec<ParamType>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub enum_values: Option<Vec<Value>>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// `date`, `date-time` and `time` are checked; other formats are only hints.
    pub format: Option<String>,
}

/// A JSON Schema type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    Array,
    Object,
    Null,
}

/// A value that does not satisfy a param: Airflow's `ParamValidationError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid input for param {name}: {message}")]
pub struct ParamError {
    pub name: String,
    pub message: String,
}

impl ParamType {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "string" => ParamType::String,
            "integer" => ParamType::Integer,
            "number" => ParamType::Number,
            "boolean" => ParamType::Boolean,
            "array" => ParamType::Array,
            "object" => ParamType::Object,
            "null" => ParamType::Null,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Array => "array",
            ParamType::Object => "object",
            ParamType::Null => "null",
        }
    }

    fn accepts(self, value: &Value) -> bool {
        match (self, value) {
            (ParamType::String, Value::String(_))
            | (ParamType::Number, Value::Number(_))
            | (ParamType::Boolean, Value::Bool(_))
            | (ParamType::Array, Value::Array(_))
            | (ParamType::Object, Value::Object(_))
            | (ParamType::Null, Value::Null) => true,
            (ParamType::Integer, Value::Number(n)) => {
                n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
            }
            _ => false,
        }
    }
}

impl Param {
    /// A param whose entry in the file is a plain value: that value is its default.
    pub fn plain(name: impl Into<String>, default: Value) -> Self {
        Param {
            name: name.into(),
            default: Some(default),
            types: Vec::new(),
            title: None,
            description: None,
            enum_values: None,
            minimum: None,
            maximum: None,
            min_length: None,
            max_length: None,
            format: None,
        }
    }

    /// Reads one entry of `params`. A spec with a mistake is reported as the message.
    pub fn from_entry(name: &str, entry: &Value) -> Result<Self, String> {
        let Some(spec) = entry.as_object().filter(|m| is_spec(m)) else {
            return Ok(Param::plain(name, entry.clone()));
        };
        let mut param = Param::plain(name, Value::Null);
        param.default = spec.get("default").cloned();
        for (key, value) in spec {
            match key.as_str() {
                "type" => param.types = read_types(value)?,
                "default" => {}
                "description" => param.description = Some(read_str(key, value)?),
                "title" => param.title = Some(read_str(key, value)?),
                "format" => param.format = Some(read_str(key, value)?),
                "enum" => match value {
                    Value::Array(items) if !items.is_empty() => {
                        param.enum_values = Some(items.clone())
                    }
                    _ => return Err("`enum` must be a non-empty list".to_string()),
                },
                "minimum" => param.minimum = Some(read_f64(key, value)?),
                "maximum" => param.maximum = Some(read_f64(key, value)?),
                "minLength" => param.min_length = Some(read_u64(key, value)?),
                "maxLength" => param.max_length = Some(read_u64(key, value)?),
                other => {
                    return Err(format!(
                        "unknown key `{other}` in a param spec; expected one of {}",
                        SPEC_KEYS.join(", ")
                    ))
                }
            }
        }
        if let Some(default) = &param.default {
            param
                .check(default)
                .map_err(|e| format!("the default does not fit the spec: {}", e.message))?;
        }
        Ok(param)
    }

    /// A value must be given: there is no default and `null` is not accepted.
    pub fn required(&self) -> bool {
        self.default.is_none() && !self.types.is_empty() && !self.types.contains(&ParamType::Null)
    }

    /// The type a form field edits: the first non-null type, if any.
    pub fn main_type(&self) -> Option<ParamType> {
        self.types.iter().copied().find(|t| *t != ParamType::Null)
    }

    /// Checks `value` (the run's value for this param, after defaults) against the spec.
    pub fn check(&self, value: &Value) -> Result<(), ParamError> {
        let fail = |message: String| {
            Err(ParamError {
                name: self.name.clone(),
                message,
            })
        };
        if !self.types.is_empty() && !self.types.iter().any(|t| t.accepts(value)) {
            let names: Vec<&str> = self.types.iter().map(|t| t.as_str()).collect();
            return fail(format!(
                "{} is not of type {}",
                short(value),
                names.join(" or ")
            ));
        }
        if value.is_null() {
            return Ok(());
        }
        if let Some(allowed) = &self.enum_values {
            if !allowed.contains(value) {
                let list: Vec<String> = allowed.iter().map(short).collect();
                return fail(format!(
                    "{} is not one of [{}]",
                    short(value),
                    list.join(", ")
                ));
            }
        }
        if let Some(n) = value.as_f64() {
            if let Some(min) = self.minimum.filter(|min| n < *min) {
                return fail(format!("{n} is less than the minimum of {min}"));
            }
            if let Some(max) = self.maximum.filter(|max| n > *max) {
                return fail(format!("{n} is greater than the maximum of {max}"));
            }
        }
        let length = match value {
            Value::String(s) => Some(s.chars().count() as u64),
            Value::Array(items) => Some(items.len() as u64),
            _ => None,
        };
        if let Some(len) = length {
            if let Some(min) = self.min_length.filter(|min| len < *min) {
                return fail(format!(
                    "{} is shorter than the minimum length of {min}",
                    short(value)
                ));
            }
            if let Some(max) = self.max_length.filter(|max| len > *max) {
                return fail(format!(
                    "{} is longer than the maximum length of {max}",
                    short(value)
                ));
            }
        }
        if let (Some(format), Value::String(s)) = (self.format.as_deref(), value) {
            let ok = match format {
                "date" => NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
                "date-time" => DateTime::parse_from_rfc3339(s).is_ok(),
                "time" => {
                    NaiveTime::parse_from_str(s, "%H:%M:%S%.f").is_ok()
                        || NaiveTime::parse_from_str(s, "%H:%M").is_ok()
                }
                _ => true,
            };
            if !ok {
                return fail(format!("{} is not a '{format}'", short(value)));
            }
        }
        Ok(())
    }

    /// Airflow's serialized form (`GET /dags/{id}/details`): value, description and schema.
    pub fn to_api_json(&self) -> Value {
        let mut schema = Map::new();
        match self.types.as_slice() {
            [] => {}
            [one] => {
                schema.insert("type".into(), one.as_str().into());
            }
            many => {
                schema.insert(
                    "type".into(),
                    many.iter().map(|t| Value::from(t.as_str())).collect(),
                );
            }
        }
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                schema.insert(key.into(), v);
            }
        };
        put("title", self.title.clone().map(Value::from));
        put("enum", self.enum_values.clone().map(Value::Array));
        put("minimum", self.minimum.map(Value::from));
        put("maximum", self.maximum.map(Value::from));
        put("minLength", self.min_length.map(Value::from));
        put("maxLength", self.max_length.map(Value::from));
        put("format", self.format.clone().map(Value::from));
        serde_json::json!({
            "__class": "airflow.sdk.definitions.param.Param",
            "value": self.default.clone().unwrap_or(Value::Null),
            "description": self.description,
            "schema": schema,
            "source": null,
        })
    }
}

/// Reads every entry of a DAG's `params` (in name order: JSON objects are stored sorted); the mistakes as (param name, message).
pub fn read_params(params: &Map<String, Value>) -> (Vec<Param>, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (name, entry) in params {
        match Param::from_entry(name, entry) {
            Ok(p) => out.push(p),
            Err(e) => errors.push((name.clone(), e)),
        }
    }
    (out, errors)
}

/// The params a run sees: each param's default overridden by `conf`, plus `conf`'s other keys
/// (Airflow's `dag_run_conf_overrides_params`). Fails on the first param whose value does not fit.
pub fn resolve(
    params: &[Param],
    conf: &Map<String, Value>,
) -> Result<Map<String, Value>, ParamError> {
    let mut out = Map::new();
    for param in params {
        let value = match conf.get(&param.name).or(param.default.as_ref()) {
            Some(v) => v.clone(),
            None if param.required() => {
                return Err(ParamError {
                    name: param.name.clone(),
                    message: "No value passed and Param has no default value".to_string(),
                })
            }
            None => Value::Null,
        };
        param.check(&value)?;
        out.insert(param.name.clone(), value);
    }
    for (key, value) in conf {
        if !out.contains_key(key) {
            out.insert(key.clone(), value.clone());
        }
    }
    Ok(out)
}

fn is_spec(map: &Map<String, Value>) -> bool {
    map.contains_key("type") || map.contains_key("default")
}

fn read_types(value: &Value) -> Result<Vec<ParamType>, String> {
    let names: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    names
        .into_iter()
        .map(|n| {
            n.as_str().and_then(ParamType::parse).ok_or_else(|| {
                format!(
                    "`type` must be string, integer, number, boolean, array, object or null (or a list of them), not {}",
                    short(n)
                )
            })
        })
        .collect()
}

fn read_str(key: &str, value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("`{key}` must be a string"))
}

fn read_f64(key: &str, value: &Value) -> Result<f64, String> {
    value
        .as_f64()
        .ok_or_else(|| format!("`{key}` must be a number"))
}

fn read_u64(key: &str, value: &Value) -> Result<u64, String> {
    value
        .as_u64()
        .ok_or_else(|| format!("`{key}` must be a whole number ≥ 0"))
}

/// A value as JSON, cut to keep messages readable.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

#[cfg(test)]
mod tests;

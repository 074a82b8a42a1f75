//! The trigger form's fields, generated from the DAG's params: one input per param with the
//! HTML constraints of its spec (required, bounds, lengths, choices, date pickers), so the
//! browser checks a value before the API does.

use serde_json::Value;
use updraft_model::{Param, ParamType};

/// One field; templates print every text through askama's escaping.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    /// `checkbox`, `number`, `text`, `date`, `datetime-local`, `time`, `select` or `textarea`.
    pub input: &'static str,
    /// The JSON type the script converts the text to (`""`: any JSON, or text).
    pub data_type: &'static str,
    pub format: Option<String>,
    /// The initial value as the input's text (JSON for arrays, objects and untyped values).
    pub value: String,
    pub checked: bool,
    pub required: bool,
    pub nullable: bool,
    pub min: Option<String>,
    pub max: Option<String>,
    pub step: Option<&'static str>,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    /// For `select`: (value as text, selected).
    pub options: Vec<(String, bool)>,
    /// A one-line summary of the spec for people ("integer, 1–10").
    pub hint: String,
}

/// The fields of `params`, in their order.
pub fn fields(params: &[Param]) -> Vec<Field> {
    params.iter().map(field).collect()
}

fn field(p: &Param) -> Field {
    let main = p.main_type();
    let default = p.default.clone().unwrap_or(Value::Null);
    let format = p.format.clone();
    let input = match (main, format.as_deref(), &p.enum_values) {
        (_, _, Some(_)) => "select",
        (Some(ParamType::Boolean), _, _) => "checkbox",
        (Some(ParamType::Integer | ParamType::Number), _, _) => "number",
        (Some(ParamType::String), Some("date"), _) => "date",
        (Some(ParamType::String), Some("date-time"), _) => "datetime-local",
        (Some(ParamType::String), Some("time"), _) => "time",
        (Some(ParamType::String), _, _) => "text",
        _ => "textarea",
    };
    let data_type = main.map_or("", |t| t.as_str());
    let value = match (&default, input) {
        (Value::Null, _) => String::new(),
        (Value::String(s), "datetime-local") => s.chars().take(16).collect(),
        (Value::String(s), _) if data_type == "string" || input == "select" => s.clone(),
        (Value::String(s), _) if data_type.is_empty() => s.clone(),
        (v, _) => v.to_string(),
    };
    let options = p
        .enum_values
        .iter()
        .flatten()
        .map(|v| {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (text, v == &default)
        })
        .collect();
    let mut hint = Vec::new();
    if !p.types.is_empty() {
        let names: Vec<&str> = p.types.iter().map(|t| t.as_str()).collect();
        hint.push(names.join(" or "));
    }
    match (p.minimum, p.maximum) {
        (Some(a), Some(b)) => hint.push(format!("{a} to {b}")),
        (Some(a), None) => hint.push(format!("at least {a}")),
        (None, Some(b)) => hint.push(format!("at most {b}")),
        (None, None) => {}
    }
    if let Some(f) = &format {
        hint.push(format!("format {f}"));
    }
    Field {
        name: p.name.clone(),
        label: p.title.clone().unwrap_or_else(|| p.name.clone()),
        description: p.description.clone(),
        input,
        data_type,
        format,
        checked: default == Value::Bool(true),
        value,
        required: p.required(),
        nullable: p.types.contains(&ParamType::Null),
        min: p.minimum.map(|v| v.to_string()),
        max: p.maximum.map(|v| v.to_string()),
        step: match main {
            Some(ParamType::Integer) => Some("1"),
            Some(ParamType::Number) => Some("any"),
            _ => None,
        },
        min_length: p.min_length,
        max_length: p.max_length,
        options,
        hint: hint.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(spec: Value) -> Field {
        let param = Param::from_entry("p", &spec).expect("a valid spec");
        field(&param)
    }

    #[test]
    fn each_type_gets_its_input() {
        let cases = [
            (json!({"type": "boolean", "default": true}), "checkbox"),
            (json!({"type": "integer", "default": 1}), "number"),
            (
                json!({"type": ["number", "null"], "default": 1.5}),
                "number",
            ),
            (json!({"type": "string", "default": "x"}), "text"),
            (
                json!({"type": "string", "format": "date", "default": "2026-01-02"}),
                "date",
            ),
            (
                json!({"type": "string", "format": "date-time", "default": "2026-01-02T03:04:05Z"}),
                "datetime-local",
            ),
            (
                json!({"type": "string", "enum": ["a", "b"], "default": "b"}),
                "select",
            ),
            (json!({"type": "object", "default": {"k": 1}}), "textarea"),
            (json!({"type": "array", "default": [1]}), "textarea"),
            (json!("plain"), "textarea"),
        ];
        for (spec, input) in cases {
            assert_eq!(one(spec.clone()).input, input, "{spec}");
        }
    }

    #[test]
    fn constraints_and_defaults_become_attributes() {
        let f = one(
            json!({"type": "integer", "default": 3, "minimum": 1, "maximum": 9,
            "description": "how many", "title": "Count"}),
        );
        assert_eq!((f.label.as_str(), f.value.as_str()), ("Count", "3"));
        assert_eq!(
            (f.min.as_deref(), f.max.as_deref(), f.step),
            (Some("1"), Some("9"), Some("1"))
        );
        assert!(!f.required);
        assert_eq!(f.hint, "integer, 1 to 9");
        let f = one(json!({"type": "string", "minLength": 2}));
        assert!(f.required, "no default and not nullable");
        assert_eq!(f.min_length, Some(2));
        let f = one(json!({"type": "string", "enum": ["a", "b"], "default": "b"}));
        assert_eq!(
            f.options,
            vec![("a".to_string(), false), ("b".to_string(), true)]
        );
        assert_eq!(
            one(json!({"type": "object", "default": {"k": 1}})).value,
            r#"{"k":1}"#
        );
        assert_eq!(
            one(
                json!({"type": "string", "format": "date-time", "default": "2026-01-02T03:04:05Z"})
            )
            .value,
            "2026-01-02T03:04"
        );
        assert!(one(json!({"type": "boolean", "default": true})).checked);
        assert!(one(json!({"type": ["string", "null"]})).nullable);
    }
}

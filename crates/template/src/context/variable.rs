//! `var`: Airflow variables in templates, as `var.value.NAME`, `var.json.NAME` and
//! `var.value.get('NAME', 'default')`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{from_args, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use crate::error::VariableIssue;

/// `var` itself: `var.value` and `var.json`.
#[derive(Debug)]
pub(super) struct VariableAccessor {
    variables: Arc<BTreeMap<String, String>>,
}

impl VariableAccessor {
    pub(super) fn new(variables: Arc<BTreeMap<String, String>>) -> Self {
        VariableAccessor { variables }
    }
}

impl Object for VariableAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let json = match key.as_str()? {
            "value" => false,
            "json" => true,
            _ => return None,
        };
        Some(Value::from_object(Variables {
            variables: Arc::clone(&self.variables),
            json,
        }))
    }
}

/// `var.value` (values as strings) or `var.json` (values parsed as JSON).
#[derive(Debug)]
struct Variables {
    variables: Arc<BTreeMap<String, String>>,
    json: bool,
}

impl Variables {
    /// The variable `name`, or `None` when it does not exist.
    fn lookup(&self, name: &str) -> Option<Result<Value, Error>> {
        let raw = self.variables.get(name)?;
        if !self.json {
            return Some(Ok(Value::from(raw.as_str())));
        }
        Some(
            serde_json::from_str::<serde_json::Value>(raw)
                .map(Value::from_serialize)
                .map_err(|err| {
                    VariableIssue::NotJson {
                        name: name.to_owned(),
                        message: err.to_string(),
                    }
                    .into_error()
                }),
        )
    }
}

impl Object for Variables {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// A missing variable is an error, as in Airflow; it is returned as an invalid value, which
    /// fails the render with that error as soon as the template uses it.
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        let found = self
            .lookup(name)
            .unwrap_or_else(|| Err(VariableIssue::NotFound(name.to_owned()).into_error()));
        Some(found.unwrap_or_else(Value::from))
    }

    /// `get(name, default_var)`: like Airflow, the default is used only when given, and a missing
    /// variable without a default is an error.
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (name, default, kwargs): (&str, Option<Value>, minijinja::value::Kwargs) =
            from_args(args)?;
        let keyword: Option<Value> = kwargs.get("default_var")?;
        kwargs.assert_all_used()?;
        match (self.lookup(name), default.or(keyword)) {
            (Some(found), _) => found,
            (None, Some(default)) => Ok(default),
            (None, None) => Err(VariableIssue::NotFound(name.to_owned()).into_error()),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.json {
            "<var.json>"
        } else {
            "<var.value>"
        })
    }
}

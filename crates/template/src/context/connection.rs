//! `conn`: Airflow connections in templates, as `conn.ID.host`, `conn.ID.password`,
//! `conn.ID.extra_dejson.KEY`, `conn.ID.get_uri()` and `conn.get('ID')`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use minijinja::value::{from_args, Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use crate::error::VariableIssue;

/// One connection as a template sees it. The caller fills it in (from the environment and
/// the database), with its URI form already written, so this crate stays free of IO.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateConnection {
    pub conn_id: String,
    pub conn_type: String,
    pub description: Option<String>,
    pub host: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
    pub port: Option<i32>,
    pub schema: Option<String>,
    /// A JSON object, as text.
    pub extra: Option<String>,
    /// Airflow's `get_uri()` of this connection.
    pub uri: String,
}

/// `conn` itself.
#[derive(Debug)]
pub(super) struct ConnectionAccessor {
    connections: Arc<BTreeMap<String, TemplateConnection>>,
}

impl ConnectionAccessor {
    pub(super) fn new(connections: Arc<BTreeMap<String, TemplateConnection>>) -> Self {
        ConnectionAccessor { connections }
    }

    fn lookup(&self, conn_id: &str) -> Option<Value> {
        self.connections
            .get(conn_id)
            .map(|c| Value::from_object(ConnectionValue(c.clone())))
    }
}

impl Object for ConnectionAccessor {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    /// A missing connection is an error, as in Airflow (returned as an invalid value, which
    /// fails the render as soon as the template uses it).
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let conn_id = key.as_str()?;
        Some(self.lookup(conn_id).unwrap_or_else(|| {
            Value::from(VariableIssue::ConnectionNotFound(conn_id.to_owned()).into_error())
        }))
    }

    /// `get(conn_id)`: the connection, or an error naming it.
    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method != "get" {
            return Err(Error::from(ErrorKind::UnknownMethod));
        }
        let (conn_id,): (&str,) = from_args(args)?;
        self.lookup(conn_id)
            .ok_or_else(|| VariableIssue::ConnectionNotFound(conn_id.to_owned()).into_error())
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<conn>")
    }
}

/// One connection: its fields as attributes (unset ones are `None`), `extra_dejson`, and
/// `get_uri()`.
#[derive(Debug)]
struct ConnectionValue(TemplateConnection);

impl Object for ConnectionValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let c = &self.0;
        let text = |v: &Option<String>| v.as_deref().map_or(Value::from(()), Value::from);
        Some(match key.as_str()? {
            "conn_id" => Value::from(c.conn_id.as_str()),
            "conn_type" => Value::from(c.conn_type.as_str()),
            "description" => text(&c.description),
            "host" => text(&c.host),
            "login" => text(&c.login),
            "password" => text(&c.password),
            "schema" => text(&c.schema),
            "port" => c.port.map_or(Value::from(()), Value::from),
            "extra" => text(&c.extra),
            // As Airflow: an extra that is not JSON reads as an empty object.
            "extra_dejson" => c
                .extra
                .as_deref()
                .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
                .map_or_else(
                    || Value::from_serialize(serde_json::Map::new()),
                    Value::from_serialize,
                ),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "get_uri" => {
                let () = from_args(args)?;
                Ok(Value::from(self.0.uri.as_str()))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.conn_id)
    }
}

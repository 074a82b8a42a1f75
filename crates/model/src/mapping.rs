//! Dynamic task mapping (Airflow's `.partial(…).expand(…)` and `.expand_kwargs(…)`): a mapped
//! task runs as N task instances (`map_index` 0..N-1), one per value of its mapped
//! arguments, where N is known only once the values are (a literal list in the definition, or
//! an upstream task's result).
//!
//! Pure: the caller resolves an upstream task's result ([`Mapping::length`],
//! [`Mapping::arguments`] take a function from task id to that task's value as a downstream
//! sees it — a mapped upstream's values collected into a list in `map_index` order).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Airflow's `core.max_map_length` default: a mapped task never expands past this many
/// instances.
pub const DEFAULT_MAX_MAP_LENGTH: usize = 1024;

/// The one argument of an `expand_kwargs` instance whose source has an `XComArg.map`: the
/// item before the SDK's callables turn it into the dict of arguments.
pub const MAP_ITEM: &str = "__map_item__";

/// Where a mapped argument's values come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MapSource {
    /// Written in the definition (a dict literal is stored as its `[key, value]` pairs).
    Literal(Vec<Value>),
    /// An upstream task's `return_value` XCom (Airflow's `XComArg`).
    Xcom(String),
    /// `XComArg.map(f)`: the source's values, each turned by Python callables that the SDK
    /// applies where the value is resolved (their names are kept for display). The engine
    /// sees the source's values: the length is the source's.
    Map {
        source: Box<MapSource>,
        callables: Vec<String>,
    },
    /// `XComArg.zip(…)`: item i is the list of every source's item i; as long as the shortest
    /// source, or the longest with `fillvalue` in the gaps when `longest`.
    Zip {
        sources: Vec<MapSource>,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        longest: bool,
        #[serde(default, skip_serializing_if = "Value::is_null")]
        fillvalue: Value,
    },
    /// `XComArg.concat(…)`: the sources' items one after the other.
    Concat(Vec<MapSource>),
}

/// One argument of `expand(name=…)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MappedArgument {
    pub name: String,
    pub source: MapSource,
}

/// How a task is mapped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mapping {
    /// `expand(a=…, b=…)`: one instance per combination of the arguments' values (the cross
    /// product), the last argument varying fastest, as Airflow numbers them.
    Expand(Vec<MappedArgument>),
    /// `expand_kwargs(…)`: one instance per dict of a list, whose entries are the arguments.
    ExpandKwargs(MapSource),
}

/// Why a mapped task cannot be expanded, or an instance's arguments not computed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MappingError {
    #[error("task '{task_id}' pushed no value to map over (mapped task '{mapped}' needs its return value)")]
    NotPushed { task_id: String, mapped: String },
    #[error(
        "task '{mapped}' can only map over a list or a dict, but task '{task_id}' returned {kind}"
    )]
    NotMappable {
        task_id: String,
        mapped: String,
        kind: &'static str,
    },
    #[error(
        "task '{mapped}' would expand to {length} instances, more than max_map_length ({max})"
    )]
    TooLong {
        mapped: String,
        length: usize,
        max: usize,
    },
    #[error(
        "expand_kwargs of task '{mapped}' needs a dict per instance, but item {index} is {kind}"
    )]
    NotKwargs {
        mapped: String,
        index: usize,
        kind: &'static str,
    },
    #[error("map index {index} is out of range for task '{mapped}' ({length} instances)")]
    OutOfRange {
        mapped: String,
        index: usize,
        length: usize,
    },
}

impl MapSource {
    /// The upstream tasks this source reads, each once, in order.
    pub fn upstream(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_upstream(&mut out);
        out
    }

    fn collect_upstream<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            MapSource::Literal(_) => {}
            MapSource::Xcom(task_id) => {
                if !out.contains(&task_id.as_str()) {
                    out.push(task_id);
                }
            }
            MapSource::Map { source, .. } => source.collect_upstream(out),
            MapSource::Zip { sources, .. } | MapSource::Concat(sources) => {
                for source in sources {
                    source.collect_upstream(out);
                }
            }
        }
    }

    /// Whether Python must turn each value (an `XComArg.map` somewhere in the source).
    pub fn needs_python(&self) -> bool {
        match self {
            MapSource::Literal(_) | MapSource::Xcom(_) => false,
            MapSource::Map { .. } => true,
            MapSource::Zip { sources, .. } | MapSource::Concat(sources) => {
                sources.iter().any(MapSource::needs_python)
            }
        }
    }

    /// The values mapped over: the literal, or the upstream's result as a sequence.
    fn values<'v>(
        &self,
        mapped: &str,
        resolve: &dyn Fn(&str) -> Option<&'v Value>,
    ) -> Result<Vec<Value>, MappingError> {
        match self {
            MapSource::Literal(values) => Ok(values.clone()),
            MapSource::Xcom(task_id) => {
                let value = resolve(task_id).ok_or_else(|| MappingError::NotPushed {
                    task_id: task_id.clone(),
                    mapped: mapped.to_string(),
                })?;
                as_sequence(value).ok_or_else(|| MappingError::NotMappable {
                    task_id: task_id.clone(),
                    mapped: mapped.to_string(),
                    kind: kind_of(value),
                })
            }
            MapSource::Map { source, .. } => source.values(mapped, resolve),
            MapSource::Zip {
                sources,
                longest,
                fillvalue,
            } => {
                let columns = sources
                    .iter()
                    .map(|s| s.values(mapped, resolve))
                    .collect::<Result<Vec<_>, _>>()?;
                let lengths = columns.iter().map(Vec::len);
                let length = if *longest {
                    lengths.max()
                } else {
                    lengths.min()
                }
                .unwrap_or(0);
                Ok((0..length)
                    .map(|i| {
                        Value::Array(
                            columns
                                .iter()
                                .map(|c| c.get(i).cloned().unwrap_or_else(|| fillvalue.clone()))
                                .collect(),
                        )
                    })
                    .collect())
            }
            MapSource::Concat(sources) => {
                let mut out = Vec::new();
                for source in sources {
                    out.extend(source.values(mapped, resolve)?);
                }
                Ok(out)
            }
        }
    }
}

/// A value mapped over as a sequence: a list's items, a dict's `[key, value]` pairs (Airflow
/// maps over a dict's items); anything else cannot be mapped over.
pub fn as_sequence(value: &Value) -> Option<Vec<Value>> {
    match value {
        Value::Array(items) => Some(items.clone()),
        Value::Object(entries) => Some(
            entries
                .iter()
                .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()]))
                .collect(),
        ),
        _ => None,
    }
}

/// A JSON value's kind, as an error message names it.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a dict",
    }
}

impl Mapping {
    /// The upstream tasks whose results are mapped over, each once, in argument order.
    pub fn upstream_tasks(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        let sources: Vec<&MapSource> = match self {
            Mapping::Expand(args) => args.iter().map(|a| &a.source).collect(),
            Mapping::ExpandKwargs(source) => vec![source],
        };
        for source in sources {
            source.collect_upstream(&mut out);
        }
        out
    }

    /// Whether the mapping reads an upstream result (else its length is known from the
    /// definition alone).
    pub fn reads_upstream(&self) -> bool {
        !self.upstream_tasks().is_empty()
    }

    /// Whether an instance's arguments need Python to be final (`XComArg.map`).
    pub fn needs_python(&self) -> bool {
        match self {
            Mapping::Expand(args) => args.iter().any(|a| a.source.needs_python()),
            Mapping::ExpandKwargs(source) => source.needs_python(),
        }
    }

    /// How many instances the task `mapped` expands to (0: it is skipped, as in Airflow).
    pub fn length<'v>(
        &self,
        mapped: &str,
        resolve: &dyn Fn(&str) -> Option<&'v Value>,
        max: usize,
    ) -> Result<usize, MappingError> {
        let length = match self {
            Mapping::Expand(args) => {
                let mut product: usize = 1;
                for arg in args {
                    let n = arg.source.values(mapped, resolve)?.len();
                    product = product.saturating_mul(n);
                }
                product
            }
            Mapping::ExpandKwargs(source) => source.values(mapped, resolve)?.len(),
        };
        if length > max {
            return Err(MappingError::TooLong {
                mapped: mapped.to_string(),
                length,
                max,
            });
        }
        Ok(length)
    }

    /// The mapped arguments of instance `map_index` of the task `mapped`, by name.
    pub fn arguments<'v>(
        &self,
        mapped: &str,
        map_index: usize,
        resolve: &dyn Fn(&str) -> Option<&'v Value>,
    ) -> Result<serde_json::Map<String, Value>, MappingError> {
        let out_of_range = |length| MappingError::OutOfRange {
            mapped: mapped.to_string(),
            index: map_index,
            length,
        };
        match self {
            Mapping::Expand(args) => {
                let columns = args
                    .iter()
                    .map(|a| a.source.values(mapped, resolve))
                    .collect::<Result<Vec<_>, _>>()?;
                let length = columns
                    .iter()
                    .fold(1usize, |n, c| n.saturating_mul(c.len()));
                if map_index >= length {
                    return Err(out_of_range(length));
                }
                let mut out = serde_json::Map::new();
                let mut rest = map_index;
                for (arg, values) in args.iter().zip(&columns).rev() {
                    out.insert(arg.name.clone(), values[rest % values.len()].clone());
                    rest /= values.len();
                }
                Ok(out)
            }
            Mapping::ExpandKwargs(source) => {
                let values = source.values(mapped, resolve)?;
                let item = values
                    .get(map_index)
                    .ok_or_else(|| out_of_range(values.len()))?;
                if source.needs_python() {
                    // Only the SDK's callables make the item a dict of arguments.
                    let mut out = serde_json::Map::new();
                    out.insert(MAP_ITEM.to_string(), item.clone());
                    return Ok(out);
                }
                match item {
                    Value::Object(kwargs) => Ok(kwargs.clone()),
                    other => Err(MappingError::NotKwargs {
                        mapped: mapped.to_string(),
                        index: map_index,
                        kind: kind_of(other),
                    }),
                }
            }
        }
    }

    /// Checks a value a task returned that the task `mapped` maps over (Airflow checks it
    /// when the value is pushed, failing the task that pushed it).
    pub fn check_pushed(
        producer: &str,
        mapped: &str,
        value: Option<&Value>,
        max: usize,
    ) -> Result<(), MappingError> {
        let value = value.ok_or_else(|| MappingError::NotPushed {
            task_id: producer.to_string(),
            mapped: mapped.to_string(),
        })?;
        let length = as_sequence(value)
            .ok_or_else(|| MappingError::NotMappable {
                task_id: producer.to_string(),
                mapped: mapped.to_string(),
                kind: kind_of(value),
            })?
            .len();
        if length > max {
            return Err(MappingError::TooLong {
                mapped: mapped.to_string(),
                length,
                max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn arg(name: &str, source: MapSource) -> MappedArgument {
        MappedArgument {
            name: name.into(),
            source,
        }
    }

    fn none(_: &str) -> Option<&'static Value> {
        None
    }

    #[test]
    fn a_cross_product_varies_the_last_argument_fastest() {
        let mapping = Mapping::Expand(vec![
            arg("a", MapSource::Literal(vec![json!(1), json!(2)])),
            arg(
                "b",
                MapSource::Literal(vec![json!("x"), json!("y"), json!("z")]),
            ),
        ]);
        assert_eq!(mapping.length("t", &none, 1024), Ok(6));
        let at = |i| Value::Object(mapping.arguments("t", i, &none).unwrap());
        assert_eq!(at(0), json!({"a": 1, "b": "x"}));
        assert_eq!(at(2), json!({"a": 1, "b": "z"}));
        assert_eq!(at(3), json!({"a": 2, "b": "x"}));
        assert_eq!(
            mapping.arguments("t", 6, &none),
            Err(MappingError::OutOfRange {
                mapped: "t".into(),
                index: 6,
                length: 6
            })
        );
    }

    #[test]
    fn upstream_results_are_mapped_over_as_lists_or_dict_items() {
        let list = json!([1, 2, 3]);
        let dict = json!({"k": "v"});
        let text = json!("abc");
        let resolve = |task: &str| match task {
            "list" => Some(&list),
            "dict" => Some(&dict),
            "text" => Some(&text),
            _ => None,
        };
        let over = |task: &str| Mapping::Expand(vec![arg("x", MapSource::Xcom(task.into()))]);
        assert_eq!(over("list").length("m", &resolve, 1024), Ok(3));
        assert_eq!(
            over("dict").arguments("m", 0, &resolve).unwrap()["x"],
            json!(["k", "v"])
        );
        assert_eq!(
            over("text")
                .length("m", &resolve, 1024)
                .unwrap_err()
                .to_string(),
            "task 'm' can only map over a list or a dict, but task 'text' returned a string"
        );
        assert!(matches!(
            over("missing").length("m", &resolve, 1024),
            Err(MappingError::NotPushed { .. })
        ));
        assert_eq!(
            over("list")
                .length("m", &resolve, 2)
                .unwrap_err()
                .to_string(),
            "task 'm' would expand to 3 instances, more than max_map_length (2)"
        );
    }

    #[test]
    fn expand_kwargs_takes_one_dict_per_instance() {
        let mapping = Mapping::ExpandKwargs(MapSource::Literal(vec![
            json!({"bash_command": "echo 1"}),
            json!(["not", "a dict"]),
        ]));
        assert_eq!(mapping.length("t", &none, 1024), Ok(2));
        assert_eq!(
            Value::Object(mapping.arguments("t", 0, &none).unwrap()),
            json!({"bash_command": "echo 1"})
        );
        assert!(matches!(
            mapping.arguments("t", 1, &none),
            Err(MappingError::NotKwargs { index: 1, .. })
        ));
    }

    #[test]
    fn a_pushed_value_is_checked_for_its_mapped_consumers() {
        assert_eq!(
            Mapping::check_pushed("up", "m", Some(&json!([1])), 1024),
            Ok(())
        );
        assert!(Mapping::check_pushed("up", "m", Some(&json!(5)), 1024).is_err());
        assert!(Mapping::check_pushed("up", "m", None, 1024).is_err());
        assert!(Mapping::check_pushed("up", "m", Some(&json!([1, 2])), 1).is_err());
    }

    #[test]
    fn zip_pairs_items_and_concat_chains_them() {
        let a = json!([1, 2, 3]);
        let b = json!({"x": 10});
        let resolve = |task: &str| match task {
            "a" => Some(&a),
            "b" => Some(&b),
            _ => None,
        };
        let zip = |longest| MapSource::Zip {
            sources: vec![MapSource::Xcom("a".into()), MapSource::Xcom("b".into())],
            longest,
            fillvalue: json!("-"),
        };
        let shortest = Mapping::Expand(vec![arg("p", zip(false))]);
        assert_eq!(shortest.length("m", &resolve, 1024), Ok(1));
        assert_eq!(
            shortest.arguments("m", 0, &resolve).unwrap()["p"],
            json!([1, ["x", 10]])
        );
        let longest = Mapping::Expand(vec![arg("p", zip(true))]);
        assert_eq!(longest.length("m", &resolve, 1024), Ok(3));
        assert_eq!(
            longest.arguments("m", 2, &resolve).unwrap()["p"],
            json!([3, "-"])
        );
        let concat = Mapping::Expand(vec![arg(
            "c",
            MapSource::Concat(vec![
                MapSource::Xcom("a".into()),
                MapSource::Literal(vec![json!(4)]),
            ]),
        )]);
        assert_eq!(concat.length("m", &resolve, 1024), Ok(4));
        assert_eq!(concat.arguments("m", 3, &resolve).unwrap()["c"], json!(4));
        assert_eq!(concat.upstream_tasks(), vec!["a"]);
        assert!(!concat.needs_python());
        let mapped = Mapping::Expand(vec![arg(
            "n",
            MapSource::Map {
                source: Box::new(zip(false)),
                callables: vec!["double".into()],
            },
        )]);
        assert_eq!(mapped.length("m", &resolve, 1024), Ok(1));
        assert_eq!(mapped.upstream_tasks(), vec!["a", "b"]);
        assert!(mapped.needs_python());
    }

    #[test]
    fn upstream_tasks_are_listed_once() {
        let mapping = Mapping::Expand(vec![
            arg("a", MapSource::Xcom("u".into())),
            arg("b", MapSource::Literal(vec![])),
            arg("c", MapSource::Xcom("u".into())),
        ]);
        assert_eq!(mapping.upstream_tasks(), vec!["u"]);
        assert!(mapping.reads_upstream());
    }
}

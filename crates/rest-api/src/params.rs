//! Airflow's query parameters: `limit`/`offset` paging, `order_by` (a field, `-` for
//! descending, repeatable), and the collection shape `{<items>: [...], "total_entries": n}`.

use serde::Deserialize;
use updraft_store::{Sort, Window};

use crate::{RestConfig, RestError};

/// `limit` and `offset`, as every list operation takes them.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    /// How many to answer (default 50, at most 100 unless configured otherwise).
    pub limit: Option<u32>,
    /// How many to skip.
    pub offset: Option<u64>,
}

impl Paging {
    pub fn window(self, config: &RestConfig) -> Window {
        Window {
            limit: self
                .limit
                .unwrap_or(config.fallback_page_limit)
                .min(config.maximum_page_limit),
            offset: self.offset.unwrap_or(0),
        }
    }
}

/// Parses `order_by` values (`field` or `-field`) against the fields an operation allows;
/// an unknown field is a 400 naming it, as Airflow answers.
pub fn order_by<F: Copy>(
    values: &[String],
    allowed: &[(&str, F)],
) -> Result<Vec<Sort<F>>, RestError> {
    let mut sort = Vec::new();
    for value in values.iter().flat_map(|v| v.split(',')) {
        let value = value.trim();
        if value.is_empty() {
            continue;
        }
        let (name, descending) = match value.strip_prefix('-') {
            Some(name) => (name, true),
            None => (value, false),
        };
        let field = allowed
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|(n, _)| *n).collect();
                RestError::bad_request(format!(
                    "Ordering with '{name}' is disallowed or the attribute does not exist on the model; allowed: {}",
                    names.join(", ")
                ))
            })?;
        sort.push(Sort { field, descending });
    }
    Ok(sort)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Field {
        A,
        B,
    }

    #[test]
    fn order_by_reads_direction_and_rejects_unknown_fields() {
        let allowed = [("a", Field::A), ("b", Field::B)];
        let got = order_by(&["-a".into(), "b".into()], &allowed).unwrap();
        assert_eq!(
            got,
            vec![
                Sort {
                    field: Field::A,
                    descending: true
                },
                Sort {
                    field: Field::B,
                    descending: false
                }
            ]
        );
        let err = order_by(&["c".into()], &allowed).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(err.detail.as_str().unwrap().contains("'c'"));
    }

    #[test]
    fn limit_is_capped() {
        let config = RestConfig::new("x".repeat(32));
        let w = Paging {
            limit: Some(1000),
            offset: None,
        }
        .window(&config);
        assert_eq!((w.limit, w.offset), (100, 0));
        let w = Paging::default().window(&config);
        assert_eq!(w.limit, 50);
    }
}

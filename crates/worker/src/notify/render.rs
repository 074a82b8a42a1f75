//! The templates of notifiers (a Slack text, an email's subject and body), rendered with the
//! event's context: its keys at the top level (`dag_id`, `task_id`, `run_id`, `state`,
//! `exception`, `logical_date`, …) and, as Airflow's templates read them, `dag.dag_id`,
//! `ti.task_id` / `ti.state` / `ti.try_number`, `dag_run.run_id` / `dag_run.logical_date`.

use serde_json::{json, Value};
use updraft_template::Renderer;

use super::DeliveryError;

/// The event's values, and a renderer with the same bounds on instructions, output and
/// sequence sizes as task templates (a notifier's template is DAG code too).
pub(super) struct Context {
    values: Value,
    renderer: Renderer,
}

impl Context {
    pub fn of(context: &Value) -> Context {
        let mut values = context.clone();
        if let Value::Object(map) = &mut values {
            let get = |key: &str| context.get(key).cloned().unwrap_or(Value::Null);
            map.insert("dag".into(), json!({ "dag_id": get("dag_id") }));
            map.insert(
                "ti".into(),
                json!({
                    "dag_id": get("dag_id"),
                    "task_id": get("task_id"),
                    "run_id": get("run_id"),
                    "map_index": get("map_index"),
                    "try_number": get("try_number"),
                    "state": get("state"),
                }),
            );
            map.insert(
                "dag_run".into(),
                json!({
                    "dag_id": get("dag_id"),
                    "run_id": get("run_id"),
                    "run_type": get("run_type"),
                    "logical_date": get("logical_date"),
                    "queued_at": get("queued_at"),
                    "start_date": get("start_date"),
                    "conf": get("conf"),
                }),
            );
        }
        Context {
            values,
            renderer: Renderer::lenient(),
        }
    }

    pub fn render(&self, template: &str) -> Result<String, DeliveryError> {
        self.renderer
            .render_json(template, &self.values)
            .map_err(|e| DeliveryError::Permanent(format!("cannot render {template:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_read_the_context_as_airflow_names_it() {
        let context = Context::of(&json!({
            "dag_id": "etl", "task_id": "load", "run_id": "manual__1", "state": "failed",
            "exception": "exited with code 3", "try_number": 2,
        }));
        assert_eq!(
            context
                .render("{{ dag.dag_id }}.{{ ti.task_id }} {{ ti.state }} (try {{ ti.try_number }}): {{ exception }}")
                .unwrap(),
            "etl.load failed (try 2): exited with code 3"
        );
        assert!(context.render("{{ broken").is_err());
        assert_eq!(context.render("{{ no_such_name }}!").unwrap(), "!");
    }

    #[test]
    fn runaway_templates_fail_instead_of_holding_the_delivery_loop() {
        let context = Context::of(&json!({ "dag_id": "etl" }));
        for runaway in [
            "{{ 'x' * 100000000 }}",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "{{ 11 * 11111111111 * ['items'] }}",
        ] {
            let error = context.render(runaway).expect_err(runaway);
            assert!(
                matches!(&error, DeliveryError::Permanent(message) if message.contains("cannot render")),
                "{runaway}: {error:?}"
            );
        }
    }
}

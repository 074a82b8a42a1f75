"""What a DAG file's code is building right now: the DAGs and task groups open in `with`
blocks, and every DAG created since the SDK was imported (the parser collects these)."""

dag_stack = []
group_stack = []
created_dags = []


def current_dag():
    return dag_stack[-1] if dag_stack else None


def current_group(dag):
    """The innermost open task group of `dag`, or None (the DAG's root)."""
    for group in reversed(group_stack):
        if group.dag is dag:
            return group
    return None

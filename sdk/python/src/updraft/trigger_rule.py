"""Airflow's trigger rules, as the strings DAG files use."""

import enum


class TriggerRule(str, enum.Enum):
    """When a task runs, decided from the states of its direct upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_SKIPPED = "all_skipped"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"

    def __str__(self):
        return self.value

    @classmethod
    def is_valid(cls, rule):
        return rule in cls.all_triggers()

    @classmethod
    def all_triggers(cls):
        return {rule.value for rule in cls}


# Airflow 2 names kept for old DAG files.
_ALIASES = {"none_failed_or_skipped": "none_failed_min_one_success", "dummy": "always"}


def normalize(rule):
    """The trigger rule's name, or a ValueError naming the allowed ones."""
    name = rule.value if isinstance(rule, TriggerRule) else rule
    if not isinstance(name, str):
        raise TypeError(f"trigger_rule must be a string or a TriggerRule, not {type(rule).__name__}")
    name = _ALIASES.get(name, name)
    if name not in TriggerRule.all_triggers():
        allowed = ", ".join(r.value for r in TriggerRule)
        raise ValueError(f"unknown trigger_rule {name!r}; allowed: {allowed}")
    return name

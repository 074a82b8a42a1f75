//! When a failed try may run again, and after how long.

use std::time::Duration;

use crate::dag::Task;

/// Airflow's ceiling on an exponential retry delay (`MAX_RETRY_DELAY`): 24 hours.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 60 * 60);

/// The delay before the next try, after try `try_number` (1 for the first try) failed.
///
/// - Without `retry_exponential_backoff`: `retry_delay`, unchanged.
/// - With it, Airflow's growth `retry_delay * 2^(try_number - 1)`, rounded up to whole seconds
///   and at least one second, then capped at [`MAX_RETRY_DELAY`] (24 h) and at
///   `max_retry_delay` when set (as in Airflow, the smaller cap wins, so a `max_retry_delay`
///   above 24 h has no effect).
///
/// Unlike Airflow, which adds a per-task-instance hash "jitter" of up to one more backoff
/// period, this is deterministic, so the retry time is predictable and testable.
/// `try_number` 0 is treated as 1.
pub fn retry_delay(task: &Task, try_number: u32) -> Duration {
    if !task.retry_exponential_backoff {
        return task.retry_delay;
    }
    let exponent = try_number.saturating_sub(1).min(64);
    let factor = 2f64.powi(exponent as i32);
    let secs = (task.retry_delay.as_secs_f64() * factor).ceil().max(1.0);
    let cap = task
        .max_retry_delay
        .map_or(MAX_RETRY_DELAY, |max| max.min(MAX_RETRY_DELAY));
    if secs >= cap.as_secs_f64() {
        cap
    } else {
        Duration::from_secs_f64(secs)
    }
}

/// Whether a task whose try `try_number` (1 for the first) just failed may run again: a task
/// gets `retries + 1` tries in all.
pub fn can_retry(task: &Task, try_number: u32) -> bool {
    try_number <= task.retries
}

/// Tries lost to the infrastructure (a worker that died, a shutdown) that are retried at once
/// without using up the task's own `retries`; past this, such failures count like any other.
pub const MAX_INFRASTRUCTURE_RETRIES: u32 = 3;

/// The state a failed try leaves its task in: `up_for_retry` with the instant it may run again
/// while retries last, `failed` after. `user_try` counts only the tries that were not lost to
/// the infrastructure (the try number less the task instance's infrastructure failures).
pub fn after_failure(
    task: &Task,
    user_try: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> (crate::TaskState, Option<chrono::DateTime<chrono::Utc>>) {
    if !can_retry(task, user_try) {
        return (crate::TaskState::Failed, None);
    }
    let at = chrono::Duration::from_std(retry_delay(task, user_try))
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(now);
    (crate::TaskState::UpForRetry, Some(at))
}

/// The state a try lost to the infrastructure leaves its task in: retried at once while
/// `infra_failures_before` (such losses of earlier tries) is under
/// [`MAX_INFRASTRUCTURE_RETRIES`], then as [`after_failure`] decides.
pub fn after_infrastructure_failure(
    task: &Task,
    try_number: u32,
    infra_failures_before: u32,
    now: chrono::DateTime<chrono::Utc>,
) -> (crate::TaskState, Option<chrono::DateTime<chrono::Utc>>) {
    if infra_failures_before < MAX_INFRASTRUCTURE_RETRIES {
        return (crate::TaskState::UpForRetry, Some(now));
    }
    after_failure(task, try_number.saturating_sub(infra_failures_before), now)
}

#[cfg(test)]
mod tests {
    #[test]
    fn infrastructure_losses_do_not_use_up_retries() {
        use crate::{Operator, TaskState};
        let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let task = Task::new("t", Operator::Empty); // retries: 0
        assert_eq!(
            after_infrastructure_failure(&task, 1, 0, now),
            (TaskState::UpForRetry, Some(now))
        );
        assert_eq!(
            after_infrastructure_failure(&task, 3, MAX_INFRASTRUCTURE_RETRIES - 1, now),
            (TaskState::UpForRetry, Some(now))
        );
        // The budget is spent: the try counts as the task's own, and it has no retries.
        assert_eq!(
            after_infrastructure_failure(&task, 4, MAX_INFRASTRUCTURE_RETRIES, now),
            (TaskState::Failed, None)
        );
    }

    use super::*;
    use crate::dag::Operator;

    fn task(delay: u64, backoff: bool, max: Option<u64>) -> Task {
        Task {
            retry_delay: Duration::from_secs(delay),
            retry_exponential_backoff: backoff,
            max_retry_delay: max.map(Duration::from_secs),
            ..Task::new("t", Operator::Empty)
        }
    }

    #[test]
    fn delay_grows_and_is_capped() {
        // (retry_delay s, exponential backoff, max_retry_delay s, try number, expected delay s)
        let cases = [
            (300, false, None, 1, 300),
            (300, false, None, 5, 300),
            (300, false, Some(60), 3, 300),
            (300, true, None, 0, 300),
            (300, true, None, 1, 300),
            (300, true, None, 2, 600),
            (300, true, None, 3, 1200),
            (300, true, None, 4, 2400),
            (60, true, Some(600), 4, 480),
            (60, true, Some(600), 5, 600),
            (60, true, Some(600), 40, 600),
            (300, true, None, 9, 76_800),
            (300, true, None, 10, 86_400),
            (300, true, None, u32::MAX, 86_400),
            (300, true, Some(200_000), 20, 86_400),
            (0, true, None, 1, 1),
            (0, true, None, 7, 1),
        ];
        for (delay, backoff, max, try_number, expected) in cases {
            assert_eq!(
                retry_delay(&task(delay, backoff, max), try_number),
                Duration::from_secs(expected),
                "delay {delay}s backoff {backoff} max {max:?} try {try_number}"
            );
        }
    }

    #[test]
    fn sub_second_delays_round_up_with_backoff() {
        let t = Task {
            retry_delay: Duration::from_millis(1500),
            retry_exponential_backoff: true,
            ..Task::new("t", Operator::Empty)
        };
        let cases = [(1, 2), (2, 3), (3, 6)];
        for (try_number, expected) in cases {
            assert_eq!(retry_delay(&t, try_number), Duration::from_secs(expected));
        }
    }

    #[test]
    fn tries_allowed_are_retries_plus_one() {
        // (retries, failed try number, may retry)
        let cases = [
            (0, 1, false),
            (1, 1, true),
            (1, 2, false),
            (3, 1, true),
            (3, 3, true),
            (3, 4, false),
            (3, 9, false),
        ];
        for (retries, try_number, expected) in cases {
            let t = Task {
                retries,
                ..Task::new("t", Operator::Empty)
            };
            assert_eq!(
                can_retry(&t, try_number),
                expected,
                "{retries} {try_number}"
            );
        }
    }

    #[test]
    fn a_failure_is_retried_later_or_final() {
        let now = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let t = Task {
            retries: 2,
            ..task(60, true, None)
        };
        // (failed try number, expected state, expected retry delay in seconds)
        let cases = [
            (1, crate::TaskState::UpForRetry, Some(60)),
            (2, crate::TaskState::UpForRetry, Some(120)),
            (3, crate::TaskState::Failed, None),
        ];
        for (try_number, state, delay) in cases {
            let at = delay.map(|secs| now + chrono::Duration::seconds(secs));
            assert_eq!(
                after_failure(&t, try_number, now),
                (state, at),
                "try {try_number}"
            );
        }
    }
}

//! The conformance suite every [`Store`] backend must pass, run by each backend's tests.
//!
//! A backend provides a fresh, empty database per check as a [`TestDatabase`] and expands
//! [`store_conformance_tests!`](crate::store_conformance_tests) once, which writes one
//! `#[test]` per check so that a failure names the behaviour that broke:
//!
//! ```text
//! mod conformance {
//!     struct SqliteFile(tempfile::TempDir);
//!
//!     #[async_trait::async_trait]
//!     impl updraft_store::conformance::TestDatabase for SqliteFile {
//!         async fn open(&self) -> std::sync::Arc<dyn updraft_store::Store> { /* … */ }
//!         async fn execute(&self, sql: &str) { /* … */ }
//!     }
//!
//!     async fn fresh() -> Option<SqliteFile> { /* … */ }
//!
//!     updraft_store::store_conformance_tests!(fresh);
//! }
//! ```
//!
//! Checks are plain `pub async fn check(db: &dyn TestDatabase)` in the submodules below, grouped
//! by the part of the trait they exercise; they assert states, values and errors, and panic on
//! the first difference. Times come from [`fixture::at`], never from the clock.

pub mod assets;
pub mod auth;
pub mod backfill;
pub mod browse;
pub mod browse_runs;
pub mod browse_task_instances;
pub mod claims;
pub mod cluster;
pub mod connections;
pub mod dags;
pub mod event_log;
pub mod fixture;
pub mod manage;
pub mod mapping;
pub mod notifications;
pub mod retention;
pub mod run_dependencies;
pub mod runs;
pub mod secrets;
pub mod sensors;
pub mod task_instances;
pub mod variables;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;

use crate::Store;

/// One fresh, empty database under test. Dropping it may delete the database.
#[async_trait]
pub trait TestDatabase: Send + Sync {
    /// Opens a new handle on this database with its own connections, as another process would.
    /// Checks that race two writers open two handles.
    async fn open(&self) -> Arc<dyn Store>;
    /// [`open`](Self::open) with a cipher that keeps secrets encrypted at rest.
    async fn open_with_cipher(&self, cipher: Arc<dyn crate::Cipher>) -> Arc<dyn Store>;
    /// Runs SQL on the database directly, as an operator's manual edit would (checks of
    /// damaged rows).
    async fn execute(&self, sql: &str);
    /// [`open`](Self::open), and a [`Store::watch`] receiver that the backend's start-up
    /// announcements (a listener saying it listens now) have already passed, so that what
    /// it receives next is what the store commits.
    async fn open_watched(
        &self,
    ) -> (
        Arc<dyn Store>,
        tokio::sync::broadcast::Receiver<crate::Change>,
    ) {
        let store = self.open().await;
        let rx = store.watch();
        (store, rx)
    }
}

/// Runs one check on a multi-threaded runtime (claims race on several threads).
pub fn run_check(check: impl std::future::Future<Output = ()>) {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("cannot start a tokio runtime")
        .block_on(check)
}

/// Expands to one `#[test]` per conformance check. `$fresh` is an async function (or
/// closure) returning a new [`TestDatabase`](crate::conformance::TestDatabase) for each test,
/// or `None` when the backend's server is out of reach and the backend has said so loudly;
/// the tests are named after the checks, so expand this inside a module of its own.
#[macro_export]
macro_rules! store_conformance_tests {
    ($fresh:expr) => {
        $crate::__store_conformance_checks!(@tests $fresh);
    };
}

/// The list of checks, in one place: expands the tests, or the names of the checks.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_checks {
    ($($mode:tt)*) => {
        $crate::__store_conformance_expand! {
            [$($mode)*]
            dags {
                sync_adds_new_dags,
                sync_with_unchanged_content_changes_nothing,
                sync_with_changed_content_adds_a_version,
                a_published_version_is_one_copy_for_the_readers_of_the_process,
                sync_without_a_dag_deactivates_it,
                sync_reactivates_a_dag_whose_file_reappears,
                sync_replaces_and_clears_import_errors,
                sync_pauses_only_new_dags_when_paused_at_creation,
                sync_of_another_folder_does_not_deactivate_dags_outside_it,
                set_paused_pauses_and_unpauses,
                set_paused_of_an_unknown_dag_is_not_found,
                next_dagrun_bookkeeping,
                changed_dags_need_their_next_run_again,
                deactivated_dags_are_never_due,
                dag_files_round_trip_and_are_replaced_per_folder,
                dag_files_leave_out_records_the_database_no_longer_matches,
                sync_keeps_the_dags_of_unchanged_files,
                unreadable_dag_file_records_are_left_out_and_rewritten,
            }
            runs {
                create_dag_run_creates_task_instances_in_state_none,
                create_dag_run_rejects_a_duplicate_run_id,
                create_dag_run_for_an_unknown_dag_is_not_found,
                scheduled_runs_move_next_dagrun,
                last_scheduled_logical_date_is_the_newest_scheduled_run,
                unknown_runs_are_not_found,
                runs_are_listed_oldest_first,
                set_dag_run_state_is_a_compare_and_set,
                start_dag_run_keeps_max_active_runs,
                concurrent_run_starts_never_exceed_max_active_runs,
                times_round_trip_with_microsecond_precision,
            }
            assets {
                publishing_registers_assets_and_their_references,
                a_successful_try_emits_its_outlets_and_queues_them,
                a_paused_consumer_gets_nothing_queued,
                an_external_event_is_recorded_and_queued,
                an_asset_triggered_run_consumes_its_events_once,
                a_paused_dag_gets_no_asset_triggered_run,
                queued_events_are_deleted_by_dag_asset_and_time,
            }
            backfill {
                backfills_round_trip_with_their_dates,
                a_dag_has_one_backfill_until_it_completes,
                taking_a_date_creates_its_run_once,
                reprocessing_a_date_clears_its_existing_run,
                cancelling_a_backfill_fails_its_queued_runs_and_completes_it,
                backfill_runs_neither_wait_for_nor_count_against_max_active_runs,
            }
            run_dependencies {
                time_out_dag_run_fails_the_run_and_skips_its_unfinished_tasks,
                time_out_dag_run_leaves_a_run_that_is_not_running,
                previous_dag_run_is_the_latest_earlier_logical_date,
                has_earlier_task_instance_looks_at_earlier_runs_only,
                latest_dag_run_states_are_newest_first,
                queue_admits_within_max_active_tis_per_dag,
                queue_admits_within_max_active_tis_per_dagrun,
            }
            task_instances {
                apply_transitions_is_a_compare_and_set,
                apply_transitions_with_new_try_increments_the_try_number,
                apply_transitions_rejects_an_illegal_transition_and_changes_nothing,
                apply_transitions_records_dates,
                occupancy_counts_queued_and_running_tasks,
                earliest_retry_is_the_first_retry_of_an_unfinished_run,
                clear_resets_finished_tasks_and_reopens_the_run,
                clear_makes_running_tasks_restarting,
                clear_keeps_a_restarting_task_restarting,
            }
            mapping {
                apply_plan_expands_a_placeholder_once,
                mapped_instances_keep_their_own_xcoms,
                one_mapped_instance_is_cleared_and_a_task_expands_again,
            }
            claims {
                claim_takes_highest_priority_first_up_to_the_limit,
                claim_filters_by_queue,
                claim_filters_by_dag_run,
                runs_with_a_runner_are_left_to_it_until_released,
                claim_records_the_worker_and_the_lease,
                claim_takes_each_task_once,
                concurrent_claims_on_two_handles_never_share_a_task,
                heartbeat_extends_leases_and_reports_lost_claims,
                finish_records_the_outcome_and_the_xcom,
                finish_applies_pushed_xcoms_and_skips_tasks_not_started,
                finish_with_a_stale_claim_is_a_conflict_and_changes_nothing,
                finish_rejects_an_illegal_outcome_and_changes_nothing,
                finish_of_a_cleared_task_resets_it_to_none,
                finish_counts_infrastructure_failures,
                expired_claims_are_running_tasks_past_their_lease,
                claims_of_worker_and_running_task_instances,
            }
            sensors {
                a_rescheduled_sensor_keeps_its_try_and_its_first_poke,
                a_deferred_wait_holds_no_slot_and_ends_where_it_stands,
                marking_a_rescheduled_sensor_ends_its_try,
            }
            cluster {
                queue_admits_within_max_active_tasks,
                queue_planned_queues_what_its_plan_schedules,
                queue_takes_the_matching_one_of_an_instance_named_twice,
                queue_admits_within_pool_slots,
                pools_can_be_set_listed_and_deleted,
                own_dag_runs_adopts_unowned_runs_up_to_max_owned,
                own_dag_runs_adopts_runs_whose_owner_lease_ran_out,
                own_dag_runs_leaves_finished_runs_and_runs_with_a_runner,
                released_runs_are_adopted_at_once,
                job_heartbeats_are_listed_while_alive_and_forgotten_when_ended,
                logs_are_stored_once_in_order,
                logs_from_a_claim_that_lost_the_try_are_fenced,
                a_log_tail_is_stored_with_the_finish_report,
            }
            browse {
                query_dags_filters_by_pattern_tags_pause_and_staleness,
                query_dags_answers_each_dags_latest_run_and_filters_on_its_state,
                query_dags_sorts_by_each_field_both_ways,
                query_dags_pages_are_stable_and_totals_ignore_the_window,
                dag_tags_are_the_distinct_tags_of_active_dags,
                dag_run_counts_count_runs_per_state_for_every_dag_asked,
                dag_versions_and_sources_are_kept_per_version,
                import_errors_are_paged_sorted_and_found_by_id,
                notes_parse_times_and_job_numbers_are_read_back,
            }
            browse_runs {
                query_dag_runs_applies_every_filter,
                query_dag_runs_sorts_by_each_field_both_ways,
                query_dag_runs_pages_newest_first_without_gaps_or_repeats,
            }
            browse_task_instances {
                query_task_instances_applies_every_filter,
                query_task_instances_sorts_by_each_field_both_ways,
                task_tries_are_the_finished_tries_oldest_first,
                task_instances_page_by_id_after_the_last_one_without_a_total,
                task_instance_summaries_are_the_runs_task_instances_in_brief,
            }
            variables {
                ping_answers,
                variables_can_be_set_read_listed_and_deleted,
                xcoms_belong_to_their_run,
            }
            manage {
                notes_are_set_and_removed,
                delete_dag_run_deletes_its_task_instances_xcoms_and_logs,
                delete_dag_deletes_its_runs_versions_and_file_records,
                delete_dag_refuses_while_its_task_instances_run,
                force_dag_run_state_marks_its_task_instances,
                mark_task_instances_sets_states_and_kills_running_claims,
                mark_kills_the_claim_of_a_restarting_task,
                force_dag_run_state_sets_the_state_and_dates,
                xcoms_can_be_put_queried_and_deleted,
                a_finished_try_records_when_its_xcom_was_written,
                pool_usage_counts_running_queued_and_scheduled_tasks,
            }
            secrets {
                variables_are_encrypted_at_rest_with_a_cipher,
                variable_records_are_queried_by_pattern_sorted_and_paged,
                connection_secrets_are_encrypted_at_rest_with_a_cipher,
            }
            auth {
                users_can_be_created_read_updated_and_deleted,
                revoked_tokens_are_kept_until_they_expire,
                login_failures_are_counted_pruned_and_cleared,
            }
            connections {
                connections_can_be_put_read_replaced_and_deleted,
                connections_are_queried_by_pattern_sorted_and_paged,
            }
            notifications {
                notifications_round_trip_and_a_dedupe_key_is_stored_once,
                a_notification_is_claimed_by_one_deliverer_until_its_claim_expires,
                concurrent_notification_claims_never_share_an_entry,
                a_failed_attempt_waits_for_its_retry_and_a_last_one_gives_up,
                notifications_are_stored_only_with_the_change_that_causes_them,
                a_plans_notifications_are_stored_only_with_their_applied_transitions,
            }
            retention {
                clean_deletes_old_finished_runs_and_keeps_the_rest,
                clean_dry_run_counts_and_deletes_nothing,
                clean_archives_what_it_deletes,
                clean_goes_in_batches,
                clean_of_a_run_part_keeps_the_runs,
                clean_of_other_tables_goes_by_their_age,
            }
            event_log {
                event_logs_are_added_and_read_back,
                event_logs_are_filtered_sorted_and_paged,
            }
            watch {
                watchers_see_a_trigger_queueing_a_claim_and_a_finish,
                watchers_see_a_clear_and_a_pause,
                watchers_see_marks_forced_states_deletes_and_notes,
                a_moved_next_run_is_announced_for_its_dag_only,
                heartbeats_and_ended_processes_are_announced,
                writes_that_change_nothing_are_not_announced,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_expand {
    ([@tests $fresh:expr] $($module:ident { $($check:ident),* $(,)? })*) => {
        $($(
            #[test]
            fn $check() {
                $crate::conformance::run_check(async {
                    // `None`: the backend cannot run here and said so loudly.
                    let Some(db) = ($fresh)().await else { return };
                    $crate::conformance::$module::$check(&db).await;
                });
            }
        )*)*
    };
    ([@names] $($module:ident { $($check:ident),* $(,)? })*) => {
        &[$($(concat!(stringify!($module), "::", stringify!($check))),*),*]
    };
}

/// Every check, as `module::name`, in the order they are listed.
pub const CHECK_NAMES: &[&str] = __store_conformance_checks!(@names);

#[cfg(test)]
mod tests {
    use super::CHECK_NAMES;

    /// A check written but not listed in the macro would silently never run.
    #[test]
    fn every_check_is_listed_once() {
        let sources = [
            ("browse", include_str!("conformance/browse.rs")),
            ("browse_runs", include_str!("conformance/browse_runs.rs")),
            (
                "browse_task_instances",
                include_str!("conformance/browse_task_instances.rs"),
            ),
            ("claims", include_str!("conformance/claims.rs")),
            ("cluster", include_str!("conformance/cluster.rs")),
            ("dags", include_str!("conformance/dags.rs")),
            ("runs", include_str!("conformance/runs.rs")),
            (
                "run_dependencies",
                include_str!("conformance/run_dependencies.rs"),
            ),
            (
                "task_instances",
                include_str!("conformance/task_instances.rs"),
            ),
            ("variables", include_str!("conformance/variables.rs")),
            ("manage", include_str!("conformance/manage.rs")),
            ("mapping", include_str!("conformance/mapping.rs")),
            ("secrets", include_str!("conformance/secrets.rs")),
            ("auth", include_str!("conformance/auth.rs")),
            ("connections", include_str!("conformance/connections.rs")),
            ("event_log", include_str!("conformance/event_log.rs")),
            ("watch", include_str!("conformance/watch.rs")),
            ("backfill", include_str!("conformance/backfill.rs")),
            ("assets", include_str!("conformance/assets.rs")),
            ("sensors", include_str!("conformance/sensors.rs")),
            (
                "notifications",
                include_str!("conformance/notifications.rs"),
            ),
            ("retention", include_str!("conformance/retention.rs")),
        ];
        let mut written: Vec<String> = sources
            .iter()
            .flat_map(|(module, text)| {
                text.lines().filter_map(move |line| {
                    let rest = line.strip_prefix("pub async fn ")?;
                    let name = rest.split(['(', '<']).next()?;
                    Some(format!("{module}::{name}"))
                })
            })
            .collect();
        written.sort();
        let mut listed: Vec<String> = CHECK_NAMES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(listed, written);
        let mut names: Vec<&str> = CHECK_NAMES
            .iter()
            .map(|s| s.rsplit("::").next().unwrap_or(s))
            .collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(
            names.len(),
            before,
            "check names must be unique across modules"
        );
    }
}

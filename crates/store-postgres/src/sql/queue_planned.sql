-- A pass's plan and its queueing in one round trip (`queueing::queue_planned`): the plan's
-- compare-and-sets (each of another task instance), announced to watchers as a plan of one
-- statement announces itself, then `updraft_queue` over the first items that keep the queued
-- and running task instances within `p_parallelism` (the scheduler's limit: its caller did
-- not read the occupancy), which sees what the plan scheduled. Rows are locked in
-- `updraft_queue`'s order, pools, DAGs, then task instances (the plan's and the items', by
-- id), so that a plan never holds task instances while it waits for a pool or a DAG. Nothing
-- waits for the disk. The schema's migration puts the plan's `SET` list (`apply_set.sql`,
-- shared with every other plan) between this file and `queue_planned_end.sql`. Returns
-- ('p', position, NULL, run) for each transition applied, then ('q', position, queue, run)
-- for each item queued.
CREATE OR REPLACE FUNCTION updraft_queue_planned(
    p_t_ids BIGINT[], p_t_tries BIGINT[], p_t_from TEXT[], p_t_to TEXT[], p_t_inc BIGINT[],
    p_t_next_retry BIGINT[], p_t_now BIGINT[], p_watch_channel TEXT, p_origin TEXT,
    p_parallelism BIGINT, p_ids BIGINT[], p_tries BIGINT[], p_resumes BOOLEAN[],
    p_dags TEXT[], p_pools TEXT[], p_max_active BIGINT[],
    p_task_ids TEXT[], p_task_runs BIGINT[], p_task_per_dag BIGINT[], p_task_per_run BIGINT[],
    p_now BIGINT, p_channel TEXT, p_payload TEXT)
RETURNS TABLE (kind TEXT, item INT, item_queue TEXT, item_run BIGINT)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $fn$
DECLARE
    v_locked BIGINT;
    v_positions INT[];
    v_runs BIGINT[];
    v_announced BIGINT[];
    v_announcement TEXT;
    v_room INT;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM pool WHERE name = ANY(p_pools) ORDER BY name FOR NO KEY UPDATE) l;
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM dag WHERE dag_id = ANY(p_dags) ORDER BY dag_id FOR NO KEY UPDATE) l;
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM task_instance WHERE id = ANY(p_t_ids || p_ids) ORDER BY id FOR UPDATE) l;
    IF COALESCE(cardinality(p_t_ids), 0) > 0 THEN
        WITH applied AS (
            UPDATE task_instance t SET

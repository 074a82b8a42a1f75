-- A pass's plan and its queueing in one round trip (`queueing::queue_planned`): the plan's
-- compare-and-sets (each of another task instance, their rows locked in id order as every
-- batch of changes locks them), announced to watchers as a plan of one statement announces
-- itself, then `updraft_queue` over the items, which sees what the plan scheduled. Nothing
-- waits for the disk. The schema's migration puts the plan's `SET` list (`apply_set.sql`,
-- shared with every other plan) between this file and `queue_planned_end.sql`. Returns
-- ('p', position, NULL, run) for each transition applied, then ('q', position, queue, run)
-- for each item queued.
CREATE OR REPLACE FUNCTION updraft_queue_planned(
    p_t_ids BIGINT[], p_t_tries BIGINT[], p_t_from TEXT[], p_t_to TEXT[], p_t_inc BIGINT[],
    p_t_next_retry BIGINT[], p_t_now BIGINT[], p_watch_channel TEXT, p_origin TEXT,
    p_ids BIGINT[], p_tries BIGINT[], p_resumes BOOLEAN[],
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
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    IF COALESCE(cardinality(p_t_ids), 0) > 0 THEN
        SELECT count(*) INTO v_locked FROM (
            SELECT 1 FROM task_instance WHERE id = ANY(p_t_ids) ORDER BY id FOR UPDATE) l;
        WITH applied AS (
            UPDATE task_instance t SET

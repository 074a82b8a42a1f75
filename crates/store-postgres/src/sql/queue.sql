-- Queueing in one round trip (`queueing::queue`): scheduled → queued for the items in the
-- order given, each only if its row is still at the state and try the scheduler saw, its DAG
-- below `max_active_tasks`, its pool below its slots and its task below its own limits,
-- counted under locks on the `pool` and `dag` rows involved (taken in a fixed order: pools,
-- then DAGs, each by name), so that concurrent queueing never exceeds a limit. The commit
-- does not wait for the disk (a scheduler's decision, re-derivable); `p_payload` is
-- announced on `p_channel` when anything was queued. Returns the queued items (their
-- positions, from 1) with the queue and run of each.
CREATE OR REPLACE FUNCTION updraft_queue(
    p_ids BIGINT[], p_tries BIGINT[], p_resumes BOOLEAN[],
    p_dags TEXT[], p_pools TEXT[], p_max_active BIGINT[],
    p_task_ids TEXT[], p_task_runs BIGINT[], p_task_per_dag BIGINT[], p_task_per_run BIGINT[],
    p_now BIGINT, p_channel TEXT, p_payload TEXT)
RETURNS TABLE (queued_item INT, queued_queue TEXT, queued_run BIGINT)
LANGUAGE plpgsql
-- The same few statements on every call: planned once per connection, not on each call.
SET plan_cache_mode = force_generic_plan
-- Each statement touches a few rows it finds by key: a generic plan expects ten rows of each
-- array and scanned a table of up to about a thousand task instances whole instead.
SET enable_seqscan = off
AS $fn$
DECLARE
    v_locked BIGINT;
    v_slots JSONB;
    v_per_dag JSONB;
    v_per_pool JSONB;
    v_per_task JSONB := '{}';
    v_admitted BIGINT[] := '{}';
    v_positions INT[] := '{}';
    v_try BIGINT;
    v_state TEXT;
    v_in_dag BIGINT;
    v_in_pool BIGINT;
    v_task_key TEXT;
    v_run_key TEXT;
    v_in_task BIGINT;
    v_in_task_run BIGINT;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    -- `NO KEY UPDATE`: excludes other queueing transactions, but not the key-share locks of
    -- new runs referencing the DAG.
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM pool WHERE name = ANY(p_pools) ORDER BY name FOR NO KEY UPDATE) l;
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM dag WHERE dag_id = ANY(p_dags) ORDER BY dag_id FOR NO KEY UPDATE) l;
    SELECT count(*) INTO v_locked FROM (
        SELECT 1 FROM task_instance WHERE id = ANY(p_ids) ORDER BY id FOR UPDATE) l;
    SELECT COALESCE(jsonb_object_agg(name, slots), '{}') INTO v_slots
        FROM pool WHERE name = ANY(p_pools);
    SELECT COALESCE(jsonb_object_agg(dag_id, n), '{}') INTO v_per_dag FROM (
        SELECT dag_id, count(*) AS n FROM task_instance
        WHERE state IN ('queued', 'running', 'restarting') AND dag_id = ANY(p_dags)
        GROUP BY dag_id) c;
    SELECT COALESCE(jsonb_object_agg(pool, n), '{}') INTO v_per_pool FROM (
        SELECT pool, count(*) AS n FROM task_instance
        WHERE state IN ('queued', 'running', 'restarting') AND pool = ANY(p_pools)
        GROUP BY pool) c;
    -- Per (DAG, task) and per (run, task), for the tasks that limit their own instances.
    IF EXISTS (SELECT 1 FROM unnest(p_task_ids) t WHERE t IS NOT NULL) THEN
        SELECT COALESCE(jsonb_object_agg(k, n), '{}') INTO v_per_task FROM (
            SELECT 'd' || dag_id || chr(31) || task_id AS k, count(*) AS n
            FROM task_instance
            WHERE state IN ('queued', 'running', 'restarting')
              AND dag_id = ANY(p_dags) AND task_id = ANY(p_task_ids)
            GROUP BY dag_id, task_id
            UNION ALL
            SELECT 'r' || dag_run_id || chr(31) || task_id, count(*)
            FROM task_instance
            WHERE state IN ('queued', 'running', 'restarting')
              AND dag_id = ANY(p_dags) AND task_id = ANY(p_task_ids)
            GROUP BY dag_run_id, task_id) c;
    END IF;

    FOR i IN 1 .. COALESCE(array_length(p_ids, 1), 0) LOOP
        CONTINUE WHEN p_ids[i] = ANY(v_admitted);
        SELECT t.try_number, t.state INTO v_try, v_state FROM task_instance t WHERE t.id = p_ids[i];
        CONTINUE WHEN NOT FOUND;
        CONTINUE WHEN v_try <> p_tries[i] OR v_state <>
            CASE WHEN p_resumes[i] THEN 'up_for_reschedule' ELSE 'scheduled' END;
        v_in_dag := COALESCE((v_per_dag ->> p_dags[i])::BIGINT, 0);
        v_in_pool := COALESCE((v_per_pool ->> p_pools[i])::BIGINT, 0);
        CONTINUE WHEN v_in_dag >= p_max_active[i];
        CONTINUE WHEN v_slots ? p_pools[i] AND v_in_pool >= (v_slots ->> p_pools[i])::BIGINT;
        IF p_task_ids[i] IS NOT NULL THEN
            v_task_key := 'd' || p_dags[i] || chr(31) || p_task_ids[i];
            v_run_key := 'r' || p_task_runs[i] || chr(31) || p_task_ids[i];
            v_in_task := COALESCE((v_per_task ->> v_task_key)::BIGINT, 0);
            v_in_task_run := COALESCE((v_per_task ->> v_run_key)::BIGINT, 0);
            CONTINUE WHEN v_in_task >= p_task_per_dag[i] OR v_in_task_run >= p_task_per_run[i];
            v_per_task := jsonb_set(v_per_task, ARRAY[v_task_key], to_jsonb(v_in_task + 1));
            v_per_task := jsonb_set(v_per_task, ARRAY[v_run_key], to_jsonb(v_in_task_run + 1));
        END IF;
        v_per_dag := jsonb_set(v_per_dag, ARRAY[p_dags[i]], to_jsonb(v_in_dag + 1));
        v_per_pool := jsonb_set(v_per_pool, ARRAY[p_pools[i]], to_jsonb(v_in_pool + 1));
        v_admitted := v_admitted || p_ids[i];
        v_positions := v_positions || i;
    END LOOP;
    IF cardinality(v_admitted) = 0 THEN
        RETURN;
    END IF;
    -- Exactly what `apply` does for scheduled → queued with a new try, and for a rescheduled
    -- sensor's next poke (same try, its first poke's start kept).
    RETURN QUERY
        WITH queued AS (
        UPDATE task_instance SET state = 'queued',
            try_number = try_number + CASE WHEN state = 'scheduled' THEN 1 ELSE 0 END,
            next_retry_at = NULL, queued_at = p_now,
            start_date = CASE WHEN state = 'up_for_reschedule' THEN start_date ELSE NULL END,
            end_date = NULL, claim_id = NULL, lease_until = NULL
        -- The rows are locked and their states checked above; a state condition here let
        -- the generic plan AND the primary key with an index of every state, whose scan
        -- costs as many entries as there are waiting instances and dead versions.
        WHERE id = ANY(v_admitted)
        RETURNING id, queue, dag_run_id)
        SELECT a.item, queued.queue, queued.dag_run_id
        FROM queued JOIN unnest(v_admitted, v_positions) AS a(id, item) ON a.id = queued.id;
    IF FOUND THEN
        PERFORM pg_notify(p_channel, p_payload);
    END IF;
END;
$fn$;

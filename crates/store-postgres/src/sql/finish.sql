-- A finish in one round trip (`finish::finish_at_once`), for the reports that need nothing
-- but their own rows: ended tries of task instances still running under the reporting
-- claim, no XCom or other effects, no outlets, log tails that continue the stored logs
-- exactly. It checks all of that first, under the rows' locks, and returns no row, having
-- written nothing, if any report needs more; the caller then takes the general path. So it
-- applies every report or none, and announces on `p_channel` the payload `finish.rs` would
-- (the wire form of `changes::Payload`: the runs, and the tries for schedulers), built from
-- the values the caller passes and the runs read here. Returns the runs changed, in order.
CREATE OR REPLACE FUNCTION updraft_finish(
    p_ids BIGINT[], p_tries BIGINT[], p_claims TEXT[], p_states TEXT[], p_end_dates BIGINT[],
    p_next_retries BIGINT[], p_next_retry_texts TEXT[], p_infra BOOLEAN[],
    p_tail_offsets BIGINT[], p_tail_data BYTEA[],
    p_channel TEXT, p_origin TEXT, p_max_payload INT)
RETURNS SETOF BIGINT
LANGUAGE plpgsql
-- The same few statements on every call: planned once per connection, not on each call.
SET plan_cache_mode = force_generic_plan
-- Each statement touches a few rows it finds by key: a generic plan expects ten rows of each
-- array and scanned a table of up to about a thousand task instances whole instead.
SET enable_seqscan = off
AS $fn$
DECLARE
    v_count INT := COALESCE(array_length(p_ids, 1), 0);
    v_held INT;
    v_runs JSONB;
    v_tries JSONB;
    v_payload TEXT;
BEGIN
    IF v_count = 0 THEN
        RETURN;
    END IF;
    -- Every report for a distinct task instance still running under its claim, checked on
    -- the rows as locked (in id order). The conditions stay out of the WHERE clause so that
    -- the generic plan finds the rows by their primary key alone: with `state = 'running'`
    -- there, it ANDed the key with an index of every state, whose scan costs as many
    -- entries as there are running instances and dead versions.
    SELECT count(*) FILTER (WHERE t.try_number = b.try_number AND t.claim_id = b.claim_id
                                  AND t.state = 'running')
        INTO v_held
        FROM (SELECT id, try_number, claim_id, state FROM task_instance
              WHERE id = ANY(p_ids) ORDER BY id FOR UPDATE) t
        JOIN unnest(p_ids, p_tries, p_claims) AS b(id, try_number, claim_id) ON t.id = b.id;
    IF v_held <> v_count OR (SELECT count(DISTINCT id) FROM unnest(p_ids) id) <> v_count THEN
        RETURN;
    END IF;
    -- No success with outlets: its asset events take the general path.
    IF EXISTS (
        SELECT 1 FROM unnest(p_ids, p_states) AS b(id, state)
        JOIN task_instance t ON t.id = b.id
        JOIN task_outlet_asset_reference o ON o.dag_id = t.dag_id AND o.task_id = t.task_id
        WHERE b.state = 'success') THEN
        RETURN;
    END IF;
    -- Each tail continues its try's stored log exactly.
    IF EXISTS (
        SELECT 1 FROM unnest(p_ids, p_tries, p_tail_offsets) AS b(id, try_number, start)
        WHERE b.start IS NOT NULL AND b.start <> COALESCE((
            SELECT l."offset" + octet_length(l.data)::BIGINT FROM task_log l
            WHERE l.ti_id = b.id AND l.try_number = b.try_number
            ORDER BY l."offset" DESC LIMIT 1), 0)) THEN
        RETURN;
    END IF;

    INSERT INTO task_log (ti_id, try_number, "offset", data)
        SELECT b.id, b.try_number, b.start, b.data
        FROM unnest(p_ids, p_tries, p_tail_offsets, p_tail_data) AS b(id, try_number, start, data)
        WHERE b.start IS NOT NULL AND octet_length(b.data) > 0;
    UPDATE task_instance t SET state = b.state, end_date = b.end_date,
        next_retry_at = b.next_retry_at, infra_failures = t.infra_failures + b.infra::INT,
        lease_until = NULL
        FROM unnest(p_ids, p_states, p_end_dates, p_next_retries, p_infra)
            AS b(id, state, end_date, next_retry_at, infra)
        WHERE t.id = b.id;
    -- A rescheduled sensor's try goes on: it is history once it ends.
    INSERT INTO task_try (ti_id, try_number, state, hostname, worker_id, start_date, end_date,
                          infrastructure_failure)
        SELECT t.id, t.try_number, t.state, t.hostname, t.worker_id, t.start_date, t.end_date,
               b.infra
        FROM task_instance t JOIN unnest(p_ids, p_infra) AS b(id, infra) ON t.id = b.id
        WHERE t.state <> 'up_for_reschedule'
        ON CONFLICT (ti_id, try_number) DO UPDATE SET state = excluded.state,
            hostname = excluded.hostname, worker_id = excluded.worker_id,
            start_date = excluded.start_date, end_date = excluded.end_date,
            infrastructure_failure = excluded.infrastructure_failure;

    SELECT jsonb_agg(DISTINCT t.dag_run_id), jsonb_agg(
               jsonb_strip_nulls(jsonb_build_object(
                   'dag_run_id', t.dag_run_id, 'ti_id', b.id, 'try_number', b.try_number,
                   'state', b.state, 'next_retry_at', b.next_retry_at))
               ORDER BY b.n)
        INTO v_runs, v_tries
        FROM unnest(p_ids, p_tries, p_states, p_next_retry_texts) WITH ORDINALITY
            AS b(id, try_number, state, next_retry_at, n)
        JOIN task_instance t ON t.id = b.id;
    v_payload := jsonb_build_object('origin', p_origin,
        'change', jsonb_build_object('kind', 'runs', 'of', v_runs), 'finished', v_tries)::TEXT;
    IF octet_length(v_payload) > p_max_payload THEN
        -- Without the tries, schedulers read the runs again.
        v_payload := jsonb_build_object('origin', p_origin,
            'change', jsonb_build_object('kind', 'runs', 'of', v_runs))::TEXT;
    END IF;
    IF octet_length(v_payload) > p_max_payload THEN
        v_payload := jsonb_build_object('origin', p_origin,
            'change', jsonb_build_object('kind', 'everything'))::TEXT;
    END IF;
    PERFORM pg_notify(p_channel, v_payload);
    RETURN QUERY SELECT DISTINCT t.dag_run_id FROM task_instance t WHERE t.id = ANY(p_ids)
        ORDER BY t.dag_run_id;
END;
$fn$;

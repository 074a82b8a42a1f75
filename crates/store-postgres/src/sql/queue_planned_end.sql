            FROM unnest(p_t_ids, p_t_tries, p_t_from, p_t_to, p_t_inc, p_t_next_retry, p_t_now)
                WITH ORDINALITY
                AS b(id, try_number, from_state, to_state, inc, next_retry_at, now, position)
            WHERE t.id = b.id AND t.try_number = b.try_number AND t.state = b.from_state
            RETURNING b.position, t.dag_run_id)
        SELECT array_agg(a.position::INT), array_agg(a.dag_run_id),
               array_agg(DISTINCT a.dag_run_id ORDER BY a.dag_run_id)
            INTO v_positions, v_runs, v_announced FROM applied a;
        IF v_positions IS NOT NULL THEN
            v_announcement := json_build_object('origin', p_origin, 'change',
                json_build_object('kind', 'runs', 'of', to_json(v_announced)))::text;
            -- PostgreSQL refuses payloads of 8000 bytes or more (`changes::MAX_PAYLOAD`).
            IF octet_length(v_announcement) > 7900 THEN
                v_announcement := json_build_object('origin', p_origin, 'change',
                    json_build_object('kind', 'everything'))::text;
            END IF;
            PERFORM pg_notify(p_watch_channel, v_announcement);
            RETURN QUERY SELECT 'p'::TEXT, a.position, NULL::TEXT, a.run
                FROM unnest(v_positions, v_runs) AS a(position, run);
        END IF;
    END IF;
    SELECT GREATEST(p_parallelism - count(*), 0) INTO v_room FROM task_instance
        WHERE state IN ('queued', 'running', 'restarting');
    RETURN QUERY SELECT 'q'::TEXT, q.queued_item, q.queued_queue, q.queued_run
        FROM updraft_queue(p_ids[1:v_room], p_tries[1:v_room], p_resumes[1:v_room],
            p_dags[1:v_room], p_pools[1:v_room], p_max_active[1:v_room],
            p_task_ids[1:v_room], p_task_runs[1:v_room], p_task_per_dag[1:v_room],
            p_task_per_run[1:v_room], p_now, p_channel, p_payload) q;
END;
$fn$;

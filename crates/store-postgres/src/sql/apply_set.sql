state = b.to_state, try_number = t.try_number + b.inc,
    next_retry_at = b.next_retry_at,
    queued_at = CASE WHEN b.to_state = 'queued' THEN b.now ELSE t.queued_at END,
    start_date = CASE WHEN b.from_state = 'up_for_reschedule' AND b.to_state = 'queued'
                      THEN t.start_date
                      WHEN b.to_state IN ('skipped', 'upstream_failed') THEN b.now
                      WHEN b.to_state IN ('success', 'deferred')
                           AND t.start_date IS NULL THEN b.now
                      WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL
                      ELSE t.start_date END,
    end_date = CASE WHEN b.to_state IN ('success', 'failed', 'skipped',
                    'upstream_failed', 'removed', 'up_for_retry') THEN b.now
                    WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL
                    ELSE t.end_date END,
    claim_id = CASE WHEN b.to_state IN ('none', 'scheduled', 'queued') THEN NULL
                    ELSE t.claim_id END,
    lease_until = CASE WHEN b.to_state = 'running' THEN t.lease_until ELSE NULL END

//! Task logs sent by remote workers, as chunks at byte offsets (a chunk sent twice is kept
//! once); only the claim that owns the try may write.

use sqlx::PgConnection;
use updraft_store::{LogAppend, LogChunk, Result, StoreError};

use crate::codec::{col, to_u32};
use crate::db_err;

/// Appends a chunk of a try's log, fenced by the claim: the task instance row stays locked
/// until the transaction ends, so appends of one try are serialized.
pub async fn append(conn: &mut PgConnection, chunk: &LogChunk) -> Result<LogAppend> {
    let owner = lock_claim(conn, chunk.ti_id).await?;
    let owns = matches!(
        &owner,
        Some((try_number, Some(claim_id)))
            if *try_number == chunk.try_number && *claim_id == chunk.claim_id
    );
    if !owns {
        return Ok(LogAppend::Fenced);
    }
    // Chunks are contiguous, so the last one ends the log (one index probe, however long).
    let stored: i64 = sqlx::query_scalar(
        "SELECT \"offset\" + octet_length(data)::bigint FROM task_log \
         WHERE ti_id = $1 AND try_number = $2 ORDER BY \"offset\" DESC LIMIT 1",
    )
    .bind(chunk.ti_id)
    .bind(i64::from(chunk.try_number))
    .fetch_optional(&mut *conn)
    .await
    .map_err(db_err)?
    .unwrap_or(0);
    let length =
        u64::try_from(stored).map_err(|_| StoreError::Corrupt(format!("log length {stored}")))?;
    if chunk.offset > length {
        return Ok(LogAppend::Gap { length });
    }
    let end = chunk.offset.saturating_add(chunk.data.len() as u64);
    if end <= length {
        return Ok(LogAppend::Stored { length });
    }
    let skip = usize::try_from(length - chunk.offset)
        .map_err(|_| StoreError::Corrupt("log chunk too large".into()))?;
    let suffix = chunk.data.get(skip..).ok_or_else(|| {
        StoreError::Corrupt(format!(
            "log chunk at offset {} overlaps the stored log ({length} bytes) in the middle of \
             a character",
            chunk.offset
        ))
    })?;
    let at = i64::try_from(length).map_err(|_| StoreError::Corrupt("log too long".into()))?;
    sqlx::query(
        "INSERT INTO task_log (ti_id, try_number, \"offset\", data) VALUES ($1, $2, $3, $4)",
    )
    .bind(chunk.ti_id)
    .bind(i64::from(chunk.try_number))
    .bind(at)
    .bind(suffix.as_bytes())
    .execute(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok(LogAppend::Stored {
        length: length + suffix.len() as u64,
    })
}

/// Appends the tails of finishing tries (their task instance rows already locked by the
/// finish) in one statement where each continues its stored log exactly, as it nearly always
/// does; a tail that overlaps or skips past the stored log goes through [`append`]. One result
/// per chunk, in order.
pub async fn append_tails(
    conn: &mut PgConnection,
    chunks: &[LogChunk],
) -> Result<Vec<Result<LogAppend>>> {
    let mut tries: Vec<(i64, u32)> = chunks.iter().map(|c| (c.ti_id, c.try_number)).collect();
    tries.sort_unstable();
    tries.dedup();
    if tries.len() < chunks.len() {
        // Two tails of one try: each must see the other's, so one after the other.
        let mut results = Vec::with_capacity(chunks.len());
        for chunk in chunks {
            results.push(append(conn, chunk).await);
        }
        return Ok(results);
    }
    if chunks.is_empty() {
        return Ok(Vec::new());
    }
    let mut offsets = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        offsets.push(
            i64::try_from(chunk.offset)
                .map_err(|_| StoreError::Corrupt(format!("log offset {}", chunk.offset)))?,
        );
    }
    let rows = sqlx::query(
        "WITH b AS (SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::bigint[], \
                                         $5::bytea[]) WITH ORDINALITY \
                    AS b(id, try_number, claim_id, start, data, n)), \
         s AS (SELECT b.n, b.id, b.try_number, b.start, b.data, t.id IS NOT NULL AS owned, \
                      COALESCE((SELECT l.\"offset\" + octet_length(l.data)::bigint \
                                FROM task_log l \
                                WHERE l.ti_id = b.id AND l.try_number = b.try_number \
                                ORDER BY l.\"offset\" DESC LIMIT 1), 0) AS length \
               FROM b LEFT JOIN task_instance t ON t.id = b.id \
                    AND t.try_number = b.try_number AND t.claim_id = b.claim_id), \
         stored AS (INSERT INTO task_log (ti_id, try_number, \"offset\", data) \
                    SELECT id, try_number, start, data FROM s \
                    WHERE owned AND start = length AND octet_length(data) > 0 \
                    RETURNING ti_id) \
         SELECT owned, length FROM s ORDER BY n",
    )
    .bind(chunks.iter().map(|c| c.ti_id).collect::<Vec<_>>())
    .bind(
        chunks
            .iter()
            .map(|c| i64::from(c.try_number))
            .collect::<Vec<_>>(),
    )
    .bind(
        chunks
            .iter()
            .map(|c| c.claim_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(&offsets)
    .bind(chunks.iter().map(|c| c.data.as_bytes()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    if rows.len() != chunks.len() {
        return Err(StoreError::Corrupt(format!(
            "{} log tails stored for {} sent",
            rows.len(),
            chunks.len()
        )));
    }
    let mut results = Vec::with_capacity(chunks.len());
    for (chunk, row) in chunks.iter().zip(&rows) {
        let owned: bool = col(row, 0)?;
        let length: i64 = col(row, 1)?;
        let length = u64::try_from(length)
            .map_err(|_| StoreError::Corrupt(format!("log length {length}")))?;
        results.push(if !owned {
            Ok(LogAppend::Fenced)
        } else if chunk.offset == length {
            Ok(LogAppend::Stored {
                length: length + chunk.data.len() as u64,
            })
        } else {
            append(conn, chunk).await
        });
    }
    Ok(results)
}

pub async fn read_from(
    conn: &mut PgConnection,
    ti_id: i64,
    try_number: u32,
    from: u64,
) -> Result<Option<(u64, String)>> {
    let chunks: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT \"offset\", data FROM task_log WHERE ti_id = $1 AND try_number = $2 \
         AND \"offset\" >= COALESCE((SELECT MAX(\"offset\") FROM task_log \
             WHERE ti_id = $1 AND try_number = $2 AND \"offset\" <= $3), 0) \
         ORDER BY \"offset\"",
    )
    .bind(ti_id)
    .bind(i64::from(try_number))
    .bind(i64::try_from(from).unwrap_or(i64::MAX))
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let Some(&(start, _)) = chunks.first() else {
        return Ok(None);
    };
    let bytes: Vec<u8> = chunks.into_iter().flat_map(|(_, data)| data).collect();
    let text = String::from_utf8(bytes)
        .map_err(|e| StoreError::Corrupt(format!("log of task instance {ti_id}: {e}")))?;
    Ok(Some((u64::try_from(start).unwrap_or(0), text)))
}

/// The try number and claim of a task instance, locked until the transaction ends.
async fn lock_claim(conn: &mut PgConnection, ti_id: i64) -> Result<Option<(u32, Option<String>)>> {
    let row =
        sqlx::query("SELECT try_number, claim_id FROM task_instance WHERE id = $1 FOR UPDATE")
            .bind(ti_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    match row {
        Some(row) => Ok(Some((to_u32(col(&row, 0)?)?, col(&row, 1)?))),
        None => Ok(None),
    }
}

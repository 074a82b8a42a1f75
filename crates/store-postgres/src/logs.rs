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

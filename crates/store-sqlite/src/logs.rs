//! Task logs sent by remote workers, as chunks at byte offsets (a chunk sent twice is kept
//! once); only the claim that owns the try may write.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use updraft_store::{LogAppend, LogChunk, Result, StoreError};

use crate::db_err;

pub fn append(tx: &Transaction, chunk: &LogChunk) -> Result<LogAppend> {
    let owner: Option<(u32, Option<String>)> = tx
        .query_row(
            "SELECT try_number, claim_id FROM task_instance WHERE id = ?1",
            params![chunk.ti_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(db_err)?;
    match owner {
        Some((try_number, Some(claim)))
            if try_number == chunk.try_number && claim == chunk.claim_id => {}
        _ => return Ok(LogAppend::Fenced),
    }
    // Chunks are contiguous, so the last one ends the log (one index probe, however long).
    let stored: i64 = tx
        .query_row(
            "SELECT \"offset\" + LENGTH(CAST(data AS BLOB)) FROM task_log \
             WHERE ti_id = ?1 AND try_number = ?2 ORDER BY \"offset\" DESC LIMIT 1",
            params![chunk.ti_id, chunk.try_number],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?
        .unwrap_or(0);
    let stored = stored as u64;
    if chunk.offset > stored {
        return Ok(LogAppend::Gap { length: stored });
    }
    let end = chunk.offset + chunk.data.len() as u64;
    if end <= stored {
        return Ok(LogAppend::Stored { length: stored });
    }
    let skip = (stored - chunk.offset) as usize;
    let Some(new) = chunk.data.get(skip..) else {
        return Err(StoreError::Corrupt(format!(
            "log chunk at offset {} overlaps the stored log in the middle of a character",
            chunk.offset
        )));
    };
    tx.execute(
        "INSERT INTO task_log (ti_id, try_number, \"offset\", data) VALUES (?1, ?2, ?3, ?4)",
        params![chunk.ti_id, chunk.try_number, stored as i64, new],
    )
    .map_err(db_err)?;
    Ok(LogAppend::Stored { length: end })
}

pub fn read_from(
    conn: &Connection,
    ti_id: i64,
    try_number: u32,
    from: u64,
) -> Result<Option<(u64, String)>> {
    let from = i64::try_from(from).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(
            "SELECT \"offset\", data FROM task_log WHERE ti_id = ?1 AND try_number = ?2 \
             AND \"offset\" >= COALESCE((SELECT MAX(\"offset\") FROM task_log \
                 WHERE ti_id = ?1 AND try_number = ?2 AND \"offset\" <= ?3), 0) \
             ORDER BY \"offset\"",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![ti_id, try_number, from], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(db_err)?;
    let mut log: Option<(u64, String)> = None;
    for row in rows {
        let (offset, data) = row.map_err(db_err)?;
        log.get_or_insert_with(|| (u64::try_from(offset).unwrap_or(0), String::new()))
            .1
            .push_str(&data);
    }
    Ok(log)
}

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
    let stored: i64 = tx
        .query_row(
            "SELECT COALESCE(SUM(LENGTH(CAST(data AS BLOB))), 0) FROM task_log \
             WHERE ti_id = ?1 AND try_number = ?2",
            params![chunk.ti_id, chunk.try_number],
            |r| r.get(0),
        )
        .map_err(db_err)?;
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

pub fn read(conn: &Connection, ti_id: i64, try_number: u32) -> Result<Option<String>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT data FROM task_log WHERE ti_id = ?1 AND try_number = ?2 ORDER BY \"offset\"",
        )
        .map_err(db_err)?;
    let rows = stmt
        .query_map(params![ti_id, try_number], |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    let mut log: Option<String> = None;
    for row in rows {
        log.get_or_insert_with(String::new)
            .push_str(&row.map_err(db_err)?);
    }
    Ok(log)
}

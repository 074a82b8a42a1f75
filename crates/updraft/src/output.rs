//! Printing listings as a readable table or as JSON.

use anyhow::Result;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::Table;
use serde::Serialize;

use crate::cli::Output;

pub fn print<T: Serialize>(
    output: Output,
    value: &T,
    headers: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<()> {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(value)?),
        Output::Table => {
            let mut table = Table::new();
            table
                .load_preset(UTF8_FULL_CONDENSED)
                .set_header(headers.to_vec());
            for row in rows {
                table.add_row(row);
            }
            println!("{table}");
        }
    }
    Ok(())
}

pub fn time(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

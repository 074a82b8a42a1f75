//! Connection files as Airflow's `connections export` writes them and `connections import`
//! (and its local-file secrets backend) reads them: JSON and YAML objects keyed by
//! connection id, and `.env` lines `CONN_ID=<uri or JSON>`.

use std::io::{Read as _, Write as _};
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use updraft_secrets::uri;
use updraft_store::ConnectionRecord;

use super::{FileFormat, Serialization};

/// The format a file's extension names (`-` is JSON).
pub fn format_of(file: &Path) -> Result<FileFormat> {
    if file.as_os_str() == "-" {
        return Ok(FileFormat::Json);
    }
    match file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_lowercase)
        .as_deref()
    {
        Some("json") => Ok(FileFormat::Json),
        Some("yaml" | "yml") => Ok(FileFormat::Yaml),
        Some("env") => Ok(FileFormat::Env),
        _ => bail!(
            "Unsupported file format {}: use a .json, .yaml, .yml or .env file (or --format)",
            file.display()
        ),
    }
}

/// One connection as Airflow's export writes it: every field, `extra` as its text.
fn exported(c: &ConnectionRecord) -> Value {
    json!({
        "conn_type": c.conn_type,
        "description": c.description,
        "login": c.login,
        "password": c.password,
        "host": c.host,
        "port": c.port,
        "schema": c.schema,
        "extra": c.extra,
    })
}

pub fn export(
    connections: &[ConnectionRecord],
    format: FileFormat,
    serialization: Serialization,
) -> Result<String> {
    if format == FileFormat::Env {
        let mut text = String::new();
        for c in connections {
            let value = match serialization {
                Serialization::Uri => uri::to_uri(c),
                Serialization::Json => exported(c).to_string(),
            };
            text.push_str(&format!("{}={value}\n", c.conn_id));
        }
        return Ok(text);
    }
    let all: Map<String, Value> = connections
        .iter()
        .map(|c| (c.conn_id.clone(), exported(c)))
        .collect();
    Ok(match format {
        FileFormat::Yaml => serde_yaml_ng::to_string(&all)?,
        _ => serde_json::to_string_pretty(&all)? + "\n",
    })
}

pub fn import(text: &str, format: FileFormat) -> Result<Vec<ConnectionRecord>> {
    let entries: Vec<(String, Value)> = match format {
        FileFormat::Env => env_lines(text)?,
        FileFormat::Json => object_entries(serde_json::from_str(text).context("invalid JSON")?)?,
        FileFormat::Yaml => object_entries(serde_yaml_ng::from_str(text).context("invalid YAML")?)?,
    };
    entries
        .into_iter()
        .map(|(conn_id, value)| {
            let connection = match &value {
                Value::String(text) => uri::parse(&conn_id, text),
                Value::Object(object) => uri::from_json_object(&conn_id, object),
                other => bail!("connection {conn_id}: expected a URI or an object, not {other}"),
            };
            connection.with_context(|| format!("connection {conn_id}"))
        })
        .collect()
}

fn object_entries(value: Value) -> Result<Vec<(String, Value)>> {
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        _ => bail!("expected an object of connections keyed by connection id"),
    }
}

/// `KEY=VALUE` lines; blank lines and `#` comments are skipped.
fn env_lines(text: &str) -> Result<Vec<(String, Value)>> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!("line {}: expected CONN_ID=<uri or JSON>", n + 1);
        };
        let key = key.trim();
        if key.is_empty() {
            bail!("line {}: the connection id is empty", n + 1);
        }
        entries.push((key.to_string(), Value::String(value.trim().to_string())));
    }
    Ok(entries)
}

/// The file's text; `-` reads standard input.
pub fn read(file: &Path) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        return Ok(text);
    }
    std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))
}

/// Writes the file (readable by its owner only: it holds passwords); `-` is standard output.
pub fn write(file: &Path, text: &str) -> Result<()> {
    if file.as_os_str() == "-" {
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    out.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<ConnectionRecord> {
        vec![
            ConnectionRecord {
                conn_id: "db".into(),
                conn_type: "postgres".into(),
                host: Some("h".into()),
                login: Some("u".into()),
                password: Some("p@ss word".into()),
                port: Some(5432),
                schema: Some("s".into()),
                extra: Some(r#"{"sslmode":"require"}"#.into()),
                description: Some("d".into()),
            },
            ConnectionRecord {
                conn_id: "api".into(),
                conn_type: "http".into(),
                host: Some("https://api.example".into()),
                ..ConnectionRecord::default()
            },
        ]
    }

    #[test]
    fn every_format_reads_back_what_it_wrote() {
        for format in [FileFormat::Json, FileFormat::Yaml, FileFormat::Env] {
            for serialization in [Serialization::Uri, Serialization::Json] {
                let text = export(&sample(), format, serialization).unwrap();
                let mut back = import(&text, format).unwrap();
                back.sort_by(|a, b| b.conn_id.cmp(&a.conn_id));
                let mut expected = sample();
                if format == FileFormat::Env && serialization == Serialization::Uri {
                    // A URI has no description.
                    expected[0].description = None;
                }
                assert_eq!(back, expected, "{format:?} {serialization:?}:\n{text}");
            }
        }
    }

    #[test]
    fn airflow_style_files_are_read() {
        let json = r#"{"a": "mysql://u:p@h:3306/db", "b": {"conn_type": "aws", "extra": {"region": "eu"}}}"#;
        let got = import(json, FileFormat::Json).unwrap();
        assert_eq!(got[0].conn_type, "mysql");
        assert_eq!(got[1].extra.as_deref(), Some(r#"{"region":"eu"}"#));
        let env = "# comment\n\nA=redis://h:6379\nB={\"conn_type\": \"x\", \"host\": \"y\"}\n";
        let got = import(env, FileFormat::Env).unwrap();
        assert_eq!(got[0].port, Some(6379));
        assert_eq!(got[1].host.as_deref(), Some("y"));
        assert!(import("no equals sign", FileFormat::Env).is_err());
        assert!(import("[1, 2]", FileFormat::Json).is_err());
        assert!(format_of(Path::new("c.txt")).is_err());
        assert_eq!(format_of(Path::new("c.YML")).unwrap(), FileFormat::Yaml);
    }
}

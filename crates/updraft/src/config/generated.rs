//! Secrets `standalone` generates on first start (`core.fernet_key`, `api.jwt_secret`) and
//! keeps in `$UPDRAFT_HOME/updraft.toml`, so the next start uses the same ones.

use std::io::Write as _;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes `key = "<generate()>"` into `[section]` of `home/updraft.toml` unless the file
/// already sets it (to anything but an empty string). The rest of the file is kept as
/// written, comments included. A new file is readable by its owner only, since it then
/// holds a secret. Answers the value in force and whether it was generated now. Processes
/// starting together on one home agree on one value: the check and the write hold a lock.
pub fn ensure_generated(
    home: &Path,
    section: &str,
    key: &str,
    generate: impl FnOnce() -> String,
) -> Result<(String, bool)> {
    std::fs::create_dir_all(home).with_context(|| format!("cannot create {}", home.display()))?;
    let lock_path = home.join(".updraft.toml.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&lock_path)
        .with_context(|| format!("cannot open {}", lock_path.display()))?;
    // SAFETY: flock on a descriptor this function owns; released when `lock` is dropped.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) } != 0 {
        bail!(
            "cannot lock {}: {}",
            lock_path.display(),
            std::io::Error::last_os_error()
        );
    }
    let path = home.join("updraft.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("invalid configuration file {}", path.display()))?;
    let existing = table.get(section).and_then(|s| s.get(key));
    match existing {
        Some(toml::Value::String(s)) if s.is_empty() => {
            bail!(
                "{} sets {section}.{key} to an empty string: remove the line to have one \
                 generated, or set a value",
                path.display()
            )
        }
        Some(toml::Value::String(s)) => return Ok((s.clone(), false)),
        Some(_) => bail!(
            "{} sets {section}.{key} to something other than a string",
            path.display()
        ),
        None => {}
    }
    let value = generate();
    let line = format!("{key} = {}\n", toml::Value::String(value.clone()));
    let updated = insert_into_section(&text, section, &line);
    if updated.parse::<toml::Table>().is_err() {
        bail!(
            "cannot add {section}.{key} to {}: the file defines [{section}] in a way this \
             edit cannot extend; add the key yourself",
            path.display()
        );
    }
    write_replacing(&path, &updated)?;
    Ok((value, true))
}

/// `text` with `line` added at the end of `[section]` (just before the next table header),
/// or with a new `[section]` at the end of the file.
fn insert_into_section(text: &str, section: &str, line: &str) -> String {
    let header = format!("[{section}]");
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| strip_comment(l) == header);
    let Some(start) = start else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&header);
        out.push('\n');
        out.push_str(line);
        return out;
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| strip_comment(l).starts_with('['))
        .map_or(lines.len(), |i| start + 1 + i);
    // After the section's last non-blank line, so blank lines before the next header stay.
    let insert_at = (start + 1..end)
        .rev()
        .find(|&i| !lines[i].trim().is_empty())
        .map_or(start + 1, |i| i + 1);
    let mut out = String::with_capacity(text.len() + line.len() + 1);
    for l in &lines[..insert_at] {
        out.push_str(l);
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(line);
    for l in &lines[insert_at..] {
        out.push_str(l);
    }
    out
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or_default().trim()
}

/// Replaces `path` by a file written beside it (same permissions, 0600 for a new file), so
/// a crash never leaves half a configuration.
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o7777,
        Err(_) => 0o600,
    };
    let tmp = path.with_extension("toml.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_key_to_its_section_and_keeps_everything_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("updraft.toml");
        let original = "# my settings\n[core]\nparallelism = 4 # four\n\n[api]\nport = 9090\n";
        std::fs::write(&path, original).unwrap();
        let made = ensure_generated(dir.path(), "core", "fernet_key", || "K1".into()).unwrap();
        assert_eq!(made, ("K1".to_string(), true));
        let made = ensure_generated(dir.path(), "api", "jwt_secret", || "J1".into()).unwrap();
        assert_eq!(made, ("J1".to_string(), true));
        let made = ensure_generated(dir.path(), "logging", "level", || "debug".into()).unwrap();
        assert_eq!(made, ("debug".to_string(), true));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "# my settings\n[core]\nparallelism = 4 # four\nfernet_key = \"K1\"\n\n[api]\nport = 9090\njwt_secret = \"J1\"\n\n[logging]\nlevel = \"debug\"\n"
        );
        // Already there: nothing generated, nothing changed.
        let before = std::fs::read_to_string(&path).unwrap();
        let made = ensure_generated(dir.path(), "core", "fernet_key", || unreachable!()).unwrap();
        assert_eq!(made, ("K1".to_string(), false));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    }

    #[test]
    fn a_new_file_is_private_and_an_empty_value_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        ensure_generated(&home, "core", "fernet_key", || "K".into()).unwrap();
        let path = home.join("updraft.toml");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "[core]\nfernet_key = \"K\"\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        std::fs::write(&path, "[core]\nfernet_key = \"\"\n").unwrap();
        let err = ensure_generated(&home, "core", "fernet_key", || "K".into()).unwrap_err();
        assert!(err.to_string().contains("core.fernet_key"), "{err}");
    }
}

//! The Python virtual environment of the REST API's client tests (schemathesis and
//! apache-airflow-client, pinned in `tests/python/requirements.txt`).
//!
//! The tests create it themselves, through the same script `.ci/run` calls first: `cargo test
//! --workspace` is the one test command, and on a fresh machine it must run these tests, not
//! skip them. The script does nothing when the environment is already up to date. When it
//! cannot be created (no `python3`, no package index), the test fails and says how to create
//! it: a client test never passes without having run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The environment's directory (`$UPDRAFT_TEST_VENV`, default `<repository>/.venv`), created
/// or brought up to date once per test process.
pub fn venv() -> PathBuf {
    static READY: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match READY.get_or_init(create) {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn create() -> Result<PathBuf, String> {
    let root = workspace();
    let venv = std::env::var_os("UPDRAFT_TEST_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let script = root.join("tests/python/setup-venv.sh");
    let out = Command::new("bash")
        .arg(&script)
        .env("UPDRAFT_TEST_VENV", &venv)
        .output()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "the Python environment of the REST API client tests is missing and could not be \
             created at {}. Create it with `bash tests/python/setup-venv.sh` (it needs python3 \
             with venv and pip, and the package index). The script said:\n{}{}",
            venv.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(venv)
}

//! Embeds the Python SDK (`sdk/python/src/**/*.py`): generates a table of `(relative path,
//! include_bytes!)` so the binary carries the SDK and needs no `pip install`. Only `.py` files
//! are taken (no `__pycache__`, no editor files), in a sorted order, so the table and the
//! content hash computed from it depend on the sources alone. The hash is computed here, not
//! at start-up, where it read every byte of the SDK (hundreds of kilobytes of the binary made
//! resident, and a few milliseconds) on every start.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.join("../../sdk/python/src");
    // A directory is scanned whole by cargo: any change below it reruns this script.
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    if root.is_dir() {
        collect(&root, &root, &mut files);
    }
    files.sort();
    let mut out = String::from("&[\n");
    let mut hasher = Sha256::new();
    for relative in &files {
        let absolute = root.join(relative);
        let content = std::fs::read(&absolute).expect("an SDK file just listed is readable");
        // The same scheme as `sdk::tests::hash_of`, which checks it.
        hasher.update((relative.len() as u64).to_le_bytes());
        hasher.update(relative.as_bytes());
        hasher.update((content.len() as u64).to_le_bytes());
        hasher.update(&content);
        writeln!(
            out,
            "    ({:?}, include_bytes!({:?})),",
            relative,
            absolute.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("]\n");
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out_dir.join("sdk_files.rs"), out).expect("OUT_DIR is writable");
    let hash: String = hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    std::fs::write(out_dir.join("sdk_hash.rs"), format!("{hash:?}\n"))
        .expect("OUT_DIR is writable");
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "__pycache__" {
            continue;
        }
        if path.is_dir() {
            collect(root, &path, files);
        } else if name.ends_with(".py") {
            if let Ok(relative) = path.strip_prefix(root) {
                files.push(relative.to_string_lossy().into_owned());
            }
        }
    }
}

//! The `dagfile` fuzz target's corpus (`fuzz/corpus/dagfile`, crashes found by fuzzing
//! included) replayed as the target runs it: every file loaded as YAML and as JSON, and a DAG
//! that loads survives the store's serde round trip.

use std::path::Path;

use updraft_dagfile::{parse_dag_source, Format};
use updraft_model::Dag;

#[test]
fn every_corpus_file_loads_or_is_refused_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/dagfile");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the dagfile corpus exists") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        replayed += 1;
        let Ok(source) = std::str::from_utf8(&bytes) else {
            continue;
        };
        for format in [Format::Yaml, Format::Json] {
            if let Ok(dag) = parse_dag_source(source, "fuzz", format) {
                let stored = serde_json::to_string(&dag).expect("a loaded DAG serialises");
                let read_back: Dag =
                    serde_json::from_str(&stored).expect("a stored DAG reads back");
                assert_eq!(
                    read_back,
                    dag,
                    "{}: changed by the round trip",
                    path.display()
                );
            }
        }
    }
    assert!(replayed > 10, "only {replayed} files in {}", dir.display());
}

//! The `template` fuzz target's corpus (`fuzz/corpus/template`, crashes and hangs found by
//! fuzzing included) replayed as the target runs it: every file rendered for the fixture's
//! run; each renders or is refused with an error, none panics or runs away.

use std::path::Path;

use updraft_template::Renderer;

use crate::fixture::context;

#[test]
fn every_corpus_template_renders_or_is_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/template");
    let renderer = Renderer::new();
    let ctx = context();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the template corpus exists") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        replayed += 1;
        if let Ok(template) = std::str::from_utf8(&bytes) {
            let _ = renderer.render(template, &ctx);
        }
    }
    assert!(replayed > 10, "only {replayed} files in {}", dir.display());
}

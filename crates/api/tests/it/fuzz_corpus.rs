//! The `execution_body` fuzz target's corpus (`fuzz/corpus/execution_body`) replayed as the
//! target runs it: a byte choosing the route, then the body, decoded and checked as the
//! server does; each is accepted or refused, none panics.

use std::path::Path;

use chrono::{TimeZone, Utc};
use updraft_api::validate::{accept_body, BodyRoute};

#[test]
fn every_corpus_body_is_accepted_or_refused() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/execution_body");
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let mut accepted = 0;
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("the execution_body corpus exists") {
        let path = entry.expect("a corpus entry").path();
        let bytes = std::fs::read(&path).expect("a readable corpus file");
        replayed += 1;
        let Some((&selector, body)) = bytes.split_first() else {
            continue;
        };
        let route = BodyRoute::ALL[usize::from(selector) % BodyRoute::ALL.len()];
        accepted += usize::from(accept_body(route, body, now).is_ok());
    }
    // The seeds are valid bodies of every route; what the fuzzer adds is mostly refused.
    assert!(
        accepted >= BodyRoute::ALL.len(),
        "{accepted} of {replayed} accepted"
    );
}

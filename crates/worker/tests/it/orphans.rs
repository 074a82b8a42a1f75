//! `kill_orphans`: finding task processes of a dead worker by their claim id.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use updraft_worker::{kill_orphans, CLAIM_ID_ENV};

use crate::alive;

fn sleeper(claim_id: Option<&str>) -> std::process::Child {
    let mut command = Command::new("sleep");
    command.arg("300").stdin(Stdio::null());
    if let Some(id) = claim_id {
        command.env(CLAIM_ID_ENV, id);
    }
    command.spawn().unwrap()
}

#[test]
fn kills_processes_with_the_claim_id_and_nothing_else() {
    let unique = format!("orphan-test-{}", std::process::id());
    let mut orphan = sleeper(Some(&unique));
    let mut other_claim = sleeper(Some(&format!("{unique}-other")));
    let mut unmarked = sleeper(None);
    // `spawn` returns after the exec, so /proc/<pid>/environ is already the sleeper's.
    let killed = kill_orphans(&[format!("{unique}-nope"), unique.clone()]);

    assert_eq!(killed, 1);
    assert_eq!(orphan.wait().unwrap().signal(), Some(9));
    assert!(alive(other_claim.id().try_into().unwrap()));
    assert!(alive(unmarked.id().try_into().unwrap()));
    for child in [&mut other_claim, &mut unmarked] {
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

#[test]
fn no_claim_ids_kill_nothing() {
    assert_eq!(kill_orphans(&[]), 0);
    assert_eq!(kill_orphans(&[String::new()]), 0);
}

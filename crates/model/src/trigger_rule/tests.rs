//! Every trigger rule against the same table of upstream mixes, with Airflow's expected decision.

use super::*;

/// Upstream mixes: `s` success, `f` failed, `uf` upstream_failed, `sk` skipped, `rm` removed,
/// `n` not finished yet.
const MIXES: [&str; 13] = [
    "s s s", "s s n", "s f n", "s sk n", "f f f", "f uf f", "sk sk sk", "s sk sk", "s f sk",
    "n n n", "f n n", "uf uf uf", "s rm",
];

/// One letter per mix above: R run, W wait, S skip, U upstream_failed.
const EXPECTED: [(TriggerRule, &str); 13] = [
    (TriggerRule::AllSuccess, "RWUSUUSSUWUUR"),
    (TriggerRule::AllFailed, "SSSSRRSSSWWRS"),
    (TriggerRule::AllDone, "RWWWRRRRRWWRR"),
    (TriggerRule::AllDoneMinOneSuccess, "RWWSUUSSSWWUR"),
    (TriggerRule::AllSkipped, "SSSSSSRSSWSSS"),
    (TriggerRule::OneSuccess, "RRRRUUSRRWWUR"),
    (TriggerRule::OneFailed, "SWRWRRSSRWRRS"),
    (TriggerRule::OneDone, "RRRRRRSRRWRSR"),
    (TriggerRule::NoneFailed, "RWUWUURRUWUUR"),
    (TriggerRule::NoneFailedMinOneSuccess, "RWUWUUSRUWUUR"),
    (TriggerRule::NoneSkipped, "RWWSRRSSSWWRR"),
    (TriggerRule::Always, "RRRRRRRRRRRRR"),
    (TriggerRule::AllDoneSetupSuccess, "RWWWRRRRRWWRR"),
];

fn summary(mix: &str) -> UpstreamSummary {
    UpstreamSummary::from_states(mix.split_whitespace().map(|s| match s {
        "s" => TaskState::Success,
        "f" => TaskState::Failed,
        "uf" => TaskState::UpstreamFailed,
        "sk" => TaskState::Skipped,
        "rm" => TaskState::Removed,
        "n" => TaskState::Running,
        other => panic!("unknown state {other}"),
    }))
}

fn letter(decision: Decision) -> char {
    match decision {
        Decision::Run => 'R',
        Decision::Wait => 'W',
        Decision::Skip => 'S',
        Decision::UpstreamFailed => 'U',
    }
}

#[test]
fn every_rule_decides_like_airflow() {
    for (rule, expected) in EXPECTED {
        let got: String = MIXES
            .iter()
            .map(|mix| letter(rule.decide(&summary(mix))))
            .collect();
        assert_eq!(got, expected, "{rule} over {MIXES:?}");
    }
}

#[test]
fn a_task_without_upstream_runs_whatever_its_rule() {
    for (rule, _) in TRIGGER_RULES {
        for mix in ["", "rm", "rm rm"] {
            assert_eq!(rule.decide(&summary(mix)), Decision::Run, "{rule} {mix:?}");
        }
    }
}

#[test]
fn summary_counts_states() {
    let cases = [
        ("", UpstreamSummary::default()),
        (
            "s f uf sk rm n",
            UpstreamSummary {
                total: 6,
                success: 1,
                failed: 1,
                upstream_failed: 1,
                skipped: 1,
                removed: 1,
                done: 5,
                ..UpstreamSummary::default()
            },
        ),
    ];
    for (mix, expected) in cases {
        assert_eq!(summary(mix), expected, "{mix:?}");
    }
}

#[test]
fn names_round_trip() {
    for (rule, name) in TRIGGER_RULES {
        assert_eq!(rule.to_string(), name);
        assert_eq!(name.parse::<TriggerRule>(), Ok(rule));
        let json = serde_json::to_string(&rule).unwrap();
        assert_eq!(json, format!("\"{name}\""));
    }
    assert!("all_sucess".parse::<TriggerRule>().is_err());
}

/// A teardown's rule: with setups upstream, it waits for everything, then runs if one setup
/// succeeded, whatever the work tasks did.
#[test]
fn all_done_setup_success_follows_the_setups() {
    let rule = TriggerRule::AllDoneSetupSuccess;
    // `work` then `setups` as (success, skipped, failed) among them, plus unfinished ones.
    let with = |work: &str, success: usize, skipped: usize, failed: usize, waiting: usize| {
        let mut s = summary(work);
        let setups = success + skipped + failed + waiting;
        s.total += setups;
        s.success += success;
        s.skipped += skipped;
        s.failed += failed;
        s.done += success + skipped + failed;
        s.setups = setups;
        s.setup_success = success;
        s.setup_skipped = skipped;
        s
    };
    assert_eq!(rule.decide(&with("f", 1, 0, 0, 0)), Decision::Run);
    assert_eq!(rule.decide(&with("uf", 1, 1, 0, 0)), Decision::Run);
    assert_eq!(rule.decide(&with("s", 1, 0, 1, 0)), Decision::Run);
    assert_eq!(rule.decide(&with("n", 1, 0, 0, 0)), Decision::Wait);
    assert_eq!(rule.decide(&with("s", 1, 0, 0, 1)), Decision::Wait);
    assert_eq!(rule.decide(&with("sk", 0, 2, 0, 0)), Decision::Skip);
    assert_eq!(
        rule.decide(&with("uf", 0, 0, 1, 0)),
        Decision::UpstreamFailed
    );
    assert_eq!(
        rule.decide(&with("sk", 0, 1, 1, 0)),
        Decision::UpstreamFailed
    );
    // No setup upstream: `all_done`.
    assert_eq!(rule.decide(&summary("f sk")), Decision::Run);
    assert_eq!(rule.decide(&summary("f n")), Decision::Wait);
}

//! Log chunks a remote worker ships: stored at their byte offsets, once; a chunk past the end
//! answers where the log ends; a worker that lost the try is fenced off.

use reqwest::StatusCode;
use serde_json::json;
use updraft_store::{LogAppend, LogChunk, TaskExecution};

use crate::fixture::{claim_request, queued_run, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_are_stored_at_their_offsets_and_read_back() {
    let server = Server::start().await;
    let store = server.dyn_store();
    queued_run(store, &["a"]).await;
    let worker = server.client();
    let claimed = worker
        .claim(claim_request("w", 1))
        .await
        .expect("claim")
        .remove(0);
    let (ti_id, try_number) = (claimed.ti.id, claimed.ti.try_number);
    let chunk = |offset: u64, data: &str| LogChunk {
        ti_id,
        try_number,
        claim_id: claimed.claim_id.clone(),
        offset,
        data: data.to_string(),
    };
    assert_eq!(store.read_log(ti_id, try_number).await.expect("read"), None);

    let append = |c| worker.append_log(c);
    assert_eq!(
        append(chunk(0, "starting\n")).await.expect("append"),
        LogAppend::Stored { length: 9 }
    );
    assert_eq!(
        append(chunk(9, "día 2\n")).await.expect("append"),
        LogAppend::Stored { length: 16 },
        "offsets count bytes"
    );
    assert_eq!(
        append(chunk(0, "starting\n")).await.expect("append"),
        LogAppend::Stored { length: 16 },
        "a chunk sent twice (after a failover) is stored once"
    );
    assert_eq!(
        append(chunk(20, "later\n")).await.expect("append"),
        LogAppend::Gap { length: 16 },
        "a chunk past the end says where to resend from"
    );
    assert_eq!(
        append(chunk(16, "done\n")).await.expect("append"),
        LogAppend::Stored { length: 21 }
    );
    assert_eq!(
        store
            .read_log(ti_id, try_number)
            .await
            .expect("read")
            .as_deref(),
        Some("starting\ndía 2\ndone\n")
    );

    // The wire shape, as workers of other versions see it.
    let answer = server
        .post(
            "logs",
            &json!({
                "ti_id": ti_id, "try_number": try_number, "claim_id": claimed.claim_id,
                "offset": 40, "data": "x"
            })
            .to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
    assert_eq!(answer.json, json!({"result": "gap", "length": 21}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_of_a_try_the_worker_lost_are_fenced() {
    let server = Server::start().await;
    let store = server.dyn_store();
    queued_run(store, &["a"]).await;
    let worker = server.client();
    let claimed = worker
        .claim(claim_request("w", 1))
        .await
        .expect("claim")
        .remove(0);
    let chunk = LogChunk {
        ti_id: claimed.ti.id,
        try_number: claimed.ti.try_number,
        claim_id: "not-the-claim".into(),
        offset: 0,
        data: "intruder\n".into(),
    };
    assert_eq!(
        worker.append_log(chunk.clone()).await.expect("append"),
        LogAppend::Fenced
    );
    let wrong_try = LogChunk {
        claim_id: claimed.claim_id.clone(),
        try_number: claimed.ti.try_number + 1,
        ..chunk.clone()
    };
    assert_eq!(
        worker.append_log(wrong_try).await.expect("append"),
        LogAppend::Fenced
    );
    let answer = server
        .post("logs", &serde_json::to_string(&chunk).expect("json"))
        .await;
    assert_eq!(answer.json, json!({"result": "fenced"}));
    assert_eq!(
        store
            .read_log(claimed.ti.id, claimed.ti.try_number)
            .await
            .expect("read"),
        None
    );
}

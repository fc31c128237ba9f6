//! The audit log: changes made through the server are recorded with who, what, before and
//! after, in the same transaction; the hash chain names any row edited, deleted or moved
//! by hand in the SQLite file or the PostgreSQL table.

mod support;

use serde_json::json;
use support::http::Session;
use support::{TestServer, PASSWORD};

async fn for_both<F, Fut>(f: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f(support::sqlite().await).await;
    f(support::postgres().await).await;
}

/// Makes a few audited changes through the API; returns how many rows the log has.
async fn some_changes(s: &TestServer) -> i64 {
    let admin = Session::login(s.addr, "admin", PASSWORD).await;
    for (code, parent) in [("SV-MOF", "SV"), ("PK-PCC", "PK"), ("PK-FIN", "PK")] {
        let r = admin
            .post(
                "/api/v1/entities",
                &json!({"code": code, "name": format!("Agency {code}"), "parent": parent}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = admin
        .post(
            "/api/v1/wallets",
            &json!({"entity": "SV", "name": "cold", "addresses": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    s.store.audit_verify().await.unwrap().head_seq
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_changes_are_audited_with_actor_and_after_state() {
    for_both(|s| async move {
        let n = some_changes(&s).await;
        // 5 users at start-up, 3 entities, 1 wallet.
        assert_eq!(n, 9);
        let auditor = Session::login(s.addr, "auditor", PASSWORD).await;
        let r = auditor.get("/api/v1/audit?limit=5").await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.json();
        assert_eq!(page["items"].as_array().unwrap().len(), 5);
        let next = page["next_cursor"].as_str().unwrap().to_string();
        let r = auditor
            .get(&format!("/api/v1/audit?limit=5&cursor={next}"))
            .await;
        let rest = r.json();
        let items = rest["items"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        assert!(rest["next_cursor"].is_null());
        let wallet = items.last().unwrap();
        assert_eq!(wallet["action"], "wallet.add");
        assert_eq!(wallet["actor"], "user:admin");
        assert_eq!(wallet["subject"], "wallet:SV/cold");
        assert!(wallet["after"].as_str().unwrap().contains("bcrt1qw508"));
        let r = auditor.get("/api/v1/audit/verify").await;
        assert_eq!(r.json()["problems"], json!([]));
        // A viewer may not read it.
        let viewer = Session::login(s.addr, "viewer", PASSWORD).await;
        assert_eq!(viewer.get("/api/v1/audit").await.status, 403);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_leaves_no_audit_row_and_no_data() {
    let s = support::sqlite().await;
    let before = s.store.audit_verify().await.unwrap().rows;
    let admin = Session::login(s.addr, "admin", PASSWORD).await;
    // Duplicate code: the insert fails, so the transaction (and its audit row) is gone.
    let r = admin
        .post("/api/v1/entities", &json!({"code": "SV", "name": "again"}))
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert_eq!(s.store.audit_verify().await.unwrap().rows, before);
    s.stop().await;
}

async fn exec(s: &TestServer, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(s.store.pool())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_an_edited_row() {
    for_both(|s| async move {
        some_changes(&s).await;
        exec(
            &s,
            "UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 7",
        )
        .await;
        let r = s.store.audit_verify().await.unwrap();
        assert!(!r.is_intact());
        assert_eq!(r.problems[0].seq, 7, "{:?}", r.problems);
        assert!(r.problems[0].problem.contains("edited"), "{:?}", r.problems);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_deleted_row() {
    for_both(|s| async move {
        some_changes(&s).await;
        exec(&s, "DELETE FROM audit_log WHERE seq = 4").await;
        let r = s.store.audit_verify().await.unwrap();
        assert_eq!(r.problems[0].seq, 4, "{:?}", r.problems);
        assert!(
            r.problems[0].problem.contains("missing"),
            "{:?}",
            r.problems
        );
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_reordered_rows() {
    for_both(|s| async move {
        some_changes(&s).await;
        // Swap the contents of rows 5 and 6, each keeping a self-consistent hash: the links
        // between rows break.
        exec(&s, "UPDATE audit_log SET seq = -5 WHERE seq = 5").await;
        exec(&s, "UPDATE audit_log SET seq = 5 WHERE seq = 6").await;
        exec(&s, "UPDATE audit_log SET seq = 6 WHERE seq = -5").await;
        let r = s.store.audit_verify().await.unwrap();
        assert!(!r.is_intact());
        assert_eq!(r.problems[0].seq, 5, "{:?}", r.problems);
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_keep_one_unbroken_chain() {
    for_both(|s| async move {
        let admin = Session::login(s.addr, "admin", PASSWORD).await;
        let mut tasks = Vec::new();
        for i in 0..12 {
            let admin = admin.clone();
            tasks.push(tokio::spawn(async move {
                admin
                    .post(
                        "/api/v1/entities",
                        &json!({"code": format!("PK-A{i}"), "name": "agency", "parent": "PK"}),
                    )
                    .await
                    .status
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), 201);
        }
        let r = s.store.audit_verify().await.unwrap();
        assert!(r.is_intact(), "{:?}", r.problems);
        assert_eq!(r.rows, 5 + 12);
        s.stop().await;
    })
    .await;
}

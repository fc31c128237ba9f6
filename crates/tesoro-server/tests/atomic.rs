//! Every change the server makes commits in one transaction with its audit row: when the
//! audit row cannot be written (a trigger in the real database refuses it), the change is
//! gone too; when it can, both are there and the chain verifies. And the records upload:
//! a CSV file sent as a multipart form, CSRF-checked, size-limited, all or nothing.

mod support;

use serde_json::json;
use support::http::{request, Resp, Session};
use support::{TestServer, PASSWORD};
use tesoro_core::EntityCode;
use tesoro_store::Backend;

async fn exec(s: &TestServer, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(s.store.pool())
        .await
        .unwrap();
}

/// Makes the database refuse every new audit row, as a full disk or a lost connection
/// would in the middle of a change.
async fn break_audit(s: &TestServer) {
    match s.store.backend() {
        Backend::Sqlite => {
            exec(
                s,
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END",
            )
            .await
        }
        Backend::Postgres => {
            exec(
                s,
                "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql",
            )
            .await;
            exec(
                s,
                "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log \
                 FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
            )
            .await
        }
    }
}

async fn mend_audit(s: &TestServer) {
    match s.store.backend() {
        Backend::Sqlite => exec(s, "DROP TRIGGER refuse_audit").await,
        Backend::Postgres => {
            exec(s, "DROP TRIGGER refuse_audit ON audit_log").await;
            exec(s, "DROP FUNCTION refuse_audit()").await
        }
    }
}

/// A multipart/form-data body: (field, file name, content).
fn multipart(fields: &[(&str, Option<&str>, &str)]) -> (String, String) {
    let boundary = "----tesoro-test-7d41b0";
    let mut body = String::new();
    for (name, file, content) in fields {
        body.push_str(&format!("--{boundary}\r\n"));
        match file {
            Some(f) => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: text/csv\r\n\r\n"
            )),
            None => body.push_str(&format!(
                "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"
            )),
        }
        body.push_str(content);
        body.push_str("\r\n");
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `csv` as a file to the admin records form (with the session's CSRF token in the
/// form unless `csrf` is false).
async fn upload(admin: &Session, name: &str, csv: &str, csrf: bool) -> Resp {
    let mut fields = vec![("kind", None, "purchase"), ("file", Some(name), csv)];
    if csrf {
        fields.insert(0, ("csrf_token", None, admin.csrf.as_str()));
    }
    let (ctype, body) = multipart(&fields);
    request(
        admin.addr,
        "POST",
        "/admin/records",
        &[
            ("Cookie", admin.cookie.as_str()),
            ("Content-Type", ctype.as_str()),
        ],
        Some(&body),
    )
    .await
}

const CSV: &str = "date,btc,entity,fiat,currency,counterparty,reference\n\
2024-03-01,1.5,SV-ONBTC,93000,USD,Exchange,order 1\n\
2024-03-02,0.25,SV-ONBTC,15600,USD,Exchange,order 2\n";

async fn rows(s: &TestServer) -> u64 {
    s.store.audit_verify().await.unwrap().rows
}

async fn has_entity(s: &TestServer, code: &str) -> bool {
    s.store
        .entity(&EntityCode::parse(code).unwrap())
        .await
        .is_ok()
}

async fn the_same_changes(s: &TestServer, admin: &Session, fail: bool) {
    let r = admin
        .post(
            "/api/v1/entities",
            &json!({"code": "SV-MOF", "name": "Finance", "parent": "SV"}),
        )
        .await;
    assert_eq!(r.status, if fail { 500 } else { 201 }, "{}", r.body);
    assert_eq!(has_entity(s, "SV-MOF").await, !fail);
    let r = admin
        .post(
            "/api/v1/wallets",
            &json!({"entity": "SV", "name": "cold", "addresses": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]}),
        )
        .await;
    assert_eq!(r.status, if fail { 500 } else { 201 }, "{}", r.body);
    assert_eq!(s.store.wallet("SV/cold").await.is_ok(), !fail);
    let r = admin
        .post(
            "/api/v1/users",
            &json!({"username": "clerk", "password": PASSWORD, "role": "viewer", "entity": "SV"}),
        )
        .await;
    assert_eq!(r.status, if fail { 500 } else { 201 }, "{}", r.body);
    let users = tesoro_server::list_users(&s.store).await.unwrap();
    assert_eq!(users.iter().any(|u| u.username == "clerk"), !fail);
    // The portal's records upload goes through the same office code.
    let r = upload(admin, "purchases.csv", CSV, true).await;
    assert_eq!(r.status, if fail { 400 } else { 303 }, "{}", r.body);
    assert_eq!(
        s.store.records().await.unwrap().len(),
        if fail { 0 } else { 2 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_row_fails_is_not_made_and_one_that_succeeds_has_both() {
    for s in [support::sqlite().await, support::postgres().await] {
        let admin = Session::login(s.addr, "admin", PASSWORD).await;
        let start = rows(&s).await;
        break_audit(&s).await;
        the_same_changes(&s, &admin, true).await;
        mend_audit(&s).await;
        assert_eq!(rows(&s).await, start, "no audit row of a change not made");
        the_same_changes(&s, &admin, false).await;
        let report = s.store.audit_verify().await.unwrap();
        assert!(report.is_intact(), "{:?}", report.problems);
        assert_eq!(report.rows, start + 4, "one audit row per change");
        let last = s.store.audit_rows(start as i64, 10).await.unwrap();
        let actions: Vec<&str> = last.iter().map(|r| r.action.as_str()).collect();
        assert_eq!(
            actions,
            ["entity.add", "wallet.add", "user.add", "records.import"]
        );
        assert!(last.iter().all(|r| r.actor == "user:admin"), "{last:?}");
        s.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_file_with_a_bad_line_imports_nothing_and_names_line_and_field() {
    let s = support::sqlite().await;
    let admin = Session::login(s.addr, "admin", PASSWORD).await;
    let start = rows(&s).await;
    let bad = "date,btc,entity\n2024-03-01,1.5,SV\n2024-03-02,lots,SV\n";
    let r = upload(&admin, "march.csv", bad, true).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body.contains("march.csv: line 3, field btc"),
        "{}",
        r.body
    );
    assert_eq!(s.store.records().await.unwrap().len(), 0, "all or nothing");
    assert_eq!(rows(&s).await, start);
    // Fixed, the same file imports; again, it changes nothing.
    let good = "date,btc,entity\n2024-03-01,1.5,SV\n2024-03-02,2,SV\n";
    assert_eq!(upload(&admin, "march.csv", good, true).await.status, 303);
    assert_eq!(upload(&admin, "march.csv", good, true).await.status, 303);
    assert_eq!(s.store.records().await.unwrap().len(), 2);
    let page = admin.get("/admin/records").await;
    assert!(page.body.contains("2.00000000"), "{}", page.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_records_upload_needs_the_csrf_token_a_size_limit_and_no_keys() {
    let s = support::sqlite().await;
    let admin = Session::login(s.addr, "admin", PASSWORD).await;
    // No token in the form: refused before the handler reads it.
    let r = upload(&admin, "a.csv", CSV, false).await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    // Too large: refused with the limit named, nothing stored.
    let mut big = String::from("date,btc,entity\n");
    while big.len() <= tesoro_server::portal::admin::RECORDS_MAX_BYTES {
        big.push_str("2024-03-01,0.001,SV,padding padding padding padding\n");
    }
    let r = upload(&admin, "big.csv", &big, true).await;
    assert_eq!(r.status, 400, "{}", &r.body[..r.body.len().min(500)]);
    assert!(r.body.contains("larger than 2 MiB"), "{}", r.body);
    // A private key in the file: refused, and not repeated in the page.
    let xprv = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    let r = upload(
        &admin,
        "keys.csv",
        &format!("date,btc\n2024-03-01,{xprv}\n"),
        true,
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.to_lowercase().contains("private key"), "{}", r.body);
    assert!(!r.body.contains(xprv), "the key was echoed back");
    assert_eq!(s.store.records().await.unwrap().len(), 0);
    s.stop().await;
}

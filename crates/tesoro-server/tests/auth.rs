//! Sessions, CSRF, login rate limiting, API tokens and the error body, over real HTTP on
//! loopback against a real SQLite file and the real PostgreSQL server.

mod support;

use serde_json::json;
use sqlx::Row;
use support::http::{get_bearer, request, Session};
use support::{TestServer, PASSWORD};

async fn for_both<F, Fut>(f: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f(support::sqlite().await).await;
    f(support::postgres().await).await;
}

fn assert_error_body(r: &support::http::Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], code, "{}", r.body);
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        r.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_httponly_cookie_and_stores_only_its_hash() {
    for_both(|s| async move {
        let r = request(
            s.addr,
            "POST",
            "/api/v1/login",
            &[("Content-Type", "application/json")],
            Some(&json!({"username": "admin", "password": PASSWORD}).to_string()),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let set = r.header("set-cookie").unwrap().to_string();
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Strict"), "{set}");
        let sid = r.cookie().unwrap();
        let raw = sid.split_once('=').unwrap().1.to_string();
        assert_eq!(raw.len(), 64, "32 random bytes, hex");
        // The database has the hash, never the id itself.
        let rows = sqlx::query("SELECT id_hash FROM sessions")
            .fetch_all(s.store.pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let stored: String = rows[0].try_get("id_hash").unwrap();
        assert_ne!(stored, raw);
        let me = request(
            s.addr,
            "GET",
            "/api/v1/me",
            &[("Cookie", sid.as_str())],
            None,
        )
        .await;
        assert_eq!(me.status, 200);
        assert_eq!(me.json()["user"]["username"], "admin");
        // Passwords are argon2id PHC strings.
        let pw: String = sqlx::query("SELECT password_hash FROM users WHERE username = 'admin'")
            .fetch_one(s.store.pool())
            .await
            .unwrap()
            .try_get("password_hash")
            .unwrap();
        assert!(pw.starts_with("$argon2id$"), "{pw}");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_answer_the_same() {
    let s = support::sqlite().await;
    let try_login = |user: &'static str, pw: &'static str| async move {
        request(
            s.addr,
            "POST",
            "/api/v1/login",
            &[("Content-Type", "application/json")],
            Some(&json!({"username": user, "password": pw}).to_string()),
        )
        .await
    };
    let a = try_login("admin", "wrong password!").await;
    let b = try_login("nobody", "wrong password!").await;
    assert_error_body(&a, 401, "bad_credentials");
    assert_error_body(&b, 401, "bad_credentials");
    assert_eq!(a.body, b.body);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_changing_requests_with_a_session_need_its_csrf_token() {
    for_both(|s| async move {
        let admin = Session::login(s.addr, "admin", PASSWORD).await;
        let other = Session::login(s.addr, "svadmin", PASSWORD).await;
        let body = json!({"code": "SV-MOF", "name": "Finance", "parent": "SV"}).to_string();
        // No token.
        let r = request(
            s.addr,
            "POST",
            "/api/v1/entities",
            &[
                ("Cookie", admin.cookie.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )
        .await;
        assert_error_body(&r, 403, "forbidden");
        // Another session's token.
        let r = request(
            s.addr,
            "POST",
            "/api/v1/entities",
            &[
                ("Cookie", admin.cookie.as_str()),
                ("X-CSRF-Token", other.csrf.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )
        .await;
        assert_error_body(&r, 403, "forbidden");
        // Nothing was written.
        assert!(s
            .store
            .entity(&tesoro_core::EntityCode::parse("SV-MOF").unwrap())
            .await
            .is_err());
        // A form post carries it as a field.
        let form = format!("csrf_token={}&x=1", admin.csrf);
        let r = request(
            s.addr,
            "POST",
            "/api/v1/logout",
            &[
                ("Cookie", other.cookie.as_str()),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(&form),
        )
        .await;
        assert_error_body(&r, 403, "forbidden");
        // The right token in the header.
        let r = admin
            .post("/api/v1/entities", &serde_json::from_str(&body).unwrap())
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        // A cross-site Origin is refused even with the token.
        let r = request(
            s.addr,
            "POST",
            "/api/v1/entities",
            &[
                ("Cookie", admin.cookie.as_str()),
                ("X-CSRF-Token", admin.csrf.as_str()),
                ("Origin", "https://evil.example"),
                ("Content-Type", "application/json"),
            ],
            Some(&json!({"code": "SV-X", "name": "X", "parent": "SV"}).to_string()),
        )
        .await;
        assert_error_body(&r, 403, "forbidden");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let s = support::sqlite().await;
    let admin = Session::login(s.addr, "admin", PASSWORD).await;
    let form = format!("csrf_token={}", admin.csrf);
    let r = request(
        s.addr,
        "POST",
        "/api/v1/logout",
        &[
            ("Cookie", admin.cookie.as_str()),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some(&form),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let r = admin.get("/api/v1/me").await;
    assert_error_body(&r, 401, "unauthorized");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_user_and_per_address() {
    for_both(|s| async move {
        let login = |user: String, pw: &'static str| {
            let addr = s.addr;
            async move {
                request(
                    addr,
                    "POST",
                    "/api/v1/login",
                    &[("Content-Type", "application/json")],
                    Some(&json!({"username": user, "password": pw}).to_string()),
                )
                .await
            }
        };
        for _ in 0..tesoro_server::auth::MAX_FAILS_PER_USER {
            assert_eq!(login("acct".into(), "not the password").await.status, 401);
        }
        // Locked: even the right password is refused, without being checked.
        let r = login("acct".into(), PASSWORD).await;
        assert_error_body(&r, 429, "rate_limited");
        // Other users are not locked by it…
        assert_eq!(login("viewer".into(), PASSWORD).await.status, 200);
        // …until this address has failed too often overall.
        for i in 0..tesoro_server::auth::MAX_FAILS_PER_IP {
            // A different name each time, so no per-user lock stops the count.
            let _ = login(format!("ghost{i}"), "nope nope nope").await;
        }
        let r = login("auditor".into(), PASSWORD).await;
        assert_error_body(&r, 429, "rate_limited");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_work_as_bearer_and_are_stored_hashed() {
    for_both(|s| async move {
        let t = tesoro_server::create_token(&s.store, "test", "auditor", "ci")
            .await
            .unwrap();
        assert!(t.token.starts_with("tsr_"));
        let hashes: Vec<String> = sqlx::query("SELECT token_hash FROM api_tokens")
            .fetch_all(s.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("token_hash").unwrap())
            .collect();
        assert_eq!(hashes.len(), 1);
        assert!(!hashes[0].contains(&t.token[4..]));
        let r = get_bearer(s.addr, "/api/v1/me", &t.token).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.json()["user"]["username"], "auditor");
        let r = get_bearer(s.addr, "/api/v1/me", "tsr_0000").await;
        assert_error_body(&r, 401, "unauthorized");
        // A token caller needs no CSRF token (no ambient credential), but the role still
        // applies: an auditor changes nothing.
        let auth = format!("Bearer {}", t.token);
        let r = request(
            s.addr,
            "POST",
            "/api/v1/entities",
            &[
                ("Authorization", auth.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(&json!({"code": "PK-PCC", "name": "Crypto Council", "parent": "PK"}).to_string()),
        )
        .await;
        assert_error_body(&r, 403, "forbidden");
        s.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_the_same_body() {
    let s = support::sqlite().await;
    let r = request(s.addr, "GET", "/api/v1/wallets", &[], None).await;
    assert_error_body(&r, 401, "unauthorized");
    let r = request(s.addr, "GET", "/api/v1/no-such-thing", &[], None).await;
    assert_error_body(&r, 404, "not_found");
    let viewer = Session::login(s.addr, "viewer", PASSWORD).await;
    let r = viewer.get("/api/v1/wallets?entity=SV").await;
    assert_error_body(&r, 403, "forbidden");
    let r = viewer.get("/api/v1/wallets?entity=not%20a%20code").await;
    assert_error_body(&r, 400, "bad_request");
    let r = viewer.get("/api/v1/wallets?limit=0").await;
    assert_error_body(&r, 400, "bad_request");
    let r = request(s.addr, "GET", "/api/v1/public/summary?entity=SV", &[], None).await;
    // Nothing synced yet.
    assert_error_body(&r, 404, "not_found");
    s.stop().await;
}

/// A regtest P2PKH address made from `n`, for wallets that must not collide by accident.
fn address(n: u8) -> String {
    use bitcoin::hashes::Hash;
    bitcoin::Address::p2pkh(
        bitcoin::PubkeyHash::from_byte_array([n; 20]),
        bitcoin::Network::Regtest,
    )
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overlap_refusal_names_the_other_wallet_only_inside_the_grant() {
    for_both(|s| async move {
        let admin = Session::login(s.addr, "admin", PASSWORD).await;
        let svadmin = Session::login(s.addr, "svadmin", PASSWORD).await;
        let (a, b) = (address(1), address(2));
        let add = |who: &Session, entity: &str, name: &str, addr: &str| {
            let body = json!({"entity": entity, "name": name, "addresses": [addr]});
            let who = who.clone();
            async move { who.post("/api/v1/wallets", &body).await }
        };
        assert_eq!(add(&admin, "PK", "pk-vault", &a).await.status, 201);

        // The SV admin may not learn that PK/pk-vault exists.
        let r = add(&svadmin, "SV", "mine", &a).await;
        assert_error_body(&r, 409, "conflict");
        assert!(r.body.contains("outside your grant"), "{}", r.body);
        assert!(
            !r.body.contains("pk-vault") && !r.body.contains("PK"),
            "{}",
            r.body
        );
        // The admin of everything is told which wallet it is.
        let r = add(&admin, "SV", "mine", &a).await;
        assert_error_body(&r, 409, "conflict");
        assert!(r.body.contains("PK/pk-vault"), "{}", r.body);

        // Inside the grant the other wallet is named.
        assert_eq!(add(&svadmin, "SV", "one", &b).await.status, 201);
        let r = add(&svadmin, "SV-ONBTC", "two", &b).await;
        assert_error_body(&r, 409, "conflict");
        assert!(r.body.contains("SV/one"), "{}", r.body);
        s.stop().await;
    })
    .await;
}

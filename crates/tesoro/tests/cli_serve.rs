//! `tesoro serve` end to end: the real binary on a synced office (a generated chain), real
//! HTTP on loopback. The documented API answers as documented; every role × endpoint ×
//! entity is allowed or denied as the grant says; `tesoro audit verify` catches a hand edit;
//! two servers on one PostgreSQL database elect one sync worker, and the other takes over
//! when it dies.

#[path = "../../tesoro-server/tests/support/http.rs"]
mod http;
mod office;
#[path = "../../tesoro-server/tests/support/schema.rs"]
mod schema;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::{request, Resp, Session};
use office::{ok, synced_office, tesoro, BIN};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// A running `tesoro serve`; killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &Path, db: Option<&str>, extra: &[&str]) -> Server {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .env_remove("TESORO_DB")
        .env_remove("TESORO_CONFIG")
        .env("RUST_LOG", "warn");
    if let Some(db) = db {
        cmd.args(["--db", db]);
    }
    let mut child = cmd
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(rest) = line.split("serving on http://").nth(1) {
                    let addr = rest
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("tesoro serve did not start")
        .parse()
        .unwrap();
    Server { child, addr }
}

fn add_user(dir: &Path, db: Option<&str>, name: &str, role: &str, entity: Option<&str>) {
    let pw = dir.join("pw.txt");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let mut args: Vec<String> = Vec::new();
    if let Some(db) = db {
        args.extend(["--db".into(), db.into()]);
    }
    args.extend(
        ["user", "add", name, "--role", role, "--password-file"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.push(pw.display().to_string());
    if let Some(e) = entity {
        args.extend(["--entity".into(), e.into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(dir, &args);
}

/// One old price is enough: reports use the last known price for later days.
fn add_prices(dir: &Path) {
    let f = dir.join("prices.csv");
    std::fs::write(&f, "date,price\n2000-01-03,50000\n").unwrap();
    ok(
        dir,
        &[
            "prices",
            "import",
            "generic",
            &f.display().to_string(),
            "--currency",
            "USD",
        ],
    );
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Fills `{txid}` and a few query parameters so each documented GET has something to find.
fn sample_query(path: &str) -> &'static str {
    match path {
        "/api/v1/balance" => "?by=wallet",
        "/api/v1/utxos" | "/api/v1/history" | "/api/v1/movements" => "?limit=3",
        "/api/v1/public/summary" | "/api/v1/statements/latest" => "?entity=SV",
        "/api/v1/violations" => "?entity=SV&limit=2",
        _ => "",
    }
}

/// Rules the reserve scenario breaks (a sale, addresses above 1 BTC, spent-from addresses
/// still holding coins), imported as the office's policy.
const RULES: &str = "[[rule]]\nkind = \"no-sale\"\nentity = \"SV\"\n\n[[rule]]\nkind = \"cap-per-address\"\nentity = \"SV\"\nmax_btc = \"1\"\n\n[[rule]]\nkind = \"exposed-public-key\"\nentity = \"SV\"\n";

fn import_rules(dir: &Path) {
    std::fs::write(dir.join("policies.toml"), RULES).unwrap();
    ok(dir, &["policy", "import", "policies.toml"]);
}

#[test]
fn the_documented_api_answers_as_documented() {
    let office = synced_office("reserve.toml", "SV-ONBTC");
    let dir = &office.dir;
    add_prices(dir);
    import_rules(dir);
    // What `tesoro check` finds with the same rules: the API must list exactly these.
    let check = office::tesoro(dir, &["check", "--rules", "policies.toml", "--json"]);
    let check: Value = serde_json::from_slice(&check.stdout).unwrap();
    let mut want_ids: Vec<String> = check["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    want_ids.sort();
    assert!(
        want_ids.len() > 2,
        "the scenario breaks several rules: {check}"
    );
    add_user(dir, None, "admin", "admin", None);
    let token = ok(dir, &["token", "create", "--user", "admin"])
        .trim()
        .to_string();
    let server = serve(dir, None, &[]);
    let addr = server.addr;
    rt().block_on(async move {
        let doc = request(addr, "GET", "/api/v1/openapi.json", &[], None).await.json();
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().unwrap();
        // Every route is documented and every documented path is a route.
        let routes = tesoro_server::api::route_paths();
        for r in &routes {
            assert!(paths.contains_key(*r), "route {r} is not in openapi.json");
        }
        for p in paths.keys() {
            assert!(routes.contains(&p.as_str()), "documented path {p} is not served");
        }
        let auth = format!("Bearer {token}");
        let check = |method: &str, path: &str, r: &Resp| {
            let op = &doc["paths"][path][method.to_ascii_lowercase()];
            let status = r.status.to_string();
            let spec = &op["responses"][&status];
            assert!(!spec.is_null(), "{method} {path} answered {status}, not documented: {}", r.body);
            let spec = match spec.get("$ref").and_then(Value::as_str) {
                Some(rf) => &doc["components"]["responses"][rf.rsplit('/').next().unwrap()],
                None => spec,
            };
            let content = spec["content"].as_object().unwrap();
            let (ctype, media) = content.iter().next().unwrap();
            if ctype == "application/json" {
                let problems = schema::check(&doc, &media["schema"], &r.json(), "$");
                assert!(problems.is_empty(), "{method} {path}: {problems:#?}\n{}", r.body);
            }
        };
        // Every documented GET, with a real token, on real data.
        for (path, item) in paths {
            if item.get("get").is_none() {
                continue;
            }
            let url = format!("{path}{}", sample_query(path));
            let r = request(addr, "GET", &url, &[("Authorization", auth.as_str())], None).await;
            assert!(r.status < 500, "GET {url}: {} {}", r.status, r.body);
            // No statement was signed in this office: its documented 404.
            let want = if path == "/api/v1/statements/latest" { 404 } else { 200 };
            assert_eq!(r.status, want, "GET {url}: {}", r.body);
            check("GET", path, &r);
        }
        // Pagination walks the whole list without repeats.
        let all = request(addr, "GET", "/api/v1/utxos?limit=1000", &[("Authorization", auth.as_str())], None)
            .await
            .json()["items"]
            .as_array()
            .unwrap()
            .len();
        let mut seen = 0;
        let mut cursor = String::new();
        loop {
            let r = request(
                addr,
                "GET",
                &format!("/api/v1/utxos?limit=2&cursor={cursor}"),
                &[("Authorization", auth.as_str())],
                None,
            )
            .await
            .json();
            seen += r["items"].as_array().unwrap().len();
            match r["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(seen, all);
        assert!(all > 2, "the scenario has several UTXOs");
        // Open violations, a page of two at a time: exactly what `tesoro check` reports.
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = request(
                addr,
                "GET",
                &format!("/api/v1/violations?limit=2&cursor={cursor}"),
                &[("Authorization", auth.as_str())],
                None,
            )
            .await;
            check("GET", "/api/v1/violations", &r);
            let r = r.json();
            assert_eq!(r["rules"], 3);
            for v in r["items"].as_array().unwrap() {
                ids.push(v["id"].as_str().unwrap().to_string());
            }
            match r["next_cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        ids.sort();
        assert_eq!(ids, want_ids);
        // Every documented POST, through a session with its CSRF token.
        let admin = Session::login(addr, "admin", PASSWORD).await;
        let login = request(
            addr,
            "POST",
            "/api/v1/login",
            &[("Content-Type", "application/json")],
            Some(&json!({"username": "admin", "password": PASSWORD}).to_string()),
        )
        .await;
        check("POST", "/api/v1/login", &login);
        let r = admin
            .post("/api/v1/entities", &json!({"code": "SV-MOF", "name": "Finance", "parent": "SV"}))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        check("POST", "/api/v1/entities", &r);
        let r = admin
            .post(
                "/api/v1/wallets",
                &json!({"entity": "SV-MOF", "name": "ops", "addresses": ["bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"]}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        check("POST", "/api/v1/wallets", &r);
        // Watch-only is absolute: a private key is refused and not echoed.
        let wif = "cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy";
        let r = admin
            .post("/api/v1/wallets", &json!({"entity": "SV", "name": "hot", "addresses": [wif]}))
            .await;
        assert_eq!(r.status, 422, "{}", r.body);
        assert!(!r.body.contains(wif));
        check("POST", "/api/v1/wallets", &r);
        let r = admin
            .post(
                "/api/v1/users",
                &json!({"username": "clerk", "password": PASSWORD, "role": "viewer", "entity": "SV"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        check("POST", "/api/v1/users", &r);
        let mv = admin.get("/api/v1/movements?limit=1000").await.json();
        let internal = mv["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["class"] == "internal")
            .expect("the scenario has an internal transfer")
            .clone();
        let r = admin
            .post(
                &format!("/api/v1/movements/{}/classify", internal["txid"].as_str().unwrap()),
                &json!({"entity": internal["entity"], "kind": "consolidation", "reason": "vault move, memo 12"}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        check("POST", "/api/v1/movements/{txid}/classify", &r);
        let r = request(
            addr,
            "POST",
            "/api/v1/logout",
            &[("Cookie", admin.cookie.as_str()), ("X-CSRF-Token", admin.csrf.as_str())],
            None,
        )
        .await;
        check("POST", "/api/v1/logout", &r);
    });
    // Everything done above is in the audit log, and the chain is intact.
    let log: Value = serde_json::from_str(&ok(dir, &["audit", "log", "--json"])).unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    for a in [
        "user.add",
        "token.create",
        "entity.add",
        "wallet.add",
        "movement.classify",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    ok(dir, &["audit", "verify"]);
    drop(server);
}

#[test]
fn every_role_sees_and_changes_only_what_its_grant_allows() {
    let office = synced_office("reserve.toml", "SV-ONBTC");
    let dir = &office.dir;
    ok(dir, &["entity", "add", "Pakistan", "--code", "PK"]);
    add_prices(dir);
    import_rules(dir);
    add_user(dir, None, "admin", "admin", None);
    add_user(dir, None, "svadmin", "admin", Some("SV"));
    add_user(dir, None, "onbtc", "accountant", Some("SV-ONBTC"));
    add_user(dir, None, "auditor", "auditor", None);
    add_user(dir, None, "pkviewer", "viewer", Some("PK"));
    let server = serve(dir, None, &[]);
    let addr = server.addr;
    rt().block_on(async move {
        let mv = {
            let a = Session::login(addr, "admin", PASSWORD).await;
            a.get("/api/v1/movements?entity=SV-ONBTC&class=internal&limit=1")
                .await
                .json()["items"][0]
                .clone()
        };
        let txid = mv["txid"].as_str().expect("an internal movement").to_string();
        let reads = [
            "/api/v1/balance",
            "/api/v1/utxos",
            "/api/v1/history",
            "/api/v1/movements",
            "/api/v1/wallets",
            "/api/v1/reports/holdings",
            "/api/v1/reports/accumulation",
            "/api/v1/reports/pnl",
            "/api/v1/violations",
        ];
        // Expected statuses, by hand from the grants: (user, entity) → reads allowed?
        let covers = |user: &str, entity: &str| match user {
            "admin" | "auditor" => true,
            "svadmin" => entity.starts_with("SV"),
            "onbtc" => entity == "SV-ONBTC",
            "pkviewer" => entity == "PK",
            _ => false,
        };
        let mut checked = 0;
        for user in ["admin", "svadmin", "onbtc", "auditor", "pkviewer"] {
            let s = Session::login(addr, user, PASSWORD).await;
            for entity in ["SV", "SV-ONBTC", "PK"] {
                for path in reads {
                    let r = s.get(&format!("{path}?entity={entity}")).await;
                    let want = if covers(user, entity) { 200 } else { 403 };
                    assert_eq!(r.status, want, "{user} GET {path}?entity={entity}: {}", r.body);
                    checked += 1;
                }
                // Registry changes: admins over the entity only.
                let r = s
                    .post(
                        "/api/v1/entities",
                        &json!({"code": format!("{entity}-{user}").to_uppercase(), "name": "x", "parent": entity}),
                    )
                    .await;
                let want = if matches!(user, "admin" | "svadmin") && covers(user, entity) { 201 } else { 403 };
                assert_eq!(r.status, want, "{user} POST entities under {entity}: {}", r.body);
                let r = s
                    .post("/api/v1/wallets", &json!({"entity": entity, "name": format!("w-{user}"), "addresses": []}))
                    .await;
                // An empty address list is refused *after* the grant check.
                let want = if matches!(user, "admin" | "svadmin") && covers(user, entity) { 422 } else { 403 };
                assert_eq!(r.status, want, "{user} POST wallets for {entity}: {}", r.body);
                checked += 2;
            }
            // Ledger changes: admins and the accountant, on SV-ONBTC's movement.
            let r = s
                .post(
                    &format!("/api/v1/movements/{txid}/classify"),
                    &json!({"entity": mv["entity"], "kind": "consolidation", "reason": format!("checked by {user}")}),
                )
                .await;
            let want = if matches!(user, "admin" | "svadmin" | "onbtc") { 200 } else { 403 };
            assert_eq!(r.status, want, "{user} classify: {}", r.body);
            // Users and the audit log: admin and auditor read; only the unscoped admin adds.
            let r = s.get("/api/v1/audit").await;
            // A scoped admin does not see the whole office's log.
            let want = if matches!(user, "admin" | "auditor") { 200 } else { 403 };
            assert_eq!(r.status, want, "{user} GET audit: {}", r.body);
            let r = s
                .post(
                    "/api/v1/users",
                    &json!({"username": format!("new-{user}"), "password": PASSWORD, "role": "viewer"}),
                )
                .await;
            let want = if user == "admin" { 201 } else { 403 };
            assert_eq!(r.status, want, "{user} POST users: {}", r.body);
            // Without an entity a scoped user reads their own grant's figures.
            let r = s.get("/api/v1/balance").await;
            assert_eq!(r.status, 200, "{user} GET balance: {}", r.body);
            // The rules are SV's: only a grant over SV sees their violations.
            let r = s.get("/api/v1/violations").await.json();
            let n = r["items"].as_array().unwrap().len();
            if covers(user, "SV") {
                assert!(n > 0, "{user} sees SV's violations: {r}");
            } else {
                assert_eq!(n, 0, "{user} must not see SV's violations: {r}");
            }
            checked += 5;
        }
        // Without a login, every non-public endpoint is 401.
        for path in reads.iter().chain(["/api/v1/users", "/api/v1/audit", "/api/v1/sync", "/api/v1/me"].iter()) {
            let r = request(addr, "GET", path, &[], None).await;
            assert_eq!(r.status, 401, "anonymous GET {path}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "unauthorized");
            checked += 1;
        }
        assert!(checked > 150, "{checked}");
    });
    drop(server);
}

#[test]
fn audit_verify_names_a_row_edited_in_the_sqlite_file() {
    let office = synced_office("reserve.toml", "SV");
    let dir = &office.dir;
    add_user(dir, None, "a1", "admin", None);
    add_user(dir, None, "a2", "viewer", Some("SV"));
    add_user(dir, None, "a3", "auditor", None);
    ok(dir, &["audit", "verify"]);
    let db = dir.join("tesoro.db");
    // The CLI's own changes (entity and wallet adds) are in the log before the users.
    let log: Value = serde_json::from_str(&ok(dir, &["audit", "log", "--json"])).unwrap();
    let seq = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "user.add" && r["subject"].as_str().unwrap().contains("a2"))
        .unwrap_or_else(|| panic!("no user.add of a2 in {log}"))["seq"]
        .as_i64()
        .unwrap();
    rt().block_on(async move {
        sqlx::any::install_default_drivers();
        let pool = sqlx::AnyPool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
        sqlx::query("UPDATE audit_log SET after_json = REPLACE(after_json, 'viewer', 'admin') WHERE seq = $1")
            .bind(seq)
            .execute(&pool)
            .await
            .unwrap();
        pool.close().await;
    });
    let out = tesoro(dir, &["audit", "verify", "--json"]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["problems"][0]["seq"], seq, "{report}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("tampered"), "{err}");
}

fn pg_url() -> (String, String, String) {
    let admin = std::env::var("TESORO_TEST_PG")
        .expect("TESORO_TEST_PG is not set: run ./test.sh, which starts PostgreSQL and sets it");
    let name = format!(
        "tesoro_serve_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let base = admin.rsplit_once('/').unwrap().0.to_string();
    (format!("{base}/{name}"), admin, name)
}

async fn status(addr: SocketAddr, token: &str) -> Value {
    let auth = format!("Bearer {token}");
    request(
        addr,
        "GET",
        "/api/v1/sync",
        &[("Authorization", auth.as_str())],
        None,
    )
    .await
    .json()
}

#[test]
fn on_postgresql_one_instance_syncs_and_another_takes_over_when_it_dies() {
    let office = synced_office("reserve.toml", "SV");
    let tip = office.expected.tip_height;
    let (url, admin, name) = pg_url();
    // A folder of its own: the office folder's tesoro.toml points at its SQLite file.
    let pgdir = tempfile::tempdir().unwrap();
    let dir = pgdir.path().to_path_buf();
    let db = Some(url.as_str());
    let run = |args: &[&str]| {
        let mut a = vec!["--db", url.as_str()];
        a.extend_from_slice(args);
        ok(&dir, &a)
    };
    run(&["init", "--network", "regtest"]);
    run(&["entity", "add", "El Salvador", "--code", "SV"]);
    let w = &office.expected.addresses[0];
    run(&[
        "wallet",
        "add",
        "--entity",
        "SV",
        "--name",
        &w.name,
        "--addresses",
        &w.address,
    ]);
    add_user(&dir, db, "ops", "admin", None);
    let token = run(&["token", "create", "--user", "ops"])
        .trim()
        .to_string();
    let source = format!("core-dir:{}", office.blocks.display());
    let extra = ["--sync-source", source.as_str(), "--sync-poll", "0.2"];
    let a = serve(&dir, db, &extra);
    let b = serve(&dir, db, &extra);
    let (a_addr, b_addr) = (a.addr, b.addr);
    let rt = rt();
    // Wait until one of them has synced to the tip.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (sa, sb) = loop {
        let (sa, sb) =
            rt.block_on(async { (status(a_addr, &token).await, status(b_addr, &token).await) });
        if sa["tip_height"] == tip
            && (sa["worker"]["passes"].as_u64() > Some(0)
                || sb["worker"]["passes"].as_u64() > Some(0))
        {
            break (sa, sb);
        }
        assert!(Instant::now() < deadline, "no instance synced: {sa} {sb}");
        std::thread::sleep(Duration::from_millis(200));
    };
    // Both see the synced chain (one database), exactly one is the leader.
    assert_eq!(sb["tip_height"], tip);
    let leaders = [&sa, &sb]
        .iter()
        .filter(|s| s["worker"]["leader"] == true)
        .count();
    assert_eq!(leaders, 1, "{sa}\n{sb}");
    let (leader, follower, follower_addr) = if sa["worker"]["leader"] == true {
        (a, b, b_addr)
    } else {
        (b, a, a_addr)
    };
    let follower_passes = rt.block_on(status(follower_addr, &token))["worker"]["passes"].clone();
    assert_eq!(
        follower_passes, 0,
        "the follower never synced while the leader lived"
    );
    // Kill the leader: PostgreSQL frees its lock with its connection; the follower takes over.
    drop(leader);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = rt.block_on(status(follower_addr, &token));
        if s["worker"]["leader"] == true && s["worker"]["passes"].as_u64() > Some(0) {
            assert!(s["worker"]["last_error"].is_null(), "{s}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the follower did not take over: {s}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(follower);
    rt.block_on(async {
        use sqlx::{Connection, Executor};
        // Each nextest test is its own process: nothing else installed the Any drivers here.
        sqlx::any::install_default_drivers();
        if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
            let _ = c
                .execute(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .await;
        }
    });
}

#[test]
fn the_public_summary_follows_the_sync_worker() {
    // An office with wallets but nothing synced; the server's worker syncs it.
    let office = synced_office("reserve.toml", "SV");
    let dir = &office.dir;
    let expected: u64 = serde_json::from_str::<Value>(&ok(dir, &["balance", "--json"])).unwrap()
        ["total_sats"]
        .as_u64()
        .unwrap();
    let fresh = tempfile::tempdir().unwrap();
    let fdir = fresh.path();
    ok(fdir, &["init", "--network", "regtest"]);
    ok(fdir, &["entity", "add", "El Salvador", "--code", "SV"]);
    for w in &office.expected.wallets {
        let gap = w.gap_limit.to_string();
        ok(
            fdir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &w.name,
                "--descriptor",
                &w.external,
                "--change-descriptor",
                &w.internal,
                "--gap-limit",
                &gap,
            ],
        );
    }
    for a in &office.expected.addresses {
        ok(
            fdir,
            &[
                "wallet",
                "add",
                "--entity",
                "SV",
                "--name",
                &a.name,
                "--addresses",
                &a.address,
            ],
        );
    }
    let source = format!("core-dir:{}", office.blocks.display());
    let server = serve(
        fdir,
        None,
        &["--sync-source", &source, "--sync-poll", "0.2"],
    );
    let addr = server.addr;
    rt().block_on(async move {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let r = request(addr, "GET", "/api/v1/public/summary?entity=SV", &[], None).await;
            if r.status == 200 && r.json()["height"] == office.expected.tip_height {
                assert_eq!(r.json()["total_sats"], expected, "{}", r.body);
                break;
            }
            assert!(matches!(r.status, 200 | 404), "{}", r.body);
            assert!(
                Instant::now() < deadline,
                "the summary never caught up: {}",
                r.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    drop(server);
}

/// Polls `path` until its body contains `want`; how long that took.
async fn until_shown(addr: SocketAddr, path: &str, want: &str) -> Duration {
    let started = Instant::now();
    loop {
        let r = request(addr, "GET", path, &[], None).await;
        assert_eq!(r.status, 200, "{}", r.body);
        if r.body.contains(want) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{path} never showed {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn public_pages_follow_what_the_cli_changes_while_the_server_runs() {
    // The page is served from memory; a statement signed and a tier set by the CLI (another
    // process, writing the database directly) must still reach it, through the data
    // version the server watches.
    let office = synced_office("reserve.toml", "SV");
    let dir = &office.dir;
    ok(dir, &["key", "generate"]);
    let server = serve(dir, None, &[]);
    let addr = server.addr;
    let runtime = rt();
    let first = runtime.block_on(request(addr, "GET", "/state/SV", &[], None));
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        first.body.contains("No signed statement exists yet"),
        "{}",
        first.body
    );

    // A wallet's tier decides the page's listing until a statement lists its addresses.
    let wallet = &office.expected.wallets[0].name;
    ok(dir, &["statement", "tier", wallet, "private"]);
    let took = runtime.block_on(until_shown(
        addr,
        "/state/SV",
        "private addresses (not listed)",
    ));
    assert!(took < Duration::from_secs(5), "the tier took {took:?}");

    ok(dir, &["statement", "create", "-o", "st.json"]);
    let list: Value = serde_json::from_str(&ok(dir, &["statement", "list", "--json"])).unwrap();
    let sha = list[0]["sha256"].as_str().unwrap().to_string();
    let took = runtime.block_on(until_shown(addr, "/state/SV", &sha));
    assert!(took < Duration::from_secs(5), "the statement took {took:?}");
    drop(server);
}

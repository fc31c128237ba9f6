//! Fresh databases on both backends for each test: a SQLite file in a temporary folder and
//! a new database on the real PostgreSQL server that `./test.sh` starts.

use sqlx::{AnyConnection, Connection, Executor};

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub backend: &'static str,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg.take() {
            // Best effort: a leftover test database is harmless and the next run uses a new name.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(mut c) = AnyConnection::connect(&admin).await {
                            let _ = c
                                .execute(sqlx::AssertSqlSafe(format!(
                                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                                )))
                                .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub fn pg_admin_url() -> String {
    std::env::var("TESORO_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "TESORO_TEST_PG is not set: the store's tests run against a real PostgreSQL server. \
             Run ./test.sh (it starts one), or set TESORO_TEST_PG=postgres://USER:PW@127.0.0.1:5432/postgres \
             for a role with CREATEDB"
        )
    })
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tesoro.db").display());
    TestDb {
        url,
        backend: "sqlite",
        _dir: Some(dir),
        pg: None,
    }
}

pub async fn postgres() -> TestDb {
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let name = format!(
        "tesoro_t_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut c = AnyConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at TESORO_TEST_PG: {e}"));
    c.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    let base = admin.rsplit_once('/').unwrap().0;
    TestDb {
        url: format!("{base}/{name}"),
        backend: "postgres",
        _dir: None,
        pg: Some((admin, name)),
    }
}

pub async fn both() -> Vec<TestDb> {
    vec![sqlite().await, postgres().await]
}

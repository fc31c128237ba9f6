//! A real server for each test: a fresh database (SQLite file or a new PostgreSQL database),
//! a few entities and users, `serve_on` listening on 127.0.0.1:0.
#![allow(dead_code)]

#[path = "../../../tesoro-store/tests/common/mod.rs"]
pub mod db;
pub mod http;

use std::net::SocketAddr;

use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_server::{create_user, Role, ServerConfig};
use tesoro_store::{NewEntity, Store};

pub const PASSWORD: &str = "correct horse battery";

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Store,
    pub url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    pub db: db::TestDb,
}

impl TestServer {
    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

fn code(s: &str) -> EntityCode {
    EntityCode::parse(s).unwrap()
}

/// Adds `(code, name, parent)` entities, parents first.
pub async fn add_entities(store: &Store, list: &[(&str, &str, Option<&str>)]) {
    for (c, name, parent) in list {
        store
            .add_entity(&NewEntity {
                code: code(c),
                name: name.to_string(),
                parent: parent.map(code),
            })
            .await
            .unwrap();
    }
}

/// Entities SV > SV-ONBTC, SV > SV-BCR, PK; users: admin (all), svadmin (admin of SV),
/// acct (accountant of SV-ONBTC), auditor (all), viewer (viewer of PK).
pub async fn start(db: db::TestDb) -> TestServer {
    let (store, _) = Store::init(&db.url, ChainNetwork(bitcoin::Network::Regtest))
        .await
        .unwrap();
    add_entities(
        &store,
        &[
            ("SV", "El Salvador", None),
            ("SV-ONBTC", "Bitcoin Office", Some("SV")),
            ("SV-BCR", "Central Reserve Bank", Some("SV")),
            ("PK", "Pakistan", None),
        ],
    )
    .await;
    for (user, role, entity) in [
        ("admin", Role::Admin, None),
        ("svadmin", Role::Admin, Some("SV")),
        ("acct", Role::Accountant, Some("SV-ONBTC")),
        ("auditor", Role::Auditor, None),
        ("viewer", Role::Viewer, Some("PK")),
    ] {
        create_user(&store, user, PASSWORD, role, entity.map(code))
            .await
            .unwrap();
    }
    let listener = tesoro_server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let cfg = ServerConfig::new(db.url.clone(), addr);
    let s2 = store.clone();
    let task = tokio::spawn(async move {
        tesoro_server::serve_on(listener, s2, cfg, async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestServer {
        addr,
        store,
        url: db.url.clone(),
        stop: Some(tx),
        task: Some(task),
        db,
    }
}

pub async fn sqlite() -> TestServer {
    start(db::sqlite().await).await
}

pub async fn postgres() -> TestServer {
    start(db::postgres().await).await
}

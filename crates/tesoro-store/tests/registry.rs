//! The registry on both backends: the same calls give the same results on a SQLite file
//! and on a real PostgreSQL server, and a failed write leaves nothing behind.

mod common;

use bitcoin::Network;
use sqlx::Row;
use tesoro_core::wallet::parse_address;
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_store::{InitOutcome, NewEntity, NewWallet, NewWalletKind, Store, StoreError};

const MAIN: ChainNetwork = ChainNetwork(Network::Bitcoin);

fn code(s: &str) -> EntityCode {
    EntityCode::parse(s).unwrap()
}

async fn entity(store: &Store, c: &str, parent: Option<&str>) {
    store
        .add_entity(&NewEntity {
            code: code(c),
            name: format!("entity {c}"),
            parent: parent.map(code),
        })
        .await
        .unwrap();
}

fn addrs(list: &[&str]) -> NewWalletKind {
    NewWalletKind::Addresses(
        list.iter()
            .map(|a| parse_address(a, "test", MAIN).unwrap())
            .collect(),
    )
}

async fn count(store: &Store, table: &str) -> i64 {
    let sql = match table {
        "wallets" => "SELECT COUNT(*) AS n FROM wallets",
        "wallet_addresses" => "SELECT COUNT(*) AS n FROM wallet_addresses",
        "entities" => "SELECT COUNT(*) AS n FROM entities",
        _ => unreachable!(),
    };
    sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
        .try_get("n")
        .unwrap()
}

const ES_COLD: &str = "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo";
const A2: &str = "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu";
const A3: &str = "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g";
const A4: &str = "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa";

#[tokio::test]
async fn init_is_idempotent_and_keeps_its_network() {
    for db in common::both().await {
        let (s, outcome) = Store::init(&db.url, MAIN).await.unwrap();
        assert_eq!(outcome, InitOutcome::Created, "{}", db.backend);
        s.close().await;
        let (s, outcome) = Store::init(&db.url, MAIN).await.unwrap();
        assert_eq!(outcome, InitOutcome::AlreadyInitialized);
        s.close().await;
        let err = Store::init(&db.url, ChainNetwork(Network::Regtest))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NetworkMismatch { .. }), "{err}");
        assert!(err.to_string().contains("mainnet") && err.to_string().contains("regtest"));
        let s = Store::open(&db.url).await.unwrap();
        assert_eq!(s.network(), MAIN);
        s.close().await;
    }
}

#[tokio::test]
async fn open_refuses_what_is_not_a_tesoro_database() {
    for db in common::both().await {
        let err = Store::open(&db.url).await.unwrap_err();
        let text = err.to_string();
        // The SQLite file does not exist yet; the PostgreSQL database is empty.
        assert!(
            text.contains("tesoro init") || text.contains("cannot open"),
            "{}: {text}",
            db.backend
        );
        assert!(
            !text.contains("tesoro_test:tesoro_test"),
            "password leaked: {text}"
        );
    }
}

#[tokio::test]
async fn entity_tree_and_subtrees() {
    for db in common::both().await {
        let (s, _) = Store::init(&db.url, MAIN).await.unwrap();
        entity(&s, "SV", None).await;
        entity(&s, "SV-ONBTC", Some("SV")).await;
        entity(&s, "SV-BCR", Some("SV")).await;
        entity(&s, "SV-ONBTC-COLD", Some("SV-ONBTC")).await;
        entity(&s, "PK", None).await;
        let err = s
            .add_entity(&NewEntity {
                code: code("SV"),
                name: "again".into(),
                parent: None,
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
        let err = s
            .add_entity(&NewEntity {
                code: code("US-FBI"),
                name: "FBI".into(),
                parent: Some(code("US")),
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("parent entity US does not exist"));
        assert_eq!(count(&s, "entities").await, 5);
        let sub: Vec<String> = s
            .entity_subtree(&code("SV"))
            .await
            .unwrap()
            .iter()
            .map(|c| c.to_string())
            .collect();
        assert_eq!(sub, vec!["SV", "SV-BCR", "SV-ONBTC", "SV-ONBTC-COLD"]);
        let all = s.entities().await.unwrap();
        let cold = all
            .iter()
            .find(|e| e.code.as_str() == "SV-ONBTC-COLD")
            .unwrap();
        assert_eq!(cold.parent.as_ref().unwrap().as_str(), "SV-ONBTC");
        s.close().await;
    }
}

#[tokio::test]
async fn wallets_listed_by_subtree_and_found_by_name() {
    for db in common::both().await {
        let (s, _) = Store::init(&db.url, MAIN).await.unwrap();
        entity(&s, "SV", None).await;
        entity(&s, "SV-ONBTC", Some("SV")).await;
        entity(&s, "PK", None).await;
        s.add_wallet(&NewWallet {
            entity: code("SV-ONBTC"),
            name: "published".into(),
            kind: addrs(&[ES_COLD, A2]),
        })
        .await
        .unwrap();
        let desc = "wpkh([73c5da0a/84'/0'/0']xpub6CatWdiZiodmUeTDp8LT5or8nmbKNcuyvz7WyksVFkKB4RHwCD3XyuvPEbvqAQY3rAPshWcMLoP2fMFMKHPJ4ZeZXYVUhLv1VMrjPC7PW6V/0/*)#wc3n3van";
        let w = s
            .add_wallet(&NewWallet {
                entity: code("PK"),
                name: "cold-1".into(),
                kind: NewWalletKind::Descriptor {
                    external: desc.into(),
                    internal: None,
                    gap_limit: 100,
                    birth_height: Some(820_000),
                },
            })
            .await
            .unwrap();
        assert_eq!(w.gap_limit, Some(100));
        assert_eq!(w.birth_height, Some(820_000));
        s.add_wallet(&NewWallet {
            entity: code("SV"),
            name: "cold-1".into(),
            kind: addrs(&[A3]),
        })
        .await
        .unwrap();

        let sv: Vec<String> = s
            .wallets(Some(&code("SV")))
            .await
            .unwrap()
            .iter()
            .map(|w| w.full_name())
            .collect();
        assert_eq!(sv, vec!["SV/cold-1", "SV-ONBTC/published"]);
        assert_eq!(s.wallets(None).await.unwrap().len(), 3);

        let err = s.wallet("cold-1").await.unwrap_err();
        assert!(matches!(err, StoreError::Ambiguous(_)), "{err}");
        assert_eq!(
            s.wallet("PK/cold-1")
                .await
                .unwrap()
                .external_descriptor
                .as_deref(),
            Some(desc)
        );
        let published = s.wallet("published").await.unwrap();
        assert_eq!(published.address_count, 2);
        let list = s.wallet_addresses(published.id).await.unwrap();
        assert_eq!(list[0].address, ES_COLD);
        assert!(list[0].script_pubkey_hex.starts_with("a914"));

        let err = s
            .add_wallet(&NewWallet {
                entity: code("SV-ONBTC"),
                name: "published".into(),
                kind: addrs(&[A4]),
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate(_)), "{err}");
        s.close().await;
    }
}

#[tokio::test]
async fn a_failed_wallet_add_leaves_no_rows() {
    for db in common::both().await {
        let (s, _) = Store::init(&db.url, MAIN).await.unwrap();
        entity(&s, "SV", None).await;
        s.add_wallet(&NewWallet {
            entity: code("SV"),
            name: "hot".into(),
            kind: addrs(&[A3]),
        })
        .await
        .unwrap();
        let (w0, a0) = (
            count(&s, "wallets").await,
            count(&s, "wallet_addresses").await,
        );
        // The wallet row and two addresses go in before the third (already watched) fails.
        let err = s
            .add_wallet(&NewWallet {
                entity: code("SV"),
                name: "cold".into(),
                kind: addrs(&[ES_COLD, A2, A3, A4]),
            })
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("already watched by wallet SV/hot"),
            "{}: {text}",
            db.backend
        );
        assert_eq!(count(&s, "wallets").await, w0, "{}", db.backend);
        assert_eq!(count(&s, "wallet_addresses").await, a0, "{}", db.backend);
        // And the same wallet without the clash goes in whole.
        s.add_wallet(&NewWallet {
            entity: code("SV"),
            name: "cold".into(),
            kind: addrs(&[ES_COLD, A2, A4]),
        })
        .await
        .unwrap();
        assert_eq!(count(&s, "wallet_addresses").await, a0 + 3);
        s.close().await;
    }
}

/// The two dialects of the migrations must describe the same tables and columns.
#[tokio::test]
async fn both_dialects_have_the_same_schema() {
    let lite = common::sqlite().await;
    let pg = common::postgres().await;
    let (ls, _) = Store::init(&lite.url, MAIN).await.unwrap();
    let (ps, _) = Store::init(&pg.url, MAIN).await.unwrap();
    let mut lite_cols = Vec::new();
    let tables = sqlx::query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name",
    )
    .fetch_all(ls.pool())
    .await
    .unwrap();
    for t in tables {
        let name: String = t.try_get("name").unwrap();
        let cols = sqlx::query("SELECT name FROM pragma_table_info($1) ORDER BY name")
            .bind(name.clone())
            .fetch_all(ls.pool())
            .await
            .unwrap();
        for c in cols {
            let col: String = c.try_get("name").unwrap();
            lite_cols.push(format!("{name}.{col}"));
        }
    }
    let rows = sqlx::query(
        "SELECT table_name || '.' || column_name AS c FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name NOT LIKE '_sqlx%' ORDER BY table_name, column_name",
    )
    .fetch_all(ps.pool())
    .await
    .unwrap();
    let pg_cols: Vec<String> = rows.iter().map(|r| r.try_get("c").unwrap()).collect();
    lite_cols.sort();
    let mut pg_sorted = pg_cols.clone();
    pg_sorted.sort();
    assert!(!lite_cols.is_empty());
    assert_eq!(lite_cols, pg_sorted);
    ls.close().await;
    ps.close().await;
}

//! The public summary cache under a crowd: a cold summary is computed once however many
//! requests arrive together, and a change is visible as soon as the refresh after it returns;
//! a public page is built once per data version and served as it was while it is rebuilt.

mod support;

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::BlockHash;
use support::db;
use tesoro_core::chain::{BlockDelta, BlockMeta};
use tesoro_core::{ChainNetwork, EntityCode};
use tesoro_server::public::summary_json;
use tesoro_server::AppState;
use tesoro_store::{NewEntity, Store};

fn code(s: &str) -> EntityCode {
    EntityCode::parse(s).unwrap()
}

async fn office(db: &db::TestDb) -> Store {
    let (store, _) = Store::init(&db.url, ChainNetwork(bitcoin::Network::Regtest))
        .await
        .unwrap();
    support::add_entities(
        &store,
        &[
            ("SV", "El Salvador", None),
            ("SV-ONBTC", "Bitcoin Office", Some("SV")),
        ],
    )
    .await;
    // One block, so that there is a tip to sum holdings at.
    store
        .apply_blocks(&[BlockDelta::empty(BlockMeta {
            height: 0,
            hash: BlockHash::from_byte_array([1; 32]),
            prev_hash: BlockHash::all_zeros(),
            time: 1_700_000_000,
        })])
        .await
        .unwrap();
    store
}

async fn crowd_then_change(db: db::TestDb) {
    let store = office(&db).await;
    let state = Arc::new(AppState::new(store.clone()).await.unwrap());
    state.data_changed().await;
    let sv = code("SV");

    let mut tasks = Vec::new();
    for _ in 0..64 {
        let state = state.clone();
        let sv = sv.clone();
        tasks.push(tokio::spawn(async move {
            summary_json(&state, Some(&sv)).await.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(
        state.public.computations(),
        1,
        "64 requests for a cold summary must cost one computation"
    );

    // A new part of SV: the refresh after the write recomputes what was cached, so the very
    // next request is answered from memory with the new part.
    store
        .add_entity(&NewEntity {
            code: code("SV-BCR"),
            name: "Central Reserve Bank".into(),
            parent: Some(sv.clone()),
        })
        .await
        .unwrap();
    state.data_changed().await;
    assert_eq!(state.public.computations(), 2);
    let after: serde_json::Value =
        serde_json::from_slice(&summary_json(&state, Some(&sv)).await.unwrap()).unwrap();
    assert_eq!(state.public.computations(), 2, "answered from the cache");
    let parts: Vec<&str> = after["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["entity"].as_str().unwrap())
        .collect();
    assert!(
        parts.contains(&"SV-BCR"),
        "parts after the change: {parts:?}"
    );

    // Nothing moved: a refresh computes nothing.
    state.data_changed().await;
    assert_eq!(state.public.computations(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_crowd_costs_one_computation_and_changes_show_at_once() {
    crowd_then_change(db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_crowd_costs_one_computation_and_changes_show_at_once() {
    crowd_then_change(db::postgres().await).await;
}

/// A public page is built once per data version; while the new version's page is being
/// built, other requests get the page as it was instead of waiting for the build.
async fn page_served_as_it_was_while_rebuilt(db: db::TestDb) {
    let store = office(&db).await;
    let state = Arc::new(AppState::new(store.clone()).await.unwrap());
    state.data_changed().await;
    let page = |body: &'static str| {
        let state = state.clone();
        async move {
            state
                .pages
                .get_or_build(&state.version, &state.store, "state:SV:", || async move {
                    Ok(body.to_string())
                })
                .await
                .unwrap()
        }
    };
    assert_eq!(&page("first").await[..], b"first");
    assert_eq!(&page("not built again").await[..], b"first", "same version");

    store
        .add_entity(&NewEntity {
            code: code("SV-BCR"),
            name: "Central Reserve Bank".into(),
            parent: Some(code("SV")),
        })
        .await
        .unwrap();
    state.data_changed().await;

    // A slow build of the new version's page, held until we let it go.
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = {
        let state = state.clone();
        tokio::spawn(async move {
            state
                .pages
                .get_or_build(&state.version, &state.store, "state:SV:", || async move {
                    let _ = started_tx.send(());
                    let _ = go_rx.await;
                    Ok("second".to_string())
                })
                .await
                .unwrap()
        })
    };
    started_rx.await.unwrap();
    let meanwhile = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        page("a request must not build while another does"),
    )
    .await
    .expect("a request waited for the build");
    assert_eq!(&meanwhile[..], b"first", "served as it was");
    go_tx.send(()).unwrap();
    assert_eq!(&slow.await.unwrap()[..], b"second");
    assert_eq!(&page("not built again").await[..], b"second");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_page_served_as_it_was_while_rebuilt() {
    page_served_as_it_was_while_rebuilt(db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_page_served_as_it_was_while_rebuilt() {
    page_served_as_it_was_while_rebuilt(db::postgres().await).await;
}

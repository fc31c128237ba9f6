//! The public summary cache under a crowd: a cold summary is computed once however many
//! requests arrive together, and a change is visible as soon as the refresh after it returns.

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

//! The Esplora client against the imitation server: 404s as `None`, 400s as errors naming the
//! URL, paging of script histories, and a reorg between two calls detected, never applied.

use bitcoin::hashes::Hash;
use bitcoin::{BlockHash, Network};
use tesoro_chain::esplora::{Esplora, EsploraError};
use tesoro_chain::source::{BlockSource, SourceError};
use tesoro_testchain::esplora_server::EsploraServer;
use tesoro_testchain::{generate, Scenario};

fn chain(seed: u64) -> (tempfile::TempDir, Vec<Vec<u8>>, tesoro_testchain::Expected) {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tesoro-testchain/scenarios/reserve.toml"),
    )
    .unwrap();
    let mut sc = Scenario::from_toml(&text).unwrap();
    sc.seed = seed;
    let g = generate(&sc, tmp.path()).unwrap();
    let dir = tesoro_chain::BlocksDir::open(&g.blocks_dir, Network::Regtest).unwrap();
    let index = dir.index().unwrap();
    let blocks = dir
        .pending_from(&index, 0)
        .unwrap()
        .map(|p| p.read(Vec::new()).unwrap().bytes)
        .collect();
    (tmp, blocks, g.expected)
}

#[test]
fn answers_errors_and_a_reorg_between_calls() {
    let (_a, blocks, expected) = chain(7);
    let tip = blocks.len() as u32 - 1;
    let server = EsploraServer::start(blocks, Network::Regtest).unwrap();
    let c = Esplora::new(&server.url()).unwrap();
    assert_eq!(c.tip_height().unwrap(), tip);
    assert_eq!(c.hash_at(tip).unwrap(), Some(expected.tip_hash));
    assert_eq!(c.hash_at(tip + 1).unwrap(), None, "404 past the tip");
    assert!(
        c.header(BlockHash::all_zeros()).unwrap().is_none(),
        "404 unknown block"
    );
    let headers = c.headers(0, tip).unwrap();
    assert_eq!(headers.len() as u32, tip + 1);
    assert_eq!(headers.last().unwrap().0.hash, expected.tip_hash);

    // Histories page through 25 at a time and agree with the blocks.
    let addr = &expected.addresses[0];
    let script = addr
        .address
        .parse::<bitcoin::Address<_>>()
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let hist = c.history(&script).unwrap();
    assert!(!hist.is_empty());
    for h in &hist {
        assert_eq!(headers[h.height as usize].0.hash, h.block_hash);
    }

    // A reorg between the header list and the histories: the source refuses to go on.
    let (_b, other, other_expected) = chain(99);
    let other_script = other_expected.addresses[0]
        .address
        .parse::<bitcoin::Address<_>>()
        .unwrap()
        .assume_checked()
        .script_pubkey();
    let src = BlockSource::esplora(&server.url(), Network::Regtest).unwrap();
    let metas = src.headers(0, tip).unwrap();
    server.set_chain(other).unwrap();
    if let BlockSource::Esplora {
        client, interest, ..
    } = &src
    {
        let h = client.history(&other_script).unwrap();
        assert!(!h.is_empty());
        interest.add(&h);
        match src.blocks(&metas) {
            Err(e @ SourceError::Esplora(EsploraError::ChainMoved { .. })) => {
                assert!(e.is_transient());
                assert!(e.to_string().contains(&server.url()), "{e}");
            }
            Err(e) => panic!("unexpected {e}"),
            Ok(_) => panic!("a history of another chain was accepted"),
        }
    } else {
        panic!("not an esplora source");
    }

    // A bad request gets 400 and Esplora's text body; an unknown tx 404 "Transaction not found".
    let url = tesoro_chain::http::HttpUrl::parse(&server.url()).unwrap();
    let pool = tesoro_chain::http::HttpPool::new(url, None, std::time::Duration::from_secs(5));
    let r = pool
        .request("GET", "/block/nothex/header", None, Vec::new())
        .unwrap();
    assert_eq!(
        (r.status, r.body_snippet().as_str()),
        (400, "Invalid hex string")
    );
    let r = pool
        .request("GET", &format!("/tx/{}", "00".repeat(32)), None, Vec::new())
        .unwrap();
    assert_eq!(
        (r.status, r.body_snippet().as_str()),
        (404, "Transaction not found")
    );
    assert!(c.history(&bitcoin::ScriptBuf::new()).unwrap().is_empty());
    let wrong = BlockSource::esplora(&server.url(), Network::Bitcoin).map(|_| ());
    let msg = wrong.unwrap_err().to_string();
    assert!(
        msg.contains("genesis") && msg.contains(&server.url()),
        "{msg}"
    );
}

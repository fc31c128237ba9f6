//! Derived addresses equal what Bitcoin Core derives (`deriveaddresses`) for the same
//! descriptor, for every script type tesoro watches, receive and change.

mod node_support;

use node_support::{ok, xprv, xpub, Node};
use serde_json::json;

#[test]
fn tesoro_derives_what_core_derives() {
    let node = Node::start(&[]);
    let k: Vec<String> = (1u8..=3).map(|s| xpub(&xprv(s)).to_string()).collect();
    let (a, b, c) = (&k[0], &k[1], &k[2]);
    let descriptors = [
        format!("wpkh([d34db33f/84h/1h/0h]{a}/<0;1>/*)"),
        format!("sh(wpkh({a}/<0;1>/*))"),
        format!("pkh({b}/<0;1>/*)"),
        format!("wsh(sortedmulti(2,{a}/<0;1>/*,{b}/<0;1>/*,{c}/<0;1>/*))"),
        format!("sh(wsh(multi(2,{a}/<0;1>/*,{b}/<0;1>/*,{c}/<0;1>/*)))"),
        format!("tr({a}/<0;1>/*)"),
        format!("tr({a}/<0;1>/*,{{pk({b}/<0;1>/*),multi_a(2,{b}/<0;1>/*,{c}/<0;1>/*)}})"),
    ];
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    ok(dir, &["init", "--network", "regtest"]);
    ok(dir, &["entity", "add", "Test", "--code", "T"]);
    for (n, d) in descriptors.iter().enumerate() {
        let name = format!("w{n}");
        ok(
            dir,
            &[
                "wallet",
                "add",
                "--entity",
                "T",
                "--name",
                &name,
                "--descriptor",
                d,
            ],
        );
        for (change, branch) in [(false, "0"), (true, "1")] {
            let single = d.replace("<0;1>", branch);
            let with_sum = node.checksummed(&single);
            let core = node.rpc("deriveaddresses", json!([with_sum, [0, 24]]));
            let core: Vec<String> = core
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            let mut args = vec![
                "wallet",
                "addresses",
                name.as_str(),
                "--count",
                "25",
                "--json",
            ];
            if change {
                args.push("--change");
            }
            let ours: serde_json::Value = serde_json::from_str(&ok(dir, &args)).unwrap();
            let ours: Vec<String> = ours
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["address"].as_str().unwrap().to_string())
                .collect();
            assert_eq!(ours, core, "{single}");
        }
    }
}

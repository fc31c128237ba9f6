//! Random text fed to every parser of user input: errors, never panics.

use bitcoin::Network;
use proptest::prelude::*;
use tesoro_core::wallet::{address_file_items, parse_address, parse_address_list, DescriptorPair};
use tesoro_core::ChainNetwork;

fn descriptorish() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "wpkh(", "wsh(", "sh(", "tr(", "multi(", "sortedmulti(", "pk(", ")", ",", "/", "*",
        "<0;1>", "h", "'", "#", "2", "[d34db33f/84h/0h/0h]",
        "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8",
        "02e493dbf1c10d80f3581e4904930b1404cc6c13900ee0758474fa94abe8c4cd13",
        "and_v(v:pk(", "older(144)", "{", "}",
    ]);
    prop::collection::vec(pieces, 0..14).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn descriptor_parser_never_panics(s in "\\PC*", t in descriptorish()) {
        for net in [Network::Bitcoin, Network::Regtest] {
            let _ = DescriptorPair::parse(&s, None, ChainNetwork(net));
            let _ = DescriptorPair::parse(&t, Some(&s), ChainNetwork(net));
            let _ = DescriptorPair::parse(&t, None, ChainNetwork(net));
        }
    }

    #[test]
    fn address_parsers_never_panic(s in "\\PC*", b in "[13bcmnt][a-km-zA-HJ-NP-Z1-9qpzry9x8gf2tvdw0s3jn54khce6mua7l]{20,70}") {
        let _ = parse_address(&s, "x", ChainNetwork(Network::Bitcoin));
        let _ = parse_address(&b, "x", ChainNetwork(Network::Regtest));
        let items = address_file_items("f.txt", &s);
        let _ = parse_address_list(items, ChainNetwork(Network::Bitcoin));
    }

    #[test]
    fn secret_scan_never_panics(s in "\\PC*") {
        let _ = tesoro_core::secret::find_secret(&s);
    }
}

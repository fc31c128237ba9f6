//! Derived addresses must equal published vectors and what BDK derives for the same
//! descriptor.

use std::str::FromStr;

use bdk_wallet::{KeychainKind, Wallet};
use bitcoin::base58;
use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Address, Network};
use tesoro_core::wallet::{script_address, DescriptorPair};
use tesoro_core::{ChainNetwork, Keychain};

const MAINNET: ChainNetwork = ChainNetwork(Network::Bitcoin);

/// BIP-84's account key for "abandon … about", given there as a zpub.
const BIP84_ZPUB: &str = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";

fn zpub_to_xpub(zpub: &str) -> String {
    let mut data = base58::decode_check(zpub).unwrap();
    data[..4].copy_from_slice(&[0x04, 0x88, 0xb2, 0x1e]);
    base58::encode_check(&data)
}

fn addr(pair: &DescriptorPair, k: Keychain, i: u32) -> String {
    script_address(&pair.script_at(k, i).unwrap(), Network::Bitcoin)
        .unwrap()
        .to_string()
}

fn bdk_addr(ext: &str, int: &str, k: KeychainKind, i: u32, network: Network) -> String {
    let wallet = Wallet::create(ext.to_string(), int.to_string())
        .network(network)
        .create_wallet_no_persist()
        .unwrap();
    wallet.peek_address(k, i).address.to_string()
}

#[test]
fn bip84_published_vectors() {
    let xpub = zpub_to_xpub(BIP84_ZPUB);
    let ext = format!("wpkh([73c5da0a/84h/0h/0h]{xpub}/0/*)");
    let int = format!("wpkh([73c5da0a/84h/0h/0h]{xpub}/1/*)");
    let pair = DescriptorPair::parse(&ext, Some(&int), MAINNET).unwrap();
    assert!(pair.checksum_added);
    // Vectors from BIP-84 itself.
    assert_eq!(
        addr(&pair, Keychain::External, 0),
        "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    );
    assert_eq!(
        addr(&pair, Keychain::External, 1),
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    );
    assert_eq!(
        addr(&pair, Keychain::Internal, 0),
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    );
    // And BDK agrees for the first hundred of each keychain.
    for i in 0..100 {
        assert_eq!(
            addr(&pair, Keychain::External, i),
            bdk_addr(&ext, &int, KeychainKind::External, i, Network::Bitcoin)
        );
    }
    let info = pair.info();
    assert_eq!(info.script_type, "wpkh");
    assert_eq!(info.policy, "single key");
    assert_eq!(info.keys[0].fingerprint, "73c5da0a");
    assert_eq!(info.keys[0].origin_path.as_deref(), Some("m/84'/0'/0'"));
}

#[test]
fn bip86_published_vectors() {
    let xpub = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ";
    let ext = format!("tr([73c5da0a/86h/0h/0h]{xpub}/0/*)");
    let int = format!("tr([73c5da0a/86h/0h/0h]{xpub}/1/*)");
    let pair = DescriptorPair::parse(&ext, Some(&int), MAINNET).unwrap();
    assert_eq!(
        addr(&pair, Keychain::External, 0),
        "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr"
    );
    assert_eq!(
        addr(&pair, Keychain::External, 1),
        "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"
    );
    assert_eq!(
        addr(&pair, Keychain::Internal, 0),
        "bc1p3qkhfews2uk44qtvauqyr2ttdsw7svhkl9nkm9s9c3x4ax5h60wqwruhk7"
    );
    for i in 0..50 {
        assert_eq!(
            addr(&pair, Keychain::Internal, i),
            bdk_addr(&ext, &int, KeychainKind::Internal, i, Network::Bitcoin)
        );
    }
}

/// Three cosigners' account keys at m/48'/0'/0'/2' (derived here from fixed test seeds;
/// only their public halves enter the descriptor).
fn cosigners(network: Network) -> Vec<(String, Xpub)> {
    let secp = Secp256k1::new();
    (1u8..=3)
        .map(|n| {
            let master = Xpriv::new_master(network, &[n; 32]).unwrap();
            let fp = master.fingerprint(&secp).to_string();
            let coin = if network == Network::Bitcoin { 0 } else { 1 };
            let path = DerivationPath::from_str(&format!("m/48h/{coin}h/0h/2h")).unwrap();
            let account = master.derive_priv(&secp, &path).unwrap();
            (fp, Xpub::from_priv(&secp, &account))
        })
        .collect()
}

fn multisig(network: Network, wrapper: &str, change: u32) -> String {
    let coin = if network == Network::Bitcoin { 0 } else { 1 };
    let keys: Vec<String> = cosigners(network)
        .iter()
        .map(|(fp, x)| format!("[{fp}/48h/{coin}h/0h/2h]{x}/{change}/*"))
        .collect();
    let inner = format!("sortedmulti(2,{})", keys.join(","));
    match wrapper {
        "wsh" => format!("wsh({inner})"),
        "sh-wsh" => format!("sh(wsh({inner}))"),
        _ => format!("sh({inner})"),
    }
}

#[test]
fn wsh_sortedmulti_2_of_3_matches_bdk() {
    for (network, wrapper) in [
        (Network::Bitcoin, "wsh"),
        (Network::Bitcoin, "sh-wsh"),
        (Network::Regtest, "wsh"),
    ] {
        let ext = multisig(network, wrapper, 0);
        let int = multisig(network, wrapper, 1);
        let pair = DescriptorPair::parse(&ext, Some(&int), ChainNetwork(network)).unwrap();
        let info = pair.info();
        assert_eq!(info.policy, "2-of-3 multisig");
        assert_eq!(info.keys.len(), 3);
        for i in 0..60 {
            for (k, bk) in [
                (Keychain::External, KeychainKind::External),
                (Keychain::Internal, KeychainKind::Internal),
            ] {
                let ours = script_address(&pair.script_at(k, i).unwrap(), network)
                    .unwrap()
                    .to_string();
                assert_eq!(
                    ours,
                    bdk_addr(&ext, &int, bk, i, network),
                    "{wrapper} {k:?} {i}"
                );
            }
        }
    }
}

#[test]
fn multipath_descriptor_gives_both_keychains() {
    let xpub = zpub_to_xpub(BIP84_ZPUB);
    let multi = format!("wpkh([73c5da0a/84h/0h/0h]{xpub}/<0;1>/*)");
    let pair = DescriptorPair::parse(&multi, None, MAINNET).unwrap();
    assert_eq!(
        addr(&pair, Keychain::Internal, 0),
        "bc1q8c6fshw2dlwun7ekn9qwf37cu2rn755upcp6el"
    );
    let err = DescriptorPair::parse(&multi, Some(&multi), MAINNET).unwrap_err();
    assert!(err.to_string().contains("multipath"));
}

#[test]
fn checksum_verified_and_added() {
    let xpub = zpub_to_xpub(BIP84_ZPUB);
    let ext = format!("wpkh([73c5da0a/84h/0h/0h]{xpub}/0/*)");
    let pair = DescriptorPair::parse(&ext, None, MAINNET).unwrap();
    let with_sum = pair.external.to_string();
    let sum = with_sum.rsplit_once('#').unwrap().1;
    assert_eq!(sum.len(), 8);
    let again = DescriptorPair::parse(&with_sum, None, MAINNET).unwrap();
    assert!(!again.checksum_added);
    let wrong = format!(
        "{ext}#{}",
        if sum == "aaaaaaaa" {
            "bbbbbbbb"
        } else {
            "aaaaaaaa"
        }
    );
    let err = DescriptorPair::parse(&wrong, None, MAINNET).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn other_network_refused_naming_both() {
    let xpub = zpub_to_xpub(BIP84_ZPUB);
    let ext = format!("wpkh([73c5da0a/84h/0h/0h]{xpub}/0/*)");
    let err = DescriptorPair::parse(&ext, None, ChainNetwork(Network::Regtest)).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("mainnet") && text.contains("regtest"),
        "{text}"
    );

    let tpub_desc = multisig(Network::Regtest, "wsh", 0);
    let err = DescriptorPair::parse(&tpub_desc, None, MAINNET).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("test-network") && text.contains("mainnet"),
        "{text}"
    );

    let a = tesoro_core::wallet::parse_address(
        "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo",
        "--addresses item 1",
        ChainNetwork(Network::Regtest),
    )
    .unwrap_err()
    .to_string();
    assert!(a.contains("mainnet") && a.contains("regtest"), "{a}");
}

#[test]
fn bare_addresses_of_every_type() {
    let cases = [
        // El Salvador's published cold address (P2SH).
        ("32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo", "a9"),
        // Genesis coinbase's P2PKH form.
        ("1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa", "76a9"),
        ("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "0014"),
        (
            "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",
            "0020",
        ),
        (
            "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
            "5120",
        ),
    ];
    for (a, prefix) in cases {
        let w = tesoro_core::wallet::parse_address(a, "t", MAINNET).unwrap();
        assert!(w.script_pubkey.to_hex_string().starts_with(prefix), "{a}");
        let round = Address::from_script(&w.script_pubkey, Network::Bitcoin).unwrap();
        assert_eq!(round.to_string(), a);
    }
}

#[test]
fn address_list_refuses_duplicates_and_names_the_line() {
    let file = "# published cold addresses\n32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo\n\nbc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu\nnot-an-address\n";
    let items = tesoro_core::wallet::address_file_items("addresses.txt", file);
    let err = tesoro_core::wallet::parse_address_list(items, MAINNET).unwrap_err();
    assert!(err.to_string().contains("addresses.txt line 5"), "{err}");
    let dup = "32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo,32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo";
    let items = tesoro_core::wallet::address_file_items("a.txt", dup);
    let err = tesoro_core::wallet::parse_address_list(items, MAINNET).unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn private_descriptors_refused_without_echo() {
    let secp = Secp256k1::new();
    let master = Xpriv::new_master(Network::Bitcoin, &[7; 32]).unwrap();
    let xprv = master.to_string();
    let tprv = Xpriv::new_master(Network::Regtest, &[7; 32])
        .unwrap()
        .to_string();
    let wif = bitcoin::PrivateKey::new(
        bitcoin::secp256k1::SecretKey::from_slice(&[9; 32]).unwrap(),
        Network::Bitcoin,
    )
    .to_wif();
    let _ = secp;
    for (desc, net) in [
        (format!("wpkh({xprv}/84h/0h/0h/0/*)"), MAINNET),
        (
            format!("tr({tprv}/86h/1h/0h/0/*)"),
            ChainNetwork(Network::Regtest),
        ),
        (format!("wpkh({wif})"), MAINNET),
        (format!("wsh(multi(1,{xprv}/0/*,{wif}))"), MAINNET),
    ] {
        let err = DescriptorPair::parse(&desc, None, net).unwrap_err();
        let text = format!("{err} {err:?}");
        assert!(text.contains("watch-only"), "{text}");
        for secret in [&xprv, &tprv, &wif] {
            assert!(!text.contains(secret.as_str()));
            assert!(!text.contains(&secret[4..24]));
        }
    }
    let err = tesoro_core::wallet::parse_address(&wif, "--addresses item 1", MAINNET).unwrap_err();
    assert!(!err.to_string().contains(&wif));
}

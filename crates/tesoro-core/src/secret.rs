//! Refusing private key material before it can reach the database, a file or a log.
//!
//! tesoro is watch-only. Anything that looks like a private key — an extended private key
//! (xprv, tprv and their SLIP-132 cousins), a WIF key, or a BIP-39 seed phrase — is refused
//! wherever it appears in user input. The error names *where* the secret was found and what
//! kind it is, never the secret itself, so it cannot leak through an error message either.

use std::fmt;

use bitcoin::base58;

/// The kind of private key material that was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// An extended private key (xprv, tprv, yprv, zprv, …).
    ExtendedPrivateKey,
    /// A single private key in Wallet Import Format.
    Wif,
    /// A run of words from the BIP-39 word list: a seed phrase.
    SeedPhrase,
}

impl fmt::Display for SecretKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SecretKind::ExtendedPrivateKey => "an extended private key (xprv/tprv)",
            SecretKind::Wif => "a private key in WIF",
            SecretKind::SeedPhrase => "what looks like a seed phrase (BIP-39 words)",
        })
    }
}

/// Private key material was found in user input. Deliberately holds no part of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{where_} contains {kind}: tesoro is watch-only and never accepts private keys; \
     give the public form instead (an xpub/tpub descriptor, or addresses). \
     Nothing was stored."
)]
pub struct SecretRefused {
    /// What was found.
    pub kind: SecretKind,
    /// Where it was found, for example `argument 7` or `line 3 of addresses.txt`.
    pub where_: String,
}

/// Version bytes of extended private keys: BIP-32 (xprv, tprv) and SLIP-132 (yprv, zprv,
/// Yprv, Zprv, uprv, vprv, Uprv, Vprv).
const XPRV_VERSIONS: [[u8; 4]; 10] = [
    [0x04, 0x88, 0xad, 0xe4],
    [0x04, 0x35, 0x83, 0x94],
    [0x04, 0x9d, 0x78, 0x78],
    [0x04, 0xb2, 0x43, 0x0c],
    [0x02, 0x95, 0xb0, 0x05],
    [0x02, 0xaa, 0x7a, 0x99],
    [0x04, 0x4a, 0x4e, 0x28],
    [0x04, 0x5f, 0x18, 0xbc],
    [0x02, 0x42, 0x85, 0xb5],
    [0x02, 0x57, 0x50, 0x48],
];

const XPRV_PREFIXES: [&str; 10] = [
    "xprv", "tprv", "yprv", "zprv", "Yprv", "Zprv", "uprv", "vprv", "Uprv", "Vprv",
];

/// Seed phrases are 12 to 24 words; a run of 12 word-list words is treated as one.
const SEED_RUN: usize = 12;

fn is_base58_char(c: char) -> bool {
    c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l')
}

fn token_secret(token: &str) -> Option<SecretKind> {
    // An xprv-like prefix on a long base58 token is refused even with a bad checksum:
    // a mistyped private key is still a private key.
    if token.len() >= 100 && XPRV_PREFIXES.iter().any(|p| token.starts_with(p)) {
        return Some(SecretKind::ExtendedPrivateKey);
    }
    if !(50..=120).contains(&token.len()) {
        return None;
    }
    let data = base58::decode_check(token).ok()?;
    if data.len() == 78 && XPRV_VERSIONS.iter().any(|v| data[..4] == v[..]) {
        return Some(SecretKind::ExtendedPrivateKey);
    }
    let wif_version = matches!(data.first(), Some(0x80) | Some(0xef));
    let wif_len = data.len() == 33 || (data.len() == 34 && data[33] == 0x01);
    if wif_version && wif_len {
        return Some(SecretKind::Wif);
    }
    None
}

fn is_seed_word(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    bip39::Language::English.find_word(&lower).is_some()
}

/// Looks for private key material in `text`. Returns the kind of the first secret found.
pub fn find_secret(text: &str) -> Option<SecretKind> {
    for token in text.split(|c: char| !is_base58_char(c)) {
        if let Some(kind) = token_secret(token) {
            return Some(kind);
        }
    }
    // Words are split on anything but letters, so a phrase hidden inside a descriptor
    // (`wpkh(legal winner …/0/*)`) or numbered (`1. legal 2. winner`) is still one run.
    let mut run = 0;
    for word in text.split(|c: char| !c.is_ascii_alphabetic()) {
        if word.is_empty() {
            continue;
        }
        if is_seed_word(word) {
            run += 1;
            if run >= SEED_RUN {
                return Some(SecretKind::SeedPhrase);
            }
        } else {
            run = 0;
        }
    }
    None
}

/// Refuses `text` if it holds private key material; `where_` names the place for the error.
pub fn refuse_secret(text: &str, where_: impl Into<String>) -> Result<(), SecretRefused> {
    match find_secret(text) {
        Some(kind) => Err(SecretRefused {
            kind,
            where_: where_.into(),
        }),
        None => Ok(()),
    }
}

/// Refuses a whole command line: each argument, and the arguments joined (a seed phrase
/// typed without quotes arrives as twelve separate arguments).
pub fn refuse_secret_in_args<I, S>(args: I) -> Result<(), SecretRefused>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let args: Vec<String> = args.into_iter().map(|a| a.as_ref().to_string()).collect();
    for (i, arg) in args.iter().enumerate() {
        refuse_secret(arg, format!("command-line argument {i}"))?;
    }
    refuse_secret(&args.join(" "), "the command line")
}

#[cfg(test)]
mod tests {
    use super::*;

    // BIP-32 test vector 1, master keys.
    const XPRV: &str = "xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi";
    const XPUB: &str = "xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8";
    // The WIF of private key 1 (compressed, mainnet) and a testnet WIF.
    const WIF: &str = "KwDiBf89QgGbjEhKnhXJuH7LrciVrZi3qYjgd9M7rFU73sVHnoWn";
    const WIF_TEST: &str = "cMahea7zqjxrtgAbB7LSGbcQUr1uX1ojuat9jZodMN87JcbXMTcA";

    #[test]
    fn refuses_every_kind() {
        assert_eq!(find_secret(XPRV), Some(SecretKind::ExtendedPrivateKey));
        let desc = format!("wpkh([d34db33f/84h/0h/0h]{XPRV}/0/*)");
        assert_eq!(find_secret(&desc), Some(SecretKind::ExtendedPrivateKey));
        assert_eq!(find_secret(WIF), Some(SecretKind::Wif));
        assert_eq!(find_secret(WIF_TEST), Some(SecretKind::Wif));
        assert_eq!(find_secret(&format!("wpkh({WIF})")), Some(SecretKind::Wif));
        let seed = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
        assert_eq!(find_secret(seed), Some(SecretKind::SeedPhrase));
        assert_eq!(
            find_secret(&seed.to_uppercase().replace(' ', ",")),
            Some(SecretKind::SeedPhrase)
        );
        // A tampered xprv (bad checksum) is still refused.
        let tampered = XPRV.replace('Q', "R");
        assert_eq!(find_secret(&tampered), Some(SecretKind::ExtendedPrivateKey));
    }

    #[test]
    fn accepts_public_material() {
        assert_eq!(find_secret(XPUB), None);
        assert_eq!(find_secret("32ixEdVJWo3kmvJGMTZq5jAQVZZeuwnqzo"), None);
        assert_eq!(
            find_secret("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"),
            None
        );
        assert_eq!(find_secret("El Salvador"), None);
        // Word-list words in prose, fewer than twelve in a row, are not a seed phrase.
        assert_eq!(
            find_secret("the office will buy one coin each day and hold it for the public"),
            None
        );
    }

    #[test]
    fn error_never_holds_the_secret() {
        let err = refuse_secret(XPRV, "argument 3").unwrap_err();
        let text = err.to_string();
        assert!(!text.contains(XPRV));
        assert!(!text.contains(&XPRV[..20]));
        assert!(text.contains("argument 3"));
        assert!(text.contains("watch-only"));
    }

    #[test]
    fn seed_inside_a_descriptor_or_numbered() {
        let words = "legal winner thank year wave sausage worth useful legal winner thank yellow";
        assert_eq!(
            find_secret(&format!("wpkh([d34db33f/84h/0h/0h]{words}/0/*)")),
            Some(SecretKind::SeedPhrase)
        );
        let numbered: String = words
            .split(' ')
            .enumerate()
            .map(|(i, w)| format!("{}. {w}\n", i + 1))
            .collect();
        assert_eq!(find_secret(&numbered), Some(SecretKind::SeedPhrase));
    }

    #[test]
    fn seed_split_over_arguments() {
        let args = "tesoro entity add abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
            .split(' ');
        assert!(refuse_secret_in_args(args).is_err());
    }
}

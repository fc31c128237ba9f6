//! The Bitcoin network a database follows, and how users name it.

use std::fmt;
use std::str::FromStr;

pub use bitcoin::Network;

/// A network as tesoro stores and prints it (`mainnet`, `testnet4`, `signet`, `regtest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChainNetwork(pub Network);

/// A network name that tesoro does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?}: use mainnet, testnet4, testnet (testnet3), signet or regtest")]
pub struct UnknownNetwork(pub String);

impl ChainNetwork {
    /// The name tesoro uses in files and output.
    pub fn name(self) -> &'static str {
        match self.0 {
            Network::Bitcoin => "mainnet",
            Network::Testnet => "testnet",
            Network::Testnet4 => "testnet4",
            Network::Signet => "signet",
            Network::Regtest => "regtest",
        }
    }

    /// The four-byte magic that starts every record in Core's blk files.
    pub fn magic(self) -> [u8; 4] {
        self.0.magic().to_bytes()
    }
}

impl FromStr for ChainNetwork {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n = match s.trim().to_ascii_lowercase().as_str() {
            "mainnet" | "main" | "bitcoin" => Network::Bitcoin,
            "testnet" | "testnet3" | "test" => Network::Testnet,
            "testnet4" => Network::Testnet4,
            "signet" => Network::Signet,
            "regtest" => Network::Regtest,
            _ => return Err(UnknownNetwork(s.to_string())),
        };
        Ok(ChainNetwork(n))
    }
}

impl fmt::Display for ChainNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<Network> for ChainNetwork {
    fn from(n: Network) -> Self {
        ChainNetwork(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for name in ["mainnet", "testnet", "testnet4", "signet", "regtest"] {
            let n: ChainNetwork = name.parse().unwrap();
            assert_eq!(n.name(), name);
        }
        assert!("litecoin".parse::<ChainNetwork>().is_err());
    }

    #[test]
    fn magics_are_cores() {
        let hex = |n: &str| {
            let m = n.parse::<ChainNetwork>().unwrap().magic();
            m.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        assert_eq!(hex("mainnet"), "f9beb4d9");
        assert_eq!(hex("testnet4"), "1c163f28");
        assert_eq!(hex("signet"), "0a03cf40");
        assert_eq!(hex("regtest"), "fabfb5da");
    }
}

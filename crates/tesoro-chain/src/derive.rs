//! The stock [`ScriptDeriver`]: a public output descriptor (xpub/tpub, one `/*` wildcard)
//! derived with miniscript. Private keys are refused at parse time: the ledger is watch-only.

use std::str::FromStr;

use bitcoin::ScriptBuf;
use miniscript::{Descriptor, DescriptorPublicKey};
use tesoro_core::derive::KeychainDeriver;

use crate::error::{ChainError, Result};
use crate::watch::ScriptDeriver;

/// Derives scripts of one public ranged descriptor.
pub struct DescriptorDeriver {
    descriptor: Descriptor<DescriptorPublicKey>,
    keys: KeychainDeriver,
}

impl std::fmt::Debug for DescriptorDeriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DescriptorDeriver({})", self.descriptor)
    }
}

impl DescriptorDeriver {
    /// Parse a public ranged descriptor. Multipath (`<0;1>`) descriptors are split with
    /// [`DescriptorDeriver::parse_multipath`] instead.
    pub fn parse(descriptor: &str) -> Result<Self> {
        let descriptor = parse_public(descriptor)?;
        if descriptor.is_multipath() {
            return Err(ChainError::Descriptor(
                "multipath descriptor: split it into one keychain per path".into(),
            ));
        }
        Self::from_descriptor(descriptor)
    }

    /// Parse a descriptor that may be multipath (`.../<0;1>/*`), one deriver per path in order.
    pub fn parse_multipath(descriptor: &str) -> Result<Vec<Self>> {
        let descriptor = parse_public(descriptor)?;
        descriptor
            .into_single_descriptors()
            .map_err(|e| ChainError::Descriptor(e.to_string()))?
            .into_iter()
            .map(Self::from_descriptor)
            .collect()
    }

    fn from_descriptor(descriptor: Descriptor<DescriptorPublicKey>) -> Result<Self> {
        if !descriptor.has_wildcard() {
            return Err(ChainError::Descriptor(
                "descriptor has no /* wildcard; watch its single address as a bare script".into(),
            ));
        }
        let keys =
            KeychainDeriver::new(&descriptor).map_err(|e| ChainError::Descriptor(e.to_string()))?;
        Ok(Self { descriptor, keys })
    }

    /// The parsed descriptor.
    pub fn descriptor(&self) -> &Descriptor<DescriptorPublicKey> {
        &self.descriptor
    }
}

fn parse_public(s: &str) -> Result<Descriptor<DescriptorPublicKey>> {
    // Do not echo the text back: if it holds a private key, the error must not carry it.
    Descriptor::<DescriptorPublicKey>::from_str(s.trim()).map_err(|_| {
        ChainError::Descriptor(
            "not a public output descriptor (private keys are refused; use xpub/tpub keys)".into(),
        )
    })
}

impl ScriptDeriver for DescriptorDeriver {
    fn derive(&self, index: u32) -> std::result::Result<ScriptBuf, String> {
        self.keys.script_at(index).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_private_keys_and_derives_public() {
        let xprv = "wpkh(tprv8ZgxMBicQKsPd9TeAdPADNnSyH9SSUUbTVeFszDE23Ki6TBB5nCefAdHkK8Fm3qMQR6sHwA56zqRmKmxnHk37JkiFzvncDqoKmPWubu7hDF/0/*)";
        let e = DescriptorDeriver::parse(xprv).expect_err("must refuse");
        assert!(!e.to_string().contains("tprv"));
        let xpub = "wpkh(tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/0/*)";
        let d = DescriptorDeriver::parse(xpub).expect("public descriptor");
        let s0 = d.derive(0).expect("derive");
        assert!(s0.is_p2wpkh());
        assert_ne!(s0, d.derive(1).expect("derive"));
        let both = DescriptorDeriver::parse_multipath(
            "wpkh(tpubD6NzVbkrYhZ4WaWSyoBvQwbpLkojyoTZPRsgXELWz3Popb3qkjcJyJUGLnL4qHHoQvao8ESaAstxYSnhyswJ76uZPStJRJCTKvosUCJZL5B/<0;1>/*)",
        )
        .expect("multipath");
        assert_eq!(both.len(), 2);
        assert_eq!(both[0].derive(0).expect("derive"), s0);
    }
}

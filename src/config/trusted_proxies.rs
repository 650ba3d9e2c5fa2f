//! The peers whose `X-Forwarded-For` is believed: addresses and CIDR blocks, given as a
//! comma-separated string (`QRPARK_TRUSTED_PROXIES=10.0.0.0/8, 192.0.2.7`) or a TOML list.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A set of trusted proxy networks; empty (the default) trusts no peer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Network>);

/// An address block: `addr/prefix`.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    fn parse(text: &str) -> Result<Self, String> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{text}` is not an IP address or CIDR block"))?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("`{text}`: the prefix must be 0 to {bits}"))?,
        };
        Ok(Self { addr, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// An IPv4 address as itself even when it arrives IPv4-mapped (`::ffff:10.0.0.1`).
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR blocks.
    pub fn parse(text: &str) -> Result<Self, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(Network::parse)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// Whether `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|network| network.contains(ip))
    }

    /// The client's address: the peer, unless the peer is a trusted proxy; then the
    /// right-most address of `X-Forwarded-For` that is not itself a trusted proxy (the
    /// left-most entries are whatever the client chose to send). A malformed entry stops
    /// the walk at the last address known good.
    pub fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    ) -> IpAddr {
        let mut client = canonical(peer);
        if !self.contains(client) {
            return client;
        }
        for hop in forwarded_for.rev() {
            let Ok(hop) = hop.trim().parse::<IpAddr>() else {
                break;
            };
            client = canonical(hop);
            if !self.contains(client) {
                break;
            }
        }
        client
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        serializer.serialize_str(&text.join(","))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Given {
            Text(String),
            List(Vec<String>),
        }
        let text = match Given::deserialize(deserializer)? {
            Given::Text(text) => text,
            Given::List(list) => list.join(","),
        };
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::TrustedProxies;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn parses_addresses_and_blocks() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 192.0.2.7 ,fd00::/8,").unwrap();
        assert!(proxies.contains(ip("10.200.1.2")));
        assert!(proxies.contains(ip("::ffff:10.0.0.1")));
        assert!(proxies.contains(ip("192.0.2.7")));
        assert!(!proxies.contains(ip("192.0.2.8")));
        assert!(proxies.contains(ip("fd12::1")));
        assert!(!proxies.contains(ip("fe80::1")));
        assert!(TrustedProxies::parse("").unwrap() == TrustedProxies::default());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "proxy.internal", "10.0.0.1/x", "::1/129"] {
            assert!(TrustedProxies::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn believes_forwarded_for_only_from_trusted_peers() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let xff = |text: &'static str| text.split(',');
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            proxies.client_address(ip("203.0.113.9"), xff("1.2.3.4")),
            ip("203.0.113.9")
        );
        // Behind one proxy: the right-most hop.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), xff("1.2.3.4, 198.51.100.7")),
            ip("198.51.100.7")
        );
        // Behind two trusted proxies: the right-most untrusted hop, not the forged left.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), xff("6.6.6.6, 198.51.100.7, 10.0.0.3")),
            ip("198.51.100.7")
        );
        // Garbage stops the walk at the last good address.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), xff("198.51.100.7, junk")),
            ip("10.0.0.2")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_address(ip("10.0.0.2"), std::iter::empty()),
            ip("10.0.0.2")
        );
    }
}

//! Who sent a request: the socket's peer, or — when that peer is a trusted reverse proxy — the
//! client named in `Forwarded` (RFC 7239) or `X-Forwarded-For` / `X-Forwarded-Proto`.
//!
//! The edge ([`crate::http::observe`]) resolves a [`Client`] once per request and stores it as
//! request data; logs, rate limits and the `Secure` cookie decision read it with [`client`].

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ipnet::IpNet;
use poem::Request;
use poem::http::HeaderMap;

/// The client of a request, as far as the hub can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address; `None` when the transport has none (in-process tests).
    pub address: Option<IpAddr>,
    /// Whether the client reached the hub over HTTPS (directly, or at a trusted proxy).
    pub https: bool,
}

impl Client {
    /// The address as text, for rate-limit keys and logs (`unknown` without one).
    pub fn address_text(&self) -> String {
        self.address.map_or_else(|| "unknown".to_owned(), |address| address.to_string())
    }
}

/// The client of `request`: resolved at the edge, or the socket's peer when the request did
/// not pass the edge.
pub fn client(request: &Request) -> Client {
    match request.data::<Client>() {
        Some(client) => *client,
        None => peer(request),
    }
}

/// The proxies whose forwarding headers are believed (`server.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Arc<Vec<IpNet>>,
    malformed_logged: Arc<AtomicBool>,
}

impl TrustedProxies {
    /// Parses CIDR blocks; a bare address is a single host. The error names the bad entry.
    pub fn parse(entries: &[String]) -> anyhow::Result<Self> {
        let mut networks = Vec::with_capacity(entries.len());
        for entry in entries {
            let trimmed = entry.trim();
            let network = trimmed
                .parse::<IpNet>()
                .or_else(|_| trimmed.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "server.trusted_proxies: {entry:?} is not a CIDR block (write e.g. \"10.0.0.0/8\" or \"127.0.0.1/32\")"
                    )
                })?;
            networks.push(network);
        }
        Ok(Self { networks: Arc::new(networks), malformed_logged: Arc::default() })
    }

    /// Whether `address` is a trusted proxy.
    pub fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks.iter().any(|network| network.contains(&address))
    }

    /// The client of `request`: the peer unless the peer is trusted, then the right-most
    /// address in the forwarding chain that is not a trusted proxy.
    pub fn resolve(&self, request: &Request) -> Client {
        let peer = peer(request);
        let Some(peer_address) = peer.address else { return peer };
        if self.networks.is_empty() || !self.trusts(peer_address) {
            return peer;
        }
        let headers = request.headers();
        let forwarded = match parse_forwarded(headers) {
            Ok(forwarded) => forwarded,
            Err(()) => {
                if !self.malformed_logged.swap(true, Ordering::Relaxed) {
                    tracing::warn!("ignoring a malformed Forwarded header from a trusted proxy (logged once)");
                }
                None
            }
        };
        let (chain, proto) = match forwarded {
            Some(forwarded) => forwarded,
            None => (forwarded_for(headers), forwarded_proto(headers)),
        };
        let address = chain.iter().rev().copied().find(|hop| !self.trusts(*hop)).or_else(|| chain.first().copied());
        Client {
            address: Some(address.unwrap_or(peer_address)),
            https: match proto.as_deref() {
                Some(proto) => proto.eq_ignore_ascii_case("https"),
                None => peer.https,
            },
        }
    }
}

fn peer(request: &Request) -> Client {
    Client {
        address: request.remote_addr().as_socket_addr().map(|address| canonical(address.ip())),
        https: request.scheme().as_str() == "https",
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, from dual-stack sockets) as plain IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The `for=` chain and the right-most `proto=` of the `Forwarded` headers: `Ok(None)` when
/// there are none, `Err` when one is malformed (the caller then ignores it).
#[allow(clippy::type_complexity)]
fn parse_forwarded(headers: &HeaderMap) -> Result<Option<(Vec<IpAddr>, Option<String>)>, ()> {
    let mut chain = Vec::new();
    let mut proto = None;
    let mut any = false;
    for value in headers.get_all("forwarded") {
        any = true;
        let value = value.to_str().map_err(|_| ())?;
        for element in value.split(',') {
            for pair in element.split(';').map(str::trim).filter(|pair| !pair.is_empty()) {
                let (key, value) = pair.split_once('=').ok_or(())?;
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "for" => chain.push(forwarded_node(value).ok_or(())?),
                    "proto" => proto = Some(value.to_owned()),
                    _ => {}
                }
            }
        }
    }
    if !any {
        return Ok(None);
    }
    if chain.is_empty() {
        return Err(());
    }
    Ok(Some((chain, proto)))
}

/// A `for=` node: `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711`.
/// `unknown` and obfuscated names are not addresses: the header is then unusable.
fn forwarded_node(value: &str) -> Option<IpAddr> {
    if let Some(rest) = value.strip_prefix('[') {
        let (address, _) = rest.split_once(']')?;
        return address.parse().ok().map(canonical);
    }
    if let Ok(address) = value.parse::<IpAddr>() {
        return Some(canonical(address));
    }
    let (address, port) = value.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn forwarded_for(headers: &HeaderMap) -> Vec<IpAddr> {
    let mut chain = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else { return Vec::new() };
        for hop in value.split(',').map(str::trim).filter(|hop| !hop.is_empty()) {
            // One unparsable hop makes everything left of it unverifiable: stop trusting the
            // chain there (the right-most good hops still count).
            match forwarded_node(hop) {
                Some(address) => chain.push(address),
                None => chain.clear(),
            }
        }
    }
    chain
}

fn forwarded_proto(headers: &HeaderMap) -> Option<String> {
    let value = headers.get_all("x-forwarded-proto").iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next().map(|proto| proto.trim().to_owned()).filter(|proto| !proto.is_empty())
}

#[cfg(test)]
mod tests {
    use poem::http::HeaderValue;

    use super::*;

    fn request(peer: &str, headers: &[(&str, &str)]) -> Request {
        // The builder has no peer; the edge sees one from the socket.
        let peer: std::net::SocketAddr = format!("{peer}:40000").parse().unwrap();
        let parts = (
            poem::http::Request::new(()).into_parts().0,
            poem::web::LocalAddr::default(),
            poem::web::RemoteAddr(poem::Addr::SocketAddr(peer)),
            poem::http::uri::Scheme::HTTP,
        );
        let mut request = Request::from_parts(poem::RequestParts::from(parts), poem::Body::empty());
        for (name, value) in headers {
            request.headers_mut().append(
                poem::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        request
    }

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&entries.iter().map(|entry| (*entry).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn address(client: Client) -> String {
        client.address_text()
    }

    #[test]
    fn forwarded_headers_from_an_untrusted_peer_are_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        let forged = request("203.0.113.9", &[("x-forwarded-for", "1.2.3.4"), ("x-forwarded-proto", "https")]);
        assert_eq!(trusted.resolve(&forged), Client { address: Some("203.0.113.9".parse().unwrap()), https: false });
        let nobody = proxies(&[]);
        let behind = request("10.0.0.2", &[("x-forwarded-for", "1.2.3.4")]);
        assert_eq!(address(nobody.resolve(&behind)), "10.0.0.2", "no trusted proxies: headers ignored");
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8", "127.0.0.1"]);
        // The client forged the left-most entry; the proxies appended the real ones.
        let request = request(
            "127.0.0.1",
            &[
                ("x-forwarded-for", "6.6.6.6, 198.51.100.7"),
                ("x-forwarded-for", "10.1.2.3"),
                ("x-forwarded-proto", "https"),
            ],
        );
        let client = trusted.resolve(&request);
        assert_eq!(address(client), "198.51.100.7");
        assert!(client.https);
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for() {
        let trusted = proxies(&["127.0.0.0/8"]);
        let request = request(
            "127.0.0.1",
            &[
                ("forwarded", "for=192.0.2.60;proto=https, for=\"[2001:db8:cafe::17]:4711\""),
                ("x-forwarded-for", "9.9.9.9"),
            ],
        );
        let client = trusted.resolve(&request);
        assert_eq!(address(client), "2001:db8:cafe::17");
        assert!(client.https);
    }

    #[test]
    fn a_malformed_forwarded_header_is_ignored() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let garbage = request("127.0.0.1", &[("forwarded", "for"), ("x-forwarded-for", "198.51.100.1")]);
        assert_eq!(address(trusted.resolve(&garbage)), "198.51.100.1", "falls back to X-Forwarded-For");
        let unknown = request("127.0.0.1", &[("forwarded", "for=unknown")]);
        assert_eq!(address(trusted.resolve(&unknown)), "127.0.0.1", "falls back to the peer");
        let mut binary = request("127.0.0.1", &[]);
        binary.headers_mut().insert("forwarded", HeaderValue::from_bytes(b"for=\xff").unwrap());
        assert_eq!(address(trusted.resolve(&binary)), "127.0.0.1");
    }

    #[test]
    fn entries_that_are_not_cidr_blocks_are_named() {
        let error = TrustedProxies::parse(&["10.0.0.0/8".to_owned(), "nginx".to_owned()]).unwrap_err().to_string();
        assert!(error.contains("\"nginx\"") && error.contains("not a CIDR"), "{error}");
        assert!(TrustedProxies::parse(&["10.0.0.0/33".to_owned()]).is_err());
        assert!(proxies(&["::1"]).trusts("::1".parse().unwrap()));
        assert!(proxies(&["127.0.0.1/32"]).trusts("::ffff:127.0.0.1".parse().unwrap()), "IPv4-mapped");
    }
}

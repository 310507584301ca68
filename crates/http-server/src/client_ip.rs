//! The client's IP address, believing `X-Forwarded-For` only from trusted proxies.

use actix_web::HttpRequest;
use std::net::IpAddr;

/// The client's address: the peer's, or, when the peer is a trusted proxy, the rightmost
/// `X-Forwarded-For` entry that is not itself a trusted proxy (entries to its left could have
/// been written by the client).
pub fn client_ip(req: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|entry| entry.trim().parse().ok())
        .collect();
    Some(forwarded.into_iter().rev().find(|ip| !trusted_proxies.contains(ip)).unwrap_or(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn request(peer: &str, forwarded: Option<&str>) -> HttpRequest {
        let mut req = TestRequest::default().peer_addr(format!("{peer}:5000").parse().unwrap());
        if let Some(value) = forwarded {
            req = req.insert_header(("X-Forwarded-For", value));
        }
        req.to_http_request()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let ip = client_ip(&request("203.0.113.9", Some("1.2.3.4")), &[]).unwrap();
        assert_eq!(ip.to_string(), "203.0.113.9");
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_forwarded_address_is_the_client() {
        let proxies: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let req = request("10.0.0.1", Some("6.6.6.6, 198.51.100.7, 10.0.0.2"));
        assert_eq!(client_ip(&req, &proxies).unwrap().to_string(), "198.51.100.7");
        let no_header = request("10.0.0.1", None);
        assert_eq!(client_ip(&no_header, &proxies).unwrap().to_string(), "10.0.0.1");
    }
}

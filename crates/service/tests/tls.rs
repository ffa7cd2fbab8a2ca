//! The service over TLS (issue 14: "TLS with rustls as an option for direct exposure"): a
//! throwaway certificate for `localhost`, the real service on SQLite behind it, and a rustls
//! client that trusts only that certificate. HTTPS reads and writes and a WSS feed work, with
//! the same keys as in the clear; plain HTTP to the TLS port gets no answer; a connection that
//! never finishes its handshake is dropped after the read timeout; bad PEM is refused by name.

#![allow(clippy::unwrap_used, reason = "a test fails loudly at the first surprise")]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use service::client::Client;
use service::tls::TlsPem;
use service::{Config, Running};
use tokio::io::AsyncReadExt as _;
use tokio_rustls::rustls;

const ADMIN: &str =
    "bk_00000000000007d5_7777777777777777777777777777777777777777777777777777777777777777";

/// A self-signed certificate for `localhost`, and its PEM pair.
fn certificate() -> (rustls::pki_types::CertificateDer<'static>, TlsPem) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = TlsPem {
        cert_chain: made.cert.pem().into_bytes(),
        private_key: made.signing_key.serialize_pem().into_bytes(),
    };
    (made.cert.der().clone(), pem)
}

async fn start(pem: TlsPem) -> Running {
    let config = Config {
        read_timeout: Duration::from_secs(1),
        tls: Some(pem),
        ..common::config(common::sqlite("tls"), ADMIN)
    };
    service::start(&config).await.unwrap()
}

/// A TLS session to `address` that trusts `root` alone and checks the name `localhost`.
async fn connect(
    address: SocketAddr,
    root: &rustls::pki_types::CertificateDer<'static>,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_and_wss_serve_what_plain_http_does() {
    let (root, pem) = certificate();
    let running = start(pem).await;
    let a = running.address;
    let host = format!("localhost:{}", a.port());

    let mut client = Client::over(connect(a, &root).await, &host).authorized(ADMIN);
    let health = client.get("/healthz").await.unwrap();
    assert_eq!((health.status, health.body.as_str()), (200, "ok"));
    let listed = client.get("/api/accounts").await.unwrap();
    assert_eq!(listed.status, 200, "{}", listed.body);
    let listed = listed.json();
    let ids: Vec<&str> =
        listed["accounts"].as_array().unwrap().iter().filter_map(|r| r["id"].as_str()).collect();
    assert!(ids.contains(&"hedged-book"), "the sample accounts over TLS: {ids:?}");
    // A write over the same session, and the key still gates it.
    let headers = [("Idempotency-Key", "tls-1")];
    let made = client.request("POST", "/api/accounts", &headers, br#"{"id":"over-tls"}"#);
    let made = made.await.unwrap();
    assert_eq!(made.status, 201, "{}", made.body);
    let mut anonymous = Client::over(connect(a, &root).await, &host);
    assert_eq!(anonymous.get("/api/accounts").await.unwrap().status, 401);

    // WSS: the live feed with the key as the bearer subprotocol and an https Origin.
    let tls = connect(a, &root).await;
    let request = {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request =
            format!("wss://{host}/ws?accounts=over-tls").into_client_request().unwrap();
        let headers = request.headers_mut();
        headers
            .insert("sec-websocket-protocol", format!("ballast, bearer.{ADMIN}").parse().unwrap());
        headers.insert("origin", format!("https://{host}").parse().unwrap());
        request
    };
    let (mut socket, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(30), socket.next()).await.unwrap();
    let hello: serde_json::Value =
        serde_json::from_str(&next.unwrap().unwrap().into_text().unwrap()).unwrap();
    assert_eq!(hello["type"], "hello", "{hello}");
    socket.send(tokio_tungstenite::tungstenite::Message::Close(None)).await.ok();

    // Plain HTTP to the TLS port is not answered as HTTP.
    let mut plain = Client::connect(a).await.unwrap();
    assert!(plain.get("/healthz").await.is_err(), "plain HTTP must get no HTTP reply");

    // A connection that never starts its handshake is dropped after the read timeout (1 s).
    let mut idle = tokio::net::TcpStream::connect(a).await.unwrap();
    let mut byte = [0_u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0) | Err(_))), "an idle handshake is closed: {read:?}");
    running.server.abort();
    running.recompute.abort();
}

#[test]
fn bad_pem_is_refused_by_field() {
    let (_, good) = certificate();
    let (_, other) = certificate();
    let field = |pem: &TlsPem| service::tls::acceptor(pem).err().map(|e| e.field);
    assert_eq!(field(&good), None);
    let no_chain = TlsPem { cert_chain: b"not a certificate".to_vec(), ..good.clone() };
    assert_eq!(field(&no_chain).as_deref(), Some("tls_cert"));
    let no_key = TlsPem { private_key: b"-----BEGIN NOTHING-----".to_vec(), ..good.clone() };
    assert_eq!(field(&no_key).as_deref(), Some("tls_key"));
    let mismatched = TlsPem { private_key: other.private_key, ..good.clone() };
    assert_eq!(field(&mismatched).as_deref(), Some("tls_key"));
    assert!(!format!("{good:?}").contains("PRIVATE KEY"), "Debug never shows the key");
}

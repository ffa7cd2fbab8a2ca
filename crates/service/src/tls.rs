//! TLS for direct exposure (`ballast serve --tls-cert FILE --tls-key FILE`), with rustls.
//!
//! The service speaks HTTP/1.1 (and WebSocket upgrades) inside TLS exactly as it does in the
//! clear: the same router, limits and timeouts. The handshake is bounded by the same read
//! timeout as a request's headers, so a client that opens a connection and never finishes its
//! handshake is dropped like a half-sent request. The crypto provider is `ring`, named
//! explicitly, so the build needs no C toolchain beyond `cc` and no process-wide default.

use std::fmt;
use std::sync::Arc;

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// A certificate chain and its private key, both PEM, as read from the operator's files.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsPem {
    /// The server's certificate first, then any intermediates (`-----BEGIN CERTIFICATE-----`).
    pub cert_chain: Vec<u8>,
    /// The private key of the first certificate: PKCS#8, PKCS#1 or SEC1, PEM.
    pub private_key: Vec<u8>,
}

/// The key never reaches a log: `Debug` shows the sizes only.
impl fmt::Debug for TlsPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPem")
            .field("cert_chain_bytes", &self.cert_chain.len())
            .field("private_key", &"<redacted>")
            .finish()
    }
}

/// The acceptor of `pem`: TLS 1.2 and 1.3 with rustls' safe defaults, no client certificates,
/// ALPN `http/1.1` (the only protocol the connection loop serves).
///
/// # Errors
/// `Invalid` naming `tls_cert` when the chain holds no certificate or a malformed one, and
/// `tls_key` when the key is missing, malformed or does not match the certificate.
pub fn acceptor(pem: &TlsPem) -> Result<tokio_rustls::TlsAcceptor, Error> {
    let chain = CertificateDer::pem_slice_iter(&pem.cert_chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid("tls_cert", format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(Error::invalid("tls_cert", "holds no CERTIFICATE block"));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.private_key)
        .map_err(|e| Error::invalid("tls_key", format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::invalid("tls_cert", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| Error::invalid("tls_key", format!("does not fit the certificate: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

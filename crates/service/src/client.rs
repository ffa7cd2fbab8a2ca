//! A minimal HTTP/1.1 client over one keep-alive connection, for the tests, the crash test and
//! the load generator: it adds nothing between the caller and the socket, so measured latency
//! is the server's plus loopback.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Longest response body accepted, bytes.
const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;

/// A byte stream a [`Client`] can run over: a TCP socket, or a TLS stream over one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// One connection.
pub struct Client {
    stream: BufReader<Box<dyn Stream>>,
    host: String,
    /// Sent as `Authorization: Bearer <key>` with every request, when set.
    key: Option<String>,
}

/// A response: status and body text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: String,
}

impl Reply {
    /// The body as JSON (`Null` when it is not JSON).
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.to_owned())
}

impl Client {
    /// Connects to `address`.
    ///
    /// # Errors
    /// The connection's.
    pub async fn connect(address: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(Client::over(stream, &address.to_string()))
    }

    /// A client over an established `stream` (a TLS session, say), sending `host` as `Host`.
    pub fn over(stream: impl Stream + 'static, host: &str) -> Client {
        Client { stream: BufReader::new(Box::new(stream)), host: host.to_owned(), key: None }
    }

    /// The same connection, sending `key` with every request.
    #[must_use]
    pub fn authorized(self, key: &str) -> Client {
        Client { key: Some(key.to_owned()), ..self }
    }

    /// Sends one request and reads its response.
    ///
    /// # Errors
    /// The socket's, or `InvalidData` for a response this client cannot read.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Reply> {
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
            self.host,
            body.len()
        );
        if !body.is_empty() {
            head.push_str("Content-Type: application/json\r\n");
        }
        if let Some(key) = &self.key {
            head.push_str("Authorization: Bearer ");
            head.push_str(key);
            head.push_str("\r\n");
        }
        for (name, value) in headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(body);
        self.stream.get_mut().write_all(&message).await?;
        self.read_reply().await
    }

    /// `GET path`.
    ///
    /// # Errors
    /// As [`Client::request`].
    pub async fn get(&mut self, path: &str) -> io::Result<Reply> {
        self.request("GET", path, &[], b"").await
    }

    async fn read_reply(&mut self) -> io::Result<Reply> {
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        let (mut length, mut chunked) = (0_usize, false);
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(bad("connection closed in headers"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else { continue };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().map_err(|_| bad("bad content-length"))?;
            } else if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            }
        }
        let body =
            if chunked { self.read_chunks().await? } else { self.read_exact(length).await? };
        let body = String::from_utf8(body).map_err(|_| bad("body is not UTF-8"))?;
        Ok(Reply { status, body })
    }

    async fn read_exact(&mut self, length: usize) -> io::Result<Vec<u8>> {
        if length > RESPONSE_BYTES_MAX {
            return Err(bad("response too large"));
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn read_chunks(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim(), 16).map_err(|_| bad("bad chunk"))?;
            if body.len() + size > RESPONSE_BYTES_MAX {
                return Err(bad("response too large"));
            }
            let mut chunk = self.read_exact(size).await?;
            body.append(&mut chunk);
            line.clear();
            self.stream.read_line(&mut line).await?;
            if size == 0 {
                return Ok(body);
            }
        }
    }
}

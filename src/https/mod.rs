//! The site as a browser meets it, at a given address: HTTPS with the domain as SNI and Host,
//! and plain HTTP on :80. `jeeves check` judges what it finds (the certificate against the
//! trusted roots, `/api/info`, the redirect); `up` waits with it for `/api/info` once a deploy
//! changed what HAProxy forwards to. One request per connection (HTTP/1.0: no chunked encoding
//! to undo; the server closes when done).

mod any_certificate;
mod x509;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

/// Any one connection, handshake or request, unless the caller has less time left.
pub const TIMEOUT: Duration = Duration::from_secs(15);

/// Which certificates a handshake accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// One for the domain from a trusted root: the system's, or those in `SSL_CERT_FILE`
    /// instead (rustls-native-certs reads only the variable's file when it is set).
    Roots,
    /// Any: the answer is what counts, not who signed the certificate (a staging one is
    /// untrusted by design; `check` judges the certificate).
    Any,
}

/// A request to the site at one address.
#[derive(Debug, Clone)]
pub struct Site<'a> {
    /// The address to connect to (the controller's public IP), whatever DNS says.
    pub ip: &'a str,
    /// SNI and `Host`.
    pub domain: &'a str,
    /// Each of connect, handshake and exchange gets at most this long.
    pub timeout: Duration,
}

/// An HTTPS answer: the served certificate's notAfter (Unix seconds) and the response.
pub struct Answer {
    pub not_after: i64,
    pub response: Response,
}

impl Site<'_> {
    /// `GET path` over TLS on :443.
    pub async fn https_get(&self, path: &str, trust: Trust) -> Result<Answer> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let config = match trust {
            Trust::Roots => builder.with_root_certificates(roots()?),
            Trust::Any => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(any_certificate::AnyCertificate(
                    provider,
                ))),
        }
        .with_no_client_auth();
        let name = ServerName::try_from(self.domain.to_string())?;
        let tcp = self.connect(443).await?;
        let tls = tokio::time::timeout(
            self.timeout,
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .with_context(|| format!("no TLS handshake within {}s", self.timeout.as_secs()))?
        .context("TLS handshake")?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .context("the server sent no certificate")?;
        let not_after = x509::not_after(leaf.as_ref())?;
        let response = self.request(tls, path).await?;
        Ok(Answer {
            not_after,
            response,
        })
    }

    /// `GET path` in plain HTTP on :80.
    pub async fn http_get(&self, path: &str) -> Result<Response> {
        let tcp = self.connect(80).await?;
        self.request(tcp, path).await
    }

    async fn connect(&self, port: u16) -> Result<TcpStream> {
        tokio::time::timeout(self.timeout, TcpStream::connect((self.ip, port)))
            .await
            .with_context(|| format!("no connection within {}s", self.timeout.as_secs()))?
            .context("cannot connect")
    }

    async fn request<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        mut stream: S,
        path: &str,
    ) -> Result<Response> {
        let req = format!(
            "GET {path} HTTP/1.0\r\nHost: {}\r\nUser-Agent: jeeves\r\nAccept: */*\r\n\r\n",
            self.domain
        );
        let exchange = async {
            stream.write_all(req.as_bytes()).await?;
            let mut raw = Vec::new();
            match stream.read_to_end(&mut raw).await {
                Ok(_) => {}
                // A server that closes without TLS close_notify (HAProxy does) ends the response.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
                Err(e) => return Err(anyhow::Error::from(e)),
            }
            Ok(raw)
        };
        let raw = tokio::time::timeout(self.timeout, exchange)
            .await
            .with_context(|| {
                format!(
                    "GET {path}: no complete answer within {}s",
                    self.timeout.as_secs()
                )
            })??;
        Response::parse(&raw).with_context(|| format!("GET {path}"))
    }
}

/// Nothing listens on the port (the host answered with a reset): no server there at all, as
/// opposed to one that is slow or unreachable.
pub fn refused(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    })
}

fn roots() -> Result<RootCertStore> {
    let mut roots = RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        // A malformed system certificate is skipped, as every TLS client does.
        let _ignored = roots.add(cert);
    }
    if roots.is_empty() {
        bail!("no trusted root certificates (the system's, or SSL_CERT_FILE's)");
    }
    Ok(roots)
}

pub struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Rocket.Chat's version when this is its `/api/info` answer: 200 with `"success": true`
    /// (`API.v1.success`); otherwise what it was instead.
    pub fn rocketchat(&self) -> Result<String, String> {
        let json: Option<serde_json::Value> = serde_json::from_slice(&self.body).ok();
        let success = json.as_ref().and_then(|j| j["success"].as_bool());
        match (self.status, success) {
            (200, Some(true)) => Ok(json
                .as_ref()
                .and_then(|j| j["version"].as_str())
                .unwrap_or("?")
                .to_string()),
            (200, _) => Err("HTTP 200 without \"success\": true".into()),
            (status, _) => Err(format!("HTTP {status}")),
        }
    }

    /// An HTTP/1.x response read to the end of the connection.
    fn parse(raw: &[u8]) -> Result<Response> {
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .context("no complete HTTP response header")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("not an HTTP status line: `{status_line}`"))?;
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: raw[split + 4..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_response() {
        let r = Response::parse(
            b"HTTP/1.1 301 Moved Permanently\r\ncontent-length: 0\r\nLocation: https://chat.example.com/\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 301);
        assert_eq!(r.header("location"), Some("https://chat.example.com/"));
        assert!(Response::parse(b"garbage").is_err());
    }

    #[test]
    fn rocketchat_answers_success_true_with_200() {
        let r = Response::parse(b"HTTP/1.0 200 OK\r\n\r\n{\"version\":\"7.0\",\"success\":true}")
            .unwrap();
        assert_eq!(r.rocketchat(), Ok("7.0".into()));
        let r = Response::parse(b"HTTP/1.0 200 OK\r\n\r\n{\"success\":false}").unwrap();
        assert_eq!(
            r.rocketchat(),
            Err("HTTP 200 without \"success\": true".into())
        );
        let r = Response::parse(b"HTTP/1.0 503 Service Unavailable\r\n\r\n<html>").unwrap();
        assert_eq!(r.rocketchat(), Err("HTTP 503".into()));
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_not_slow() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let site = Site {
            ip: "127.0.0.1",
            domain: "chat.example.com",
            timeout: Duration::from_secs(5),
        };
        let e = site.connect(port).await.unwrap_err();
        assert!(refused(&e), "{e:#}");
        assert!(!refused(&anyhow::anyhow!("no connection within 5s")));
    }
}

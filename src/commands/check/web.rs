//! The public side, as a browser meets it: HTTPS on the controller's public address with the
//! domain as SNI (a certificate valid for the domain, verified against the system's roots —
//! `SSL_CERT_FILE` adds others — and how long it has left), Rocket.Chat's `/api/info` through
//! HAProxy and Traefik, and :80 redirecting to https. The address is the inventory's, which
//! the DNS check compares with the record.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};

use super::Finding;
use crate::config::Settings;

/// Any one connection and request.
const TIMEOUT: Duration = Duration::from_secs(15);

const REPAIR_TLS: &str = "jeeves up --only tls";

pub(super) async fn check(settings: &Settings, ip: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    match https(settings, ip).await {
        Err(e) => out.push(Finding::fail(
            "https/certificate",
            format!(
                "no verified HTTPS from {ip}:443 for {}: {e:#}",
                settings.domain
            ),
            REPAIR_TLS,
        )),
        Ok((not_after, response)) => {
            out.push(certificate(settings, not_after));
            out.push(api_info(&response));
        }
    }
    out.push(match redirect(settings, ip).await {
        Ok(f) => f,
        Err(e) => Finding::fail(
            "http/redirect",
            format!("no answer on {ip}:80: {e:#}"),
            REPAIR_TLS,
        ),
    });
    out
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// The served certificate's remaining life against `check.cert_min_remaining` (fail) and
/// `tls.renew_before` (warn: the next `up` renews it).
fn certificate(settings: &Settings, not_after: i64) -> Finding {
    let left = not_after - now();
    let days = |secs: u64| secs as f64 / 86_400.0;
    let until = humantime::format_rfc3339_seconds(
        UNIX_EPOCH + Duration::from_secs(not_after.max(0) as u64),
    );
    let said = format!(
        "valid for {}, {:.1} days left (until {until})",
        settings.domain,
        left as f64 / 86_400.0
    );
    let min = settings.check.cert_min_remaining.as_secs();
    let renew = settings.tls.renew_before.as_secs();
    if left < min as i64 {
        Finding::fail(
            "https/certificate",
            format!(
                "{said}: under check.cert_min_remaining ({:.0} days)",
                days(min)
            ),
            "jeeves up --only tls (renews a certificate with less than tls.renew_before left)",
        )
    } else if left < renew as i64 {
        Finding::warn(
            "https/certificate",
            format!(
                "{said}: renewal due (tls.renew_before {:.0} days)",
                days(renew)
            ),
            REPAIR_TLS,
        )
    } else {
        Finding::ok("https/certificate", said)
    }
}

/// `/api/info` answers 200 with `"success": true` (Rocket.Chat's `API.v1.success`).
fn api_info(response: &Response) -> Finding {
    let json: Option<serde_json::Value> = serde_json::from_slice(&response.body).ok();
    let success = json.as_ref().and_then(|j| j["success"].as_bool());
    match (response.status, success) {
        (200, Some(true)) => {
            let version = json
                .as_ref()
                .and_then(|j| j["version"].as_str())
                .unwrap_or("?");
            Finding::ok(
                "https/api-info",
                format!("Rocket.Chat {version} answers /api/info"),
            )
        }
        (status, _) => Finding::fail(
            "https/api-info",
            format!(
                "GET /api/info answered HTTP {status}{}",
                if status == 200 {
                    " without \"success\": true"
                } else {
                    ""
                }
            ),
            "see the pods/* and helm/* checks; then jeeves up --only deploy",
        ),
    }
}

/// GET / on :80 with the domain as Host: HAProxy's `301` to `https://<domain>/`.
async fn redirect(settings: &Settings, ip: &str) -> Result<Finding> {
    let tcp = connect(ip, 80).await?;
    let response = request(tcp, &settings.domain, "/").await?;
    let location = response.header("location").unwrap_or_default();
    let want = format!("https://{}/", settings.domain);
    Ok(if response.status == 301 && location == want {
        Finding::ok("http/redirect", format!(":80 redirects to {want}"))
    } else {
        Finding::fail(
            "http/redirect",
            format!(
                ":80 answered HTTP {} (location `{location}`), not 301 to {want}",
                response.status
            ),
            REPAIR_TLS,
        )
    })
}

async fn connect(ip: &str, port: u16) -> Result<TcpStream> {
    tokio::time::timeout(TIMEOUT, TcpStream::connect((ip, port)))
        .await
        .with_context(|| format!("no connection within {}s", TIMEOUT.as_secs()))?
        .context("cannot connect")
}

/// A verified TLS handshake for the domain, then `GET /api/info`: the certificate's notAfter
/// and the response.
async fn https(settings: &Settings, ip: &str) -> Result<(i64, Response)> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate is skipped, as every TLS client does.
        let _ignored = roots.add(cert);
    }
    if roots.is_empty() {
        bail!("no trusted root certificates (system store, SSL_CERT_FILE)");
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(settings.domain.clone())?;
    let tcp = connect(ip, 443).await?;
    let tls = tokio::time::timeout(
        TIMEOUT,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .context("no TLS handshake within 15s")?
    .context("TLS handshake")?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .context("the server sent no certificate")?;
    let not_after = super::x509::not_after(leaf.as_ref())?;
    let response = request(tls, &settings.domain, "/api/info").await?;
    Ok((not_after, response))
}

pub(super) struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
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

/// HTTP/1.0 (no chunked encoding to undo; the server closes when done).
async fn request<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    path: &str,
) -> Result<Response> {
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: jeeves-check\r\nAccept: */*\r\n\r\n"
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
    let raw = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| {
            format!(
                "GET {path}: no complete answer within {}s",
                TIMEOUT.as_secs()
            )
        })??;
    Response::parse(&raw).with_context(|| format!("GET {path}"))
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
        let r = Response::parse(b"HTTP/1.0 200 OK\r\n\r\n{\"success\":true}").unwrap();
        assert_eq!(api_info(&r).status, crate::report::CheckStatus::Ok);
        let r = Response::parse(b"HTTP/1.0 503 Service Unavailable\r\n\r\n<html>").unwrap();
        assert_eq!(api_info(&r).status, crate::report::CheckStatus::Fail);
        assert!(Response::parse(b"garbage").is_err());
    }
}

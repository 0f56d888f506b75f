//! The service's metrics for Prometheus: `GET /metrics` on a loopback TCP address.
//!
//! Deliberately tiny: one request per connection, `HTTP/1.0`-style close, a request head
//! of at most [`MAX_REQUEST_HEAD`] bytes read within [`REQUEST_TIMEOUT`]. Prometheus'
//! scraper needs nothing more, and a full HTTP stack would be the largest dependency of
//! the service for one read-only page.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The longest request head read.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;

/// How long a client may take to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Renders the page for each scrape.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds `address` and returns the bound address (port 0 picks one) and the serving
/// future. Only loopback addresses are accepted: the metrics carry user activity.
///
/// # Errors
///
/// A non-loopback address, or the bind failing.
pub async fn bind(
    address: SocketAddr,
    render: Render,
) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
    if !address.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("the metrics address {address} is not a loopback address"),
        ));
    }
    let listener = TcpListener::bind(address).await?;
    let bound = listener.local_addr()?;
    let serve = async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    let render = Arc::clone(&render);
                    tokio::spawn(async move {
                        if let Err(error) = answer(stream, &render).await {
                            tracing::debug!(%error, "metrics request failed");
                        }
                    });
                }
                Err(error) => {
                    tracing::warn!(%error, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    };
    Ok((bound, serve))
}

async fn answer(mut stream: TcpStream, render: &Render) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0_u8; 1024];
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST_HEAD {
                return Ok(false);
            }
        }
    })
    .await
    .unwrap_or(Ok(false))?;
    if !complete {
        return stream
            .write_all(
                b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            )
            .await;
    }
    let request_line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let request_line = String::from_utf8_lossy(request_line);
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next(), parts.next());
    let (status, body, content_type) = match (method, path) {
        (Some("GET"), Some("/metrics")) => (
            "200 OK",
            render(),
            "text/plain; version=0.0.4; charset=utf-8",
        ),
        (Some("GET"), _) => ("404 Not Found", "try /metrics\n".to_owned(), "text/plain"),
        _ => (
            "405 Method Not Allowed",
            "only GET\n".to_owned(),
            "text/plain",
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

//! A small blocking HTTP/1.1 client over `std::net::TcpStream`, enough for a node on the same
//! machine or LAN: keep-alive, `Content-Length` and chunked bodies, Basic auth, timeouts.
//! Plain `http://` only (Core's RPC and REST have no TLS; put a TLS-terminating proxy in front
//! of a remote Esplora). One [`HttpConn`] is one connection; callers that want parallel
//! requests hold one per thread (see [`HttpPool`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Errors of the HTTP layer, each naming the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The URL is not `http://host[:port][/path]`.
    #[error("{url:?} is not an http:// URL ({reason})")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Could not connect at all.
    #[error(
        "cannot connect to {url}: {source}; is the server running and listening there \
         (for Bitcoin Core: -server, -rpcport, -rpcbind, -rpcallowip; -rest for REST)?"
    )]
    Connect {
        /// The URL.
        url: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The connection broke or timed out mid-request.
    #[error("{url}: connection failed during the request: {source} (did the server stop?)")]
    Io {
        /// The URL with the path asked for.
        url: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The reply is not valid HTTP/1.1.
    #[error("{url}: malformed HTTP reply: {reason}")]
    Protocol {
        /// The URL with the path asked for.
        url: String,
        /// What is wrong.
        reason: String,
    },
}

/// A parsed `http://host:port/base` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address.
    pub host: String,
    /// Port (80 when not given).
    pub port: u16,
    /// Path prefix without a trailing slash ("" for none).
    pub base: String,
}

impl HttpUrl {
    /// Parses `http://host[:port][/path]`.
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = |reason: &str| HttpError::BadUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let rest = if let Some(r) = url.strip_prefix("http://") {
            r
        } else if url.starts_with("https://") {
            return Err(bad(
                "https is not supported by this client; use http on loopback or a TLS-terminating proxy",
            ));
        } else {
            return Err(bad("it must start with http://"));
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad(
                "credentials in the URL are not accepted; use a cookie or password file",
            ));
        }
        let (host, port) = if let Some(stripped) = authority.strip_prefix('[') {
            // [v6]:port
            let end = stripped
                .find(']')
                .ok_or_else(|| bad("unclosed [ in host"))?;
            let host = &stripped[..end];
            let port = match &stripped[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| bad("bad port"))?,
            };
            (host.to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), p.parse().map_err(|_| bad("bad port"))?),
                None => (authority.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            host,
            port,
            base: path.trim_end_matches('/').to_string(),
        })
    }

    /// `http://host:port` plus `path` (which starts with '/').
    pub fn with_path(&self, path: &str) -> String {
        if self.host.contains(':') {
            format!("http://[{}]:{}{}{}", self.host, self.port, self.base, path)
        } else {
            format!("http://{}:{}{}{}", self.host, self.port, self.base, path)
        }
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.with_path(""))
    }
}

/// A reply: status, content type and body.
#[derive(Debug)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// The Content-Type header, lower-cased ("" when absent).
    pub content_type: String,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy), trimmed, at most 300 characters: for error messages.
    pub fn body_snippet(&self) -> String {
        let s = String::from_utf8_lossy(&self.body);
        let s = s.trim();
        match s.char_indices().nth(300) {
            Some((i, _)) => format!("{}…", &s[..i]),
            None => s.to_string(),
        }
    }
}

/// Largest body accepted (a block is at most 4 MB; hex doubles it; JSON batches add more).
const MAX_BODY: usize = 64 << 20;
const MAX_HEADER_LINES: usize = 100;

/// One keep-alive connection to one server.
pub struct HttpConn {
    url: HttpUrl,
    auth: Option<String>,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

impl HttpConn {
    /// A connection (opened lazily) with an optional `Authorization` header value.
    pub fn new(url: HttpUrl, auth: Option<String>, timeout: Duration) -> Self {
        Self {
            url,
            auth,
            timeout,
            stream: None,
        }
    }

    fn connect(&self) -> Result<BufReader<TcpStream>, HttpError> {
        let err = |source| HttpError::Connect {
            url: self.url.to_string(),
            source,
        };
        let addrs: Vec<_> = (self.url.host.as_str(), self.url.port)
            .to_socket_addrs()
            .map_err(err)?
            .collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.timeout) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    s.set_read_timeout(Some(self.timeout)).map_err(err)?;
                    s.set_write_timeout(Some(self.timeout)).map_err(err)?;
                    return Ok(BufReader::with_capacity(1 << 16, s));
                }
                Err(e) => last = e,
            }
        }
        Err(err(last))
    }

    /// Sends one request and reads the reply into `buf` (its old contents are replaced). A
    /// kept-alive connection the server closed meanwhile is reopened once.
    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        buf: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let reused = self.stream.is_some();
        let mut buf = Some(buf);
        match self.try_request(method, path, body, &mut buf) {
            Err(HttpError::Io { .. }) if reused => {
                // The server may have closed an idle connection: try once on a fresh one.
                self.stream = None;
                self.try_request(method, path, body, &mut buf)
            }
            r => r,
        }
    }

    fn try_request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        buf: &mut Option<Vec<u8>>,
    ) -> Result<Response, HttpError> {
        if self.stream.is_none() {
            self.stream = Some(self.connect()?);
        }
        let full = format!("{}{}", self.url.base, path);
        let url = self.url.with_path(path);
        let io = |source| HttpError::Io {
            url: url.clone(),
            source,
        };
        let proto = |reason: String| HttpError::Protocol {
            url: url.clone(),
            reason,
        };
        let mut head = format!(
            "{method} {full} HTTP/1.1\r\nHost: {}:{}\r\nConnection: keep-alive\r\nUser-Agent: tesoro\r\n",
            self.url.host, self.url.port
        );
        if let Some(a) = &self.auth {
            head.push_str("Authorization: ");
            head.push_str(a);
            head.push_str("\r\n");
        }
        if let Some((ct, b)) = body {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n",
                b.len()
            ));
        }
        head.push_str("\r\n");
        let result = (|| {
            let Some(stream) = self.stream.as_mut() else {
                return Err(proto("no connection".into()));
            };
            {
                let w = stream.get_mut();
                let mut out = head.into_bytes();
                if let Some((_, b)) = body {
                    out.extend_from_slice(b);
                }
                w.write_all(&out).map_err(io)?;
                w.flush().map_err(io)?;
            }
            let mut line = String::new();
            let n = stream.read_line(&mut line).map_err(io)?;
            if n == 0 {
                return Err(io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before a reply",
                )));
            }
            let mut parts = line.split_whitespace();
            let version = parts.next().unwrap_or("");
            if !version.starts_with("HTTP/1.") {
                return Err(proto(format!("status line {:?}", line.trim())));
            }
            let status: u16 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| proto(format!("status line {:?}", line.trim())))?;
            let mut content_length: Option<usize> = None;
            let mut chunked = false;
            let mut close = version == "HTTP/1.0";
            let mut content_type = String::new();
            let mut lines = 0;
            loop {
                line.clear();
                let n = stream.read_line(&mut line).map_err(io)?;
                if n == 0 {
                    return Err(io(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed in the headers",
                    )));
                }
                let l = line.trim_end();
                if l.is_empty() {
                    break;
                }
                lines += 1;
                if lines > MAX_HEADER_LINES {
                    return Err(proto("too many header lines".into()));
                }
                let Some((k, v)) = l.split_once(':') else {
                    return Err(proto(format!("header line {l:?}")));
                };
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => {
                        content_length = Some(
                            v.parse()
                                .map_err(|_| proto(format!("Content-Length {v:?}")))?,
                        )
                    }
                    "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                    "connection" => close = v.eq_ignore_ascii_case("close"),
                    "content-type" => content_type = v.to_ascii_lowercase(),
                    _ => {}
                }
            }
            let mut body = buf.take().unwrap_or_default();
            body.clear();
            if chunked {
                loop {
                    line.clear();
                    stream.read_line(&mut line).map_err(io)?;
                    let size_hex = line.trim().split(';').next().unwrap_or("");
                    let size = usize::from_str_radix(size_hex, 16)
                        .map_err(|_| proto(format!("chunk size {:?}", line.trim())))?;
                    if size == 0 {
                        // Trailers until the empty line.
                        loop {
                            line.clear();
                            let n = stream.read_line(&mut line).map_err(io)?;
                            if n == 0 || line.trim().is_empty() {
                                break;
                            }
                        }
                        break;
                    }
                    if body.len() + size > MAX_BODY {
                        return Err(proto(format!("body larger than {MAX_BODY} bytes")));
                    }
                    let start = body.len();
                    body.resize(start + size, 0);
                    stream.read_exact(&mut body[start..]).map_err(io)?;
                    line.clear();
                    stream.read_line(&mut line).map_err(io)?;
                }
            } else if let Some(len) = content_length {
                if len > MAX_BODY {
                    return Err(proto(format!("body of {len} bytes is too large")));
                }
                body.resize(len, 0);
                stream.read_exact(&mut body).map_err(io)?;
            } else {
                close = true;
                stream
                    .by_ref()
                    .take(MAX_BODY as u64 + 1)
                    .read_to_end(&mut body)
                    .map_err(io)?;
                if body.len() > MAX_BODY {
                    return Err(proto(format!("body larger than {MAX_BODY} bytes")));
                }
            }
            Ok((
                Response {
                    status,
                    content_type,
                    body,
                },
                close,
            ))
        })();
        match result {
            Ok((r, close)) => {
                if close {
                    self.stream = None;
                }
                Ok(r)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// Connections to one server, shared by threads: each request takes an idle connection (or
/// opens one) and puts it back, so N threads keep N requests in flight.
pub struct HttpPool {
    url: HttpUrl,
    auth: Mutex<Option<String>>,
    timeout: Duration,
    idle: Mutex<Vec<HttpConn>>,
}

impl HttpPool {
    /// A pool for `url` sending `auth` as the `Authorization` header.
    pub fn new(url: HttpUrl, auth: Option<String>, timeout: Duration) -> Self {
        Self {
            url,
            auth: Mutex::new(auth),
            timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Replaces the `Authorization` header (a node restarted with a new cookie); idle
    /// connections are dropped so every later request carries the new one.
    pub fn set_auth(&self, auth: Option<String>) {
        *self.auth.lock().unwrap_or_else(PoisonError::into_inner) = auth;
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// The server's URL.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// One request on an idle (or new) connection.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &[u8])>,
        buf: Vec<u8>,
    ) -> Result<Response, HttpError> {
        let conn = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut conn = match conn {
            Some(c) => c,
            None => {
                let auth = self
                    .auth
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                HttpConn::new(self.url.clone(), auth, self.timeout)
            }
        };
        let r = conn.request(method, path, body, buf);
        if r.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < 64 {
                idle.push(conn);
            }
        }
        r
    }
}

/// Standard base64 (RFC 4648, with padding), for Basic auth.
pub fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= c.len() {
                out.push(T[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }

    #[test]
    fn urls_parse() {
        let u = HttpUrl::parse("http://127.0.0.1:18443").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base.as_str()),
            ("127.0.0.1", 18443, "")
        );
        let u = HttpUrl::parse("http://h/api/").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.base.as_str()),
            ("h", 80, "/api")
        );
        let u = HttpUrl::parse("http://[::1]:8332").unwrap();
        assert_eq!(u.with_path("/x"), "http://[::1]:8332/x");
        assert!(HttpUrl::parse("https://x").is_err());
        assert!(HttpUrl::parse("http://u:p@x").is_err());
        assert!(HttpUrl::parse("ftp://x").is_err());
    }
}

//! A raw XMPP client: writes exact bytes and reads what the server sends,
//! so that tests can assert on the wire.

use crate::scram::{Hash, ScramClient};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

/// The connection under the XML: plain TCP, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn socket(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.sock,
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(data),
            Transport::Tls(t) => t.write_all(data).and_then(|_| t.flush()),
        }
    }
}

/// A client TLS config trusting exactly the certificate in `ca_pem` (the
/// server's generated self-signed one), as a client told to trust it would.
pub fn tls_config(ca_pem: &std::path::Path, alpn: bool) -> Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca_pem)? {
        roots.add(cert?)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if alpn {
        config.alpn_protocols = vec![b"xmpp-client".to_vec()];
    }
    // Every handshake a full one, as for a client's first connection.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Run a client handshake for `localhost` over `socket`.
fn handshake(
    socket: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let mut conn = rustls::ClientConnection::new(config, name)?;
    let mut socket = socket;
    socket.set_read_timeout(Some(Duration::from_secs(10)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut socket)?;
    }
    Ok(rustls::StreamOwned::new(conn, socket))
}

pub struct RawClient {
    stream: Transport,
    /// Received and not yet consumed.
    buffer: String,
    pending_bytes: Vec<u8>,
    closed: bool,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(RawClient {
            stream: Transport::Plain(stream),
            buffer: String::new(),
            pending_bytes: Vec::new(),
            closed: false,
        })
    }

    /// Connect to a direct TLS (XEP-0368) listener (see [`tls_config`]).
    pub fn connect_direct_tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<RawClient> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        let tls = handshake(stream, config)?;
        Ok(RawClient {
            stream: Transport::Tls(Box::new(tls)),
            buffer: String::new(),
            pending_bytes: Vec::new(),
            closed: false,
        })
    }

    /// Send `<starttls/>` (plus `trailer` in the same write), wait for
    /// `<proceed/>` and run the handshake. The caller opens the new stream.
    pub fn starttls_with_trailer(
        &mut self,
        config: Arc<rustls::ClientConfig>,
        trailer: &str,
    ) -> Result<()> {
        self.send(&format!(
            "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>{trailer}"
        ))?;
        self.read_until("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")?;
        if !self.buffer.is_empty() {
            bail!("plaintext after <proceed/>: {:?}", self.buffer);
        }
        let Transport::Plain(socket) = &self.stream else {
            bail!("already encrypted");
        };
        let tls = handshake(socket.try_clone()?, config)?;
        self.stream = Transport::Tls(Box::new(tls));
        Ok(())
    }

    /// STARTTLS trusting `ca_pem`.
    pub fn starttls(&mut self, ca_pem: &std::path::Path) -> Result<()> {
        self.starttls_with_trailer(tls_config(ca_pem, false)?, "")
    }

    /// RFC 9266 channel-binding data of this TLS session.
    pub fn tls_exporter(&self) -> Result<Vec<u8>> {
        let Transport::Tls(tls) = &self.stream else {
            bail!("not encrypted");
        };
        Ok(tls
            .conn
            .export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)?
            .to_vec())
    }

    /// The negotiated TLS version, if encrypted.
    pub fn tls_version(&self) -> Option<rustls::ProtocolVersion> {
        match &self.stream {
            Transport::Tls(t) => t.conn.protocol_version(),
            Transport::Plain(_) => None,
        }
    }

    /// The socket, for benchmarks that do their own reading (plain TCP
    /// only: under TLS the socket carries records, not XML).
    pub fn into_stream(self) -> Result<TcpStream> {
        match self.stream {
            Transport::Plain(s) => Ok(s),
            Transport::Tls(_) => bail!("an encrypted client has no plain socket"),
        }
    }

    pub fn send(&mut self, data: &str) -> Result<()> {
        self.send_bytes(data.as_bytes())
    }

    pub fn send_bytes(&mut self, data: &[u8]) -> Result<()> {
        self.stream.write_all(data)?;
        Ok(())
    }

    /// Read until `needle` has arrived; return everything up to and
    /// including it.
    pub fn read_until(&mut self, needle: &str) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.buffer.find(needle) {
                let rest = self.buffer.split_off(i + needle.len());
                return Ok(std::mem::replace(&mut self.buffer, rest));
            }
            if self.closed {
                bail!("connection closed before {needle:?}; got {:?}", self.buffer);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out waiting for {needle:?}; got {:?}", self.buffer);
            }
            self.fill(left)?;
        }
    }

    /// Log in as `user` with `resource` and send `presence` (initial
    /// presence); returns once the server has sent it back to this
    /// resource (RFC 6121 section 4.2.2), so the session is available.
    pub fn available(
        addr: SocketAddr,
        user: &str,
        password: &str,
        resource: &str,
        presence: &str,
    ) -> Result<RawClient> {
        let (mut c, jid) = RawClient::login(addr, user, password, Some(resource))?;
        c.send(presence)?;
        c.read_until(&format!("<presence from='{jid}'"))?;
        if !c.read_until(">")?.ends_with("/>") {
            c.read_until("</presence>")?;
        }
        Ok(c)
    }

    /// Wait for the server to close the connection; return what it sent.
    pub fn read_to_close(&mut self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("server did not close; got {:?}", self.buffer);
            }
            self.fill(left)?;
        }
        Ok(std::mem::take(&mut self.buffer))
    }

    fn fill(&mut self, wait: Duration) -> Result<()> {
        self.stream
            .socket()
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => {
                self.pending_bytes.extend_from_slice(&chunk[..n]);
                // Keep incomplete UTF-8 sequences for the next read.
                let valid = match std::str::from_utf8(&self.pending_bytes) {
                    Ok(s) => s.len(),
                    Err(e) => e.valid_up_to(),
                };
                let text = std::str::from_utf8(&self.pending_bytes[..valid])
                    .context("server sent bad UTF-8")?;
                self.buffer.push_str(text);
                self.pending_bytes.drain(..valid);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof | ErrorKind::InvalidData
                ) =>
            {
                self.closed = true
            }
            Err(e) => return Err(e.into()),
        }
        Ok(())
    }

    /// Read whatever has arrived, waiting at most a millisecond.
    pub fn poll(&mut self) -> Result<()> {
        self.fill(Duration::from_millis(1))
    }

    /// What has been read and not yet consumed by `read_until`.
    pub fn buffered(&self) -> &str {
        &self.buffer
    }

    /// Median round trip of `n` server pings (XEP-0199), 5 ms apart.
    pub fn ping_median(&mut self, n: usize) -> Result<Duration> {
        let mut times = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            self.send(&format!(
                "<iq type='get' id='p{i}' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>"
            ))?;
            self.read_until(&format!("id='p{i}'"))?;
            self.read_until("/>")?;
            times.push(t.elapsed());
            std::thread::sleep(Duration::from_millis(5));
        }
        times.sort();
        Ok(times[n / 2])
    }

    /// Open the stream and read up to the end of the features.
    pub fn open_stream(&mut self) -> Result<String> {
        self.send(HEADER)?;
        self.read_until("</stream:features>")
    }

    /// SASL PLAIN; returns the server's verdict element.
    pub fn plain(&mut self, user: &str, password: &str) -> Result<String> {
        let payload = B64.encode(format!("\0{user}\0{password}"));
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{payload}</auth>"
        ))?;
        self.read_verdict()
    }

    /// SASL SCRAM with the independent client; verifies the server's
    /// signature on success. Returns the verdict element.
    pub fn scram(&mut self, hash: Hash, user: &str, password: &str) -> Result<String> {
        let client = ScramClient::new(hash, user, password, "rookery-test-nonce-0123");
        self.scram_with(hash.mechanism(), client)
    }

    /// SCRAM under `mechanism` with a prepared client (e.g. one that binds
    /// to the channel).
    pub fn scram_with(&mut self, mechanism: &str, mut client: ScramClient) -> Result<String> {
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{mechanism}'>{}</auth>",
            B64.encode(client.client_first())
        ))?;
        let reply = self.read_until(">")?;
        if !reply.starts_with("<challenge") {
            let rest = if reply.ends_with("/>") {
                String::new()
            } else {
                self.read_until("</failure>")?
            };
            return Ok(reply + &rest);
        }
        let first = self.read_until("</challenge>")?;
        let first = String::from_utf8(B64.decode(first.trim_end_matches("</challenge>"))?)?;
        let last = client.client_final(&first)?;
        self.send(&format!(
            "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
            B64.encode(last)
        ))?;
        let verdict = self.read_verdict()?;
        if let Some(v) = verdict
            .strip_prefix("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
            .and_then(|s| s.strip_suffix("</success>"))
        {
            client.verify_server_final(&String::from_utf8(B64.decode(v)?)?)?;
        }
        Ok(verdict)
    }

    fn read_verdict(&mut self) -> Result<String> {
        let head = self.read_until(">")?;
        if head.ends_with("/>") {
            return Ok(head);
        }
        let close = if head.starts_with("<success") {
            "</success>"
        } else {
            "</failure>"
        };
        Ok(head + &self.read_until(close)?)
    }

    /// Bind `resource` (or let the server pick with `None`); returns the
    /// full JID.
    pub fn bind(&mut self, resource: Option<&str>) -> Result<String> {
        let inner = resource
            .map(|r| format!("<resource>{r}</resource>"))
            .unwrap_or_default();
        self.send(&format!(
            "<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>{inner}</bind></iq>"
        ))?;
        let reply = self.read_until("</iq>")?;
        let jid = reply
            .split("<jid>")
            .nth(1)
            .and_then(|r| r.split("</jid>").next())
            .with_context(|| format!("no jid in {reply:?}"))?;
        Ok(jid.to_owned())
    }

    /// Open, PLAIN-authenticate, restart and bind.
    pub fn login(
        addr: SocketAddr,
        user: &str,
        password: &str,
        resource: Option<&str>,
    ) -> Result<(RawClient, String)> {
        let mut c = RawClient::connect(addr)?;
        c.open_stream()?;
        let verdict = c.plain(user, password)?;
        if !verdict.starts_with("<success") {
            bail!("login failed: {verdict}");
        }
        c.open_stream()?;
        let jid = c.bind(resource)?;
        Ok((c, jid))
    }
}

//! A raw XMPP client: writes exact bytes and reads what the server sends,
//! so that tests can assert on the wire.

use crate::scram::{Hash, ScramClient};
use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";

pub struct RawClient {
    stream: TcpStream,
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
            stream,
            buffer: String::new(),
            pending_bytes: Vec::new(),
            closed: false,
        })
    }

    /// The socket, for benchmarks that do their own reading.
    pub fn into_stream(self) -> TcpStream {
        self.stream
    }

    pub fn send(&mut self, data: &str) -> Result<()> {
        self.stream.write_all(data.as_bytes())?;
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
            Err(e) if e.kind() == ErrorKind::ConnectionReset => self.closed = true,
            Err(e) => return Err(e.into()),
        }
        Ok(())
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
        let mut client = ScramClient::new(hash, user, password, "rookery-test-nonce-0123");
        self.send(&format!(
            "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{}</auth>",
            hash.mechanism(),
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

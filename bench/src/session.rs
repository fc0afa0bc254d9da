//! One client session: connect from a chosen source address, open the
//! stream, optionally STARTTLS, authenticate (PLAIN or SCRAM), bind, and
//! optionally fetch the roster and send initial presence.

use crate::splitter::{Event, Splitter};
use async_io::{Async, Timer};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rookery_tests::scram::{Hash, ScramClient};
use smol::future::FutureExt as _;
use smol::io::{AsyncReadExt, AsyncWriteExt};
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// Why a session failed, by stage and kind: what the report counts.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Failure {
    pub stage: &'static str,
    pub kind: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.stage, self.kind)
    }
}

impl Failure {
    pub fn new(stage: &'static str, kind: impl Into<String>) -> Failure {
        Failure {
            stage,
            kind: kind.into(),
        }
    }

    fn io(stage: &'static str) -> impl Fn(io::Error) -> Failure {
        move |e| Failure::new(stage, format!("{:?}", e.kind()))
    }

    /// What a server's refusal says: the condition of a `<failure/>` or a
    /// stream error, or the element's name.
    fn refused(stage: &'static str, element: &str) -> Failure {
        Failure::new(stage, condition(element))
    }
}

/// The first child element's name of `element` (`not-authorized` of a SASL
/// failure, `conflict` of a stream error), or the element's own name.
pub fn condition(element: &str) -> String {
    let name_of = |s: &str| {
        s.trim_start_matches('<')
            .split(|c: char| c.is_whitespace() || c == '/' || c == '>')
            .next()
            .unwrap_or("")
            .to_owned()
    };
    match element.find('>') {
        Some(end) if !element[..end].ends_with('/') => {
            let inner = element[end + 1..].trim_start();
            if inner.starts_with('<') && !inner.starts_with("</") {
                return format!("{} {}", name_of(element), name_of(inner));
            }
            name_of(element)
        }
        _ => name_of(element),
    }
}

pub enum Stream {
    Plain(Async<TcpStream>),
    Tls(Box<futures_rustls::client::TlsStream<Async<TcpStream>>>),
}

impl Stream {
    pub async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.write_all(data).await,
            Stream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    pub async fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buffer).await,
            Stream::Tls(s) => s.read(buffer).await,
        }
    }
}

/// Received bytes and the splitter that finds elements in them.
///
/// Reading is cancel-safe (a read raced against a timer may be dropped):
/// bytes count only once a read has returned them.
#[derive(Default)]
pub struct Reader {
    /// `filled` bytes received, then room for the next read.
    buffer: Vec<u8>,
    filled: usize,
    consumed: usize,
    splitter: Splitter,
}

const READ_SIZE: usize = 16 * 1024;

impl Reader {
    /// Read once more from `stream`; 0 means the peer closed.
    pub async fn read_from(&mut self, stream: &mut Stream) -> io::Result<usize> {
        if self.consumed > 0 {
            self.buffer.copy_within(self.consumed..self.filled, 0);
            self.filled -= self.consumed;
            self.splitter.consumed(self.consumed);
            self.consumed = 0;
        }
        if self.buffer.len() < self.filled + READ_SIZE {
            self.buffer.resize(self.filled + READ_SIZE, 0);
        }
        let n = stream.read(&mut self.buffer[self.filled..]).await?;
        self.filled += n;
        Ok(n)
    }

    /// The next complete item already read.
    pub fn pop(&mut self) -> Option<Item<'_>> {
        let event = self.splitter.next(&self.buffer[..self.filled])?;
        Some(match event {
            Event::Header(r) => {
                self.consumed = r.end;
                Item::Header
            }
            Event::Element(r) => {
                self.consumed = r.end;
                Item::Element(&self.buffer[r])
            }
            Event::End => Item::End,
        })
    }

    /// Start over after a stream restart; nothing may be pending.
    pub fn restart(&mut self) {
        self.filled = 0;
        self.consumed = 0;
        self.splitter.reset();
    }

    /// Give the buffer's memory back (an idle session holds none).
    pub fn shrink(&mut self) {
        if self.consumed == self.filled {
            self.buffer = Vec::new();
            self.filled = 0;
            self.consumed = 0;
            self.splitter.reset_positions();
        }
    }
}

pub enum Item<'a> {
    Header,
    Element(&'a [u8]),
    End,
}

/// How sessions log in; shared by all of them.
pub struct LoginSpec {
    pub server: SocketAddr,
    pub domain: String,
    pub mechanism: Mechanism,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub roster: bool,
    pub presence: bool,
    /// Enable XEP-0198 with resumption after binding.
    pub stream_management: bool,
    pub timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(Hash),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(h) => h.mechanism(),
        }
    }
}

/// An account, with the SCRAM `SaltedPassword` if it was derived ahead.
pub struct Account {
    pub username: String,
    pub password: String,
    pub salted: Option<Salted>,
}

#[derive(Clone, Debug)]
pub struct Salted {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub password: Vec<u8>,
}

/// A logged-in, bound session.
pub struct Session {
    pub stream: Stream,
    pub reader: Reader,
    pub jid: String,
    /// The roster result, when the login fetched it.
    pub roster: Option<String>,
}

impl Session {
    pub async fn send(&mut self, data: &[u8]) -> io::Result<()> {
        self.stream.write_all(data).await
    }
}

/// Connect to `server`, from `source` when given (so that many sessions
/// are not limited by one address's ephemeral ports).
pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<Async<TcpStream>> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(server), Type::STREAM, None)?;
    if let Some(ip) = source {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    match socket.connect(&server.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INPROGRESS.raw_os_error()) => {}
        Err(e) => return Err(e),
    }
    let stream = Async::new(TcpStream::from(socket))?;
    stream.writable().await?;
    if let Some(e) = stream.get_ref().take_error()? {
        return Err(e);
    }
    Ok(stream)
}

/// Log in `account` with a timeout over the whole login.
pub async fn login(
    spec: &LoginSpec,
    account: &Account,
    source: Option<IpAddr>,
    resource: &str,
) -> Result<Session, Failure> {
    let timeout = spec.timeout;
    login_steps(spec, account, source, resource)
        .or(async {
            Timer::after(timeout).await;
            Err(Failure::new("login", "timeout"))
        })
        .await
}

async fn login_steps(
    spec: &LoginSpec,
    account: &Account,
    source: Option<IpAddr>,
    resource: &str,
) -> Result<Session, Failure> {
    let (mut stream, mut reader, mut features) = start(spec, source).await?;
    if let Some(config) = &spec.tls {
        send(
            &mut stream,
            b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>",
            "starttls",
        )
        .await?;
        let answer = element(&mut stream, &mut reader, "starttls").await?;
        if !answer.starts_with("<proceed") {
            return Err(Failure::refused("starttls", &answer));
        }
        let Stream::Plain(tcp) = stream else {
            unreachable!("TLS is started once")
        };
        let name = rustls::pki_types::ServerName::try_from(spec.domain.clone())
            .map_err(|_| Failure::new("starttls", "domain is no server name"))?;
        let tls = futures_rustls::TlsConnector::from(config.clone())
            .connect(name, tcp)
            .await
            .map_err(Failure::io("tls handshake"))?;
        stream = Stream::Tls(Box::new(tls));
        reader.restart();
        features = open(&mut stream, &mut reader, &spec.domain).await?;
    }
    let mechanism = spec.mechanism.name();
    if !features.contains(&format!(">{mechanism}<")) {
        return Err(Failure::new("auth", format!("{mechanism} not offered")));
    }
    match spec.mechanism {
        Mechanism::Plain => {
            let token = B64.encode(format!("\0{}\0{}", account.username, account.password));
            let auth = format!(
                "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
            );
            send(&mut stream, auth.as_bytes(), "auth").await?;
            let verdict = element(&mut stream, &mut reader, "auth").await?;
            if !verdict.starts_with("<success") {
                return Err(Failure::refused("auth", &verdict));
            }
        }
        Mechanism::Scram(hash) => scram(&mut stream, &mut reader, hash, account).await?,
    }
    reader.restart();
    let features = open(&mut stream, &mut reader, &spec.domain).await?;
    if !features.contains("urn:ietf:params:xml:ns:xmpp-bind") {
        return Err(Failure::new("bind", "not offered"));
    }
    let bind = format!(
        "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    );
    send(&mut stream, bind.as_bytes(), "bind").await?;
    let result = element(&mut stream, &mut reader, "bind").await?;
    let jid = match (result.contains("type='result'") || result.contains("type=\"result\""))
        .then(|| between(&result, "<jid>", "</jid>"))
        .flatten()
    {
        Some(jid) => jid.to_owned(),
        None => return Err(Failure::refused("bind", &result)),
    };
    if spec.stream_management {
        send(
            &mut stream,
            b"<enable xmlns='urn:xmpp:sm:3' resume='true'/>",
            "enable",
        )
        .await?;
        let answer = element(&mut stream, &mut reader, "enable").await?;
        if !answer.starts_with("<enabled") {
            return Err(Failure::refused("enable", &answer));
        }
    }
    let mut roster = None;
    if spec.roster {
        send(
            &mut stream,
            b"<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/></iq>",
            "roster",
        )
        .await?;
        loop {
            let answer = element(&mut stream, &mut reader, "roster").await?;
            if answer.starts_with("<iq") && answer.contains("roster") {
                if !answer.contains("result") {
                    return Err(Failure::refused("roster", &answer));
                }
                roster = Some(answer);
                break;
            }
        }
    }
    if spec.presence {
        send(&mut stream, b"<presence/>", "presence").await?;
    }
    reader.shrink();
    Ok(Session {
        stream,
        reader,
        jid,
        roster,
    })
}

async fn scram(
    stream: &mut Stream,
    reader: &mut Reader,
    hash: Hash,
    account: &Account,
) -> Result<(), Failure> {
    let nonce = format!("{:x}", client_nonce(&account.username));
    let mut client = ScramClient::new(hash, &account.username, &account.password, &nonce);
    let auth = scram_auth(hash, &client);
    send(stream, auth.as_bytes(), "auth").await?;
    let challenge = element(stream, reader, "auth").await?;
    if !challenge.starts_with("<challenge") {
        return Err(Failure::refused("auth", &challenge));
    }
    let server_first = decode(content(&challenge))?;
    let final_message = client
        .client_final_salted(&server_first, |salt, iterations| match &account.salted {
            Some(s) if s.salt == salt && s.iterations == iterations => s.password.clone(),
            _ => hash.hi(account.password.as_bytes(), salt, iterations),
        })
        .map_err(|e| Failure::new("auth", format!("bad challenge: {e}")))?;
    let response = format!(
        "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{}</response>",
        B64.encode(final_message)
    );
    send(stream, response.as_bytes(), "auth").await?;
    let verdict = element(stream, reader, "auth").await?;
    if !verdict.starts_with("<success") {
        return Err(Failure::refused("auth", &verdict));
    }
    let server_final = decode(content(&verdict))?;
    client
        .verify_server_final(&server_final)
        .map_err(|_| Failure::new("auth", "server signature does not verify"))
}

/// Learn an account's salt and iteration count with a SCRAM exchange that
/// is aborted after the server-first-message, and derive `SaltedPassword`.
pub async fn derive_salted(
    spec: &LoginSpec,
    hash: Hash,
    account: &Account,
    source: Option<IpAddr>,
) -> Result<Salted, Failure> {
    let (mut stream, mut reader, _) = start(spec, source).await?;
    let client = ScramClient::new(hash, &account.username, &account.password, "prepare");
    let auth = scram_auth(hash, &client);
    send(&mut stream, auth.as_bytes(), "prepare").await?;
    let challenge = element(&mut stream, &mut reader, "prepare").await?;
    let server_first = decode(content(&challenge))?;
    let (salt, iterations) =
        ScramClient::salt_of(&server_first).map_err(|e| Failure::new("prepare", e.to_string()))?;
    let _ = stream
        .write_all(b"<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:stream>")
        .await;
    let password = hash.hi(account.password.as_bytes(), &salt, iterations);
    Ok(Salted {
        salt,
        iterations,
        password,
    })
}

/// Register `account` with in-band registration (XEP-0077), as the
/// comparison does for servers without a bulk import. `Ok(false)`: it
/// existed already.
pub async fn register(
    spec: &LoginSpec,
    account: &Account,
    source: Option<IpAddr>,
) -> Result<bool, Failure> {
    let (mut stream, mut reader, _) = start(spec, source).await?;
    let iq = format!(
        "<iq type='set' id='reg'><query xmlns='jabber:iq:register'><username>{}</username><password>{}</password></query></iq>",
        account.username, account.password
    );
    send(&mut stream, iq.as_bytes(), "register").await?;
    let answer = element(&mut stream, &mut reader, "register").await?;
    let _ = stream.write_all(b"</stream:stream>").await;
    if answer.contains("type='result'") || answer.contains("type=\"result\"") {
        Ok(true)
    } else if answer.contains("<conflict") {
        Ok(false)
    } else {
        Err(Failure::new("register", condition(&answer)))
    }
}

/// A client nonce: unique per login is all SCRAM needs from it here.
fn client_nonce(seed: &str) -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u128;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    (time << 20) ^ (n << 64) ^ seed.len() as u128
}

/// Connect (from `source`) and open the stream: the stream, its reader
/// and the features offered.
async fn start(
    spec: &LoginSpec,
    source: Option<IpAddr>,
) -> Result<(Stream, Reader, String), Failure> {
    let tcp = connect(spec.server, source)
        .await
        .map_err(Failure::io("connect"))?;
    let mut stream = Stream::Plain(tcp);
    let mut reader = Reader::default();
    let features = open(&mut stream, &mut reader, &spec.domain).await?;
    Ok((stream, reader, features))
}

/// The `<auth/>` that starts a SCRAM exchange.
fn scram_auth(hash: Hash, client: &ScramClient) -> String {
    format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='{}'>{}</auth>",
        hash.mechanism(),
        B64.encode(client.client_first())
    )
}

/// Send the stream header and wait for the features.
async fn open(stream: &mut Stream, reader: &mut Reader, domain: &str) -> Result<String, Failure> {
    let header = format!(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    );
    send(stream, header.as_bytes(), "stream").await?;
    let features = element(stream, reader, "stream").await?;
    if !features.starts_with("<stream:features") {
        return Err(Failure::refused("stream", &features));
    }
    Ok(features)
}

async fn send(stream: &mut Stream, data: &[u8], stage: &'static str) -> Result<(), Failure> {
    stream.write_all(data).await.map_err(Failure::io(stage))
}

/// The next top-level element (skipping the stream header), as text.
async fn element(
    stream: &mut Stream,
    reader: &mut Reader,
    stage: &'static str,
) -> Result<String, Failure> {
    loop {
        match reader.pop() {
            Some(Item::Header) => continue,
            Some(Item::Element(e)) => {
                let text = String::from_utf8_lossy(e).into_owned();
                if text.starts_with("<stream:error") {
                    return Err(Failure::refused(stage, &text));
                }
                return Ok(text);
            }
            Some(Item::End) => return Err(Failure::new(stage, "stream closed")),
            None => {}
        }
        let n = reader.read_from(stream).await.map_err(Failure::io(stage))?;
        if n == 0 {
            return Err(Failure::new(stage, "connection closed"));
        }
    }
}

/// The text content of a simple element such as `<challenge>…</challenge>`.
fn content(element: &str) -> &str {
    match (element.find('>'), element.rfind("</")) {
        (Some(start), Some(end)) if start < end && !element[..start].ends_with('/') => {
            &element[start + 1..end]
        }
        _ => "",
    }
}

fn decode(text: &str) -> Result<String, Failure> {
    let bytes = B64
        .decode(text.trim())
        .map_err(|_| Failure::new("auth", "bad base64 from server"))?;
    String::from_utf8(bytes).map_err(|_| Failure::new("auth", "server sent non-UTF-8"))
}

pub fn between<'a>(text: &'a str, open: &str, close: &str) -> Option<&'a str> {
    let start = text.find(open)? + open.len();
    let end = text[start..].find(close)? + start;
    Some(&text[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_names_the_refusal() {
        assert_eq!(
            condition("<failure xmlns='x'><not-authorized/></failure>"),
            "failure not-authorized"
        );
        assert_eq!(
            condition("<stream:error><conflict xmlns='y'/></stream:error>"),
            "stream:error conflict"
        );
        assert_eq!(condition("<success xmlns='x'/>"), "success");
    }

    #[test]
    fn content_is_the_text_of_a_simple_element() {
        assert_eq!(content("<challenge xmlns='x'>abc=</challenge>"), "abc=");
        assert_eq!(content("<success xmlns='x'/>"), "");
    }
}

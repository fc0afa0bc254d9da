//! Rookery on blocking std threads.
//!
//! Threads: one per listener accepts, one runs the core (the only owner of
//! the `Server`), one runs storage, and each connection has a reader and a
//! writer. Readers and the storage worker send events to the core thread over
//! one bounded channel (a reader that outruns the core blocks, which is TCP
//! backpressure, not buffering). The core thread never blocks on a socket:
//! it hands bytes to each connection's writer through a queue bounded in
//! bytes ([`OutputBudget`]). TLS is a rustls `ServerConnection` shared by
//! the reader and writer under a mutex; neither holds it while blocked in a
//! read.

use anyhow::{Context, Result};
use rookery_core::ConnectionId;
use rookery_host::{
    log, tls, ConnectionHandle, Driver, Event, Listener, Outgoing, OutputBudget, ReadCredit,
    Settings, TlsConfigs, Verdict, MAX_INPUT_IN_FLIGHT,
};
use rustls::ServerConnection;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Events waiting for the core thread; readers block beyond this.
const EVENT_QUEUE: usize = 1024;
/// Threads per connection need little stack: they only copy bytes (and
/// run rustls, whose handshake wants more than a plain copy loop).
const CONNECTION_STACK: usize = 128 * 1024;
const READ_BUFFER: usize = 4096;
/// A write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

type Events = SyncSender<Event<(OutputBudget, Conn)>>;

/// A connection as the core thread sees it.
struct Conn {
    queue: Sender<Outgoing>,
    socket: Arc<TcpStream>,
    /// One verdict per read handed to the core (see [`Verdict`]).
    verdicts: SyncSender<Verdict>,
}

impl ConnectionHandle for Conn {
    fn queue(&self, item: Outgoing) -> bool {
        self.queue.send(item).is_ok()
    }

    fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn input_consumed(&self, verdict: Verdict) {
        let _ = self.verdicts.try_send(verdict);
    }
}

/// What every connection thread needs.
#[derive(Clone)]
struct Shared {
    events: Events,
    tls: TlsConfigs,
    output_buffer: usize,
    next_id: Arc<AtomicU64>,
}

/// Run the server until the process ends.
pub fn serve(settings: Settings) -> Result<()> {
    let listener = settings.bind(settings.listen)?;
    let direct = match settings.direct_tls_listen {
        Some(addr) => Some(settings.bind(addr)?),
        None => None,
    };
    let tls = tls::Tls::load(settings.tls.clone())?;
    tls::reload_on_sighup(tls.tls.clone())?;
    let (events, inbox) = mpsc::sync_channel::<Event<(OutputBudget, Conn)>>(EVENT_QUEUE);
    let send = events.clone();
    let mut driver = Driver::start(&settings, move |event| {
        let _ = send.send(event);
    })?;
    std::thread::Builder::new()
        .name("core".into())
        .spawn(move || loop {
            if driver.stopped() {
                std::thread::sleep(rookery_host::SHUTDOWN_GRACE);
                log!("stopped");
                std::process::exit(0);
            }
            let event = match driver.next_timeout() {
                Some(at) => inbox.recv_timeout(at.saturating_duration_since(Instant::now())),
                None => inbox.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match event {
                Ok(event) => driver.handle(event),
                Err(RecvTimeoutError::Timeout) => driver.handle_timeout(),
                Err(RecvTimeoutError::Disconnected) => return,
            }
            if driver.next_timeout().is_some_and(|at| at <= Instant::now()) {
                driver.handle_timeout();
            }
        })?;
    let shared = Shared {
        events,
        tls,
        output_buffer: settings.core.output_buffer,
        next_id: Arc::new(AtomicU64::new(0)),
    };
    if let Some(direct) = direct {
        log!("direct TLS (XEP-0368) on {}", direct.local_addr()?);
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("accept-tls".into())
            .spawn(move || accept_loop(direct, Listener::DirectTls, &shared))?;
    }
    log!(
        "listening on {} for {} (rookery-std)",
        listener.local_addr()?,
        settings.core.domains.join(", ")
    );
    accept_loop(listener, Listener::Plain, &shared);
    Ok(())
}

fn accept_loop(listener: TcpListener, kind: Listener, shared: &Shared) {
    for socket in listener.incoming() {
        let socket = match socket {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors or a connection reset before
                // accept: keep serving the others.
                log!("accept failed: {e}");
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let id = ConnectionId(shared.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        if let Err(e) = start_connection(id, socket, kind, shared) {
            log!("could not start connection: {e}");
        }
    }
}

fn start_connection(
    id: ConnectionId,
    socket: TcpStream,
    kind: Listener,
    shared: &Shared,
) -> Result<()> {
    socket.set_nodelay(true)?;
    // Applies to every clone of the socket: a client that stops reading
    // altogether must not hold a writer (and socket) forever.
    socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let peer = socket.peer_addr()?.ip();
    // One descriptor per connection, shared by its threads (`&TcpStream`
    // reads and writes): clones would cost three, and the process limit
    // on descriptors (20,000 here) would cap sessions at a third of it.
    let socket = Arc::new(socket);
    let (verdict, verdicts) = mpsc::sync_channel::<Verdict>(MAX_INPUT_IN_FLIGHT);
    let (writes, pending) = mpsc::channel::<Outgoing>();
    let budget = OutputBudget::new(shared.output_buffer);
    let conn = Conn {
        queue: writes,
        socket: socket.clone(),
        verdicts: verdict,
    };
    shared
        .events
        .send(Event::Accepted(id, peer, kind, (budget.clone(), conn)))
        .context("core thread is gone")?;
    let shared = shared.clone();
    spawn(move || {
        let _ = connection(id, socket, kind, pending, budget, verdicts, &shared);
        let _ = shared.events.send(Event::PeerClosed(id));
    })
}

fn spawn(f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .stack_size(CONNECTION_STACK)
        .spawn(f)?;
    Ok(())
}

/// A connection's reading side, from accept to close: plaintext until
/// STARTTLS (or a direct TLS handshake first), then encrypted.
fn connection(
    id: ConnectionId,
    socket: Arc<TcpStream>,
    kind: Listener,
    pending: Receiver<Outgoing>,
    budget: OutputBudget,
    verdicts: Receiver<Verdict>,
    shared: &Shared,
) -> Result<()> {
    let (pending, config) = match kind {
        Listener::DirectTls => (pending, shared.tls.direct.clone()),
        Listener::Plain => {
            let (handoff, handed) = mpsc::sync_channel(1);
            let writer = socket.clone();
            let written = budget.clone();
            let notify = (id, shared.events.clone());
            spawn(move || plain_writer(writer, pending, written, handoff, notify))?;
            let mut source = Source::Plain(&socket);
            if read_loop(id, &mut source, &verdicts, &shared.events, false) == ReadEnd::Closed {
                return Ok(());
            }
            // The writer flushed `<proceed/>` and gave its queue back.
            (handed.recv()?, shared.tls.starttls.clone())
        }
    };
    let mut tls = ServerConnection::new(config)?;
    let mut handshake: &TcpStream = &socket;
    while tls.is_handshaking() {
        tls.complete_io(&mut handshake)?;
    }
    let binding = shared.tls.tls.channel_binding(&tls);
    shared.events.send(Event::TlsEstablished(id, binding))?;
    let tls = Arc::new(Mutex::new(tls));
    let writer = (tls.clone(), socket.clone());
    let notify = (id, shared.events.clone());
    spawn(move || tls_writer(writer.0, writer.1, pending, budget, notify))?;
    let mut source = Source::Tls { tls, socket };
    read_loop(id, &mut source, &verdicts, &shared.events, true);
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    Closed,
    StartTls,
}

/// Where a reader's bytes come from.
enum Source<'a> {
    Plain(&'a TcpStream),
    Tls {
        tls: Arc<Mutex<ServerConnection>>,
        socket: Arc<TcpStream>,
    },
}

impl Source<'_> {
    /// The next bytes; empty at end of stream.
    fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut buffer = [0u8; READ_BUFFER];
        match self {
            Source::Plain(mut socket) => {
                let n = socket.read(&mut buffer)?;
                Ok(buffer[..n].to_vec())
            }
            Source::Tls { tls, socket } => loop {
                // Plaintext rustls already decrypted comes first.
                let (data, closed) = decrypted(&mut *lock(tls)?)?;
                if !data.is_empty() || closed {
                    return Ok(data);
                }
                // Block without the lock, so the writer can go on.
                let mut socket: &TcpStream = socket;
                let n = socket.read(&mut buffer)?;
                if n == 0 {
                    return Ok(Vec::new());
                }
                let mut tls = lock(tls)?;
                let mut input = &buffer[..n];
                while !input.is_empty() {
                    tls.read_tls(&mut input)?;
                    if let Err(e) = tls.process_new_packets() {
                        // Send the alert that says why, then give up.
                        let _ = tls.write_tls(&mut socket);
                        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
                    }
                }
                // Handshake messages after the handshake (session tickets,
                // key updates) may need an answer.
                while tls.wants_write() {
                    tls.write_tls(&mut socket)?;
                }
            },
        }
    }
}

fn lock(
    tls: &Mutex<ServerConnection>,
) -> std::io::Result<std::sync::MutexGuard<'_, ServerConnection>> {
    tls.lock()
        .map_err(|_| std::io::Error::other("TLS state poisoned"))
}

/// Plaintext waiting in rustls, and whether the peer sent close_notify.
fn decrypted(tls: &mut ServerConnection) -> std::io::Result<(Vec<u8>, bool)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; READ_BUFFER];
    loop {
        match tls.reader().read(&mut chunk) {
            Ok(0) => return Ok((data, true)),
            Ok(n) => data.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok((data, false)),
            Err(e) => return Err(e),
        }
    }
}

/// Hand reads to the core, at most [`MAX_INPUT_IN_FLIGHT`] at a time (one
/// while the client may still start TLS), until the connection ends or
/// the core says to start TLS.
fn read_loop(
    id: ConnectionId,
    source: &mut Source,
    verdicts: &Receiver<Verdict>,
    events: &Events,
    read_ahead: bool,
) -> ReadEnd {
    let mut credit = ReadCredit::new(read_ahead);
    loop {
        loop {
            let verdict = if credit.must_wait() {
                match verdicts.recv() {
                    Ok(v) => v,
                    Err(_) => return ReadEnd::Closed,
                }
            } else {
                match verdicts.try_recv() {
                    Ok(v) => v,
                    Err(_) => break,
                }
            };
            if credit.settle(verdict) {
                return ReadEnd::StartTls;
            }
        }
        let data = match source.read() {
            Ok(data) if !data.is_empty() => data,
            _ => return ReadEnd::Closed,
        };
        if events.send(Event::Received(id, data)).is_err() {
            return ReadEnd::Closed;
        }
        credit.sent();
    }
}

/// Writes in the clear until closed, or until STARTTLS: then it gives its
/// queue back through `handoff` and leaves the socket to the handshake.
/// Whom a writer tells that a marked point of its queue is written.
type Notify = (ConnectionId, Events);

fn plain_writer(
    socket: Arc<TcpStream>,
    pending: Receiver<Outgoing>,
    budget: OutputBudget,
    handoff: SyncSender<Receiver<Outgoing>>,
    (id, events): Notify,
) {
    loop {
        match pending.recv() {
            Ok(Outgoing::Written(token)) => {
                let _ = events.send(Event::Written(id, token));
            }
            Ok(Outgoing::Data(data)) => {
                budget.release(data.len());
                if (&*socket).write_all(&data).is_err() {
                    break;
                }
            }
            Ok(Outgoing::StartTls) => {
                let _ = handoff.send(pending);
                return;
            }
            Ok(Outgoing::Close) | Err(_) => break,
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
}

fn tls_writer(
    tls: Arc<Mutex<ServerConnection>>,
    socket: Arc<TcpStream>,
    pending: Receiver<Outgoing>,
    budget: OutputBudget,
    (id, events): Notify,
) {
    let mut socket: &TcpStream = &socket;
    let write = |data: &[u8], socket: &mut &TcpStream| -> std::io::Result<()> {
        let mut tls = lock(&tls)?;
        let mut rest = data;
        // rustls buffers a bounded amount; encrypt and send in turns.
        while !rest.is_empty() {
            let n = tls.writer().write(rest)?;
            rest = &rest[n..];
            while tls.wants_write() {
                tls.write_tls(socket)?;
            }
            if n == 0 && !rest.is_empty() {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    };
    for item in pending.iter() {
        match item {
            Outgoing::Data(data) => {
                budget.release(data.len());
                if write(&data, &mut socket).is_err() {
                    break;
                }
            }
            // Already encrypted; the core never asks twice.
            Outgoing::StartTls => {}
            Outgoing::Written(token) => {
                let _ = events.send(Event::Written(id, token));
            }
            Outgoing::Close => {
                // close_notify, so the client knows the end is genuine.
                if let Ok(mut tls) = lock(&tls) {
                    tls.send_close_notify();
                    while tls.wants_write() && tls.write_tls(&mut socket).is_ok() {}
                }
                break;
            }
        }
    }
    let _ = socket.shutdown(Shutdown::Both);
}

//! Rookery on smol / async-io.
//!
//! Tasks: one per listener accepts, one runs the core (the only owner of
//! the `Server`), and each connection has a reader task and, while it has
//! output (or for good once encrypted), a writer task; all on one thread
//! ([`serve`]'s), which also waits on epoll.
//! Readers send events to the core task over one bounded channel (a reader
//! that outruns the core waits: TCP backpressure, not buffering). The core
//! task never awaits a socket: it hands bytes to each connection's writer
//! through a queue bounded in bytes ([`OutputBudget`]). Storage runs on its
//! own thread. TLS (STARTTLS and direct) is futures-rustls over the same
//! socket; the reader runs the handshake, then both halves go encrypted.

mod link;

use anyhow::Result;
use async_io::{Async, Timer};
use futures_rustls::rustls;
use futures_rustls::server::TlsStream;
use link::{CoreEnd, Link, Next, Queued, Writer};
use rookery_core::ConnectionId;
use rookery_host::{
    log, tls, ConnectionHandle, Connections, Driver, Event, Listener, Outgoing, OutputBudget,
    ReadCredit, Settings, TlsConfigs, Verdict,
};
use smol::channel::{self, Receiver, Sender};
use smol::future::FutureExt;
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

/// Events waiting for the core task; readers wait beyond this.
const EVENT_QUEUE: usize = 1024;
const READ_BUFFER: usize = 4096;
/// A write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

type Events = Sender<Event<(OutputBudget, Conn)>>;

/// A connection as the core task sees it.
struct Conn {
    /// Output to the writer, and one verdict per read (see [`Verdict`]).
    link: CoreEnd,
    socket: Arc<Async<TcpStream>>,
    budget: OutputBudget,
    /// Whom the writer tells that a marked point of its queue is written.
    notify: Notify,
}

/// A connection's id and the core's inbox.
type Notify = (ConnectionId, Events);

impl Drop for Conn {
    /// The core let go of the connection. A running writer shuts the
    /// socket down once it has written everything; without one, that is
    /// done here, so that the reader sees the end too.
    fn drop(&mut self) {
        if self.link.writer_idle() {
            let _ = self.socket.get_ref().shutdown(Shutdown::Both);
        }
    }
}

impl ConnectionHandle for Conn {
    /// Unbounded in items, bounded in bytes by the connection's budget;
    /// `false` once writing has stopped.
    fn queue(&self, item: Outgoing) -> bool {
        match self.link.queue(item) {
            Queued::Taken => true,
            Queued::StartWriter => {
                let link = self.link.link().clone();
                spawn(plain_writer(
                    self.socket.clone(),
                    link,
                    self.budget.clone(),
                    self.notify.clone(),
                ));
                true
            }
            Queued::Refused => false,
        }
    }

    fn shutdown(&self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }

    fn input_consumed(&self, verdict: Verdict) {
        self.link.verdict(verdict);
    }
}

/// What every connection task needs.
#[derive(Clone)]
struct Shared {
    events: Events,
    tls: TlsConfigs,
    output_buffer: usize,
    next_id: Arc<AtomicU64>,
}

/// Every task runs here, on the thread that calls [`serve`]: the core is
/// one `Server` anyway, and when the executor has nothing to run, the same
/// thread waits on epoll itself. Tasks on smol's global executor ran on
/// another thread than the reactor and the accept loop, which cost a
/// thread wake-up per event (a quarter of a login's CPU).
static EXECUTOR: smol::Executor<'static> = smol::Executor::new();

fn spawn<T: Send + 'static>(future: impl std::future::Future<Output = T> + Send + 'static) {
    EXECUTOR.spawn(future).detach();
}

/// Run the server until the process ends.
pub fn serve(settings: Settings) -> Result<()> {
    smol::block_on(EXECUTOR.run(run(settings)))
}

async fn run(settings: Settings) -> Result<()> {
    let listener = Async::new(settings.bind(settings.listen)?)?;
    let direct = match settings.direct_tls_listen {
        Some(addr) => Some(Async::new(settings.bind(addr)?)?),
        None => None,
    };
    let tls = tls::Tls::load(settings.tls.clone())?;
    tls::reload_on_sighup(tls.tls.clone())?;
    let (events, inbox) = channel::bounded::<Event<(OutputBudget, Conn)>>(EVENT_QUEUE);
    let send = events.clone();
    let driver = Driver::start(&settings, move |event| {
        let _ = send.send_blocking(event);
    })?;
    spawn(core_loop(driver, inbox));
    let shared = Shared {
        events,
        tls,
        output_buffer: settings.core.output_buffer,
        next_id: Arc::new(AtomicU64::new(0)),
    };
    if let Some(direct) = direct {
        log!(
            "direct TLS (XEP-0368) on {}",
            direct.get_ref().local_addr()?
        );
        spawn(accept_loop(direct, Listener::DirectTls, shared.clone()));
    }
    log!(
        "listening on {} for {} (rookery-smol)",
        listener.get_ref().local_addr()?,
        settings.core.domains.join(", ")
    );
    accept_loop(listener, Listener::Plain, shared).await;
    Ok(())
}

async fn accept_loop(listener: Async<TcpListener>, kind: Listener, shared: Shared) {
    loop {
        let socket = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors or a connection reset before
                // accept: keep serving the others.
                log!("accept failed: {e}");
                Timer::after(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let id = ConnectionId(shared.next_id.fetch_add(1, Ordering::Relaxed) + 1);
        start_connection(id, socket, kind, &shared).await;
    }
}

async fn core_loop(
    mut driver: Driver<Connections<Conn>>,
    inbox: Receiver<Event<(OutputBudget, Conn)>>,
) {
    loop {
        if driver.stopped() {
            Timer::after(rookery_host::SHUTDOWN_GRACE).await;
            log!("stopped");
            std::process::exit(0);
        }
        let deadline = driver.next_timeout();
        let event = async { inbox.recv().await.ok() };
        let timer = async {
            match deadline {
                Some(at) => Timer::at(at).await,
                None => std::future::pending().await,
            };
            None
        };
        match event.or(timer).await {
            Some(event) => driver.handle(event),
            None if deadline.is_some() => driver.handle_timeout(),
            None => return,
        }
        if driver
            .next_timeout()
            .is_some_and(|at| at <= std::time::Instant::now())
        {
            driver.handle_timeout();
        }
    }
}

async fn start_connection(
    id: ConnectionId,
    socket: Async<TcpStream>,
    kind: Listener,
    shared: &Shared,
) {
    let _ = socket.get_ref().set_nodelay(true);
    let socket = Arc::new(socket);
    let (link, core_end) = Link::new(match kind {
        Listener::Plain => Writer::Idle,
        Listener::DirectTls => Writer::External,
    });
    let budget = OutputBudget::new(shared.output_buffer);
    let conn = Conn {
        link: core_end,
        socket: socket.clone(),
        budget: budget.clone(),
        notify: (id, shared.events.clone()),
    };
    let Ok(peer) = socket.get_ref().peer_addr().map(|a| a.ip()) else {
        return;
    };
    let accepted = Event::Accepted(id, peer, kind, (budget.clone(), conn));
    if shared.events.send(accepted).await.is_err() {
        return;
    }
    let shared = shared.clone();
    spawn(async move {
        let _ = connection(id, socket, kind, link, budget, &shared).await;
        let _ = shared.events.send(Event::PeerClosed(id)).await;
    });
}

/// A connection's reading side, from accept to close: plaintext until
/// STARTTLS (or a direct TLS handshake first), then encrypted.
async fn connection(
    id: ConnectionId,
    socket: Arc<Async<TcpStream>>,
    kind: Listener,
    link: Link,
    budget: OutputBudget,
    shared: &Shared,
) -> Result<()> {
    let config = match kind {
        Listener::DirectTls => shared.tls.direct.clone(),
        Listener::Plain => {
            let source = Source::Plain(&socket);
            if read_loop(id, source, &link, &shared.events, false).await == ReadEnd::Closed {
                return Ok(());
            }
            // The handshake starts once the writer flushed `<proceed/>`.
            if !link.writer_parked().await {
                return Ok(());
            }
            shared.tls.starttls.clone()
        }
    };
    // Boxed: the handshake's state is large, and a plaintext connection
    // that never gets here should not carry room for it while idle.
    Box::pin(encrypted(id, socket, config, link, budget, shared)).await
}

/// The TLS handshake, then the encrypted stream until it ends.
async fn encrypted(
    id: ConnectionId,
    socket: Arc<Async<TcpStream>>,
    config: Arc<rustls::ServerConfig>,
    link: Link,
    budget: OutputBudget,
    shared: &Shared,
) -> Result<()> {
    let stream = futures_rustls::TlsAcceptor::from(config)
        .accept(SharedSocket(socket.clone()))
        .await?;
    let binding = shared.tls.tls.channel_binding(stream.get_ref().1);
    shared
        .events
        .send(Event::TlsEstablished(id, binding))
        .await?;
    let (mut reader, writer) = smol::io::split(stream);
    let notify = (id, shared.events.clone());
    spawn(tls_writer(writer, socket, link.clone(), budget, notify));
    read_loop(id, Source::Tls(&mut reader), &link, &shared.events, true).await;
    Ok(())
}

#[derive(Debug, PartialEq, Eq)]
enum ReadEnd {
    Closed,
    StartTls,
}

type TlsReader = smol::io::ReadHalf<TlsStream<SharedSocket>>;

/// Where a reader's bytes come from.
enum Source<'a> {
    Plain(&'a Async<TcpStream>),
    Tls(&'a mut TlsReader),
}

impl Source<'_> {
    /// The next bytes; empty at end of stream. The buffer lives only
    /// during a read, never across an await, so an idle connection's task
    /// holds no read buffer.
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        match self {
            Source::Plain(socket) => loop {
                socket.readable().await?;
                let mut buffer = [0u8; READ_BUFFER];
                match (&mut socket.get_ref()).read(&mut buffer) {
                    Ok(n) => return Ok(buffer[..n].to_vec()),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            },
            Source::Tls(reader) => {
                std::future::poll_fn(|cx| {
                    let mut buffer = [0u8; READ_BUFFER];
                    Pin::new(&mut **reader)
                        .poll_read(cx, &mut buffer)
                        .map_ok(|n| buffer[..n].to_vec())
                })
                .await
            }
        }
    }
}

/// Hand reads to the core, at most [`rookery_host::MAX_INPUT_IN_FLIGHT`] at a time (one
/// while the client may still start TLS), until the connection ends or
/// the core says to start TLS.
async fn read_loop(
    id: ConnectionId,
    mut source: Source<'_>,
    link: &Link,
    events: &Events,
    read_ahead: bool,
) -> ReadEnd {
    let mut credit = ReadCredit::new(read_ahead);
    loop {
        loop {
            let verdict = if credit.must_wait() {
                match link.verdict().await {
                    Some(v) => v,
                    None => return ReadEnd::Closed,
                }
            } else {
                match link.try_verdict() {
                    Some(v) => v,
                    None => break,
                }
            };
            if credit.settle(verdict) {
                return ReadEnd::StartTls;
            }
        }
        let data = match source.read().await {
            Ok(data) if !data.is_empty() => data,
            _ => return ReadEnd::Closed,
        };
        if events.send(Event::Received(id, data)).await.is_err() {
            return ReadEnd::Closed;
        }
        credit.sent();
    }
}

/// Write with a deadline: a client that stops reading altogether must not
/// hold its writer (and socket) forever.
async fn within_write_timeout(write: impl std::future::Future<Output = bool>) -> bool {
    let stalled = async {
        Timer::after(WRITE_TIMEOUT).await;
        false
    };
    write.or(stalled).await
}

/// Writes in the clear until closed, or until STARTTLS: then it parks,
/// leaving the queue and the socket to the handshake.
async fn plain_writer(
    socket: Arc<Async<TcpStream>>,
    link: Link,
    budget: OutputBudget,
    (id, events): Notify,
) {
    loop {
        match link.next_or_stop() {
            Next::Item(Outgoing::Written(token)) => {
                let _ = events.send(Event::Written(id, token)).await;
            }
            Next::Item(Outgoing::Data(data)) => {
                budget.release(data.len());
                if !within_write_timeout(async { (&*socket).write_all(&data).await.is_ok() }).await
                {
                    link.stop_writing();
                    break;
                }
            }
            Next::Item(Outgoing::StartTls) => {
                link.park_writer();
                return;
            }
            // Until more output comes (the core's end starts a writer).
            Next::Empty => return,
            Next::Item(Outgoing::Close) | Next::Closed => {
                link.stop_writing();
                break;
            }
        }
    }
    let _ = socket.get_ref().shutdown(Shutdown::Both);
}

async fn tls_writer(
    mut writer: smol::io::WriteHalf<TlsStream<SharedSocket>>,
    socket: Arc<Async<TcpStream>>,
    link: Link,
    budget: OutputBudget,
    (id, events): Notify,
) {
    loop {
        match link.next_outgoing().await {
            Some(Outgoing::Written(token)) => {
                let _ = events.send(Event::Written(id, token)).await;
            }
            Some(Outgoing::Data(data)) => {
                budget.release(data.len());
                let write =
                    async { writer.write_all(&data).await.is_ok() && writer.flush().await.is_ok() };
                if !within_write_timeout(write).await {
                    break;
                }
            }
            // Already encrypted; the core never asks twice.
            Some(Outgoing::StartTls) => {}
            Some(Outgoing::Close) => {
                // close_notify, so the client knows the end is genuine.
                within_write_timeout(async { writer.close().await.is_ok() }).await;
                break;
            }
            None => break,
        }
    }
    let _ = socket.get_ref().shutdown(Shutdown::Both);
}

/// The socket as an owned async stream for rustls, shared with the
/// connection's handle (which may cut it).
struct SharedSocket(Arc<Async<TcpStream>>);

impl AsyncRead for SharedSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut [u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut socket: &Async<TcpStream> = &self.0;
        Pin::new(&mut socket).poll_read(cx, buf)
    }
}

impl AsyncWrite for SharedSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut socket: &Async<TcpStream> = &self.0;
        Pin::new(&mut socket).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let mut socket: &Async<TcpStream> = &self.0;
        Pin::new(&mut socket).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        let mut socket: &Async<TcpStream> = &self.0;
        Pin::new(&mut socket).poll_close(cx)
    }
}

//! The event loop body both servers share: feed an event to the core, then
//! carry out its effects. The shims differ only in how they wait for events
//! and how bytes reach a socket ([`Transport`]).

use crate::worker::StorageWorker;
use rookery_core::{ChannelBinding, ConnectionId, Output, Seed, Server, WallClock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What happened, as a shim reports it.
pub enum Event<W> {
    /// A connection was accepted from an address on a listener; `W` is how
    /// to write to it.
    Accepted(ConnectionId, std::net::IpAddr, Listener, W),
    Received(ConnectionId, Vec<u8>),
    /// The TLS handshake (STARTTLS or direct) completed.
    TlsEstablished(ConnectionId, ChannelBinding),
    PeerClosed(ConnectionId),
    /// Answers to storage queries, as many as storage ran together.
    Storage(crate::worker::Answers),
    /// A connection's writer reached [`Outgoing::Written`]: everything
    /// queued before it is written to the socket.
    Written(ConnectionId, u64),
    /// SIGTERM or SIGINT: stop (see [`Driver::stopped`]).
    Shutdown,
    /// The account was deleted or its password changed (`admin`).
    EndSessions(jid::BareJid, crate::admin::Reason),
}

/// Which listener accepted a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    /// Plain TCP; STARTTLS may follow.
    Plain,
    /// XEP-0368: the shim runs the TLS handshake at once.
    DirectTls,
}

/// What a reader hears back for each read it handed to the core.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Read on. With `read_ahead` false the reader must wait for each
    /// read's verdict before the next read: the client may still send
    /// `<starttls/>`, after which its bytes are a TLS handshake.
    Continue { read_ahead: bool },
    /// Stop reading plaintext: once the writer has flushed `<proceed/>`
    /// (it gets [`Outgoing::StartTls`]), run the TLS server handshake.
    StartTls,
}

/// The connection's output queue is full: it reads slower than we write.
#[derive(Debug)]
pub struct QueueFull;

/// How a shim writes to and closes its connections.
pub trait Transport {
    type Writer;
    fn register(&mut self, id: ConnectionId, writer: Self::Writer);
    /// Queue bytes without blocking.
    fn transmit(&mut self, id: ConnectionId, data: Vec<u8>) -> Result<(), QueueFull>;
    /// Queue bytes past the connection's bound: the last words to a client
    /// whose queue is full.
    fn transmit_final(&mut self, id: ConnectionId, data: Vec<u8>);
    /// Flush what is queued, then close.
    fn close(&mut self, id: ConnectionId);
    /// Close at once, dropping what is queued (also a connection being
    /// closed whose queue has not drained).
    fn abort(&mut self, id: ConnectionId);
    /// The connection's socket is closed: forget it.
    fn forget(&mut self, id: ConnectionId);
    /// The core consumed one read of this connection.
    fn input_consumed(&mut self, id: ConnectionId, verdict: Verdict);
    /// Flush what is queued, then hand the socket to the TLS handshake.
    fn start_tls(&mut self, id: ConnectionId);
    /// A direct TLS connection: its handshake runs before anything else.
    fn awaiting_handshake(&mut self, id: ConnectionId);
    /// The handshake finished: writes go over TLS again.
    fn tls_established(&mut self, id: ConnectionId);
    /// Report [`Event::Written`] with `token` once what is queued now is
    /// written.
    fn notify_written(&mut self, id: ConnectionId, token: u64);
}

/// What a connection's writer is handed.
pub enum Outgoing {
    Data(Vec<u8>),
    /// Flush, then close the socket.
    Close,
    /// Flush, then stop: the reader takes the queue over for the TLS
    /// handshake and starts a writer on the encrypted stream.
    StartTls,
    /// Report [`Event::Written`] with this token once everything before
    /// it is written.
    Written(u64),
}

/// A shim's handle on one connection: its writer's queue and its socket.
pub trait ConnectionHandle {
    /// Queue for the writer without blocking; `false` if the writer is
    /// gone (its socket failed; the reader reports the close).
    fn queue(&self, item: Outgoing) -> bool;
    /// Cut the socket at once, both ways.
    fn shutdown(&self);
    /// The core consumed one `Received` event of this connection, so its
    /// reader may send another (see [`MAX_INPUT_IN_FLIGHT`]).
    fn input_consumed(&self, verdict: Verdict);
}

/// How many reads of one connection may wait for the core at once. Readers
/// share one queue into the core; without this bound a single flooding
/// client could fill it and delay everyone else's input behind its own.
pub const MAX_INPUT_IN_FLIGHT: usize = 2;

/// A reader's bookkeeping of its reads waiting for a [`Verdict`]: how
/// many may be in flight, and whether the core said to start TLS. The
/// shims wait on their own channels; the rule lives here once.
#[derive(Debug)]
pub struct ReadCredit {
    in_flight: usize,
    read_ahead: bool,
}

impl ReadCredit {
    /// `read_ahead` false while the client may still send `<starttls/>`.
    pub fn new(read_ahead: bool) -> Self {
        ReadCredit {
            in_flight: 0,
            read_ahead,
        }
    }

    /// Whether the reader must wait for a verdict before reading again.
    pub fn must_wait(&self) -> bool {
        let limit = if self.read_ahead {
            MAX_INPUT_IN_FLIGHT
        } else {
            1
        };
        self.in_flight >= limit
    }

    /// A read went to the core.
    pub fn sent(&mut self) {
        self.in_flight += 1;
    }

    /// A verdict came back; `true` when it says to start TLS.
    pub fn settle(&mut self, verdict: Verdict) -> bool {
        self.in_flight = self.in_flight.saturating_sub(1);
        match verdict {
            Verdict::Continue { read_ahead } => {
                self.read_ahead = read_ahead;
                false
            }
            Verdict::StartTls => true,
        }
    }
}

/// The [`Transport`] both shims use: connections by id, each with its
/// byte budget (the slow-reader policy) and the shim's handle.
pub struct Connections<H> {
    table: std::collections::HashMap<ConnectionId, (OutputBudget, H)>,
    /// Connections told to close whose sockets are not closed yet: cut
    /// if the core says their drain took too long.
    closing: std::collections::HashMap<ConnectionId, H>,
    /// Connections mid-handshake: no writer runs, so closing one means
    /// cutting its socket.
    handshaking: std::collections::HashSet<ConnectionId>,
}

impl<H> Default for Connections<H> {
    fn default() -> Self {
        Connections {
            table: Default::default(),
            closing: Default::default(),
            handshaking: Default::default(),
        }
    }
}

impl<H: ConnectionHandle> Transport for Connections<H> {
    type Writer = (OutputBudget, H);

    fn register(&mut self, id: ConnectionId, writer: Self::Writer) {
        self.table.insert(id, writer);
    }

    fn transmit(&mut self, id: ConnectionId, data: Vec<u8>) -> Result<(), QueueFull> {
        let Some((budget, handle)) = self.table.get(&id) else {
            return Ok(());
        };
        budget.reserve(data.len())?;
        handle.queue(Outgoing::Data(data));
        Ok(())
    }

    fn transmit_final(&mut self, id: ConnectionId, data: Vec<u8>) {
        if let Some((_, handle)) = self.table.get(&id) {
            handle.queue(Outgoing::Data(data));
        }
    }

    fn close(&mut self, id: ConnectionId) {
        if self.handshaking.contains(&id) {
            return self.abort(id);
        }
        if let Some((_, handle)) = self.table.remove(&id) {
            if handle.queue(Outgoing::Close) {
                self.closing.insert(id, handle);
            } else {
                handle.shutdown();
            }
        }
    }

    fn abort(&mut self, id: ConnectionId) {
        self.handshaking.remove(&id);
        if let Some((_, handle)) = self.table.remove(&id) {
            handle.shutdown();
        }
        if let Some(handle) = self.closing.remove(&id) {
            handle.shutdown();
        }
    }

    fn forget(&mut self, id: ConnectionId) {
        self.closing.remove(&id);
    }

    fn input_consumed(&mut self, id: ConnectionId, verdict: Verdict) {
        if let Some((_, handle)) = self.table.get(&id) {
            handle.input_consumed(verdict);
        }
    }

    fn start_tls(&mut self, id: ConnectionId) {
        if let Some((_, handle)) = self.table.get(&id) {
            handle.queue(Outgoing::StartTls);
            self.handshaking.insert(id);
        }
    }

    fn awaiting_handshake(&mut self, id: ConnectionId) {
        self.handshaking.insert(id);
    }

    fn tls_established(&mut self, id: ConnectionId) {
        self.handshaking.remove(&id);
    }

    fn notify_written(&mut self, id: ConnectionId, token: u64) {
        if let Some((_, handle)) = self.table.get(&id) {
            handle.queue(Outgoing::Written(token));
        }
    }
}

pub struct Driver<T: Transport> {
    server: Server,
    transport: T,
    storage: StorageWorker,
    /// Connections whose output queue overflowed, being closed.
    overflowed: std::collections::HashSet<ConnectionId>,
    /// Shutdown began: the loop wakes often to see whether it is done.
    stopping: bool,
}

impl<H: ConnectionHandle> Driver<Connections<H>> {
    /// What both servers start beside their listeners, all reporting to
    /// their event loop through `send`: the core with the server secret,
    /// storage on its two threads, the admin socket and SIGTERM handling.
    pub fn start(
        settings: &crate::Settings,
        send: impl Fn(Event<(OutputBudget, H)>) + Clone + Send + Sync + 'static,
    ) -> anyhow::Result<Self> {
        let reader = crate::SqliteStorage::open(&settings.data_dir)?;
        let writer = crate::SqliteStorage::open(&settings.data_dir)?;
        let answers = send.clone();
        let storage = StorageWorker::spawn(Box::new(reader), Box::new(writer), move |a| {
            answers(Event::Storage(a))
        })?;
        let admin = send.clone();
        crate::admin::listen(&settings.data_dir, move |user, reason| {
            admin(Event::EndSessions(user, reason))
        })?;
        on_terminate(move || send(Event::Shutdown))?;
        let server = Server::new(settings.server_config()?);
        Ok(Driver::new(server, Connections::default(), storage))
    }
}

impl<T: Transport> Driver<T> {
    pub fn new(server: Server, transport: T, storage: StorageWorker) -> Self {
        Driver {
            server,
            transport,
            storage,
            overflowed: Default::default(),
            stopping: false,
        }
    }

    pub fn handle(&mut self, event: Event<T::Writer>) {
        let now = Instant::now();
        self.server.handle_wall_clock(wall_clock());
        match event {
            Event::Accepted(id, peer, listener, writer) => {
                self.transport.register(id, writer);
                match listener {
                    Listener::Plain => self.server.handle_accept(id, peer, fresh_seed(), now),
                    Listener::DirectTls => {
                        self.transport.awaiting_handshake(id);
                        self.server
                            .handle_accept_direct_tls(id, peer, fresh_seed(), now)
                    }
                }
            }
            Event::Received(id, data) => {
                capture(id, &data);
                self.server.handle_bytes(id, &data, now);
                let started_tls = self.run_effects();
                let verdict = if started_tls.contains(&id) {
                    Verdict::StartTls
                } else {
                    Verdict::Continue {
                        read_ahead: !self.server.may_start_tls(id),
                    }
                };
                self.transport.input_consumed(id, verdict);
                return;
            }
            Event::TlsEstablished(id, binding) => {
                self.transport.tls_established(id);
                self.server.handle_tls_established(id, binding, now);
            }
            Event::PeerClosed(id) => {
                self.server.handle_peer_closed(id, now);
                self.transport.forget(id);
            }
            Event::Storage(answers) => {
                // Effects after each answer, as if each were an event of
                // its own: a slow reader's output budget is counted as it
                // fills, not after a whole batch has written to it.
                for (request, answer) in answers {
                    self.server.handle_storage(request, answer, now);
                    self.run_effects();
                }
            }
            Event::Written(id, token) => self.server.handle_written(id, token, now),
            Event::EndSessions(user, reason) => {
                self.server.handle_end_sessions(&user, reason.text(), now)
            }
            Event::Shutdown => {
                crate::log!("stopping: closing streams, flushing storage");
                self.server.handle_shutdown(now);
                self.run_effects();
                self.storage.finish();
                self.stopping = true;
                return;
            }
        }
        self.run_effects();
    }

    /// After [`Event::Shutdown`]: every stream was told
    /// `<system-shutdown/>` and every storage query has run, so the
    /// process may exit once its writers had a moment to flush.
    pub fn stopped(&self) -> bool {
        self.storage.finished()
    }

    /// When [`Driver::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        let soon = Instant::now() + std::time::Duration::from_millis(20);
        match self.server.poll_timeout() {
            Some(at) if self.stopping => Some(at.min(soon)),
            None if self.stopping => Some(soon),
            at => at,
        }
    }

    pub fn handle_timeout(&mut self) {
        self.server.handle_wall_clock(wall_clock());
        self.server.handle_timeout(Instant::now());
        self.run_effects();
    }

    /// Carry out the core's effects; returns the connections told to
    /// start TLS.
    fn run_effects(&mut self) -> Vec<ConnectionId> {
        let mut started_tls = Vec::new();
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Transmit { connection, data } => {
                    if self.overflowed.contains(&connection) {
                        self.transport.transmit_final(connection, data);
                    } else if self.transport.transmit(connection, data).is_err() {
                        // Slow-reader policy: a client whose queue is full
                        // is closed with a stream error, so that it can
                        // neither stall the loop nor grow our memory.
                        self.overflowed.insert(connection);
                        self.server
                            .handle_output_overflow(connection, Instant::now());
                    }
                }
                Output::Close { connection } => {
                    self.overflowed.remove(&connection);
                    self.transport.close(connection);
                }
                Output::Abort { connection } => self.transport.abort(connection),
                Output::Storage { request, query } => self.storage.submit(request, query),
                Output::StartTls { connection } => {
                    self.transport.start_tls(connection);
                    started_tls.push(connection);
                }
                Output::NotifyWritten { connection, token } => {
                    self.transport.notify_written(connection, token)
                }
            }
        }
        started_tls
    }
}

/// Call `stop` (once) on SIGTERM or SIGINT, from a thread of its own.
pub fn on_terminate(stop: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("terminate".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                stop();
            }
        })?;
    Ok(())
}

/// How long writers get to flush the last words (`<system-shutdown/>`)
/// after storage is drained, before the process exits.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// With `ROOKERY_CAPTURE_DIR` set, every read is appended to
/// `<dir>/<pid>-<connection>.bin` in the `session_bytes` fuzz input format
/// (a 0 mode byte, reads separated by 0xFF): real client traffic becomes
/// fuzz seed corpus. Off (and free) otherwise; never for production.
fn capture(id: ConnectionId, data: &[u8]) {
    static DIR: std::sync::OnceLock<Option<std::path::PathBuf>> = std::sync::OnceLock::new();
    let Some(dir) = DIR.get_or_init(|| std::env::var_os("ROOKERY_CAPTURE_DIR").map(Into::into))
    else {
        return;
    };
    use std::io::Write;
    let path = dir.join(format!("{}-{}.bin", std::process::id(), id.0));
    let fresh = !path.exists();
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        let _ = f.write_all(if fresh { &[0] } else { &[0xff] });
        let _ = f.write_all(data);
    }
}

fn wall_clock() -> WallClock {
    // A clock before 1970 is a broken clock; dates then show the epoch.
    WallClock(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default(),
    )
}

/// A per-connection seed from the operating system's RNG.
pub fn fresh_seed() -> Seed {
    let mut seed = [0u8; 32];
    // Without OS randomness no stream id or nonce can be trusted; there is
    // no sane way to go on.
    getrandom::getrandom(&mut seed).expect("the OS random number generator failed");
    Seed(seed)
}

/// The bytes queued for one connection's writer, shared between the event
/// loop (which adds) and the writer (which subtracts once written). It
/// bounds a connection's output in bytes without allocating a queue of
/// fixed size per connection.
#[derive(Clone, Debug)]
pub struct OutputBudget {
    queued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    limit: usize,
}

impl OutputBudget {
    pub fn new(limit: usize) -> Self {
        OutputBudget {
            queued: Default::default(),
            limit,
        }
    }

    /// Account for `len` more bytes, or refuse if that passes the limit.
    pub fn reserve(&self, len: usize) -> Result<(), QueueFull> {
        use std::sync::atomic::Ordering;
        let queued = self.queued.fetch_add(len, Ordering::AcqRel) + len;
        if queued > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(QueueFull);
        }
        Ok(())
    }

    /// `len` bytes were written to the socket.
    pub fn release(&self, len: usize) {
        self.queued
            .fetch_sub(len, std::sync::atomic::Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn while_tls_may_start_a_reader_waits_for_each_verdict() {
        let mut credit = ReadCredit::new(false);
        assert!(!credit.must_wait());
        credit.sent();
        assert!(credit.must_wait());
        assert!(!credit.settle(Verdict::Continue { read_ahead: false }));
        assert!(!credit.must_wait());
    }

    #[test]
    fn reading_ahead_allows_max_input_in_flight() {
        let mut credit = ReadCredit::new(false);
        credit.sent();
        credit.settle(Verdict::Continue { read_ahead: true });
        for _ in 0..MAX_INPUT_IN_FLIGHT {
            assert!(!credit.must_wait());
            credit.sent();
        }
        assert!(credit.must_wait());
    }

    #[test]
    fn start_tls_verdict_is_reported() {
        let mut credit = ReadCredit::new(false);
        credit.sent();
        assert!(credit.settle(Verdict::StartTls));
    }

    #[test]
    fn budget_refuses_past_its_limit_and_recovers_after_writes() {
        let budget = OutputBudget::new(10);
        assert!(budget.reserve(6).is_ok());
        assert!(budget.reserve(5).is_err());
        budget.release(6);
        assert!(budget.reserve(10).is_ok());
    }
}

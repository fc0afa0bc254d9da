//! Rookery on blocking std threads.
//!
//! Threads: one accepts, one runs the core (the only owner of the
//! `Server`), one runs storage, and each connection has a reader and a
//! writer. Readers and the storage worker send events to the core thread over
//! one bounded channel (a reader that outruns the core blocks, which is TCP
//! backpressure, not buffering). The core thread never blocks on a socket:
//! it hands bytes to each connection's writer through a queue bounded in
//! bytes ([`OutputBudget`]).

use anyhow::{Context, Result};
use rookery_core::{ConnectionId, Server};
use rookery_host::{
    log, ConnectionHandle, Connections, Driver, Event, Outgoing, OutputBudget, Settings,
    SqliteStorage, StorageWorker, MAX_INPUT_IN_FLIGHT,
};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{self, RecvTimeoutError, Sender, SyncSender};
use std::time::Instant;

/// Events waiting for the core thread; readers block beyond this.
const EVENT_QUEUE: usize = 1024;
/// Threads per connection need little stack: they only copy bytes.
const CONNECTION_STACK: usize = 64 * 1024;
const READ_BUFFER: usize = 4096;
/// A write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection as the core thread sees it.
struct Conn {
    queue: Sender<Outgoing>,
    socket: TcpStream,
    /// Returns a read slot to the reader (see `MAX_INPUT_IN_FLIGHT`).
    credit: SyncSender<()>,
}

impl ConnectionHandle for Conn {
    fn queue(&self, item: Outgoing) -> bool {
        self.queue.send(item).is_ok()
    }

    fn shutdown(&self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    fn input_consumed(&self) {
        let _ = self.credit.try_send(());
    }
}

/// Run the server until the process ends.
pub fn serve(settings: Settings) -> Result<()> {
    let listener = TcpListener::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    let storage = SqliteStorage::open(&settings.data_dir)?;
    let (events, inbox) = mpsc::sync_channel::<Event<(OutputBudget, Conn)>>(EVENT_QUEUE);
    let answers = events.clone();
    let worker = StorageWorker::spawn(Box::new(storage), move |request, answer| {
        let _ = answers.send(Event::Storage(request, answer));
    })?;
    let mut driver = Driver::new(
        Server::new(settings.core.clone()),
        Connections::default(),
        worker,
    );
    std::thread::Builder::new()
        .name("core".into())
        .spawn(move || loop {
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
    log!(
        "listening on {} for {} (rookery-std)",
        listener.local_addr()?,
        settings.core.domains.join(", ")
    );
    let mut next_id = 0u64;
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
        next_id += 1;
        if let Err(e) = start_connection(
            ConnectionId(next_id),
            socket,
            &events,
            settings.output_buffer,
        ) {
            log!("could not start connection: {e}");
        }
    }
    Ok(())
}

fn start_connection(
    id: ConnectionId,
    socket: TcpStream,
    events: &SyncSender<Event<(OutputBudget, Conn)>>,
    limit: usize,
) -> Result<()> {
    socket.set_nodelay(true)?;
    let peer = socket.peer_addr()?.ip();
    // Tokens for reads in flight to the core: a reader takes one per read,
    // the core loop gives it back once the read is consumed.
    let (credit, credits) = mpsc::sync_channel::<()>(MAX_INPUT_IN_FLIGHT);
    for _ in 0..MAX_INPUT_IN_FLIGHT {
        let _ = credit.try_send(());
    }
    let (writes, pending) = mpsc::channel::<Outgoing>();
    let budget = OutputBudget::new(limit);
    let written = budget.clone();
    let mut writer_socket = socket.try_clone()?;
    // A client that stops reading altogether must not hold its writer (and
    // socket) forever.
    writer_socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut reader_socket = socket.try_clone()?;
    events
        .send(Event::Accepted(
            id,
            peer,
            (
                budget,
                Conn {
                    queue: writes,
                    socket,
                    credit: credit.clone(),
                },
            ),
        ))
        .context("core thread is gone")?;
    std::thread::Builder::new()
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            for write in pending {
                let ok = match write {
                    Outgoing::Data(data) => {
                        written.release(data.len());
                        writer_socket.write_all(&data).is_ok()
                    }
                    Outgoing::Close => false,
                };
                if !ok {
                    break;
                }
            }
            let _ = writer_socket.shutdown(Shutdown::Both);
        })?;
    let events = events.clone();
    std::thread::Builder::new()
        .stack_size(CONNECTION_STACK)
        .spawn(move || {
            let mut buffer = [0u8; READ_BUFFER];
            loop {
                match reader_socket.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // Wait while this connection has enough input
                        // queued for the core (fairness between clients).
                        if credits.recv().is_err() {
                            return;
                        }
                        if events
                            .send(Event::Received(id, buffer[..n].to_vec()))
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
            let _ = events.send(Event::PeerClosed(id));
        })?;
    Ok(())
}

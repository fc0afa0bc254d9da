//! Rookery on smol / async-io.
//!
//! Tasks on one executor thread: one accepts, one runs the core (the only
//! owner of the `Server`), and each connection has a reader and a writer
//! task. Readers send events to the core task over one bounded channel (a
//! reader that outruns the core waits: TCP backpressure, not buffering).
//! The core task never awaits a socket: it hands bytes to each connection's
//! writer through a queue bounded in bytes ([`OutputBudget`]). Storage runs on its own thread.

use anyhow::{Context, Result};
use async_io::{Async, Timer};
use rookery_core::{ConnectionId, Server};
use rookery_host::{
    log, ConnectionHandle, Connections, Driver, Event, Outgoing, OutputBudget, Settings,
    SqliteStorage, StorageWorker, MAX_INPUT_IN_FLIGHT,
};
use smol::channel::{self, Receiver, Sender};
use smol::future::FutureExt;
use smol::io::AsyncWriteExt;
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

/// Events waiting for the core task; readers wait beyond this.
const EVENT_QUEUE: usize = 1024;
const READ_BUFFER: usize = 4096;
/// A write that makes no progress for this long ends the connection.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection as the core task sees it.
struct Conn {
    queue: Sender<Outgoing>,
    socket: Arc<Async<TcpStream>>,
    /// Returns a read slot to the reader (see `MAX_INPUT_IN_FLIGHT`).
    credit: Sender<()>,
}

impl ConnectionHandle for Conn {
    fn queue(&self, item: Outgoing) -> bool {
        self.queue.try_send(item).is_ok()
    }

    fn shutdown(&self) {
        let _ = self.socket.get_ref().shutdown(Shutdown::Both);
    }

    fn input_consumed(&self) {
        let _ = self.credit.try_send(());
    }
}

/// Run the server until the process ends.
pub fn serve(settings: Settings) -> Result<()> {
    smol::block_on(run(settings))
}

async fn run(settings: Settings) -> Result<()> {
    let listener = Async::<TcpListener>::bind(settings.listen)
        .with_context(|| format!("binding {}", settings.listen))?;
    let storage = SqliteStorage::open(&settings.data_dir)?;
    let (events, inbox) = channel::bounded::<Event<(OutputBudget, Conn)>>(EVENT_QUEUE);
    let answers = events.clone();
    let worker = StorageWorker::spawn(Box::new(storage), move |request, answer| {
        let _ = answers.send_blocking(Event::Storage(request, answer));
    })?;
    let driver = Driver::new(
        Server::new(settings.core.clone()),
        Connections::default(),
        worker,
    );
    smol::spawn(core_loop(driver, inbox)).detach();
    log!(
        "listening on {} for {} (rookery-smol)",
        listener.get_ref().local_addr()?,
        settings.core.domains.join(", ")
    );
    let mut next_id = 0u64;
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
        next_id += 1;
        start_connection(
            ConnectionId(next_id),
            socket,
            &events,
            settings.output_buffer,
        )
        .await;
    }
}

async fn core_loop(
    mut driver: Driver<Connections<Conn>>,
    inbox: Receiver<Event<(OutputBudget, Conn)>>,
) {
    loop {
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
    events: &Sender<Event<(OutputBudget, Conn)>>,
    limit: usize,
) {
    let _ = socket.get_ref().set_nodelay(true);
    let socket = Arc::new(socket);
    // Unbounded in slots, bounded in bytes by the budget: a bounded channel
    // would allocate all its slots up front, for every idle connection.
    let (writes, pending) = channel::unbounded::<Outgoing>();
    let budget = OutputBudget::new(limit);
    let written = budget.clone();
    // Tokens for reads in flight to the core: a reader takes one per read,
    // the core loop gives it back once the read is consumed.
    let (credit, credits) = channel::bounded::<()>(MAX_INPUT_IN_FLIGHT);
    for _ in 0..MAX_INPUT_IN_FLIGHT {
        let _ = credit.try_send(());
    }
    let conn = (
        budget,
        Conn {
            queue: writes,
            socket: socket.clone(),
            credit: credit.clone(),
        },
    );
    let Ok(peer) = socket.get_ref().peer_addr().map(|a| a.ip()) else {
        return;
    };
    if events.send(Event::Accepted(id, peer, conn)).await.is_err() {
        return;
    }
    let writer = socket.clone();
    smol::spawn(async move {
        while let Ok(Outgoing::Data(data)) = pending.recv().await {
            written.release(data.len());
            // A client that stops reading altogether must not hold its
            // writer (and socket) forever.
            let write = async { (&*writer).write_all(&data).await.is_ok() };
            let stalled = async {
                Timer::after(WRITE_TIMEOUT).await;
                false
            };
            if !write.or(stalled).await {
                break;
            }
        }
        let _ = writer.get_ref().shutdown(Shutdown::Both);
    })
    .detach();
    let events = events.clone();
    smol::spawn(async move {
        loop {
            if socket.readable().await.is_err() {
                break;
            }
            // The buffer lives only between readiness and read, never across
            // an await, so an idle connection's task holds no read buffer.
            let read = {
                let mut buffer = [0u8; READ_BUFFER];
                (&mut socket.get_ref())
                    .read(&mut buffer)
                    .map(|n| buffer[..n].to_vec())
            };
            match read {
                Ok(data) if data.is_empty() => break,
                Ok(data) => {
                    // Wait while this connection has enough input queued
                    // for the core (fairness between clients).
                    if credits.recv().await.is_err() {
                        return;
                    }
                    if events.send(Event::Received(id, data)).await.is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(_) => break,
            }
        }
        let _ = events.send(Event::PeerClosed(id)).await;
    })
    .detach();
}

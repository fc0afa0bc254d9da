//! The event loop body both servers share: feed an event to the core, then
//! carry out its effects. The shims differ only in how they wait for events
//! and how bytes reach a socket ([`Transport`]).

use crate::worker::StorageWorker;
use rookery_core::{ConnectionId, Output, RequestId, Seed, Server, StorageAnswer};
use std::time::Instant;

/// What happened, as a shim reports it.
pub enum Event<W> {
    /// A connection was accepted; `W` is how to write to it.
    Accepted(ConnectionId, W),
    Received(ConnectionId, Vec<u8>),
    PeerClosed(ConnectionId),
    Storage(RequestId, StorageAnswer),
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
    /// Flush what is queued, then close.
    fn close(&mut self, id: ConnectionId);
    /// Close at once, dropping what is queued.
    fn abort(&mut self, id: ConnectionId);
}

pub struct Driver<T: Transport> {
    server: Server,
    transport: T,
    storage: StorageWorker,
}

impl<T: Transport> Driver<T> {
    pub fn new(server: Server, transport: T, storage: StorageWorker) -> Self {
        Driver {
            server,
            transport,
            storage,
        }
    }

    pub fn handle(&mut self, event: Event<T::Writer>) {
        let now = Instant::now();
        match event {
            Event::Accepted(id, writer) => {
                self.transport.register(id, writer);
                self.server.handle_accept(id, fresh_seed(), now);
            }
            Event::Received(id, data) => self.server.handle_bytes(id, &data, now),
            Event::PeerClosed(id) => self.server.handle_peer_closed(id, now),
            Event::Storage(request, answer) => self.server.handle_storage(request, answer, now),
        }
        self.run_effects();
    }

    /// When [`Driver::handle_timeout`] is next due.
    pub fn next_timeout(&self) -> Option<Instant> {
        self.server.poll_timeout()
    }

    pub fn handle_timeout(&mut self) {
        self.server.handle_timeout(Instant::now());
        self.run_effects();
    }

    fn run_effects(&mut self) {
        while let Some(output) = self.server.poll_output() {
            match output {
                Output::Transmit { connection, data } => {
                    if self.transport.transmit(connection, data).is_err() {
                        // Slow-reader policy: a client whose queue is full
                        // is disconnected, as if it had dropped, so that it
                        // can neither stall the loop nor grow our memory.
                        self.transport.abort(connection);
                        self.server.handle_peer_closed(connection, Instant::now());
                    }
                }
                Output::Close { connection } => self.transport.close(connection),
                Output::Storage { request, query } => self.storage.submit(request, query),
            }
        }
    }
}

/// A per-connection seed from the operating system's RNG.
pub fn fresh_seed() -> Seed {
    let mut seed = [0u8; 32];
    // Without OS randomness no stream id or nonce can be trusted; there is
    // no sane way to go on.
    getrandom::getrandom(&mut seed).expect("the OS random number generator failed");
    Seed(seed)
}

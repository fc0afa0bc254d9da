//! What both Rookery servers share outside the sans-IO core: the
//! configuration file, storage, the command line, and the event-loop body
//! that applies the core's effects. Nothing here knows XMPP.

pub mod admin;
pub mod cli;
pub mod config;
pub mod driver;
pub mod files;
pub mod storage;
pub mod tls;
pub mod worker;

pub use config::Settings;
pub use driver::{
    on_terminate, ConnectionHandle, Connections, Driver, Event, Listener, Outgoing, OutputBudget,
    QueueFull, ReadCredit, Transport, Verdict, MAX_INPUT_IN_FLIGHT, SHUTDOWN_GRACE,
};
pub use storage::{SqliteStorage, Storage};
pub use tls::{Tls, TlsConfigs};
pub use worker::StorageWorker;

/// Log a line to stderr, prefixed with the binary's name. Operators run
/// Rookery under systemd or a terminal, both of which capture stderr.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("rookery: {}", format_args!($($arg)*))
    };
}

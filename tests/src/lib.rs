//! Test support for Rookery: an independent SCRAM client, a raw XMPP client
//! over TCP, and a way to start either server binary on a loopback port.

pub mod client;
pub mod scram;
pub mod server;

/// Expand a test body into one test per server binary, so that both shims
/// are held to the same behaviour.
#[macro_export]
macro_rules! for_both_shims {
    ($(fn $name:ident($shim:ident) $body:block)*) => {
        mod smol {
            use super::*;
            $( #[test] fn $name() -> anyhow::Result<()> { let $shim = $crate::server::Shim::Smol; $body } )*
        }
        mod std_threads {
            use super::*;
            $( #[test] fn $name() -> anyhow::Result<()> { let $shim = $crate::server::Shim::Std; $body } )*
        }
    };
}

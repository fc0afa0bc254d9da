//! Test support for Rookery: an independent SCRAM client, a raw XMPP client
//! over TCP, and a way to start either server binary on a loopback port.

pub mod scram;

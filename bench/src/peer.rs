//! A trivial XMPP peer for measuring the load generator's own ceiling: it
//! accepts any login with canned answers and echoes every message back to
//! its sender. No server can do less per message, so what the generator
//! sustains against it bounds what it can measure.

use crate::session::{Item, Reader, Stream};
use anyhow::Result;
use async_io::Async;
use std::net::{SocketAddr, TcpListener, TcpStream};

const HEADER: &[u8] = b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='localhost' id='peer' version='1.0'>";
const AUTH_FEATURES: &[u8] = b"<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>";
const BIND_FEATURES: &[u8] =
    b"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>";
const SUCCESS: &[u8] = b"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
const ROSTER: &[u8] = b"<iq type='result' id='roster'><query xmlns='jabber:iq:roster'/></iq>";

/// Serve on `listen` with `threads` executor threads, until killed.
pub fn serve(listen: SocketAddr, threads: usize) -> Result<()> {
    let listener = TcpListener::bind(listen)?;
    eprintln!("rookery-load peer: listening on {}", listener.local_addr()?);
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let (tx, rx) = smol::channel::unbounded::<(TcpStream, u64)>();
            std::thread::spawn(move || {
                let ex = smol::LocalExecutor::new();
                async_io::block_on(ex.run(async {
                    while let Ok((tcp, id)) = rx.recv().await {
                        ex.spawn(async move {
                            let _ = connection(tcp, id).await;
                        })
                        .detach();
                    }
                }));
            });
            tx
        })
        .collect();
    for (id, tcp) in listener.incoming().enumerate() {
        let Ok(tcp) = tcp else { continue };
        let _ = tcp.set_nodelay(true);
        let worker = &workers[id % workers.len()];
        if worker.send_blocking((tcp, id as u64)).is_err() {
            anyhow::bail!("a peer thread ended");
        }
    }
    Ok(())
}

async fn connection(tcp: TcpStream, id: u64) -> std::io::Result<()> {
    let mut stream = Stream::Plain(Async::new(tcp)?);
    let mut reader = Reader::default();
    let mut authenticated = false;
    let mut out = Vec::new();
    loop {
        if reader.read_from(&mut stream).await? == 0 {
            return Ok(());
        }
        let mut restart = false;
        while let Some(item) = reader.pop() {
            match item {
                Item::Header => {
                    out.extend_from_slice(HEADER);
                    out.extend_from_slice(if authenticated {
                        BIND_FEATURES
                    } else {
                        AUTH_FEATURES
                    });
                }
                Item::Element(e) if e.starts_with(b"<message") => out.extend_from_slice(e),
                Item::Element(e) if e.starts_with(b"<auth") => {
                    out.extend_from_slice(SUCCESS);
                    authenticated = true;
                    restart = true;
                }
                Item::Element(e) if e.starts_with(b"<iq") => {
                    if contains(e, b"xmpp-bind") {
                        out.extend_from_slice(format!("<iq type='result' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>peer{id}@localhost/load</jid></bind></iq>").as_bytes());
                    } else if contains(e, b"jabber:iq:roster") {
                        out.extend_from_slice(ROSTER);
                    }
                }
                Item::Element(_) => {}
                Item::End => {
                    stream.write_all(b"</stream:stream>").await?;
                    return Ok(());
                }
            }
        }
        if restart {
            reader.restart();
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

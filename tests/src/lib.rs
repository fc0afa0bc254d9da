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

/// Whether Debian's python3-slixmpp (the independent client) can run. A
/// fresh machine may lack it: its tests are then skipped with a message
/// saying how to install it, unless `ROOKERY_REQUIRE_SLIXMPP` is set (as
/// `.ci/run` does), when its absence fails them.
pub fn slixmpp_ready() -> anyhow::Result<bool> {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    python_ready(&READY, "slixmpp", "python3-slixmpp")
}

/// Whether Debian's python3-nbxmpp (Gajim's library, the second
/// independent client) can run; as [`slixmpp_ready`].
pub fn nbxmpp_ready() -> anyhow::Result<bool> {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    python_ready(&READY, "nbxmpp", "python3-nbxmpp")
}

fn python_ready(
    ready: &std::sync::OnceLock<bool>,
    module: &str,
    package: &str,
) -> anyhow::Result<bool> {
    let ready = *ready.get_or_init(|| {
        std::process::Command::new("/usr/bin/python3")
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if ready {
        return Ok(true);
    }
    let how = format!(
        "{package} is not installed for /usr/bin/python3 \
         (sudo apt-get install {package}, or bash .ci/run)"
    );
    if std::env::var_os("ROOKERY_REQUIRE_SLIXMPP").is_some() {
        anyhow::bail!("{how}");
    }
    eprintln!("SKIPPED: {how}");
    Ok(false)
}

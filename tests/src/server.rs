//! Start a Rookery binary on an ephemeral loopback port with a temporary
//! data dir, as an operator would run it.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::Duration;

/// `[c2s]` settings for benchmarks: no connection or rate limits, so that
/// the server itself is measured.
pub const BENCH_LIMITS: &str =
    "max_connections = 0\nmax_connections_per_address = 0\nmax_unauthenticated_per_address = 0\n\
     connection_rate_per_address = 0\nread_rate = 0\n";

/// Which server binary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shim {
    Smol,
    Std,
}

impl Shim {
    pub fn binary_name(self) -> &'static str {
        match self {
            Shim::Smol => "rookery-smol",
            Shim::Std => "rookery-std",
        }
    }

    /// `smol` or `std`, as benchmark command lines name them.
    pub fn from_arg(arg: &str) -> Result<Shim> {
        match arg {
            "smol" => Ok(Shim::Smol),
            "std" => Ok(Shim::Std),
            other => bail!("unknown server {other} (smol or std)"),
        }
    }

    /// The built binary, building both servers once per test process.
    pub fn binary(self) -> Result<PathBuf> {
        static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
        let dir = BUILT
            .get_or_init(|| build_binaries().map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(anyhow::Error::msg)?;
        Ok(dir.join(self.binary_name()))
    }
}

/// `cargo build` the two servers into the target dir this test runs from,
/// with the same profile. Integration tests of one package cannot see the
/// binaries of another, so the tests build them.
fn build_binaries() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    // <target>/<profile>/deps/<test binary>, or <target>/<profile>/<binary>
    let mut profile_dir = exe.parent().context("no exe dir")?.to_path_buf();
    if profile_dir.file_name().is_some_and(|d| d == "deps") {
        profile_dir.pop();
    }
    let target_dir = profile_dir.parent().context("no target dir")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--quiet",
        "-p",
        "rookery-smol",
        "-p",
        "rookery-std",
        "--target-dir",
    ])
    .arg(target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the servers failed");
    }
    Ok(profile_dir)
}

/// A running server; killed when dropped.
pub struct TestServer {
    pub shim: Shim,
    pub addr: SocketAddr,
    /// The direct TLS (XEP-0368) listener.
    pub tls_addr: Option<SocketAddr>,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl TestServer {
    /// Start `shim` with `extra` `[c2s]` TOML appended to a config that
    /// serves `localhost` on `127.0.0.1:0` with a fresh data dir, with
    /// encryption optional (STARTTLS offered, SASL allowed in the clear).
    pub fn start(shim: Shim, users: &[(&str, &str)], extra: &str) -> Result<TestServer> {
        Self::start_with(shim, users, &format!("require_encryption = false\n{extra}"))
    }

    /// Like [`TestServer::start`], with the default encryption policy:
    /// TLS required before SASL.
    pub fn start_secure(shim: Shim, users: &[(&str, &str)], extra: &str) -> Result<TestServer> {
        Self::start_with(shim, users, extra)
    }

    /// Like [`TestServer::start`], with `top` TOML at the top level of the
    /// config (keys outside any table, such as `admins`).
    pub fn start_with_top(
        shim: Shim,
        users: &[(&str, &str)],
        top: &str,
        extra: &str,
    ) -> Result<TestServer> {
        Self::configured(
            shim,
            users,
            top,
            &format!("require_encryption = false\n{extra}"),
        )
    }

    fn start_with(shim: Shim, users: &[(&str, &str)], c2s: &str) -> Result<TestServer> {
        Self::configured(shim, users, "", c2s)
    }

    fn configured(shim: Shim, users: &[(&str, &str)], top: &str, c2s: &str) -> Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let config = dir.path().join("rookery.toml");
        let data = dir.path().join("data");
        std::fs::write(
            &config,
            format!(
                "domains = ['localhost']\ndata_dir = '{}'\n{top}\n[storage]\nscram_iterations = 4096\n[c2s]\nlisten = '127.0.0.1:0'\ndirect_tls_listen = '127.0.0.1:0'\n{c2s}\n",
                data.display()
            ),
        )?;
        if !users.is_empty() {
            let lines: String = users.iter().map(|(j, p)| format!("{j} {p}\n")).collect();
            admin(shim, &config, &["adduser", "--batch"], Some(&lines))?;
        }
        let (child, addr, tls_addr) = launch(shim, &config)?;
        Ok(TestServer {
            shim,
            addr,
            tls_addr,
            dir,
            child,
        })
    }

    /// Kill the server with SIGKILL (no chance to flush anything) and start
    /// it again on the same data dir; `addr` changes.
    pub fn kill_and_restart(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        let (child, addr, tls_addr) = launch(self.shim, &self.config_path())?;
        self.child = child;
        self.addr = addr;
        self.tls_addr = tls_addr;
        Ok(())
    }

    /// Stop the server with SIGTERM, wait for it to exit (at most 10 s),
    /// and start it again on the same data dir; `addr` changes. Returns
    /// how the stopped server exited.
    pub fn terminate_and_restart(&mut self) -> Result<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if std::time::Instant::now() > deadline {
                self.child.kill()?;
                anyhow::bail!("the server did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let (child, addr, tls_addr) = launch(self.shim, &self.config_path())?;
        self.child = child;
        self.addr = addr;
        self.tls_addr = tls_addr;
        Ok(status)
    }

    /// The certificate the server generated for `localhost`, as PEM.
    pub fn certificate_path(&self) -> PathBuf {
        self.dir.path().join("data/tls/localhost.crt")
    }

    /// Send the server SIGHUP (certificate reload).
    pub fn hangup(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-HUP", &self.pid().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -HUP failed");
        }
        Ok(())
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("rookery.toml")
    }

    /// Run `adduser`, `passwd` or `deluser` against this server's config.
    pub fn admin(&self, args: &[&str], password: Option<&str>) -> Result<()> {
        admin(self.shim, &self.config_path(), args, password)
    }

    /// Run `adduser --batch` with `lines` on stdin.
    pub fn admin_batch(&self, lines: &str) -> Result<()> {
        admin(
            self.shim,
            &self.config_path(),
            &["adduser", "--batch"],
            Some(lines),
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory in KiB, from /proc.
    pub fn rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("no VmRSS value")?
            .parse()?)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start the server binary with `config`; wait for its "listening on" line
/// (and note the direct TLS listener logged before it).
fn launch(shim: Shim, config: &Path) -> Result<(Child, SocketAddr, Option<SocketAddr>)> {
    let mut child = Command::new(shim.binary()?)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let (ready, listening) = mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        let mut tls = None;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split("direct TLS (XEP-0368) on ").nth(1) {
                tls = rest.split_whitespace().next().map(str::to_owned);
            }
            if !sent {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
                    let _ = ready.send((addr, tls.clone()));
                    sent = true;
                }
            }
            if std::env::var_os("ROOKERY_TEST_LOG").is_some() {
                eprintln!("[server] {line}");
            }
        }
    });
    let (addr, tls) = match listening.recv_timeout(Duration::from_secs(20)) {
        Ok((a, tls)) => (a.parse()?, tls.map(|t| t.parse()).transpose()?),
        Err(_) => {
            let _ = child.kill();
            bail!("{} did not report listening", shim.binary_name());
        }
    };
    Ok((child, addr, tls))
}

fn admin(shim: Shim, config: &Path, args: &[&str], password: Option<&str>) -> Result<()> {
    let mut child = Command::new(shim.binary()?)
        .args(args)
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    if let Some(p) = password {
        let mut stdin = child.stdin.take().context("no stdin")?;
        stdin.write_all(p.as_bytes())?;
        if !p.ends_with('\n') {
            stdin.write_all(b"\n")?;
        }
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

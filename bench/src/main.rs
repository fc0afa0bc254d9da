//! rookery-load: an XMPP client load generator.
//!
//! ```text
//! rookery-load WORKLOAD --server ADDR [options]   WORKLOAD: login | idle | pairs | rate
//! rookery-load register --server ADDR [options]   create the accounts by XEP-0077
//! rookery-load peer [--listen ADDR]               a trivial echoing peer (the ceiling)
//! ```
//!
//! Session `i` logs in as `<prefix><first + i>@<domain>` with one password
//! for all. Pairs of sessions (2k, 2k+1) message each other. See `--help`.

mod keys;
mod peer;
mod presence;
mod procfs;
mod session;
mod splitter;
mod workload;

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use rookery_tests::scram::Hash;
use serde_json::json;
use session::{Account, LoginSpec, Mechanism};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use workload::{Schedule, Shared, Workload};

const USAGE: &str = "\
usage: rookery-load WORKLOAD --server ADDR [options]
       rookery-load register --server ADDR [--sessions N ...]
       rookery-load peer [--listen ADDR] [--threads T]

workloads:
  login   log N sessions in, report the login rate, close
  idle    hold N sessions for --duration (memory per session: give --server-pid)
  pairs   closed loop: each session keeps --window messages in flight to its partner
  rate    open loop: --rate messages/s in total, spread evenly over the sessions
  presence  sessions with --contacts ring neighbours (subscribed both ways first)
          change presence --rate times/s in total (open loop)

options:
  --server ADDR            server address (default 127.0.0.1:5222)
  --domain D               XMPP domain (default localhost)
  --sessions N             sessions, an even number (default 200)
  --user-prefix P          account i is P<first+i> (default u)
  --first-account K        (default 0)
  --password PW            every account's password (default bench-password)
  --mechanism M            plain | scram-sha-1 | scram-sha-256 (default plain)
  --starttls --ca FILE     STARTTLS, trusting the certificates in FILE
  --roster --presence      fetch the roster / send initial presence after binding
  --stream-management      enable XEP-0198 with resumption after binding (idle: the
                           memory it adds; the generator does not acknowledge)
  --login-concurrency C    logins in progress at once (default 100)
  --window W               pairs: messages in flight per direction (default 10)
  --rate R                 rate: messages/s in total (default 5000); presence: changes/s
  --contacts K             presence: contacts per session, even, below --sessions (default 10)
  --duration S             seconds the measured phase lasts (default 10)
  --threads T              generator threads (default: all cores)
  --sources K              spread source addresses over 127.0.0.1..K (default 16)
  --server-pid PID         read the server's memory and CPU from /proc
  --label NAME             name the run in the report
  --json FILE              write the report as JSON too
  --timeout S              per-login timeout (default 30)
  --no-prepare             SCRAM: derive keys during the logins, not before
  --key-cache FILE         SCRAM: keep derived keys in FILE for the next run (one per server)
";

struct Options {
    workload: String,
    server: SocketAddr,
    domain: String,
    sessions: usize,
    prefix: String,
    first: usize,
    password: String,
    mechanism: Mechanism,
    starttls: bool,
    ca: Option<String>,
    roster: bool,
    presence: bool,
    stream_management: bool,
    concurrency: usize,
    window: u32,
    rate: f64,
    contacts: usize,
    duration: Duration,
    threads: usize,
    sources: u8,
    server_pid: Option<String>,
    label: Option<String>,
    json: Option<String>,
    timeout: Duration,
    prepare: bool,
    key_cache: Option<String>,
    listen: SocketAddr,
}

fn parse(args: Vec<String>) -> Result<Options> {
    let mut o = Options {
        workload: String::new(),
        server: "127.0.0.1:5222".parse()?,
        domain: "localhost".into(),
        sessions: 200,
        prefix: "u".into(),
        first: 0,
        password: "bench-password".into(),
        mechanism: Mechanism::Plain,
        starttls: false,
        ca: None,
        roster: false,
        presence: false,
        stream_management: false,
        concurrency: 100,
        window: 10,
        rate: 5000.0,
        contacts: 10,
        duration: Duration::from_secs(10),
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        sources: 16,
        server_pid: None,
        label: None,
        json: None,
        timeout: Duration::from_secs(30),
        prepare: true,
        key_cache: None,
        listen: "127.0.0.1:5299".parse()?,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--server" => o.server = value()?.parse()?,
            "--listen" => o.listen = value()?.parse()?,
            "--domain" => o.domain = value()?,
            "--sessions" => o.sessions = value()?.parse()?,
            "--user-prefix" => o.prefix = value()?,
            "--first-account" => o.first = value()?.parse()?,
            "--password" => o.password = value()?,
            "--mechanism" => {
                o.mechanism = match value()?.as_str() {
                    "plain" => Mechanism::Plain,
                    "scram-sha-1" => Mechanism::Scram(Hash::Sha1),
                    "scram-sha-256" => Mechanism::Scram(Hash::Sha256),
                    other => bail!("unknown mechanism {other}"),
                }
            }
            "--starttls" => o.starttls = true,
            "--ca" => o.ca = Some(value()?),
            "--roster" => o.roster = true,
            "--presence" => o.presence = true,
            "--stream-management" => o.stream_management = true,
            "--login-concurrency" => o.concurrency = value()?.parse()?,
            "--window" => o.window = value()?.parse()?,
            "--rate" => o.rate = value()?.parse()?,
            "--contacts" => o.contacts = value()?.parse()?,
            "--duration" => o.duration = Duration::from_secs_f64(value()?.parse()?),
            "--threads" => o.threads = value()?.parse()?,
            "--sources" => o.sources = value()?.parse()?,
            "--server-pid" => o.server_pid = Some(value()?),
            "--label" => o.label = Some(value()?),
            "--json" => o.json = Some(value()?),
            "--timeout" => o.timeout = Duration::from_secs_f64(value()?.parse()?),
            "--no-prepare" => o.prepare = false,
            "--key-cache" => o.key_cache = Some(value()?),
            "--help" | "-h" => o.workload = "help".into(),
            a if a.starts_with('-') => bail!("unknown option {a}"),
            _ if o.workload.is_empty() => o.workload = arg,
            _ => bail!("unexpected argument {arg}"),
        }
    }
    if o.sessions % 2 == 1 {
        o.sessions += 1;
    }
    Ok(o)
}

fn main() -> Result<()> {
    let o = parse(std::env::args().skip(1).collect())?;
    match o.workload.as_str() {
        "" | "help" => {
            print!("{USAGE}");
            Ok(())
        }
        "peer" => peer::serve(o.listen, o.threads),
        "register" => register(&o),
        "login" => run(&o, Workload::Login),
        "idle" => run(&o, Workload::Idle),
        "pairs" => run(&o, Workload::Pairs { window: o.window }),
        "rate" => run(
            &o,
            Workload::Rate {
                interval: interval(&o)?,
            },
        ),
        "presence" => {
            if o.contacts % 2 == 1 || o.contacts == 0 || o.contacts >= o.sessions {
                bail!("--contacts must be even, positive and below --sessions");
            }
            let (interval, contacts) = (interval(&o)?, o.contacts);
            run(&o, Workload::Presence { interval, contacts })
        }
        other => bail!("unknown workload {other}; try --help"),
    }
}

/// Each session's send interval for `--rate` in total.
fn interval(o: &Options) -> Result<Duration> {
    let per_session = o.rate / o.sessions as f64;
    if per_session.is_nan() || per_session <= 0.0 {
        bail!("--rate must be positive");
    }
    Ok(Duration::from_secs_f64(1.0 / per_session))
}

fn login_spec(o: &Options) -> Result<LoginSpec> {
    // Subscription requests reach available resources only (RFC 6121
    // section 3.1.3), and roster pushes interested ones.
    let presence = o.workload == "presence";
    let tls = match (o.starttls, &o.ca) {
        (false, _) => None,
        (true, Some(ca)) => Some(rookery_tests::client::tls_config(ca.as_ref(), false)?),
        (true, None) => bail!("--starttls needs --ca FILE"),
    };
    Ok(LoginSpec {
        server: o.server,
        domain: o.domain.clone(),
        mechanism: o.mechanism,
        tls,
        roster: o.roster || presence,
        presence: o.presence || presence,
        stream_management: o.stream_management,
        timeout: o.timeout,
    })
}

fn accounts(o: &Options) -> Vec<Account> {
    (0..o.sessions)
        .map(|i| Account {
            username: format!("{}{}", o.prefix, o.first + i),
            password: o.password.clone(),
            salted: None,
        })
        .collect()
}

/// Source addresses 127.0.0.1..K, when the server is on IPv4 loopback.
fn sources(o: &Options) -> Vec<IpAddr> {
    if !o.server.ip().is_loopback() || !o.server.is_ipv4() {
        return Vec::new();
    }
    (1..=o.sources.max(1))
        .map(|k| IpAddr::V4(Ipv4Addr::new(127, 0, 0, k)))
        .collect()
}

/// Run `job(i)` for i in 0..count on `threads` threads, at most
/// `concurrency` at once; for setup phases (registration, SCRAM keys).
fn for_each_session<F, Fut>(o: &Options, count: usize, job: F)
where
    F: Fn(usize) -> Fut + Sync,
    Fut: std::future::Future<Output = ()>,
{
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..o.threads.max(1) {
            scope.spawn(|| {
                let ex = smol::LocalExecutor::new();
                let per_thread = o.concurrency.div_ceil(o.threads.max(1)).max(1);
                let workers: Vec<_> = (0..per_thread)
                    .map(|_| {
                        ex.spawn(async {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= count {
                                    break;
                                }
                                job(i).await;
                            }
                        })
                    })
                    .collect();
                async_io::block_on(ex.run(async {
                    for worker in workers {
                        worker.await;
                    }
                }));
            });
        }
    });
}

fn register(o: &Options) -> Result<()> {
    procfs::raise_open_files()?;
    let spec = login_spec(o)?;
    let accounts = accounts(o);
    let sources = sources(o);
    let (created, existed) = (
        std::sync::atomic::AtomicUsize::new(0),
        std::sync::atomic::AtomicUsize::new(0),
    );
    let errors = Mutex::new(std::collections::BTreeMap::<String, usize>::new());
    let started = Instant::now();
    for_each_session(o, o.sessions, |i| {
        let (spec, account, sources) = (&spec, &accounts[i], &sources);
        let (created, existed, errors) = (&created, &existed, &errors);
        async move {
            let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
            match session::register(spec, account, source).await {
                Ok(true) => created.fetch_add(1, Ordering::Relaxed),
                Ok(false) => existed.fetch_add(1, Ordering::Relaxed),
                Err(f) => {
                    *errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(f.to_string())
                        .or_default() += 1;
                    0
                }
            };
        }
    });
    let errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    eprintln!(
        "rookery-load register: {} created, {} existed, {} failed in {:.1?} {errors:?}",
        created.into_inner(),
        existed.into_inner(),
        errors.values().sum::<usize>(),
        started.elapsed()
    );
    if !errors.is_empty() {
        bail!("registration failed for some accounts");
    }
    Ok(())
}

/// Derive every account's SCRAM `SaltedPassword` before anything is
/// measured, as a client caches it: the server's cost is what is measured.
fn prepare_scram(
    o: &Options,
    spec: &LoginSpec,
    hash: Hash,
    accounts: &mut [Account],
) -> Result<()> {
    let mut cached = match &o.key_cache {
        Some(path) => keys::load(path.as_ref(), hash)?,
        None => Default::default(),
    };
    for account in accounts.iter_mut() {
        account.salted = cached.remove(&account.username);
    }
    let missing: Vec<usize> = (0..accounts.len())
        .filter(|&i| accounts[i].salted.is_none())
        .collect();
    let sources = sources(o);
    let salted: Vec<OnceLock<session::Salted>> = missing.iter().map(|_| OnceLock::new()).collect();
    let failures = Mutex::new(Vec::new());
    let started = Instant::now();
    for_each_session(o, missing.len(), |k| {
        let i = missing[k];
        let (spec, account, sources, salted, failures) =
            (spec, &accounts[i], &sources, &salted, &failures);
        async move {
            let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
            match session::derive_salted(spec, hash, account, source).await {
                Ok(s) => {
                    let _ = salted[k].set(s);
                }
                Err(f) => failures
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(f.to_string()),
            }
        }
    });
    let failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(first) = failures.first() {
        bail!(
            "{} accounts' SCRAM keys could not be prepared; first: {first}",
            failures.len()
        );
    }
    for (&i, salted) in missing.iter().zip(salted) {
        accounts[i].salted = salted.into_inner();
    }
    if let Some(path) = &o.key_cache {
        keys::store(path.as_ref(), hash, accounts)?;
    }
    eprintln!(
        "rookery-load: derived {} SCRAM keys in {:.1?}, {} from the cache (not measured)",
        missing.len(),
        started.elapsed(),
        accounts.len() - missing.len()
    );
    Ok(())
}

fn run(o: &Options, workload: Workload) -> Result<()> {
    let open_files = procfs::raise_open_files()?;
    if o.sessions as u64 + 64 > open_files {
        bail!(
            "{} sessions need more open files than this process may hold ({open_files}); run several rookery-load processes with --first-account",
            o.sessions
        );
    }
    let spec = login_spec(o)?;
    let mut accounts = accounts(o);
    if let (Mechanism::Scram(hash), true) = (o.mechanism, o.prepare) {
        prepare_scram(o, &spec, hash, &mut accounts)?;
    }
    let server_usage = || o.server_pid.as_deref().map(procfs::usage).transpose();
    let before = server_usage()?;
    let own_before = procfs::usage("self")?;
    let (go_tx, go) = smol::channel::bounded::<()>(1);
    let by_username = accounts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.username.clone(), i))
        .collect();
    let shared = Arc::new(Shared {
        spec,
        accounts,
        by_username,
        sources: sources(o),
        workload,
        login_gate: smol::lock::Semaphore::new(o.concurrency.max(1)),
        epoch: Instant::now(),
        schedule: OnceLock::new(),
        go,
        logins: 0.into(),
        last_login_end: 0.into(),
        failures: 0.into(),
        sent: 0.into(),
        delivered: 0.into(),
        delivered_in_phase: 0.into(),
        pairs_ready: 0.into(),
        errors: Mutex::new(Default::default()),
        login_latency: Mutex::new(workload::histogram()),
        message_latency: Mutex::new(workload::histogram()),
    });
    let pairs = o.sessions / 2;
    let threads = o.threads.max(1);
    let login_started = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                let ex = smol::LocalExecutor::new();
                let tasks: Vec<_> = (t..pairs)
                    .step_by(threads)
                    .map(|p| ex.spawn(workload::pair(&shared, p)))
                    .collect();
                async_io::block_on(ex.run(async {
                    for task in tasks {
                        task.await;
                    }
                }));
                shared.merge_thread_latencies();
            })
        })
        .collect();
    let label = o
        .label
        .clone()
        .unwrap_or_else(|| workload.name().to_owned());
    // Login phase.
    let mut last = (Instant::now(), 0u64);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let done = shared.logins.load(Ordering::Relaxed);
        let failed = shared.failures.load(Ordering::Relaxed);
        if last.0.elapsed() >= Duration::from_secs(1) {
            let rate = (done - last.1) as f64 / last.0.elapsed().as_secs_f64();
            eprintln!(
                "[{label}] login {:>5.1}s  sessions {done}/{}  failed {failed}  {rate:.0} logins/s",
                login_started.elapsed().as_secs_f64(),
                o.sessions
            );
            last = (Instant::now(), done);
        }
        if done + failed >= o.sessions as u64 {
            break;
        }
    }
    let login_elapsed = Duration::from_nanos(shared.last_login_end.load(Ordering::Relaxed))
        .saturating_sub(login_started.saturating_duration_since(shared.epoch));
    let established = shared.logins.load(Ordering::Relaxed);
    let after_login = server_usage()?;
    if let Workload::Presence { contacts, .. } = workload {
        let mut printed = Instant::now();
        while shared.pairs_ready.load(Ordering::Relaxed) < pairs as u64 {
            std::thread::sleep(Duration::from_millis(100));
            if printed.elapsed() >= Duration::from_secs(1) {
                eprintln!(
                    "[{label}] subscribing to {contacts} contacts each: {} of {pairs} pairs done",
                    shared.pairs_ready.load(Ordering::Relaxed)
                );
                printed = Instant::now();
            }
        }
    }
    // Measured phase.
    let idle_usage = server_usage()?;
    let phase_start = Instant::now();
    let schedule = Schedule {
        start: phase_start,
        end: phase_start + o.duration,
        drain: Duration::from_secs(3),
    };
    let _ = shared.schedule.set(schedule);
    drop(go_tx);
    let mut last = (Instant::now(), 0u64);
    let mut peak_rss = 0;
    // The server's usage when the phase ends (not after the drain and the
    // sessions' teardown), and when it was read.
    let mut at_end = None;
    while !handles.iter().all(|h| h.is_finished()) {
        // Ten readings of /proc a second (they take the server's locks),
        // and one exactly when the phase ends.
        let mut wake = Instant::now() + Duration::from_millis(100);
        if at_end.is_none() {
            wake = wake.min(schedule.end);
        }
        std::thread::sleep(wake.saturating_duration_since(Instant::now()));
        let usage = server_usage()?;
        if let Some(u) = usage {
            peak_rss = peak_rss.max(u.rss_kib);
        }
        if at_end.is_none() && Instant::now() >= schedule.end {
            at_end = Some((usage, phase_start.elapsed()));
        }
        if workload != Workload::Login && last.0.elapsed() >= Duration::from_secs(1) {
            let delivered = shared.delivered.load(Ordering::Relaxed);
            let rate = (delivered - last.1) as f64 / last.0.elapsed().as_secs_f64();
            let errors: u64 = shared.errors.lock().map(|e| e.values().sum()).unwrap_or(0);
            eprintln!(
                "[{label}] {} {:>5.1}s  sessions {established}  {rate:.0} messages/s  errors {errors}",
                workload.name(),
                phase_start.elapsed().as_secs_f64()
            );
            last = (Instant::now(), delivered);
        }
        if Instant::now() > schedule.end + schedule.drain + Duration::from_secs(10) {
            eprintln!("[{label}] sessions did not stop in time; reporting anyway");
            // Their latencies are not in the report: say so in it.
            let late = handles.iter().filter(|h| !h.is_finished()).count();
            shared.error(&session::Failure::new(
                "report",
                format!("{late} generator threads had not finished; their latencies are missing"),
            ));
            break;
        }
    }
    let (phase_usage, phase_elapsed) = match at_end {
        Some(end) => end,
        None => (server_usage()?, phase_start.elapsed()),
    };
    let own_after = procfs::usage("self")?;
    for h in handles {
        if h.is_finished() {
            let _ = h.join();
        }
    }
    let report = Report {
        label,
        workload,
        options: o,
        shared: &shared,
        login_elapsed,
        established,
        before,
        after_login,
        idle_usage,
        phase_usage,
        phase_elapsed,
        peak_rss,
        generator_cpu: own_after.cpu.saturating_sub(own_before.cpu),
        generator_wall: login_started.elapsed(),
    };
    let json = report.json();
    print!("{}", report.summary(&json));
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")
            .with_context(|| format!("writing {path}"))?;
    }
    Ok(())
}

struct Report<'a> {
    label: String,
    workload: Workload,
    options: &'a Options,
    shared: &'a Shared,
    login_elapsed: Duration,
    established: u64,
    before: Option<procfs::Usage>,
    after_login: Option<procfs::Usage>,
    idle_usage: Option<procfs::Usage>,
    phase_usage: Option<procfs::Usage>,
    /// From the phase's start to `phase_usage`'s reading.
    phase_elapsed: Duration,
    peak_rss: u64,
    generator_cpu: Duration,
    generator_wall: Duration,
}

fn millis(h: &Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        return 0.0;
    }
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Delivery latency percentiles into a report section.
fn add_latency(section: &mut serde_json::Value, latency: &Histogram<u64>) {
    for (key, value) in [
        ("p50_ms", millis(latency, 0.5)),
        ("p95_ms", millis(latency, 0.95)),
        ("p99_ms", millis(latency, 0.99)),
        ("max_ms", latency.max() as f64 / 1000.0),
    ] {
        section[key] = json!(value);
    }
}

fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

impl Report<'_> {
    fn json(&self) -> serde_json::Value {
        let s = self.shared;
        let o = self.options;
        let login = s
            .login_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let latency = s
            .message_latency
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let sent = s.sent.load(Ordering::Relaxed);
        let delivered = s.delivered.load(Ordering::Relaxed);
        let in_phase = s.delivered_in_phase.load(Ordering::Relaxed);
        let seconds = o.duration.as_secs_f64();
        let errors: serde_json::Map<_, _> = s
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        let mut report = json!({
            "label": self.label,
            "workload": self.workload.name(),
            "server_address": o.server.to_string(),
            "mechanism": o.mechanism.name(),
            "starttls": o.starttls,
            "sessions": {"requested": o.sessions, "established": self.established},
            "login": {
                "seconds": round(self.login_elapsed.as_secs_f64(), 3),
                "per_second": round(self.established as f64 / self.login_elapsed.as_secs_f64(), 1),
                "concurrency": o.concurrency,
                "p50_ms": millis(&login, 0.5),
                "p95_ms": millis(&login, 0.95),
                "p99_ms": millis(&login, 0.99),
            },
            "errors": errors,
            "generator": {
                "threads": o.threads,
                "cpu_seconds": round(self.generator_cpu.as_secs_f64(), 3),
                "cpu_percent": round(100.0 * self.generator_cpu.as_secs_f64() / self.generator_wall.as_secs_f64(), 1),
            },
        });
        if let Workload::Presence { contacts, .. } = self.workload {
            let expected = sent * contacts as u64;
            report["presence"] = json!({
                "contacts": contacts,
                "changes_per_second": o.rate,
                "seconds": seconds,
                "changes_sent": sent,
                "deliveries_expected": expected,
                "delivered": delivered,
                "lost": expected.saturating_sub(delivered),
                "deliveries_per_second": round(in_phase as f64 / seconds, 0),
            });
            add_latency(&mut report["presence"], &latency);
        }
        if matches!(
            self.workload,
            Workload::Pairs { .. } | Workload::Rate { .. }
        ) {
            report["messages"] = json!({
                "window": matches!(self.workload, Workload::Pairs{..}).then_some(o.window),
                "offered_per_second": matches!(self.workload, Workload::Rate{..}).then_some(o.rate),
                "seconds": seconds,
                "sent": sent,
                "delivered": delivered,
                "lost": sent.saturating_sub(delivered),
                "per_second": round(in_phase as f64 / seconds, 0),
            });
            add_latency(&mut report["messages"], &latency);
        }
        if let (Some(before), Some(login), Some(idle), Some(phase)) = (
            self.before,
            self.after_login,
            self.idle_usage,
            self.phase_usage,
        ) {
            let per_session = |u: procfs::Usage| {
                round(
                    (u.rss_kib as f64 - before.rss_kib as f64) / self.established.max(1) as f64,
                    2,
                )
            };
            let phase_cpu = phase.cpu.saturating_sub(idle.cpu).as_secs_f64();
            let login_cpu = login.cpu.saturating_sub(before.cpu).as_secs_f64();
            // Idle: memory once the hold is over (parked parsers given
            // back); otherwise right after the logins.
            let settled = if self.workload == Workload::Idle {
                phase
            } else {
                idle
            };
            report["server"] = json!({
                "pid": o.server_pid,
                "rss_before_kib": before.rss_kib,
                "rss_after_login_kib": idle.rss_kib,
                "rss_end_kib": phase.rss_kib,
                "rss_per_session_kib": per_session(settled),
                "rss_peak_kib": self.peak_rss.max(phase.peak_rss_kib),
                "login_cpu_seconds": round(login_cpu, 3),
                "logins_per_cpu_second": round(self.established as f64 / login_cpu.max(1e-9), 0),
                "phase_cpu_seconds": round(phase_cpu, 3),
                "phase_cpu_percent": round(100.0 * phase_cpu / self.phase_elapsed.as_secs_f64().max(1e-9), 1),
            });
            if matches!(
                self.workload,
                Workload::Pairs { .. } | Workload::Rate { .. }
            ) {
                let in_phase = s.delivered_in_phase.load(Ordering::Relaxed) as f64;
                report["server"]["messages_per_cpu_second"] =
                    json!(round(in_phase / phase_cpu.max(1e-9), 0));
            }
        }
        report
    }

    fn summary(&self, r: &serde_json::Value) -> String {
        let mut out = format!(
            "{}: {} sessions of {} established; logins {}/s (p50 {} ms, p99 {} ms)\n",
            self.label,
            r["sessions"]["established"],
            r["sessions"]["requested"],
            r["login"]["per_second"],
            r["login"]["p50_ms"],
            r["login"]["p99_ms"]
        );
        if let Some(s) = r.get("server") {
            out += &format!(
                "  server during logins: {} CPU s, {} logins per CPU second\n",
                s["login_cpu_seconds"], s["logins_per_cpu_second"]
            );
        }
        if let Some(m) = r.get("messages") {
            out += &format!(
                "  messages: {}/s delivered, p50 {} ms, p95 {} ms, p99 {} ms, max {} ms; sent {}, lost {}\n",
                m["per_second"], m["p50_ms"], m["p95_ms"], m["p99_ms"], m["max_ms"], m["sent"], m["lost"]
            );
        }
        if let Some(p) = r.get("presence") {
            out += &format!(
                "  presence: {} changes to {} contacts each: {} deliveries/s, p50 {} ms, p99 {} ms; delivered {} of {}\n",
                p["changes_sent"], p["contacts"], p["deliveries_per_second"], p["p50_ms"], p["p99_ms"], p["delivered"], p["deliveries_expected"]
            );
        }
        if let Some(s) = r.get("server") {
            out += &format!(
                "  server: RSS {} KiB before, {} KiB after login, {} KiB at the end ({} KiB per session), peak {} KiB; CPU {}% in the phase\n",
                s["rss_before_kib"], s["rss_after_login_kib"], s["rss_end_kib"], s["rss_per_session_kib"], s["rss_peak_kib"], s["phase_cpu_percent"]
            );
        }
        out += &format!(
            "  generator: {} threads, CPU {}%; errors {}\n",
            r["generator"]["threads"], r["generator"]["cpu_percent"], r["errors"]
        );
        out
    }
}

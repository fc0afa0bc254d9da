-- Prosody 0.12 configuration template for the Rookery comparison benchmark.
-- start.sh replaces @DIR@ (a private temp dir) and @PORT@ (the c2s port).
-- Everything Prosody writes (data, pid file, log) stays under @DIR@.

---------- process ----------
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
-- Only the minimal set of warnings/errors, in a file inside @DIR@.
log = {
	warn = "@DIR@/prosody.log";
}
-- Default event loop of 0.12 (net.server_epoll); libevent is not used.
network_backend = "epoll"
use_libevent = false
-- The epoll default listen backlog (128) is raised so that bursts of
-- parallel logins are not dropped at accept time (same value as ejabberd.yml).
network_settings = {
	tcp_backlog = 1024;
}

---------- listeners: c2s on loopback only ----------
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { @PORT@ }
c2s_interfaces = { "127.0.0.1" }
c2s_direct_tls_ports = { }
legacy_ssl_ports = { }
s2s_ports = { }
s2s_direct_tls_ports = { }
component_ports = { }
http_ports = { }
https_ports = { }

---------- modules ----------
-- Auto-loaded anyway: posix, presence, message, iq, c2s (and s2s, offline,
-- which are switched off below).
modules_enabled = {
	"roster";   -- RFC 6121 roster
	"saslauth"; -- SASL PLAIN and SCRAM-SHA-1
	"tls";      -- STARTTLS offered, never required
	"disco";    -- XEP-0030
	"ping";     -- XEP-0199
	"register"; -- XEP-0077 in-band registration
}
modules_disabled = {
	"s2s";
	"s2s_auth_certs";
	"offline";
}

---------- authentication ----------
authentication = "internal_hashed" -- stores SCRAM-SHA-1 StoredKey/ServerKey
storage = "internal"
c2s_require_encryption = false
s2s_require_encryption = false
allow_unencrypted_plain_auth = true

---------- in-band registration, unthrottled ----------
allow_registration = true
-- mod_register_limits (pulled in by mod_register) throttles only when
-- min_seconds_between_registrations or registration_throttle_max is set:
-- both stay unset. Allowlist-only mode off; all of loopback allowlisted
-- (the generator spreads its sources over 127.0.0.1..16).
allowlist_registration_only = false
registration_allowlist = { "127.0.0.0/8", "::1" }
registration_blocklist = { }

---------- TLS (optional for clients) ----------
certificates = "@DIR@/certs"
ssl = {
	certificate = "@DIR@/cert.pem";
	key = "@DIR@/key.pem";
}

---------- the one virtual host ----------
VirtualHost "localhost"

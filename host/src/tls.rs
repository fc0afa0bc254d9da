//! TLS for both servers, on rustls: certificates (configured or generated),
//! selection by SNI, reload on SIGHUP, and the channel-binding data the
//! core's SCRAM-PLUS needs. The core never sees a TLS type; the shims run
//! handshakes with the configs built here.

use crate::log;
use anyhow::{bail, Context, Result};
use rookery_core::ChannelBinding;
use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, ServerConnection};
use sha2::Digest;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// ALPN protocol for direct TLS (XEP-0368).
pub const ALPN_XMPP_CLIENT: &[u8] = b"xmpp-client";

/// A certificate chain and its key, as PEM files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Where each served domain's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// Served domains, in order; the first one's certificate is the
    /// default for clients that send no (or an unknown) SNI name.
    pub domains: Vec<String>,
    /// `[tls] cert/key`: used for every domain without its own.
    pub default: Option<CertFiles>,
    /// `[tls.domains."<domain>"]`.
    pub per_domain: BTreeMap<String, CertFiles>,
    /// Where generated certificates go: `<data_dir>/tls`.
    pub generated_dir: PathBuf,
}

impl TlsSettings {
    /// The files for `domain`: its own, the default, or generated ones.
    fn files_for(&self, domain: &str) -> CertFiles {
        self.per_domain
            .get(domain)
            .or(self.default.as_ref())
            .cloned()
            .unwrap_or_else(|| CertFiles {
                cert: self.generated_dir.join(format!("{domain}.crt")),
                key: self.generated_dir.join(format!("{domain}.key")),
            })
    }

    fn is_generated(&self, domain: &str) -> bool {
        !self.per_domain.contains_key(domain) && self.default.is_none()
    }
}

/// One loaded certificate.
struct Entry {
    key: Arc<CertifiedKey>,
    /// RFC 5929 `tls-server-end-point` data, computed once per load.
    end_point: Option<Vec<u8>>,
}

/// The certificates by domain, swapped whole on reload.
struct Table {
    by_domain: HashMap<String, Arc<Entry>>,
    default: Arc<Entry>,
}

impl Table {
    fn lookup(&self, sni: Option<&str>) -> &Arc<Entry> {
        sni.map(|s| s.trim_end_matches('.').to_ascii_lowercase())
            .and_then(|s| self.by_domain.get(&s))
            .unwrap_or(&self.default)
    }
}

#[derive(Debug)]
struct Resolver(Arc<Tls>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.0.table.read().ok()?;
        Some(table.lookup(hello.server_name()).key.clone())
    }
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("settings", &self.settings)
            .finish()
    }
}

/// The server's TLS state, shared by every connection.
pub struct Tls {
    settings: TlsSettings,
    table: RwLock<Arc<Table>>,
}

/// rustls configs for the two ways a client reaches TLS.
#[derive(Clone)]
pub struct TlsConfigs {
    pub tls: Arc<Tls>,
    /// STARTTLS on the plain port.
    pub starttls: Arc<ServerConfig>,
    /// The direct TLS port, with ALPN `xmpp-client`.
    pub direct: Arc<ServerConfig>,
}

impl Tls {
    /// Load every domain's certificate, generating self-signed ones where
    /// none is configured and none was generated before.
    pub fn load(settings: TlsSettings) -> Result<TlsConfigs> {
        for domain in &settings.domains {
            if settings.is_generated(domain) {
                ensure_generated(domain, &settings.files_for(domain))?;
            }
        }
        let table = load_table(&settings)?;
        let tls = Arc::new(Tls {
            settings,
            table: RwLock::new(Arc::new(table)),
        });
        let config = |alpn: bool| -> Result<Arc<ServerConfig>> {
            // TLS 1.2 is the floor; ring's defaults keep only AEAD suites
            // with forward secrecy.
            let mut config =
                ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                    .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
                    .with_no_client_auth()
                    .with_cert_resolver(Arc::new(Resolver(tls.clone())));
            if alpn {
                config.alpn_protocols = vec![ALPN_XMPP_CLIENT.to_vec()];
            }
            Ok(Arc::new(config))
        };
        Ok(TlsConfigs {
            starttls: config(false)?,
            direct: config(true)?,
            tls,
        })
    }

    /// Read every certificate again. On any error the old ones stay and
    /// the error says why.
    pub fn reload(&self) -> Result<()> {
        let table = load_table(&self.settings)?;
        *self
            .table
            .write()
            .map_err(|_| anyhow::anyhow!("certificate table lock poisoned"))? = Arc::new(table);
        Ok(())
    }

    /// What SCRAM-PLUS needs from an established connection.
    pub fn channel_binding(&self, conn: &ServerConnection) -> ChannelBinding {
        // RFC 9266 defines tls-exporter for TLS 1.3 only.
        let tls_exporter = (conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
            .then(|| {
                conn.export_keying_material([0u8; 32], b"EXPORTER-Channel-Binding", None)
                    .ok()
                    .map(|k| k.to_vec())
            })
            .flatten();
        // The certificate resolved by SNI at handshake time; a reload in
        // between could only make -PLUS fail, never succeed wrongly.
        let tls_server_end_point = self
            .table
            .read()
            .ok()
            .and_then(|t| t.lookup(conn.server_name()).end_point.clone());
        ChannelBinding {
            tls_exporter,
            tls_server_end_point,
        }
    }
}

/// Reload certificates whenever the process gets SIGHUP.
pub fn reload_on_sighup(tls: Arc<Tls>) -> Result<()> {
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGHUP])?;
    std::thread::Builder::new()
        .name("sighup".into())
        .spawn(move || {
            for _ in signals.forever() {
                match tls.reload() {
                    Ok(()) => log!("SIGHUP: certificates reloaded"),
                    Err(e) => log!("SIGHUP: keeping the old certificates: {e:#}"),
                }
            }
        })?;
    Ok(())
}

fn load_table(settings: &TlsSettings) -> Result<Table> {
    let mut by_domain = HashMap::new();
    for domain in &settings.domains {
        let files = settings.files_for(domain);
        let entry = load_entry(&files)
            .with_context(|| format!("certificate for {domain} ({})", files.cert.display()))?;
        by_domain.insert(domain.clone(), Arc::new(entry));
    }
    let default = match (&settings.default, settings.domains.first()) {
        (Some(files), _) => Arc::new(load_entry(files)?),
        (None, Some(first)) => by_domain[first].clone(),
        (None, None) => bail!("no domains to serve"),
    };
    Ok(Table { by_domain, default })
}

fn load_entry(files: &CertFiles) -> Result<Entry> {
    let chain = CertificateDer::pem_file_iter(&files.cert)
        .with_context(|| format!("reading {}", files.cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing {}", files.cert.display()))?;
    let Some(leaf) = chain.first() else {
        bail!("{} holds no certificate", files.cert.display());
    };
    let end_point = server_end_point(leaf);
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .with_context(|| format!("reading key {}", files.key.display()))?;
    let key = CertifiedKey::from_der(chain, key, &provider::default_provider())
        .with_context(|| format!("{} does not match its certificate", files.key.display()))?;
    Ok(Entry {
        key: Arc::new(key),
        end_point,
    })
}

/// Create a self-signed certificate for `domain` unless one is there.
fn ensure_generated(domain: &str, files: &CertFiles) -> Result<()> {
    if files.cert.exists() && files.key.exists() {
        return Ok(());
    }
    if let Some(dir) = files.cert.parent() {
        crate::files::private_dir(dir)?;
    }
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, domain);
    let key = rcgen::KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    crate::files::write_private(&files.key, key.serialize_pem().as_bytes())?;
    std::fs::write(&files.cert, cert.pem())
        .with_context(|| format!("writing {}", files.cert.display()))?;
    log!(
        "generated a self-signed certificate for {domain}: {} (SHA-256 {})",
        files.cert.display(),
        fingerprint(cert.der())
    );
    Ok(())
}

/// `AB:CD:…`, as clients show certificate fingerprints.
pub fn fingerprint(der: &[u8]) -> String {
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// RFC 5929 section 4.1: the certificate's hash, with SHA-256 unless its
/// signature algorithm uses SHA-384 or SHA-512. `None` where the RFC
/// defines nothing (e.g. Ed25519) or the certificate cannot be read.
fn server_end_point(cert: &[u8]) -> Option<Vec<u8>> {
    match signature_hash(cert)? {
        SignatureHash::Sha256OrWeaker => Some(sha2::Sha256::digest(cert).to_vec()),
        SignatureHash::Sha384 => Some(sha2::Sha384::digest(cert).to_vec()),
        SignatureHash::Sha512 => Some(sha2::Sha512::digest(cert).to_vec()),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum SignatureHash {
    Sha256OrWeaker,
    Sha384,
    Sha512,
}

/// The hash in a certificate's outer `signatureAlgorithm`, read from its
/// DER: `SEQUENCE { tbsCertificate, signatureAlgorithm SEQUENCE { OID … } }`.
fn signature_hash(cert: &[u8]) -> Option<SignatureHash> {
    let (_, body, _) = der_element(cert, 0x30)?;
    let (_, _, after_tbs) = der_element(body, 0x30)?;
    let (_, algorithm, _) = der_element(after_tbs, 0x30)?;
    let (_, oid, _) = der_element(algorithm, 0x06)?;
    const SHA384: [&[u8]; 2] = [
        &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x03], // ecdsa-with-SHA384
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0C], // sha384WithRSA
    ];
    const SHA512: [&[u8]; 2] = [
        &[0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x04], // ecdsa-with-SHA512
        &[0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0D], // sha512WithRSA
    ];
    const ED25519: &[u8] = &[0x2B, 0x65, 0x70];
    const ED448: &[u8] = &[0x2B, 0x65, 0x71];
    if SHA384.contains(&oid) {
        Some(SignatureHash::Sha384)
    } else if SHA512.contains(&oid) {
        Some(SignatureHash::Sha512)
    } else if oid == ED25519 || oid == ED448 {
        None
    } else {
        Some(SignatureHash::Sha256OrWeaker)
    }
}

/// One DER element with tag `tag` at the start of `input`: (tag, contents,
/// rest). Definite lengths only, as DER requires.
fn der_element(input: &[u8], tag: u8) -> Option<(u8, &[u8], &[u8])> {
    let (&found, rest) = input.split_first()?;
    if found != tag {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        first as usize
    } else {
        let count = (first & 0x7F) as usize;
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | b as usize);
        rest = &rest[count..];
        len
    };
    if rest.len() < len {
        return None;
    }
    Some((found, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn settings(dir: &Path, domains: &[&str]) -> TlsSettings {
        TlsSettings {
            domains: domains.iter().map(|d| d.to_string()).collect(),
            default: None,
            per_domain: BTreeMap::new(),
            generated_dir: dir.join("tls"),
        }
    }

    #[test]
    fn generates_a_certificate_per_domain_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = settings(dir.path(), &["a.example", "b.example"]);
        Tls::load(s.clone()).unwrap();
        let first = std::fs::read(dir.path().join("tls/a.example.crt")).unwrap();
        assert!(dir.path().join("tls/b.example.key").exists());
        Tls::load(s).unwrap();
        let again = std::fs::read(dir.path().join("tls/a.example.crt")).unwrap();
        assert_eq!(first, again, "an existing certificate is kept");
    }

    #[test]
    fn generated_key_is_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Tls::load(settings(dir.path(), &["localhost"])).unwrap();
        let mode = std::fs::metadata(dir.path().join("tls/localhost.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn sni_selects_the_domain_and_unknown_names_get_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let configs = Tls::load(settings(dir.path(), &["a.example", "b.example"])).unwrap();
        let table = configs.tls.table.read().unwrap().clone();
        let a = &table.by_domain["a.example"];
        let b = &table.by_domain["b.example"];
        assert!(Arc::ptr_eq(table.lookup(Some("B.Example.")), b));
        assert!(Arc::ptr_eq(table.lookup(Some("other.example")), a));
        assert!(Arc::ptr_eq(table.lookup(None), a));
    }

    #[test]
    fn a_bad_file_on_reload_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let configs = Tls::load(settings(dir.path(), &["localhost"])).unwrap();
        let before = configs.tls.table.read().unwrap().default.clone();
        std::fs::write(dir.path().join("tls/localhost.crt"), "not a certificate").unwrap();
        assert!(configs.tls.reload().is_err());
        let after = configs.tls.table.read().unwrap().default.clone();
        assert!(Arc::ptr_eq(&before, &after));
    }

    #[test]
    fn reload_picks_up_a_replaced_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let configs = Tls::load(settings(dir.path(), &["localhost"])).unwrap();
        let before = configs.tls.table.read().unwrap().default.end_point.clone();
        std::fs::remove_file(dir.path().join("tls/localhost.crt")).unwrap();
        ensure_generated(
            "localhost",
            &settings(dir.path(), &["localhost"]).files_for("localhost"),
        )
        .unwrap();
        configs.tls.reload().unwrap();
        let after = configs.tls.table.read().unwrap().default.end_point.clone();
        assert_ne!(before, after);
    }

    fn self_signed(algorithm: &'static rcgen::SignatureAlgorithm) -> rcgen::Certificate {
        let key = rcgen::KeyPair::generate_for(algorithm).unwrap();
        rcgen::CertificateParams::new(vec!["x".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
    }

    #[test]
    fn end_point_hash_follows_the_signature_algorithm() {
        let p256 = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256);
        assert_eq!(
            signature_hash(p256.der()),
            Some(SignatureHash::Sha256OrWeaker)
        );
        assert_eq!(server_end_point(p256.der()).unwrap().len(), 32);
        let p384 = self_signed(&rcgen::PKCS_ECDSA_P384_SHA384);
        assert_eq!(signature_hash(p384.der()), Some(SignatureHash::Sha384));
        assert_eq!(server_end_point(p384.der()).unwrap().len(), 48);
        let ed25519 = self_signed(&rcgen::PKCS_ED25519);
        assert_eq!(server_end_point(ed25519.der()), None);
    }

    #[test]
    fn truncated_der_is_not_read() {
        assert_eq!(signature_hash(&[0x30, 0x82, 0x01]), None);
        assert_eq!(signature_hash(&[]), None);
    }
}

//! TLS in the binary, for gRPC and the workbench: rustls with ring.
//!
//! The certificate chain and its key are PEM files named in the config (`[tls]`,
//! `crate::app::config`). [`CertStore`] holds the pair in force and hands it to every handshake;
//! [`follow`] reads the two files every [`POLL`] and, when their bytes changed and the new pair
//! is usable (both parse, the key is the certificate's), puts it in place: a renewed certificate
//! is served from the next handshake on, without a restart. A pair that is not usable is logged
//! and the pair in force stays, so a renewal that writes the two files one after the other is
//! taken once both are written. Connections already open keep the certificate they began with.
//!
//! With `client_ca`, a client may present a certificate (mutual TLS); one that does not chain to
//! that CA fails the handshake. Which role a presented certificate has is not decided here but
//! by the config's `[[client_certs]]` (`crate::service::auth`), beside the bearer tokens: a
//! certificate is optional, so that analysts and tools with tokens connect as before. The CA
//! file is followed like the certificate ([`ClientCa`]): a CA added to it admits its
//! certificates from the next handshake, a CA removed from it refuses them, without a restart.
//! The gRPC config resumes no TLS sessions, since a resumed session skips the verification of
//! the client's certificate, and would let a certificate of a removed CA back in.
//!
//! Handshakes run off the accept loop ([`TlsListener`]), each with a deadline
//! ([`HANDSHAKE_TIMEOUT`]): a client that stalls its handshake holds up no one else.
//! This module knows TCP and rustls only; `crate::grpc` and `crate::web` serve over its streams.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
pub use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::client::danger::HandshakeSignatureValid;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use tokio_rustls::rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use tokio_rustls::rustls::server::{
    ClientHello, NoServerSessionStorage, ResolvesServerCert, WebPkiClientVerifier,
};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{
    self, DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
};
pub use tokio_rustls::server::TlsStream;

/// How often [`follow`] reads the certificate files: a renewed certificate is served, and a
/// changed client CA checked, within this long.
pub const POLL: Duration = Duration::from_secs(2);

/// How long a client has to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The files of `[tls]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The certificate's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates, PEM, that client certificates must chain to; `None`: no client
    /// certificates are asked for.
    pub client_ca: Option<PathBuf>,
}

/// Why TLS could not be set up, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS: {0}")]
    Config(String),
}

fn in_file(path: &Path) -> impl Fn(String) -> TlsError + '_ {
    move |message| TlsError::File {
        path: path.display().to_string(),
        message,
    }
}

/// The provider every config of this module is built with, named rather than left to the
/// process default so that no other crate's choice of provider can change it.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file, in order; none is an error.
fn read_certs(path: &Path, bytes: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| in_file(path)(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(in_file(path)(
            "no CERTIFICATE block: expected the certificate chain in PEM".into(),
        ));
    }
    Ok(certs)
}

/// The certificate and key of `files`, checked to belong together.
fn certified_key(
    files: &TlsFiles,
    cert: &[u8],
    key: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let chain = read_certs(&files.cert, cert)?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        in_file(&files.key)(format!(
            "no private key in PEM (PKCS#8, PKCS#1 or SEC1): {e}"
        ))
    })?;
    let key = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        in_file(&files.key)(format!(
            "cannot use this key with the certificate of {}: {e}",
            files.cert.display()
        ))
    })?;
    Ok(Arc::new(key))
}

/// The bytes of the two files as last read, and the pair they made.
struct Current {
    cert: Vec<u8>,
    key: Vec<u8>,
    certified: Arc<CertifiedKey>,
}

/// The server certificate and client CA in force, shared by every handshake and replaced by
/// [`follow`].
pub struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Current>,
    client_ca: Option<Arc<ClientCa>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert", &self.files.cert)
            .field("key", &self.files.key)
            .field("client_ca", &self.files.client_ca)
            .finish()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .certified,
        ))
    }
}

impl CertStore {
    /// Reads the pair of `files` and the client CA; an unusable file is an error naming it.
    pub fn load(files: TlsFiles) -> Result<CertStore, TlsError> {
        let provider = provider();
        let (cert, key) = read_pair(&files)?;
        let certified = certified_key(&files, &cert, &key, &provider)?;
        let client_ca = match &files.client_ca {
            Some(path) => Some(Arc::new(ClientCa::load(path, Arc::clone(&provider))?)),
            None => None,
        };
        Ok(CertStore {
            files,
            provider,
            current: RwLock::new(Current {
                cert,
                key,
                certified,
            }),
            client_ca,
        })
    }

    /// Reads the files again and puts the pair, and the client CA, in force where they changed
    /// and are usable: one that is not usable leaves the other to change. `Ok(true)`: something
    /// new is in force; `Ok(false)`: the files are as before.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let pair = self.reload_pair();
        let ca = self.client_ca.as_ref().map_or(Ok(false), |ca| ca.reload());
        Ok(pair? | ca?)
    }

    fn reload_pair(&self) -> Result<bool, TlsError> {
        let (cert, key) = read_pair(&self.files)?;
        {
            let now = self.current.read().unwrap_or_else(|p| p.into_inner());
            if now.cert == cert && now.key == key {
                return Ok(false);
            }
        }
        let certified = certified_key(&self.files, &cert, &key, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Current {
            cert,
            key,
            certified,
        };
        Ok(true)
    }

    /// The leaf certificate served now (DER).
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        let now = self.current.read().unwrap_or_else(|p| p.into_inner());
        now.certified.cert.first().cloned()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| in_file(path)(e.to_string()))
}

fn read_pair(files: &TlsFiles) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
    Ok((read_file(&files.cert)?, read_file(&files.key)?))
}

/// The verifier of client certificates made from the CA certificates in `bytes` (of `path`).
fn client_verifier(
    path: &Path,
    bytes: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(path, bytes)? {
        roots
            .add(c)
            .map_err(|e| in_file(path)(format!("not a usable CA certificate: {e}")))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        // Tokens still work: a certificate is one way in, not the only one.
        .allow_unauthenticated()
        .build()
        .map_err(|e| in_file(path)(e.to_string()))
}

/// The client CA in force: the verifier of client certificates made from the `client_ca` file,
/// replaced when the file changes ([`CertStore::reload`]). Every handshake asks the verifier in
/// force at that moment.
///
/// It names no CA to the client (no `certificate_authorities` hint): the hints rustls sends are
/// borrowed from the verifier for the whole handshake, and the verifier may be replaced meanwhile.
/// A client with one certificate sends it regardless; one choosing among several must be told
/// which to use.
pub struct ClientCa {
    path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<CaCurrent>,
}

/// The bytes of the CA file as last read, and the verifier they made.
struct CaCurrent {
    bytes: Vec<u8>,
    verifier: Arc<dyn ClientCertVerifier>,
}

impl fmt::Debug for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCa")
            .field("path", &self.path)
            .finish()
    }
}

impl ClientCa {
    fn load(path: &Path, provider: Arc<CryptoProvider>) -> Result<ClientCa, TlsError> {
        let bytes = read_file(path)?;
        let verifier = client_verifier(path, &bytes, &provider)?;
        Ok(ClientCa {
            path: path.to_path_buf(),
            provider,
            current: RwLock::new(CaCurrent { bytes, verifier }),
        })
    }

    /// Reads the file again; `Ok(true)` when it changed and its CAs are in force.
    fn reload(&self) -> Result<bool, TlsError> {
        let bytes = read_file(&self.path)?;
        if self.current.read().unwrap_or_else(|p| p.into_inner()).bytes == bytes {
            return Ok(false);
        }
        let verifier = client_verifier(&self.path, &bytes, &self.provider)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = CaCurrent { bytes, verifier };
        Ok(true)
    }

    fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .verifier,
        )
    }
}

impl ClientCertVerifier for ClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verifier()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verifier().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.verifier().supported_verify_schemes()
    }
}

/// The server side of TLS: the certificate in force and the two configs made over it.
#[derive(Clone, Debug)]
pub struct Tls {
    certs: Arc<CertStore>,
    /// gRPC: HTTP/2 only, client certificates asked for when a client CA is configured.
    grpc: Arc<ServerConfig>,
    /// The workbench: HTTP/1.1, no client certificate (analysts sign in with their token; a
    /// browser asked for a certificate would prompt for one).
    web: Arc<ServerConfig>,
}

impl Tls {
    /// Reads the certificate, key and client CA of `files`; any that cannot be used is an error
    /// naming its file.
    pub fn new(files: TlsFiles) -> Result<Tls, TlsError> {
        let certs = Arc::new(CertStore::load(files)?);
        let provider = Arc::clone(&certs.provider);
        let builder = || {
            ServerConfig::builder_with_provider(Arc::clone(&provider))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsError::Config(e.to_string()))
        };
        let mut grpc = match &certs.client_ca {
            Some(ca) => {
                let mut config = builder()?
                    .with_client_cert_verifier(Arc::clone(ca) as Arc<dyn ClientCertVerifier>)
                    .with_cert_resolver(Arc::clone(&certs) as Arc<dyn ResolvesServerCert>);
                // A resumed session is not verified again: see the module doc.
                config.session_storage = Arc::new(NoServerSessionStorage {});
                config.send_tls13_tickets = 0;
                config
            }
            None => builder()?
                .with_no_client_auth()
                .with_cert_resolver(Arc::clone(&certs) as Arc<dyn ResolvesServerCert>),
        };
        // gRPC clients insist on HTTP/2 being agreed in the handshake.
        grpc.alpn_protocols = vec![b"h2".to_vec()];
        let mut web = builder()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::clone(&certs) as Arc<dyn ResolvesServerCert>);
        web.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            certs,
            grpc: Arc::new(grpc),
            web: Arc::new(web),
        })
    }

    pub fn certs(&self) -> &Arc<CertStore> {
        &self.certs
    }

    pub fn grpc_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.grpc)
    }

    pub fn web_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.web)
    }
}

/// Follows the certificate files of `certs` until `stop` resolves (see the module doc).
pub async fn follow(certs: Arc<CertStore>, every: Duration, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // One message per distinct failure: a renewal half written is said once, not every poll.
    let mut failing: Option<String> = None;
    loop {
        tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => {}
        }
        let c = Arc::clone(&certs);
        let r = match tokio::task::spawn_blocking(move || c.reload()).await {
            Ok(r) => r,
            Err(e) => Err(TlsError::Config(e.to_string())),
        };
        match r {
            Ok(false) => failing = None,
            Ok(true) => {
                failing = None;
                tracing::info!(cert = %certs.files.cert.display(), client_ca = ?certs.files.client_ca, "TLS files changed: the certificate and client CA in them are in force from the next handshake");
            }
            Err(e) => {
                let e = e.to_string();
                if failing.as_ref() != Some(&e) {
                    tracing::error!(error = %e, "the TLS files changed but one cannot be used; what was in force from it stays");
                    failing = Some(e);
                }
            }
        }
    }
}

/// Accepts TCP connections and completes their TLS handshakes in tasks of their own; yields the
/// connections whose handshake succeeded, with the client's address. Dropping it stops
/// accepting.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        // A few handshaken connections may wait for the server to take them; more wait in TCP.
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(accept_loop(listener, TlsAcceptor::from(config), tx));
        Ok(TlsListener { rx, local })
    }

    /// The next connection; `None` once the accept loop has ended.
    pub async fn next(&mut self) -> Option<(TlsStream<TcpStream>, SocketAddr)> {
        self.rx.recv().await
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    loop {
        let accepted = tokio::select! {
            () = tx.closed() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Without TCP_NODELAY a small response waits for the client's delayed ACK (~40 ms).
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::info!(client = %peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::info!(client = %peer, "TLS handshake timed out"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> TlsFiles {
        let key = rcgen::KeyPair::generate().expect("key");
        let params =
            rcgen::CertificateParams::new(vec![name.to_string()]).expect("certificate params");
        let cert = params.self_signed(&key).expect("certificate");
        let files = TlsFiles {
            cert: dir.join("server.crt"),
            key: dir.join("server.key"),
            client_ca: None,
        };
        std::fs::write(&files.cert, cert.pem()).expect("write cert");
        std::fs::write(&files.key, key.serialize_pem()).expect("write key");
        files
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("cashmatch-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        dir
    }

    #[test]
    fn a_changed_pair_is_taken_and_a_mismatched_one_is_refused_naming_the_file() {
        let dir = temp("reload");
        let files = write_pair(&dir, "one.test");
        let store = CertStore::load(files.clone()).expect("load");
        let first = store.leaf().expect("leaf");
        assert!(!store.reload().expect("same files"));
        // A new certificate with the old key: the pair does not fit.
        let other = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["two.test".to_string()])
            .expect("params")
            .self_signed(&other)
            .expect("cert");
        std::fs::write(&files.cert, cert.pem()).expect("write");
        let e = store.reload().expect_err("mismatched pair").to_string();
        assert!(e.starts_with(&files.key.display().to_string()), "{e}");
        assert_eq!(store.leaf(), Some(first.clone()), "the pair in force stays");
        std::fs::write(&files.key, other.serialize_pem()).expect("write");
        assert!(store.reload().expect("the new pair"));
        assert_ne!(store.leaf(), Some(first));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A CA of its own and a client certificate it issued (DER).
    fn client_ca(name: &str) -> (String, CertificateDer<'static>) {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} CA"));
        let ca = CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA");
        let mut p = CertificateParams::new(vec![format!("{name}.test")]).expect("params");
        p.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let leaf = p
            .signed_by(&KeyPair::generate().expect("key"), &ca)
            .expect("leaf");
        (ca.as_ref().pem(), leaf.der().clone())
    }

    #[test]
    fn a_changed_client_ca_is_taken_and_an_unusable_one_keeps_the_old() {
        let dir = temp("client-ca");
        let mut files = write_pair(&dir, "server.test");
        let path = dir.join("client-ca.crt");
        files.client_ca = Some(path.clone());
        let (old_pem, old_client) = client_ca("old");
        let (new_pem, new_client) = client_ca("new");
        std::fs::write(&path, &old_pem).expect("write");
        let store = CertStore::load(files).expect("load");
        let ca = store.client_ca.clone().expect("client CA");
        let admits =
            |c: &CertificateDer<'_>| ca.verify_client_cert(c, &[], UnixTime::now()).is_ok();
        assert!(admits(&old_client) && !admits(&new_client));
        assert!(!store.reload().expect("same files"));

        std::fs::write(&path, &new_pem).expect("write");
        assert!(store.reload().expect("the new CA"));
        assert!(admits(&new_client) && !admits(&old_client));

        std::fs::write(&path, "not pem").expect("write");
        let e = store.reload().expect_err("unusable CA").to_string();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert!(admits(&new_client), "the CA in force stays");
        // Both CAs in one file, as during a rotation.
        std::fs::write(&path, format!("{old_pem}{new_pem}")).expect("write");
        assert!(store.reload().expect("both"));
        assert!(admits(&new_client) && admits(&old_client));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unreadable_files_are_named() {
        let dir = temp("bad");
        let files = write_pair(&dir, "x.test");
        std::fs::write(&files.cert, "not pem").expect("write");
        let e = Tls::new(files.clone()).expect_err("bad cert").to_string();
        assert!(
            e.starts_with(&files.cert.display().to_string()) && e.contains("CERTIFICATE"),
            "{e}"
        );
        let e = Tls::new(TlsFiles {
            cert: dir.join("missing.crt"),
            ..files
        })
        .expect_err("missing")
        .to_string();
        assert!(e.contains("missing.crt"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! TLS in the binary over real sockets: a client that trusts the CA is served, one that does not
//! is refused; a client certificate in `[[client_certs]]` carries its role without a token, one
//! outside the list gets no role, one from another CA fails the handshake; a certificate
//! replaced on disk is served from the next connection without a restart; the workbench answers
//! over HTTPS. Client certificates named in the config by subject or alternative name carry
//! their roles and others of the same CA none; a client CA replaced on disk admits the new CA's
//! certificates and refuses the old one's, without a restart.

use super::*;
use cashmatch::app::config::{Overrides, Settings};
use cashmatch::service::auth::{CertEntry, CertFingerprint, CertMatch, ClientCerts, Tokens};
use cashmatch::tls::{Tls, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A CA of the test's own.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(p, KeyPair::generate().expect("key")).expect("CA")
}

/// A certificate for `name` issued by `ca`, for a server or a client: (PEM, key PEM, DER).
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    purpose: ExtendedKeyUsagePurpose,
) -> (String, String, Vec<u8>) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(vec![name.to_string()]).expect("params");
    p.distinguished_name.push(DnType::CommonName, name);
    p.extended_key_usages = vec![purpose];
    let cert = p.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem(), cert.der().to_vec())
}

/// A client certificate issued by `ca` with the common name `cn` and alternative names `sans`:
/// (PEM, key PEM).
fn client(
    ca: &CertifiedIssuer<'static, KeyPair>,
    cn: &str,
    sans: Vec<SanType>,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
    p.distinguished_name.push(DnType::CommonName, cn);
    p.subject_alt_names = sans;
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = p.signed_by(&key, ca).expect("certificate");
    (cert.pem(), key.serialize_pem())
}

fn ca_pem(ca: &CertifiedIssuer<'static, KeyPair>) -> String {
    ca.as_ref().pem()
}

async fn tls_channel(
    addr: SocketAddr,
    trust: &str,
    identity: Option<(&str, &str)>,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(trust))
        .domain_name("localhost");
    if let Some((cert, key)) = identity {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Channel::from_shared(format!("https://{addr}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await
}

/// What a ledger call answers on `ch` with `token`: NOT_FOUND means admitted (no such invoice).
async fn ledger_code(ch: &Channel, token: Option<&str>) -> Code {
    Clients::new(ch, token)
        .ledger
        .get_invoice(pb::GetInvoiceRequest {
            invoice_id: "I-none".into(),
        })
        .await
        .err()
        .map_or(Code::Ok, |s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_trusting_clients_maps_client_certificates_to_roles_and_reloads_the_certificate()
{
    let dir = temp_dir("tls");
    let server_ca = ca("server CA");
    let client_ca = ca("AR system CA");
    let (cert, key, _) = leaf(&server_ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let files = TlsFiles {
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
        client_ca: Some(dir.join("client-ca.crt")),
    };
    std::fs::write(&files.cert, &cert).expect("write");
    std::fs::write(&files.key, &key).expect("write");
    std::fs::write(dir.join("client-ca.crt"), ca_pem(&client_ca)).expect("write");
    let (erp_cert, erp_key, erp_der) = leaf(&client_ca, "erp", ExtendedKeyUsagePurpose::ClientAuth);
    let (other_cert, other_key, _) =
        leaf(&client_ca, "someone", ExtendedKeyUsagePurpose::ClientAuth);
    let rogue_ca = ca("rogue CA");
    let (rogue_cert, rogue_key, _) = leaf(&rogue_ca, "erp", ExtendedKeyUsagePurpose::ClientAuth);

    let tls = Tls::new(files.clone()).expect("TLS");
    let admin = "t-admin";
    let auth = Arc::new(Auth::with_client_certs(
        Tokens::new(vec![cashmatch::service::auth::TokenEntry {
            hash: TokenHash::of(admin),
            name: "ops".into(),
            roles: vec![Role::Admin, Role::ArSystem],
        }]),
        ClientCerts::new(vec![CertEntry {
            matches: CertMatch::fingerprint(CertFingerprint::of(&erp_der)),
            name: "erp".into(),
            roles: vec![Role::ArSystem],
        }]),
    ));
    let store = SqliteStore::open(&dir.join("data")).expect("store");
    let service = Arc::new(
        Service::open(store, None, EngineConfig::default(), Limits::default())
            .await
            .expect("service"),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let server = tokio::spawn(cashmatch::grpc::run_tls(
        listener,
        tls.grpc_config(),
        stopped(stop_rx.clone()),
        Arc::clone(&service),
        Arc::clone(&auth),
        Arc::new(Metrics::new()),
    ));
    let poll = std::time::Duration::from_millis(50);
    let follower = tokio::spawn(cashmatch::tls::follow(
        Arc::clone(tls.certs()),
        poll,
        stopped(stop_rx.clone()),
    ));

    // The AR system's certificate is its identity: no token needed.
    let trusted = ca_pem(&server_ca);
    let ch = tls_channel(addr, &trusted, Some((&erp_cert, &erp_key)))
        .await
        .expect("mTLS connect");
    assert_eq!(ledger_code(&ch, None).await, Code::NotFound);
    // Its role is ar_system only.
    let models = ModelsClient::new(ch.clone())
        .get_active_model(pb::GetActiveModelRequest {})
        .await
        .err()
        .map(|s| s.code());
    assert_eq!(models, Some(Code::PermissionDenied));

    // A certificate from the right CA but outside the list: no role, so a token is needed.
    let ch = tls_channel(addr, &trusted, Some((&other_cert, &other_key)))
        .await
        .expect("connect with an unlisted certificate");
    assert_eq!(ledger_code(&ch, None).await, Code::Unauthenticated);
    assert_eq!(ledger_code(&ch, Some(admin)).await, Code::NotFound);

    // No certificate: tokens as before.
    let ch = tls_channel(addr, &trusted, None).await.expect("connect");
    assert_eq!(ledger_code(&ch, None).await, Code::Unauthenticated);
    assert_eq!(ledger_code(&ch, Some(admin)).await, Code::NotFound);

    // A certificate from another CA fails the handshake; so does a client that does not trust
    // the server's CA; and plaintext on the TLS port gets nothing.
    // (With TLS 1.3 the client learns of the refusal only at its first call.)
    let served = match tls_channel(addr, &trusted, Some((&rogue_cert, &rogue_key))).await {
        Err(_) => None,
        Ok(ch) => Some(ledger_code(&ch, Some(admin)).await),
    };
    assert!(
        served.is_none_or(|c| c != Code::NotFound),
        "a client certificate of another CA was accepted: {served:?}"
    );
    assert!(
        tls_channel(addr, &ca_pem(&rogue_ca), None).await.is_err(),
        "a client without the server's CA connected"
    );
    let plain = Channel::from_shared(format!("http://{addr}"))
        .expect("uri")
        .connect()
        .await;
    if let Ok(ch) = plain {
        assert_ne!(ledger_code(&ch, Some(admin)).await, Code::NotFound);
    }

    // Renewal: a certificate from a new CA written over the files is served from the next
    // connection on, without a restart.
    let new_ca = ca("renewed CA");
    let (cert2, key2, _) = leaf(&new_ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(&files.key, &key2).expect("write");
    std::fs::write(&files.cert, &cert2).expect("write");
    let started = std::time::Instant::now();
    let renewed = ca_pem(&new_ca);
    loop {
        if let Ok(ch) = tls_channel(addr, &renewed, None).await {
            assert_eq!(ledger_code(&ch, Some(admin)).await, Code::NotFound);
            break;
        }
        assert!(
            started.elapsed() < 40 * poll,
            "the renewed certificate is not served after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(poll / 2).await;
    }
    assert!(
        tls_channel(addr, &trusted, None).await.is_err(),
        "the old certificate is still served"
    );

    // The workbench over HTTPS with the same certificate.
    let web_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let web_addr = web_listener.local_addr().expect("addr");
    let web = tokio::spawn(cashmatch::web::run_tls(
        web_listener,
        tls.web_config(),
        stopped(stop_rx.clone()),
        Arc::clone(&service),
        Arc::clone(&auth),
    ));
    let page = https_get(web_addr, &renewed, "/login").await;
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");

    let _ = stop_tx.send(true);
    server.await.expect("server task").expect("server ran");
    follower.await.expect("follower");
    web.await.expect("web task").expect("web ran");
    service.store().close();
    let _ = std::fs::remove_dir_all(&dir);
}

/// One HTTP/1.1 GET over TLS, trusting `ca` for `localhost`: the whole response.
async fn https_get(addr: SocketAddr, ca: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c.expect("CA pem")).expect("root");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .expect("write");
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a client presenting `identity` is admitted to the ledger without a token: connected,
/// and its call answered (NOT_FOUND: no such invoice). A certificate the server refuses fails
/// the handshake, which with TLS 1.3 the client learns of only at its first call.
async fn admitted(addr: SocketAddr, trust: &str, identity: &(String, String)) -> Code {
    match tls_channel(addr, trust, Some((&identity.0, &identity.1))).await {
        Ok(ch) => ledger_code(&ch, None).await,
        Err(_) => Code::Unavailable,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_named_by_subject_or_san_carry_roles_and_a_replaced_client_ca_applies_without_a_restart()
 {
    let dir = temp_dir("tls-names");
    let server_ca = ca("server CA");
    let (cert, key, _) = leaf(&server_ca, "localhost", ExtendedKeyUsagePurpose::ServerAuth);
    std::fs::write(dir.join("server.crt"), &cert).expect("write");
    std::fs::write(dir.join("server.key"), &key).expect("write");
    let old_ca = ca("AR system CA 2025");
    let new_ca = ca("AR system CA 2026");
    let ca_file = dir.join("client-ca.crt");
    std::fs::write(&ca_file, ca_pem(&old_ca)).expect("write");
    let config = format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nclient_ca = {:?}\n\n\
         [[client_certs]]\nname = \"erp\"\nsubject_cn = \"erp\"\nroles = [\"ar_system\"]\n\n\
         [[client_certs]]\nname = \"bank\"\nsan = \"spiffe://example.org/bank\"\nroles = [\"ar_system\"]\n",
        dir.join("server.crt"),
        dir.join("server.key"),
        ca_file,
    );
    let settings = Settings::parse(&dir.join("cashmatch.toml"), &config, Overrides::default())
        .expect("settings");
    let tls = Tls::new(settings.tls.clone().expect("[tls]")).expect("TLS");
    let auth = Arc::new(Auth::with_client_certs(
        settings.tokens.clone(),
        settings.client_certs.clone(),
    ));
    // The store is the transport's bystander here: TLS runs on SQLite only.
    let server = start_with(
        Arc::new(SqliteStore::open(&dir.join("data")).expect("store")),
        auth,
        Limits::default(),
        Some(tls.grpc_config()),
    )
    .await;
    let poll = std::time::Duration::from_millis(50);
    let (follow_stop, follow_stopped) = oneshot::channel::<()>();
    let follower = tokio::spawn(cashmatch::tls::follow(
        Arc::clone(tls.certs()),
        poll,
        async move {
            let _ = follow_stopped.await;
        },
    ));
    let trusted = ca_pem(&server_ca);
    let addr = server.addr;
    let uri = |u: &str| SanType::URI(u.try_into().expect("ia5"));

    // By common name, by URI alternative name; of the same CA but another name: no role.
    let erp_old = client(&old_ca, "erp", vec![]);
    let bank_old = client(
        &old_ca,
        "bank-feed-7",
        vec![uri("spiffe://example.org/bank")],
    );
    let intruder = client(
        &old_ca,
        "intruder",
        vec![uri("spiffe://example.org/bank/x")],
    );
    let erp_dns = client(
        &old_ca,
        "erp.example.org",
        vec![SanType::DnsName("erp".try_into().expect("dns"))],
    );
    assert_eq!(admitted(addr, &trusted, &erp_old).await, Code::NotFound);
    assert_eq!(admitted(addr, &trusted, &bank_old).await, Code::NotFound);
    assert_eq!(
        admitted(addr, &trusted, &intruder).await,
        Code::Unauthenticated
    );
    assert_eq!(
        admitted(addr, &trusted, &erp_dns).await,
        Code::Unauthenticated,
        "a DNS name is not a common name"
    );

    // The new CA's certificate is refused until the file names the new CA.
    let erp_new = client(&new_ca, "erp", vec![]);
    assert_ne!(admitted(addr, &trusted, &erp_new).await, Code::NotFound);
    std::fs::write(&ca_file, ca_pem(&new_ca)).expect("write");
    let started = std::time::Instant::now();
    while admitted(addr, &trusted, &erp_new).await != Code::NotFound {
        assert!(
            started.elapsed() < 40 * poll,
            "the new client CA is not in force after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(poll / 2).await;
    }
    // The removed CA's certificates fail the handshake, listed name or not.
    for (what, c) in [("erp", &erp_old), ("bank", &bank_old)] {
        let code = admitted(addr, &trusted, c).await;
        assert!(
            !matches!(code, Code::NotFound | Code::Unauthenticated),
            "{what}'s certificate of the removed CA got through the handshake: {code:?}"
        );
    }

    let _ = follow_stop.send(());
    follower.await.expect("follower");
    server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

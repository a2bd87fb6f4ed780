//! Client certificates and whom they admit: the config's `[[client_certs]]`.
//!
//! The TLS layer (`crate::tls`) has already checked that a presented certificate chains to the
//! configured client CA; this module says which entry of the table, if any, the certificate is.
//! An entry names certificates by any of ([`CertMatch`]):
//!
//! - `sha256`: the SHA-256 of the certificate's DER encoding ([`CertFingerprint`]): that one
//!   certificate, so a renewed certificate needs the entry changed;
//! - `subject_cn`: the common name of the certificate's subject;
//! - `san`: a DNS name or a URI (a SPIFFE ID, say) among its subject alternative names ([`San`]).
//!
//! Every key an entry gives must match. Names outlive a renewal, fingerprints do not; in return,
//! a name trusts the CA to issue it to its holder only, which is why `client_ca` should be a CA
//! (or an intermediate) that issues the AR system's machine identities, never a public one.
//!
//! Names are compared exactly, DNS names without regard to ASCII case: a wildcard certificate
//! `*.example.com` fits only an entry that says `*.example.com`, not `erp.example.com`. A
//! certificate that fits two entries fits none: an ambiguous table is a mistake in the config,
//! and it must grant neither the union of the entries' roles nor whichever comes first.
//!
//! The certificate is read with rustls-webpki, the parser rustls itself verified it with; the
//! common name is the one field webpki leaves as DER (the subject's `Name`), walked here
//! ([`common_name`]).

use super::{Role, hex32, to_hex};
use sha2::{Digest, Sha256};
use std::fmt;
use tokio_rustls::rustls::pki_types::{CertificateDer, DnsName};

/// The SHA-256 of a client certificate (its DER bytes): how `[[client_certs]]` names one
/// certificate. Not a secret, so compared plainly.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a certificate in DER.
    pub fn of(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// Reads 64 hex digits, with or without the colons that `openssl x509 -noout -fingerprint
    /// -sha256` prints between bytes (its `sha256 Fingerprint=` prefix too).
    pub fn from_hex(text: &str) -> Result<CertFingerprint, String> {
        let t = text.trim();
        let t = t
            .rsplit_once('=')
            .map_or(t, |(_, after)| after)
            .replace(':', "");
        hex32(&t).map(CertFingerprint).ok_or_else(|| {
            "a certificate's sha256 is 64 hex digits (colons allowed between bytes), as \
             `openssl x509 -noout -fingerprint -sha256 -in CERT` prints it"
                .to_string()
        })
    }

    /// 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        to_hex(&self.0)
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({})", self.to_hex())
    }
}

/// A subject alternative name an entry asks for: a DNS name (lower case) or a URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum San {
    Dns(String),
    Uri(String),
}

impl std::str::FromStr for San {
    type Err = String;

    /// A value with a scheme (`spiffe://example.org/erp`, `urn:example:erp`) is a URI, anything
    /// else must be a DNS name (`erp.example.com`, or a wildcard `*.example.com`, matched as
    /// written).
    fn from_str(s: &str) -> Result<San, String> {
        let s = s.trim();
        if let Some((scheme, rest)) = s.split_once(':') {
            let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
            if !scheme_ok || rest.is_empty() || s.chars().any(|c| c.is_whitespace()) {
                return Err(format!(
                    "san {s:?} is not a URI (scheme:rest, e.g. spiffe://example.org/erp) nor a \
                     DNS name"
                ));
            }
            return Ok(San::Uri(s.to_string()));
        }
        let name = s.strip_prefix("*.").unwrap_or(s);
        if DnsName::try_from(name).is_err() || name.parse::<std::net::IpAddr>().is_ok() {
            return Err(format!(
                "san {s:?} is not a DNS name (e.g. erp.example.com) nor a URI (e.g. \
                 spiffe://example.org/erp); IP addresses are not matched"
            ));
        }
        Ok(San::Dns(s.to_ascii_lowercase()))
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            San::Dns(n) => write!(f, "DNS:{n}"),
            San::Uri(u) => write!(f, "URI:{u}"),
        }
    }
}

/// Which certificates an entry admits: every part given must fit, and at least one is given.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CertMatch {
    sha256: Option<CertFingerprint>,
    subject_cn: Option<String>,
    san: Option<San>,
}

impl CertMatch {
    /// A match on the parts given; none at all, or an empty common name, is an error.
    pub fn new(
        sha256: Option<CertFingerprint>,
        subject_cn: Option<String>,
        san: Option<San>,
    ) -> Result<CertMatch, String> {
        if subject_cn.as_deref().is_some_and(|cn| cn.trim().is_empty()) {
            return Err("subject_cn is empty".into());
        }
        if sha256.is_none() && subject_cn.is_none() && san.is_none() {
            return Err(
                "names no certificate: give sha256, subject_cn or san (or several, which must \
                 all fit)"
                    .into(),
            );
        }
        Ok(CertMatch {
            sha256,
            subject_cn,
            san,
        })
    }

    /// The one certificate of this fingerprint.
    pub fn fingerprint(f: CertFingerprint) -> CertMatch {
        CertMatch {
            sha256: Some(f),
            subject_cn: None,
            san: None,
        }
    }

    /// Whether `cert` fits every part given.
    pub fn matches(&self, cert: &PeerCert) -> bool {
        self.sha256.is_none_or(|f| f == cert.fingerprint)
            && self
                .subject_cn
                .as_ref()
                .is_none_or(|cn| cert.subject_cn.as_ref() == Some(cn))
            && self.san.as_ref().is_none_or(|san| match san {
                San::Dns(n) => cert.dns_names.iter().any(|d| d.eq_ignore_ascii_case(n)),
                San::Uri(u) => cert.uris.iter().any(|x| x == u),
            })
    }
}

impl fmt::Display for CertMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.sha256 {
            parts.push(format!("sha256 {}", h.to_hex()));
        }
        if let Some(cn) = &self.subject_cn {
            parts.push(format!("subject_cn {cn:?}"));
        }
        if let Some(san) = &self.san {
            parts.push(format!("san {san}"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// What a presented client certificate says about its holder, read once per call from the leaf
/// the handshake verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerCert {
    pub fingerprint: CertFingerprint,
    /// The subject's common name, when it has exactly one.
    pub subject_cn: Option<String>,
    /// The DNS names among the subject alternative names, as presented.
    pub dns_names: Vec<String>,
    /// The URIs among the subject alternative names.
    pub uris: Vec<String>,
}

impl PeerCert {
    /// Reads a certificate in DER. One webpki cannot read (it could not have passed the
    /// handshake's verification) has its fingerprint and no names.
    pub fn from_der(der: &[u8]) -> PeerCert {
        let fingerprint = CertFingerprint::of(der);
        let der = CertificateDer::from(der);
        match webpki::EndEntityCert::try_from(&der) {
            Ok(cert) => PeerCert {
                fingerprint,
                subject_cn: common_name(cert.subject()),
                dns_names: cert.valid_dns_names().map(str::to_string).collect(),
                uris: cert.valid_uri_names().map(str::to_string).collect(),
            },
            Err(_) => PeerCert {
                fingerprint,
                subject_cn: None,
                dns_names: Vec::new(),
                uris: Vec::new(),
            },
        }
    }
}

/// The common name (OID 2.5.4.3) of a subject, `name` being the contents of its `Name`
/// SEQUENCE as webpki gives them: `None` when there is none, more than one, one in a string type
/// other than UTF8String, PrintableString or IA5String, or the DER does not read.
fn common_name(name: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    const SET: u8 = 0x31;
    const SEQUENCE: u8 = 0x30;
    const OID: u8 = 0x06;
    let mut found = None;
    let mut rdns = name;
    while !rdns.is_empty() {
        let (SET, mut atvs, rest) = tlv(rdns)? else {
            return None;
        };
        rdns = rest;
        while !atvs.is_empty() {
            let (SEQUENCE, atv, rest) = tlv(atvs)? else {
                return None;
            };
            atvs = rest;
            let (OID, oid, value) = tlv(atv)? else {
                return None;
            };
            if oid != CN {
                continue;
            }
            let (tag, text, after) = tlv(value)?;
            let text = match tag {
                // UTF8String; PrintableString and IA5String are ASCII.
                0x0c => std::str::from_utf8(text).ok()?,
                0x13 | 0x16 if text.is_ascii() => std::str::from_utf8(text).ok()?,
                _ => return None,
            };
            if !after.is_empty() || found.replace(text.to_string()).is_some() {
                return None;
            }
        }
    }
    found
}

/// One DER element of `input`: its tag (one byte), contents, and what follows it; `None` when it
/// does not read. Definite lengths of up to four bytes, which any certificate's names fit.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes.iter().fold(0usize, |l, b| (l << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (contents, rest) = rest.split_at(len);
    Some((tag, contents, rest))
}

/// One entry of `[[client_certs]]`: which certificates, and whom they admit.
#[derive(Clone, Debug)]
pub struct CertEntry {
    pub matches: CertMatch,
    pub name: String,
    pub roles: Vec<Role>,
}

/// The `[[client_certs]]` of a config.
#[derive(Clone, Debug, Default)]
pub struct ClientCerts(Vec<CertEntry>);

/// What the table says of a presented certificate.
pub(super) enum Found<'a> {
    One(&'a CertEntry),
    None,
    /// The names of the entries it fits.
    Several(Vec<&'a str>),
}

impl ClientCerts {
    pub fn new(entries: Vec<CertEntry>) -> ClientCerts {
        ClientCerts(entries)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The entry `cert` fits, if exactly one.
    pub(super) fn find(&self, cert: &PeerCert) -> Found<'_> {
        let mut fits = self.0.iter().filter(|e| e.matches.matches(cert));
        match (fits.next(), fits.next()) {
            (None, _) => Found::None,
            (Some(one), None) => Found::One(one),
            (Some(a), Some(b)) => Found::Several(
                [a, b]
                    .into_iter()
                    .chain(fits)
                    .map(|e| e.name.as_str())
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, DnType, KeyPair, SanType};

    fn cert(cn: Option<&str>, dns: &[&str], uris: &[&str]) -> PeerCert {
        let mut p = CertificateParams::new(dns.iter().map(|d| d.to_string()).collect::<Vec<_>>())
            .expect("params");
        // Without rcgen's default common name.
        p.distinguished_name = rcgen::DistinguishedName::new();
        if let Some(cn) = cn {
            p.distinguished_name.push(DnType::CommonName, cn);
        }
        p.distinguished_name
            .push(DnType::OrganizationName, "Example Ltd");
        for u in uris {
            p.subject_alt_names
                .push(SanType::URI((*u).try_into().expect("ia5")));
        }
        let key = KeyPair::generate().expect("key");
        let c = p.self_signed(&key).expect("certificate");
        PeerCert::from_der(c.der())
    }

    #[test]
    fn a_certificate_is_read_for_its_common_name_and_alternative_names() {
        let c = cert(
            Some("erp"),
            &["erp.example.com"],
            &["spiffe://example.org/erp"],
        );
        assert_eq!(c.subject_cn.as_deref(), Some("erp"));
        assert_eq!(c.dns_names, vec!["erp.example.com".to_string()]);
        assert_eq!(c.uris, vec!["spiffe://example.org/erp".to_string()]);
        assert_eq!(cert(None, &["x.example"], &[]).subject_cn, None);
        let junk = PeerCert::from_der(b"not a certificate");
        assert_eq!(junk.fingerprint, CertFingerprint::of(b"not a certificate"));
        assert!(junk.subject_cn.is_none() && junk.dns_names.is_empty());
    }

    #[test]
    fn two_common_names_or_broken_der_give_none() {
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "a" } }, twice.
        let rdn = [
            0x31, 0x0a, 0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x01, b'a',
        ];
        assert_eq!(common_name(&rdn).as_deref(), Some("a"));
        assert_eq!(common_name(&[rdn, rdn].concat()), None);
        assert_eq!(common_name(&rdn[..rdn.len() - 1]), None, "truncated");
        let mut bmp = rdn;
        bmp[9] = 0x1e;
        assert_eq!(common_name(&bmp), None, "a BMPString is not read");
        // A long-form length.
        assert_eq!(
            tlv(&[0x04, 0x81, 0x02, 1, 2, 9]),
            Some((0x04, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(tlv(&[0x04, 0x85, 0, 0, 0, 0, 1, 0]), None);
    }

    #[test]
    fn every_part_of_an_entry_must_fit_and_names_are_compared_exactly() {
        let c = cert(
            Some("erp"),
            &["ERP.example.com"],
            &["spiffe://example.org/erp"],
        );
        let m = |cn: Option<&str>, san: Option<&str>| {
            CertMatch::new(
                None,
                cn.map(String::from),
                san.map(|s| s.parse().expect("san")),
            )
            .expect("match")
        };
        assert!(m(Some("erp"), None).matches(&c));
        assert!(
            m(None, Some("erp.EXAMPLE.com")).matches(&c),
            "DNS ignores case"
        );
        assert!(m(Some("erp"), Some("spiffe://example.org/erp")).matches(&c));
        assert!(!m(Some("erp"), Some("spiffe://example.org/other")).matches(&c));
        assert!(!m(Some("ERP"), None).matches(&c), "a common name is exact");
        assert!(!m(None, Some("*.example.com")).matches(&c), "no wildcards");
        assert!(CertMatch::fingerprint(c.fingerprint).matches(&c));
        assert!(
            !CertMatch::new(
                Some(CertFingerprint::of(b"other")),
                Some("erp".into()),
                None
            )
            .expect("match")
            .matches(&c)
        );
        let wild = cert(Some("w"), &["*.example.com"], &[]);
        assert!(m(None, Some("*.example.com")).matches(&wild));
        assert!(!m(None, Some("erp.example.com")).matches(&wild));
        assert!(CertMatch::new(None, None, None).is_err());
        assert!(CertMatch::new(None, Some(" ".into()), None).is_err());
    }

    #[test]
    fn a_san_is_a_dns_name_or_a_uri() {
        assert_eq!(
            "Erp.Example.com".parse(),
            Ok(San::Dns("erp.example.com".into()))
        );
        assert_eq!(
            "spiffe://example.org/erp".parse(),
            Ok(San::Uri("spiffe://example.org/erp".into()))
        );
        assert_eq!("urn:x:erp".parse(), Ok(San::Uri("urn:x:erp".into())));
        for bad in [
            "",
            "erp example",
            "10.0.0.1",
            "1x://a",
            "a..b",
            "spiffe://a b",
        ] {
            assert!(bad.parse::<San>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_certificate_fitting_two_entries_fits_none() {
        let c = cert(Some("erp"), &["erp.example.com"], &[]);
        let entry = |name: &str, m: CertMatch| CertEntry {
            matches: m,
            name: name.into(),
            roles: vec![Role::ArSystem],
        };
        let by_cn = CertMatch::new(None, Some("erp".into()), None).expect("cn");
        let by_san =
            CertMatch::new(None, None, Some("erp.example.com".parse().expect("san"))).expect("san");
        let one = ClientCerts::new(vec![entry("a", by_cn.clone())]);
        assert!(matches!(one.find(&c), Found::One(e) if e.name == "a"));
        let two = ClientCerts::new(vec![entry("a", by_cn), entry("b", by_san)]);
        assert!(matches!(two.find(&c), Found::Several(n) if n == ["a", "b"]));
        let other = cert(Some("other"), &[], &[]);
        assert!(matches!(two.find(&other), Found::None));
    }

    #[test]
    fn fingerprints_are_read_as_openssl_prints_them() {
        let f = CertFingerprint::of(b"erp certificate");
        let openssl = f
            .to_hex()
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(
            CertFingerprint::from_hex(&format!("sha256 Fingerprint={openssl}")),
            Ok(f)
        );
        assert!(CertFingerprint::from_hex("ab:cd").is_err());
    }
}

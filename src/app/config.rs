//! The service's settings: compiled-in defaults, then the TOML config file, then command-line
//! flags, validated once into [`Settings`].
//!
//! ```toml
//! addr = "0.0.0.0:50051"
//! data_dir = "/var/lib/cashmatch"
//! models_dir = "/var/lib/cashmatch/models"   # follow MODELS/ACTIVE (docs/training.md)
//! model = "/opt/cashmatch/models/2026-11"   # else the last activated, else the built-in one
//! threshold = 0.97                          # overrides the model's auto-apply threshold
//! unexplained_tolerance = "1.00"            # cash an auto decision may leave unexplained
//! rules = "/etc/cashmatch/rules.toml"       # write-offs, overpayments, grace (docs/rules.md)
//! metrics_addr = "127.0.0.1:9464"           # Prometheus /metrics over HTTP
//! durability = "full"                       # or "normal": see store::Durability
//!
//! [ui]                                      # the analysts' workbench (docs/workbench.md)
//! addr = "127.0.0.1:8080"                   # where it listens
//! enabled = true                            # false: no workbench
//! sla_hours = 48                            # a review item older than this is overdue
//!
//! [ui.sla_hours_by_reason]                  # other limits for some review reasons
//! possible_duplicate = 4
//! returned_item = 8
//!
//! [limits]
//! max_message_bytes = 16777216
//! max_lines_per_remittance = 10000
//! max_payments_per_request = 10000
//!
//! [tls]                                     # TLS in the binary (docs/operations.md)
//! cert = "/etc/cashmatch/tls/server.crt"    # PEM chain, leaf first; re-read when it changes
//! key = "/etc/cashmatch/tls/server.key"     # PEM private key
//! client_ca = "/etc/cashmatch/tls/ar-ca.crt" # optional: client certificates (mutual TLS)
//! workbench = true                          # the workbench over TLS too (the default)
//!
//! [[client_certs]]                          # with client_ca: a certificate's roles
//! name = "erp"
//! sha256 = "AB:12:..."                      # `openssl x509 -noout -fingerprint -sha256`
//! roles = ["ar_system"]
//!
//! [[client_certs]]                          # or by name, which outlives a renewal
//! name = "bank-feed"
//! subject_cn = "bank-feed"                  # the subject's common name, and/or
//! san = "spiffe://example.org/bank-feed"    # a DNS name or URI among its alternative names
//! roles = ["ar_system"]
//!
//! [four_eyes]                               # a second analyst approves above these (docs/operations.md)
//! above = "10000.00"                        # the default; write-offs, on account, manual allocations
//! currencies = { JPY = "1500000" }          # limits of their own for some currencies
//!
//! [advices]                                 # receipts and advices that arrive apart (docs/advices.md)
//! hold_receipts = true                      # a bank payment without lines waits for its advice (off by default)
//! hold_business_days = 2                    # how long a receipt or an advice waits (the default)
//! window_days = 7                           # receipt and advice dates at most this far apart
//! fee_limit = "50.00"                       # a receipt short of its advice by at most this: a bank fee
//! date_margin_days = 7                      # dates choose between equal counterparts only by this margin
//! review_receipts_alone = true              # a receipt with nothing but amount and payer, its hold over, goes to a person
//! usual_delay_days = 3                      # an advice and its money usually this close (exact links further off weighed)
//!
//! [[tokens]]                                # `cashmatch token new` prints these lines
//! name = "erp"
//! token_sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
//! roles = ["ar_system"]
//!
//! [[tokens]]
//! name = "alice"
//! token_sha256 = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
//! roles = ["analyst"]
//! ```
//!
//! Without `[tls]` the service speaks plaintext and listens on loopback only, unless
//! `tls_terminated_by_proxy = true` says that a proxy in front terminates TLS.
//!
//! Tokens are stored as their SHA-256 only ([`crate::service::auth`]); a clear-text `token = ...`
//! is refused with the way to hash it. While the service runs, `crate::app::config_watch`
//! re-reads the file and applies its `[[tokens]]`, `[[client_certs]]` and `[four_eyes]` (the
//! other settings apply at the next start; the TLS certificate, key and client CA files are
//! followed by `crate::tls`).

use crate::bus::nats::NatsConfig;
use crate::domain::ReviewReason;
use crate::engine::DEFAULT_UNEXPLAINED_TOLERANCE;
use crate::service::auth::{
    CertEntry, CertFingerprint, CertMatch, ClientCerts, Role, TokenEntry, TokenHash, Tokens,
};
use crate::service::{AdviceSettings, FourEyes, Limits};
use crate::store::{Durability, Sla, StoreUrl};
use crate::tls::TlsFiles;
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default listening address: loopback, so a bare `cashmatch serve` is not reachable from
/// other machines.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// The event bus's subject prefix unless `--nats-prefix` says otherwise.
pub const DEFAULT_NATS_PREFIX: &str = "cashmatch";

/// Where the workbench listens unless told otherwise: loopback too.
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:8080";

pub use crate::store::DEFAULT_SLA_HOURS;

/// A config that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    model: Option<PathBuf>,
    models_dir: Option<PathBuf>,
    threshold: Option<f64>,
    /// A string, as all money in the project: `"0.50"`, read exactly.
    unexplained_tolerance: Option<Decimal>,
    rules: Option<PathBuf>,
    metrics_addr: Option<SocketAddr>,
    #[serde(default)]
    durability: Durability,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    ui: FileUi,
    #[serde(default)]
    tokens: Vec<FileToken>,
    tls: Option<FileTls>,
    #[serde(default)]
    client_certs: Vec<FileClientCert>,
    /// Plaintext beyond loopback, because a proxy in front terminates TLS.
    tls_terminated_by_proxy: Option<bool>,
    four_eyes: Option<FileFourEyes>,
    advices: Option<FileAdvices>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAdvices {
    hold_receipts: Option<bool>,
    hold_business_days: Option<u32>,
    window_days: Option<u32>,
    /// Money, as a string, read exactly.
    fee_limit: Option<String>,
    date_margin_days: Option<u32>,
    review_receipts_alone: Option<bool>,
    usual_delay_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileFourEyes {
    /// Money, as a string, read exactly: a TOML number would pass through a float.
    above: Option<String>,
    #[serde(default)]
    currencies: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTls {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
    workbench: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileClientCert {
    name: String,
    /// Any of the three; each given must fit the certificate.
    sha256: Option<String>,
    subject_cn: Option<String>,
    /// A DNS name or a URI.
    san: Option<String>,
    roles: Vec<Role>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUi {
    addr: Option<SocketAddr>,
    enabled: Option<bool>,
    sla_hours: Option<u32>,
    /// Review reason (its snake_case name) to hours.
    #[serde(default)]
    sla_hours_by_reason: std::collections::BTreeMap<String, u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileLimits {
    max_message_bytes: Option<usize>,
    max_lines_per_remittance: Option<usize>,
    max_payments_per_request: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToken {
    name: String,
    /// The SHA-256 of the token, 64 hex digits.
    token_sha256: Option<String>,
    /// A token in clear text: read only to refuse it with the way out.
    token: Option<String>,
    roles: Vec<Role>,
}

/// A config file as it was read.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    pub path: PathBuf,
    pub text: String,
}

/// Flags given on the command line; each overrides the file.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub addr: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub model: Option<PathBuf>,
    pub models_dir: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    pub ui_addr: Option<SocketAddr>,
    /// `--no-ui`: do not serve the workbench.
    pub no_ui: bool,
    /// `--store`: a PostgreSQL database instead of the SQLite store in the data directory.
    pub store: Option<StoreUrl>,
    /// `--nats`: the event bus's NATS server.
    pub nats: Option<String>,
    /// `--nats-prefix`: the event bus's subject prefix.
    pub nats_prefix: Option<String>,
    /// `--rules`: the rules file.
    pub rules: Option<PathBuf>,
}

/// Everything the service needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The PostgreSQL store, when not the SQLite one in `data_dir` (a flag only: a URL may
    /// carry a password, which has no place in a config file checked into a deployment repo).
    pub store: Option<StoreUrl>,
    /// The model directory to start with; `None` means the last activated, else the built-in.
    pub model: Option<PathBuf>,
    /// A models directory whose `ACTIVE` pointer the service follows (what `cashmatch-train
    /// retrain --publish` writes).
    pub models_dir: Option<PathBuf>,
    pub threshold: Option<f64>,
    /// Cash an auto decision may leave unapplied that the remittance does not account for
    /// ([`crate::engine::EngineConfig::unexplained_tolerance`]).
    pub unexplained_tolerance: Decimal,
    /// The rules file (`crate::rules`), followed while the service runs
    /// (`crate::app::rules_watch`); `None`: the built-in rules.
    pub rules: Option<PathBuf>,
    pub metrics_addr: Option<SocketAddr>,
    /// When a store commit counts as durable.
    pub durability: Durability,
    pub limits: Limits,
    /// The bearer tokens; none (and no client certificates) means no authentication (loopback
    /// only).
    pub tokens: Tokens,
    /// Client certificates and their roles (mutual TLS).
    pub client_certs: ClientCerts,
    /// The TLS certificate, key and client CA; `None`: plaintext.
    pub tls: Option<TlsFiles>,
    /// Whether the workbench is served over TLS too (when `tls` is set).
    pub ui_tls: bool,
    /// Plaintext allowed beyond loopback: a proxy in front terminates TLS.
    pub tls_terminated_by_proxy: bool,
    /// Above which amounts a resolution needs a second analyst (re-read while running).
    pub four_eyes: FourEyes,
    /// Holding receipts for their advices, and linking them (`[advices]`).
    pub advices: AdviceSettings,
    /// The config file read and its text, which the service re-reads for changes to its tokens,
    /// client certificates and four-eyes limits.
    pub config: Option<ConfigFile>,
    /// The flags, applied again to every re-read of the file.
    pub overrides: Overrides,
    /// Where the analysts' workbench listens; `None`: not served.
    pub ui_addr: Option<SocketAddr>,
    /// How long a review item may wait before it is overdue, per reason.
    pub review_sla: Sla,
    /// The event bus (`crate::bus`): payments in, decisions and postings out; `None`: gRPC only.
    pub nats: Option<NatsConfig>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("data"),
            store: None,
            model: None,
            models_dir: None,
            threshold: None,
            unexplained_tolerance: DEFAULT_UNEXPLAINED_TOLERANCE,
            rules: None,
            metrics_addr: None,
            durability: Durability::Full,
            limits: Limits::default(),
            tokens: Tokens::default(),
            client_certs: ClientCerts::default(),
            tls: None,
            ui_tls: true,
            tls_terminated_by_proxy: false,
            four_eyes: FourEyes::default(),
            advices: AdviceSettings::default(),
            config: None,
            overrides: Overrides::default(),
            ui_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            review_sla: Sla::hours(DEFAULT_SLA_HOURS),
            nats: None,
        }
    }
}

impl Settings {
    /// Defaults, then the file (if any), then the flags; refuses what cannot be right.
    pub fn load(config: Option<&Path>, flags: Overrides) -> Result<Settings, ConfigError> {
        match config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                Settings::parse(p, &text, flags)
            }
            None => Settings::from_parts(FileConfig::default(), flags),
        }
    }

    /// [`Settings::load`] of a config file's text, already read from `path`.
    pub fn parse(path: &Path, text: &str, flags: Overrides) -> Result<Settings, ConfigError> {
        let in_file = |message: String| ConfigError::File {
            path: path.display().to_string(),
            message,
        };
        let file = toml::from_str::<FileConfig>(text).map_err(|e| in_file(e.to_string()))?;
        let mut s = Settings::from_parts(file, flags).map_err(|e| match e {
            ConfigError::Invalid(m) => in_file(m),
            e => e,
        })?;
        s.config = Some(ConfigFile {
            path: path.to_path_buf(),
            text: text.to_string(),
        });
        Ok(s)
    }

    fn from_parts(file: FileConfig, flags: Overrides) -> Result<Settings, ConfigError> {
        let FileConfig {
            addr,
            data_dir,
            model,
            models_dir,
            threshold,
            unexplained_tolerance,
            rules,
            metrics_addr,
            durability,
            limits,
            ui,
            tokens,
            tls,
            client_certs,
            tls_terminated_by_proxy,
            four_eyes,
            advices,
        } = file;
        let four_eyes = read_four_eyes(four_eyes.unwrap_or_default())?;
        let advices = read_advices(advices.unwrap_or_default())?;
        let d = Settings::default();
        let FileLimits {
            max_message_bytes,
            max_lines_per_remittance,
            max_payments_per_request,
        } = limits;
        let limits = Limits {
            max_message_bytes: max_message_bytes.unwrap_or(d.limits.max_message_bytes),
            max_lines_per_remittance: max_lines_per_remittance
                .unwrap_or(d.limits.max_lines_per_remittance),
            max_payments_per_request: max_payments_per_request
                .unwrap_or(d.limits.max_payments_per_request),
        };
        if limits.max_message_bytes < 1024
            || limits.max_lines_per_remittance == 0
            || limits.max_payments_per_request == 0
        {
            return Err(ConfigError::Invalid(format!(
                "limits too small to serve anything: {limits:?}"
            )));
        }
        if let Some(t) = threshold {
            if !(0.0..=1.0).contains(&t) {
                return Err(ConfigError::Invalid(format!(
                    "threshold {t} is not a probability"
                )));
            }
        }
        let unexplained_tolerance = unexplained_tolerance.unwrap_or(d.unexplained_tolerance);
        if unexplained_tolerance.is_sign_negative() {
            return Err(ConfigError::Invalid(format!(
                "unexplained_tolerance {unexplained_tolerance} is negative"
            )));
        }
        let tokens = read_tokens(tokens)?;
        let client_certs = read_client_certs(client_certs)?;
        let (tls, ui_tls) = match tls {
            Some(FileTls {
                cert,
                key,
                client_ca,
                workbench,
            }) => (
                Some(TlsFiles {
                    cert,
                    key,
                    client_ca,
                }),
                workbench.unwrap_or(true),
            ),
            None => (None, false),
        };
        if !client_certs.is_empty() && tls.as_ref().is_none_or(|t| t.client_ca.is_none()) {
            return Err(ConfigError::Invalid(
                "[[client_certs]] need [tls] with client_ca: the CA that issues the client \
                 certificates, which the handshake checks them against"
                    .into(),
            ));
        }
        let behind_proxy = tls_terminated_by_proxy.unwrap_or(false);
        let auth_enabled = !tokens.is_empty() || !client_certs.is_empty();
        let overrides = flags.clone();
        let addr = flags.addr.or(addr).unwrap_or(d.addr);
        if !auth_enabled && !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {addr} without authentication: give a --config with \
                 [[tokens]], or listen on a loopback address"
            )));
        }
        if tls.is_none() && !behind_proxy && !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {addr} in plaintext: configure [tls] (cert and key), or \
                 set tls_terminated_by_proxy = true when a proxy in front terminates TLS, or \
                 listen on a loopback address"
            )));
        }
        let FileUi {
            addr: ui_file_addr,
            enabled,
            sla_hours,
            sla_hours_by_reason,
        } = ui;
        let ui_addr = if flags.no_ui || enabled == Some(false) {
            None
        } else {
            flags.ui_addr.or(ui_file_addr).or(d.ui_addr)
        };
        if let Some(ui) = ui_addr {
            if !auth_enabled && !ui.ip().is_loopback() {
                return Err(ConfigError::Invalid(format!(
                    "refusing to serve the workbench on {ui} without authentication: give a \
                     --config with [[tokens]], or a loopback --ui-addr"
                )));
            }
            if !ui_tls && !behind_proxy && !ui.ip().is_loopback() {
                return Err(ConfigError::Invalid(format!(
                    "refusing to serve the workbench on {ui} in plaintext: configure [tls] (with \
                     workbench = true), or set tls_terminated_by_proxy = true when a proxy in \
                     front terminates TLS, or a loopback --ui-addr"
                )));
            }
        }
        let hours = sla_hours.unwrap_or(d.review_sla.default.num_hours() as u32);
        if hours == 0 {
            return Err(ConfigError::Invalid(
                "ui.sla_hours must be at least 1".into(),
            ));
        }
        let mut review_sla = Sla::hours(hours);
        for (name, hours) in sla_hours_by_reason {
            let reason: ReviewReason = serde_json::from_value(serde_json::Value::String(
                name.clone(),
            ))
            .map_err(|_| {
                ConfigError::Invalid(format!(
                    "ui.sla_hours_by_reason: {name:?} is not a review reason (possible_duplicate, \
                     ambiguous, no_candidate, ...: docs/workbench.md)"
                ))
            })?;
            if hours == 0 {
                return Err(ConfigError::Invalid(format!(
                    "ui.sla_hours_by_reason.{name} must be at least 1"
                )));
            }
            review_sla
                .by_reason
                .push((reason, chrono::Duration::hours(i64::from(hours))));
        }
        let nats = match (&flags.nats, &flags.nats_prefix) {
            (Some(url), prefix) => {
                let n = NatsConfig {
                    url: url.clone(),
                    prefix: prefix.clone().unwrap_or_else(|| DEFAULT_NATS_PREFIX.into()),
                };
                n.validate().map_err(ConfigError::Invalid)?;
                Some(n)
            }
            (None, Some(_)) => {
                return Err(ConfigError::Invalid(
                    "--nats-prefix needs --nats (the NATS server)".into(),
                ));
            }
            (None, None) => None,
        };
        Ok(Settings {
            addr,
            ui_addr,
            review_sla,
            nats,
            data_dir: flags.data_dir.or(data_dir).unwrap_or(d.data_dir),
            store: flags.store.clone(),
            model: flags.model.or(model),
            models_dir: flags.models_dir.or(models_dir),
            threshold,
            unexplained_tolerance,
            rules: flags.rules.clone().or(rules),
            metrics_addr: flags.metrics_addr.or(metrics_addr),
            durability,
            limits,
            tokens,
            client_certs,
            tls,
            ui_tls,
            tls_terminated_by_proxy: behind_proxy,
            four_eyes,
            advices,
            config: None,
            overrides,
        })
    }
}

/// The `[[tokens]]` of a file, checked: each names its holder, has roles and a well-formed hash,
/// and no hash appears twice (two entries may share a name: a token being rotated).
fn read_tokens(entries: Vec<FileToken>) -> Result<Tokens, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for t in entries {
        let name = t.name.trim().to_string();
        if name.is_empty() {
            return Err(ConfigError::Invalid(
                "a [[tokens]] entry has an empty name".into(),
            ));
        }
        let roles: Vec<String> = t.roles.iter().map(Role::to_string).collect();
        if t.roles.is_empty() {
            return Err(ConfigError::Invalid(format!("token {name} has no roles")));
        }
        if t.token.is_some() {
            return Err(ConfigError::Invalid(format!(
                "token {name} is in clear text: the config holds only hashes of tokens. Run \
                 `cashmatch token new --name {name} --role {}` and put the lines it prints in \
                 place of this entry (or, to keep this token, replace `token = ...` with `token_sha256 = \"...\"`, the \
                 hash `cashmatch token hash` prints for the token on its standard input)",
                roles.join(" --role ")
            )));
        }
        let Some(hex) = t.token_sha256 else {
            return Err(ConfigError::Invalid(format!(
                "token {name} has no token_sha256: run `cashmatch token new --name {name} --role \
                 {}` for one",
                roles.join(" --role ")
            )));
        };
        let hash = TokenHash::from_hex(&hex)
            .map_err(|e| ConfigError::Invalid(format!("token {name}: {e}")))?;
        if !seen.insert(hash) {
            return Err(ConfigError::Invalid(format!(
                "token of {name} is given twice"
            )));
        }
        out.push(TokenEntry {
            hash,
            name,
            roles: t.roles,
        });
    }
    Ok(Tokens::new(out))
}

/// The `[advices]` of a file: holding off unless asked for, the engine's linking defaults
/// otherwise; the fee limit is money (a string, exact), not negative.
fn read_advices(f: FileAdvices) -> Result<AdviceSettings, ConfigError> {
    let FileAdvices {
        hold_receipts,
        hold_business_days,
        window_days,
        fee_limit,
        date_margin_days,
        review_receipts_alone,
        usual_delay_days,
    } = f;
    let mut s = AdviceSettings::default();
    s.link.usual_delay_days = usual_delay_days.map_or(s.link.usual_delay_days, i64::from);
    s.link.date_margin_days = date_margin_days.map_or(s.link.date_margin_days, i64::from);
    s.link.review_receipts_alone = review_receipts_alone.unwrap_or(s.link.review_receipts_alone);
    s.hold_receipts = hold_receipts.unwrap_or(s.hold_receipts);
    s.link.hold_business_days = hold_business_days.unwrap_or(s.link.hold_business_days);
    s.link.window_days = window_days.map_or(s.link.window_days, i64::from);
    if let Some(t) = fee_limit {
        let v: Decimal = t.trim().parse().map_err(|e| {
            ConfigError::Invalid(format!(
                "advices.fee_limit: {t:?} is not a decimal amount: {e}"
            ))
        })?;
        if v.is_sign_negative() {
            return Err(ConfigError::Invalid(format!(
                "advices.fee_limit: {t} is negative"
            )));
        }
        s.link.fee_limit = v;
    }
    Ok(s)
}

/// The `[four_eyes]` of a file: limits that are money (strings, exact), not negative, in
/// currencies that are ISO codes.
fn read_four_eyes(f: FileFourEyes) -> Result<FourEyes, ConfigError> {
    let check = |what: String, text: &str| {
        let v: Decimal = text.trim().parse().map_err(|e| {
            ConfigError::Invalid(format!(
                "{what} = {text:?} is not an amount (write it as a string, \"10000.00\"): {e}"
            ))
        })?;
        if v.is_sign_negative() {
            Err(ConfigError::Invalid(format!("{what} {v} is negative")))
        } else {
            Ok(v)
        }
    };
    let above = match &f.above {
        Some(t) => check("four_eyes.above".into(), t)?,
        None => FourEyes::default().above,
    };
    let mut per_currency = std::collections::BTreeMap::new();
    for (code, v) in f.currencies {
        let c: crate::domain::Currency = code
            .parse()
            .map_err(|e| ConfigError::Invalid(format!("four_eyes.currencies.{code}: {e}")))?;
        per_currency.insert(c, check(format!("four_eyes.currencies.{code}"), &v)?);
    }
    Ok(FourEyes {
        above,
        per_currency,
    })
}

/// The `[[client_certs]]` of a file, checked like the tokens: a name, roles, a certificate named
/// by a well-formed fingerprint, common name or alternative name, no entry twice.
fn read_client_certs(entries: Vec<FileClientCert>) -> Result<ClientCerts, ConfigError> {
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(entries.len());
    for c in entries {
        let name = c.name.trim().to_string();
        if name.is_empty() {
            return Err(ConfigError::Invalid(
                "a [[client_certs]] entry has an empty name".into(),
            ));
        }
        if c.roles.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "client certificate {name} has no roles"
            )));
        }
        let invalid = |e: String| ConfigError::Invalid(format!("client certificate {name}: {e}"));
        let sha256 = c
            .sha256
            .as_deref()
            .map(CertFingerprint::from_hex)
            .transpose()
            .map_err(invalid)?;
        let san = c
            .san
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(invalid)?;
        let subject_cn = c.subject_cn.map(|cn| cn.trim().to_string());
        let matches = CertMatch::new(sha256, subject_cn, san).map_err(invalid)?;
        if !seen.insert(matches.clone()) {
            return Err(ConfigError::Invalid(format!(
                "client certificate of {name} ({matches}) is given twice"
            )));
        }
        out.push(CertEntry {
            matches,
            name,
            roles: c.roles,
        });
    }
    Ok(ClientCerts::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, ConfigError> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        Settings::from_parts(file, Overrides::default())
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let file: FileConfig = toml::from_str(
            "addr = \"127.0.0.1:6000\"\ndata_dir = \"/tmp/x\"\n[limits]\nmax_lines_per_remittance = 5\n",
        )
        .expect("toml");
        let s = Settings::from_parts(
            file,
            Overrides {
                addr: Some("127.0.0.1:7000".parse().expect("addr")),
                ..Default::default()
            },
        )
        .expect("settings");
        assert_eq!(s.addr.port(), 7000);
        assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(s.limits.max_lines_per_remittance, 5);
        assert_eq!(
            s.limits.max_message_bytes,
            Limits::default().max_message_bytes
        );
        assert!(s.tokens.is_empty());
    }

    #[test]
    fn no_tokens_means_loopback_only() {
        let e = parse("addr = \"0.0.0.0:50051\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("without authentication"), "{e}");
        let s = parse(&format!(
            "addr = \"0.0.0.0:50051\"\ntls_terminated_by_proxy = true\n[ui]\nenabled = false\n{}",
            entry("erp", "x", "ar_system")
        ))
        .expect("with tokens");
        assert_eq!(s.tokens.len(), 1);
    }

    #[test]
    fn plaintext_beyond_loopback_needs_tls_or_a_proxy_in_front() {
        let tokens = entry("erp", "x", "ar_system");
        let e = refusal(&format!("addr = \"0.0.0.0:50051\"\n{tokens}"));
        assert!(e.contains("in plaintext") && e.contains("[tls]"), "{e}");
        let tls = "[tls]\ncert = \"/etc/c.crt\"\nkey = \"/etc/c.key\"\n";
        let s = parse(&format!(
            "addr = \"0.0.0.0:50051\"\n[ui]\naddr = \"0.0.0.0:8443\"\n{tls}{tokens}"
        ))
        .expect("with TLS");
        assert!(s.ui_tls && s.tls.is_some_and(|t| t.client_ca.is_none()));
        let e = refusal(&format!(
            "addr = \"0.0.0.0:50051\"\n[ui]\naddr = \"0.0.0.0:8443\"\n{tls}workbench = false\n{tokens}"
        ));
        assert!(e.contains("workbench on 0.0.0.0:8443 in plaintext"), "{e}");
    }

    #[test]
    fn client_certs_need_a_client_ca_and_a_good_fingerprint() {
        let cert = |sha: &str| {
            format!(
                "[[client_certs]]\nname = \"erp\"\nsha256 = \"{sha}\"\nroles = [\"ar_system\"]\n"
            )
        };
        let good = CertFingerprint::of(b"x").to_hex();
        let e = refusal(&cert(&good));
        assert!(e.contains("client_ca"), "{e}");
        let tls = "[tls]\ncert = \"c.crt\"\nkey = \"c.key\"\nclient_ca = \"ca.crt\"\n";
        let s = parse(&format!("{tls}{}", cert(&good))).expect("mTLS");
        assert_eq!(s.client_certs.len(), 1);
        let e = refusal(&format!("{tls}{}", cert("12:34")));
        assert!(
            e.contains("client certificate erp") && e.contains("64 hex digits"),
            "{e}"
        );
    }

    #[test]
    fn client_certs_may_be_named_by_subject_or_alternative_name() {
        let tls = "[tls]\ncert = \"c.crt\"\nkey = \"c.key\"\nclient_ca = \"ca.crt\"\n";
        let cert = |name: &str, keys: &str| {
            format!("[[client_certs]]\nname = \"{name}\"\n{keys}\nroles = [\"ar_system\"]\n")
        };
        let s = parse(&format!(
            "{tls}{}{}{}",
            cert("erp", "subject_cn = \"erp\""),
            cert("bank", "san = \"spiffe://example.org/bank\""),
            cert("both", "subject_cn = \"x\"\nsan = \"x.example.com\""),
        ))
        .expect("names");
        assert_eq!(s.client_certs.len(), 3);
        let e = refusal(&format!("{tls}{}", cert("none", "")));
        assert!(
            e.contains("client certificate none") && e.contains("subject_cn or san"),
            "{e}"
        );
        let e = refusal(&format!("{tls}{}", cert("ip", "san = \"10.0.0.1\"")));
        assert!(e.contains("client certificate ip"), "{e}");
        let e = refusal(&format!(
            "{tls}{}{}",
            cert("a", "subject_cn = \"erp\""),
            cert("b", "subject_cn = \"erp\"")
        ));
        assert!(e.contains("given twice"), "{e}");
    }

    /// A `[[tokens]]` entry for `token`, as `cashmatch token new` prints it.
    fn entry(name: &str, token: &str, role: &str) -> String {
        format!(
            "[[tokens]]\nname = \"{name}\"\ntoken_sha256 = \"{}\"\nroles = [\"{role}\"]\n",
            TokenHash::of(token).to_hex()
        )
    }

    fn refusal(text: &str) -> String {
        parse(text).err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn tokens_are_hashes_and_a_clear_text_token_is_refused_with_the_way_out() {
        let s = parse(&format!(
            "{}{}",
            entry("erp", "t1", "ar_system"),
            entry("erp", "t2", "ar_system")
        ))
        .expect("two tokens of one holder: a rotation");
        let auth = crate::service::auth::Auth::new(s.tokens);
        assert!(auth.check(Some("Bearer t2"), Role::ArSystem, None).is_ok());
        let e = refusal(
            "[[tokens]]\nname = \"erp\"\ntoken = \"t1\"\nroles = [\"ar_system\", \"admin\"]\n",
        );
        assert!(
            e.contains("clear text")
                && e.contains("cashmatch token new --name erp --role ar_system --role admin"),
            "{e}"
        );
        let e = refusal("[[tokens]]\nname = \"erp\"\nroles = [\"ar_system\"]\n");
        assert!(e.contains("no token_sha256"), "{e}");
        let e = refusal(
            "[[tokens]]\nname = \"erp\"\ntoken_sha256 = \"abc\"\nroles = [\"ar_system\"]\n",
        );
        assert!(
            e.contains("token erp") && e.contains("64 hex digits"),
            "{e}"
        );
        let e = refusal(&format!(
            "{}{}",
            entry("a", "t1", "analyst"),
            entry("b", "t1", "admin")
        ));
        assert!(e.contains("given twice"), "{e}");
    }

    #[test]
    fn a_file_error_names_the_file() {
        let e = Settings::parse(
            Path::new("/etc/cashmatch.toml"),
            "[[tokens]]\nname = \"\"\n",
            Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.starts_with("/etc/cashmatch.toml: "), "{e}");
        let e = Settings::parse(
            Path::new("/etc/cashmatch.toml"),
            "[[tokens]]\nname = \"a\"\ntoken = \"x\"\nroles = [\"admin\"]\n",
            Overrides::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            e.starts_with("/etc/cashmatch.toml: token a is in clear text"),
            "{e}"
        );
    }

    #[test]
    fn the_unexplained_tolerance_is_exact_money_and_never_negative() {
        assert_eq!(
            parse("").map(|s| s.unexplained_tolerance).ok(),
            Some(DEFAULT_UNEXPLAINED_TOLERANCE)
        );
        assert_eq!(
            parse("unexplained_tolerance = \"0.10\"")
                .map(|s| s.unexplained_tolerance.to_string())
                .ok(),
            Some("0.10".to_string())
        );
        let e = parse("unexplained_tolerance = \"-0.01\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("negative"), "{e}");
        assert!(parse("unexplained_tolerance = \"a few cents\"").is_err());
    }

    #[test]
    fn holding_receipts_is_off_unless_asked_and_the_fee_limit_is_exact_money() {
        let s = parse("").expect("empty");
        assert!(!s.advices.hold_receipts);
        assert_eq!(s.advices.link.hold_business_days, 2);
        let s =
            parse("[advices]\nhold_receipts = true\nhold_business_days = 3\nfee_limit = \"25.50\"")
                .expect("advices");
        assert!(s.advices.hold_receipts);
        assert_eq!(s.advices.link.hold_business_days, 3);
        assert_eq!(s.advices.link.fee_limit.to_string(), "25.50");
        assert_eq!(s.advices.link.date_margin_days, 7);
        assert!(s.advices.link.review_receipts_alone);
        assert_eq!(s.advices.link.usual_delay_days, 3);
        let s = parse(
            "[advices]\ndate_margin_days = 3\nreview_receipts_alone = false\nusual_delay_days = 5",
        )
        .expect("linking rules");
        assert_eq!(s.advices.link.usual_delay_days, 5);
        assert_eq!(s.advices.link.date_margin_days, 3);
        assert!(!s.advices.link.review_receipts_alone);
        assert!(refusal("[advices]\nfee_limit = \"-1\"").contains("negative"));
        assert!(refusal("[advices]\nfee_limit = \"fifty\"").contains("advices.fee_limit"));
        assert!(
            parse("[advices]\nhold_days = 2").is_err(),
            "an unknown key is refused"
        );
    }

    #[test]
    fn four_eyes_limits_are_exact_money_with_a_default() {
        let s = parse("").expect("defaults");
        assert_eq!(s.four_eyes, FourEyes::default());
        assert_eq!(s.four_eyes.above, crate::service::DEFAULT_FOUR_EYES_ABOVE);
        let s = parse("[four_eyes]\nabove = \"2500.50\"\ncurrencies = { jpy = \"300000\" }")
            .expect("limits");
        assert_eq!(s.four_eyes.above.to_string(), "2500.50");
        let jpy: crate::domain::Currency = "JPY".parse().expect("jpy");
        assert_eq!(s.four_eyes.limit(jpy).to_string(), "300000");
        assert!(
            parse("[four_eyes]\nabove = 2500").is_err(),
            "a number, not money"
        );
        assert!(refusal("[four_eyes]\nabove = \"-1\"").contains("negative"));
        assert!(refusal("[four_eyes]\nabove = \"ten thousand\"").contains("four_eyes.above"));
        assert!(
            refusal("[four_eyes]\ncurrencies = { EURO = \"1\" }")
                .contains("four_eyes.currencies.EURO")
        );
    }

    #[test]
    fn durability_is_full_unless_the_file_says_normal() {
        assert_eq!(parse("").map(|s| s.durability).ok(), Some(Durability::Full));
        assert_eq!(
            parse("durability = \"normal\"").map(|s| s.durability).ok(),
            Some(Durability::Normal)
        );
        assert!(parse("durability = \"sometimes\"").is_err());
    }

    #[test]
    fn the_workbench_listens_on_loopback_by_default_and_not_elsewhere_without_tokens() {
        let s = parse("").expect("defaults");
        assert_eq!(
            s.ui_addr.map(|a| a.to_string()),
            Some(DEFAULT_UI_ADDR.into())
        );
        assert_eq!(s.review_sla, Sla::hours(DEFAULT_SLA_HOURS));
        let e = parse("[ui]\naddr = \"0.0.0.0:8080\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("without authentication"), "{e}");
        let s = parse("[ui]\nenabled = false\naddr = \"0.0.0.0:8080\"\nsla_hours = 4")
            .expect("disabled");
        assert_eq!((s.ui_addr, s.review_sla), (None, Sla::hours(4)));
        let s = parse("[ui]\nsla_hours = 24\n[ui.sla_hours_by_reason]\npossible_duplicate = 4")
            .expect("per reason");
        assert_eq!(
            s.review_sla.limit(Some(ReviewReason::PossibleDuplicate)),
            chrono::Duration::hours(4)
        );
        assert_eq!(
            s.review_sla.limit(Some(ReviewReason::Ambiguous)),
            chrono::Duration::hours(24)
        );
        let e = parse("[ui.sla_hours_by_reason]\nduplicated = 4")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"duplicated\" is not a review reason"), "{e}");
        let file: FileConfig = toml::from_str("").expect("toml");
        let s = Settings::from_parts(
            file,
            Overrides {
                no_ui: true,
                ..Default::default()
            },
        )
        .expect("settings");
        assert_eq!(s.ui_addr, None);
    }

    #[test]
    fn unknown_keys_and_roles_are_refused() {
        assert!(parse("adress = \"127.0.0.1:1\"").is_err());
        assert!(parse(&entry("a", "x", "root")).is_err());
        assert!(
            refusal(&entry("a", "x", "analyst").replace("[\"analyst\"]", "[]"))
                .contains("no roles")
        );
    }
}

//! The service's settings: compiled-in defaults, then the TOML config file, then command-line
//! flags, validated once into [`Settings`].
//!
//! ```toml
//! addr = "0.0.0.0:50051"
//! data_dir = "/var/lib/cashmatch"
//! models_dir = "/var/lib/cashmatch/models"   # follow MODELS/ACTIVE (docs/training.md)
//! model = "/opt/cashmatch/models/2026-11"   # else the last activated, else the built-in one
//! threshold = 0.97                          # overrides the model's auto-apply threshold
//! metrics_addr = "127.0.0.1:9464"           # Prometheus /metrics over HTTP
//! durability = "full"                       # or "normal": see store::Durability
//!
//! [ui]                                      # the analysts' workbench (docs/workbench.md)
//! addr = "127.0.0.1:8080"                   # where it listens
//! enabled = true                            # false: no workbench
//! sla_hours = 48                            # a review item older than this is overdue
//!
//! [limits]
//! max_message_bytes = 16777216
//! max_lines_per_remittance = 10000
//! max_payments_per_request = 10000
//!
//! [[tokens]]
//! name = "erp"
//! token = "a long random string"
//! roles = ["ar_system"]
//!
//! [[tokens]]
//! name = "alice"
//! token = "another long random string"
//! roles = ["analyst"]
//! ```

use super::Limits;
use super::auth::{Auth, Role};
use crate::store::Durability;
use serde::Deserialize;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default listening address: loopback, so a bare `cashmatch serve` is not reachable from
/// other machines.
pub const DEFAULT_ADDR: &str = "127.0.0.1:50051";

/// Where the workbench listens unless told otherwise: loopback too.
pub const DEFAULT_UI_ADDR: &str = "127.0.0.1:8080";

/// How long a review item may wait before the workbench marks it overdue, unless configured.
pub const DEFAULT_SLA_HOURS: u32 = 48;

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
    metrics_addr: Option<SocketAddr>,
    #[serde(default)]
    durability: Durability,
    #[serde(default)]
    limits: FileLimits,
    #[serde(default)]
    ui: FileUi,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUi {
    addr: Option<SocketAddr>,
    enabled: Option<bool>,
    sla_hours: Option<u32>,
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
struct TokenEntry {
    name: String,
    token: String,
    roles: Vec<Role>,
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
}

/// Everything the service needs to start.
#[derive(Clone, Debug)]
pub struct Settings {
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    /// The model directory to start with; `None` means the last activated, else the built-in.
    pub model: Option<PathBuf>,
    /// A models directory whose `ACTIVE` pointer the service follows (what `cashmatch-train
    /// retrain --publish` writes).
    pub models_dir: Option<PathBuf>,
    pub threshold: Option<f64>,
    pub metrics_addr: Option<SocketAddr>,
    /// When a store commit counts as durable.
    pub durability: Durability,
    pub limits: Limits,
    pub auth: Auth,
    /// Where the analysts' workbench listens; `None`: not served.
    pub ui_addr: Option<SocketAddr>,
    /// How long a review item may wait before it is overdue.
    pub review_sla_hours: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            data_dir: PathBuf::from("data"),
            model: None,
            models_dir: None,
            threshold: None,
            metrics_addr: None,
            durability: Durability::Full,
            limits: Limits::default(),
            auth: Auth::disabled(),
            ui_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            review_sla_hours: DEFAULT_SLA_HOURS,
        }
    }
}

impl Settings {
    /// Defaults, then the file (if any), then the flags; refuses what cannot be right.
    pub fn load(config: Option<&Path>, flags: Overrides) -> Result<Settings, ConfigError> {
        let file = match config {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::File {
                    path: p.display().to_string(),
                    message: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        Settings::from_parts(file, flags)
    }

    fn from_parts(file: FileConfig, flags: Overrides) -> Result<Settings, ConfigError> {
        let FileConfig {
            addr,
            data_dir,
            model,
            models_dir,
            threshold,
            metrics_addr,
            durability,
            limits,
            ui,
            tokens,
        } = file;
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
        let mut seen = HashSet::new();
        for t in &tokens {
            if t.token.trim().is_empty() || t.name.trim().is_empty() {
                return Err(ConfigError::Invalid(
                    "a [[tokens]] entry has an empty name or token".into(),
                ));
            }
            if t.roles.is_empty() {
                return Err(ConfigError::Invalid(format!(
                    "token {} has no roles",
                    t.name
                )));
            }
            if !seen.insert(t.token.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "token of {} is given twice",
                    t.name
                )));
            }
        }
        let auth = if tokens.is_empty() {
            Auth::disabled()
        } else {
            Auth::with_tokens(
                tokens
                    .into_iter()
                    .map(|t| (t.token.trim().to_string(), t.name, t.roles)),
            )
        };
        let addr = flags.addr.or(addr).unwrap_or(d.addr);
        if !auth.enabled() && !addr.ip().is_loopback() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {addr} without authentication: give a --config with \
                 [[tokens]], or listen on a loopback address"
            )));
        }
        let FileUi {
            addr: ui_file_addr,
            enabled,
            sla_hours,
        } = ui;
        let ui_addr = if flags.no_ui || enabled == Some(false) {
            None
        } else {
            flags.ui_addr.or(ui_file_addr).or(d.ui_addr)
        };
        if let Some(ui) = ui_addr {
            if !auth.enabled() && !ui.ip().is_loopback() {
                return Err(ConfigError::Invalid(format!(
                    "refusing to serve the workbench on {ui} without authentication: give a \
                     --config with [[tokens]], or a loopback --ui-addr"
                )));
            }
        }
        let review_sla_hours = sla_hours.unwrap_or(d.review_sla_hours);
        if review_sla_hours == 0 {
            return Err(ConfigError::Invalid(
                "ui.sla_hours must be at least 1".into(),
            ));
        }
        Ok(Settings {
            addr,
            ui_addr,
            review_sla_hours,
            data_dir: flags.data_dir.or(data_dir).unwrap_or(d.data_dir),
            model: flags.model.or(model),
            models_dir: flags.models_dir.or(models_dir),
            threshold,
            metrics_addr: flags.metrics_addr.or(metrics_addr),
            durability,
            limits,
            auth,
        })
    }
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
        assert!(!s.auth.enabled());
    }

    #[test]
    fn no_tokens_means_loopback_only() {
        let e = parse("addr = \"0.0.0.0:50051\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("without authentication"), "{e}");
        let s = parse(
            "addr = \"0.0.0.0:50051\"\n[[tokens]]\nname = \"erp\"\ntoken = \"x\"\nroles = [\"ar_system\"]\n",
        )
        .expect("with tokens");
        assert!(s.auth.enabled());
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
        assert_eq!(s.review_sla_hours, DEFAULT_SLA_HOURS);
        let e = parse("[ui]\naddr = \"0.0.0.0:8080\"")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("without authentication"), "{e}");
        let s = parse("[ui]\nenabled = false\naddr = \"0.0.0.0:8080\"\nsla_hours = 4")
            .expect("disabled");
        assert_eq!((s.ui_addr, s.review_sla_hours), (None, 4));
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
        assert!(parse("[[tokens]]\nname = \"a\"\ntoken = \"x\"\nroles = [\"root\"]\n").is_err());
        assert!(parse("[[tokens]]\nname = \"a\"\ntoken = \"x\"\nroles = []\n").is_err());
    }
}

//! The bus's configuration, as the seed's `appsettings.json`: `Logging.LogLevel`,
//! `MessageBus.PipeName`, `MaxConnections`, `HealthCheckIntervalSeconds`, with an
//! environment-specific file over it (`appsettings.Production.json` when the environment
//! is `Production`), and hot reload.
//!
//! Loading merges the files key by key (the environment's file wins), decodes the result
//! as the catalogue's `AppSettings` and checks its constraints; any mistake is an error
//! naming the file. [`watch`] polls the files' modification times and applies a changed
//! configuration, or logs why it was refused and keeps the running one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use ipcspec_generated::xstatenet::{AppSettings, LogLevel};
use ipcspec_runtime::validate::Validate;
use serde_json::Value;

/// Where the configuration files are and which environment applies.
#[derive(Debug, Clone)]
pub struct ConfigFiles {
    /// `appsettings.json`.
    pub base: PathBuf,
    /// `appsettings.<Environment>.json`, when an environment is set.
    pub environment: Option<PathBuf>,
}

impl ConfigFiles {
    /// The files in `dir` for `environment` (`DOTNET_ENVIRONMENT` as the seed's .NET
    /// host reads it, or `XSTATENET_ENVIRONMENT`).
    #[must_use]
    pub fn in_dir(dir: &Path, environment: Option<&str>) -> ConfigFiles {
        ConfigFiles {
            base: dir.join("appsettings.json"),
            environment: environment
                .filter(|e| !e.is_empty())
                .map(|e| dir.join(format!("appsettings.{e}.json"))),
        }
    }

    fn existing(&self) -> Vec<&Path> {
        std::iter::once(self.base.as_path())
            .chain(self.environment.as_deref())
            .filter(|p| p.exists())
            .collect()
    }

    /// The newest modification time of the files (to notice edits).
    fn stamp(&self) -> Vec<Option<SystemTime>> {
        std::iter::once(self.base.as_path())
            .chain(self.environment.as_deref())
            .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
            .collect()
    }
}

/// The settings the bus uses, with the seed's defaults for what no file sets.
#[derive(Debug, Clone, PartialEq)]
pub struct BusSettings {
    /// `Logging.LogLevel`: category -> level (`Default` applies to everything else).
    pub log_levels: Vec<(String, LogLevel)>,
    /// `MessageBus.PipeName`: the socket's file name.
    pub pipe_name: String,
    /// `MessageBus.MaxConnections`.
    pub max_connections: u32,
    /// `MessageBus.HealthCheckIntervalSeconds`.
    pub health_check_interval: Duration,
}

impl Default for BusSettings {
    fn default() -> Self {
        use ipcspec_generated::xstatenet as c;
        BusSettings {
            log_levels: vec![("Default".to_owned(), LogLevel::Information)],
            pipe_name: c::DEFAULT_PIPE_NAME.to_owned(),
            max_connections: c::MAX_CONNECTIONS,
            health_check_interval: Duration::from_secs(u64::from(c::HEALTH_CHECK_INTERVAL_SECONDS)),
        }
    }
}

impl BusSettings {
    /// A `tracing` filter for the log levels (`Default` -> the global level; a category
    /// `A.B.C` -> the target `a::b::c`, lower-cased, as Rust module paths are).
    #[must_use]
    pub fn filter(&self) -> String {
        fn level(level: LogLevel) -> &'static str {
            match level {
                LogLevel::Trace => "trace",
                LogLevel::Debug => "debug",
                LogLevel::Information => "info",
                LogLevel::Warning => "warn",
                LogLevel::Error | LogLevel::Critical => "error",
                LogLevel::None => "off",
            }
        }
        let mut parts = Vec::new();
        for (category, value) in &self.log_levels {
            if category == "Default" {
                parts.insert(0, level(*value).to_owned());
            } else {
                parts.push(format!(
                    "{}={}",
                    category.replace('.', "::").to_lowercase(),
                    level(*value)
                ));
            }
        }
        if parts.is_empty() {
            "info".to_owned()
        } else {
            parts.join(",")
        }
    }
}

/// Overlays `over` onto `base`, key by key for objects.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// Reads and checks the configuration.
///
/// # Errors
///
/// A file that is not JSON, or settings that do not match the catalogue's
/// `AppSettings` or break its constraints, with the file named.
pub fn load(files: &ConfigFiles) -> anyhow::Result<BusSettings> {
    let existing = files.existing();
    if existing.is_empty() {
        return Ok(BusSettings::default());
    }
    let mut merged = Value::Object(serde_json::Map::new());
    for path in &existing {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        if !value.is_object() {
            bail!(
                "{}: the configuration must be a JSON object",
                path.display()
            );
        }
        merge(&mut merged, value);
    }
    let names = existing
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" + ");
    let settings: AppSettings = serde_json::from_value(merged)
        .with_context(|| format!("{names}: not the seed's appsettings layout"))?;
    settings
        .validate()
        .map_err(|errors| anyhow::anyhow!("{names}: {errors}"))?;
    let mut result = BusSettings::default();
    if let Some(logging) = settings.logging {
        result.log_levels = logging.log_level.into_iter().collect();
    }
    if let Some(bus) = settings.message_bus {
        if bus.max_connections == 0 {
            bail!("{names}: MessageBus.MaxConnections must be at least 1");
        }
        if bus.health_check_interval_seconds == 0 {
            bail!("{names}: MessageBus.HealthCheckIntervalSeconds must be at least 1");
        }
        result.pipe_name = bus.pipe_name;
        result.max_connections = bus.max_connections;
        result.health_check_interval =
            Duration::from_secs(u64::from(bus.health_check_interval_seconds));
    }
    Ok(result)
}

/// Polls the files every `period` and calls `apply` with each new valid configuration;
/// a file with a mistake is logged and the running configuration kept.
pub async fn watch(
    files: ConfigFiles,
    mut current: BusSettings,
    period: Duration,
    mut apply: impl FnMut(&BusSettings, &BusSettings) + Send,
) {
    let mut stamp = files.stamp();
    let mut tick = tokio::time::interval(period);
    loop {
        tick.tick().await;
        let now = files.stamp();
        if now == stamp {
            continue;
        }
        stamp = now;
        match load(&files) {
            Ok(next) if next == current => {}
            Ok(next) => {
                tracing::info!(?next, "configuration reloaded");
                apply(&current, &next);
                current = next;
            }
            Err(error) => {
                tracing::error!("configuration refused, keeping the running one: {error:#}");
            }
        }
    }
}

//! Logging: upstream's `logLevel` and `logFormat`, to stderr.

/// How to log, read from the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Logging {
    /// A tracing level (`trace` … `error`, `off`).
    level: &'static str,
    json: bool,
}

impl Default for Logging {
    fn default() -> Self {
        Self {
            level: "info",
            json: false,
        }
    }
}

/// The levels upstream's zerolog accepts, by name and by number, as tracing levels (and
/// `warning`, an easy slip).
fn level(name: &str) -> Option<&'static str> {
    Some(match name.trim().to_ascii_lowercase().as_str() {
        "" => "info",
        "trace" | "-1" => "trace",
        "debug" | "0" => "debug",
        "info" | "1" => "info",
        "warn" | "warning" | "2" => "warn",
        "error" | "3" | "fatal" | "4" | "panic" | "5" => "error",
        "disabled" | "7" => "off",
        _ => return None,
    })
}

impl Logging {
    /// `logLevel` and `logFormat` as upstream reads them; a value upstream refuses to start
    /// with is refused here too (it would otherwise silence or garble the logs).
    pub(crate) fn parse(level_name: &str, format: &str) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let level = level(level_name).unwrap_or_else(|| {
            problems.push(format!(
                "logLevel: unknown level `{}` (expected trace, debug, info, warn, error, fatal, panic or disabled)",
                redact_short(level_name)
            ));
            "info"
        });
        let json = match format.trim().to_ascii_lowercase().as_str() {
            "json" => true,
            "" | "pretty" => false,
            _ => {
                problems.push(format!(
                    "logFormat: unknown format `{}` (expected json or pretty)",
                    redact_short(format)
                ));
                false
            }
        };
        if problems.is_empty() {
            Ok(Self { level, json })
        } else {
            Err(problems)
        }
    }

    /// Installs the subscriber: stderr, `RUST_LOG` overriding the level. The kube client's own
    /// log lines are kept to errors: it logs whole response bodies at warn (an API server's
    /// 200 KB error page in one line), and the runtime reports those failures itself.
    pub(crate) fn init(self) {
        // An empty `RUST_LOG` is no override.
        let from_env = std::env::var("RUST_LOG")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok());
        let filter = from_env
            .or_else(|| {
                tracing_subscriber::EnvFilter::try_new(format!("{},kube_client=error", self.level))
                    .ok()
            })
            .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .with_target(false);
        if self.json {
            builder.json().init();
        } else {
            builder
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
        }
    }
}

/// What an error quotes of a config value: its start only.
fn redact_short(value: &str) -> String {
    event_exporter_core::redact::excerpt(value, 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_levels_and_formats() {
        for (name, want) in [
            ("", "info"),
            ("DEBUG", "debug"),
            ("warn", "warn"),
            ("warning", "warn"),
            ("fatal", "error"),
            ("disabled", "off"),
            ("-1", "trace"),
        ] {
            assert_eq!(Logging::parse(name, "").unwrap().level, want, "{name}");
        }
        assert!(Logging::parse("info", "json").unwrap().json);
        assert!(!Logging::parse("info", "pretty").unwrap().json);
        let errs = Logging::parse("verbose", "yaml").unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(
            errs[0].contains("logLevel: unknown level `verbose`"),
            "{errs:?}"
        );
        assert!(
            errs[1].contains("logFormat: unknown format `yaml`"),
            "{errs:?}"
        );
    }
}

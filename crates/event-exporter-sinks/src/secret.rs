//! A receiver's secrets, gathered from its configuration while it is built: the values that
//! are credentials by their role (tokens, passwords, `Authorization` values, a Slack incoming
//! webhook URL), the credentials a URL carries (user info, query, the path of webhook hosts
//! whose URLs are the credential), and whatever came from the environment (`${VAR}`) where a
//! credential stands (a header value, a URL). What a configuration marks secret this way is
//! masked in what `render` shows and in every log line about the receiver.

use event_exporter_core::redact::Secrets;

use crate::BuildContext;

/// Gathers one receiver's [`Secrets`].
#[derive(Debug)]
pub(crate) struct SecretsBuilder<'a> {
    environment: &'a [String],
    secrets: Secrets,
}

/// Whether `text` is an absolute http(s) URL.
fn is_url(text: &str) -> bool {
    text.parse::<http::Uri>().is_ok_and(|u| {
        matches!(u.scheme_str(), Some("http" | "https")) && u.host().is_some_and(|h| !h.is_empty())
    })
}

impl<'a> SecretsBuilder<'a> {
    pub(crate) fn new(ctx: &BuildContext<'a>) -> Self {
        Self {
            environment: ctx.environment,
            secrets: Secrets::new(),
        }
    }

    /// A value that is a credential by its role. A URL (a Slack incoming webhook) is one
    /// whole but for its scheme and host: its path, query and user info are masked, its host
    /// stays readable.
    pub(crate) fn credential(&mut self, value: &str) {
        if is_url(value) {
            if let Ok(uri) = value.parse::<http::Uri>() {
                self.secrets.add(uri.path().trim_start_matches('/'));
            }
        } else if !value.trim().is_empty() {
            self.secrets.add(value);
        }
        self.url(value);
    }

    /// A URL's credentials: its user info (and the Basic value it makes), its query string
    /// and the values of its credential-named parameters (`token`, `key`, `sig`, …), its path
    /// on hosts whose URLs are credentials; and the values from the environment in its user
    /// info, path or query (not in its host: a namespace in `loki.${NS}.svc` is no secret, and
    /// masking it would mask it in every event body).
    pub(crate) fn url(&mut self, url: &str) {
        let Ok(uri) = url.parse::<http::Uri>() else {
            // Not a URL yet (a template): what came from the environment is judged as text.
            self.environment_in(url);
            return;
        };
        let user_info = uri
            .authority()
            .and_then(|a| a.as_str().rsplit_once('@'))
            .map(|(u, _)| u);
        if matches!(uri.scheme_str(), Some("http" | "https")) {
            if let Some(user_info) = user_info {
                self.secrets.add(user_info);
                if let Some((_, password)) = user_info.split_once(':') {
                    self.secrets.add(password);
                    self.secrets
                        .add(&percent_encoding::percent_decode_str(password).decode_utf8_lossy());
                }
                if let Some(basic) = crate::http::user_info_authorization(url) {
                    self.secrets.add(&basic);
                }
            }
            if let Some(query) = uri.query() {
                self.secrets.add(query);
                for (key, value) in query.split('&').filter_map(|p| p.split_once('=')) {
                    if crate::is_sensitive_header(key) || is_credential_parameter(key) {
                        self.secrets.add(value);
                    }
                }
            }
            if crate::http::masked_url(url).is_some_and(|m| m.contains("/***")) {
                self.secrets.add(uri.path().trim_start_matches('/'));
            }
        }
        // What of the environment stands where credentials go.
        let rest = uri.path_and_query().map_or("", |p| p.as_str());
        self.environment_in(&format!("{} {rest}", user_info.unwrap_or_default()));
    }

    /// Text in a credential's place (a header's value): secret where it holds what came from
    /// the environment. Whether it holds any (a URL-valued variable aside).
    pub(crate) fn environment_in(&mut self, text: &str) -> bool {
        let mut any = false;
        for value in self.environment {
            if value.is_empty() || !text.contains(value.as_str()) || is_url(value) {
                continue;
            }
            self.secrets.add(value);
            any = true;
        }
        any
    }

    pub(crate) fn build(self) -> Secrets {
        self.secrets
    }
}

/// Query parameters that carry credentials by their name (besides those a header's name
/// gives away: `token`, `key`, `secret`, …).
fn is_credential_parameter(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["sig", "code", "pass", "pwd", "access", "hash"]
        .iter()
        .any(|p| key.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builder(environment: &[String]) -> SecretsBuilder<'_> {
        SecretsBuilder {
            environment,
            secrets: Secrets::new(),
        }
    }

    #[test]
    fn what_a_configuration_marks_secret() {
        let env = [
            "k3y-from-env".to_owned(),
            "http://grafana:3000".to_owned(),
            "monitoring".to_owned(),
            "path-from-env".to_owned(),
        ];
        let mut b = builder(&env);
        b.url("https://bob:p%40ss@hooks.example.com/x?token=t0k3n&a=1&format=json");
        b.url("http://loki.monitoring.svc:3100/loki/path-from-env");
        b.credential("https://hooks.slack.com/services/T0/B0/XYZ");
        assert!(b.environment_in("Key k3y-from-env"));
        assert!(
            !b.environment_in("http://grafana:3000"),
            "a URL from the environment"
        );
        assert!(!b.environment_in("plain"));
        b.url("http://grafana:3000/api");
        let s = b.build();
        let scrubbed = s.scrub(
            "bob:p%40ss p@ss token=t0k3n&a=1&format=json t0k3n Basic Ym9iOnBAc3M= \
             /services/T0/B0/XYZ k3y-from-env http://grafana:3000/api json monitoring path-from-env",
        );
        assert_eq!(
            scrubbed, "*** *** *** *** *** /*** *** http://grafana:3000/api json monitoring ***",
            "a parameter without a credential's name, a namespace in a host: not secrets"
        );
    }
}

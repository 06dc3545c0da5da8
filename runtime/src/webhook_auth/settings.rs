//! The addon-settings document: parsed, validated, shown without its secret.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

use super::{
    DEFAULT_TOLERANCE_SECONDS, MAX_SECRET_BYTES, MAX_TOLERANCE_SECONDS, MIN_SECRET_BYTES,
    SECRET_SET,
};
use crate::api_error::error_path;
use crate::auth::Secret;

/// How a webhook authenticates its sender.
#[derive(
    schemars::JsonSchema, Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    #[default]
    None,
    Token,
    Hmac,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::Token => "token",
            AuthMode::Hmac => "hmac",
        }
    }
}

/// An addon's settings document. Unknown fields are refused, so a typo cannot silently leave a
/// webhook unauthenticated.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AddonSettings {
    #[serde(default)]
    pub webhook: WebhookSettings,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    #[serde(default)]
    pub auth: AuthSettings,
    /// Client networks allowed to post; empty allows any.
    #[serde(default)]
    pub allow_cidrs: Vec<Cidr>,
}

#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    #[serde(default)]
    pub mode: AuthMode,
    /// Required by `token` and `hmac`. In a request to change settings, omitted (or
    /// [`SECRET_SET`]) keeps the current secret.
    #[serde(default)]
    pub secret: Option<Secret>,
    /// `hmac`: how far the timestamp may be from the server's clock, 1..=3600 (default 300).
    #[serde(default)]
    pub tolerance_seconds: Option<u32>,
}

/// An addon's settings as the API shows them: a secret appears only as `"set"`. (The JSON is
/// made by the same function as the stored form, with the secret replaced; this type gives it
/// a schema and a name.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicSettings {
    pub webhook: PublicWebhookSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicWebhookSettings {
    pub auth: PublicAuthSettings,
    /// Client networks allowed to post; empty allows any.
    pub allow_cidrs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PublicAuthSettings {
    pub mode: AuthMode,
    /// `"set"` when a secret is set; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u32>,
}

/// A network, from `10.0.0.0/8` or a bare address (`192.0.2.7` = `192.0.2.7/32`). Host bits
/// are dropped: `10.1.2.3/8` is `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr(pub IpNet);

impl schemars::JsonSchema for Cidr {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Cidr".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "An address or CIDR block: `10.0.0.0/8`, `192.0.2.7`, `::1/128`",
        })
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let net = if s.contains('/') {
            s.parse::<IpNet>().ok()
        } else {
            s.parse::<IpAddr>().ok().map(IpNet::from)
        };
        net.map(|n| Cidr(n.trunc())).ok_or_else(|| {
            format!("`{s}` is not an address or CIDR block (e.g. `10.0.0.0/8`, `::1/128`)")
        })
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Cidr, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A setting the runtime refuses; `field` is its path (`webhook.auth.secret`). The message
/// never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field `{field}`: {message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

fn settings_error(field: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl AddonSettings {
    /// Parses and validates a stored settings object, naming the field that is wrong.
    pub fn from_stored(value: &Value) -> Result<AddonSettings, SettingsError> {
        let settings: AddonSettings = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().clone();
            let inner = e.into_inner().to_string();
            settings_error(&error_path(&path, &inner), inner)
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// For a change: a secret left out (or sent back as [`SECRET_SET`]) while the mode still
    /// needs one keeps the secret of `current`, so that a client can change the networks
    /// without knowing the secret. With mode `none` the placeholder is dropped.
    pub fn keep_secret_from(&mut self, current: Option<&AddonSettings>) {
        let auth = &mut self.webhook.auth;
        let placeholder = auth
            .secret
            .as_ref()
            .is_none_or(|s| s.expose() == SECRET_SET);
        if !placeholder {
            return;
        }
        auth.secret = match auth.mode {
            AuthMode::None => None,
            AuthMode::Token | AuthMode::Hmac => current
                .and_then(|c| c.webhook.auth.secret.clone())
                .or(auth.secret.take()),
        };
    }

    /// Checks what the types cannot: the secret that token and hmac need (and its length),
    /// the window's range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let auth = &self.webhook.auth;
        const SECRET: &str = "webhook.auth.secret";
        match (auth.mode, &auth.secret) {
            (AuthMode::None, None) => {}
            (AuthMode::None, Some(_)) => {
                return Err(settings_error(
                    SECRET,
                    "a secret is only used with mode `token` or `hmac`",
                ));
            }
            (mode, None) => {
                return Err(settings_error(
                    SECRET,
                    format!("mode `{}` needs a secret", mode.as_str()),
                ));
            }
            (mode, Some(secret)) => {
                let secret = secret.expose();
                if secret == SECRET_SET {
                    return Err(settings_error(
                        SECRET,
                        "no secret is set yet to keep; give the secret itself",
                    ));
                }
                if secret.len() < MIN_SECRET_BYTES || secret.len() > MAX_SECRET_BYTES {
                    return Err(settings_error(
                        SECRET,
                        format!(
                            "must be {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes long \
                             (it is {})",
                            secret.len()
                        ),
                    ));
                }
                // A token travels in a header, where only visible ASCII survives every proxy.
                if mode == AuthMode::Token && !secret.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(settings_error(
                        SECRET,
                        "a token must be visible ASCII characters only (no spaces), since it \
                         is sent in a header",
                    ));
                }
            }
        }
        if let Some(t) = auth.tolerance_seconds
            && !(1..=MAX_TOLERANCE_SECONDS).contains(&t)
        {
            return Err(settings_error(
                "webhook.auth.tolerance_seconds",
                format!("must be 1 to {MAX_TOLERANCE_SECONDS} seconds (it is {t})"),
            ));
        }
        Ok(())
    }

    /// What the store keeps, the secret included.
    pub fn stored(&self) -> Value {
        self.to_json(|s| Value::String(s.expose().to_owned()))
    }

    /// What the API and the CLI show: the secret as `"set"`, never itself.
    pub fn public(&self) -> Value {
        self.to_json(|_| Value::String(SECRET_SET.to_owned()))
    }

    /// [`AddonSettings::public`] as its type, as the API answers it.
    pub fn public_view(&self) -> PublicSettings {
        serde_json::from_value(self.public())
            .expect("the public form of settings reads back as PublicSettings")
    }

    fn to_json(&self, secret: impl Fn(&Secret) -> Value) -> Value {
        let auth = &self.webhook.auth;
        let mut auth_json = json!({ "mode": auth.mode });
        if let Some(s) = &auth.secret {
            auth_json["secret"] = secret(s);
        }
        let tolerance = match auth.mode {
            AuthMode::Hmac => Some(auth.tolerance_seconds.unwrap_or(DEFAULT_TOLERANCE_SECONDS)),
            _ => auth.tolerance_seconds,
        };
        if let Some(t) = tolerance {
            auth_json["tolerance_seconds"] = t.into();
        }
        let cidrs: Vec<String> = self
            .webhook
            .allow_cidrs
            .iter()
            .map(|c| c.0.to_string())
            .collect();
        json!({ "webhook": { "auth": auth_json, "allow_cidrs": cidrs } })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    fn parse(v: Value) -> Result<AddonSettings, SettingsError> {
        AddonSettings::from_stored(&v)
    }

    #[test]
    fn settings_parse_validate_and_name_the_field() {
        let ok = parse(
            json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET,
            "tolerance_seconds": 60}, "allow_cidrs": ["10.1.2.3/8", "192.0.2.7", "::1/128"]}}),
        )
        .unwrap();
        assert_eq!(
            ok.public(),
            json!({"webhook": {"auth": {"mode": "hmac", "secret": "set", "tolerance_seconds": 60},
                "allow_cidrs": ["10.0.0.0/8", "192.0.2.7/32", "::1/128"]}})
        );
        assert_eq!(ok.stored()["webhook"]["auth"]["secret"], SECRET);
        assert!(!format!("{ok:?}").contains(SECRET));
        // Empty is "no authentication, any address"; hmac shows its default window.
        assert_eq!(
            parse(json!({})).unwrap().public(),
            json!({"webhook": {"auth": {"mode": "none"}, "allow_cidrs": []}})
        );
        assert_eq!(
            parse(json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET}}}))
                .unwrap()
                .public()["webhook"]["auth"]["tolerance_seconds"],
            300
        );

        let cases = [
            (
                json!({"webhook": {"auth": {"mode": "hmac"}}}),
                "webhook.auth.secret",
                "needs a secret",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "short"}}}),
                "webhook.auth.secret",
                "(it is 5)",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "has a space in it!!"}}}),
                "webhook.auth.secret",
                "visible ASCII",
            ),
            (
                json!({"webhook": {"auth": {"mode": "none", "secret": SECRET}}}),
                "webhook.auth.secret",
                "only used with",
            ),
            (
                json!({"webhook": {"auth": {"mode": "token", "secret": "set"}}}),
                "webhook.auth.secret",
                "no secret is set yet",
            ),
            (
                json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET, "tolerance_seconds": 0}}}),
                "webhook.auth.tolerance_seconds",
                "1 to 3600",
            ),
            (
                json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET, "tolerance_seconds": 3601}}}),
                "webhook.auth.tolerance_seconds",
                "1 to 3600",
            ),
            (
                json!({"webhook": {"auth": {"mode": "basic"}}}),
                "webhook.auth.mode",
                "unknown variant `basic`",
            ),
            (
                json!({"webhook": {"allow_cidrs": ["10.0.0.0/33"]}}),
                "webhook.allow_cidrs[0]",
                "`10.0.0.0/33` is not",
            ),
            (
                json!({"webhook": {"allow_cidrs": "10.0.0.0/8"}}),
                "webhook.allow_cidrs",
                "expected a sequence",
            ),
            (
                json!({"webhook": {"auth": {"mode": "none"}, "allow": []}}),
                "webhook",
                "unknown field `allow`",
            ),
            (json!({"webhooks": {}}), ".", "unknown field `webhooks`"),
        ];
        for (input, field, message) in cases {
            let e = parse(input.clone()).expect_err(&input.to_string());
            assert!(
                e.field == field || e.field.starts_with(&format!("{field}.")),
                "{input}: {e}"
            );
            assert!(e.message.contains(message), "{input}: {e}");
            assert!(!e.to_string().contains(SECRET), "{e}");
        }
    }

    #[test]
    fn a_change_without_the_secret_keeps_the_current_one() {
        let current =
            parse(json!({"webhook": {"auth": {"mode": "hmac", "secret": SECRET}}})).unwrap();
        for input in [
            json!({"webhook": {"auth": {"mode": "hmac"}, "allow_cidrs": ["10.0.0.0/8"]}}),
            json!({"webhook": {"auth": {"mode": "token", "secret": "set"}}}),
        ] {
            let mut change: AddonSettings = serde_json::from_value(input.clone()).unwrap();
            change.keep_secret_from(Some(&current));
            change.validate().unwrap();
            assert_eq!(
                change.stored()["webhook"]["auth"]["secret"],
                SECRET,
                "{input}"
            );
        }
        // Switching authentication off drops the placeholder; a new secret replaces the old.
        let mut off: AddonSettings =
            serde_json::from_value(json!({"webhook": {"auth": {"mode": "none", "secret": "set"}}}))
                .unwrap();
        off.keep_secret_from(Some(&current));
        off.validate().unwrap();
        assert!(off.webhook.auth.secret.is_none());
        let mut new: AddonSettings = serde_json::from_value(
            json!({"webhook": {"auth": {"mode": "hmac", "secret": "a-brand-new-secret-value"}}}),
        )
        .unwrap();
        new.keep_secret_from(Some(&current));
        assert_eq!(
            new.stored()["webhook"]["auth"]["secret"],
            "a-brand-new-secret-value"
        );
        // Nothing to keep: the secret is required.
        let mut first: AddonSettings =
            serde_json::from_value(json!({"webhook": {"auth": {"mode": "hmac"}}})).unwrap();
        first.keep_secret_from(None);
        assert_eq!(first.validate().unwrap_err().field, "webhook.auth.secret");
    }
}

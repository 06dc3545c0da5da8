//! Optional OpenID Connect sign-in (`[oidc]`): the authorization code flow with PKCE against an
//! identity provider (Keycloak, Entra ID, Okta, Google, Dex, …), its groups mapped to a role
//! like the directory login's. This module owns the I/O to the provider; the `openidconnect`
//! crate does the protocol (discovery, the S256 challenge, the token exchange and the ID
//! token's signature, issuer, audience, expiry and nonce checks).
//!
//! The flow: [`Oidc::begin`] makes the provider's authorization URL with a fresh state, nonce
//! and PKCE verifier, which the caller keeps until the provider sends the browser back (the
//! store holds them, so that any node of a cluster can finish the sign-in); [`Oidc::finish`]
//! trades the code for tokens and says who the person is and which role their groups give.
//!
//! **Security:** the HTTP client follows no redirects (a provider's answer cannot send the
//! runtime elsewhere), the code is bound to this sign-in's PKCE verifier, and the ID token
//! must carry this sign-in's nonce. A person whose groups map to no role is refused unless
//! `default_role` is set.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken,
    EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields, IssuerUrl,
    Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    StandardErrorResponse, StandardTokenResponse, TokenResponse as _, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::directory::{ROLE_RANKS, most_privileged};

/// OpenID Connect settings (`[oidc]` in the configuration file).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The provider's issuer URL, e.g. `https://login.example.com/realms/ops`; its
    /// `/.well-known/openid-configuration` is read on the first sign-in.
    pub issuer: String,
    pub client_id: String,
    /// Absent for a public client (PKCE alone).
    #[serde(default)]
    pub client_secret: Option<crate::identity::Secret>,
    /// This runtime's callback as the browser reaches it, registered at the provider:
    /// `https://ops.example.com/api/v1/auth/oidc/callback`.
    pub redirect_url: String,
    /// The sign-in button says "Sign in with {display_name}".
    #[serde(default = "default_display_name")]
    pub display_name: String,
    /// Scopes asked for besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim that becomes the user name (lower-cased).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim listing the person's groups (or roles): an array of strings or one string.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Group (compared case-insensitively) → role; the most privileged match wins.
    #[serde(default)]
    pub group_roles: BTreeMap<String, String>,
    /// The role of a person in no mapped group; absent: they are refused.
    #[serde(default)]
    pub default_role: Option<String>,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret) // `Secret` prints redacted
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .field("username_claim", &self.username_claim)
            .field("groups_claim", &self.groups_claim)
            .field("group_roles", &self.group_roles)
            .field("default_role", &self.default_role)
            .finish()
    }
}

fn default_display_name() -> String {
    "single sign-on".into()
}
fn default_scopes() -> Vec<String> {
    vec!["profile".into(), "email".into(), "groups".into()]
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_timeout_ms() -> u64 {
    10_000
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    #[error("oidc configuration: {0}")]
    Config(String),
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider's answer did not prove who the person is (a refused code, a bad token).
    #[error("the identity provider's answer was refused: {0}")]
    Rejected(String),
    #[error("`{username}` is in no group that maps to a role (groups: {groups:?})")]
    NoRole {
        username: String,
        groups: Vec<String>,
    },
}

impl OidcConfig {
    /// Checks what can be checked without the provider.
    pub fn validate(&self) -> Result<(), OidcError> {
        let bad = |m: String| Err(OidcError::Config(m));
        if let Err(e) = IssuerUrl::new(self.issuer.clone()) {
            return bad(format!("issuer `{}`: {e}", self.issuer));
        }
        match openidconnect::url::Url::parse(&self.redirect_url) {
            Ok(u) if u.path().ends_with(CALLBACK_PATH) => {}
            Ok(_) => return bad(format!("redirect_url must end with {CALLBACK_PATH}")),
            Err(e) => return bad(format!("redirect_url `{}`: {e}", self.redirect_url)),
        }
        if self.client_id.is_empty() {
            return bad("client_id is empty".into());
        }
        let roles = self
            .group_roles
            .iter()
            .map(|(group, role)| (format!("group_roles.{group}"), role))
            .chain(self.default_role.iter().map(|r| ("default_role".into(), r)));
        for (key, role) in roles {
            if !ROLE_RANKS.contains(&role.as_str()) {
                return bad(format!(
                    "{key}: `{role}` is not one of {}",
                    ROLE_RANKS.join(", ")
                ));
            }
        }
        if self.group_roles.is_empty() && self.default_role.is_none() {
            return bad("group_roles maps no group to a role and there is no default_role".into());
        }
        Ok(())
    }

    /// The most privileged role that `groups` map to, else `default_role`.
    pub fn role_for(&self, groups: &[String]) -> Option<String> {
        most_privileged(groups.iter().filter_map(|g| {
            self.group_roles
                .iter()
                .find_map(|(key, role)| key.eq_ignore_ascii_case(g).then_some(role))
        }))
        .or(self.default_role.as_ref())
        .cloned()
    }
}

/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/api/v1/auth/oidc/callback";

/// The claims beyond the standard ones, kept whole: which of them names the user and which
/// lists the groups is configuration.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct OtherClaims(serde_json::Map<String, serde_json::Value>);

impl AdditionalClaims for OtherClaims {}

type IdTokenClaimsFields = IdTokenFields<
    OtherClaims,
    EmptyExtraTokenFields,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// `CoreClient` with [`OtherClaims`], as made from discovery: the authorization endpoint is
/// set, the token and userinfo endpoints maybe.
type Client = openidconnect::Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    StandardTokenResponse<IdTokenClaimsFields, CoreTokenType>,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// What a sign-in must keep between [`Oidc::begin`] and [`Oidc::finish`].
pub struct Begun {
    /// Where to send the browser.
    pub authorize_url: String,
    /// The `state` the provider returns with the code; names this sign-in.
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// Someone the provider vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcUser {
    pub username: String,
    /// The most privileged role the person's groups map to, else `default_role`.
    pub role: String,
}

/// The configured provider; discovery happens on first use and is kept.
pub struct Oidc {
    config: OidcConfig,
    http: openidconnect::reqwest::Client,
    client: Mutex<Option<Client>>,
}

impl fmt::Debug for Oidc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Oidc")
            .field("config", &self.config)
            .finish()
    }
}

fn unavailable(e: impl fmt::Display) -> OidcError {
    OidcError::Unavailable(e.to_string())
}

fn rejected(e: impl std::error::Error) -> OidcError {
    // The whole chain: the outer errors say only "request failed".
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    OidcError::Rejected(text)
}

impl Oidc {
    pub fn new(config: OidcConfig) -> Result<Oidc, OidcError> {
        config.validate()?;
        let http = openidconnect::reqwest::Client::builder()
            // A provider's answer must not send the runtime anywhere else (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_millis(config.timeout_ms))
            .build()
            .map_err(|e| OidcError::Config(e.to_string()))?;
        Ok(Oidc {
            config,
            http,
            client: Mutex::new(None),
        })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// The client made from the provider's discovery document, discovered once.
    async fn client(&self) -> Result<Client, OidcError> {
        let mut cached = self.client.lock().await;
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let issuer = IssuerUrl::new(self.config.issuer.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| unavailable(format!("discovery: {e}")))?;
        let redirect = RedirectUrl::new(self.config.redirect_url.clone())
            .map_err(|e| OidcError::Config(e.to_string()))?;
        let client = Client::from_provider_metadata(
            metadata,
            ClientId::new(self.config.client_id.clone()),
            self.config
                .client_secret
                .as_ref()
                .map(|s| ClientSecret::new(s.expose().to_owned())),
        )
        .set_redirect_uri(redirect);
        *cached = Some(client.clone());
        Ok(client)
    }

    /// A new sign-in: the provider's authorization URL, with a fresh state, nonce and PKCE
    /// (S256) challenge.
    pub async fn begin(&self) -> Result<Begun, OidcError> {
        let client = self.client().await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        for scope in &self.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(Begun {
            authorize_url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Trades the provider's code for tokens, checks the ID token against this sign-in's
    /// nonce, and says who the person is and which role they get.
    pub async fn finish(
        &self,
        code: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<OidcUser, OidcError> {
        let client = self.client().await?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| OidcError::Config(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(rejected)?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| OidcError::Rejected("the token answer has no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(rejected)?;
        let subject = claims.subject().to_string();
        let mut other = claims.additional_claims().0.clone();
        let mut standard = serde_json::to_value(claims)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .unwrap_or_default();
        // Providers often keep groups (and some the user name) out of the ID token and give
        // them at the userinfo endpoint instead.
        let wanted = [&self.config.username_claim, &self.config.groups_claim];
        let missing = wanted
            .iter()
            .any(|c| !other.contains_key(*c) && !standard.contains_key(*c));
        if missing && let Ok(request) = client.user_info(tokens.access_token().clone(), None) {
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = request
                .require_signed_response(false)
                .request_async(&self.http)
                .await
                .map_err(rejected)?;
            if info.subject().as_str() != subject {
                return Err(OidcError::Rejected(
                    "userinfo names another subject than the ID token".into(),
                ));
            }
            if let Some(object) = serde_json::to_value(&info).ok().and_then(|v| match v {
                serde_json::Value::Object(o) => Some(o),
                _ => None,
            }) {
                standard.extend(object);
            }
            other.extend(info.additional_claims().0.clone());
        }
        let claim = |name: &str| other.get(name).or_else(|| standard.get(name)).cloned();
        let username = claim(&self.config.username_claim)
            .and_then(|v| v.as_str().map(|s| s.trim().to_lowercase()))
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                OidcError::Rejected(format!(
                    "the provider gave no `{}` claim (username_claim)",
                    self.config.username_claim
                ))
            })?;
        let groups: Vec<String> = match claim(&self.config.groups_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect(),
            Some(serde_json::Value::String(one)) => vec![one],
            _ => Vec::new(),
        };
        let role = self
            .config
            .role_for(&groups)
            .ok_or_else(|| OidcError::NoRole {
                username: username.clone(),
                groups,
            })?;
        Ok(OidcUser { username, role })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &str) -> Result<OidcConfig, String> {
        let text = format!(
            "issuer = \"https://login.example.com/realms/ops\"\nclient_id = \"oc\"\n\
             redirect_url = \"https://ops.example.com/api/v1/auth/oidc/callback\"\n{extra}"
        );
        let config: OidcConfig = toml::from_str(&text).map_err(|e| e.to_string())?;
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }

    #[test]
    fn groups_map_to_the_most_privileged_role_or_the_default() {
        let c = config("[group_roles]\nNOC = \"operator\"\nnoc-admins = \"admin\"").unwrap();
        let groups = |g: &[&str]| g.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            c.role_for(&groups(&["noc", "noc-admins"])).unwrap(),
            "admin"
        );
        assert_eq!(c.role_for(&groups(&["staff", "noc"])).unwrap(), "operator");
        assert_eq!(c.role_for(&groups(&["staff"])), None);
        let c = config("default_role = \"viewer\"\n[group_roles]\nnoc = \"operator\"").unwrap();
        assert_eq!(c.role_for(&groups(&["staff"])).unwrap(), "viewer");
        assert_eq!(c.role_for(&groups(&["noc"])).unwrap(), "operator");
    }

    #[test]
    fn bad_settings_are_named() {
        let err = config("[group_roles]\nnoc = \"root\"").unwrap_err();
        assert!(
            err.contains("group_roles.noc") && err.contains("root"),
            "{err}"
        );
        let err = config("").unwrap_err();
        assert!(err.contains("default_role"), "{err}");
        let err = config("default_role = \"viewer\"\nscope = []").unwrap_err();
        assert!(err.contains("scope"), "{err}");
        let text = "issuer = \"not a url\"\nclient_id = \"oc\"\nredirect_url = \
                    \"https://ops.example.com/api/v1/auth/oidc/callback\"\ndefault_role = \"viewer\"";
        let err = toml::from_str::<OidcConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains("issuer"), "{err}");
        let text = "issuer = \"https://x.example\"\nclient_id = \"oc\"\nredirect_url = \
                    \"https://ops.example.com/callback\"\ndefault_role = \"viewer\"";
        let err = toml::from_str::<OidcConfig>(text)
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(err.contains(CALLBACK_PATH), "{err}");
    }

    #[test]
    fn the_client_secret_never_shows() {
        let c = config("client_secret = \"hunter2-oidc\"\ndefault_role = \"viewer\"").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"), "{c:?}");
    }
}

//! Every route × every kind of credential: the status the guard must give. The expected access
//! of each route is written out here; a route served without an entry (or an entry without a
//! route, or a changed permission) fails the test, so no route ships unguarded by accident.

use std::collections::BTreeMap;

use base64::Engine as _;
use opsconductor::api::{Access, routes};
use opsconductor::auth::{
    AccessClaims, Actor, ISSUER, KeyRing, Role, Secret, SigningKey, TokenPair,
};
use opsconductor_tests::{Db, TestRuntime, client_with_bearer};
use serde_json::json;

/// Who may call each route: `public`, `webhook`, `socket`, `authenticated`, or the permission.
#[rustfmt::skip]
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/health", "public"),
    ("GET", "/ready", "public"),
    ("GET", "/api/v1/openapi.json", "public"),
    ("POST", "/api/v1/auth/login", "public"),
    ("POST", "/api/v1/auth/refresh", "public"),
    ("GET", "/api/v1/auth/methods", "public"),
    ("GET", "/api/v1/auth/oidc/start", "public"),
    ("GET", "/api/v1/auth/oidc/callback", "public"),
    ("POST", "/api/v1/auth/logout", "authenticated"),
    ("GET", "/api/v1/auth/me", "authenticated"),
    ("GET", "/api/v1/auth/sessions", "authenticated"),
    ("DELETE", "/api/v1/auth/sessions/{id}", "authenticated"),
    ("GET", "/api/v1/sessions", "manage_sessions"),
    ("DELETE", "/api/v1/sessions/{id}", "manage_sessions"),
    ("GET", "/api/v1/users", "manage_users"),
    ("POST", "/api/v1/users", "manage_users"),
    ("GET", "/api/v1/users/{name}", "manage_users"),
    ("PUT", "/api/v1/users/{name}", "manage_users"),
    ("GET", "/api/v1/api-keys", "manage_api_keys"),
    ("POST", "/api/v1/api-keys", "manage_api_keys"),
    ("DELETE", "/api/v1/api-keys/{id}", "manage_api_keys"),
    ("POST", "/api/v1/auth/signing-keys/rotate", "manage_system"),
    ("GET", "/api/v1/audit", "read_audit"),
    ("GET", "/api/v1/alerts", "read"),
    ("GET", "/api/v1/alerts/open", "read"),
    ("GET", "/api/v1/alerts/facets", "read"),
    ("POST", "/api/v1/alerts/bulk", "act_on_alerts"),
    ("GET", "/api/v1/alerts/{id}", "read"),
    ("POST", "/api/v1/alerts/{id}/acknowledge", "act_on_alerts"),
    ("POST", "/api/v1/alerts/{id}/unacknowledge", "act_on_alerts"),
    ("POST", "/api/v1/alerts/{id}/resolve", "act_on_alerts"),
    ("POST", "/api/v1/alerts/{id}/notes", "act_on_alerts"),
    ("GET", "/api/v1/alerts/{id}/history", "read"),
    ("GET", "/api/v1/silences", "read"),
    ("POST", "/api/v1/silences", "manage_silences"),
    ("GET", "/api/v1/silences/{id}", "read"),
    ("POST", "/api/v1/silences/preview", "read"),
    ("PUT", "/api/v1/silences/{id}", "manage_silences"),
    ("DELETE", "/api/v1/silences/{id}", "manage_silences"),
    ("GET", "/api/v1/views", "authenticated"),
    ("POST", "/api/v1/views", "authenticated"),
    ("DELETE", "/api/v1/views/{id}", "authenticated"),
    ("GET", "/api/v1/addons", "read"),
    ("POST", "/api/v1/addons", "manage_system"),
    ("GET", "/api/v1/addons/{id}", "read"),
    ("POST", "/api/v1/addons/{id}/rollback", "manage_system"),
    ("POST", "/api/v1/addons/{id}/release", "configure_addons"),
    ("POST", "/api/v1/addons/{id}/enable", "configure_addons"),
    ("POST", "/api/v1/addons/{id}/disable", "configure_addons"),
    ("GET", "/api/v1/addons/{id}/settings", "read"),
    ("PUT", "/api/v1/addons/{id}/settings", "configure_addons"),
    ("GET", "/api/v1/targets", "read"),
    ("POST", "/api/v1/targets", "manage_targets"),
    ("GET", "/api/v1/targets/{id}", "read"),
    ("PUT", "/api/v1/targets/{id}", "manage_targets"),
    ("DELETE", "/api/v1/targets/{id}", "manage_targets"),
    ("POST", "/api/v1/targets/{id}/enable", "manage_targets"),
    ("POST", "/api/v1/targets/{id}/disable", "manage_targets"),
    ("POST", "/api/v1/targets/{id}/poll", "manage_targets"),
    ("GET", "/api/v1/ssh-host-keys", "read"),
    ("DELETE", "/api/v1/ssh-host-keys/{endpoint}", "manage_targets"),
    ("GET", "/api/v1/credentials", "read"),
    ("GET", "/api/v1/credentials/{name}", "read"),
    ("PUT", "/api/v1/credentials/{name}", "manage_credentials"),
    ("DELETE", "/api/v1/credentials/{name}", "manage_credentials"),
    ("GET", "/api/v1/stats", "read"),
    ("GET", "/metrics", "read_metrics"),
    ("GET", "/api/v1/traps/unhandled", "read"),
    ("GET", "/api/v1/system/version", "read"),
    ("GET", "/api/v1/system/settings", "read"),
    ("PUT", "/api/v1/system/settings/{key}", "manage_system"),
    ("DELETE", "/api/v1/system/settings/{key}", "manage_system"),
    ("POST", "/webhooks/{*path}", "webhook"),
    ("GET", "/ws", "socket"),
    // The console: its page at each of its paths, and its assets.
    ("GET", "/", "public"),
    ("GET", "/login", "public"),
    ("GET", "/alerts/{id}", "public"),
    ("GET", "/silences", "public"),
    ("GET", "/silences/{*rest}", "public"),
    ("GET", "/addons", "public"),
    ("GET", "/addons/{*rest}", "public"),
    ("GET", "/targets", "public"),
    ("GET", "/targets/{*rest}", "public"),
    ("GET", "/admin", "public"),
    ("GET", "/admin/{*rest}", "public"),
    ("GET", "/system", "public"),
    ("GET", "/assets/{*file}", "public"),
];

fn access_name(access: Access) -> String {
    match access {
        Access::Public => "public".to_owned(),
        Access::Webhook => "webhook".to_owned(),
        Access::Socket => "socket".to_owned(),
        Access::Authenticated => "authenticated".to_owned(),
        Access::Requires(permission) => permission.as_str().to_owned(),
    }
}

#[test]
fn every_route_has_an_expected_access_and_no_more() {
    let served: BTreeMap<(String, String), String> = routes()
        .iter()
        .map(|r| {
            (
                (r.method.to_string(), r.path.to_owned()),
                access_name(r.access),
            )
        })
        .collect();
    let expected: BTreeMap<(String, String), String> = EXPECTED
        .iter()
        .map(|(m, p, a)| (((*m).to_owned(), (*p).to_owned()), (*a).to_owned()))
        .collect();
    for (route, access) in &served {
        assert_eq!(
            expected.get(route),
            Some(access),
            "route {} {} is served with access `{access}`: add or fix its entry in EXPECTED",
            route.0,
            route.1
        );
    }
    for route in expected.keys() {
        assert!(
            served.contains_key(route),
            "EXPECTED lists {} {}, which is not served",
            route.0,
            route.1
        );
    }
}

/// A kind of credential, and the role it would act with if it were valid.
struct Credential {
    name: &'static str,
    bearer: Option<String>,
    /// `None`: must be refused with 401 wherever a caller is needed.
    role: Option<Role>,
}

/// A concrete request for a route: parameters that name nothing, so that an allowed mutation
/// fails after authorization (404 or 422) instead of changing what later requests see.
fn concrete(path: &str) -> String {
    path.replace("{id}", "999999")
        .replace("{name}", "nobody")
        .replace("{endpoint}", "127.0.0.1:1")
        .replace("{key}", "ui.nothing")
        .replace("{*path}", "no-such-path")
        .replace("{*rest}", "no-such-page")
        .replace("{*file}", "no-such-file.js")
}

const SIGNING_KEY: &str = "route-access-test-signing-key-of-enough-bytes";

fn signing_key_base64() -> String {
    base64::engine::general_purpose::STANDARD.encode(SIGNING_KEY)
}

async fn login(rt: &TestRuntime, username: &str, password: &str) -> TokenPair {
    rt.server
        .state()
        .auth
        .login_password(username, password, &Default::default())
        .await
        .unwrap_or_else(|e| panic!("{username} signs in: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_and_admits_as_its_access_says() {
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[opsconductor_tests::bundle("alertmanager")],
        |config| {
            config.jwt_signing_key = Some(Secret::new(signing_key_base64()));
        },
        async |_| {},
    )
    .await;
    let auth = &rt.server.state().auth;
    let password = Secret::new("correct horse battery staple");
    for (name, role) in [
        ("ada", Role::Admin),
        ("otto", Role::Operator),
        ("vera", Role::Viewer),
        ("sam", Role::Service),
        ("rex", Role::Admin),
    ] {
        auth.create_user(name, role, Some(&password), &Actor::system())
            .await
            .unwrap();
    }
    let tokens: BTreeMap<&str, TokenPair> = {
        let mut t = BTreeMap::new();
        for name in ["ada", "otto", "vera", "sam", "rex"] {
            t.insert(name, login(&rt, name, password.expose()).await);
        }
        t
    };
    let access = |name: &str| tokens[name].access_token.expose().to_owned();

    // Revoked: rex's session, ended by an administrator.
    let rex_session = tokens["rex"].principal.session_id.clone().unwrap();
    auth.revoke_session(&rex_session, &Actor::system())
        .await
        .unwrap();
    // Expired: ada's live session, in a token signed with the right key an hour after expiry.
    let ring = KeyRing::new(
        vec![
            SigningKey::from_base64(&Secret::new(signing_key_base64()), chrono::Utc::now())
                .unwrap(),
        ],
        chrono::Duration::minutes(15),
    )
    .unwrap();
    let now = chrono::Utc::now().timestamp();
    let expired = ring.sign(&AccessClaims {
        iss: ISSUER.to_owned(),
        sub: tokens["ada"].principal.user_id.unwrap().to_string(),
        sid: tokens["ada"].principal.session_id.clone().unwrap(),
        name: "ada".to_owned(),
        role: Role::Admin,
        iat: now - 7200,
        exp: now - 3600,
    });
    // Tampered: ada's valid token with its role claim raised... from admin to admin is no
    // change, so tamper with vera's: claim admin, keep her signature.
    let tampered = {
        let token = access("vera");
        let parts: Vec<&str> = token.split('.').collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut claims: serde_json::Value =
            serde_json::from_slice(&engine.decode(parts[1]).unwrap()).unwrap();
        claims["role"] = json!("admin");
        let forged = engine.encode(serde_json::to_vec(&claims).unwrap());
        format!("{}.{}.{}", parts[0], forged, parts[2])
    };
    // API keys: a viewer key, a service key, and a revoked admin key.
    let (_, viewer_key) = auth
        .create_api_key("viewer-key", Role::Viewer, None, &Actor::system())
        .await
        .unwrap();
    let (_, service_key) = auth
        .create_api_key("service-key", Role::Service, None, &Actor::system())
        .await
        .unwrap();
    let (revoked_info, revoked_key) = auth
        .create_api_key("revoked-key", Role::Admin, None, &Actor::system())
        .await
        .unwrap();
    auth.revoke_api_key(revoked_info.id, &Actor::system())
        .await
        .unwrap();

    let credentials = vec![
        Credential {
            name: "no token",
            bearer: None,
            role: None,
        },
        Credential {
            name: "garbage",
            bearer: Some("not-a-token".to_owned()),
            role: None,
        },
        Credential {
            name: "expired",
            bearer: Some(expired.expose().to_owned()),
            role: None,
        },
        Credential {
            name: "tampered signature",
            bearer: Some(tampered),
            role: None,
        },
        Credential {
            name: "revoked session",
            bearer: Some(access("rex")),
            role: None,
        },
        Credential {
            name: "revoked API key",
            bearer: Some(revoked_key.expose().to_owned()),
            role: None,
        },
        Credential {
            name: "admin",
            bearer: Some(access("ada")),
            role: Some(Role::Admin),
        },
        Credential {
            name: "operator",
            bearer: Some(access("otto")),
            role: Some(Role::Operator),
        },
        Credential {
            name: "viewer",
            bearer: Some(access("vera")),
            role: Some(Role::Viewer),
        },
        Credential {
            name: "service",
            bearer: Some(access("sam")),
            role: Some(Role::Service),
        },
        Credential {
            name: "viewer API key",
            bearer: Some(viewer_key.expose().to_owned()),
            role: Some(Role::Viewer),
        },
        Credential {
            name: "service API key",
            bearer: Some(service_key.expose().to_owned()),
            role: Some(Role::Service),
        },
    ];

    let mut checked = 0;
    let mut failures = Vec::new();
    for route in routes() {
        let url = rt.url(&concrete(route.path));
        for credential in &credentials {
            // Logging out ends the session the token belongs to: use a session of its own.
            let bearer = match (&credential.bearer, credential.role, route.path) {
                (Some(_), Some(role), "/api/v1/auth/logout")
                    if !credential.name.contains("key") =>
                {
                    let name = match role {
                        Role::Admin => "ada",
                        Role::Operator => "otto",
                        Role::Viewer => "vera",
                        Role::Service => "sam",
                    };
                    Some(
                        login(&rt, name, password.expose())
                            .await
                            .access_token
                            .expose()
                            .to_owned(),
                    )
                }
                (bearer, _, _) => bearer.clone(),
            };
            let client = client_with_bearer(bearer.as_deref());
            let mut request = client.request(route.method.clone(), &url);
            if route.access == Access::Socket {
                request = request
                    .header("connection", "upgrade")
                    .header("upgrade", "websocket")
                    .header("sec-websocket-version", "13")
                    .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==");
            }
            if matches!(route.method.as_str(), "POST" | "PUT") {
                request = request
                    .header("content-type", "application/json")
                    .body("{}");
            }
            let response = request.send().await.expect("request sent");
            let status = response.status().as_u16();
            let challenge = response.headers().contains_key("www-authenticate");
            let expected: &[u16] = match (route.access, credential.role) {
                (Access::Public | Access::Webhook, _) => &[],
                // The socket accepts the upgrade without credentials (the first message may
                // carry them) and refuses a bad token outright.
                (Access::Socket, _) if credential.bearer.is_none() => &[101],
                (_, None) => &[401],
                (Access::Socket, Some(_)) => &[101],
                (Access::Authenticated, Some(_)) => &[],
                (Access::Requires(permission), Some(role)) if !role.allows(permission) => &[403],
                (Access::Requires(_), Some(_)) => &[],
            };
            let ok = if expected.is_empty() {
                status != 401 && status != 403 && status != 429
            } else {
                expected.contains(&status)
            };
            if !ok {
                failures.push(format!(
                    "{} {} with {}: got {status}, expected {}",
                    route.method,
                    route.path,
                    credential.name,
                    if expected.is_empty() {
                        "neither 401 nor 403".to_owned()
                    } else {
                        format!("{expected:?}")
                    }
                ));
            }
            if status == 401 && !challenge && route.access != Access::Public {
                failures.push(format!(
                    "{} {} with {}: 401 without WWW-Authenticate",
                    route.method, route.path, credential.name
                ));
            }
            checked += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, routes().len() * credentials.len());

    // Denied mutations are in the audit log, with who tried.
    let (status, audit) = rt
        .get_json("/api/v1/audit?outcome=denied&action=alert.acknowledge&limit=100")
        .await;
    assert_eq!(status, 200, "{audit}");
    let actors: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert!(actors.contains(&"user:vera"), "{audit}");
    assert!(actors.contains(&"key:viewer-key"), "{audit}");
    rt.stop().await;
}

//! Authentication on both databases, through the [`Auth`] service over a real store: logins,
//! refresh rotation and reuse detection, logout and revocation, expiry (on a clock the test
//! moves, never by waiting), users, API keys, signing keys, bootstrap and the audit log.

use std::sync::{Arc, Mutex};

use crate::auth::{
    Actor, Auth, AuthConfig, AuthError, ClientInfo, Permission, Principal, Role, Secret,
    TokenRejection, action, token_kid,
};

use super::*;

on_both!(
    login_refresh_rotation_and_reuse_revokes_the_session,
    concurrent_refreshes_of_one_token_rotate_it_once,
    logout_and_revocation_take_effect_at_once,
    access_and_refresh_tokens_expire,
    refresh_does_not_extend_a_session_past_its_lifetime,
    disabling_and_password_changes_end_sessions,
    the_last_admin_cannot_be_disabled_or_demoted,
    users_are_checked_and_never_show_secrets,
    api_keys_verify_expire_revoke_and_record_use,
    signing_key_is_created_once_and_rotation_keeps_recent_tokens,
    configured_signing_key_is_shared_and_not_rotated,
    bootstrap_creates_the_first_admin_once,
    audit_log_filters_and_pages,
);

/// A clock the test moves by hand.
#[derive(Clone)]
struct TestClock(Arc<Mutex<DateTime<Utc>>>);

impl TestClock {
    fn new() -> TestClock {
        // Whole microseconds, as the store keeps them, so that times read back compare equal.
        TestClock(Arc::new(Mutex::new(ts(t0()))))
    }

    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

async fn auth_with(store: &Store, clock: &TestClock, config: AuthConfig) -> Auth {
    let time = clock.0.clone();
    Auth::with_clock(
        store.clone(),
        config,
        Arc::new(move || *time.lock().unwrap()),
    )
    .await
    .unwrap()
}

async fn auth(store: &Store, clock: &TestClock) -> Auth {
    auth_with(store, clock, AuthConfig::default()).await
}

const PASSWORD: &str = "correct horse battery staple";

fn client(ip: &str) -> ClientInfo {
    ClientInfo {
        ip: Some(ip.parse().unwrap()),
        user_agent: Some("test-agent/1.0".to_owned()),
    }
}

fn admin() -> Actor {
    Actor {
        name: "user:root".to_owned(),
        role: Some(Role::Admin),
        source_ip: Some("192.0.2.1".parse().unwrap()),
    }
}

async fn add_user(auth: &Auth, name: &str, role: Role) {
    let (user, generated) = auth
        .create_user(name, role, Some(&Secret::new(PASSWORD)), &admin())
        .await
        .unwrap();
    assert_eq!((user.username.as_str(), user.role), (name, role));
    assert!(generated.is_none(), "a given password is not generated");
}

fn rejection(result: Result<impl std::fmt::Debug, AuthError>) -> TokenRejection {
    match result {
        Err(AuthError::Rejected(rejection)) => rejection,
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// The audit entries with `action`, oldest first.
async fn audit(store: &Store, action: &str) -> Vec<AuditEntry> {
    let mut entries = store
        .audit_log(&AuditFilter {
            action: Some(action.to_owned()),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    entries.reverse();
    entries
}

async fn login_refresh_rotation_and_reuse_revokes_the_session(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "alice", Role::Operator).await;
    let from = client("198.51.100.7");

    // Failures look alike, whatever the reason.
    let wrong = auth
        .login_password("alice", "not the password", &from)
        .await;
    let unknown = auth.login_password("nobody", PASSWORD, &from).await;
    for result in [&wrong, &unknown] {
        assert!(
            matches!(result, Err(AuthError::InvalidCredentials)),
            "{result:?}"
        );
    }
    assert_eq!(
        wrong.unwrap_err().to_string(),
        unknown.unwrap_err().to_string()
    );

    // Usernames are case-insensitive.
    let first = auth.login_password("Alice", PASSWORD, &from).await.unwrap();
    assert_eq!(first.principal.actor, "user:alice");
    assert_eq!(first.access_expires_at, clock.now() + Duration::minutes(15));
    let session_id = first.principal.session_id.clone().unwrap();
    let principal = auth.verify(first.access_token.expose()).await.unwrap();
    assert_eq!(
        principal,
        Principal {
            actor: "user:alice".to_owned(),
            role: Role::Operator,
            user_id: principal.user_id,
            api_key_id: None,
            session_id: Some(session_id.clone()),
        }
    );
    assert!(principal.can(Permission::ManageTargets));
    assert!(!principal.can(Permission::ManageUsers));
    let alice = auth.user("alice").await.unwrap().unwrap();
    assert_eq!(alice.last_login_at, Some(clock.now()));

    clock.advance(Duration::minutes(10));
    let second = auth
        .refresh(first.refresh_token.expose(), &from)
        .await
        .unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.principal, principal, "the same session goes on");
    assert_eq!(
        second.refresh_expires_at,
        clock.now() + Duration::days(30),
        "the session slides with each refresh"
    );
    auth.verify(second.access_token.expose()).await.unwrap();
    let third = auth
        .refresh(second.refresh_token.expose(), &from)
        .await
        .unwrap();
    auth.verify(third.access_token.expose()).await.unwrap();

    // The first refresh token again: someone holds a copy. The whole session goes.
    let attacker = client("203.0.113.66");
    let reused = auth.refresh(first.refresh_token.expose(), &attacker).await;
    assert!(
        matches!(reused, Err(AuthError::RefreshTokenReused)),
        "{reused:?}"
    );
    assert_eq!(
        rejection(auth.verify(third.access_token.expose()).await),
        TokenRejection::SessionRevoked
    );
    assert_eq!(
        rejection(auth.refresh(third.refresh_token.expose(), &from).await),
        TokenRejection::SessionRevoked,
        "the newest refresh token dies with its session"
    );
    let session = store.session(&session_id).await.unwrap().unwrap();
    assert_eq!(
        session.revoked_reason.as_deref(),
        Some("refresh token reuse")
    );
    assert_eq!(session.client_ip.as_deref(), Some("198.51.100.7"));
    assert_eq!(session.user_agent.as_deref(), Some("test-agent/1.0"));
    assert_eq!(session.last_used_at, clock.now());

    // Tokens that were never issued.
    assert_eq!(
        rejection(auth.refresh("ocr_nope", &from).await),
        TokenRejection::UnknownRefreshToken
    );
    let made_up = format!("ocr_{}", "A".repeat(43));
    assert_eq!(
        rejection(auth.refresh(&made_up, &from).await),
        TokenRejection::UnknownRefreshToken
    );
    assert_eq!(
        rejection(auth.verify("eyJhbGciOiJIUzI1NiJ9.e30.x").await),
        TokenRejection::Malformed
    );

    // Audited: two failures (with reasons only admins see), the success, the reuse.
    let logins = audit(&store, action::LOGIN).await;
    let summary: Vec<_> = logins
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.target.as_deref().unwrap(),
                e.outcome,
                e.source_ip.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "anonymous",
                "user:alice",
                AuditOutcome::Failure,
                Some("198.51.100.7")
            ),
            (
                "anonymous",
                "user:nobody",
                AuditOutcome::Failure,
                Some("198.51.100.7")
            ),
            (
                "user:alice",
                "user:alice",
                AuditOutcome::Success,
                Some("198.51.100.7")
            ),
        ]
    );
    assert_eq!(logins[0].after, Some(json!({ "reason": "wrong password" })));
    assert_eq!(logins[1].after, Some(json!({ "reason": "unknown user" })));
    assert_eq!(logins[2].after, Some(json!({ "session": session_id })));
    assert_eq!(logins[2].role, Some(Role::Operator));
    let reuse = audit(&store, action::REFRESH_REUSE).await;
    assert_eq!(reuse.len(), 1);
    assert_eq!(
        reuse[0].target.as_deref(),
        Some(format!("session:{session_id}").as_str())
    );
    assert_eq!(reuse[0].source_ip.as_deref(), Some("203.0.113.66"));
    assert_eq!(reuse[0].outcome, AuditOutcome::Failure);
}

async fn concurrent_refreshes_of_one_token_rotate_it_once(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "alice", Role::Viewer).await;
    let pair = auth
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    let token = pair.refresh_token.expose().to_owned();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let auth = auth.clone();
            let token = token.clone();
            tokio::spawn(async move { auth.refresh(&token, &ClientInfo::default()).await })
        })
        .collect();
    let mut rotated = 0;
    let mut reused = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => rotated += 1,
            Err(AuthError::RefreshTokenReused) => reused += 1,
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((rotated, reused), (1, 3));
    assert_eq!(audit(&store, action::REFRESH_REUSE).await.len(), 3);
}

async fn logout_and_revocation_take_effect_at_once(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "alice", Role::Operator).await;
    add_user(&auth, "bob", Role::Viewer).await;
    let laptop = auth
        .login_password("alice", PASSWORD, &client("192.0.2.10"))
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let phone = auth
        .login_password("alice", PASSWORD, &client("192.0.2.11"))
        .await
        .unwrap();
    let bob = auth
        .login_password("bob", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    let alice_id = laptop.principal.user_id.unwrap();

    let active = SessionFilter {
        user_id: Some(alice_id),
        active_at: Some(clock.now()),
    };
    let ids = |sessions: Vec<SessionInfo>| sessions.into_iter().map(|s| s.id).collect::<Vec<_>>();
    assert_eq!(
        ids(auth.sessions(&active).await.unwrap()),
        [
            phone.principal.session_id.clone().unwrap(),
            laptop.principal.session_id.clone().unwrap()
        ],
        "newest first"
    );
    assert_eq!(
        auth.sessions(&SessionFilter::default())
            .await
            .unwrap()
            .len(),
        3
    );

    // Logout ends that session only, at once (the access token has 15 minutes left).
    let principal = auth.verify(laptop.access_token.expose()).await.unwrap();
    auth.logout(&principal, &client("192.0.2.10"))
        .await
        .unwrap();
    assert_eq!(
        rejection(auth.verify(laptop.access_token.expose()).await),
        TokenRejection::SessionRevoked
    );
    assert_eq!(
        rejection(
            auth.refresh(laptop.refresh_token.expose(), &ClientInfo::default())
                .await
        ),
        TokenRejection::SessionRevoked
    );
    auth.verify(phone.access_token.expose()).await.unwrap();

    // An administrator revokes another session.
    let phone_session = phone.principal.session_id.clone().unwrap();
    assert!(auth.revoke_session(&phone_session, &admin()).await.unwrap());
    assert_eq!(
        rejection(auth.verify(phone.access_token.expose()).await),
        TokenRejection::SessionRevoked
    );
    assert!(
        !auth.revoke_session(&phone_session, &admin()).await.unwrap(),
        "already revoked"
    );
    assert!(matches!(
        auth.revoke_session("no-such-session", &admin()).await,
        Err(AuthError::NotFound(m)) if m.contains("no-such-session")
    ));
    assert!(auth.sessions(&active).await.unwrap().is_empty());
    let listed = auth.session(&phone_session).await.unwrap().unwrap();
    assert_eq!(
        listed.revoked_reason.as_deref(),
        Some("revoked by user:root")
    );
    assert!(!listed.is_active(clock.now()));
    auth.verify(bob.access_token.expose()).await.unwrap();

    let logouts = audit(&store, action::LOGOUT).await;
    assert_eq!(logouts.len(), 1);
    assert_eq!(logouts[0].actor, "user:alice");
    assert_eq!(
        logouts[0].target.as_deref(),
        Some(format!("session:{}", laptop.principal.session_id.unwrap()).as_str())
    );
    let revokes = audit(&store, action::SESSION_REVOKE).await;
    assert_eq!(revokes.len(), 1, "the second revocation changed nothing");
    assert_eq!(revokes[0].actor, "user:root");
    assert_eq!(revokes[0].role, Some(Role::Admin));

    // An API key has no session to log out of.
    let (_, key) = auth
        .create_api_key("ci", Role::Service, None, &admin())
        .await
        .unwrap();
    let key_principal = auth.verify(key.expose()).await.unwrap();
    assert!(matches!(
        auth.logout(&key_principal, &ClientInfo::default()).await,
        Err(AuthError::Invalid(_))
    ));
}

async fn access_and_refresh_tokens_expire(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "alice", Role::Viewer).await;
    let pair = auth
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();

    clock.advance(Duration::minutes(15));
    auth.verify(pair.access_token.expose()).await.unwrap();
    clock.advance(Duration::minutes(1));
    assert_eq!(
        rejection(auth.verify(pair.access_token.expose()).await),
        TokenRejection::Expired
    );
    // The refresh token still gets a new access token.
    let next = auth
        .refresh(pair.refresh_token.expose(), &ClientInfo::default())
        .await
        .unwrap();
    auth.verify(next.access_token.expose()).await.unwrap();

    // Unused for longer than its 30 days, the refresh token (and so the session) has expired.
    clock.advance(Duration::days(30) + Duration::seconds(1));
    assert_eq!(
        rejection(
            auth.refresh(next.refresh_token.expose(), &ClientInfo::default())
                .await
        ),
        TokenRejection::RefreshTokenExpired
    );
    let sessions = auth
        .sessions(&SessionFilter {
            user_id: None,
            active_at: Some(clock.now()),
        })
        .await
        .unwrap();
    assert!(sessions.is_empty(), "{sessions:?}");
}

/// A session ends `session_lifetime` after sign-in, however often it is refreshed: a stolen
/// refresh token is not a credential for ever.
async fn refresh_does_not_extend_a_session_past_its_lifetime(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth_with(
        &store,
        &clock,
        AuthConfig {
            refresh_token_ttl: Duration::days(7),
            session_lifetime: Duration::days(10),
            ..AuthConfig::default()
        },
    )
    .await;
    add_user(&auth, "alice", Role::Viewer).await;
    let mut pair = auth
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    // Refreshed every three days: each new token would last seven more days, but the session
    // stops at day ten.
    for day in [3, 6, 9] {
        clock.advance(Duration::days(3));
        pair = auth
            .refresh(pair.refresh_token.expose(), &ClientInfo::default())
            .await
            .unwrap_or_else(|e| panic!("day {day}: {e}"));
    }
    assert_eq!(pair.refresh_expires_at, ts(t0() + Duration::days(10)));
    clock.advance(Duration::days(1) + Duration::seconds(1));
    let refused = rejection(
        auth.refresh(pair.refresh_token.expose(), &ClientInfo::default())
            .await,
    );
    assert!(
        matches!(
            refused,
            TokenRejection::RefreshTokenExpired | TokenRejection::SessionExpired
        ),
        "{refused:?}"
    );
    // A made-up token in the right shape is unknown, found so without writing.
    let made_up = format!("{}{}", crate::auth::REFRESH_TOKEN_PREFIX, "A".repeat(43));
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(made_up.as_bytes()));
    assert!(!store.refresh_token_known(&digest).await.unwrap());
}

async fn disabling_and_password_changes_end_sessions(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "root", Role::Admin).await;
    add_user(&auth, "alice", Role::Operator).await;
    let pair = auth
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();

    // A role change shows at the next request.
    let user = auth
        .set_user_role("alice", Role::Viewer, &admin())
        .await
        .unwrap();
    assert_eq!(user.role, Role::Viewer);
    let principal = auth.verify(pair.access_token.expose()).await.unwrap();
    assert_eq!(principal.role, Role::Viewer);

    // Disabling ends every session and refuses logins, without saying why.
    let user = auth
        .set_user_disabled("ALICE", true, &admin())
        .await
        .unwrap();
    assert!(user.disabled);
    assert_eq!(
        rejection(auth.verify(pair.access_token.expose()).await),
        TokenRejection::SessionRevoked
    );
    assert!(matches!(
        auth.login_password("alice", PASSWORD, &ClientInfo::default())
            .await,
        Err(AuthError::InvalidCredentials)
    ));
    let failed = audit(&store, action::LOGIN).await.pop().unwrap();
    assert_eq!(failed.after, Some(json!({ "reason": "user disabled" })));
    // Disabling again changes nothing and writes nothing.
    auth.set_user_disabled("alice", true, &admin())
        .await
        .unwrap();
    assert_eq!(audit(&store, action::USER_DISABLE).await.len(), 1);

    auth.set_user_disabled("alice", false, &admin())
        .await
        .unwrap();
    let pair = auth
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();

    // A new password ends the sessions that the old one opened.
    let generated = auth
        .set_password("alice", None, &admin())
        .await
        .unwrap()
        .expect("generated");
    assert_eq!(
        rejection(auth.verify(pair.access_token.expose()).await),
        TokenRejection::SessionRevoked
    );
    assert!(
        auth.login_password("alice", PASSWORD, &ClientInfo::default())
            .await
            .is_err()
    );
    auth.login_password("alice", generated.expose(), &ClientInfo::default())
        .await
        .unwrap();
    let chosen = Secret::new("another long passphrase");
    assert!(
        auth.set_password("alice", Some(&chosen), &admin())
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        auth.set_password("alice", Some(&Secret::new("short")), &admin()).await,
        Err(AuthError::Invalid(m)) if m.contains("at least 12")
    ));
    assert!(matches!(
        auth.set_password("nobody", None, &admin()).await,
        Err(AuthError::NotFound(m)) if m == "no user named `nobody`"
    ));

    // Audited, with before and after; never a password or hash.
    let role = audit(&store, action::USER_SET_ROLE).await;
    assert_eq!(role[0].before, Some(json!({ "role": "operator" })));
    assert_eq!(role[0].after, Some(json!({ "role": "viewer" })));
    assert_eq!(role[0].target.as_deref(), Some("user:alice"));
    assert_eq!(audit(&store, action::USER_ENABLE).await.len(), 1);
    let passwords = audit(&store, action::USER_SET_PASSWORD).await;
    assert_eq!(passwords.len(), 2);
    let everything = store.audit_log(&AuditFilter::default()).await.unwrap();
    let text = serde_json::to_string(&everything).unwrap();
    for secret in [
        PASSWORD,
        generated.expose(),
        "another long passphrase",
        "$argon2id",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log: {text}");
    }
}

async fn the_last_admin_cannot_be_disabled_or_demoted(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    add_user(&auth, "root", Role::Admin).await;
    add_user(&auth, "alice", Role::Operator).await;
    for result in [
        auth.set_user_disabled("root", true, &Actor::cli()).await,
        auth.set_user_role("root", Role::Viewer, &Actor::cli())
            .await,
    ] {
        assert!(
            matches!(&result, Err(AuthError::Conflict(m)) if m.contains("last enabled admin")),
            "{result:?}"
        );
    }
    let root = auth.user("root").await.unwrap().unwrap();
    assert_eq!((root.role, root.disabled), (Role::Admin, false));
    assert!(audit(&store, action::USER_DISABLE).await.is_empty());
    // Several changes at once are all or nothing: the refused demotion keeps the password too.
    let new_password = Secret::new("another long enough password");
    let result = auth
        .update_user(
            "root",
            Some(Role::Viewer),
            None,
            Some(Some(&new_password)),
            &Actor::cli(),
        )
        .await;
    assert!(matches!(&result, Err(AuthError::Conflict(_))), "{result:?}");
    auth.login_password("root", PASSWORD, &ClientInfo::default())
        .await
        .expect("the old password still signs in");
    assert!(audit(&store, action::USER_SET_PASSWORD).await.is_empty());

    // With another admin, either can go; then the remaining one is the last.
    auth.set_user_role("alice", Role::Admin, &Actor::cli())
        .await
        .unwrap();
    auth.set_user_disabled("root", true, &Actor::cli())
        .await
        .unwrap();
    assert!(
        auth.set_user_role("alice", Role::Operator, &Actor::cli())
            .await
            .is_err()
    );

    // Two admins demoting each other at once: one of them stays.
    auth.set_user_disabled("root", false, &Actor::cli())
        .await
        .unwrap();
    let cli = Actor::cli();
    let (a, b) = tokio::join!(
        auth.set_user_role("root", Role::Viewer, &cli),
        auth.set_user_role("alice", Role::Viewer, &cli),
    );
    assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
    let admins = auth
        .users()
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.role == Role::Admin && !u.disabled)
        .count();
    assert_eq!(admins, 1);
}

async fn users_are_checked_and_never_show_secrets(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    let (user, generated) = auth
        .create_user("Zoe", Role::Service, None, &Actor::cli())
        .await
        .unwrap();
    assert_eq!(user.username, "zoe");
    assert_eq!(user.source, "local");
    assert!(user.has_password && !user.disabled);
    assert_eq!(user.created_at, clock.now());
    assert_eq!(user.password_changed_at, Some(clock.now()));
    let generated = generated.expect("no password given, so one is generated");
    assert_eq!(generated.expose().len(), 27);
    auth.login_password("zoe", generated.expose(), &ClientInfo::default())
        .await
        .unwrap();
    add_user(&auth, "adam", Role::Viewer).await;

    assert!(matches!(
        auth.create_user("ZOE", Role::Viewer, None, &Actor::cli()).await,
        Err(AuthError::Conflict(m)) if m == "a user named `zoe` already exists"
    ));
    assert!(matches!(
        auth.create_user("a b", Role::Viewer, None, &Actor::cli()).await,
        Err(AuthError::Invalid(m)) if m.contains("username `a b`")
    ));
    assert!(matches!(
        auth.create_user("eve", Role::Viewer, Some(&Secret::new("2short")), &Actor::cli()).await,
        Err(AuthError::Invalid(m)) if m.contains("at least 12 characters")
    ));

    let users = auth.users().await.unwrap();
    let names: Vec<_> = users.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, ["adam", "zoe"]);
    let listed = serde_json::to_string(&users).unwrap();
    assert!(!listed.contains("argon2"), "{listed}");
    let credentials = store.user_credentials("zoe").await.unwrap().unwrap();
    assert!(
        credentials
            .password_hash
            .as_deref()
            .unwrap()
            .starts_with("$argon2id$")
    );
    assert!(!format!("{credentials:?}").contains("argon2"));
    assert!(store.user_credentials("nobody").await.unwrap().is_none());

    let created = audit(&store, action::USER_CREATE).await;
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].target.as_deref(), Some("user:zoe"));
    assert_eq!(created[0].actor, Actor::cli().name);
    assert_eq!(created[0].after.as_ref().unwrap()["role"], json!("service"));
}

async fn api_keys_verify_expire_revoke_and_record_use(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let auth = auth(&store, &clock).await;
    let expires = clock.now() + Duration::days(1);
    let (info, key) = auth
        .create_api_key("ci-bot", Role::Service, Some(expires), &admin())
        .await
        .unwrap();
    assert!(key.expose().starts_with("oc_"));
    assert_eq!(key.expose().len(), 46);
    assert_eq!(info.prefix, key.expose()[..11]);
    assert_eq!(
        (info.name.as_str(), info.role, info.created_by.as_str()),
        ("ci-bot", Role::Service, "user:root")
    );
    assert_eq!(info.expires_at, Some(expires));
    assert_eq!(info.last_used_at, None);
    // The key is nowhere but in the value returned once.
    let listed = auth.api_keys().await.unwrap();
    for shown in [
        serde_json::to_string(&listed).unwrap(),
        format!("{listed:?}"),
        format!("{key:?}"),
    ] {
        assert!(!shown.contains(key.expose()), "{shown}");
    }

    let principal = auth.verify(key.expose()).await.unwrap();
    assert_eq!(
        principal,
        Principal {
            actor: "key:ci-bot".to_owned(),
            role: Role::Service,
            user_id: None,
            api_key_id: Some(info.id),
            session_id: None,
        }
    );
    assert!(principal.can(Permission::IngestEvents));
    assert!(!principal.can(Permission::ManageApiKeys));
    let first_use = clock.now();
    let last_used = async || auth.api_keys().await.unwrap()[0].last_used_at;
    assert_eq!(last_used().await, Some(first_use));
    // Recorded at most once a minute.
    clock.advance(Duration::seconds(30));
    auth.verify(key.expose()).await.unwrap();
    assert_eq!(last_used().await, Some(first_use));
    clock.advance(Duration::seconds(31));
    auth.verify(key.expose()).await.unwrap();
    assert_eq!(last_used().await, Some(clock.now()));

    // A live key's name is taken; a bad name or a past expiry is refused.
    assert!(matches!(
        auth.create_api_key("ci-bot", Role::Viewer, None, &admin()).await,
        Err(AuthError::Conflict(m)) if m.contains("`ci-bot` already exists")
    ));
    assert!(matches!(
        auth.create_api_key("ci bot", Role::Viewer, None, &admin())
            .await,
        Err(AuthError::Invalid(_))
    ));
    assert!(matches!(
        auth.create_api_key("late", Role::Viewer, Some(clock.now()), &admin()).await,
        Err(AuthError::Invalid(m)) if m.contains("has passed")
    ));

    // Expiry.
    clock.advance(Duration::days(1));
    assert_eq!(
        rejection(auth.verify(key.expose()).await),
        TokenRejection::ApiKeyExpired
    );

    // Revocation: at once, idempotent, and the name is free again.
    let (_, other) = auth
        .create_api_key("grafana", Role::Viewer, None, &admin())
        .await
        .unwrap();
    auth.verify(other.expose()).await.unwrap();
    let revoked = auth
        .revoke_api_key_named("grafana", &admin())
        .await
        .unwrap();
    assert_eq!(revoked.revoked_at, Some(clock.now()));
    assert_eq!(
        rejection(auth.verify(other.expose()).await),
        TokenRejection::ApiKeyRevoked
    );
    let again = auth.revoke_api_key(revoked.id, &admin()).await.unwrap();
    assert_eq!(again, revoked);
    assert!(matches!(
        auth.revoke_api_key_named("grafana", &admin()).await,
        Err(AuthError::NotFound(_))
    ));
    assert!(matches!(
        auth.revoke_api_key(999_999, &admin()).await,
        Err(AuthError::NotFound(_))
    ));
    let (replacement, new_key) = auth
        .create_api_key("grafana", Role::Viewer, None, &admin())
        .await
        .unwrap();
    assert_ne!(replacement.id, revoked.id);
    auth.verify(new_key.expose()).await.unwrap();

    // Keys that were never issued.
    assert_eq!(
        rejection(auth.verify("oc_short").await),
        TokenRejection::UnknownApiKey
    );
    let made_up = format!("oc_{}", "A".repeat(43));
    assert_eq!(
        rejection(auth.verify(&made_up).await),
        TokenRejection::UnknownApiKey
    );

    let created = audit(&store, action::API_KEY_CREATE).await;
    assert_eq!(created.len(), 3);
    assert_eq!(created[0].target.as_deref(), Some("key:ci-bot"));
    assert_eq!(created[0].after.as_ref().unwrap()["role"], json!("service"));
    assert_eq!(
        created[0].after.as_ref().unwrap()["prefix"],
        json!(info.prefix)
    );
    let revokes = audit(&store, action::API_KEY_REVOKE).await;
    assert_eq!(revokes.len(), 1);
    assert_eq!(revokes[0].target.as_deref(), Some("key:grafana"));
}

async fn signing_key_is_created_once_and_rotation_keeps_recent_tokens(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let node_a = auth(&store, &clock).await;
    // A second node on the same database adopts the key the first one created.
    let node_b = auth(&store, &clock).await;
    assert_eq!(node_a.active_kid(), node_b.active_kid());
    assert_eq!(store.signing_keys().await.unwrap().len(), 1);
    assert_eq!(audit(&store, action::SIGNING_KEY_CREATE).await.len(), 1);

    add_user(&node_a, "alice", Role::Viewer).await;
    let before = node_a
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    let old_kid = node_a.active_kid();
    assert_eq!(
        token_kid(before.access_token.expose()).as_deref(),
        Some(old_kid.as_str())
    );

    clock.advance(Duration::minutes(5));
    let new_kid = node_a.rotate_signing_key(&Actor::cli()).await.unwrap();
    assert_ne!(new_kid, old_kid);
    assert_eq!(node_a.active_kid(), new_kid);
    // Issued before the rotation, still valid on both nodes.
    node_a.verify(before.access_token.expose()).await.unwrap();
    node_b.verify(before.access_token.expose()).await.unwrap();
    // New tokens carry the new key, and the other node, which has not reloaded yet, accepts
    // them (an unknown key id makes it reread the keys).
    let after = node_a
        .refresh(before.refresh_token.expose(), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(
        token_kid(after.access_token.expose()).as_deref(),
        Some(new_kid.as_str())
    );
    node_b.verify(after.access_token.expose()).await.unwrap();
    assert_eq!(node_b.active_kid(), new_kid);

    // Once a token's lifetime has passed, the next rotation deletes the old key.
    clock.advance(Duration::minutes(16));
    let newest = node_a.rotate_signing_key(&Actor::cli()).await.unwrap();
    let kids: Vec<String> = store
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, [newest.clone(), new_kid.clone()]);
    let rotations = audit(&store, action::SIGNING_KEY_ROTATE).await;
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[0].before, Some(json!({ "active": old_kid })));
    assert_eq!(
        rotations[1].after,
        Some(json!({ "active": newest, "deleted_retired_keys": 1 }))
    );
    assert_eq!(rotations[0].actor, Actor::cli().name);
}

async fn configured_signing_key_is_shared_and_not_rotated(db: TestDb) {
    use base64::Engine as _;
    let store = db.store;
    let clock = TestClock::new();
    let configured = AuthConfig {
        signing_key: Some(Secret::new(
            base64::engine::general_purpose::STANDARD.encode([42u8; 48]),
        )),
        ..AuthConfig::default()
    };
    let node_a = auth_with(&store, &clock, configured.clone()).await;
    let node_b = auth_with(&store, &clock, configured.clone()).await;
    assert!(node_a.active_kid().starts_with("cfg-"));
    assert!(
        store.signing_keys().await.unwrap().is_empty(),
        "a configured key is not stored"
    );
    add_user(&node_a, "alice", Role::Viewer).await;
    let pair = node_a
        .login_password("alice", PASSWORD, &ClientInfo::default())
        .await
        .unwrap();
    node_b.verify(pair.access_token.expose()).await.unwrap();
    assert!(matches!(
        node_a.rotate_signing_key(&Actor::cli()).await,
        Err(AuthError::KeyFromConfig)
    ));

    // A node with a stored key does not trust the configured one.
    let other = auth(&store, &clock).await;
    assert_eq!(
        rejection(other.verify(pair.access_token.expose()).await),
        TokenRejection::UnknownKey
    );

    // Bad configurations are refused with the setting named.
    for (config, named) in [
        (
            AuthConfig {
                signing_key: Some(Secret::new("c2hvcnQ=")),
                ..AuthConfig::default()
            },
            "jwt_signing_key",
        ),
        (
            AuthConfig {
                access_token_ttl: Duration::zero(),
                ..AuthConfig::default()
            },
            "access_token_minutes",
        ),
        (
            AuthConfig {
                refresh_token_ttl: Duration::days(400),
                ..AuthConfig::default()
            },
            "refresh_token_days",
        ),
    ] {
        let time = clock.0.clone();
        let error = Auth::with_clock(
            store.clone(),
            config,
            Arc::new(move || *time.lock().unwrap()),
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(error.contains(named), "{error}");
    }
}

async fn bootstrap_creates_the_first_admin_once(db: TestDb) {
    let store = db.store;
    let clock = TestClock::new();
    let node_a = auth(&store, &clock).await;
    let node_b = auth(&store, &clock).await;
    // Two nodes starting at once on an empty database: one admin.
    let (a, b) = tokio::join!(node_a.bootstrap_admin(), node_b.bootstrap_admin());
    let passwords: Vec<Secret> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(passwords.len(), 1);
    let users = store.users().await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].username.as_str(), users[0].role),
        ("admin", Role::Admin)
    );

    let pair = node_a
        .login_password("admin", passwords[0].expose(), &ClientInfo::default())
        .await
        .unwrap();
    assert_eq!(pair.principal.role, Role::Admin);
    assert!(node_a.bootstrap_admin().await.unwrap().is_none());

    let created = audit(&store, action::USER_CREATE).await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].actor, "system");
    assert_eq!(created[0].target.as_deref(), Some("user:admin"));
}

async fn audit_log_filters_and_pages(db: TestDb) {
    let store = db.store;
    let at = t0();
    let actor = |name: &str| Actor {
        name: name.to_owned(),
        role: Some(Role::Operator),
        source_ip: Some("2001:db8::7".parse().unwrap()),
    };
    for i in 0..5 {
        let record = AuditRecord::new(
            &actor("user:alice"),
            "alert.acknowledge",
            Some(format!("alert:{i}")),
            AuditOutcome::Success,
        )
        .before(json!({ "status": "active" }))
        .after(json!({ "status": "acknowledged", "note": "größe ✓" }));
        store
            .append_audit(&record, at + Duration::seconds(i))
            .await
            .unwrap();
    }
    store
        .append_audit(
            &AuditRecord::new(
                &actor("key:ci"),
                "target.delete",
                None,
                AuditOutcome::Denied,
            ),
            at,
        )
        .await
        .unwrap();

    let all = store.audit_log(&AuditFilter::default()).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let denied = &all[0];
    assert_eq!(
        (
            denied.actor.as_str(),
            denied.action.as_str(),
            denied.outcome,
            denied.target.as_deref(),
            denied.before.as_ref(),
            denied.source_ip.as_deref()
        ),
        (
            "key:ci",
            "target.delete",
            AuditOutcome::Denied,
            None,
            None,
            Some("2001:db8::7")
        )
    );
    let newest_ack = &all[1];
    assert_eq!(newest_ack.at, ts(at + Duration::seconds(4)));
    assert_eq!(newest_ack.role, Some(Role::Operator));
    assert_eq!(newest_ack.before, Some(json!({ "status": "active" })));
    assert_eq!(newest_ack.after.as_ref().unwrap()["note"], json!("größe ✓"));

    let filter = |f: AuditFilter| {
        let store = store.clone();
        async move {
            store
                .audit_log(&f)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.target.unwrap_or_default())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        filter(AuditFilter {
            outcome: Some(AuditOutcome::Denied),
            ..AuditFilter::default()
        })
        .await,
        [""]
    );
    assert_eq!(
        filter(AuditFilter {
            actor: Some("user:alice".to_owned()),
            limit: 2,
            ..AuditFilter::default()
        })
        .await,
        ["alert:4", "alert:3"]
    );
    assert_eq!(
        filter(AuditFilter {
            action: Some("alert.acknowledge".to_owned()),
            before_id: Some(all[2].id),
            limit: 2,
            ..AuditFilter::default()
        })
        .await,
        ["alert:2", "alert:1"]
    );
    assert_eq!(
        filter(AuditFilter {
            target: Some("alert:0".to_owned()),
            actor: Some("user:alice".to_owned()),
            ..AuditFilter::default()
        })
        .await,
        ["alert:0"]
    );
    assert!(
        filter(AuditFilter {
            actor: Some("user:bob".to_owned()),
            ..AuditFilter::default()
        })
        .await
        .is_empty()
    );
}

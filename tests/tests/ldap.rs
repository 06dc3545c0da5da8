//! Directory login against a real OpenLDAP `slapd` (tests/src/slapd.rs): search-then-bind,
//! group → role mapping (most privileged group wins), and refusals that do not tell an unknown
//! user from a wrong password.

use std::collections::BTreeMap;

use opsconductor::directory::{DirectoryError, LdapConfig, authenticate};
use opsconductor_tests::slapd::{self, ALICE, BOB, CAROL, Slapd};

fn config(server: &Slapd) -> LdapConfig {
    LdapConfig {
        url: server.url(),
        starttls: false,
        bind_dn: Some(slapd::ADMIN_DN.into()),
        bind_password: Some(slapd::ADMIN_PASSWORD.into()),
        user_base: format!("ou=people,{}", slapd::SUFFIX),
        user_filter: "(&(objectClass=inetOrgPerson)(uid={username}))".into(),
        group_base: Some(format!("ou=groups,{}", slapd::SUFFIX)),
        group_filter: "(member={dn})".into(),
        group_attribute: None,
        group_roles: BTreeMap::from([
            ("noc-operators".into(), "operator".into()),
            (
                format!("cn=noc-admins,ou=groups,{}", slapd::SUFFIX),
                "admin".into(),
            ),
        ]),
        timeout_ms: 5_000,
    }
}

#[tokio::test]
async fn directory_users_get_the_role_of_their_groups() {
    let server = Slapd::start();
    let c = config(&server);

    let bob = authenticate(&c, BOB.0, BOB.1).await.expect("bob logs in");
    assert_eq!(bob.role, "admin");
    assert_eq!(bob.dn, format!("uid=bob,ou=people,{}", slapd::SUFFIX));
    assert_eq!(bob.display_name.as_deref(), Some("Bob Admin"));

    // alice is in both groups: the more privileged one wins.
    let alice = authenticate(&c, ALICE.0, ALICE.1)
        .await
        .expect("alice logs in");
    assert_eq!(alice.role, "admin");
    assert_eq!(alice.groups.len(), 2, "{:?}", alice.groups);
    assert_eq!(alice.email.as_deref(), Some("alice@example.org"));

    // Without the admins mapping, alice is an operator.
    let mut operators_only = c.clone();
    operators_only
        .group_roles
        .retain(|_, role| role.as_str() == "operator");
    let alice = authenticate(&operators_only, ALICE.0, ALICE.1)
        .await
        .unwrap();
    assert_eq!(alice.role, "operator");

    // carol authenticates, but no group of hers maps to a role.
    let carol = authenticate(&c, CAROL.0, CAROL.1).await;
    assert!(
        matches!(&carol, Err(DirectoryError::NoRole { username, .. }) if username == "carol"),
        "{carol:?}"
    );

    // Wrong password and unknown user: the same refusal.
    assert_eq!(
        authenticate(&c, BOB.0, "not-bobs").await,
        Err(DirectoryError::InvalidCredentials)
    );
    assert_eq!(
        authenticate(&c, "mallory", "whatever").await,
        Err(DirectoryError::InvalidCredentials)
    );
    // A filter injection finds nobody rather than everybody.
    assert_eq!(
        authenticate(&c, "*)(uid=*", BOB.1).await,
        Err(DirectoryError::InvalidCredentials)
    );
    // The service account's own password is checked.
    let wrong_service = LdapConfig {
        bind_password: Some("wrong".into()),
        ..c.clone()
    };
    assert!(matches!(
        authenticate(&wrong_service, BOB.0, BOB.1).await,
        Err(DirectoryError::Config(_))
    ));
    // A directory that is not there is unavailable, not a bad password.
    drop(server);
    assert!(matches!(
        authenticate(&c, BOB.0, BOB.1).await,
        Err(DirectoryError::Unavailable(_))
    ));
}

/// The same directory behind `POST /api/v1/auth/login`: the user's groups decide the role of
/// the session, the user is recorded (source `ldap`, no password), and an administrator who
/// disables them locally keeps them out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_login_through_the_api() {
    use opsconductor_tests::{Db, TestRuntime, client_with_bearer};
    use serde_json::{Value, json};

    let server = Slapd::start();
    let directory = config(&server);
    let rt = TestRuntime::start_configured(
        Db::Sqlite,
        &[],
        move |c| c.ldap = Some(directory),
        async |_| {},
    )
    .await;
    let anonymous = client_with_bearer(None);
    let login = async |username: &str, password: &str| -> (u16, Value) {
        let response = anonymous
            .post(rt.url("/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    };

    let (status, alice) = login(ALICE.0, ALICE.1).await;
    assert_eq!(status, 200, "{alice}");
    assert_eq!(alice["principal"]["role"], "admin");
    let (status, me) = {
        let response = client_with_bearer(alice["access_token"].as_str())
            .get(rt.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_eq!((status, &me["actor"]), (200, &json!("user:alice")));

    let (status, user) = rt.get_json("/api/v1/users/alice").await;
    assert_eq!(status, 200, "{user}");
    assert_eq!(
        (&user["source"], &user["role"], &user["has_password"]),
        (&json!("ldap"), &json!("admin"), &json!(false))
    );

    // No group maps to a role: refused like a wrong password, and audited with the reason.
    let (status, carol) = login(CAROL.0, CAROL.1).await;
    assert_eq!(status, 401, "{carol}");
    let (status, wrong) = login(BOB.0, "not-bobs").await;
    assert_eq!((status, &wrong), (401, &carol));
    let (_, audit) = rt
        .get_json("/api/v1/audit?action=auth.login&target=user:carol")
        .await;
    assert_eq!(
        audit["items"][0]["after"],
        json!({"reason": "in no group that maps to a role", "via": "ldap"})
    );

    // Disabled here, kept out although the directory still vouches for her.
    let (status, bob) = login(BOB.0, BOB.1).await;
    assert_eq!((status, &bob["principal"]["role"]), (200, &json!("admin")));
    let (status, body) = rt
        .send_json("PUT", "/api/v1/users/alice", &json!({"disabled": true}))
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = login(ALICE.0, ALICE.1).await;
    assert_eq!(status, 401);
    rt.stop().await;
}

//! Single sign-on through OpenID Connect, against a real provider (panva's `oidc-provider` under
//! Node, on loopback, requiring PKCE): this test plays the browser — it follows the redirects,
//! keeps the cookies and submits the provider's login form — and checks what the runtime makes
//! of each person: the role their groups map to, a user of source `oidc`, an audited login, and
//! refusals for someone in no mapped group, for a name a local user has, for a sign-in finished
//! in another browser than it started in (login CSRF) and for a replayed callback.

use opsconductor::config::Config;
use opsconductor::oidc::OidcConfig;
use opsconductor_tests::oidc_provider::{CLIENT_ID, CLIENT_SECRET, OidcProvider};
use opsconductor_tests::sshd::free_port;
use opsconductor_tests::{Db, TestRuntime, both_databases, client_with_bearer};
use reqwest::Url;
use reqwest::redirect::Policy;
use serde_json::{Value, json};

/// A runtime whose `[oidc]` names a provider on a port chosen here, and that provider.
async fn start(db: Db) -> (TestRuntime, OidcProvider) {
    let runtime_port = free_port();
    let provider_port = free_port();
    let callback = format!("http://127.0.0.1:{runtime_port}/api/v1/auth/oidc/callback");
    let oidc: OidcConfig = serde_json::from_value(json!({
        "issuer": format!("http://127.0.0.1:{provider_port}"),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_url": callback,
        "display_name": "Test IdP",
        "group_roles": {"noc-admins": "admin", "NOC": "operator"},
    }))
    .unwrap();
    let rt = TestRuntime::start_configured(
        db,
        &[],
        |c: &mut Config| {
            c.listen = ([127, 0, 0, 1], runtime_port).into();
            c.oidc = Some(oidc);
        },
        async |_| {},
    )
    .await;
    let provider = OidcProvider::start(provider_port, &callback);
    (rt, provider)
}

/// A browser: keeps cookies, follows no redirect by itself.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Where a redirect goes, resolved against the page it came from.
fn location(from: &Url, response: &reqwest::Response) -> Url {
    let to = response.headers()["location"].to_str().unwrap();
    from.join(to).unwrap()
}

/// Follows redirects from `url` in `browser`, submitting the provider's login form as `person`
/// when it shows; stops at the first redirect to the console's sign-in page and returns it.
/// With `stop_at_callback`, stops instead at the redirect to the runtime's callback.
async fn follow(browser: &reqwest::Client, url: Url, person: &str, stop_at_callback: bool) -> Url {
    let mut url = url;
    for _ in 0..20 {
        let response = browser.get(url.clone()).send().await.unwrap();
        let status = response.status().as_u16();
        let next = match status {
            302 | 303 => location(&url, &response),
            200 => {
                let page = response.text().await.unwrap();
                let action = page
                    .split("action=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("no login form at {url}: {page}"));
                let posted = browser
                    .post(url.join(action).unwrap())
                    .form(&[("login", person)])
                    .send()
                    .await
                    .unwrap();
                assert!(
                    posted.status().is_redirection(),
                    "the login form answered {}",
                    posted.status()
                );
                location(&url, &posted)
            }
            other => panic!(
                "{url} answered {other}: {}",
                response.text().await.unwrap_or_default()
            ),
        };
        if next.path() == "/login" {
            return next;
        }
        if stop_at_callback && next.path() == opsconductor::oidc::CALLBACK_PATH {
            return next;
        }
        url = next;
    }
    panic!("too many redirects");
}

/// Signs `person` in from a fresh browser; returns the sign-in page's fragment, parsed.
async fn sign_in(rt: &TestRuntime, person: &str) -> Vec<(String, String)> {
    let start = Url::parse(&rt.url("/api/v1/auth/oidc/start")).unwrap();
    let landed = follow(&browser(), start, person, false).await;
    fragment(&landed)
}

/// The fragment's `key=value` pairs, decoded.
fn fragment(url: &Url) -> Vec<(String, String)> {
    let as_query = format!("http://fragment/?{}", url.fragment().unwrap_or_default());
    Url::parse(&as_query)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

fn value<'a>(fragment: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fragment
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Trades the refresh token the callback handed over, as the console does.
async fn redeem(rt: &TestRuntime, refresh_token: &str) -> (u16, Value) {
    let response = client_with_bearer(None)
        .post(rt.url("/api/v1/auth/refresh"))
        .json(&json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.json().await.unwrap_or(Value::Null),
    )
}

async fn user(rt: &TestRuntime, name: &str) -> Option<Value> {
    let (status, users) = rt.get_json("/api/v1/users").await;
    assert_eq!(status, 200, "{users}");
    users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .cloned()
}

async fn login_audits(rt: &TestRuntime) -> Vec<Value> {
    let (status, audit) = rt
        .get_json("/api/v1/audit?action=auth.login&limit=100")
        .await;
    assert_eq!(status, 200, "{audit}");
    audit["items"].as_array().unwrap().clone()
}

async fn signs_in_with_the_role_of_the_persons_groups(db: Db) {
    let (rt, _provider) = start(db).await;
    let (status, methods) = rt.get_json("/api/v1/auth/methods").await;
    assert_eq!(status, 200);
    assert_eq!(methods["oidc"]["display_name"], "Test IdP", "{methods}");

    // The runtime's redirect carries an S256 challenge; the provider refuses any without.
    let started = browser()
        .get(rt.url("/api/v1/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 302);
    let authorize = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.contains("code_challenge_method=S256") && authorize.contains("nonce="),
        "{authorize}"
    );
    let cookie = started.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("Path=/api/v1/auth/oidc"),
        "{cookie}"
    );

    for (person, role) in [("ada", "admin"), ("bob", "operator")] {
        let landed = sign_in(&rt, person).await;
        let token = value(&landed, "sso").unwrap_or_else(|| panic!("{person}: {landed:?}"));
        let (status, tokens) = redeem(&rt, token).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(tokens["principal"]["actor"], format!("user:{person}"));
        assert_eq!(tokens["principal"]["role"], role);
        let me = client_with_bearer(tokens["access_token"].as_str())
            .get(rt.url("/api/v1/auth/me"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(me["role"], role, "{me}");
        let user = user(&rt, person).await.expect("the user is recorded");
        assert_eq!(user["source"], "oidc", "{user}");
        assert_eq!(user["has_password"], false, "{user}");
        // The token in the address was spent by its first use.
        let (status, _) = redeem(&rt, token).await;
        assert_eq!(status, 401);
    }
    let audits = login_audits(&rt).await;
    assert!(
        audits
            .iter()
            .any(|a| a["outcome"] == "success" && a["actor"] == "user:ada"),
        "{audits:?}"
    );
    rt.stop().await;
}

both_databases!(oidc_sign_in, signs_in_with_the_role_of_the_persons_groups);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_who_it_must_and_what_was_replayed_or_carried_over() {
    let (rt, _provider) = start(Db::Sqlite).await;

    // In no group that maps to a role: refused, no user made, the reason audited.
    let landed = sign_in(&rt, "eve").await;
    let error = value(&landed, "sso_error").unwrap_or_else(|| panic!("{landed:?}"));
    assert!(error.contains("may not sign in"), "{error}");
    assert!(value(&landed, "sso").is_none());
    assert!(user(&rt, "eve").await.is_none());

    // The provider never takes over a local account.
    let (status, created) = rt
        .send_json(
            "POST",
            "/api/v1/users",
            &json!({"username": "root", "role": "viewer", "password": "a-long-local-password"}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let landed = sign_in(&rt, "root").await;
    assert!(value(&landed, "sso_error").is_some(), "{landed:?}");
    let root = user(&rt, "root").await.unwrap();
    assert_eq!(
        (root["source"].as_str(), root["role"].as_str()),
        (Some("local"), Some("viewer"))
    );

    // Login CSRF: the attacker starts a sign-in, gets the provider's code for their own
    // account, and has the victim's browser open the callback. The victim's browser never
    // started that sign-in (no state cookie): refused, and the state is used up.
    let attacker = browser();
    let start = Url::parse(&rt.url("/api/v1/auth/oidc/start")).unwrap();
    let callback = follow(&attacker, start, "bob", true).await;
    let victim = browser();
    let answer = victim.get(callback.clone()).send().await.unwrap();
    let landed = location(&callback, &answer);
    assert!(value(&fragment(&landed), "sso_error").is_some(), "{landed}");
    // ... and the attacker's own browser cannot finish it afterwards either.
    let answer = attacker.get(callback.clone()).send().await.unwrap();
    let landed = location(&callback, &answer);
    assert!(value(&fragment(&landed), "sso_error").is_some(), "{landed}");

    // A replayed callback (the same state and code again): refused.
    let browser = browser();
    let start = Url::parse(&rt.url("/api/v1/auth/oidc/start")).unwrap();
    let callback = follow(&browser, start, "ada", true).await;
    let first = browser.get(callback.clone()).send().await.unwrap();
    assert!(value(&fragment(&location(&callback, &first)), "sso").is_some());
    let again = browser.get(callback.clone()).send().await.unwrap();
    assert!(value(&fragment(&location(&callback, &again)), "sso_error").is_some());

    let reasons: Vec<String> = login_audits(&rt)
        .await
        .iter()
        .filter(|a| a["outcome"] == "failure")
        .map(|a| a["after"]["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    for expected in [
        "in no group that maps to a role",
        "a user of another source has this name",
        "the sign-in was started in another browser",
        "unknown, used or expired sign-in state",
    ] {
        assert!(
            reasons.iter().any(|r| r == expected),
            "no audited failure `{expected}` in {reasons:?}"
        );
    }
    rt.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_is_said_so_on_the_sign_in_page() {
    // The provider's port is chosen but nothing listens there.
    let (rt, provider) = start(Db::Sqlite).await;
    drop(provider);
    let started = browser()
        .get(rt.url("/api/v1/auth/oidc/start"))
        .send()
        .await
        .unwrap();
    let url = Url::parse(&rt.url("/api/v1/auth/oidc/start")).unwrap();
    let landed = location(&url, &started);
    assert_eq!(landed.path(), "/login");
    let error = value(&fragment(&landed), "sso_error").map(str::to_owned);
    assert!(
        error.as_deref().is_some_and(|e| e.contains("unavailable")),
        "{landed}"
    );
    rt.stop().await;
}

/// The console in a real browser (Debian's chromium): the sign-in page offers the provider,
/// the provider's own page signs the person in, and the console opens with the session, the
/// token no longer in the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_signs_in_through_the_provider_in_a_real_browser() {
    use opsconductor_tests::browser::{Driver, testid};
    let (rt, _provider) = start(Db::Sqlite).await;
    let driver = Driver::start().await;
    let browser = driver.browser(&rt.url(""), 1280, 800).await;
    browser.open("/login").await;
    browser
        .until_text("sign-in-sso", "Sign in with Test IdP")
        .await;
    browser.screenshot("sso-sign-in-page").await;
    browser.click("sign-in-sso").await;
    // The provider's page, on its own origin.
    browser.css("#login").await.send_keys("bob").await.unwrap();
    browser.css("#sign-in").await.click().await.unwrap();
    browser
        .until(
            "the console after single sign-on",
            "const e = document.querySelector(arguments[0]); \
             return e !== null && e.dataset.state === 'live';",
            vec![json!(testid("live-indicator"))],
        )
        .await;
    let address = browser.eval("return window.location.href;", vec![]).await;
    assert!(
        !address.as_str().unwrap_or_default().contains("sso"),
        "{address}"
    );
    browser.screenshot("sso-signed-in").await;
    assert!(browser.csp_violations().await.is_empty());
    browser.close().await;
    rt.stop().await;
}

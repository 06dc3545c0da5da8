//! The route table: every route the runtime serves, declared once.

use super::route::{Access, Audit, ResponseBody, Route, delete, get, post, put};
use super::*;
use crate::auth::Permission;

/// Login and refresh bodies: a name, a password or a token, all far smaller. Public routes, so
/// a body is not read further than this.
const AUTH_BODY_LIMIT: usize = 4 * 1024;

/// Every route the runtime serves. Adding one here is the only way to serve it, and the test
/// `tests/tests/route_access.rs` fails until it has an entry for it too.
pub fn routes() -> Vec<Route> {
    use Access::*;
    use Audit::{As, ByService};
    use Permission::*;
    let mut routes = vec![
        // ---- probes and the API's own description ----
        get(
            "/health",
            Public,
            "Liveness: the process answers, and whether its database does",
            health,
        )
        .returns::<Health>().also(&[503]),
        get(
            "/ready",
            Public,
            "Readiness: 200 only when the database answers",
            system::ready,
        )
        .returns::<system::Readiness>().also(&[503]),
        get(
            "/api/v1/openapi.json",
            Public,
            "This API, as an OpenAPI 3 document",
            openapi::document,
        )
        .returns::<serde_json::Value>(),
        // ---- authentication ----
        post(
            "/api/v1/auth/login",
            Public,
            ByService,
            "Sign in with a username and password",
            auth::login,
        )
        .takes::<auth::LoginBody>().returns::<auth::TokenAnswer>()
        .body_limit(AUTH_BODY_LIMIT),
        post(
            "/api/v1/auth/refresh",
            Public,
            ByService,
            "Trade a refresh token for new tokens",
            auth::refresh,
        )
        .takes::<auth::RefreshBody>().returns::<auth::TokenAnswer>()
        .body_limit(AUTH_BODY_LIMIT),
        get(
            "/api/v1/auth/methods",
            Public,
            "How one may sign in here: password, single sign-on",
            sso::methods,
        )
        .returns::<sso::AuthMethods>(),
        get(
            "/api/v1/auth/oidc/start",
            Public,
            "Start a single sign-on: redirects to the OpenID Connect provider",
            sso::start,
        )
        .answers(302, ResponseBody::Redirect),
        get(
            "/api/v1/auth/oidc/callback",
            Public,
            "Where the OpenID Connect provider sends the browser back; redirects to the console",
            sso::callback,
        )
        .query::<sso::CallbackQuery>()
        .answers(302, ResponseBody::Redirect),
        post(
            "/api/v1/auth/logout",
            Authenticated,
            ByService,
            "End the caller's session",
            auth::logout,
        )
        .no_content(),
        get(
            "/api/v1/auth/me",
            Authenticated,
            "Who the caller is",
            auth::me,
        )
        .returns::<auth::Me>(),
        get(
            "/api/v1/auth/sessions",
            Authenticated,
            "The caller's own sessions",
            auth::own_sessions,
        )
        .query::<auth::SessionQuery>().returns::<Vec<crate::store::SessionInfo>>(),
        delete(
            "/api/v1/auth/sessions/{id}",
            Authenticated,
            ByService,
            "End one of the caller's own sessions",
            auth::revoke_own_session,
        )
        .no_content(),
        get(
            "/api/v1/sessions",
            Requires(ManageSessions),
            "Everyone's sessions",
            auth::all_sessions,
        )
        .query::<auth::SessionQuery>().returns::<Vec<crate::store::SessionInfo>>(),
        delete(
            "/api/v1/sessions/{id}",
            Requires(ManageSessions),
            ByService,
            "Revoke anyone's session",
            auth::revoke_any_session,
        )
        .no_content(),
        get(
            "/api/v1/users",
            Requires(ManageUsers),
            "Users",
            auth::list_users,
        )
        .returns::<Vec<crate::store::User>>(),
        post(
            "/api/v1/users",
            Requires(ManageUsers),
            ByService,
            "Create a user",
            auth::create_user,
        )
        .takes::<auth::NewUserBody>().created::<auth::UserWithPassword>(),
        get(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            "One user",
            auth::get_user,
        )
        .returns::<crate::store::User>(),
        put(
            "/api/v1/users/{name}",
            Requires(ManageUsers),
            ByService,
            "Change a user's role, state or password",
            auth::update_user,
        )
        .takes::<auth::UserChange>().returns::<auth::UserWithPassword>(),
        get(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            "API keys (never the keys themselves)",
            auth::list_api_keys,
        )
        .returns::<Vec<crate::store::ApiKeyInfo>>(),
        post(
            "/api/v1/api-keys",
            Requires(ManageApiKeys),
            ByService,
            "Create an API key, shown once",
            auth::create_api_key,
        )
        .takes::<auth::NewApiKeyBody>().created::<auth::NewApiKey>(),
        delete(
            "/api/v1/api-keys/{id}",
            Requires(ManageApiKeys),
            ByService,
            "Revoke an API key",
            auth::revoke_api_key,
        )
        .returns::<crate::store::ApiKeyInfo>(),
        post(
            "/api/v1/auth/signing-keys/rotate",
            Requires(ManageSystem),
            ByService,
            "Rotate the token signing key",
            auth::rotate_signing_key,
        )
        .returns::<auth::RotatedKey>(),
        get(
            "/api/v1/audit",
            Requires(ReadAudit),
            "The audit log, newest first",
            auth::audit_log,
        )
        .query::<auth::AuditQuery>().returns::<auth::AuditPage>(),
        // ---- alerts ----
        get(
            "/api/v1/alerts",
            Requires(Read),
            "Alerts, filtered and paginated",
            alerts::list_alerts,
        )
        .query::<alerts::AlertQuery>().returns::<alerts::AlertPage>(),
        get(
            "/api/v1/alerts/open",
            Requires(Read),
            "Every open alert at once, newest first (what the console holds)",
            alerts::open_alerts,
        )
        .returns::<alerts::OpenAlerts>()
        .compressed(),
        get(
            "/api/v1/alerts/facets",
            Requires(Read),
            "How many open alerts a filter matches, by severity, status, addon, device, category, type and acknowledgement",
            alerts::facets,
        )
        .query::<alerts::FacetQuery>().returns::<crate::filter::Facets>(),
        post(
            "/api/v1/alerts/bulk",
            Requires(ActOnAlerts),
            As("alert.bulk"),
            "One action on many alerts",
            alerts::bulk,
        )
        .takes::<alerts::BulkBody>().returns::<alerts::BulkAnswer>(),
        get(
            "/api/v1/alerts/{id}",
            Requires(Read),
            "One alert",
            alerts::get_alert,
        )
        .returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/acknowledge",
            Requires(ActOnAlerts),
            As("alert.acknowledge"),
            "Acknowledge an alert",
            alerts::acknowledge,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/unacknowledge",
            Requires(ActOnAlerts),
            As("alert.unacknowledge"),
            "Take back an acknowledgement",
            alerts::unacknowledge,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/resolve",
            Requires(ActOnAlerts),
            As("alert.resolve"),
            "Resolve an alert by hand",
            alerts::resolve,
        )
        .takes_optional::<alerts::ActionBody>().returns::<crate::alert::StoredAlert>(),
        post(
            "/api/v1/alerts/{id}/notes",
            Requires(ActOnAlerts),
            As("alert.note"),
            "Add a note to an alert",
            alerts::add_note,
        )
        .takes::<alerts::NoteBody>().created::<crate::store::AlertEvent>(),
        get(
            "/api/v1/alerts/{id}/history",
            Requires(Read),
            "An alert's occurrences, state changes and notes",
            alerts::history,
        )
        .query::<alerts::HistoryQuery>().returns::<crate::store::HistoryPage>(),
        // ---- silences ----
        get(
            "/api/v1/silences",
            Requires(Read),
            "Silences (maintenance windows)",
            silences::list_silences,
        )
        .query::<silences::SilenceQuery>().returns::<silences::SilencePage>(),
        post(
            "/api/v1/silences",
            Requires(ManageSilences),
            As("silence.create"),
            "Create a silence",
            silences::create_silence,
        )
        .takes::<crate::silence::SilenceSpec>().created::<silences::SilenceView>(),
        get(
            "/api/v1/silences/{id}",
            Requires(Read),
            "One silence",
            silences::get_silence,
        )
        .returns::<silences::SilenceView>(),
        post(
            "/api/v1/silences/preview",
            Requires(Read),
            Audit::No,
            "How many open alerts a silence's matchers match (nothing is stored)",
            silences::preview_silence,
        )
        .takes::<silences::PreviewBody>().returns::<silences::SilencePreview>(),
        put(
            "/api/v1/silences/{id}",
            Requires(ManageSilences),
            As("silence.update"),
            "Change a silence",
            silences::update_silence,
        )
        .takes::<crate::silence::SilenceSpec>().returns::<silences::SilenceView>(),
        delete(
            "/api/v1/silences/{id}",
            Requires(ManageSilences),
            As("silence.delete"),
            "Delete a silence",
            silences::delete_silence,
        )
        .no_content(),
        // ---- the console's saved views ----
        get(
            "/api/v1/views",
            Authenticated,
            "The caller's saved console views and everyone's shared ones",
            views::list_views,
        )
        .returns::<views::ViewList>(),
        post(
            "/api/v1/views",
            Authenticated,
            As("view.create"),
            "Save a console view",
            views::create_view,
        )
        .takes::<views::ViewBody>().created::<crate::store::SavedView>(),
        delete(
            "/api/v1/views/{id}",
            Authenticated,
            As("view.delete"),
            "Delete one of the caller's saved views",
            views::delete_view,
        )
        .no_content(),
        // ---- addons ----
        get(
            "/api/v1/addons",
            Requires(Read),
            "Installed addons with their counters",
            list_addons,
        )
        .returns::<Vec<AddonView>>(),
        post(
            "/api/v1/addons",
            Requires(ManageSystem),
            As("addon.install"),
            "Install or upgrade an addon from a bundle file (the raw body); ?accept_capabilities=true to accept wider capabilities",
            addons::install_addon,
        )
        .takes_file().query::<addons::InstallQuery>().created::<crate::bundle::install::BundleInstall>().also(&[200])
        .body_limit(crate::bundle::MAX_BUNDLE_BYTES),
        get(
            "/api/v1/addons/{id}",
            Requires(Read),
            "One installed addon with its manifest",
            addons::get_addon,
        )
        .returns::<addons::AddonDetail>(),
        post(
            "/api/v1/addons/{id}/rollback",
            Requires(ManageSystem),
            As("addon.rollback"),
            "Put back the version the addon's last upgrade replaced",
            addons::rollback_addon,
        )
        .returns::<addons::RolledBack>(),
        post(
            "/api/v1/addons/{id}/release",
            Requires(ConfigureAddons),
            As("addon.release"),
            "Call a quarantined addon again at once, on the node that answers",
            addons::release_addon,
        )
        .returns::<addons::AddonDetail>(),
        post(
            "/api/v1/addons/{id}/enable",
            Requires(ConfigureAddons),
            As("addon.enable"),
            "Enable an addon on every node",
            addons::enable_addon,
        )
        .returns::<addons::AddonDetail>(),
        post(
            "/api/v1/addons/{id}/disable",
            Requires(ConfigureAddons),
            As("addon.disable"),
            "Disable an addon on every node",
            addons::disable_addon,
        )
        .returns::<addons::AddonDetail>(),
        get(
            "/api/v1/addons/{id}/settings",
            Requires(Read),
            "An addon's settings (webhook authentication, allowed networks), secrets shown as \"set\"",
            addons::get_addon_settings,
        )
        .returns::<crate::webhook_auth::PublicSettings>(),
        put(
            "/api/v1/addons/{id}/settings",
            Requires(ConfigureAddons),
            As("addon.settings"),
            "Replace an addon's settings",
            addons::put_addon_settings,
        )
        .takes::<crate::webhook_auth::AddonSettings>().returns::<crate::webhook_auth::PublicSettings>(),
        // ---- targets, credentials, host keys ----
        get(
            "/api/v1/targets",
            Requires(Read),
            "Poll targets",
            targets::list_targets,
        )
        .query::<targets::TargetQuery>().returns::<Vec<crate::target::Target>>(),
        post(
            "/api/v1/targets",
            Requires(ManageTargets),
            As("target.create"),
            "Create a poll target",
            targets::create_target,
        )
        .takes::<crate::target::TargetSpec>().created::<crate::target::Target>(),
        get(
            "/api/v1/targets/{id}",
            Requires(Read),
            "One poll target",
            targets::get_target,
        )
        .returns::<crate::target::Target>(),
        put(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.update"),
            "Change a poll target",
            targets::update_target,
        )
        .takes::<crate::target::TargetSpec>().returns::<crate::target::Target>(),
        delete(
            "/api/v1/targets/{id}",
            Requires(ManageTargets),
            As("target.delete"),
            "Delete a poll target",
            targets::delete_target,
        )
        .no_content(),
        post(
            "/api/v1/targets/{id}/enable",
            Requires(ManageTargets),
            As("target.enable"),
            "Enable a poll target",
            targets::enable_target,
        )
        .returns::<crate::target::Target>(),
        post(
            "/api/v1/targets/{id}/disable",
            Requires(ManageTargets),
            As("target.disable"),
            "Disable a poll target",
            targets::disable_target,
        )
        .returns::<crate::target::Target>(),
        post(
            "/api/v1/targets/{id}/poll",
            Requires(ManageTargets),
            As("target.poll"),
            "Poll a target now",
            targets::poll_target_now,
        )
        .accepted::<crate::target::Target>(),
        get(
            "/api/v1/ssh-host-keys",
            Requires(Read),
            "Pinned SSH host keys",
            targets::list_ssh_host_keys,
        )
        .returns::<Vec<crate::store::PinnedHostKey>>(),
        delete(
            "/api/v1/ssh-host-keys/{endpoint}",
            Requires(ManageTargets),
            As("ssh_host_key.forget"),
            "Forget a pinned SSH host key",
            targets::forget_ssh_host_key,
        )
        .no_content(),
        get(
            "/api/v1/credentials",
            Requires(Read),
            "Poll credentials (public fields only)",
            targets::list_credentials,
        )
        .returns::<Vec<crate::target::CredentialSummary>>(),
        get(
            "/api/v1/credentials/{name}",
            Requires(Read),
            "One poll credential (public fields only)",
            targets::get_credential,
        )
        .returns::<crate::target::CredentialSummary>(),
        put(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.set"),
            "Create or replace a poll credential",
            targets::put_credential,
        )
        .takes::<crate::target::CredentialInput>().returns::<crate::target::CredentialSummary>(),
        delete(
            "/api/v1/credentials/{name}",
            Requires(ManageCredentials),
            As("credential.delete"),
            "Delete a poll credential",
            targets::delete_credential,
        )
        .no_content(),
        // ---- the system ----
        get(
            "/api/v1/stats",
            Requires(Read),
            "Counters of ingest, writer, events and alerts",
            stats,
        )
        .returns::<Stats>(),
        get(
            "/metrics",
            Requires(ReadMetrics),
            "Prometheus metrics of this node: counters, queue depths, latency histograms",
            metrics::scrape,
        )
        .answers(200, ResponseBody::Metrics),
        get(
            "/api/v1/traps/unhandled",
            Requires(Read),
            "Recent traps no addon claims",
            unhandled_traps,
        )
        .returns::<Vec<UnhandledTrap>>(),
        get(
            "/api/v1/system/version",
            Requires(Read),
            "Version, WIT versions and database kind",
            system::version,
        )
        .returns::<system::Version>(),
        get(
            "/api/v1/system/settings",
            Requires(Read),
            "Runtime settings kept in the database",
            system::list_settings,
        )
        .returns::<Vec<system::SettingView>>(),
        put(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.set"),
            "Set a runtime setting",
            system::put_setting,
        )
        .takes::<system::SettingBody>().returns::<system::SettingSet>(),
        delete(
            "/api/v1/system/settings/{key}",
            Requires(ManageSystem),
            As("setting.delete"),
            "Remove a runtime setting",
            system::delete_setting,
        )
        .no_content(),
        // ---- event sources ----
        post(
            "/webhooks/{*path}",
            Webhook,
            Audit::No,
            "Deliver an event to the addon that claims the path",
            webhook::receive,
        )
        .takes::<serde_json::Value>().returns::<webhook::Accepted>(),
        get(
            "/ws",
            Socket,
            "The real-time event WebSocket",
            ws::handler,
        )
        .query::<ws::WsQuery>()
        .answers(101, ResponseBody::Upgrade),
    ];
    // ---- the console: its page at each of its paths, and its assets ----
    for path in dashboard::PAGES {
        routes.push(
            get(path, Public, "The operator console (HTML)", dashboard::page)
                .answers(200, ResponseBody::Html)
                .compressed(),
        );
    }
    routes.push(
        get(
            "/assets/{*file}",
            Public,
            "The operator console's scripts, styles and images",
            dashboard::asset,
        )
        .answers(200, ResponseBody::Asset)
        .compressed(),
    );
    routes
}

//! Single sign-on against a real OpenID Connect provider: the certified `oidc-provider` npm
//! package (`tests/oidc/provider.mjs`) runs as a child process on a loopback port with a static
//! client, and a cookie-keeping HTTP client plays the browser, following every redirect by hand
//! through the provider's development login and consent forms.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use concord::config::{ClaimMappingConfig, ClaimRuleConfig, Config, SsoProviderConfig};
use concord::events::{DomainEvent, Subscription};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::harness::{reply, session, spawn_app_on, Backend, Reply, Session, TestApp, PASSWORD};

const PROVIDER: &str = "test";
const CLIENT_ID: &str = "concord";
const CLIENT_SECRET: &str = "concord-test-secret";

/// The identity provider process; killed when dropped.
struct Idp {
    issuer: String,
    accounts: PathBuf,
    _child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl Idp {
    /// Starts the provider with its client's URLs under Concord's `base`.
    async fn start(base: &str) -> Idp {
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = dir.path().join("accounts.json");
        std::fs::write(&accounts, "{}").expect("accounts file");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/oidc/provider.mjs");
        let log = std::fs::File::create(dir.path().join("provider.log")).expect("log file");
        let mut child = tokio::process::Command::new("node")
            .arg(&script)
            .args([
                "--port",
                "0",
                "--client-id",
                CLIENT_ID,
                "--client-secret",
                CLIENT_SECRET,
            ])
            .arg("--accounts")
            .arg(&accounts)
            .args([
                "--redirect-uri",
                &format!("{base}/auth/oidc/{PROVIDER}/callback"),
            ])
            .args([
                "--backchannel-logout-uri",
                &format!("{base}/auth/oidc/{PROVIDER}/backchannel-logout"),
            ])
            .args(["--post-logout-redirect-uri", &format!("{base}/")])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("node runs tests/oidc/provider.mjs (run npm ci in tests/oidc)");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("provider starts in time")
            .expect("provider stdout")
            .unwrap_or_else(|| {
                let log =
                    std::fs::read_to_string(dir.path().join("provider.log")).unwrap_or_default();
                panic!("provider exited: {log}")
            });
        // The provider keeps writing notices to stdout; keep reading so it never hits a closed pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let issuer = serde_json::from_str::<Value>(&line).expect("issuer line")["issuer"]
            .as_str()
            .expect("issuer")
            .to_owned();
        Idp {
            issuer,
            accounts,
            _child: child,
            _dir: dir,
        }
    }

    /// Sets the claims the provider returns for `login` from now on.
    fn set_account(&self, login: &str, claims: Value) {
        let mut all: Value =
            serde_json::from_str(&std::fs::read_to_string(&self.accounts).unwrap()).unwrap();
        all[login] = claims;
        std::fs::write(&self.accounts, all.to_string()).unwrap();
    }

    /// How many times the provider's discovery document was fetched so far.
    async fn discovery_fetches(&self) -> u64 {
        let counts: Value = reqwest::get(format!("{}/test/requests", self.issuer))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        counts["/.well-known/openid-configuration"]
            .as_u64()
            .unwrap_or(0)
    }

    fn provider_config(&self) -> SsoProviderConfig {
        let rule = |value: &str, workspace: &str, role: &str| ClaimRuleConfig {
            value: value.into(),
            workspace: workspace.into(),
            role: role.into(),
        };
        SsoProviderConfig {
            id: PROVIDER.into(),
            display_name: "Test Identity Provider".into(),
            issuer_url: self.issuer.clone(),
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
            scopes: vec!["email".into(), "profile".into(), "groups".into()],
            allow_email_linking: false,
            jit_provisioning: true,
            claim_mapping: Some(ClaimMappingConfig {
                claim: "groups".into(),
                rules: vec![
                    rule("eng-admins", "eng", "admin"),
                    rule("eng", "eng", "member"),
                    rule("ops", "ops", "member"),
                ],
            }),
        }
    }
}

/// Concord and its identity provider, wired to each other.
async fn spawn_with_idp(backend: Backend) -> (TestApp, Idp) {
    spawn_with_idp_and(backend, |_| {}).await
}

/// Concord and its identity provider, with Concord's configuration adjusted by `adjust` once
/// the provider is in it.
async fn spawn_with_idp_and(backend: Backend, adjust: fn(&mut Config)) -> (TestApp, Idp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = Idp::start(&base).await;
    let provider = idp.provider_config();
    let app = spawn_app_on(backend, listener, move |config: &mut Config| {
        config.sso.providers = vec![provider];
        adjust(config);
    })
    .await;
    (app, idp)
}

/// Moves every row of `table` (pending sign-ins, hand-offs) past its expiry, as if its time
/// had run out.
async fn expire_all(app: &TestApp, table: &str) {
    use sqlx::Connection;
    let past = chrono::Utc::now() - chrono::Duration::hours(1);
    let sql = format!("UPDATE {table} SET expires_at = $1");
    match app.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(&sql).bind(past).execute(&mut c).await.unwrap();
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query(&sql).bind(past).execute(&mut c).await.unwrap();
        }
    }
}

/// A browser: keeps cookies, follows nothing by itself.
struct Browser {
    http: reqwest::Client,
}

fn resolve(current: &str, location: &str) -> String {
    url::Url::parse(current)
        .unwrap()
        .join(location)
        .unwrap()
        .to_string()
}

fn location(resp: &reqwest::Response) -> String {
    let current = resp.url().to_string();
    let loc = resp
        .headers()
        .get("location")
        .expect("a redirect")
        .to_str()
        .unwrap();
    resolve(&current, loc)
}

fn form_action(html: &str) -> String {
    let start = html.find("action=\"").expect("a form") + "action=\"".len();
    let end = html[start..].find('"').unwrap();
    html[start..start + end].replace("&amp;", "&")
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].to_owned())
}

fn with_param(url: &str, name: &str, value: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            if k == name {
                (k.into_owned(), value.to_owned())
            } else {
                (k.into_owned(), v.into_owned())
            }
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    url.to_string()
}

fn param(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .expect(name)
        .1
        .into_owned()
}

impl Browser {
    fn new() -> Browser {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { http }
    }

    /// Opens Concord's login route; returns the provider URL it redirects to.
    async fn begin(&self, app: &TestApp) -> String {
        let resp = self
            .http
            .get(format!("{}/auth/oidc/{PROVIDER}/login", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status().as_u16(),
            303,
            "login redirects to the provider"
        );
        location(&resp)
    }

    /// Walks the provider's pages (login form, consent form) from `url` as `login` until the
    /// provider redirects back to Concord's callback; returns that callback URL, unvisited.
    async fn authorize(&self, app: &TestApp, mut url: String, login: &str) -> String {
        let callback = format!("{}/auth/oidc/{PROVIDER}/callback", app.base);
        for _ in 0..20 {
            if url.starts_with(&callback) {
                return url;
            }
            let resp = self.http.get(&url).send().await.unwrap();
            if resp.status().is_redirection() {
                url = location(&resp);
                continue;
            }
            let page = resp.url().to_string();
            let html = resp.text().await.unwrap();
            let form: Vec<(&str, &str)> = if html.contains("name=\"login\"") {
                vec![
                    ("prompt", "login"),
                    ("login", login),
                    ("password", "any password"),
                ]
            } else if html.contains("value=\"consent\"") {
                vec![("prompt", "consent")]
            } else {
                panic!("unexpected provider page at {page}: {html}");
            };
            let resp = self
                .http
                .post(resolve(&page, &form_action(&html)))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(
                resp.status().is_redirection(),
                "form submitted: {}",
                resp.status()
            );
            url = location(&resp);
        }
        panic!("the provider never redirected back");
    }

    async fn get(&self, url: &str) -> Reply {
        reply(self.http.get(url).send().await.unwrap()).await
    }

    /// Visits `url` as a page navigation (accepting HTML), as a real browser does.
    async fn navigate(&self, url: &str) -> reqwest::Response {
        self.http
            .get(url)
            .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
            .send()
            .await
            .unwrap()
    }

    /// A whole browser sign-in as `login`; returns the hand-off code the web client gets in
    /// the `/sso/callback` fragment.
    async fn sign_in_for_handoff(&self, app: &TestApp, login: &str) -> String {
        let start = self.begin(app).await;
        let callback = self.authorize(app, start, login).await;
        let resp = self.navigate(&callback).await;
        assert_eq!(resp.status().as_u16(), 303);
        let to = resp.headers()["location"].to_str().unwrap().to_owned();
        let fragment = to
            .strip_prefix("/sso/callback#")
            .unwrap_or_else(|| panic!("{to}"));
        let pairs: std::collections::HashMap<String, String> =
            url::form_urlencoded::parse(fragment.as_bytes())
                .into_owned()
                .collect();
        assert_eq!(pairs.len(), 2, "only the provider and the code: {to}");
        assert_eq!(pairs["provider"], PROVIDER);
        pairs["handoff"].clone()
    }

    /// What the web client does with a hand-off code: posts it (with this browser's cookies).
    async fn redeem(&self, app: &TestApp, code: &str) -> Reply {
        let resp = self
            .http
            .post(format!("{}/auth/oidc/{PROVIDER}/handoff", app.base))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap();
        reply(resp).await
    }

    /// A whole sign-in as `login`; returns the callback's answer.
    async fn sign_in(&self, app: &TestApp, login: &str) -> Reply {
        let start = self.begin(app).await;
        let callback = self.authorize(app, start, login).await;
        self.get(&callback).await
    }

    /// Ends the provider session at its end-session URL, confirming the provider's prompt.
    async fn end_provider_session(&self, end_session_url: &str) {
        let resp = self.http.get(end_session_url).send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            200,
            "the provider asks for confirmation"
        );
        let page = resp.url().to_string();
        let html = resp.text().await.unwrap();
        let xsrf = hidden(&html, "xsrf").expect("xsrf field");
        let resp = self
            .http
            .post(resolve(&page, &form_action(&html)))
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await
            .unwrap();
        assert!(
            resp.status().is_redirection(),
            "logout confirmed: {}",
            resp.status()
        );
    }
}

/// Waits for a committed event that `pick` recognises.
async fn expect_event<T>(
    events: &mut Subscription,
    mut pick: impl FnMut(&DomainEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.recv().await.expect("event bus open");
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    })
    .await
    .expect("the event arrives")
}

async fn failure_code(events: &mut Subscription) -> String {
    expect_event(events, |e| match e {
        DomainEvent::SsoSignInFailed { provider, code } if provider == PROVIDER => {
            Some(code.clone())
        }
        _ => None,
    })
    .await
}

async fn user_emails(app: &TestApp, admin: &Session) -> Vec<String> {
    let list = app.get("/api/v1/users", &admin.access).await;
    let body = list.expect(200).clone();
    let items = body.get("items").cloned().unwrap_or(body);
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap().to_owned())
        .collect()
}

async fn my_roles(app: &TestApp, who: &Session) -> Vec<(String, String)> {
    let list = app.get("/api/v1/workspaces", &who.access).await;
    let mut roles: Vec<(String, String)> = list
        .expect(200)
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["slug"].as_str().unwrap().to_owned(),
                w["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    roles.sort();
    roles
}

fn roles(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

macro_rules! with_idp {
    ($(async fn $name:ident($app:ident, $idp:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: TestApp, $idp: Idp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (app, idp) = spawn_with_idp(Backend::Sqlite).await;
                    body(app, idp).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let (app, idp) = spawn_with_idp(Backend::Postgres).await;
                    body(app, idp).await
                }
            }
        )*
    };
}

with_idp! {
    async fn first_login_creates_the_account_and_claims_move_roles(app, idp) {
        let admin = app.bootstrap_admin().await;
        let eng = app.create_workspace(&admin, "Eng").await;
        app.create_workspace(&admin, "Ops").await;
        let manual = app.create_workspace(&admin, "Manual").await;

        // The sign-in page lists the provider.
        let providers = app.call(Method::GET, "/api/v1/auth/providers", None, None).await;
        let providers = providers.expect(200).clone();
        assert_eq!(providers[0]["id"], PROVIDER);
        assert_eq!(providers[0]["login_url"], format!("{}/auth/oidc/{PROVIDER}/login", app.base).as_str());

        idp.set_account("cy", json!({"email": "cy@example.org", "email_verified": true, "name": "Cy Cole", "groups": ["eng"]}));
        let mut events = app.events.subscribe();
        let browser = Browser::new();
        let first = browser.sign_in(&app, "cy").await;
        let cy = session(first.expect(200));
        let created = expect_event(&mut events, |e| match e {
            DomainEvent::SsoSignedIn { user_id, account_created, provider, .. } if provider == PROVIDER => {
                Some((user_id.to_string(), *account_created))
            }
            _ => None,
        })
        .await;
        assert_eq!(created, (cy.user_id.clone(), true), "the first sign-in creates the account");

        // The session is a normal Concord session, marked as single sign-on.
        let me = app.get("/api/v1/users/me", &cy.access).await;
        assert_eq!(me.expect(200)["email"], "cy@example.org");
        assert_eq!(me.body["display_name"], "Cy Cole");
        let sessions = app.get("/api/v1/users/me/sessions", &cy.access).await;
        assert_eq!(sessions.expect(200)[0]["auth_method"], format!("oidc:{PROVIDER}").as_str());
        assert_eq!(my_roles(&app, &cy).await, roles(&[("eng", "member")]));
        let refreshed = app.post("/api/v1/auth/refresh", None, json!({"refresh_token": cy.refresh})).await;
        refreshed.expect(200);

        // A manual membership is not the mapping's to manage.
        app.add_member(&admin, &manual, &cy, "guest").await;

        // New groups at the provider: promoted in eng, added to ops.
        idp.set_account("cy", json!({"email": "cy@example.org", "email_verified": true, "name": "Cy Cole", "groups": ["eng-admins", "ops"]}));
        let second = session(browser.sign_in(&app, "cy").await.expect(200));
        assert_eq!(second.user_id, cy.user_id, "the second sign-in reuses the account");
        assert_eq!(my_roles(&app, &second).await, roles(&[("eng", "admin"), ("manual", "guest"), ("ops", "member")]));
        let members = app.get(&format!("/api/v1/workspaces/{eng}/members"), &admin.access).await;
        assert!(members.expect(200).as_array().unwrap().iter().any(|m| m["email"] == "cy@example.org" && m["role"] == "admin"));

        // Removed from every group: the mapped memberships go, the manual one stays.
        idp.set_account("cy", json!({"email": "cy@example.org", "email_verified": true, "name": "Cy Cole", "groups": []}));
        let third = session(browser.sign_in(&app, "cy").await.expect(200));
        assert_eq!(third.user_id, cy.user_id);
        assert_eq!(my_roles(&app, &third).await, roles(&[("manual", "guest")]));
        assert_eq!(user_emails(&app, &admin).await.iter().filter(|e| *e == "cy@example.org").count(), 1);

        // What the provider told us about Cy (email, name, the ID token's claims) is stored
        // only encrypted.
        if app.backend == Backend::Sqlite {
            app.checkpoint_sqlite().await;
            let mut raw = Vec::new();
            for name in ["concord.db", "concord.db-wal"] {
                raw.extend(std::fs::read(app.data_dir.join(name)).unwrap_or_default());
            }
            for needle in ["cy@example.org", "Cy Cole"] {
                assert!(!raw.windows(needle.len()).any(|w| w == needle.as_bytes()), "{needle} stored in plaintext");
            }
        }
    }

    async fn provider_logout_revokes_sessions(app, idp) {
        app.bootstrap_admin().await;
        idp.set_account("dee", json!({"email": "dee@example.org", "email_verified": true, "name": "Dee", "groups": []}));
        let browser = Browser::new();
        let laptop = session(browser.sign_in(&app, "dee").await.expect(200));
        let tab = session(browser.sign_in(&app, "dee").await.expect(200));
        assert_ne!(laptop.session_id, tab.session_id);
        // A password session of another account is not touched.
        let admin = app.login("admin@example.org", PASSWORD).await;

        // Signing out of Concord names the provider's end-session URL with an id_token_hint.
        let mut events = app.events.subscribe();
        let out = app.call(Method::POST, "/api/v1/auth/logout", Some(&laptop.access), None).await;
        let end_session_url = out.expect(200)["end_session_url"].as_str().expect("end_session_url").to_owned();
        assert!(end_session_url.starts_with(&idp.issuer));
        assert!(!param(&end_session_url, "id_token_hint").is_empty());
        app.get("/api/v1/users/me", &laptop.access).await.expect_error(401, "session_revoked");
        app.get("/api/v1/users/me", &tab.access).await.expect(200);

        // Ending the provider session makes the provider send a back-channel logout, which
        // revokes the other session begun through it.
        browser.end_provider_session(&end_session_url).await;
        let revoked = expect_event(&mut events, |e| match e {
            DomainEvent::SessionsRevoked { sessions, reason, .. } if reason == "sso_backchannel_logout" => {
                Some(sessions.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .await;
        assert_eq!(revoked, vec![tab.session_id.clone()]);
        app.get("/api/v1/users/me", &tab.access).await.expect_error(401, "session_revoked");
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": tab.refresh})).await
            .expect_error(401, "session_revoked");
        app.get("/api/v1/users/me", &admin.access).await.expect(200);

        // A forged logout token is refused and changes nothing.
        let forged = app.client
            .post(format!("{}/auth/oidc/{PROVIDER}/backchannel-logout", app.base))
            .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJkZWUifQ.")])
            .send()
            .await
            .unwrap();
        reply(forged).await.expect_error(400, "sso_invalid_logout_token");
    }

    async fn tampered_state_replayed_code_and_wrong_nonce_are_refused(app, idp) {
        let admin = app.bootstrap_admin().await;
        idp.set_account("eve", json!({"email": "eve@example.org", "email_verified": true, "name": "Eve", "groups": []}));
        let mut events = app.events.subscribe();

        // Tampered state: no pending sign-in matches, nothing is created.
        let browser = Browser::new();
        let start = browser.begin(&app).await;
        let callback = browser.authorize(&app, start, "eve").await;
        let tampered = with_param(&callback, "state", "forged-state");
        browser.get(&tampered).await.expect_error(401, "sso_state_mismatch");
        assert_eq!(failure_code(&mut events).await, "sso_state_mismatch");
        assert!(!user_emails(&app, &admin).await.contains(&"eve@example.org".to_owned()));

        // Wrong nonce: the provider signs the nonce it was given, which is not ours.
        let browser = Browser::new();
        let start = browser.begin(&app).await;
        let start = with_param(&start, "nonce", "attacker-chosen-nonce");
        let callback = browser.authorize(&app, start, "eve").await;
        browser.get(&callback).await.expect_error(401, "sso_nonce_mismatch");
        assert_eq!(failure_code(&mut events).await, "sso_nonce_mismatch");
        assert!(!user_emails(&app, &admin).await.contains(&"eve@example.org".to_owned()));

        // A good sign-in, then its callback replayed: refused, no second session.
        let browser = Browser::new();
        let start = browser.begin(&app).await;
        let callback = browser.authorize(&app, start, "eve").await;
        let eve = session(browser.get(&callback).await.expect(200));
        browser.get(&callback).await.expect_error(401, "sso_state_mismatch");
        assert_eq!(failure_code(&mut events).await, "sso_state_mismatch");

        // The used code under a fresh, valid state: the provider refuses it.
        let start = browser.begin(&app).await;
        let fresh = browser.authorize(&app, start, "eve").await;
        let replayed = with_param(&fresh, "code", &param(&callback, "code"));
        browser.get(&replayed).await.expect_error(401, "sso_code_rejected");
        assert_eq!(failure_code(&mut events).await, "sso_code_rejected");

        let sessions = app.get("/api/v1/users/me/sessions", &eve.access).await;
        assert_eq!(sessions.expect(200).as_array().unwrap().len(), 1, "refused sign-ins leave no session");
    }

    async fn a_browser_sign_in_is_handed_only_to_the_browser_that_began_it(app, idp) {
        app.bootstrap_admin().await;
        idp.set_account("fay", json!({"email": "fay@example.org", "email_verified": true, "name": "Fay", "groups": []}));
        let mut events = app.events.subscribe();
        let fay_browser = Browser::new();

        // Signed in: a 303 to /sso/callback with a one-time code in the fragment, no tokens.
        // The web client redeems it from the same browser (its cookie goes along): a token pair
        // that works. The code is good once.
        let code = fay_browser.sign_in_for_handoff(&app, "fay").await;
        let redeemed = fay_browser.redeem(&app, &code).await;
        let fay = session(redeemed.expect(200));
        let me = app.get("/api/v1/users/me", &fay.access).await;
        assert_eq!(me.expect(200)["email"], "fay@example.org");
        app.post("/api/v1/auth/refresh", None, json!({"refresh_token": fay.refresh})).await.expect(200);
        fay_browser.redeem(&app, &code).await.expect_error(401, "sso_handoff_invalid");

        // A code planted in another browser (the login CSRF: an attacker's own sign-in handed to
        // a victim through a link) is refused there, with no cookie or with that browser's own
        // cookie, and is spent.
        let attacker_code = fay_browser.sign_in_for_handoff(&app, "fay").await;
        let victim = Browser::new();
        victim.redeem(&app, &attacker_code).await.expect_error(401, "sso_handoff_invalid");
        assert_eq!(failure_code(&mut events).await, "sso_handoff_invalid");
        fay_browser.redeem(&app, &attacker_code).await.expect_error(401, "sso_handoff_invalid");
        let attacker_code = fay_browser.sign_in_for_handoff(&app, "fay").await;
        victim.begin(&app).await; // the victim's browser holds a sign-in cookie of its own
        victim.redeem(&app, &attacker_code).await.expect_error(401, "sso_handoff_invalid");
        assert_eq!(failure_code(&mut events).await, "sso_handoff_invalid");
        victim.redeem(&app, "made-up-code").await.expect_error(401, "sso_handoff_invalid");

        // A code not redeemed in time is refused.
        let late = fay_browser.sign_in_for_handoff(&app, "fay").await;
        expire_all(&app, "sso_handoffs").await;
        fay_browser.redeem(&app, &late).await.expect_error(401, "sso_handoff_expired");
        assert_eq!(failure_code(&mut events).await, "sso_handoff_expired");

        // Only the redeemed sign-in left a live session: the refused hand-offs' sessions ended.
        let sessions = app.get("/api/v1/users/me/sessions", &fay.access).await;
        let sessions = sessions.expect(200).as_array().unwrap().clone();
        assert_eq!(sessions.len(), 1, "{sessions:?}");

        // An API client (no HTML) still gets the token pair as JSON from the callback.
        let api = Browser::new().sign_in(&app, "fay").await;
        assert!(api.expect(200)["access_token"].is_string());

        // Refused (the callback replayed): sent on with the stable code and a sentence, no tokens.
        let start = fay_browser.begin(&app).await;
        let callback = fay_browser.authorize(&app, start, "fay").await;
        fay_browser.navigate(&callback).await;
        let resp = fay_browser.navigate(&callback).await;
        assert_eq!(resp.status().as_u16(), 303);
        let to = resp.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.starts_with("/sso/callback?error=sso_state_mismatch&message="), "{to}");
        assert!(!to.contains("token") && !to.contains("handoff"), "{to}");
    }

    async fn unknown_key_logout_tokens_refresh_the_provider_keys_at_most_once(app, idp) {
        app.bootstrap_admin().await;
        idp.set_account("gil", json!({"email": "gil@example.org", "email_verified": true, "name": "Gil", "groups": []}));
        // A sign-in has fetched the provider's metadata and keys.
        let browser = Browser::new();
        session(browser.sign_in(&app, "gil").await.expect(200));
        let before = idp.discovery_fetches().await;
        assert!(before >= 1);

        // A burst of logout tokens naming keys nobody has: each is refused, and together they
        // cost at most one fetch from the provider.
        use base64::Engine;
        let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let burst = (0..20).map(|i| {
            let token = format!(
                "{}.{}.c2lnbmF0dXJl",
                b64(json!({"alg": "RS256", "typ": "logout+jwt", "kid": format!("no-such-key-{i}")})),
                b64(json!({"iss": idp.issuer, "sub": "gil", "aud": CLIENT_ID})),
            );
            let request = app.client
                .post(format!("{}/auth/oidc/{PROVIDER}/backchannel-logout", app.base))
                .form(&[("logout_token", token)])
                .send();
            async move { reply(request.await.unwrap()).await }
        });
        for refused in futures::future::join_all(burst).await {
            refused.expect_error(400, "sso_invalid_logout_token");
        }
        let after = idp.discovery_fetches().await;
        assert!(after - before <= 1, "{} fetches for one burst", after - before);

        // Signing in still works.
        session(browser.sign_in(&app, "gil").await.expect(200));
    }

    async fn accounts_are_not_linked_by_email_unless_allowed(app, idp) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "fay@example.org", "Fay").await;
        idp.set_account("fay", json!({"email": "fay@example.org", "email_verified": true, "name": "Fay", "groups": []}));
        let mut events = app.events.subscribe();
        Browser::new().sign_in(&app, "fay").await.expect_error(401, "sso_account_exists");
        assert_eq!(failure_code(&mut events).await, "sso_account_exists");
        app.login("fay@example.org", PASSWORD).await;
    }
}

/// Like `with_idp!`, with Concord's configuration adjusted by the function named after `config`.
macro_rules! with_idp_config {
    ($(async fn $name:ident($app:ident, $idp:ident) config $adjust:path; $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn body($app: TestApp, $idp: Idp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let (app, idp) = spawn_with_idp_and(Backend::Sqlite, $adjust).await;
                    body(app, idp).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let (app, idp) = spawn_with_idp_and(Backend::Postgres, $adjust).await;
                    body(app, idp).await
                }
            }
        )*
    };
}

fn email_linking(config: &mut Config) {
    config.sso.providers[0].allow_email_linking = true;
}

fn three_pending_sign_ins(config: &mut Config) {
    config.sso.max_pending_sign_ins = 3;
}

fn behind_a_proxy(config: &mut Config) {
    config.http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
}

/// Begins a sign-in as a client the proxy relays for `address`; returns the answer.
async fn begin_from(app: &TestApp, address: &str) -> Reply {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let resp = http
        .get(format!("{}/auth/oidc/{PROVIDER}/login", app.base))
        .header("x-forwarded-for", address)
        .send()
        .await
        .unwrap();
    reply(resp).await
}

with_idp_config! {
    async fn email_linking_trusts_only_verified_emails_of_accounts_without_a_system_role(app, idp) config email_linking; {
        let admin = app.bootstrap_admin().await;
        let refused = |login: &'static str, email: &'static str| {
            let (app, idp) = (&app, &idp);
            async move {
                idp.set_account(login, json!({"email": email, "email_verified": true, "name": login, "groups": []}));
                let mut events = app.events.subscribe();
                Browser::new().sign_in(app, login).await.expect_error(401, "sso_account_exists");
                assert_eq!(failure_code(&mut events).await, "sso_account_exists", "{email}");
            }
        };

        // System admins and compliance officers are never reached through a provider's email,
        // even one an administrator entered: the setup admin, an admin made later, an officer.
        refused("root", "admin@example.org").await;
        let second = app.create_user(&admin, "second-admin@example.org", "Second Admin").await;
        app.put(&format!("/api/v1/users/{second}/system-role"), &admin.access, json!({"role": "system_admin"})).await.expect(200);
        refused("second", "second-admin@example.org").await;
        let officer = app.create_user(&admin, "officer@example.org", "Officer").await;
        app.put(&format!("/api/v1/users/{officer}/system-role"), &admin.access, json!({"role": "compliance_officer"})).await.expect(200);
        refused("officer", "officer@example.org").await;

        // An account made by accepting an invitation has an email nobody verified.
        let ws = app.create_workspace(&admin, "Team").await;
        let inv = app.post(&format!("/api/v1/workspaces/{ws}/invitations"), Some(&admin.access), json!({})).await;
        let token = inv.expect(201)["token"].as_str().unwrap().to_owned();
        app.post(&format!("/api/v1/invitations/{token}/accept"), None,
            json!({"email": "invitee@example.org", "display_name": "Invitee", "password": PASSWORD})).await.expect(201);
        refused("invitee", "invitee@example.org").await;

        // None of them was linked: each still signs in with a password only.
        app.login("second-admin@example.org", PASSWORD).await;
        app.login("invitee@example.org", PASSWORD).await;
        let emails = user_emails(&app, &admin).await;
        assert_eq!(emails.len(), 4, "no account was created either: {emails:?}");

        // An account an administrator made is linked by its verified email, once.
        let pat = app.create_user(&admin, "pat@example.org", "Pat").await;
        idp.set_account("pat", json!({"email": "pat@example.org", "email_verified": true, "name": "Pat", "groups": []}));
        let linked = session(Browser::new().sign_in(&app, "pat").await.expect(200));
        assert_eq!(linked.user_id, pat);
        // Not if the provider has not verified it.
        app.create_user(&admin, "quinn@example.org", "Quinn").await;
        idp.set_account("quinn", json!({"email": "quinn@example.org", "email_verified": false, "name": "Quinn", "groups": []}));
        Browser::new().sign_in(&app, "quinn").await.expect_error(401, "sso_account_exists");
        // An account the provider created with a verified email is linkable by another
        // provider subject claiming the same verified email.
        idp.set_account("rae", json!({"email": "rae@example.org", "email_verified": true, "name": "Rae", "groups": []}));
        let rae = session(Browser::new().sign_in(&app, "rae").await.expect(200));
        idp.set_account("rae-again", json!({"email": "rae@example.org", "email_verified": true, "name": "Rae", "groups": []}));
        let again = session(Browser::new().sign_in(&app, "rae-again").await.expect(200));
        assert_eq!(again.user_id, rae.user_id);
    }

    async fn pending_sign_ins_are_bounded_and_expire(app, idp) config three_pending_sign_ins; {
        app.bootstrap_admin().await;
        idp.set_account("hal", json!({"email": "hal@example.org", "email_verified": true, "name": "Hal", "groups": []}));
        let mut events = app.events.subscribe();
        let browsers = [Browser::new(), Browser::new(), Browser::new()];
        let mut starts = Vec::new();
        for b in &browsers {
            starts.push(b.begin(&app).await);
        }

        // The fourth sign-in in progress is refused with a clear code and a time to retry.
        let full = app.call(Method::GET, &format!("/auth/oidc/{PROVIDER}/login"), None, None).await;
        full.expect_error(503, "sso_busy");
        assert_eq!(full.headers["retry-after"], "60");
        assert!(full.headers.get("set-cookie").is_none());
        // Turning a caller away writes nothing, not even a failed sign-in (which would have been
        // published before the answer).
        while let Ok(event) = events.try_recv() {
            assert!(!matches!(event, DomainEvent::SsoSignInFailed { .. }), "{event:?}");
        }

        // A finished sign-in frees its place.
        let callback = browsers[0].authorize(&app, starts.remove(0), "hal").await;
        session(browsers[0].get(&callback).await.expect(200));
        let fourth = Browser::new();
        fourth.begin(&app).await;
        app.call(Method::GET, &format!("/auth/oidc/{PROVIDER}/login"), None, None).await
            .expect_error(503, "sso_busy");

        // So does one left unfinished past its expiry.
        expire_all(&app, "sso_login_states").await;
        let fresh = Browser::new();
        let start = fresh.begin(&app).await;
        let callback = fresh.authorize(&app, start, "hal").await;
        session(fresh.get(&callback).await.expect(200));
        // The expired ones are gone for good.
        let callback = browsers[1].authorize(&app, starts.remove(0), "hal").await;
        browsers[1].get(&callback).await.expect_error(401, "sso_state_mismatch");
    }

    async fn one_network_cannot_fill_the_pending_sign_ins(app, idp) config behind_a_proxy; {
        app.bootstrap_admin().await;
        idp.set_account("ivy", json!({"email": "ivy@example.org", "email_verified": true, "name": "Ivy", "groups": []}));
        // One address begins its share of sign-ins; the next is turned away, saying when to
        // come back, and without a cookie.
        for _ in 0..30 {
            assert_eq!(begin_from(&app, "203.0.113.5").await.status, 303);
        }
        let refused = begin_from(&app, "203.0.113.5").await;
        refused.expect_error(503, "sso_busy");
        let retry: u64 = refused.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!(retry > 0 && retry <= 600, "{retry}");
        assert!(refused.headers.get("set-cookie").is_none());
        // Every address of one IPv6 /64 counts as that one network.
        for host in 0..30 {
            assert_eq!(begin_from(&app, &format!("2001:db8::{host:x}")).await.status, 303);
        }
        begin_from(&app, "2001:db8::ffff").await.expect_error(503, "sso_busy");
        // Everyone else still begins and finishes a sign-in.
        assert_eq!(begin_from(&app, "203.0.113.6").await.status, 303);
        session(Browser::new().sign_in(&app, "ivy").await.expect(200));
    }
}

crate::harness::both_backends! {
    async fn a_workspace_can_require_single_sign_on(app) {
        let admin = app.bootstrap_admin().await;
        app.create_user(&admin, "gus@example.org", "Gus").await;
        let gus = app.login("gus@example.org", PASSWORD).await;
        let ws = app.create_workspace(&admin, "Secure").await;
        app.add_member(&admin, &ws, &gus, "member").await;

        let rule = app.get(&format!("/api/v1/workspaces/{ws}/sso"), &gus.access).await;
        assert_eq!(rule.expect(200)["required"], false);
        // A member may not change it.
        app.put(&format!("/api/v1/workspaces/{ws}/sso"), &gus.access, json!({"required": true})).await
            .expect_error(403, "forbidden");
        let set = app.put(&format!("/api/v1/workspaces/{ws}/sso"), &admin.access, json!({"required": true})).await;
        assert_eq!(set.expect(200)["required"], true);

        // Members are refused password sign-in; the system admin keeps it (break-glass).
        app.post("/api/v1/auth/login", None, json!({"email": "gus@example.org", "password": PASSWORD})).await
            .expect_error(403, "sso_required");
        app.login("admin@example.org", PASSWORD).await;
        // A wrong password still reads as a wrong password.
        app.post("/api/v1/auth/login", None, json!({"email": "gus@example.org", "password": "wrong password here"})).await
            .expect_error(401, "invalid_credentials");

        app.put(&format!("/api/v1/workspaces/{ws}/sso"), &admin.access, json!({"required": false})).await.expect(200);
        app.login("gus@example.org", PASSWORD).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_provider_is_a_clear_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_on(Backend::Sqlite, listener, move |config: &mut Config| {
        config.sso.providers = vec![SsoProviderConfig {
            id: "down".into(),
            display_name: "Down".into(),
            issuer_url: dead,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.to_owned().into(),
            scopes: vec!["email".into()],
            allow_email_linking: false,
            jit_provisioning: true,
            claim_mapping: None,
        }];
    })
    .await;
    let mut events = app.events.subscribe();
    let r = app
        .call(Method::GET, "/auth/oidc/down/login", None, None)
        .await;
    r.expect_error(502, "sso_provider_unavailable");
    let code = expect_event(&mut events, |e| match e {
        DomainEvent::SsoSignInFailed { provider, code } if provider == "down" => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(code, "sso_provider_unavailable");
    app.call(Method::GET, "/auth/oidc/nobody/login", None, None)
        .await
        .expect_error(404, "not_found");
}

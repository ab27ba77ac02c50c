//! A team on a fresh Concord, set up over REST the way users would: the first administrator,
//! N accounts created concurrently by the administrator and each signed in, one workspace
//! they join through multi-use invitations, and one public channel they all join.
//!
//! Argon2 makes every account creation and sign-in cost tens of milliseconds of CPU, so the
//! requests go `SETUP_CONCURRENCY` at a time and the server's own hashing cap does the rest.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::{json, Value};

/// Requests in flight during setup.
const SETUP_CONCURRENCY: usize = 16;
/// Uses per invitation (the server's maximum).
const INVITATION_USES: usize = 1000;
/// A password that meets the policy.
const PASSWORD: &str = "correct horse battery staple bench";
/// Longest one setup request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// One signed-in member.
pub struct Member {
    /// Their bearer access token.
    pub access: String,
}

/// Everything the measurements need.
pub struct Team {
    /// The first administrator's bearer access token (workspace owner).
    pub admin: String,
    /// The workspace every member belongs to.
    pub workspace_id: String,
    /// The public channel every member joined.
    pub channel_id: String,
    /// The members, in creation order.
    pub members: Vec<Member>,
    /// How long setting up took.
    pub took: Duration,
}

/// A client for setup requests.
pub fn client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(SETUP_CONCURRENCY * 2)
        .build()
        .context("building the HTTP client")
}

/// Sends `body` to `path`, expecting `expected`; returns the JSON answer (Null if empty).
pub async fn call(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
    expected: u16,
) -> anyhow::Result<Value> {
    let mut request = client.post(format!("{base}{path}")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("POST {path}"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("POST {path}: body"))?;
    if status.as_u16() != expected {
        let end = text.len().min(300);
        bail!(
            "POST {path} answered {status}: {}",
            text.get(..end).unwrap_or("")
        );
    }
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("POST {path}: a non-JSON answer"))
}

pub fn field(value: &Value, key: &str) -> anyhow::Result<String> {
    value[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no `{key}` in {value}"))
}

/// Runs `f(i)` for every `i < count`, `SETUP_CONCURRENCY` at a time, in order of `i`.
async fn each<T, F, Fut>(what: &str, count: usize, f: F) -> anyhow::Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    let started = Instant::now();
    let mut done = 0usize;
    let mut results: Vec<(usize, T)> = Vec::with_capacity(count);
    let mut stream = futures::stream::iter(0..count)
        .map(|i| {
            let fut = f(i);
            async move { fut.await.map(|t| (i, t)) }
        })
        .buffer_unordered(SETUP_CONCURRENCY);
    while let Some(result) = stream.next().await {
        results.push(result.with_context(|| what.to_string())?);
        done += 1;
        if done % 250 == 0 || done == count {
            eprintln!(
                "  {what}: {done}/{count} ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    results.sort_by_key(|(i, _)| *i);
    Ok(results.into_iter().map(|(_, t)| t).collect())
}

/// Sets up `members` signed-in members of one public channel on the server at `base`.
pub async fn setup(base: &str, setup_token: &str, members: usize) -> anyhow::Result<Team> {
    let started = Instant::now();
    let client = client()?;
    let base = Arc::new(base.to_owned());
    call(
        &client,
        &base,
        "/api/v1/setup",
        None,
        json!({"token": setup_token, "email": "bench-admin@example.org",
               "display_name": "Bench Admin", "password": PASSWORD}),
        201,
    )
    .await?;
    let admin = call(
        &client,
        &base,
        "/api/v1/auth/login",
        None,
        json!({"email": "bench-admin@example.org", "password": PASSWORD}),
        200,
    )
    .await?;
    let admin = Arc::new(field(&admin, "access_token")?);
    let workspace = call(
        &client,
        &base,
        "/api/v1/workspaces",
        Some(&admin),
        json!({"name": "Bench"}),
        201,
    )
    .await?;
    let workspace = field(&workspace, "id")?;
    let channel = call(
        &client,
        &base,
        &format!("/api/v1/workspaces/{workspace}/channels"),
        Some(&admin),
        json!({"name": "general", "visibility": "public"}),
        201,
    )
    .await?;
    let channel_id = field(&channel, "id")?;

    each("creating accounts", members, |i| {
        let (client, base, admin) = (client.clone(), base.clone(), admin.clone());
        async move {
            call(
                &client,
                &base,
                "/api/v1/users",
                Some(&admin),
                json!({"email": format!("member{i}@example.org"),
                       "display_name": format!("Member {i}"), "password": PASSWORD}),
                201,
            )
            .await
        }
    })
    .await?;
    let tokens: Vec<String> = each("signing in", members, |i| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            let pair = call(
                &client,
                &base,
                "/api/v1/auth/login",
                None,
                json!({"email": format!("member{i}@example.org"), "password": PASSWORD}),
                200,
            )
            .await?;
            field(&pair, "access_token")
        }
    })
    .await?;

    let mut invitations = Vec::new();
    for chunk in 0..members.div_ceil(INVITATION_USES) {
        let uses = (members - chunk * INVITATION_USES).min(INVITATION_USES);
        let inv = call(
            &client,
            &base,
            &format!("/api/v1/workspaces/{workspace}/invitations"),
            Some(&admin),
            json!({"role": "member", "max_uses": uses}),
            201,
        )
        .await?;
        invitations.push(field(&inv, "token")?);
    }
    let invitations = Arc::new(invitations);
    let tokens = Arc::new(tokens);
    each("accepting invitations", members, |i| {
        let (client, base) = (client.clone(), base.clone());
        let (invitations, tokens) = (invitations.clone(), tokens.clone());
        async move {
            let invitation = &invitations[i / INVITATION_USES];
            call(
                &client,
                &base,
                &format!("/api/v1/invitations/{invitation}/accept"),
                Some(&tokens[i]),
                json!({}),
                201,
            )
            .await
        }
    })
    .await?;
    each("joining the channel", members, |i| {
        let (client, base, tokens) = (client.clone(), base.clone(), tokens.clone());
        let path = format!("/api/v1/channels/{channel_id}/join");
        async move { call(&client, &base, &path, Some(&tokens[i]), json!({}), 200).await }
    })
    .await?;

    let members = tokens
        .iter()
        .map(|access| Member {
            access: access.clone(),
        })
        .collect();
    Ok(Team {
        admin: admin.as_ref().clone(),
        workspace_id: workspace,
        channel_id,
        members,
        took: started.elapsed(),
    })
}

//! Access tokens: forged, expired, algorithm-swapped and malformed tokens are refused.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use crate::harness::{both_backends, TestApp};

fn signing_key(app: &TestApp) -> (String, Vec<u8>) {
    let text = std::fs::read_to_string(app.data_dir.join("keys/access-token.keys")).unwrap();
    let (kid, secret) = text.lines().next().unwrap().split_once(' ').unwrap();
    (kid.to_owned(), STANDARD.decode(secret).unwrap())
}

fn claims(sub: &str, sid: &str, exp_offset: i64) -> serde_json::Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub, "sid": sid, "iss": "concord", "aud": "concord-api", "iat": now, "exp": now + exp_offset})
}

both_backends! {
    async fn only_genuine_current_tokens_are_accepted(app) {
        let admin = app.bootstrap_admin().await;
        let (kid, secret) = signing_key(&app);
        let sign = |alg: Algorithm, kid: &str, secret: &[u8], claims: serde_json::Value| {
            let header = Header { kid: Some(kid.to_owned()), ..Header::new(alg) };
            encode(&header, &claims, &EncodingKey::from_secret(secret)).unwrap()
        };
        let me = |token: String| {
            let app = &app;
            async move { app.get("/api/v1/users/me", &token).await }
        };

        // A token we sign the same way works: the test's understanding is right.
        let good = sign(Algorithm::HS256, &kid, &secret, claims(&admin.user_id, &admin.session_id, 600));
        me(good).await.expect(200);

        // Expired.
        let expired = sign(Algorithm::HS256, &kid, &secret, claims(&admin.user_id, &admin.session_id, -120));
        me(expired).await.expect_error(401, "token_expired");
        // Forged: right shape, wrong key.
        let forged = sign(Algorithm::HS256, &kid, b"an attacker's key of thirty-two bytes!", claims(&admin.user_id, &admin.session_id, 600));
        me(forged).await.expect_error(401, "invalid_token");
        // Algorithm swapped to HS512 with the real key.
        let swapped = sign(Algorithm::HS512, &kid, &secret, claims(&admin.user_id, &admin.session_id, 600));
        me(swapped).await.expect_error(401, "invalid_token");
        // alg: none.
        let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
        let body = URL_SAFE_NO_PAD.encode(claims(&admin.user_id, &admin.session_id, 600).to_string());
        me(format!("{header}.{body}.")).await.expect_error(401, "invalid_token");
        // Unknown key id, wrong audience, wrong issuer.
        me(sign(Algorithm::HS256, "other-kid", &secret, claims(&admin.user_id, &admin.session_id, 600))).await
            .expect_error(401, "invalid_token");
        let mut c = claims(&admin.user_id, &admin.session_id, 600);
        c["aud"] = json!("someone-else");
        me(sign(Algorithm::HS256, &kid, &secret, c)).await.expect_error(401, "invalid_token");
        let mut c = claims(&admin.user_id, &admin.session_id, 600);
        c["iss"] = json!("evil");
        me(sign(Algorithm::HS256, &kid, &secret, c)).await.expect_error(401, "invalid_token");
        // A valid signature over someone else's session id: the session does not match.
        let other = sign(Algorithm::HS256, &kid, &secret, claims(&admin.user_id, &uuid::Uuid::now_v7().to_string(), 600));
        me(other).await.expect_error(401, "session_revoked");
        // Garbage and wrong schemes.
        me("garbage".into()).await.expect_error(401, "invalid_token");
        let basic = app.client.get(format!("{}/api/v1/users/me", app.base)).header("authorization", "Basic YTpi").send().await.unwrap();
        crate::harness::reply(basic).await.expect_error(401, "invalid_token");
        app.call(reqwest::Method::GET, "/api/v1/users/me", None, None).await.expect_error(401, "unauthenticated");
    }
}

//! Logging in with the form, a page, logging out; the redirect to the form; the failed-login
//! limits; static assets.

use axum::http::StatusCode;
use updraft_rest_api::auth::Role;

use crate::fixture::{username, Ui, PASSWORD};

#[tokio::test]
async fn a_page_without_a_session_redirects_to_the_login_form_and_back() {
    let ui = Ui::start().await;
    let mut browser = ui.browser();
    let answer = browser.get("/dags?search=etl").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(
        answer.location(),
        Some("/login?next=%2Fdags%3Fsearch%3Detl")
    );

    // A script asking for a live fragment cannot follow a redirect to a form: 401.
    assert_eq!(
        browser.get("/?fragment=status").await.status,
        StatusCode::UNAUTHORIZED
    );

    let form = browser.get("/login?next=%2Fdags%3Fsearch%3Detl").await.ok();
    assert!(
        form.contains(r#"<form method="post" action="/login""#),
        "{form}"
    );
    assert!(
        form.contains(r#"name="next" value="/dags?search=etl""#),
        "{form}"
    );

    let answer = browser
        .sign_in(&[
            ("username", "viewer"),
            ("password", PASSWORD),
            ("next", "/dags?search=etl"),
        ])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert_eq!(answer.location(), Some("/dags?search=etl"));
    assert!(browser.cookie("_token").is_some());
    assert!(browser.cookie("_csrf").is_some());
}

#[tokio::test]
async fn login_page_logout_and_the_token_is_revoked() {
    let ui = Ui::start().await;
    let mut browser = ui.signed_in(Role::Op).await;
    let token = browser.cookie("_token").expect("token cookie").to_string();
    let home = browser.get("/").await.ok();
    assert!(home.contains("<h1>Home</h1>"), "{home}");
    assert!(
        home.contains("op <span class=\"role\">(Op)</span>"),
        "{home}"
    );
    let csrf = browser.cookie("_csrf").expect("csrf cookie").to_string();
    assert!(home.contains(&format!(r#"name="csrf" value="{csrf}""#)));

    // A logout without the form's CSRF token is refused.
    let forged = browser.post_form("/logout", &[("csrf", "guess")]).await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(browser.get("/").await.status, StatusCode::OK);

    let answer = browser.post_form("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/login"));
    assert!(browser.cookie("_token").is_none(), "{:?}", browser.cookies);
    assert_eq!(browser.get("/").await.status, StatusCode::SEE_OTHER);

    // The old token is revoked: sending it again does not sign in.
    browser.cookies.insert("_token".into(), token);
    let answer = browser.get("/").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/login"));
}

#[tokio::test]
async fn wrong_passwords_are_refused_and_then_locked_out() {
    let ui = Ui::start().await;
    let mut browser = ui.browser();
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = browser
            .sign_in(&[("username", &username(Role::Admin)), ("password", "wrong")])
            .await;
        if statuses.is_empty() {
            assert!(
                answer.body.contains("Invalid credentials"),
                "{}",
                answer.body
            );
            assert!(
                answer.body.contains(r#"value="admin""#),
                "the username is kept"
            );
        }
        statuses.push(answer.status);
    }
    assert_eq!(statuses[0], StatusCode::UNAUTHORIZED);
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    assert!(browser.cookie("_token").is_none());
}

#[tokio::test]
async fn next_must_be_a_path_of_this_site() {
    let ui = Ui::start().await;
    let mut browser = ui.browser();
    let answer = browser
        .sign_in(&[
            ("username", "user"),
            ("password", PASSWORD),
            ("next", "//evil.example/"),
        ])
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.location(), Some("/"));
}

#[tokio::test]
async fn assets_are_served_under_their_content_hash_with_a_long_cache() {
    let ui = Ui::start().await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let home = browser.get("/").await.ok();
    let css = updraft_web_ui::assets::Asset::Css.url();
    assert!(home.contains(&css), "{home}");
    let answer = browser.get(&css).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    assert!(answer.body.contains("--s-success"));
    assert_eq!(
        browser.get("/static/app.0000.css").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn pages_cannot_be_framed_or_cached() {
    let ui = Ui::start().await;
    let mut browser = ui.signed_in(Role::Viewer).await;
    let page = browser.get("/").await;
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(
        page.headers["content-security-policy"],
        "frame-ancestors 'none'"
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    let css = browser.get(&updraft_web_ui::assets::Asset::Css.url()).await;
    assert!(css.headers["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("public"));
}

#[tokio::test]
async fn a_sign_in_posted_without_the_forms_token_is_refused() {
    let ui = Ui::start().await;
    // Another site's page posting the form: the browser has no form cookie, or the page
    // cannot know its value.
    let mut browser = ui.browser();
    let credentials = [("username", "admin"), ("password", PASSWORD)];
    let answer = browser.post_form("/login", &credentials).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(
        answer.body.contains("did not come from this site"),
        "{}",
        answer.body
    );
    assert!(browser.cookie("_token").is_none());
    browser.get("/login").await.ok();
    let mut forged = credentials.to_vec();
    forged.push(("form_token", "guess"));
    let answer = browser.post_form("/login", &forged).await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    assert!(browser.cookie("_token").is_none());
    // The refusal's form carries a valid token: signing in from it works.
    let answer = browser.sign_in(&credentials).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
    assert!(browser.cookie("_token").is_some());
}

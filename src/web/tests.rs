//! The workbench's handlers, called through the router without a socket: who may sign in, and
//! that every refused post (no CSRF token, another analyst, another site, unbalanced or
//! over-applied amounts, no note) changes nothing, checked through the service.

use super::{router, url_encode};
use crate::service::Service;
use crate::service::auth::{Auth, MAX_FAILURES, Role, TokenEntry, TokenHash, Tokens};
use crate::service::tests::{
    LATER_INVOICE, cases_service, cash_on_account_with_a_later_invoice, open_items_with_customer,
    runtime,
};
use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use std::sync::Arc;
use tower::ServiceExt;

/// The tokens of the tests: erp, ops (admin), alice and bob (analysts), each `tok-NAME`.
fn entries() -> Vec<(TokenHash, String, Vec<Role>)> {
    [
        ("erp", Role::ArSystem),
        ("ops", Role::Admin),
        ("alice", Role::Analyst),
        ("bob", Role::Analyst),
    ]
    .into_iter()
    .map(|(name, role)| {
        (
            TokenHash::of(&format!("tok-{name}")),
            name.to_string(),
            vec![role],
        )
    })
    .collect()
}

fn auth() -> Arc<Auth> {
    Arc::new(Auth::with_tokens(entries()))
}

struct Reply {
    status: StatusCode,
    location: String,
    cookie: String,
    body: String,
}

async fn send(app: &Router, req: Request<Body>) -> Reply {
    let r = app.clone().oneshot(req).await.expect("response");
    let header = |h: header::HeaderName| {
        r.headers()
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let (status, location, cookie) = (
        r.status(),
        header(header::LOCATION),
        header(header::SET_COOKIE),
    );
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 24)
        .await
        .expect("body");
    Reply {
        status,
        location,
        cookie,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request")
}

fn post(path: &str, cookie: &str, fields: &[(&str, &str)]) -> Request<Body> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
        .collect();
    Request::post(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .body(Body::from(body.join("&")))
        .expect("request")
}

/// Signs in and returns the `Cookie` header value of the session.
async fn sign_in(app: &Router, token: &str) -> String {
    let r = send(
        app,
        post("/login", "", &[("token", token), ("next", "/queue")]),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(r.cookie.contains("HttpOnly") && r.cookie.contains("SameSite=Strict"));
    r.cookie.split(';').next().unwrap_or_default().to_string()
}

fn csrf_of(page: &str) -> String {
    let key = "name=\"csrf\" value=\"";
    page.find(key)
        .map(|i| &page[i + key.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_default()
        .to_string()
}

/// What a refused post must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    resolved: bool,
    audit: usize,
    open: Vec<(String, rust_decimal::Decimal)>,
}

async fn snapshot(service: &Service, ids: &[String]) -> Snapshot {
    let item = service
        .review_item("P-ambiguous".into())
        .await
        .expect("item");
    Snapshot {
        resolved: item.resolution.is_some(),
        audit: service
            .audit_events(Some("P-ambiguous".into()), 0, 100)
            .await
            .expect("audit")
            .len(),
        open: service
            .invoices_now(ids.iter().map(String::as_str))
            .into_iter()
            .map(|i| (i.id, i.open_amount))
            .collect(),
    }
}

#[test]
fn only_analysts_sign_in_and_pages_need_a_session() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-signin").await;
        let app = router(Arc::clone(&service), auth());
        let r = send(&app, get("/queue", "")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(r.location.starts_with("/login?next="), "{}", r.location);
        for (token, status) in [
            ("tok-erp", StatusCode::FORBIDDEN),
            ("tok-ops", StatusCode::FORBIDDEN),
            ("nope", StatusCode::UNAUTHORIZED),
        ] {
            let r = send(&app, post("/login", "", &[("token", token)])).await;
            assert_eq!(r.status, status, "{token}");
            assert!(r.cookie.is_empty(), "{token} got a session");
        }
        let r = send(&app, post("/login", "", &[("token", "tok-erp")])).await;
        assert!(
            r.body.contains("does not have the analyst role"),
            "{}",
            r.body
        );
        // A login form posted from another site is refused.
        let mut req = post("/login", "", &[("token", "tok-alice")]);
        req.headers_mut().insert(
            header::ORIGIN,
            header::HeaderValue::from_static("http://evil.example"),
        );
        assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
        // An open redirect is not: `next` stays on this site.
        let r = send(
            &app,
            post(
                "/login",
                "",
                &[("token", "tok-alice"), ("next", "//evil.example/")],
            ),
        )
        .await;
        assert_eq!(r.location, "/queue");

        let cookie = sign_in(&app, "tok-alice").await;
        let q = send(&app, get("/queue", &cookie)).await;
        assert_eq!(q.status, StatusCode::OK);
        assert!(q.body.contains("P-ambiguous") && q.body.contains("Signed in as"));
        assert!(!q.body.contains("No authentication"));
        let d = send(&app, get("/dashboard", &cookie)).await;
        assert_eq!(d.status, StatusCode::OK);
        assert!(d.body.contains("Touchless rate") && d.body.contains("<svg"));
        // Signing out ends the session.
        let csrf = csrf_of(&q.body);
        let out = send(&app, post("/logout", &cookie, &[("csrf", &csrf)])).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(
            send(&app, get("/queue", &cookie)).await.status,
            StatusCode::SEE_OTHER
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn a_revoked_token_ends_its_sessions_and_failed_sign_ins_are_limited_per_address() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-revoke").await;
        let auth = auth();
        let app = router(Arc::clone(&service), Arc::clone(&auth));
        let alice = sign_in(&app, "tok-alice").await;
        let bob = sign_in(&app, "tok-bob").await;
        assert_eq!(
            send(&app, get("/queue", &alice)).await.status,
            StatusCode::OK
        );
        // The config drops alice's token (what the config watcher does on an edit).
        let kept: Vec<TokenEntry> = entries()
            .into_iter()
            .filter(|(_, name, _)| name != "alice")
            .map(|(hash, name, roles)| TokenEntry { hash, name, roles })
            .collect();
        auth.replace(Tokens::new(kept), Default::default())
            .expect("replace");
        let r = send(&app, get("/queue", &alice)).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "alice's session outlived her token"
        );
        assert!(r.location.starts_with("/login"), "{}", r.location);
        assert_eq!(send(&app, get("/queue", &bob)).await.status, StatusCode::OK);
        let r = send(&app, post("/login", "", &[("token", "tok-alice")])).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);

        // Failed sign-ins from one address: past the limit, refused whatever the token.
        let from = |ip: [u8; 4], token: &str| {
            let mut req = post("/login", "", &[("token", token)]);
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                    ip, 40000,
                ))));
            req
        };
        for i in 0..MAX_FAILURES {
            let r = send(&app, from([192, 0, 2, 1], &format!("guess-{i}"))).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        }
        let r = send(&app, from([192, 0, 2, 1], "tok-bob")).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.body.contains("Too many failed sign-ins"), "{}", r.body);
        assert!(r.cookie.is_empty());
        let r = send(&app, from([192, 0, 2, 2], "tok-bob")).await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "another address is not limited"
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn refused_posts_say_why_and_change_nothing_then_the_analyst_of_the_session_is_recorded() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-resolve").await;
        let app = router(Arc::clone(&service), auth());
        let item = service
            .review_item("P-ambiguous".into())
            .await
            .expect("item");
        let second = item.decision.suggestions[1].allocations.clone();
        let ids: Vec<String> = item
            .decision
            .suggestions
            .iter()
            .flat_map(|s| s.allocations.iter().map(|a| a.invoice_id.clone()))
            .collect();
        let before = snapshot(&service, &ids).await;
        assert!(!before.resolved);

        let cookie = sign_in(&app, "tok-alice").await;
        let page = send(&app, get("/items/P-ambiguous", &cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("Accept #1") && page.body.contains("data-alloc"));
        let csrf = csrf_of(&page.body);
        assert_eq!(csrf.len(), 64);
        let path = "/items/P-ambiguous/resolve";
        let inv = second[0].invoice_id.as_str();
        let open = service.invoices_now([inv])[0].open_amount;
        let amount = second[0].amount.to_string();
        // Cash within the payment, but with the discount more than the invoice has open.
        let over_discount = (open - second[0].amount + rust_decimal::Decimal::ONE).to_string();
        let zeros = "0".repeat(64);

        // (fields, session cookie, status, words the page must say)
        type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, StatusCode, &'a str);
        let cases: Vec<Case> = vec![
            (
                vec![("action", "accept:0")],
                &cookie,
                StatusCode::FORBIDDEN,
                "security token",
            ),
            (
                vec![("action", "accept:0"), ("csrf", zeros.as_str())],
                &cookie,
                StatusCode::FORBIDDEN,
                "security token",
            ),
            (
                vec![("action", "accept:0"), ("csrf", &csrf), ("analyst", "bob")],
                &cookie,
                StatusCode::FORBIDDEN,
                "acts as bob",
            ),
            (
                vec![("action", "accept:0"), ("csrf", &csrf)],
                "",
                StatusCode::UNAUTHORIZED,
                "not signed in",
            ),
            (
                vec![
                    ("action", "allocate"),
                    ("csrf", &csrf),
                    ("inv.0", inv),
                    ("amt.0", &amount),
                    ("unapplied", "1.00"),
                    ("note", "checked"),
                ],
                &cookie,
                StatusCode::UNPROCESSABLE_ENTITY,
                "do not balance",
            ),
            (
                vec![
                    ("action", "allocate"),
                    ("csrf", &csrf),
                    ("inv.0", inv),
                    ("amt.0", &amount),
                    ("disc.0", &over_discount),
                    ("note", "checked"),
                ],
                &cookie,
                StatusCode::CONFLICT,
                "open",
            ),
            (
                vec![
                    ("action", "allocate"),
                    ("csrf", &csrf),
                    ("inv.0", inv),
                    ("amt.0", "10.00"),
                    ("ded.0", "5.00"),
                    ("note", "short"),
                ],
                &cookie,
                StatusCode::UNPROCESSABLE_ENTITY,
                "needs a reason code",
            ),
            (
                vec![("action", "accept:1"), ("csrf", &csrf)],
                &cookie,
                StatusCode::UNPROCESSABLE_ENTITY,
                "Note: is required",
            ),
            (
                vec![
                    ("action", "allocate"),
                    ("csrf", &csrf),
                    ("inv.0", inv),
                    ("amt.0", "12,50"),
                ],
                &cookie,
                StatusCode::UNPROCESSABLE_ENTITY,
                "is not an amount",
            ),
        ];
        for (fields, cookie, status, words) in &cases {
            let r = send(&app, post(path, cookie, fields)).await;
            assert_eq!(r.status, *status, "{fields:?}: {}", r.body);
            assert!(r.body.contains(words), "{fields:?} should say {words:?}");
            assert!(
                r.body.contains("Nothing was changed") || r.body.contains("nothing was changed")
            );
            assert_eq!(
                snapshot(&service, &ids).await,
                before,
                "{fields:?} changed something"
            );
        }
        // A refused allocation comes back as typed, to correct.
        let r = send(
            &app,
            post(
                path,
                &cookie,
                &[
                    ("action", "allocate"),
                    ("csrf", &csrf),
                    ("inv.0", inv),
                    ("amt.0", &amount),
                    ("disc.0", &over_discount),
                    ("note", "typed note"),
                ],
            ),
        )
        .await;
        assert!(
            r.body.contains(&format!("value=\"{over_discount}\"")) && r.body.contains("typed note")
        );
        // Posted from another site, even with the right token: refused.
        let mut req = post(path, &cookie, &[("action", "accept:0"), ("csrf", &csrf)]);
        req.headers_mut().insert(
            header::ORIGIN,
            header::HeaderValue::from_static("http://evil.example"),
        );
        assert_eq!(send(&app, req).await.status, StatusCode::FORBIDDEN);
        assert_eq!(snapshot(&service, &ids).await, before);

        // Accepting the first suggestion, as alice, with a form that names her.
        let r = send(
            &app,
            post(
                path,
                &cookie,
                &[
                    ("action", "accept:0"),
                    ("csrf", &csrf),
                    ("analyst", "alice"),
                ],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert!(
            r.location
                .starts_with("/next?skip=P-ambiguous&done=P-ambiguous")
        );
        let done = service
            .review_item("P-ambiguous".into())
            .await
            .expect("item");
        let res = done.resolution.expect("resolved");
        assert_eq!(res.analyst, "alice");
        assert_eq!(res.allocations, item.decision.suggestions[0].allocations);
        let audit = service
            .audit_events(Some("P-ambiguous".into()), 0, 10)
            .await
            .expect("audit");
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].record.actor, "alice");
        // The item now shows its resolution and history, and no form.
        let page = send(&app, get("/items/P-ambiguous", &cookie)).await;
        assert!(page.body.contains("accepted suggestion #1") && !page.body.contains("data-alloc"));
        // Bob's session cannot resolve it again.
        let bob = sign_in(&app, "tok-bob").await;
        let bob_csrf = csrf_of(&send(&app, get("/queue", &bob)).await.body);
        let r = send(
            &app,
            post(
                path,
                &bob,
                &[("action", "unapplied"), ("csrf", &bob_csrf), ("note", "x")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert!(r.body.contains("already resolved"));
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn without_tokens_the_analyst_types_a_name_and_every_page_says_so_and_text_is_escaped() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-noauth").await;
        let p = crate::domain::Payment {
            payment_id: "P-<script>".into(),
            format: "grpc".into(),
            direction: crate::domain::Direction::Credit,
            payment_date: None,
            amount: rust_decimal::Decimal::new(7777, 2),
            currency: crate::domain::Currency::USD,
            payer: crate::domain::Payer {
                name: Some("<script>alert(1)</script>".into()),
                account: None,
            },
            lines: vec![],
            free_text: vec!["memo <b>bold</b> & co".into()],
            warnings: vec![],
            returned: None,
        };
        let d = service.match_payment(p).await.expect("match");
        assert_eq!(d.decision.status, crate::domain::Status::Review);
        let app = router(Arc::clone(&service), Arc::new(Auth::disabled()));
        let r = send(&app, post("/login", "", &[("name", "  ")])).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        let r = send(&app, post("/login", "", &[("name", "dana")])).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let cookie = r.cookie.split(';').next().unwrap_or_default().to_string();
        let q = send(&app, get("/queue", &cookie)).await;
        assert!(q.body.contains("No authentication") && q.body.contains("dana"));
        let item = send(&app, get("/items/P-%3Cscript%3E", &cookie)).await;
        assert_eq!(item.status, StatusCode::OK, "{}", item.body);
        assert!(!item.body.contains("<script>alert"), "unescaped payer name");
        assert!(item.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(item.body.contains("memo &lt;b&gt;bold&lt;/b&gt; &amp; co"));
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn a_payment_the_bank_returned_shows_so_and_offers_no_resolution() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-returned").await;
        let app = router(Arc::clone(&service), auth());
        service
            .reverse_payment(crate::service::ReverseRequest {
                payment_id: "P-ambiguous".into(),
                return_code: "R01".into(),
                reason: "insufficient funds".into(),
                by: crate::service::Actor {
                    kind: crate::service::ActorKind::ArSystem,
                    name: "erp".into(),
                },
            })
            .await
            .expect("returned");
        let cookie = sign_in(&app, "tok-alice").await;
        let page = send(&app, get("/items/P-ambiguous", &cookie)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(page.body.contains("returned by the bank") && page.body.contains("R01"));
        assert!(!page.body.contains("data-alloc") && !page.body.contains("past SLA"));
        assert!(
            page.body.contains("data-event=\"reverse\""),
            "the history shows it"
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn a_resolution_awaiting_approval_shows_with_its_buttons_and_only_a_second_analyst_approves() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-four-eyes").await;
        let app = router(Arc::clone(&service), auth());
        let (id, customer, _) = open_items_with_customer(&service)
            .await
            .into_iter()
            .next()
            .expect("an item with a customer");
        service.set_four_eyes(crate::service::FourEyes {
            above: rust_decimal::Decimal::ZERO,
            per_currency: Default::default(),
        });
        let waiting = service
            .resolve(crate::service::ResolveRequest {
                payment_id: id.clone(),
                analyst: "alice".into(),
                action: crate::service::ResolveAction::PutOnAccount(customer),
                note: "keep it".into(),
            })
            .await
            .expect("submitted");
        assert!(waiting.resolved().is_none());

        let alice = sign_in(&app, "tok-alice").await;
        let item_path = format!("/items/{}", url_encode(&id));
        let page = send(&app, get(&item_path, &alice)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("awaiting approval") && page.body.contains("You proposed this"),
            "{}",
            page.body
        );
        assert!(!page.body.contains("Approve and post"));
        let csrf = csrf_of(&page.body);
        let decide = format!("/approvals/{}", url_encode(&id));
        let r = send(
            &app,
            post(
                &decide,
                &alice,
                &[("csrf", &csrf), ("decision", "approve"), ("note", "")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        assert!(r.body.contains("cannot approve"), "{}", r.body);
        assert!(service.pending_approval(&id).is_some(), "nothing changed");

        let bob = sign_in(&app, "tok-bob").await;
        let list = send(&app, get("/approvals", &bob)).await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(
            list.body.contains(&id) && list.body.contains("Approve and post"),
            "{}",
            list.body
        );
        let csrf = csrf_of(&list.body);
        let r = send(
            &app,
            post(
                &decide,
                &bob,
                &[("csrf", &csrf), ("decision", "approve"), ("note", "ok")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let item = service.review_item(id.clone()).await.expect("item");
        assert_eq!(
            item.resolution.map(|r| r.analyst),
            Some("alice".to_string())
        );
        let list = send(&app, get("/approvals", &bob)).await;
        assert!(list.body.contains("Nothing is waiting"), "{}", list.body);
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

#[test]
fn an_analyst_claims_an_item_from_its_page_finds_it_under_mine_and_a_colleague_cannot_take_it() {
    runtime().block_on(async {
        let (service, dir) = cases_service("web-owner").await;
        let app = router(Arc::clone(&service), auth());
        let id = "P-ambiguous";
        let item_path = format!("/items/{}", url_encode(id));
        let assign_path = format!("{item_path}/assign");

        let alice = sign_in(&app, "tok-alice").await;
        let page = send(&app, get(&item_path, &alice)).await;
        assert!(
            page.body.contains("Nobody is working this item"),
            "{}",
            page.body
        );
        let csrf = csrf_of(&page.body);
        // Without the session's CSRF token nothing changes.
        let r = send(&app, post(&assign_path, &alice, &[("action", "claim")])).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let r = send(
            &app,
            post(
                &assign_path,
                &alice,
                &[("csrf", &csrf), ("action", "claim")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = send(&app, get(&item_path, &alice)).await;
        assert!(
            page.body.contains("You are working this item"),
            "{}",
            page.body
        );
        let mine = send(&app, get("/queue?owner=me", &alice)).await;
        assert!(mine.body.contains(id), "{}", mine.body);
        let nobodys = send(&app, get("/queue?owner=none", &alice)).await;
        assert!(
            !nobodys.body.contains(&format!(">{id}<")),
            "{}",
            nobodys.body
        );

        let bob = sign_in(&app, "tok-bob").await;
        let page = send(&app, get(&item_path, &bob)).await;
        assert!(page.body.contains("Owned by"), "{}", page.body);
        let bob_csrf = csrf_of(&page.body);
        let r = send(
            &app,
            post(
                &assign_path,
                &bob,
                &[("csrf", &bob_csrf), ("action", "claim")],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert!(r.body.contains("alice"), "{}", r.body);
        let item = service.review_item(id.into()).await.expect("item");
        assert_eq!(item.summary.owner.as_deref(), Some("alice"));
        let trail = service
            .audit_events(Some(id.into()), 0, 100)
            .await
            .expect("audit");
        assert_eq!(trail.len(), 1, "one claim, by alice");
        assert_eq!(trail[0].record.actor, "alice");
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// An analyst opens an auto-applied payment, sees its postings, and undoes it: unapply puts it
/// back in the queue with the open amounts restored, reverse closes it as returned. A post
/// without the typed confirmation, the reason or the session's token changes nothing.
#[test]
fn a_payment_page_shows_its_postings_and_unapplies_and_reverses_with_a_confirmation() {
    runtime().block_on(async {
        use crate::domain::Status;
        let (service, dir) = cases_service("web-payment").await;
        let app = router(Arc::clone(&service), auth());
        let alice = sign_in(&app, "tok-alice").await;
        let before = service.decision("P-exact".into()).await.expect("decided");
        assert_eq!(before.status, Status::Auto);
        let paid: Vec<String> = before
            .allocations
            .iter()
            .map(|a| a.invoice_id.clone())
            .collect();
        let open_before: Vec<_> = service
            .invoices_now(paid.iter().map(String::as_str))
            .into_iter()
            .map(|i| i.open_amount)
            .collect();

        let found = send(&app, get("/payments?id=P-exact", &alice)).await;
        assert_eq!(found.location, "/payments/P-exact");
        let missing = send(&app, get("/payments/P-nobody", &alice)).await;
        assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
        let page = send(&app, get("/payments/P-exact", &alice)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("data-sequence") && page.body.contains(">applied<"));
        assert!(page.body.contains("data-unapply") && page.body.contains("data-reverse"));
        let csrf = csrf_of(&page.body);

        // No typed confirmation, another id, no CSRF token: refused, nothing changed.
        let note = ("note", "applied to the wrong invoice");
        for fields in [
            vec![("csrf", csrf.as_str()), note],
            vec![("csrf", csrf.as_str()), note, ("confirm", "P-other")],
            vec![note, ("confirm", "P-exact")],
        ] {
            let r = send(&app, post("/payments/P-exact/unapply", &alice, &fields)).await;
            assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
            assert!(r.body.contains("Nothing was changed"), "{}", r.body);
        }
        assert_eq!(
            service.decision("P-exact".into()).await.expect("d").status,
            Status::Auto
        );

        let fields = [("csrf", csrf.as_str()), note, ("confirm", "P-exact")];
        let r = send(&app, post("/payments/P-exact/unapply", &alice, &fields)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(r.location, "/payments/P-exact?done=unapplied");
        let item = service.review_item("P-exact".into()).await.expect("item");
        assert_eq!(item.summary.state, crate::service::ReviewState::Open);
        let open_after: Vec<_> = service
            .invoices_now(paid.iter().map(String::as_str))
            .into_iter()
            .map(|i| i.open_amount)
            .collect();
        let restored: Vec<_> = open_before
            .iter()
            .zip(&before.allocations)
            .map(|(o, a)| *o + a.amount + a.discount + a.deduction)
            .collect();
        assert_eq!(
            open_after, restored,
            "the unapply restored the open amounts"
        );
        let page = send(&app, get("/payments/P-exact?done=unapplied", &alice)).await;
        assert!(page.body.contains("data-done") && page.body.contains("class=\"reversed\""));

        // Reverse: the reason is required from an analyst.
        let reverse = |reason: &str| {
            post(
                "/payments/P-exact/reverse",
                &alice,
                &[
                    ("csrf", &csrf),
                    ("return_code", "R01"),
                    ("reason", reason),
                    ("confirm", "P-exact"),
                ],
            )
        };
        let r = send(&app, reverse(" ")).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        let r = send(&app, reverse("NSF notice from the bank")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(
            service.decision("P-exact".into()).await.expect("d").status,
            Status::Returned
        );
        let page = send(&app, get("/payments/P-exact?done=reversed", &alice)).await;
        assert!(page.body.contains("returned by the bank"));
        assert!(
            !page.body.contains("data-unapply"),
            "a returned payment offers no undo"
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// A customer's waiting cash in the workbench: the on-account balance in its age range and the
/// payment it comes from; applying it to a later invoice needs the note, refuses more than the
/// invoice has open, and then relieves the invoice.
#[test]
fn waiting_cash_is_shown_aged_and_applied_to_a_later_invoice_from_the_workbench() {
    runtime().block_on(async {
        use rust_decimal_macros::dec;
        let (service, dir) = cases_service("web-cash").await;
        let (payment_id, customer, amount) =
            cash_on_account_with_a_later_invoice(&service, "bob").await;

        let app = router(Arc::clone(&service), auth());
        let alice = sign_in(&app, "tok-alice").await;
        let found = send(&app, get(&format!("/customers?id={customer}"), &alice)).await;
        assert_eq!(
            found.location,
            format!("/customers/{}/cash", url_encode(&customer))
        );
        let path = found.location.clone();
        let page = send(&app, get(&path, &alice)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body
                .contains(&format!("data-payment=\"{payment_id}\""))
        );
        assert!(page.body.contains("0-30 days") && page.body.contains("on account"));
        assert!(
            page.body.contains(&super::page::money(amount)),
            "the balance"
        );
        let csrf = csrf_of(&page.body);
        let apply_path = format!("{path}/apply");
        let form = |cash: &'static str, note: &'static str| {
            vec![
                ("csrf", csrf.clone()),
                ("payment_id", payment_id.clone()),
                ("invoice_0", LATER_INVOICE.to_string()),
                ("amount_0", cash.to_string()),
                ("note", note.to_string()),
            ]
        };
        for (fields, why) in [
            (form("60.00", " "), "no note"),
            (form("60.01", "customer's instruction"), "over-applies"),
            (form("sixty", "customer's instruction"), "not an amount"),
        ] {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = send(&app, post(&apply_path, &alice, &f)).await;
            assert!(r.status.is_client_error(), "{why}: {} {}", r.status, r.body);
            assert!(r.body.contains("Nothing was changed"), "{why}: {}", r.body);
        }
        let open = |service: &Service| {
            service
                .invoices_now([LATER_INVOICE])
                .first()
                .map(|i| i.open_amount)
        };
        assert_eq!(open(&service), Some(dec!(60.00)));
        let fields = form("60.00", "customer's instruction");
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = send(&app, post(&apply_path, &alice, &f)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(open(&service), Some(dec!(0.00)));
        let page = send(&app, get(&r.location, &alice)).await;
        assert!(page.body.contains("data-done"));
        assert!(
            page.body
                .contains(&super::page::money(amount - dec!(60.00))),
            "what still waits"
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

/// The receipts-and-advices page: a held receipt and a waiting advice side by side; a link by
/// hand without the CSRF token, or whose amounts do not add up, changes nothing; the engine's
/// link is listed in force and undone from the page, its cash given back.
#[test]
fn the_advices_page_lists_what_waits_refuses_a_link_that_does_not_add_up_and_undoes_a_link() {
    use crate::advice::LinkConfig;
    use crate::domain::{Currency, Customer, Direction, Invoice, Payer, Payment, RemittanceLine};
    use crate::service::AdviceSettings;
    runtime().block_on(async {
        let (service, dir) = cases_service("web-advices").await;
        let day = |d| chrono::NaiveDate::from_ymd_opt(2026, 12, d).expect("day");
        service.set_advice_settings(AdviceSettings {
            hold_receipts: true,
            link: LinkConfig {
                as_of: Some(day(7)),
                ..LinkConfig::default()
            },
        });
        let amount = |s: &str| s.parse::<rust_decimal::Decimal>().expect("amount");
        service
            .upsert(
                vec![(
                    0,
                    Customer {
                        id: "ZEPH".into(),
                        name: "Zephyr Advices Testing Ltd".into(),
                        parent_id: None,
                        bank_accounts: vec!["999:9999999".into()],
                    },
                )],
                vec![(
                    0,
                    Invoice {
                        id: "ZI-1".into(),
                        customer_id: "ZEPH".into(),
                        number: "ZX-5001".into(),
                        po_number: None,
                        invoice_date: day(1),
                        due_date: day(30),
                        currency: Currency::USD,
                        amount: amount("1200.00"),
                        open_amount: amount("1200.00"),
                        terms: Default::default(),
                    },
                )],
            )
            .await
            .expect("ledger");
        let payment = |id: &str, a: &str| Payment {
            payment_id: id.into(),
            format: "test".into(),
            direction: Direction::Credit,
            payment_date: Some(day(7)),
            amount: amount(a),
            currency: Currency::USD,
            payer: Payer::default(),
            lines: vec![],
            free_text: vec![],
            warnings: vec![],
            returned: None,
        };
        let mut receipt = payment("R-Z", "1200.00");
        receipt.payer.account = Some("999:9999999".into());
        let held = service.match_payment(receipt).await.expect("held");
        assert!(held.held.is_some());
        let advice = |id: &str, a: &str| {
            let mut p = payment(id, a);
            p.payer.name = Some("ZEPHYR ADVICES TESTING".into());
            p.lines = vec![RemittanceLine {
                reference: Some("ZX-5001".into()),
                amount_paid: Some(amount(a)),
                ..Default::default()
            }];
            p
        };
        service
            .submit_advices(vec![advice("A-Z1", "1000.00")], "erp")
            .await
            .expect("advice");
        let app = router(Arc::clone(&service), auth());
        let alice = sign_in(&app, "tok-alice").await;
        let page = send(&app, get("/advices", &alice)).await;
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("href=\"/advices\""),
            "linked from the nav"
        );
        assert!(
            page.body.contains("data-id=\"R-Z\"") && page.body.contains("data-id=\"A-Z1\""),
            "{}",
            page.body
        );
        let csrf = csrf_of(&page.body);
        let ticked = [
            ("receipt_ids", "R-Z"),
            ("advice_ids", "A-Z1"),
            ("note", "x"),
        ];
        let r = send(&app, post("/advices/link", &alice, &ticked)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "no CSRF token: {}", r.body);
        let mut with_csrf = ticked.to_vec();
        with_csrf.push(("csrf", &csrf));
        let r = send(&app, post("/advices/link", &alice, &with_csrf)).await;
        assert!(r.status.is_client_error(), "{}", r.status);
        assert!(r.body.contains("do not add up"), "{}", r.body);
        assert!(!service.is_decided("R-Z"), "nothing was linked");

        // The advice of the whole amount: the engine links it and applies the cash.
        service
            .submit_advices(vec![advice("A-Z2", "1200.00")], "erp")
            .await
            .expect("advice");
        let invoice = |s: &Service| s.invoices_now(["ZI-1"]).remove(0).open_amount;
        assert_eq!(invoice(&service), rust_decimal::Decimal::ZERO);
        let page = send(&app, get("/advices", &alice)).await;
        assert!(
            page.body.contains("data-link=\"link:R-Z\""),
            "{}",
            page.body
        );
        let r = send(
            &app,
            post(
                "/advices/unlink",
                &alice,
                &[
                    ("csrf", &csrf),
                    ("link_id", "link:R-Z"),
                    ("note", "wrong advice"),
                ],
            ),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert_eq!(invoice(&service), amount("1200.00"));
        let page = send(&app, get("/advices", &alice)).await;
        assert!(page.body.contains("id=\"no-links\""), "{}", page.body);
        assert!(
            page.body.contains("data-id=\"A-Z2\""),
            "the advice waits again"
        );
        service.store().close();
        let _ = std::fs::remove_dir_all(&dir);
    });
}

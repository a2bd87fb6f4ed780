//! Who works an item: the analyst claims it, gives it to a colleague, or releases it, from the
//! item's page. The rules (another analyst's item cannot be claimed, only open items have owners)
//! are the service's; the page shows why a change was refused.

use super::{Shared, checked_post, error_page, refusal, url_encode};
use crate::service::Assignment;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html as m};
use serde::Deserialize;

#[derive(Deserialize)]
pub(crate) struct AssignForm {
    #[serde(default)]
    csrf: String,
    /// `claim`, `release` or `assign`.
    #[serde(default)]
    action: String,
    /// The analyst an `assign` gives the item to.
    #[serde(default)]
    to: String,
}

pub(crate) async fn submit(
    State(web): State<Shared>,
    headers: HeaderMap,
    Path(payment_id): Path<String>,
    Form(form): Form<AssignForm>,
) -> Response {
    let who = match checked_post(&web, &headers, &form.csrf, "take or share out review items").await
    {
        Ok(who) => who,
        Err(page) => return page,
    };
    let auth = web.auth.enabled();
    let assignment = match form.action.as_str() {
        "claim" => Assignment::Claim,
        "release" => Assignment::Release,
        "assign" => Assignment::AssignTo(form.to),
        other => {
            return error_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(&who),
                auth,
                "Refused",
                &format!("action {other:?}: claim, assign or release. Nothing was changed."),
            );
        }
    };
    let name = who.principal.name.clone();
    match web
        .service
        .assign_review_item(payment_id.clone(), name.clone(), assignment)
        .await
    {
        Ok(item) => {
            tracing::info!(analyst = %name, payment_id = %payment_id, owner = ?item.owner, "review item owner changed from the workbench");
            Redirect::to(&format!("/items/{}", url_encode(&payment_id))).into_response()
        }
        Err(e) => {
            let (status, message) = refusal(&e);
            error_page(
                status,
                Some(&who),
                auth,
                "Refused",
                &format!("{message}. Nothing was changed."),
            )
        }
    }
}

/// The owner line of an open item's page, with the buttons the signed-in analyst may use.
pub(crate) fn card(payment_id: &str, owner: Option<&str>, me: &str, csrf: &str) -> Markup {
    let action = format!("/items/{}/assign", url_encode(payment_id));
    m! {
        form.owner method="post" action=(action) data-owner {
            input type="hidden" name="csrf" value=(csrf);
            @match owner {
                Some(o) if o == me => {
                    span { "You are working this item." }
                    button.quiet type="submit" name="action" value="release" { "Release" }
                }
                Some(o) => {
                    span { "Owned by " strong { (o) } "." }
                }
                None => {
                    span.muted { "Nobody is working this item." }
                    button type="submit" name="action" value="claim" { "Claim" }
                }
            }
            label { "Give to " input type="text" name="to" maxlength="64" placeholder="analyst"; }
            button.quiet type="submit" name="action" value="assign" { "Assign" }
        }
    }
}

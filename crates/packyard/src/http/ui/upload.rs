//! `/OWNER/REPO/upload`: a form that pushes packages as the API does. With JavaScript, each
//! file is its own request with a progress bar; without, the form posts them all and the
//! answer lists each file's outcome.

use askama::Template;
use axum::Json;
use axum::extract::{FromRequestParts, Multipart, Path, State};
use axum::http::HeaderMap;
use axum::http::header::ACCEPT;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::repo::{self, RepoHead};
use super::session::{self, Visitor};
use super::{Layout, UiError, render};
use crate::app::App;
use crate::distros::{self, DISTROS};
use crate::formats::PackageFormat;
use crate::http::api::packages::push::{push_staged, stage};

pub struct TargetGroup {
    pub label: String,
    pub options: Vec<(i64, String)>,
}

pub struct Outcome {
    pub file: String,
    pub ok: bool,
    pub message: String,
    pub href: Option<String>,
}

#[derive(Template)]
#[template(path = "ui/upload.html")]
struct UploadPage {
    l: Layout,
    r: RepoHead,
    groups: Vec<TargetGroup>,
    outcomes: Vec<Outcome>,
    limit: String,
}

fn groups() -> Vec<TargetGroup> {
    let mut out: Vec<TargetGroup> = Vec::new();
    for d in DISTROS {
        let label = match d.format {
            PackageFormat::Deb | PackageFormat::Rpm => format!("{} ({})", d.os, d.format.label()),
            other => other.label().to_owned(),
        };
        let option = (d.id, format!("{} {}", d.display_name, d.dist));
        match out.iter_mut().find(|g| g.label == label) {
            Some(group) => group.options.push(option),
            None => out.push(TargetGroup {
                label,
                options: vec![option],
            }),
        }
    }
    out
}

async fn upload_page(
    app: &App,
    visitor: &Visitor,
    owner: &str,
    name: &str,
    outcomes: Vec<Outcome>,
) -> Result<Response, UiError> {
    let repo = repo::owned_repo(app, visitor, owner, name).await?;
    let (l, r) = repo::head(app, visitor, &repo, true, "Upload");
    render(
        visitor,
        &UploadPage {
            l,
            r,
            groups: groups(),
            outcomes,
            limit: super::view::size(
                i64::try_from(app.config.max_upload_bytes).unwrap_or(i64::MAX),
            ),
        },
    )
}

pub async fn page(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    visitor: Visitor,
) -> Result<Response, UiError> {
    upload_page(&app, &visitor, &owner, &name, Vec::new()).await
}

/// The form's post: `csrf` first (checked before any file is read), the target, then the
/// files, each pushed as it arrives.
pub async fn upload(
    State(app): State<App>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Result<Response, UiError> {
    let (mut parts, body) = request.into_parts();
    let visitor = Visitor::from_request_parts(&mut parts, &app).await?;
    session::check_origin(&app, &headers)?;
    let repo = repo::owned_repo(&app, &visitor, &owner, &name).await?;
    let user = visitor.require_user()?.clone();
    let request = axum::extract::Request::from_parts(parts, body);
    let mut multipart = <Multipart as axum::extract::FromRequest<App>>::from_request(request, &app)
        .await
        .map_err(|e| UiError::BadRequest(format!("the upload could not be read: {e}")))?;
    let bad = |e: axum::extract::multipart::MultipartError| {
        UiError::BadRequest(format!("the upload could not be read: {e}"))
    };
    let mut token_checked = false;
    let mut distro = None;
    let mut outcomes = Vec::new();
    while let Some(field) = multipart.next_field().await.map_err(bad)? {
        match field.name().unwrap_or_default() {
            session::TOKEN_FIELD => {
                let token = field.text().await.map_err(bad)?;
                session::verify_token(&app, &visitor, &token)?;
                token_checked = true;
            }
            // The token comes first; anything before it is refused unread.
            _ if !token_checked => session::verify_token(&app, &visitor, "")?,
            "distro_version_id" => {
                let id = field.text().await.map_err(bad)?;
                distro = id.trim().parse().ok().and_then(distros::by_id);
            }
            "package_file" => {
                let filename = field.file_name().unwrap_or_default().to_owned();
                if filename.is_empty() {
                    continue;
                }
                let Some(distro) = distro else {
                    return Err(UiError::BadRequest(
                        "choose a distribution before the files".into(),
                    ));
                };
                let outcome = match stage(&app, field, filename.clone()).await {
                    Ok((staged, _temp)) => {
                        push_staged(&app, &user, visitor.client, &repo, distro, &staged).await
                    }
                    Err(e) => Err(e),
                };
                outcomes.push(match outcome {
                    Ok((package, is_new)) => Outcome {
                        file: filename,
                        ok: true,
                        message: if is_new {
                            "stored"
                        } else {
                            "already there (identical)"
                        }
                        .to_owned(),
                        href: Some(repo::package_href(&repo, &package)),
                    },
                    Err(e) => Outcome {
                        file: filename,
                        ok: false,
                        message: match UiError::from(e) {
                            UiError::BadRequest(m) | UiError::Forbidden(m) => m,
                            UiError::Internal(e) => {
                                tracing::error!(error = %format!("{e:#}"), "an upload failed");
                                "the server could not store it; see its log".to_owned()
                            }
                            _ => "refused".to_owned(),
                        },
                        href: None,
                    },
                });
            }
            _ => {}
        }
    }
    if !token_checked {
        session::verify_token(&app, &visitor, "")?;
    }
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if wants_json {
        let body = match outcomes.first() {
            Some(o) if o.ok => json!({ "status": o.message, "url": o.href }),
            Some(o) => json!({ "error": o.message }),
            None => json!({ "error": "no file was sent" }),
        };
        let status = if outcomes.first().is_some_and(|o| o.ok) {
            axum::http::StatusCode::OK
        } else {
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        };
        return Ok((status, Json(body)).into_response());
    }
    upload_page(&app, &visitor, &owner, &name, outcomes).await
}

//! `GET /api/v1/distributions.json`: every distribution version with its stable id.

use axum::Json;
use packyard_api::Distributions;

use crate::distros::{self, PackageFormat};

pub async fn list() -> Json<Distributions> {
    let mut all = Distributions::new();
    all.insert("deb".into(), distros::families(PackageFormat::Deb));
    all.insert("rpm".into(), distros::families(PackageFormat::Rpm));
    Json(all)
}

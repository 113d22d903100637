//! `GET /api/v1/distributions.json`: every distribution version with its stable id.

use axum::Json;
use packyard_api::Distributions;

use crate::distros;

pub async fn list() -> Json<Distributions> {
    let mut all = Distributions::new();
    all.insert("deb".into(), distros::deb_families());
    Json(all)
}

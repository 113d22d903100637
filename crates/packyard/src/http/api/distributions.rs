//! `GET /api/v1/distributions.json`: every distribution version with its stable id.

use axum::Json;
use packyard_api::Distributions;

use crate::distros::{self, PackageFormat};

pub async fn list() -> Json<Distributions> {
    let mut all = Distributions::new();
    for &format in PackageFormat::ALL {
        all.insert(
            format.distributions_key().into(),
            distros::families(format.distro_format()),
        );
    }
    Json(all)
}

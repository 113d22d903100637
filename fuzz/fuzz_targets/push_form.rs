//! A push's multipart body as the API reads it: multer (the parser behind axum's `Multipart`)
//! with a size limit, each field's name and text as the push reads them, and each file name
//! through the parsers a file name meets (PyPI's file names, raw files' name and extension).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use packyard_formats::{anyfile, pypi};

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let limits = multer::Constraints::new().size_limit(
        multer::SizeLimit::new()
            .whole_stream(1 << 20)
            .per_field(1 << 20),
    );
    let mut multipart = multer::Multipart::with_constraints(stream, "packyard-boundary", limits);
    futures_executor::block_on(async {
        while let Ok(Some(field)) = multipart.next_field().await {
            let is_file = matches!(
                field.name(),
                Some("package[package_file]" | "package_file" | "package[source_files][]")
            );
            if let Some(file_name) = field.file_name() {
                let _ = pypi::parse_file_name(file_name);
                let _ = anyfile::split_filename(file_name);
                let _ = anyfile::is_name_segment(file_name);
            }
            if is_file {
                let _ = field.bytes().await;
            } else if let Ok(text) = field.text().await {
                let _ = text.trim().parse::<i64>();
            }
        }
    });
});

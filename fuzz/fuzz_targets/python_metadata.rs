//! A pushed wheel or sdist: the zip or gzipped tar read within limits, and its core metadata.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::pypi;

fuzz_target!(|data: &[u8]| {
    let _ = pypi::parse_metadata(data);
    let _ = pypi::read_wheel_metadata(std::io::Cursor::new(data));
    let _ = pypi::read_sdist_metadata(std::io::Cursor::new(data), false);
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = pypi::parse_file_name(name);
        let _ = pypi::normalize_version(name);
    }
});

//! A published npm tarball: its `package.json`, entries outside the package refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::npm;

fuzz_target!(|data: &[u8]| {
    let _ = npm::read_tarball_manifest(data);
    if let Ok(name) = std::str::from_utf8(data) {
        let _ = npm::validate_name(name);
        let _ = npm::normalize_version(name);
    }
});

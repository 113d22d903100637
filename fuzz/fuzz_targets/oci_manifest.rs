//! A pushed image manifest or index, and an image configuration read for its platform.
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::oci;

fuzz_target!(|data: &[u8]| {
    let _ = oci::parse_manifest(data, None);
    let _ = oci::parse_manifest(data, Some(oci::OCI_INDEX));
    let _ = oci::config_platform(data);
});

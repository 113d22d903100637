//! deb822 paragraphs (a `.deb`'s control file, a `.dsc`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use packyard_formats::deb::{Control, parse_dsc};

fuzz_target!(|data: &[u8]| {
    let _ = Control::parse(data);
    let _ = parse_dsc(data);
});

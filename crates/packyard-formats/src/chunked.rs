//! Compressed indexes made of independently compressed chunks.
//!
//! A multi-member gzip file (RFC 1952, section 2.2) and a multi-frame zstd file decompress to
//! the concatenation of their members, so an index can be kept as one compressed chunk per
//! group of packages and only the chunks that changed are compressed again on a publish.
//! apt 2.6 and dnf 4.14 read both; neither reads a multi-stream xz, which is therefore always
//! compressed whole.

use std::io::Write;

/// Compresses one chunk as a complete gzip member.
pub fn gzip_member(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4 + 64),
        flate2::Compression::new(6),
    );
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    exact(encoder.finish().expect("writing to a Vec cannot fail"))
}

/// Compresses one chunk as a complete zstd frame.
pub fn zstd_frame(data: &[u8]) -> Vec<u8> {
    exact(
        zstd::bulk::compress(data, 9).expect("zstd compression of an in-memory buffer cannot fail"),
    )
}

/// Compresses a whole file as a single xz stream.
pub fn xz_stream(data: &[u8]) -> Vec<u8> {
    let mut encoder = liblzma::write::XzEncoder::new(Vec::with_capacity(data.len() / 5 + 64), 6);
    encoder
        .write_all(data)
        .expect("writing to a Vec cannot fail");
    exact(encoder.finish().expect("writing to a Vec cannot fail"))
}

/// Compressed bytes without the room reserved for them. A publish holds the chunks it
/// compresses until it stores them, and index text compresses about tenfold: a buffer reserved
/// at a quarter of the text (or zstd's bound, more than the text) would hold three to twelve
/// times the bytes.
fn exact(mut compressed: Vec<u8>) -> Vec<u8> {
    compressed.shrink_to_fit();
    compressed
}

/// The text of gzip members this process wrote (`gzip_member`): index chunks are decompressed
/// to hash them again when the text before them changed.
pub fn gunzip_text(data: &[u8]) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(data).read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn compressed_chunks_hold_no_more_memory_than_their_bytes() {
        let text: String = (0..5000)
            .map(|i| format!("Package: p{i}\nVersion: 1.{i}\nArchitecture: amd64\n\n"))
            .collect();
        let compressed = [
            gzip_member(text.as_bytes()),
            zstd_frame(text.as_bytes()),
            xz_stream(text.as_bytes()),
        ];
        for bytes in compressed {
            assert!(
                bytes.len() * 8 < text.len(),
                "{} of {}",
                bytes.len(),
                text.len()
            );
            assert_eq!(bytes.capacity(), bytes.len());
        }
    }

    #[test]
    fn concatenated_gzip_members_decompress_to_the_concatenation() {
        let mut file = gzip_member(b"Package: a\n\n");
        file.extend(gzip_member(b"Package: b\n\n"));
        let mut out = String::new();
        flate2::read::MultiGzDecoder::new(&file[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "Package: a\n\nPackage: b\n\n");
    }

    #[test]
    fn concatenated_zstd_frames_decompress_to_the_concatenation() {
        let mut file = zstd_frame(b"one ");
        file.extend(zstd_frame(b"two"));
        let out = zstd::stream::decode_all(&file[..]).unwrap();
        assert_eq!(out, b"one two");
    }
}

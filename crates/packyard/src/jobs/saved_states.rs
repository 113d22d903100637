//! Hash states kept across a restart. `serve` saves the states its workers kept when it stops
//! and takes them back when it starts, so the first publish of a large index after a restart
//! resumes hashing where the last one left off, rather than reading and hashing every chunk
//! again (seconds at a million packages).
//!
//! The file is a cache and nothing more. A state from it is checked before use as any kept
//! state is (the blobs of its chunk, the index file's head, the chunk's fingerprint, and every
//! state before it resumed too), and its bytes carry a check of their own, so a stale,
//! foreign or damaged file costs at most the rehashing it was meant to save. One start takes
//! it: it is removed once read.

use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result};
use packyard_formats::digest::MultiHasher;
use serde::{Deserialize, Serialize};

use super::chunks::{ChunkState, HashStates, PartStates};
use crate::db::generations::Target;

/// In the data folder.
pub const FILE: &str = "index-hash-states.json";

#[derive(Serialize, Deserialize)]
struct SavedTarget {
    repository_id: i64,
    distro_version_id: i64,
    arch: String,
    /// By index part, each in chunk order.
    parts: HashMap<String, Vec<SavedState>>,
}

#[derive(Serialize, Deserialize)]
struct SavedState {
    head: String,
    chunk_no: i64,
    fingerprint: String,
    blobs: String,
    /// `MultiHasher::to_bytes`, as hex.
    state: String,
    gz: String,
    zst: String,
}

/// Writes every target's kept hash states to the data folder, taking them out; returns how
/// many targets had some. Written under a temporary name and renamed into place, so a start
/// never reads half a file.
pub fn save(states: &HashStates, data_dir: &Path) -> Result<usize> {
    let saved: Vec<SavedTarget> = states
        .take_all()
        .into_iter()
        .map(|(target, parts)| SavedTarget {
            repository_id: target.repository_id,
            distro_version_id: target.distro_version_id,
            arch: target.arch,
            parts: parts
                .into_iter()
                .map(|(part, states)| (part, states.iter().map(saved).collect()))
                .collect(),
        })
        .collect();
    let path = data_dir.join(FILE);
    let temporary = data_dir.join(format!("{FILE}.tmp"));
    let file = std::fs::File::create(&temporary)
        .with_context(|| format!("creating {}", temporary.display()))?;
    let mut out = BufWriter::new(file);
    serde_json::to_writer(&mut out, &saved)?;
    out.flush()?;
    drop(out);
    std::fs::rename(&temporary, &path)
        .with_context(|| format!("renaming {} into place", temporary.display()))?;
    Ok(saved.len())
}

/// Takes back what `save` wrote, if anything, and removes the file; returns how many states
/// were taken. A part's states are a chain, each resumed only after the one before it: the
/// first that does not decode ends its part.
pub fn restore(states: &HashStates, data_dir: &Path) -> Result<usize> {
    let path = data_dir.join(FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e).with_context(|| format!("opening {}", path.display())),
    };
    let read: serde_json::Result<Vec<SavedTarget>> = serde_json::from_reader(BufReader::new(file));
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    let saved = read.with_context(|| format!("reading {}", path.display()))?;
    let mut restored = 0;
    for target in saved {
        let parts: PartStates = target
            .parts
            .into_iter()
            .map(|(part, saved)| {
                let chain: Vec<ChunkState> = saved.into_iter().map_while(state).collect();
                (part, chain)
            })
            .collect();
        restored += parts.values().map(Vec::len).sum::<usize>();
        let target = Target {
            repository_id: target.repository_id,
            distro_version_id: target.distro_version_id,
            arch: target.arch,
        };
        states.set(&target, parts);
    }
    Ok(restored)
}

fn saved(state: &ChunkState) -> SavedState {
    SavedState {
        head: state.head.clone(),
        chunk_no: state.chunk_no,
        fingerprint: state.fingerprint.clone(),
        blobs: state.blobs.clone(),
        state: hex::encode(state.state.to_bytes()),
        gz: hex::encode(state.gz.to_bytes()),
        zst: hex::encode(state.zst.to_bytes()),
    }
}

fn state(saved: SavedState) -> Option<ChunkState> {
    let hasher = |text: &str| MultiHasher::from_bytes(&hex::decode(text).ok()?);
    Some(ChunkState {
        state: hasher(&saved.state)?,
        gz: hasher(&saved.gz)?,
        zst: hasher(&saved.zst)?,
        head: saved.head,
        chunk_no: saved.chunk_no,
        fingerprint: saved.fingerprint,
        blobs: saved.blobs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(len: i64) -> Vec<ChunkState> {
        let mut hasher = MultiHasher::sha256_only();
        (0..len)
            .map(|chunk_no| {
                hasher.update(format!("chunk {chunk_no}\n").as_bytes());
                ChunkState {
                    head: "h".into(),
                    chunk_no,
                    fingerprint: format!("f{chunk_no}"),
                    blobs: format!("b{chunk_no}"),
                    state: hasher.clone(),
                    gz: hasher.clone(),
                    zst: MultiHasher::sha256_only(),
                }
            })
            .collect()
    }

    fn target(arch: &str) -> Target {
        Target {
            repository_id: 3,
            distro_version_id: 21,
            arch: arch.into(),
        }
    }

    #[test]
    fn a_damaged_state_ends_its_chain_and_a_damaged_file_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let kept = HashStates::default();
        kept.set(
            &target("x86_64"),
            PartStates::from([("primary".into(), chain(4))]),
        );
        kept.set(
            &target("aarch64"),
            PartStates::from([("primary".into(), chain(2))]),
        );
        assert_eq!(save(&kept, dir.path()).unwrap(), 2);
        assert!(kept.take_all().is_empty(), "saving takes them out");

        // The third state of x86_64 damaged: the chain keeps the two before it.
        let path = dir.path().join(FILE);
        let mut saved: Vec<SavedTarget> =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let x86 = saved.iter_mut().find(|t| t.arch == "x86_64").unwrap();
        let third = &mut x86.parts.get_mut("primary").unwrap()[2];
        third.gz.replace_range(
            20..22,
            if &third.gz[20..22] == "00" {
                "01"
            } else {
                "00"
            },
        );
        std::fs::write(&path, serde_json::to_vec(&saved).unwrap()).unwrap();
        let started = HashStates::default();
        assert_eq!(restore(&started, dir.path()).unwrap(), 2 + 2);
        let x86 = started.take(&target("x86_64")).remove("primary").unwrap();
        let chunk_nos: Vec<i64> = x86.iter().map(|s| s.chunk_no).collect();
        assert_eq!(chunk_nos, [0, 1]);
        let expected = chain(2)[1].state.clone().finish();
        assert_eq!(x86[1].state.clone().finish(), expected);
        assert_eq!(started.take(&target("aarch64"))["primary"].len(), 2);
        assert!(!path.exists(), "one start takes the file");
        assert_eq!(
            restore(&started, dir.path()).unwrap(),
            0,
            "and the next finds none"
        );

        // A file cut short is an error, and removed all the same.
        kept.set(
            &target("x86_64"),
            PartStates::from([("primary".into(), chain(4))]),
        );
        save(&kept, dir.path()).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        assert!(restore(&started, dir.path()).is_err());
        assert!(!path.exists());
        assert!(started.take_all().is_empty());
    }
}

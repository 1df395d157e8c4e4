//! Where an upload's plaintext comes from (memory, or a file read with positioned
//! reads from any thread), and the first pass over a file: its convergent key.
//!
//! The key pass is one SHA-256 stream over the whole file, and nothing else can start
//! before it ends (the key encrypts everything), so it is the one part of an upload
//! that cannot be spread over cores. Its reads are moved off the hashing thread: one
//! thread reads the next chunk while the other hashes the last, and the chunks are
//! reused, so the pass costs the hashing alone.

use std::io::Read;
use std::sync::mpsc;

use swamp_formats::chk::ConvergentKeyHasher;

/// Told how many more bytes of a local file were read (an upload reads its file
/// twice: once for the convergent key, once to encode), for progress displays.
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Bytes per read of the key pass.
const KEY_CHUNK: usize = 1 << 20;
/// Chunks of the key pass: one being read, one being hashed, one spare (small, so the
/// pass touches little fresh memory).
const KEY_CHUNKS: usize = 3;

/// An upload's plaintext.
#[derive(Clone, Copy)]
pub(super) enum Source<'a> {
    Memory(&'a [u8]),
    /// A file of the given length, read with positioned reads (from any thread).
    File(&'a std::fs::File, u64, Option<Progress<'a>>),
}

impl Source<'_> {
    pub(super) fn len(&self) -> u64 {
        match self {
            Self::Memory(data) => data.len() as u64,
            Self::File(_, len, _) => *len,
        }
    }

    /// Fills `buf` with the bytes from `offset` on.
    pub(super) fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        match self {
            Self::Memory(data) => {
                buf.copy_from_slice(&data[offset as usize..offset as usize + buf.len()]);
                Ok(())
            }
            Self::File(file, _, progress) => {
                file.read_exact_at(buf, offset)?;
                if let Some(progress) = progress {
                    progress(buf.len() as u64);
                }
                Ok(())
            }
        }
    }
}

/// Feeds all of `file` (from where it is, `len` bytes) to `hasher`, reading on a
/// second thread; fails if the file does not have exactly `len` more bytes.
pub(super) fn hash_file(
    file: &mut std::fs::File,
    len: u64,
    hasher: &mut ConvergentKeyHasher,
    progress: Option<Progress<'_>>,
) -> std::io::Result<()> {
    let (full_tx, full_rx) = mpsc::sync_channel::<(Vec<u8>, usize)>(KEY_CHUNKS);
    let (empty_tx, empty_rx) = mpsc::sync_channel::<Vec<u8>>(KEY_CHUNKS);
    for _ in 0..KEY_CHUNKS {
        empty_tx
            .send(vec![0u8; KEY_CHUNK])
            .expect("invariant: the receiver is here");
    }
    let seen = std::thread::scope(|scope| {
        let reader = scope.spawn(move || -> std::io::Result<()> {
            // Ends when the file does, or when the hashing side hangs up.
            while let Ok(mut buf) = empty_rx.recv() {
                let got = read_full(file, &mut buf)?;
                if let Some(progress) = progress {
                    progress(got as u64);
                }
                if got == 0 || full_tx.send((buf, got)).is_err() {
                    break;
                }
            }
            Ok(())
        });
        let mut seen = 0u64;
        for (buf, got) in full_rx {
            hasher.update(&buf[..got]);
            seen += got as u64;
            // The reader may have finished: then the chunk is not needed.
            let _ = empty_tx.send(buf);
        }
        drop(empty_tx);
        reader
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map(|()| seen)
    })?;
    if seen != len {
        return Err(std::io::Error::other(format!(
            "the file changed size while being read ({len} bytes, then {seen})"
        )));
    }
    Ok(())
}

/// Reads until `buf` is full or the file ends; returns how many bytes it read.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

//! The relay's ed25519 identity, kept in a file so that its peer ID (and so every address peers
//! have stored for it) survives restarts.
//!
//! The file holds libp2p's protobuf encoding of the keypair, the format other libp2p tools read.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use libp2p::identity::Keypair;

use crate::error::Error;

/// Loads the key from `path`, or creates it there (mode 0600) if there is no file yet.
///
/// A file that exists but does not hold an ed25519 key is an error: replacing it would silently
/// change the relay's peer ID and strand every peer that knows the old one.
pub(crate) fn load_or_create(path: &Path) -> Result<Keypair, Error> {
    match fs::read(path) {
        Ok(bytes) => decode(path, &bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path),
        Err(source) => Err(Error::KeyIo { path: path.to_owned(), source }),
    }
}

fn decode(path: &Path, bytes: &[u8]) -> Result<Keypair, Error> {
    let corrupt = |reason: String| Error::KeyCorrupt { path: path.to_owned(), reason };
    let keypair = Keypair::from_protobuf_encoding(bytes).map_err(|e| corrupt(e.to_string()))?;
    if keypair.key_type() != libp2p::identity::KeyType::Ed25519 {
        return Err(corrupt(format!("a {} key, not ed25519", keypair.key_type())));
    }
    Ok(keypair)
}

fn create(path: &Path) -> Result<Keypair, Error> {
    let io_error = |source| Error::KeyIo { path: path.to_owned(), source };
    let keypair = Keypair::generate_ed25519();
    let bytes = keypair
        .to_protobuf_encoding()
        .map_err(|e| Error::KeyCorrupt { path: path.to_owned(), reason: e.to_string() })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_error)?;
    }
    // Written aside and linked into place, so that a crash mid-write never leaves a truncated
    // key behind and two relays started at once on the same file end up with the same key: the
    // link fails if the other one won, and then its key is the one to use.
    let partial = partial_path(path);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::hard_link(&partial, path)
    })();
    let _ = fs::remove_file(&partial);
    match written {
        Ok(()) => Ok(keypair),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create(path),
        Err(e) => Err(io_error(e)),
    }
}

fn partial_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(format!(".{}.partial", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn created_once_with_owner_only_mode_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/key");
        let first = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = load_or_create(&path).unwrap();
        assert_eq!(first.public().to_peer_id(), second.public().to_peer_id());
        assert_eq!(
            fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1,
            "no partial file left"
        );
    }

    #[test]
    fn a_corrupt_file_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, b"not a key").unwrap();
        let err = load_or_create(&path).unwrap_err();
        assert!(matches!(err, Error::KeyCorrupt { .. }), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a key");
    }
}

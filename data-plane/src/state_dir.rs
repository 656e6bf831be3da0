//! The state directory holds the sealed snapshot and the trace spool (model
//! names, key names, usage): owner-only, directories 0700 and files 0600 from
//! their first byte, whatever the process umask.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::path::Path;

/// Creates `dir` and its missing parents, 0700.
pub fn create(dir: &Path) -> io::Result<()> {
    let mut b = DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Holds `dir` for this process for as long as the returned file lives (an
/// exclusive `flock` on `dir/.lock`, released by the kernel when the
/// process ends, however it ends). Two data planes on one directory would
/// number spool segments alike, and one starting would cut the other's open
/// segments as left over.
pub fn lock(dir: &Path) -> io::Result<File> {
    use rustix::fs::{FlockOperation, flock};
    let file = private_file(&dir.join(".lock"))?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "{} is in use by another data plane (each needs its own state directory)",
                dir.display()
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Opens `path` for appending, creating it 0600.
pub fn private_file(path: &Path) -> io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = lock(dir.path()).unwrap();
        let e = lock(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("in use by another data plane"),
            "{e}"
        );
        drop(held);
        lock(dir.path()).unwrap();
    }

    #[test]
    fn owner_only() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create(&dir).unwrap();
        let file = dir.join("f");
        drop(private_file(&file).unwrap());
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        assert_eq!(mode(&file), 0o600);
    }
}

//! Files the exporter keeps state in (the Slack thread file, the cluster runtime's checkpoint
//! file).

use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

/// Replaces `path` with `contents` atomically: written to a new file of a random name in the
/// same directory, flushed to disk, then renamed over `path` (creating its directory if
/// needed). A crash or power loss leaves the old contents or the new ones, never a torn or
/// empty file.
///
/// The temporary file is created exclusively (`O_CREAT | O_EXCL`: a symlink or file planted
/// at its name is never followed nor truncated) and readable by its owner only (mode 0600):
/// state files name the cluster's objects and the receivers' threads. The rename replaces a
/// symlink at `path` itself, not what it points to.
pub async fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir).await?;
    }
    let tmp = temp_name(path);
    let written = write_new(&tmp, contents).await;
    let renamed = match written {
        Ok(()) => tokio::fs::rename(&tmp, path).await,
        Err(e) => Err(e),
    };
    if renamed.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    renamed
}

/// `<dir>/.<name>.<random>.tmp`.
fn temp_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

async fn write_new(tmp: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(tmp).await?;
    file.write_all(contents).await?;
    file.sync_all().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[cfg(unix)]
    #[tokio::test]
    async fn planted_symlinks_are_never_followed_and_state_is_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("ee-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.join("checkpoint.json");
        // The fixed temporary name an older version used, and the file itself, both planted.
        std::os::unix::fs::symlink(&victim, dir.join("checkpoint.json.tmp")).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        replace_file(&path, b"{\"v\":2}").await.unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "the link itself was replaced");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"v\":2}");
        replace_file(&path, b"{\"v\":3}").await.unwrap();
        // No temporary file is left behind.
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["checkpoint.json", "checkpoint.json.tmp", "victim"]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

//! Files the exporter keeps state in (the Slack thread file, the cluster runtime's checkpoint
//! file).

use std::path::Path;

use tokio::io::AsyncWriteExt;

/// Replaces `path` with `contents` atomically: written to `<path>.tmp`, flushed to disk, then
/// renamed over `path` (creating its directory if needed). A crash or power loss leaves the
/// old contents or the new ones, never a torn or empty file.
pub async fn replace_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut file = tokio::fs::File::create(&tmp).await?;
    file.write_all(contents).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await
}

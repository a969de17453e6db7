//! TEMPORARY placeholder until the wt-ops branch lands (same API).
#![allow(missing_docs, clippy::unused_async)]
#[derive(Debug, Clone)]
pub struct ConfigMapKey {
    target: String,
}
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigMapError(String);
impl ConfigMapKey {
    pub fn new(_client: kube::Client, namespace: &str, name: &str, key: &str) -> Self {
        Self { target: format!("configmap {namespace}/{name} key {key}") }
    }
    pub async fn read(&self) -> Result<Option<String>, ConfigMapError> {
        Err(ConfigMapError("placeholder".into()))
    }
    pub async fn update<F>(&self, _change: F) -> Result<(), ConfigMapError>
    where
        F: FnMut(Option<&str>) -> Option<String> + Send,
    {
        Err(ConfigMapError("placeholder".into()))
    }
    pub fn describe(&self) -> String {
        self.target.clone()
    }
}

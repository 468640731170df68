//! Layered configuration: serde defaults → an optional TOML file → `JINFU_` environment
//! variables, with `__` separating nested keys (`JINFU_DATABASE__URL`).

use std::path::Path;

use serde::de::DeserializeOwned;

/// Loads a service's settings. `file` is optional: a missing path is an error only if given.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> anyhow::Result<T> {
    let mut builder = config::Config::builder();
    if let Some(path) = file {
        anyhow::ensure!(path.exists(), "configuration file {} does not exist", path.display());
        builder = builder.add_source(config::File::from(path));
    }
    builder = builder.add_source(config::Environment::with_prefix("JINFU").prefix_separator("_").separator("__").try_parsing(false));
    let settings = builder.build()?;
    Ok(settings.try_deserialize()?)
}

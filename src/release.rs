//! What a release store holds: one release per version (`<package>-v<version>`) with one asset
//! per platform. The planner reads these; the stores (directory, GitHub) produce them.

use pep440_rs::Version;
use serde::{Deserialize, Serialize};

use crate::names::{PackageName, Platform, PythonMinor};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReleaseState {
    /// Assets may still be added; not visible to users.
    Draft,
    /// Visible and immutable: its assets are never replaced.
    Published,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    pub name: String,
    pub size: u64,
    /// Lowercase hex; `None` when the store could not tell (an upload that never finished).
    pub sha256: Option<String>,
}

impl Asset {
    /// An asset the planner may count as built: it has bytes and a digest.
    pub fn is_complete(&self) -> bool {
        self.size > 0 && self.sha256.as_ref().is_some_and(|d| is_sha256_hex(d))
    }
}

pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// One version's release as observed in a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: Version,
    pub state: ReleaseState,
    pub assets: Vec<Asset>,
    /// From the release's build info: what it was built with. A draft built with other settings
    /// than the current config is rebuilt; a published one never is.
    #[serde(default)]
    pub python: Option<PythonMinor>,
    #[serde(default)]
    pub config_version: Option<u32>,
}

impl Release {
    pub fn asset(&self, package: &PackageName, platform: Platform) -> Option<&Asset> {
        let name = package.asset_name(platform);
        self.assets.iter().find(|a| a.name == name)
    }

    pub fn has_complete(&self, package: &PackageName, platform: Platform) -> bool {
        self.asset(package, platform)
            .is_some_and(Asset::is_complete)
    }
}

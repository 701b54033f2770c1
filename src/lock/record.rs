//! What a pylock decided, as the build info records it (new optional fields of
//! `release::LockRecord`). A leaf: names only, so the build info can carry it without importing
//! the lock machinery.

use serde::{Deserialize, Serialize};

/// The lock file's format. Releases made before the pylock carry none: pex's `lock.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockFormat {
    /// PEP 751 `pylock.toml`, made by uv.
    Pylock,
}

/// One platform's part of the lock: the files it installs, or why it cannot exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlatformLock {
    /// Each chosen file (a wheel, or an sdist the platform's native build builds).
    Files(Vec<ChosenFile>),
    /// No rebuild helps: the reason names each distribution without a wheel for it.
    Missing(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChosenFile {
    pub name: String,
    pub sha256: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_it_is_written() {
        let files = PlatformLock::Files(vec![ChosenFile {
            name: "a-1-py3-none-any.whl".into(),
            sha256: "0".repeat(64),
        }]);
        let json = serde_json::to_string(&files).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"files":[{{"name":"a-1-py3-none-any.whl","sha256":"{}"}}]}}"#,
                "0".repeat(64)
            )
        );
        assert_eq!(serde_json::from_str::<PlatformLock>(&json).unwrap(), files);
        let missing = PlatformLock::Missing("no wheel".into());
        assert_eq!(
            serde_json::to_string(&missing).unwrap(),
            r#"{"missing":"no wheel"}"#
        );
        assert_eq!(
            serde_json::to_string(&LockFormat::Pylock).unwrap(),
            r#""pylock""#
        );
    }
}

//! The tag a version of a Git source comes from: a leaf, so that the index types can carry
//! it without depending on the code that reads repositories.

use serde::{Deserialize, Serialize};

/// The tag a version comes from, and the commit it pointed at when seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GitTag {
    pub tag: String,
    pub commit: String,
}

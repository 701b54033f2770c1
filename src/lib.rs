//! hermit-pex: builds PEXs of Python tools on PyPI and publishes them as Hermit packages.
//!
//! A pure planner (`plan`) sits at the centre; `pypi` observes the index; the executors at the
//! edges build, release and write manifests.

pub mod blocking;
pub mod build;
pub mod cli;
pub mod complete_platform;
pub mod controller;
pub mod credentials;
pub mod digest;
pub mod flavour;
pub mod github;
pub mod gitops;
pub mod hermit;
pub mod lock;
pub mod names;
pub mod os_package;
pub mod plan;
pub mod pypi;
pub mod release;
pub mod sbom;
pub mod source;
pub mod spec;
pub mod step;
pub mod sync;
pub mod tools;
pub mod verify;
pub mod wheels;
pub mod workdir;

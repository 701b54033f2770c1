//! hermit-pex: builds PEXs of Python tools on PyPI and publishes them as Hermit packages.
//!
//! A pure planner (`plan`) sits at the centre; `pypi` observes the index; the executors at the
//! edges build, release and write manifests.

pub mod build;
pub mod cli;
pub mod controller;
pub mod github;
pub mod gitops;
pub mod hermit;
pub mod local;
pub mod names;
pub mod pipeline;
pub mod plan;
pub mod pypi;
pub mod release;
pub mod source;
pub mod spec;
pub mod verify;
pub mod workdir;

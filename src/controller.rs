//! The Kubernetes side: the `PythonPackage` resource (its CRD is generated from these types and
//! checked in at `crds/pythonpackage.yaml`) and the conversion of config files into resources.
//! `jobs` turns a (version, platform) into its build Job and `status` computes what the
//! resource reports, and `observe` reads Jobs and Nodes; all pure. `reconcile` drives them,
//! with `limit` (the controller-wide Job bound) and `manifest` (the commit step); `targets` says
//! where releases, manifests and wheels go (`wheels`: the wheel step after publishing), and `run` is the process around it (`metrics`, `lease`,
//! and `hook`, the webhook receiver that wakes a package on a tag push).

pub mod context;
pub mod hook;
pub mod jobs;
pub mod lease;
pub mod limit;
pub mod manifest;
pub mod metrics;
pub mod observe;
pub mod reconcile;
pub mod resource;
pub mod run;
pub mod status;
pub mod targets;
pub mod wheels;

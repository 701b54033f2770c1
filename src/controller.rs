//! The Kubernetes side: the `PythonPackage` resource (its CRD is generated from these types and
//! checked in at `crds/pythonpackage.yaml`) and the conversion of config files into resources.
//! `jobs` turns a (version, platform) into its build Job and `status` computes what the
//! resource reports; both are pure. `reconcile` drives them, `targets` says where releases and
//! manifests go, and `run` is the process around it (metrics, leader election, shutdown).

pub mod jobs;
pub mod lease;
pub mod metrics;
pub mod reconcile;
pub mod resource;
pub mod run;
pub mod status;
pub mod targets;

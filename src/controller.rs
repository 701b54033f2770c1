//! The Kubernetes side: the `PythonPackage` resource (its CRD is generated from these types and
//! checked in at `crds/pythonpackage.yaml`) and the conversion of config files into resources.
//! `jobs` turns a (version, platform) into its build Job and `status` computes what the
//! resource reports; both are pure. The reconciler that drives them is the next step.

pub mod jobs;
pub mod reconcile;
pub mod resource;
pub mod run;
pub mod status;

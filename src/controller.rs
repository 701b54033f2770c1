//! The Kubernetes side: the `PythonPackage` resource (its CRD is generated from these types and
//! checked in at `crds/pythonpackage.yaml`) and the conversion of config files into resources.
//! `jobs` turns a (version, platform) into its build Job. The reconciler is the next step.

pub mod jobs;
pub mod resource;

//! The Kubernetes side: the `PythonPackage` resource (its CRD is generated from these types and
//! checked in at `crds/pythonpackage.yaml`) and the conversion of config files into resources.
//! The reconciler itself is the next step (issue 6).

pub mod resource;

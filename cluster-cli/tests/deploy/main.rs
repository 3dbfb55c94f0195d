//! The deployment files (`Dockerfile`, `deploy/docker/`, `deploy/kubernetes/`) checked against
//! the code they deploy: the configuration they carry is loaded by cluster-core's own loader,
//! their probe paths and ports are the admin API's, their grace periods cover the graceful
//! shutdown, their memory covers the workers, and the Dockerfiles build a real package and
//! run real subcommands with flags the CLI accepts.
//!
//! Docker and a Kubernetes cluster are not run here. `.ci/run` also validates the manifests
//! against the Kubernetes API schemas (kubernetes-validate) and lints the Dockerfiles
//! (hadolint); docs/deploy.md says what is and is not exercised.

mod compose;
mod dockerfile;
mod files;
mod kubernetes;
mod systemd;

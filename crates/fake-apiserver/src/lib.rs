//! A protocol-faithful fake kube-apiserver for tests and benchmarks (see
//! `../shared/contracts/kubernetes-watch.md`).

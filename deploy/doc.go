// Package deploy holds no code: its tests check the deployment files beside
// them (the compose file, the Kubernetes manifests and the systemd unit)
// against the checkers of the systems that read them: the Compose
// Specification's JSON schema, the Kubernetes API types and systemd's own
// verifier, and against the imagebadger binary's command line. It is a module
// of its own so that the Kubernetes API packages stay out of the service's
// module graph.
package deploy

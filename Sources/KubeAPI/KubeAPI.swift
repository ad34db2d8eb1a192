// KubeAPI: the Kubernetes client over `Curl` (kubeconfig resolution, requests, watches, Status
// errors, typed views). Built by the KubeAPI issue; this module exists now so that the layers of
// DESIGN.md are visible in Package.swift from the start.

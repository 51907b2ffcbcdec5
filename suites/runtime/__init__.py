"""runtime conformance checks: the container runtime each host really runs (Docker,
containerd or CRI-O, detected from the kubelet's flags or whichever daemon answers) answers
on its socket, the kubelet's CRI endpoint is that runtime's socket, the runtime's CNI bridge
sits inside the host's flannel lease with the flannel MTU, and pods get that MTU."""

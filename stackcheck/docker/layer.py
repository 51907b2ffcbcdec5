"""Docker, described for the harness (:mod:`stackcheck.layers`): its per-host checks need
their host's container runtime."""

from stackcheck.layers import Layer

LAYER = Layer(
    name="docker",
    title="Docker",
    order=50,
    roles={"docker": ("docker",)},
    services=("docker", "containerd"),
    units={"docker": "docker"},
    host_needs=("runtime",),
    ssh_fixtures={"docker_pods": "all"},
)

"""The container runtime (Docker, containerd, CRI-O), described for the harness
(:mod:`stackcheck.layers`). It has no role of its own: the hosts that run containers (the
``docker`` and ``node`` roles) have one, and :mod:`stackcheck.runtime.detect` says which."""

from stackcheck.layers import Health, Layer

LAYER = Layer(
    name="runtime",
    title="container runtime",
    order=30,
    services=("docker", "containerd", "crio"),
    health=(Health("runtime", pods_need=True),),
    preflight="stackcheck.runtime.preflight:PREFLIGHT",
    picture="stackcheck.runtime.picture:PICTURE",
)

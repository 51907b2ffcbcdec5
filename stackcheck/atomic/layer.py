"""Atomic hosts (ostree, rpm-ostree, bootc), described for the harness
(:mod:`stackcheck.layers`)."""

from stackcheck.layers import Layer

LAYER = Layer(
    name="atomic",
    title="Atomic hosts",
    order=60,
    roles={"atomic": ()},
    ssh_fixtures={"atomic": "one"},
)

"""etcd, described for the harness (:mod:`stackcheck.layers`)."""

from stackcheck.layers import Health, Layer

LAYER = Layer(
    name="etcd",
    title="etcd",
    order=10,
    roles={"etcd": ("etcd",)},
    services=("etcd",),
    units={"etcd": "etcd"},
    health=(Health("etcd"),),
    preflight="stackcheck.etcd.preflight:PREFLIGHT",
    picture="stackcheck.etcd.picture:PICTURE",
    suite_needs=("etcd",),
    fixture_needs={"etcd_clients": ("etcd",), "etcd_client": ("etcd",)},
    every="every etcd member",
    errors_from=("etcd3gw",),
    present=lambda lab: bool(lab.etcd),
)

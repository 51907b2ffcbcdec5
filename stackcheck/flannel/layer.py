"""flannel, described for the harness (:mod:`stackcheck.layers`). Its suite owns its
plumbing's health: its checks are not blocked by the preflight's flannel line."""

from stackcheck.layers import Health, Layer

LAYER = Layer(
    name="flannel",
    title="flannel",
    order=40,
    roles={"flannel": ("flannel",)},
    services=("flannel",),
    units={"flannel": "flanneld"},
    health=(Health("flannel", pods_need=True),),
    preflight="stackcheck.flannel.preflight:PREFLIGHT",
    picture="stackcheck.flannel.picture:PICTURE",
)

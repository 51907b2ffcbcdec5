"""Kubernetes, described for the harness (:mod:`stackcheck.layers`)."""

from stackcheck.layers import Health, Layer

LAYER = Layer(
    name="kubernetes",
    title="Kubernetes",
    order=20,
    roles={"master": ("kube-apiserver", "kube-controller-manager", "kube-scheduler"),
           "node": ("kubelet", "kube-proxy")},
    services=("kubelet", "kube-proxy", "kube-apiserver", "kube-controller-manager",
              "kube-scheduler"),
    units={"kubelet": "kubelet"},
    health=(
        Health("kubernetes", after=("etcd",)),
        Health("scheduler", after=("kubernetes",)),
        Health("controller-manager", after=("kubernetes",)),
        # a node's kubelet fails when its runtime does: the runtime is named first
        Health("kubelet", after=("kubernetes", "runtime"), pods_need=True),
    ),
    preflight="stackcheck.kubernetes.preflight:PREFLIGHT",
    picture="stackcheck.kubernetes.picture:PICTURE",
    suite_needs=("kubernetes",),
    fixture_needs={
        "kube": ("kubernetes",),
        "namespace": ("scheduler", "controller-manager"),  # its checks schedule pods
        "pods": ("kubernetes", "controller-manager"),  # the data-path pods are Kubernetes pods
    },
    errors_from=("kubernetes", "urllib3"),
    present=lambda lab: lab.kubernetes is not None,
)

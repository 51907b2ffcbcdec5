#!/usr/bin/env bash
# stackcheck's two entry points; each installs what it needs first.
#   ./run.sh conformance [pytest args]  full conformance run against the local lab, then the
#                                       offline HTML report (allure-report/index.html)
#   ./run.sh selftest [pytest args]     the harness's own tests
#   ./run.sh openstack-live [pytest args]  the openstack provisioner against a real single-node
#                                       OpenStack (Debian's Zed packages; brought up and torn
#                                       down by provisioners/openstack/live)
#   ./run.sh lint [ruff args]           ruff over the whole tree (the style every commit keeps)
# tox.ini calls these same commands (tox -e selftest, lint, conformance).
set -euo pipefail
cd "$(dirname "$0")"

DEBIAN_PACKAGES=(python3-venv iproute2 procps kmod e2fsprogs openssh-server openssh-client
                 etcd-server etcd-client ostree docker.io containerd containernetworking-plugins
                 tini busybox-static iptables iputils-ping
                 dpkg-dev make rsync gcc libc6-dev time mmdebstrap systemd-container
                 chromium)  # the harness's look at the HTML report
# Node.js and npm for the HTML report (Allure 3 needs nothing else), unless they are there
# already: NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
command -v node >/dev/null && command -v npm >/dev/null || DEBIAN_PACKAGES+=(nodejs npm)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

install_debian_packages() {
    local missing=()
    for pkg in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "stackcheck: missing Debian packages (run as root or install them): ${missing[*]}" >&2
        exit 2
    fi
    say "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_venv() {
    local stamp=.venv/.stackcheck-installed want
    want=$(cat pyproject.toml setup.py | sha256sum | cut -d' ' -f1)
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && return 0
    say "virtualenv .venv and PyPI packages"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --disable-pip-version-check -U pip
    .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,openstack]'
    echo "$want" > "$stamp"
}

cmd=${1:-}
shift || true
case "$cmd" in
    conformance)
        install_debian_packages
        install_venv
        .venv/bin/stackcheck report --prepare ||  # the Allure CLI now, so the report renders offline
            echo "stackcheck: the HTML report will be missing; the run goes on" >&2
        say "conformance run against the local lab (Allure results in allure-results/)"
        # pytest runs in the foreground so Ctrl-C reaches it; the traps only keep this script
        # alive until pytest has torn the lab down, so the report is rendered whatever happened.
        trap 'say "stopping: pytest tears the lab down first"' INT TERM
        status=0
        .venv/bin/python -m pytest -n auto --dist loadgroup --alluredir=allure-results \
            --clean-alluredir "$@" || status=$?
        trap - INT TERM
        say "HTML report"
        if .venv/bin/stackcheck report --results allure-results --out allure-report; then
            say "report: $PWD/allure-report/index.html (lab picture: $PWD/allure-results/lab-overview.svg)"
        else
            echo "stackcheck: no HTML report this time (see above); results in allure-results/" >&2
        fi
        exit "$status"
        ;;
    selftest)
        install_debian_packages
        install_venv
        say "stackcheck's own tests"
        exec .venv/bin/python -m pytest -c tests/pytest.ini -n auto --dist loadfile tests "$@"
        ;;
    openstack-live)
        DEBIAN_PACKAGES=(python3-venv iproute2 python3-keystone python3-glance python3-nova
                         python3-neutron python3-placement mariadb-server rabbitmq-server
                         uwsgi-core uwsgi-plugin-python3 socat python3-pymysql)
        # MariaDB's and RabbitMQ's packages start system-wide services (RabbitMQ on every
        # interface): forbid that while installing, as the tests start their own on loopback
        if [ ! -e /usr/sbin/policy-rc.d ] && [ "$(id -u)" = 0 ]; then
            trap 'rm -f /usr/sbin/policy-rc.d' EXIT
            printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
            chmod 755 /usr/sbin/policy-rc.d
            install_debian_packages
            rm -f /usr/sbin/policy-rc.d
            trap - EXIT
        else
            install_debian_packages
        fi
        install_venv
        say "the openstack provisioner against a live single-node OpenStack"
        STACKCHECK_OS_LIVE=1 exec flock /tmp/stackcheck-openstack-live.lock \
            .venv/bin/python -m pytest -c tests/pytest.ini -m openstack_live \
            tests/test_openstack_live.py "$@"
        ;;
    lint)
        install_venv
        exec .venv/bin/ruff check "$@" .
        ;;
    *)
        echo "usage: ./run.sh conformance|selftest|openstack-live|lint [args]" >&2
        exit 2
        ;;
esac

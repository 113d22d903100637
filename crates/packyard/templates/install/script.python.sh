#!/bin/bash
# Sets up pip on this host for the Python packages of @@OWNER@@/@@REPO@@ at @@BASE_URL@@:
# adds the repository's simple index as an extra index (PyPI stays the main one) to the
# user's pip configuration, with a read token of its own for a private repository, and
# trusts the host when it is reached over plain HTTP. Running it again replaces the setting.
set -euo pipefail

base_url='@@BASE_URL@@'
repository='@@OWNER@@/@@REPO@@'
master_token='@@MASTER_TOKEN@@'

host_name() {
    hostname -f 2> /dev/null || hostname 2> /dev/null || cat /etc/hostname 2> /dev/null || echo unknown-host
}

main() {
    command -v curl > /dev/null || { echo "curl is needed to run this script."; exit 1; }
    local pip
    if command -v pip3 > /dev/null; then
        pip=pip3
    elif command -v pip > /dev/null; then
        pip=pip
    else
        echo "pip is needed: install python3-pip first."
        exit 1
    fi

    # A private repository: trade the master token for a read token named after this host.
    local credentials=""
    if [ -n "$master_token" ]; then
        local read_token
        read_token=$(curl -sSf -u "${master_token}:" --data-urlencode "name=$(host_name)" \
            "${base_url}/install/repositories/${repository}/tokens.text")
        credentials="${read_token}:@"
    fi
    local scheme=${base_url%%://*}
    local host_port=${base_url#*://}
    local index_url="${scheme}://${credentials}${host_port}/${repository}/pypi/simple/"

    echo "Adding ${base_url}/${repository}/pypi/simple/ to pip's configuration..."
    "$pip" config --user set global.extra-index-url "$index_url" > /dev/null
    if [ "$scheme" = "http" ]; then
        "$pip" config --user set global.trusted-host "${host_port%%/*}" > /dev/null
    fi
    echo
    echo "The repository is set up! You can now pip install its packages."
}

main

#!/bin/bash
# Sets up npm on this host for the npm packages of @@OWNER@@/@@REPO@@ at @@BASE_URL@@, in the
# user's ~/.npmrc: with scope=@name, the registry of that scope only (everything else still
# comes from the default registry); without it, the default registry itself. A private
# repository gets a read token of its own as the registry's _authToken. Running it again
# replaces the settings.
set -euo pipefail

base_url='@@BASE_URL@@'
repository='@@OWNER@@/@@REPO@@'
master_token='@@MASTER_TOKEN@@'

host_name() {
    hostname -f 2> /dev/null || hostname 2> /dev/null || cat /etc/hostname 2> /dev/null || echo unknown-host
}

main() {
    command -v curl > /dev/null || { echo "curl is needed to run this script."; exit 1; }
    command -v npm > /dev/null || { echo "npm is needed: install Node.js first."; exit 1; }
    local registry="${base_url}/${repository}/npm/"
    local key="registry"
    if [ -n "${scope:-}" ]; then
        case "$scope" in
            @*) ;;
            *) scope="@${scope}" ;;
        esac
        key="${scope}:registry"
    fi
    echo "Setting ${key} to ${registry} in npm's user configuration..."
    npm config set "$key" "$registry"

    # A private repository: trade the master token for a read token named after this host.
    if [ -n "$master_token" ]; then
        local read_token
        read_token=$(curl -sSf -u "${master_token}:" --data-urlencode "name=$(host_name)" \
            "${base_url}/install/repositories/${repository}/tokens.text")
        npm config set "${registry#*:}:_authToken" "$read_token"
    fi
    echo
    echo "The repository is set up! You can now npm install its packages."
}

main

#!/bin/bash
# Sets up the APT repository @@OWNER@@/@@REPO@@ from @@BASE_URL@@ on this host:
# detects the OS and codename (override with os= and dist=), writes the repository's current
# signing keys to @@DEB_KEYRING@@ and the source file to /etc/apt/sources.list.d, runs
# apt-get update, then installs the package @@KEYRING_PACKAGE@@, which owns that keyring from
# then on: `apt-get upgrade` brings every new or extended signing key before it is used.
# Running it again replaces both files, so a new token takes the place of an old one, and
# moves a host set up by an older script (keyring in /etc/apt/keyrings) over.
set -euo pipefail

base_url='@@BASE_URL@@'
repository='@@OWNER@@/@@REPO@@'
file_name='@@OWNER@@_@@REPO@@'
master_token='@@MASTER_TOKEN@@'
keyring_package='@@KEYRING_PACKAGE@@'
keyring='@@DEB_KEYRING@@'

unknown_os() {
    echo "Unfortunately, your operating system distribution and version are not supported by this script."
    echo
    echo "You can override the OS detection by setting os= and dist= before running this script."
    echo "For example, to force Ubuntu Noble: os=ubuntu dist=noble ./script.deb.sh"
    echo
    echo "Repository: ${base_url}/${repository}"
    exit 1
}

ensure_command() {
    local command_name=$1 package=$2
    if ! command -v "$command_name" > /dev/null; then
        echo "Installing ${package}..."
        apt-get install -y "$package" > /dev/null
    fi
}

detect_os() {
    if [ -z "${os:-}" ] || [ -z "${dist:-}" ]; then
        if [ -e /etc/os-release ]; then
            # shellcheck disable=SC1091
            . /etc/os-release
            os=${ID:-}
            dist=${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}
        elif command -v lsb_release > /dev/null; then
            os=$(lsb_release -i | cut -f2)
            dist=$(lsb_release -c | cut -f2)
        elif [ -e /etc/lsb-release ]; then
            # shellcheck disable=SC1091
            . /etc/lsb-release
            os=${DISTRIB_ID:-}
            dist=${DISTRIB_CODENAME:-}
        fi
    fi
    os=$(echo "${os:-}" | tr '[:upper:]' '[:lower:]')
    dist=$(echo "${dist:-}" | tr '[:upper:]' '[:lower:]')
    if [ -z "$os" ] || [ -z "$dist" ]; then
        unknown_os
    fi
    echo "Detected operating system as ${os}/${dist}."
}

host_name() {
    hostname -f 2> /dev/null || hostname 2> /dev/null || cat /etc/hostname 2> /dev/null || echo unknown-host
}

main() {
    detect_os
    ensure_command curl curl
    ensure_command gpg gnupg
    if [ "$os" = "debian" ] && [ ! -e /usr/share/keyrings/debian-archive-keyring.gpg ]; then
        apt-get install -y debian-archive-keyring > /dev/null || true
    fi

    # A private repository: trade the master token for a read token named after this host.
    local auth=()
    if [ -n "$master_token" ]; then
        local read_token
        read_token=$(curl -sSf -u "${master_token}:" --data-urlencode "name=$(host_name)" \
            "${base_url}/install/repositories/${repository}/tokens.text")
        auth=(-u "${read_token}:")
    fi

    local source_file="/etc/apt/sources.list.d/${file_name}.list"
    local old_keyring="/etc/apt/keyrings/${file_name}-archive-keyring.gpg"
    local config_url="${base_url}/install/repositories/${repository}/config_file.list?os=${os}&dist=${dist}&source=script"
    local config
    echo "Installing ${source_file}..."
    if ! config=$(curl -sSf "${auth[@]}" "$config_url"); then
        unknown_os
    fi

    # The current keys from the server, even where the keyring package is installed: a host
    # that missed a rotation gets back in step before apt-get update checks the signatures.
    echo "Importing the repository's signing keys..."
    mkdir -p "$(dirname "$keyring")"
    curl -sSf "${auth[@]}" "${base_url}/${repository}/gpgkey" | gpg --batch --yes --dearmor -o "${keyring}.new"
    chmod 0644 "${keyring}.new"
    mv "${keyring}.new" "$keyring"
    printf '%s\n' "$config" > "$source_file"
    chmod 0644 "$source_file"
    rm -f "$old_keyring"

    echo "Running apt-get update..."
    apt-get update -o Dir::Etc::sourcelist="$source_file" -o Dir::Etc::sourceparts="-" -o APT::Get::List-Cleanup="0" > /dev/null

    echo "Installing ${keyring_package}, which keeps the signing keys current..."
    if ! apt-get install -y "$keyring_package" > /dev/null; then
        echo "Warning: ${keyring_package} could not be installed; new signing keys will need this script again."
    fi
    echo
    echo "The repository is set up! You can now install packages."
}

main
